//! Faults, with real parts (issue 13, item 11): the server stopped and started again between
//! every pair of a journey's steps, and PostgreSQL stopped and started again while journeys
//! start — requests fail with a plain 503 meanwhile, never a 500, and succeed again once the
//! database is back, without restarting the server.

use std::time::Duration;

use reqwest::StatusCode;
use unlock_server::db::DatabaseUrl;
use unlock_testkit::postgres::Durability;

use crate::helpers::*;

#[tokio::test]
async fn a_journey_carries_on_across_a_server_restart_between_every_pair_of_steps() {
    let mut app = spawn_app().await;
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
    app.restart().await;
    // The code email was queued with the journey; the restarted outbox delivers it.
    let code = app.code_for(EMAIL, 1).await;
    app.restart().await;
    assert_eq!(app.journey().await.stage(), "awaiting_code");
    app.restart().await;
    assert_eq!(app.verify(&code).await.stage(), "verified");
    app.restart().await;
    assert_eq!(
        app.present_card(CARD, PROFILE).await.stage(),
        "card_accepted"
    );
    app.restart().await;
    let challenge = fresh_challenge();
    assert_eq!(app.cryptogram(&challenge).await.status, StatusCode::OK);
    app.restart().await;
    assert_eq!(
        app.receipt(&receipt_for(CARD, &challenge)).await.stage(),
        "unlocked"
    );
    app.restart().await;
    assert_eq!(app.journey().await.stage(), "unlocked");
    // Each email once: the code, the unlock-started notice and the unlocked notice.
    app.smtp().wait_for(EMAIL, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.smtp().messages_to(EMAIL).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_answers_503_then_recovers_without_a_server_restart() {
    // A cluster of this test's own, so stopping it disturbs no other test.
    let cluster = unlock_testkit::postgres::start(Durability::Off).expect("start PostgreSQL");
    let mut app = spawn_app_with(|c| c.throttle.client_starts_per_hour = 100_000).await;
    app.stop().await;
    app.config.database_url = DatabaseUrl::parse(&cluster.create_database()).unwrap();
    app.restart().await;
    seed(app.server()).await;
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
    let code = app.code_for(EMAIL, 1).await;
    let before = app.client.clone();

    // Journeys keep starting from other browsers while the database goes away and back.
    let load = {
        let url = app.url("/api/journeys");
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let until = tokio::time::Instant::now() + Duration::from_secs(15);
            while tokio::time::Instant::now() < until {
                // Addresses on no profile: journeys like any other, and no holder's caps.
                let email = format!("someone.{}@trust.example", answers.len());
                let reply = reqwest::Client::new()
                    .post(&url)
                    .json(&serde_json::json!({ "email": email }))
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await;
                answers.push(match reply {
                    Ok(reply) => {
                        let status = reply.status();
                        let body: serde_json::Value = reply.json().await.unwrap_or_default();
                        (status, body["code"].as_str().unwrap_or_default().to_owned())
                    }
                    Err(error) => panic!("no answer at all: {error}"),
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped = tokio::task::spawn_blocking(move || {
        cluster.stop().expect("stop PostgreSQL");
        std::thread::sleep(Duration::from_secs(3));
        cluster
    })
    .await
    .unwrap();
    let down = app.get("/readyz").await;
    let cluster = tokio::task::spawn_blocking(move || {
        stopped.start_again().expect("start PostgreSQL again");
        stopped
    })
    .await
    .unwrap();
    let answers = load.await.unwrap();

    // While it was down: a plain 503, never a 500; before and after: journeys started.
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        down.json()
    );
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != StatusCode::OK)
        .collect();
    assert!(
        refused
            .iter()
            .all(|(status, code)| *status == StatusCode::SERVICE_UNAVAILABLE
                && code == "unavailable"),
        "{refused:?}"
    );
    assert!(!refused.is_empty(), "the database was never missed");
    assert_eq!(answers.first().map(|a| a.0), Some(StatusCode::OK));
    assert_eq!(
        answers.last().map(|a| a.0),
        Some(StatusCode::OK),
        "{answers:?}"
    );

    // The same server, never restarted: ready again, and the journey from before carries on.
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    app.client = before;
    assert_eq!(app.verify(&code).await.stage(), "verified");
    app.stop().await;
    drop(cluster);
}

/// A write stopped part-way (its request ran out of time, or its client went) leaves
/// nothing behind: not in the database, and not in the connection, whose next write must
/// not commit what the stopped one had begun.
#[tokio::test]
async fn a_write_stopped_part_way_leaves_nothing_for_the_next_write_to_commit() {
    if engine() != unlock_server::db::Engine::Postgres {
        // SQLite's writer runs each write to its end on a task of its own, whatever becomes
        // of the request that asked for it: there is no write to stop part-way.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path());
    // One connection, so the next write gets the one the stopped write had.
    let db = unlock_server::db::Db::connect_with(&url, 1, 16)
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let stopped = tokio::time::timeout(
        Duration::from_millis(300),
        db.write(|conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO allowed_domains (domain, added_at, added_by) VALUES ('half.example', 1, 't')")
                    .execute(&mut *conn)
                    .await?;
                std::future::pending::<()>().await;
                Ok(())
            })
        }),
    )
    .await;
    assert!(stopped.is_err(), "the write never finishes");
    db.write(|conn| {
        Box::pin(async move {
            sqlx::query("INSERT INTO allowed_domains (domain, added_at, added_by) VALUES ('whole.example', 2, 't')")
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    })
    .await
    .unwrap();
    let domains: Vec<String> = sqlx::query_scalar("SELECT domain FROM allowed_domains")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(domains, ["whole.example"]);
}
