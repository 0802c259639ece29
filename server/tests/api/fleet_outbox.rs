//! The outbox of a fleet: two real `unlock-server` processes on one database, each running
//! its worker, 500 queued emails, and one instance killed (SIGKILL) in the middle of its
//! sends. Claims are taken `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite: under the write
//! lock), a dead instance's claims are taken over once their lease runs out, and every
//! email reaches the real SMTP server exactly once.
//!
//! The killed instance talks to the SMTP server through a relay the test can freeze (what
//! the instance sends stops reaching the server; the server's replies still come back), so
//! the kill lands while sends are unfinished: those are the messages a crash leaves claimed
//! and unsent. (A crash in the instant between the server's "250 accepted" and the worker
//! recording it would still repeat that message once: the outbox is at-least-once in that
//! window, as any sender over SMTP is. Outcomes are recorded as each send ends to keep it
//! to the sends in flight.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use unlock_server::config::{Config, Secret};
use unlock_server::db::{self, DatabaseUrl, Db};
use unlock_server::outbox::{Composed, seal};
use unlock_server::secrets::Keys;

use crate::binary::KillOnDrop;
use crate::helpers::*;

const MESSAGES: usize = 500;
const BINARY: &str = env!("CARGO_BIN_EXE_unlock-server");

/// Forwards TCP to `target`; once frozen, what clients send is dropped (replies still flow).
async fn freezable_relay(target: SocketAddr, frozen: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let frozen = frozen.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(target).await else {
                    return;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let never = Arc::new(AtomicBool::new(false));
                tokio::join!(
                    pipe(client_read, server_write, frozen),
                    pipe(server_read, client_write, never)
                );
            });
        }
    });
    addr
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buffer = [0u8; 8192];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        if !frozen.load(Ordering::SeqCst) && to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
}

fn serve(dir: &Path, database: &DatabaseUrl, instance: &str, smtp_url: &str) -> KillOnDrop {
    let port = free_port();
    let child = Command::new(BINARY)
        .arg("serve")
        .current_dir(dir)
        .env("UNLOCK_LISTEN", format!("127.0.0.1:{port}"))
        .env("UNLOCK_DATABASE_URL", database.expose())
        .env("UNLOCK_DATA_DIR", dir)
        .env("UNLOCK_SECRET_KEY", SECRET_KEY)
        .env("UNLOCK_MAIL__SMTP_URL", smtp_url)
        .env("UNLOCK_OUTBOX__INSTANCE_ID", instance)
        .env("UNLOCK_OUTBOX__LEASE_SECONDS", "3")
        .env("UNLOCK_OUTBOX__POLL_INTERVAL_MS", "50")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{instance}.log"))).unwrap())
        .spawn()
        .expect("start unlock-server");
    KillOnDrop(child)
}

/// Queues `MESSAGES` emails, one to each of `r0@…`, `r1@…`, …
async fn queue(database: &DatabaseUrl) {
    let config = Config {
        secret_key: Some(Secret::new(SECRET_KEY)),
        ..Config::default()
    };
    let keys = Keys::load(&config).unwrap();
    let db = Db::connect(database).await.unwrap();
    db.migrate().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    for n in 0..MESSAGES {
        let recipient = format!("r{n}@trust.example");
        let message = Composed {
            subject: format!("Message {n}"),
            text: format!("Message number {n}."),
            html: format!("<p>Message number {n}.</p>"),
        };
        let kind = unlock_server::db::states::OutboxKind::CardUnlocked;
        let sealed = seal(&keys, kind, &recipient, &message).unwrap();
        let new = db::outbox::NewMessage {
            kind,
            recipient: &recipient,
            journey_id: None,
            holder_id: None,
            sealed: &sealed,
            expires_at: None,
        };
        db::outbox::enqueue(&mut tx, &new, 0).await.unwrap();
    }
    tx.commit().await.unwrap();
    db.close().await;
}

/// Messages delivered, per recipient.
fn delivered(smtp: &SmtpSink) -> BTreeMap<String, usize> {
    let mut counted = BTreeMap::new();
    for raw in smtp.messages() {
        *counted.entry(to_of(&raw)).or_insert(0) += 1;
    }
    counted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_emails_arrive_exactly_once_when_one_of_two_instances_dies_mid_run() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path());
    let database = fresh_database(dir.path());
    queue(&database).await;

    let frozen = Arc::new(AtomicBool::new(false));
    let sink: SocketAddr = format!("127.0.0.1:{}", smtp.port).parse().unwrap();
    let relay = freezable_relay(sink, frozen.clone()).await;
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let mut doomed = serve(&a_dir, &database, "instance-a", &format!("smtp://{relay}"));
    let survivor = serve(&b_dir, &database, "instance-b", &smtp.url());

    // Mid-run: a good share delivered, then the doomed instance's sends stall and it dies.
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(&smtp).len() < MESSAGES / 5 {
        assert!(Instant::now() < deadline, "the instances sent nothing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    frozen.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    doomed.0.kill().unwrap();
    doomed.0.wait().unwrap();
    let at_kill = delivered(&smtp).len();
    assert!(at_kill < MESSAGES, "the kill came after the run had ended");

    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered(&smtp).len() < MESSAGES {
        assert!(
            Instant::now() < deadline,
            "only {} of {MESSAGES} arrived",
            delivered(&smtp).len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything sent twice would arrive just after the last first copy.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(survivor);

    let counted = delivered(&smtp);
    assert_eq!(counted.len(), MESSAGES);
    let twice: Vec<_> = counted.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");

    // Both instances did part of the work, and the survivor finished the dead one's claims.
    let db = Db::connect(&database).await.unwrap();
    let by_instance: Vec<(String, i64)> = sqlx::query_as(
        "SELECT instance, COUNT(*) FROM outbox_attempts WHERE outcome = 'sent'
         GROUP BY instance ORDER BY instance",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(by_instance.len(), 2, "{by_instance:?}");
    assert_eq!(
        by_instance.iter().map(|(_, n)| n).sum::<i64>(),
        i64::try_from(MESSAGES).unwrap()
    );
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE state != 'sent'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    db.close().await;
    println!("at the kill {at_kill} of {MESSAGES} had arrived; sent by {by_instance:?}");
}
