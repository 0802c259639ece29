//! Two server instances on one database, as a fleet runs behind a load balancer: the rules
//! hold when the requests that race for them land on different instances at once. On
//! PostgreSQL each instance's writes are SERIALIZABLE transactions; on SQLite the two
//! instances' writers take the file's write lock in turn. The suite runs these on both.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use unlock_protocol::staff::Role;

use crate::helpers::*;

/// Outcomes of an audited action, counted.
async fn outcomes(app: &TestApp, action: &str) -> std::collections::BTreeMap<String, usize> {
    let mut counted = std::collections::BTreeMap::new();
    for outcome in app.audit(action).await {
        *counted.entry(outcome).or_insert(0) += 1;
    }
    counted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_wrong_codes_at_once_on_two_instances_count_as_three_and_void_the_code() {
    // Enough client allowance that only the code's own limit can stop the guesses.
    let app = spawn_app_with(|c| c.throttle.client_failures_per_hour = 100).await;
    let second = app.second_instance().await;
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
    let code = app.code_for(EMAIL, 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    let guesses = (0..20).map(|n| {
        let (app, second) = (&app, &second);
        async move {
            let body = json!({ "code": wrong });
            if n % 2 == 0 {
                app.post_json("/api/journey/code", body).await
            } else {
                app.post_json_to(second, "/api/journey/code", body).await
            }
        }
    });
    let replies = join_all(guesses).await;

    let codes: Vec<String> = replies.iter().map(Reply::code).collect();
    assert_eq!(
        codes.iter().filter(|c| *c == "code_wrong").count(),
        2,
        "{codes:?}"
    );
    assert_eq!(codes.len(), 20);
    assert!(
        codes
            .iter()
            .all(|c| c == "code_wrong" || c == "code_voided"),
        "{codes:?}"
    );
    let counted = outcomes(&app, "journey.verify_code").await;
    assert_eq!(counted.get("wrong_code"), Some(&2), "{counted:?}");
    assert_eq!(counted.get("wrong_code_voided"), Some(&1), "{counted:?}");
    let (tries, state): (i64, String) =
        sqlx::query_as("SELECT wrong_tries, state FROM one_time_codes")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!((tries, state.as_str()), (3, "voided"));

    // The right code afterwards, on either instance, is refused.
    assert_refused(
        &app.verify(&code).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "code_voided",
    );
    let on_second = app
        .post_json_to(&second, "/api/journey/code", json!({ "code": code }))
        .await;
    assert_refused(&on_second, StatusCode::UNPROCESSABLE_ENTITY, "code_voided");
    second.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn starts_for_one_holder_at_once_on_two_instances_never_pass_the_hourly_code_cap() {
    let app = spawn_app().await;
    let second = app.second_instance().await;
    // Each start from a browser of its own, as many people typing one address would.
    let starts = (0..16).map(|n| {
        let (app, second) = (&app, &second);
        async move {
            let browser = reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap();
            let server = if n % 2 == 0 { app.server() } else { second };
            read(
                browser
                    .post(format!("http://{}/api/journeys", server.addr))
                    .json(&json!({ "email": EMAIL }))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    });
    let replies = join_all(starts).await;
    let issued = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let capped = replies
        .iter()
        .filter(|r| r.code() == "too_many_codes")
        .count();
    assert_eq!(
        (issued, capped),
        (5, 11),
        "{:?}",
        replies.iter().map(Reply::code).collect::<Vec<_>>()
    );
    let (codes,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM one_time_codes")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(codes, 5);
    second.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_authenticator_code_sent_to_both_instances_at_once_is_taken_once() {
    let app = spawn_app().await;
    let second = app.second_instance().await;
    let sam = app.add_staff("sam", Role::Support, None).await;
    let begun = sam.sign_in_with(&sam.one_time_password).await;
    assert_eq!(begun.json(), json!({"next": "second_factor"}));
    let sam_on_second = sam.on(&second);

    let at = app.clock.now();
    let (first, other) = tokio::join!(sam.code(at), sam_on_second.code(at));

    let accepted = [&first, &other]
        .iter()
        .filter(|reply| reply.status == StatusCode::OK)
        .count();
    assert_eq!(accepted, 1, "{} / {}", first.json(), other.json());
    let refused = if first.status == StatusCode::OK {
        &other
    } else {
        &first
    };
    assert!(refused.status.is_client_error(), "{}", refused.json());
    let counted = outcomes(&app, "staff.sign_in_code").await;
    assert_eq!(counted.get("code_ok"), Some(&1), "{counted:?}");
    second.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cryptograms_asked_for_at_once_on_two_instances_never_pass_the_cap() {
    let app = spawn_app().await;
    let second = app.second_instance().await;
    app.verified_journey().await;
    assert_eq!(
        app.present_card(CARD, PROFILE).await.stage(),
        "card_accepted"
    );

    let asks = (0..16).map(|n| {
        let (app, second) = (&app, &second);
        async move {
            let body = cryptogram_request(&fresh_challenge());
            if n % 2 == 0 {
                app.post_json(RELEASE, body).await
            } else {
                app.post_json_to(second, RELEASE, body).await
            }
        }
    });
    let replies = join_all(asks).await;

    let released = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::OK)
        .count();
    let cap = usize::try_from(app.config.journey.cryptograms_per_journey).unwrap();
    assert_eq!(
        released,
        cap,
        "{:?}",
        replies.iter().map(Reply::code).collect::<Vec<_>>()
    );
    let (count,): (i64,) = sqlx::query_as("SELECT cryptograms_released FROM journeys")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(count, i64::try_from(cap).unwrap());
    let counted = outcomes(&app, "journey.cryptogram").await;
    assert_eq!(counted.get("released"), Some(&cap), "{counted:?}");
    second.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_address_added_on_two_instances_at_once_is_added_once() {
    let app = spawn_app().await;
    let second = app.second_instance().await;
    add_holder(app.server(), "555566667777", "jo@oldtrust.example", None).await;
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    let rita_on_second = rita.on(&second);
    let path = "/api/staff/holders/555566667777/emails";
    let body = json!({ "email": "jo.bloggs@trust.example" });

    let (first, other) = tokio::join!(
        rita.post(path, body.clone()),
        rita_on_second.post(path, body.clone())
    );

    let mut statuses = [first.status, other.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        first.json(),
        other.json()
    );
    let refused = if first.status == StatusCode::OK {
        &other
    } else {
        &first
    };
    assert_refused(refused, StatusCode::CONFLICT, "email_taken");
    let (count,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM holder_emails WHERE email = 'jo.bloggs@trust.example'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(count, 1);
    second.stop().await.unwrap();
}
