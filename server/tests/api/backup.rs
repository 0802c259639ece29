//! Backups as the operations guide (`docs/operations.md`, "Backups and restore") takes and
//! restores them, on the suite's engine: `sqlite3 … VACUUM INTO` of the live file, or
//! `pg_dump --format=custom` of the live database and `pg_restore` into a new one, taken
//! while journeys are starting. A server on the restored database is ready, serves every
//! journey the backup holds (one carried on to an unlocked card), knows none of those
//! started after it, and sends the emails the backup held queued.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use unlock_server::Server;
use unlock_server::db::{DatabaseUrl, Engine};

use crate::helpers::*;

/// Journeys started before the backup, during it, and after it.
const BEFORE: usize = 8;
const DURING: usize = 40;
const AFTER: usize = 4;

/// The `n`th extra holder: an id, an address and an active card of their own.
fn holder(n: usize) -> (String, String) {
    (format!("9{n:011}"), format!("holder{n}@{DOMAIN}"))
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("HTTP client")
}

/// Starts a journey for `email` from `browser` at `server`.
async fn start_at(server: &Server, browser: &reqwest::Client, email: &str) -> StatusCode {
    browser
        .post(format!("http://{}/api/journeys", server.addr))
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await
        .expect("send")
        .status()
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("run the backup tool");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Takes the backup as the guide says, from outside the server, while it runs.
fn back_up(database: &DatabaseUrl, dir: &Path) -> std::path::PathBuf {
    match engine() {
        Engine::Sqlite => {
            let live = database
                .expose()
                .strip_prefix("sqlite://")
                .expect("a SQLite URL")
                .to_owned();
            let copy = dir.join("unlock-backup.db");
            run(Command::new("sqlite3")
                .args(["-readonly", "-cmd", ".timeout 10000"])
                .arg(&live)
                .arg(format!("VACUUM INTO '{}'", copy.display())));
            assert_eq!(
                run(Command::new("sqlite3")
                    .arg(&copy)
                    .arg("PRAGMA integrity_check")),
                "ok"
            );
            copy
        }
        Engine::Postgres => {
            let cluster = unlock_testkit::postgres::shared();
            let dump = dir.join("unlock-backup.dump");
            run(Command::new(cluster.bin().join("pg_dump"))
                .arg("--format=custom")
                .arg(format!("--file={}", dump.display()))
                .arg(format!("--dbname={}", database.expose())));
            run(Command::new(cluster.bin().join("pg_restore"))
                .arg("--list")
                .arg(&dump));
            dump
        }
    }
}

/// Restores the backup into a new database, as the guide says; its URL.
fn restore(backup: &Path, dir: &Path) -> DatabaseUrl {
    let url = match engine() {
        Engine::Sqlite => {
            let restored = dir.join("unlock.db");
            std::fs::copy(backup, &restored).expect("copy the backup into place");
            format!("sqlite://{}", restored.display())
        }
        Engine::Postgres => {
            let cluster = unlock_testkit::postgres::shared();
            let url = cluster.create_database();
            run(Command::new(cluster.bin().join("pg_restore"))
                .args(["--no-owner", "--exit-on-error"])
                .arg(format!("--role={}", cluster.user()))
                .arg(format!("--dbname={url}"))
                .arg(backup));
            url
        }
    };
    DatabaseUrl::parse(&url).expect("the restored database's URL")
}

/// Waits until the restored server's outbox has nothing left to send, moving the manual
/// clock so that retries scheduled by the old server fall due.
async fn drain_outbox(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state NOT IN ('sent', 'failed')")
                .fetch_one(app.db())
                .await
                .unwrap();
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{left} messages never left the restored outbox"
        );
        app.clock.advance(Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_mid_load_restores_to_a_ready_server_serving_the_journeys_it_held() {
    // No relay answers the old server: every code email is still queued in the backup.
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("smtp://127.0.0.1:{}", free_port());
    // Every browser is at one address: the journeys the backup lost (each a cookie that names
    // nothing on the restored server) must not lock it out.
    let mut app = spawn_app_on(dir, Some(nowhere), |c| {
        c.throttle.client_starts_per_hour = 1_000;
        c.throttle.client_failures_per_hour = 1_000;
    })
    .await;
    let server = app.server();
    let expires = START_OF_TEST + 86_400_000 * 365;
    let mut emails = vec![EMAIL.to_owned()];
    for n in 1..BEFORE + DURING + AFTER {
        let (id, email) = holder(n);
        add_holder(server, &id, &email, Some(("active", expires, PROFILE))).await;
        emails.push(email);
    }
    let browsers: Vec<reqwest::Client> = emails.iter().map(|_| browser()).collect();
    let start = |range: std::ops::Range<usize>| {
        let (browsers, emails) = (&browsers, &emails);
        join_all(range.map(move |n| async move {
            // Spread over the backup's run rather than all at its first instant.
            tokio::time::sleep(Duration::from_millis(8 * (n % DURING) as u64)).await;
            start_at(server, &browsers[n], &emails[n]).await
        }))
    };

    for status in start(0..BEFORE).await {
        assert_eq!(status, StatusCode::OK);
    }
    let database = app.config.database_url.clone();
    let backup_dir = app.dir.path().to_owned();
    let backup = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(100));
        back_up(&database, &backup_dir)
    });
    let during = start(BEFORE..BEFORE + DURING).await;
    let backup = backup.await.unwrap();
    assert!(during.iter().all(|s| *s == StatusCode::OK), "{during:?}");
    for status in start(BEFORE + DURING..emails.len()).await {
        assert_eq!(status, StatusCode::OK);
    }
    let (config, clock) = (app.config.clone(), app.clock.clone());
    app.stop().await;

    // A new server on the restored database, with the same files to keep (secret key) and
    // the same outbox instance id, now with a relay that answers.
    let restored_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(restored_dir.path());
    let mut config = config;
    config.database_url = restore(&backup, restored_dir.path());
    config.mail.smtp_url = Some(unlock_server::config::Secret::new(smtp.url()));
    let restored = Server::start(config.clone(), clock.clone())
        .await
        .expect("start on the restored database");
    let mut app = TestApp {
        server: Some(restored),
        config,
        clock,
        client: browsers[0].clone(),
        smtp: Some(smtp),
        dir: restored_dir,
    };
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.json());

    drain_outbox(&app).await;
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM journeys")
        .fetch_one(app.db())
        .await
        .unwrap();
    let mut served = Vec::new();
    for (n, email) in emails.iter().enumerate() {
        app.client = browsers[n].clone();
        let sent = app.code_emails(email);
        assert!(sent.len() <= 1, "{email} got {} code emails", sent.len());
        let reply = match sent.first() {
            Some(raw) => app.verify(&code_in(raw)).await,
            None => app.verify("000000").await,
        };
        if sent.is_empty() {
            assert_refused(&reply, StatusCode::NOT_FOUND, "no_journey");
        } else {
            assert_eq!(reply.stage(), "verified", "{email}: {:?}", reply.json());
            served.push(n);
        }
    }
    let during_held = served
        .iter()
        .filter(|n| (BEFORE..BEFORE + DURING).contains(*n));
    println!(
        "the backup held {held} journeys: {BEFORE} started before it, {} of {DURING} started \
         while it ran, none of {AFTER} started after",
        during_held.count()
    );
    assert_eq!(served.len(), usize::try_from(held).unwrap());
    assert!((0..BEFORE).all(|n| served.contains(&n)), "{served:?}");
    assert!(served.iter().all(|n| *n < BEFORE + DURING), "{served:?}");

    // The first holder carries on to an unlocked card on the restored service.
    app.client = browsers[0].clone();
    app.unlock_card(CARD).await;
    app.smtp()
        .wait_for_subject(EMAIL, "Your smartcard was unlocked")
        .await;
}
