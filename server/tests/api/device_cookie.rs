//! A stranger must not lock a holder out (issue 13, item 2): a browser that finished a
//! journey for a holder carries a signed device cookie, and its journeys for them count on
//! limits of their own, so the holder's own browser keeps working while a stranger's are
//! locked out and the stranger's code emails are capped.

use reqwest::StatusCode;
use unlock_protocol::staff::Role;

use crate::helpers::*;

/// A cookie's `name=value` from a reply's `Set-Cookie` headers.
fn set_cookie<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
}

#[tokio::test]
async fn a_stranger_who_knows_the_address_cannot_lock_the_holder_out_of_their_own_browser() {
    let mut app = spawn_app_with(|c| {
        // Only the holder's limits: the stranger may come from many addresses.
        c.throttle.client_failures_per_hour = 1000;
        c.throttle.client_starts_per_hour = 1000;
    })
    .await;
    // The holder unlocks their card once, in their own browser, which is then trusted.
    app.verified_journey().await;
    app.present_card(CARD, PROFILE).await;
    let challenge = fresh_challenge();
    app.cryptogram(&challenge).await;
    let receipt = app.receipt(&receipt_for(CARD, &challenge)).await;
    assert_eq!(receipt.stage(), "unlocked");
    let cookie = set_cookie(&receipt, "unlock_device").expect("a device cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let holders_browser = app.client.clone();

    // A stranger, from fresh browsers, voids codes and asks for new ones until the holder's
    // shared limits refuse them.
    let mut starts = 0;
    let refused = loop {
        app.new_browser();
        let started = app.start(EMAIL).await;
        if started.status != StatusCode::OK {
            break started;
        }
        starts += 1;
        assert!(starts <= 10, "the stranger was never refused");
        for _ in 0..3 {
            app.verify("000000").await;
        }
    };
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.code(), "throttled", "{}", refused.json());
    // A cookie copied from nowhere, or forged, buys the stranger nothing.
    app.new_browser();
    let forged = app
        .client
        .post(app.url("/api/journeys"))
        .header(
            "cookie",
            format!("unlock_device=v1.{}.{}", "ab".repeat(16), "cd".repeat(12)),
        )
        .json(&serde_json::json!({"email": EMAIL}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);

    // The status view shows the holder under sustained failed attempts, locked out.
    let sam = app.signed_in_staff("sam", Role::Support, None).await;
    let overview = sam.get("/api/staff/overview").await.json();
    let listed = &overview["holders_under_attempts"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{overview}");
    assert_eq!(listed[0]["holder_id"], HOLDER);
    assert_eq!(listed[0]["wrong_codes_today"], 3 * starts);
    assert!(listed[0]["locked_until"].as_i64().unwrap() > app.clock.now());
    assert_eq!(listed[0]["locked_until_released"], false);

    // The holder's own browser still works: a new journey, the right code, verified.
    // (Once the stranger's code emails are all in, so the next one is the holder's.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.code_emails(EMAIL).len() < 1 + starts {
        assert!(
            std::time::Instant::now() < deadline,
            "the codes never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    app.client = holders_browser;
    let reply = app.journey_with_code(EMAIL).await;
    assert_eq!(reply.stage(), "verified", "{}", reply.json());
}

#[tokio::test]
async fn a_stranger_can_send_a_holder_at_most_ten_codes_a_day() {
    let mut app = spawn_app_with(|c| {
        c.throttle.client_starts_per_hour = 1000;
        c.journey.codes_per_hour = 1000;
    })
    .await;
    let mut sent = 0;
    let refused = loop {
        app.new_browser();
        let started = app.start(EMAIL).await;
        if started.status != StatusCode::OK {
            break started;
        }
        sent += 1;
        app.clock.advance(std::time::Duration::from_secs(60));
        assert!(sent <= 10, "more than 10 codes in a day");
    };
    assert_eq!(sent, 10);
    assert_eq!(refused.code(), "too_many_codes");
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("today")
    );
    app.clock.advance(std::time::Duration::from_secs(24 * 3600));
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
}
