//! Floods of refusals (issue 13, item 6): a cookie that names no journey is counted against
//! its client before it is audited, so a client spraying them is locked out; so is a start
//! the allow list refuses, against the client's starts; and a flood of refusals
//! that name no holder writes one audit row for the first of each minute and one with the
//! count of the rest, not a row a request, while the status view still counts every one.

use std::time::Duration;

use reqwest::StatusCode;
use unlock_protocol::staff::Role;
use unlock_server::audit::fold_repeats;

use crate::helpers::*;

/// `(outcome, times)` of `action`'s audit rows, oldest first.
async fn rows(app: &TestApp, action: &str) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT outcome, times FROM audit_events WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(app.db())
        .await
        .unwrap()
}

async fn fold(app: &TestApp) -> u64 {
    fold_repeats(&app.server().state.db, app.clock.now())
        .await
        .unwrap()
}

/// A start, in a new browser, with an address the allow list refuses.
async fn refused_start(app: &mut TestApp) {
    app.new_browser();
    assert_eq!(
        app.start("someone@elsewhere.example").await.code(),
        "email_domain_not_allowed"
    );
}

async fn forged_cookie_verify(app: &TestApp) -> Reply {
    read(
        app.client
            .post(app.url("/api/journey/code"))
            .header("cookie", "unlock_journey=00ff")
            .json(&serde_json::json!({"code": "123456"}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn forged_journey_cookies_are_throttled_and_a_flood_is_audited_once_a_minute() {
    let app = spawn_app_with(|c| c.throttle.client_failures_per_hour = 10).await;
    let mut answers = Vec::new();
    for _ in 0..30 {
        let reply = forged_cookie_verify(&app).await;
        answers.push((reply.status, reply.code()));
    }
    // Ten are answered "no journey"; from the eleventh the client is locked out.
    let no_journey = (StatusCode::NOT_FOUND, "no_journey".to_owned());
    let throttled = (StatusCode::TOO_MANY_REQUESTS, "throttled".to_owned());
    assert_eq!(answers[..10], vec![no_journey; 10][..]);
    assert_eq!(answers[10..], vec![throttled; 20][..]);

    // Two rows so far: the first of each kind this minute.
    let first = [
        ("no_journey".to_owned(), 1),
        ("throttled_client".to_owned(), 1),
    ];
    assert_eq!(rows(&app, "journey.verify_code").await, first);
    // The minute is not over: nothing is folded yet.
    assert_eq!(fold(&app).await, 0);
    assert_eq!(rows(&app, "journey.verify_code").await, first);

    // Two minutes on, the repeats are folded into one row each, with their count.
    app.clock.advance(Duration::from_secs(120));
    assert_eq!(fold(&app).await, 2);
    let folded = rows(&app, "journey.verify_code").await;
    assert_eq!(
        folded,
        [
            ("no_journey".to_owned(), 1),
            ("throttled_client".to_owned(), 1),
            ("no_journey".to_owned(), 9),
            ("throttled_client".to_owned(), 19),
        ]
    );
    let detail: String = sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE action = 'journey.verify_code' ORDER BY id DESC",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert!(
        detail.starts_with("19 more in the minute from "),
        "{detail}"
    );
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_repeats")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(left, 0);
    // Folding again finds nothing: each minute is folded once.
    assert_eq!(fold(&app).await, 0);
}

#[tokio::test]
async fn a_flood_of_refused_starts_is_counted_in_full_by_the_status_view() {
    let mut app = spawn_app_with(|c| c.throttle.client_starts_per_hour = 1000).await;
    for _ in 0..25 {
        refused_start(&mut app).await;
    }
    assert_eq!(
        rows(&app, "journey.start").await,
        [("domain_not_allowed".to_owned(), 1)]
    );
    app.clock.advance(Duration::from_secs(120));
    fold(&app).await;
    assert_eq!(
        rows(&app, "journey.start").await,
        [
            ("domain_not_allowed".to_owned(), 1),
            ("domain_not_allowed".to_owned(), 24)
        ]
    );
    let support = app.signed_in_staff("sue", Role::Support, None).await;
    let overview = support.get("/api/staff/overview").await.json();
    let count = overview["last_30_days"]["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["reason"] == "domain_not_allowed")
        .map(|f| f["count"].as_u64().unwrap());
    assert_eq!(count, Some(25), "{overview}");
}

#[tokio::test]
async fn starts_the_allow_list_refuses_count_against_the_client() {
    let mut app = spawn_app_with(|c| c.throttle.client_starts_per_hour = 2).await;
    for _ in 0..2 {
        refused_start(&mut app).await;
    }
    // The client's two starts an hour are spent: an allowed address is refused too.
    app.new_browser();
    let reply = app.start(EMAIL).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "throttled".into())
    );
    // The allow list's answer still comes first, and its flood is audited once a minute.
    for _ in 0..5 {
        refused_start(&mut app).await;
    }
    assert_eq!(
        rows(&app, "journey.start").await,
        [
            ("domain_not_allowed".to_owned(), 1),
            ("throttled_client".to_owned(), 1)
        ]
    );
}
