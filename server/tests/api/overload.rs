//! Overload answers 503 in plain words at once, instead of queueing without end: requests
//! past the concurrency limit, requests past the timeout, and SQLite writes past the
//! writer's queue.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// A staff sign-in for an unknown name: with a heavy Argon2 setting it takes a while.
fn slow_sign_in(app: &TestApp, client: &reqwest::Client) -> reqwest::RequestBuilder {
    client
        .post(app.url("/api/staff/sign-in"))
        .json(&json!({"username": "nobody", "password": "a wrong password here"}))
}

#[tokio::test]
async fn requests_past_the_concurrency_limit_are_turned_away_at_once() {
    let app = spawn_app_with(|c| {
        c.http.max_concurrent_requests = 1;
        c.staff.argon2_memory_kib = 16 * 1024;
        c.staff.argon2_iterations = 8;
    })
    .await;
    let client = reqwest::Client::new();
    let slow = tokio::spawn(slow_sign_in(&app, &client).send());
    tokio::time::sleep(Duration::from_millis(30)).await;
    let shed = read(client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(
        (shed.status, shed.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into())
    );
    assert!(
        shed.json()["message"]
            .as_str()
            .unwrap()
            .contains("try again")
    );
    let slow = read(slow.await.unwrap().unwrap()).await;
    assert_eq!(slow.code(), "sign_in_failed");
    // Once it is answered there is room again.
    let ok = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_past_the_timeout_is_stopped_with_a_plain_answer() {
    let app = spawn_app_with(|c| {
        c.http.request_timeout_ms = 20;
        c.staff.argon2_memory_kib = 16 * 1024;
        c.staff.argon2_iterations = 8;
    })
    .await;
    let client = reqwest::Client::new();
    let stopped = read(slow_sign_in(&app, &client).send().await.unwrap()).await;
    assert_eq!(
        (stopped.status, stopped.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into())
    );
    assert!(
        stopped.json()["message"]
            .as_str()
            .unwrap()
            .contains("took too long"),
        "{}",
        stopped.json()
    );
    assert_eq!(
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn writes_past_the_writer_queue_are_refused_not_queued() {
    if engine() != unlock_server::db::Engine::Sqlite {
        return; // PostgreSQL has no writer queue; its pool's timeout bounds the wait.
    }
    let app = spawn_app_with(|c| {
        c.database_write_queue = 1;
        // One test client: the per-address start limit must not be what stops it.
        c.throttle.client_starts_per_hour = 10_000;
    })
    .await;
    let client = reqwest::Client::new();
    let starts = (0..60).map(|n| {
        client
            .post(app.url("/api/journeys"))
            .json(&json!({"email": format!("someone{n}@trust.example")}))
            .send()
    });
    let answers = futures_util::future::join_all(starts).await;
    let mut statuses = Vec::new();
    for answer in answers {
        let reply = read(answer.unwrap()).await;
        statuses.push((reply.status.as_u16(), reply.code()));
    }
    assert!(
        statuses
            .iter()
            .all(|s| s.0 == 200 || *s == (503, "unavailable".to_owned())),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|s| s.0 == 503),
        "nothing was refused: {statuses:?}"
    );
    assert!(statuses.iter().any(|s| s.0 == 200), "{statuses:?}");
}
