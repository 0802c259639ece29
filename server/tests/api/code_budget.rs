//! The holder's code budget holds across resends and journeys: a resent code brings no new
//! tries, every wrong code counts against the holder, so many a day and so many in all before
//! a Registration Authority must release them (issue 13, item 1).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use unlock_protocol::staff::Role;

use crate::helpers::*;

/// Every other limit raised, so only the holder's wrong-code budget can refuse.
fn only_the_wrong_code_budget(config: &mut unlock_server::config::Config) {
    config.throttle.holder_wrong_codes_per_day = 10;
    config.throttle.holder_wrong_codes_in_all = 25;
    config.throttle.holder_voided_codes_per_day = 1000;
    config.throttle.client_failures_per_hour = 1000;
    config.throttle.client_starts_per_hour = 1000;
    config.journey.codes_per_hour = 1000;
}

/// A code that is not the one sent.
fn wrong_for(code: &str) -> &'static str {
    if code == "000000" { "000001" } else { "000000" }
}

#[tokio::test]
async fn a_resent_code_carries_the_wrong_tries_of_the_code_it_replaces() {
    let app = spawn_app_with(only_the_wrong_code_budget).await;
    app.start(EMAIL).await;
    let first = app.code_for(EMAIL, 1).await;
    for tries_left in [2, 1] {
        let reply = app.verify(wrong_for(&first)).await;
        assert_eq!(reply.json()["tries_left"], tries_left);
    }
    app.clock.advance(Duration::from_secs(31));
    let resent = app.resend().await;
    assert_eq!(resent.status, StatusCode::OK);
    assert_eq!(resent.json()["tries_left"], 1, "{}", resent.json());
    let second = app.code_for(EMAIL, 2).await;
    let voided = app.verify(wrong_for(&second)).await;
    assert_eq!(voided.code(), "code_voided");
    // A code after a voided one starts afresh: the voided one was counted when it ran out.
    app.clock.advance(Duration::from_secs(31));
    assert_eq!(app.resend().await.json()["tries_left"], 3);
    let third = app.code_for(EMAIL, 3).await;
    assert_eq!(app.verify(&third).await.status, StatusCode::OK);
}

#[tokio::test]
async fn guessing_twice_then_resending_gets_ten_wrong_codes_a_day_and_twenty_five_in_all() {
    let mut app = spawn_app_with(only_the_wrong_code_budget).await;
    let mut sent = 0;
    let mut counted = 0;
    let mut day_start = app.clock.now();
    // The attacker's pattern: two guesses, wait out the cool-down, ask for a new code, for
    // days; a new journey whenever one runs out of time.
    let refused = 'guessing: loop {
        app.new_browser();
        if app.start(EMAIL).await.status != StatusCode::OK {
            break 'guessing app.start(EMAIL).await;
        }
        sent += 1;
        for _ in 0..20 {
            for _ in 0..2 {
                let reply = app
                    .verify(wrong_for(&app.code_for(EMAIL, sent).await))
                    .await;
                if reply.status == StatusCode::TOO_MANY_REQUESTS {
                    // The day's budget is spent: wait for the next day, unless it is over for good.
                    assert_eq!(reply.code(), "throttled", "{}", reply.json());
                    if reply.json().get("retry_after_seconds").is_none() {
                        break 'guessing reply;
                    }
                    assert_eq!(counted % 10, 0, "the day's budget is 10 wrong codes");
                    assert!(app.clock.now() - day_start < 24 * 3_600_000);
                    // Not even the right code is checked while the holder is locked out.
                    let right = app.code_for(EMAIL, sent).await;
                    assert_eq!(app.verify(&right).await.code(), "throttled");
                    app.clock.advance(Duration::from_secs(24 * 3600));
                    day_start = app.clock.now();
                    continue 'guessing;
                }
                let code = reply.code();
                assert!(code == "code_wrong" || code == "code_voided", "{code}");
                counted += 1;
                if code == "code_voided" {
                    break;
                }
            }
            app.clock.advance(Duration::from_secs(31));
            if app.resend().await.status != StatusCode::OK {
                continue 'guessing;
            }
            sent += 1;
        }
    };
    assert_eq!(counted, 25, "wrong codes checked in all");
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("Registration Authority"),
        "{}",
        refused.json()
    );
    // Days later the holder is still locked out, from any browser, until an RA releases them.
    app.clock.advance(Duration::from_secs(30 * 24 * 3600));
    app.new_browser();
    assert_eq!(app.start(EMAIL).await.code(), "throttled");

    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    let profile = rita
        .get(&format!("/api/staff/holders/{HOLDER}"))
        .await
        .json();
    let total = profile["throttles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scope"] == "subject_wrong_total")
        .cloned()
        .expect("the holder's lock-out is shown");
    assert_eq!(total["hits"], 25);
    assert!(total["label"].as_str().unwrap().contains("until released"));
    let released = rita
        .post(
            "/api/staff/throttles/release",
            json!({"target": {"holder": HOLDER}}),
        )
        .await;
    assert_eq!(released.status, StatusCode::OK);
    assert!(
        !app.audit("staff.throttle_release").await.is_empty(),
        "the release is audited"
    );
    app.new_browser();
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
    let code = app.code_for(EMAIL, sent + 1).await;
    assert_eq!(app.verify(&code).await.status, StatusCode::OK);
}
