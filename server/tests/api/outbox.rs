use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::*;

/// Outbox rows as `(state, attempts)`.
async fn outbox_states(app: &TestApp) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT state, attempts FROM outbox ORDER BY id")
        .fetch_all(app.db())
        .await
        .unwrap()
}

async fn attempt_outcomes(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT outcome FROM outbox_attempts ORDER BY id")
        .fetch_all(app.db())
        .await
        .unwrap()
}

/// Waits (moving the manual clock so retries fall due) until `done` holds.
async fn wait_for_outbox(app: &TestApp, done: impl Fn(&[(String, i64)]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states = outbox_states(app).await;
        if done(&states) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "outbox never reached the expected state: {states:?}"
        );
        app.clock.advance(Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn smtp_down_gives_the_same_answer_and_the_email_goes_once_smtp_is_back() {
    let normal = spawn_app().await;
    let expected = normal.start(EMAIL).await;

    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_on(dir, Some(format!("smtp://127.0.0.1:{port}")), |_| {}).await;
    let answer = app.start(EMAIL).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, expected.body);

    wait_for_outbox(&app, |rows| {
        rows.first()
            .is_some_and(|(state, attempts)| state == "queued" && *attempts >= 2)
    })
    .await;
    let error: String = sqlx::query_scalar("SELECT last_error FROM outbox")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert!(
        error.to_lowercase().contains("connect") || error.contains("refused"),
        "{error}"
    );

    let smtp = SmtpSink::start_on(app.dir.path(), port);
    wait_for_outbox(&app, |rows| {
        rows.first().is_some_and(|(state, _)| state == "sent")
    })
    .await;
    let code = code_in(&smtp.wait_for(EMAIL, 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages_to(EMAIL).len(), 1, "sent exactly once");
    let outcomes = attempt_outcomes(&app).await;
    assert_eq!(outcomes.last().map(String::as_str), Some("sent"));
    assert!(
        outcomes[..outcomes.len() - 1].iter().all(|o| o == "retry"),
        "{outcomes:?}"
    );
    assert_eq!(app.verify(&code).await.stage(), "verified");
}

#[tokio::test]
async fn a_queued_email_survives_a_restart_and_is_sent_once() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_app_on(dir, Some(format!("smtp://127.0.0.1:{port}")), |_| {}).await;
    app.start(EMAIL).await;
    wait_for_outbox(&app, |rows| {
        rows.first().is_some_and(|(_, attempts)| *attempts >= 1)
    })
    .await;
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT sealed_message FROM outbox")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&sealed).contains("security code"),
        "queued mail is sealed at rest"
    );

    app.stop().await;
    let smtp = SmtpSink::start_on(app.dir.path(), port);
    app.restart().await;
    wait_for_outbox(&app, |rows| {
        rows.first().is_some_and(|(state, _)| state == "sent")
    })
    .await;
    let code = code_in(&smtp.wait_for(EMAIL, 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages_to(EMAIL).len(), 1);
    assert_eq!(app.verify(&code).await.stage(), "verified");
}

#[tokio::test]
async fn an_email_that_keeps_failing_is_marked_failed_for_good() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_on(dir, Some(format!("smtp://127.0.0.1:{port}")), |c| {
        c.outbox.max_attempts = 3
    })
    .await;
    app.start(EMAIL).await;
    wait_for_outbox(&app, |rows| {
        rows.first().is_some_and(|(state, _)| state == "failed")
    })
    .await;
    assert_eq!(outbox_states(&app).await, [("failed".to_owned(), 3)]);
    assert_eq!(attempt_outcomes(&app).await, ["retry", "retry", "failed"]);
    let sealed: Option<Vec<u8>> = sqlx::query_scalar("SELECT sealed_message FROM outbox")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(sealed, None, "a finished message keeps no body");
}

#[tokio::test]
async fn a_code_email_is_not_sent_after_the_code_has_expired() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_app_on(dir, Some(format!("smtp://127.0.0.1:{port}")), |c| {
        c.outbox.retry_base_ms = 60_000
    })
    .await;
    app.start(EMAIL).await;
    wait_for_outbox(&app, |rows| {
        rows.first().is_some_and(|(_, attempts)| *attempts >= 1)
    })
    .await;
    app.stop().await;
    app.clock.advance(Duration::from_secs(16 * 60));
    let smtp = SmtpSink::start_on(app.dir.path(), port);
    app.restart().await;
    wait_for_outbox(&app, |rows| {
        rows.first().is_some_and(|(state, _)| state == "failed")
    })
    .await;
    let error: String = sqlx::query_scalar("SELECT last_error FROM outbox")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(error, "expired before it could be sent");
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn a_new_code_withdraws_the_earlier_code_email_still_queued() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_on(dir, Some(format!("smtp://127.0.0.1:{port}")), |c| {
        c.outbox.retry_base_ms = 60_000
    })
    .await;
    app.start(EMAIL).await;
    wait_for_outbox(&app, |rows| {
        rows.first().is_some_and(|(_, attempts)| *attempts >= 1)
    })
    .await;
    let smtp = SmtpSink::start_on(app.dir.path(), port);
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(app.resend().await.status, StatusCode::OK);
    let first: (String, String) =
        sqlx::query_as("SELECT state, last_error FROM outbox ORDER BY id LIMIT 1")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(
        first,
        ("failed".to_owned(), "superseded by a newer code".to_owned())
    );

    let code = code_in(&smtp.wait_for(EMAIL, 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        smtp.messages_to(EMAIL).len(),
        1,
        "only the newer code is sent"
    );
    assert_eq!(app.verify(&code).await.stage(), "verified");
}
