//! The baselines: a bare axum server that commits, per request, one durable transaction
//! writing the rows an endpoint's own transaction writes, in the server's own schema. They
//! are the floor each endpoint is compared with: what the endpoint's writes cost as one
//! durable commit on this disk, with this engine, before any of its reads, checks, locks and
//! round trips.
//!
//! - `POST /baseline/start`: a journey, its code, the code's email in the outbox (a sealed
//!   message as large as the server's) and the audit event, as start-journey writes them.
//! - `POST /baseline/verify`: the journey (found by its token's hash; the baseline's token is
//!   the holder's address) marked verified, its code used up, and the audit event, as
//!   verify-code writes them.
//!
//! Neither writes a holder: the baseline's journeys name none, so it skips the key check on
//! `holders` that the server pays. SQLite: the server's settings (WAL, `synchronous=FULL`,
//! checkpoints in the background) and one connection, as its writer has, but no group
//! commit. PostgreSQL: a pool as large as the server's default `database_max_connections`,
//! with the cluster's settings, which neither overrides (`synchronous_commit=on`), at the
//! default isolation level.
//!
//! It runs as its own process (the release xtask binary), like the server under test, so
//! both compete with the load generator for the CPUs in the same way.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{PgPool, SqlitePool};

use unlock_server::db::states::OutboxKind;
use unlock_server::db::{DatabaseUrl, Engine};

use super::scratch::Process;

/// Where the baseline listens and keeps its database (`sqlite://…` or `postgres://…`).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    #[arg(long)]
    pub listen: SocketAddr,
    #[arg(long)]
    pub database_url: String,
}

/// Starts the baseline as a child process of this (release) binary and waits until it answers.
pub fn spawn(dir: &Path, addr: SocketAddr, database_url: &str) -> anyhow::Result<Process> {
    let exe = std::env::current_exe().context("find the xtask binary")?;
    let mut command = Command::new(exe);
    command.args([
        "baseline-server",
        "--listen",
        &addr.to_string(),
        "--database-url",
        database_url,
    ]);
    let mut process = Process::spawn("baseline server", &mut command, &dir.join("baseline.log"))?;
    process.wait_ready(addr, "/readyz", Duration::from_secs(30))?;
    Ok(process)
}

/// `xtask baseline-server`: serves until killed.
pub fn serve(args: &ServerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    let app = match DatabaseUrl::parse(&args.database_url)?.engine() {
        Engine::Sqlite => runtime.block_on(sqlite_app(&args.database_url))?,
        Engine::Postgres => runtime.block_on(postgres_app(&args.database_url))?,
    };
    runtime.block_on(async {
        let app = app.route("/readyz", get(|| async { "ready" }));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listen on {}", args.listen))?;
        axum::serve(listener, app)
            .await
            .context("serve the baseline")
    })
}

async fn sqlite_app(url: &str) -> anyhow::Result<Router> {
    let db = migrated(url).await?;
    // Exactly the server's settings: WAL, synchronous=FULL, busy timeout; one writer; the log
    // checkpointed in the background every `CHECKPOINT_INTERVAL`, never inside a commit.
    let options =
        unlock_server::db::sqlite_baseline_options(url)?.pragma("wal_autocheckpoint", "0");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .context("open the baseline database")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let _checkpoints = db.checkpoint_in_background(unlock_server::CHECKPOINT_INTERVAL, stopped);
    db.close().await;
    // The baseline serves until killed: the checkpoints run as long.
    Box::leak(Box::new(stop));
    Ok(Router::new()
        .route("/baseline/start", post(on_sqlite::start))
        .route("/baseline/verify", post(on_sqlite::verify))
        .with_state(App::new(pool)?))
}

async fn postgres_app(url: &str) -> anyhow::Result<Router> {
    migrated(url).await?.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(unlock_server::config::Config::default().database_max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // No test on the way out of the pool, as the server skips it under load.
        .test_before_acquire(false)
        .connect(url)
        .await
        .context("open the baseline database")?;
    Ok(Router::new()
        .route("/baseline/start", post(on_postgres::start))
        .route("/baseline/verify", post(on_postgres::verify))
        .with_state(App::new(pool)?))
}

/// The server's own handle on the database, which the server's migrations have given its
/// schema.
async fn migrated(url: &str) -> anyhow::Result<unlock_server::db::Db> {
    let db = unlock_server::db::Db::connect(&DatabaseUrl::parse(url)?).await?;
    db.migrate().await?;
    Ok(db)
}

/// A pool, and a sealed code email as large as the server's.
#[derive(Clone)]
struct App<P> {
    pool: P,
    sealed: Arc<Vec<u8>>,
}

impl<P> App<P> {
    fn new(pool: P) -> anyhow::Result<Self> {
        Ok(Self {
            pool,
            sealed: Arc::new(sealed_code_email()?),
        })
    }
}

/// The server's code email, rendered and sealed as start-journey does it.
fn sealed_code_email() -> anyhow::Result<Vec<u8>> {
    let config = unlock_server::config::Config::default();
    let keys = unlock_server::secrets::Keys::from_secret(&[7; 32]);
    let message = unlock_server::outbox::templates::one_time_code(
        "123456",
        config.journey.code_ttl_seconds / 60,
        now_ms(),
        &config.time_zone,
    );
    unlock_server::outbox::seal(
        &keys,
        OutboxKind::OneTimeCode,
        "holder-00000@bench.example",
        &message,
    )
}

#[derive(Debug, Deserialize)]
struct Body {
    email: String,
}

/// The statements, the same text on both engines.
const INSERT_JOURNEY: &str = "INSERT INTO journeys (token_hash, subject, holder_id, email, client_addr, state, started_at, expires_at, updated_at)
     VALUES ($1, $2, NULL, $3, '127.0.0.1', 'awaiting_code', $4, $5, $4) RETURNING id";
const INSERT_CODE: &str =
    "INSERT INTO one_time_codes (journey_id, subject, code_mac, issued_at, state, wrong_tries)
     VALUES ($1, $2, $3, $4, 'live', 0) RETURNING id";
const INSERT_OUTBOX: &str = "INSERT INTO outbox (kind, recipient, journey_id, holder_id, sealed_message, state, next_attempt_at, expires_at, created_at, channel)
     VALUES ('one_time_code', $1, $2, $3, $4, 'queued', $5, $6, $5, 'email') RETURNING id";
const INSERT_AUDIT: &str = "INSERT INTO audit_events (at, actor, action, outcome, journey_id, holder_id, client_addr, detail)
     VALUES ($1, 'holder', $2, $3, $4, $5, '127.0.0.1', NULL)";
const MARK_VERIFIED: &str = "UPDATE journeys SET state = 'verified', ineligible_reason = NULL, verified_at = $1, expires_at = $2, updated_at = $1
     WHERE token_hash = $3 RETURNING id";
const USE_UP_CODE: &str =
    "UPDATE one_time_codes SET state = 'used' WHERE journey_id = $1 AND state = 'live'";

/// The two endpoints' writes on one engine's pool (the same code for both: a macro, as
/// sqlx's pools are of distinct types).
macro_rules! baseline_handlers {
    ($engine:ident, $pool:ty) => {
        mod $engine {
            use super::*;

            /// A journey, its code, its email and the audit event, in one transaction.
            pub async fn start(
                State(app): State<App<$pool>>,
                Json(body): Json<Body>,
            ) -> Result<Json<serde_json::Value>, StatusCode> {
                let now = now_ms();
                let subject = format!("holder:{}", body.email);
                let committed = async {
                    let mut tx = app.pool.begin().await?;
                    let journey: i64 = sqlx::query_scalar(INSERT_JOURNEY)
                        .bind(unlock_server::secrets::token_hash(&body.email))
                        .bind(&subject)
                        .bind(&body.email)
                        .bind(now)
                        .bind(now + 900_000)
                        .fetch_one(&mut *tx)
                        .await?;
                    let _code: i64 = sqlx::query_scalar(INSERT_CODE)
                        .bind(journey)
                        .bind(&subject)
                        .bind(code_mac())
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?;
                    let _message: i64 = sqlx::query_scalar(INSERT_OUTBOX)
                        .bind(&body.email)
                        .bind(journey)
                        .bind(&body.email)
                        .bind(app.sealed.as_slice())
                        .bind(now)
                        .bind(now + 900_000)
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query(INSERT_AUDIT)
                        .bind(now)
                        .bind("journey.start")
                        .bind("code_issued")
                        .bind(journey)
                        .bind(&body.email)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                };
                answer(committed.await, "awaiting_code")
            }

            /// The journey marked verified, its code used up and the audit event, in one
            /// transaction.
            pub async fn verify(
                State(app): State<App<$pool>>,
                Json(body): Json<Body>,
            ) -> Result<Json<serde_json::Value>, StatusCode> {
                let now = now_ms();
                let committed = async {
                    let mut tx = app.pool.begin().await?;
                    let journey: i64 = sqlx::query_scalar(MARK_VERIFIED)
                        .bind(now)
                        .bind(now + 900_000)
                        .bind(unlock_server::secrets::token_hash(&body.email))
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query(USE_UP_CODE)
                        .bind(journey)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(INSERT_AUDIT)
                        .bind(now)
                        .bind("journey.verify_code")
                        .bind("verified")
                        .bind(journey)
                        .bind(&body.email)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                };
                answer(committed.await, "verified")
            }
        }
    };
}

baseline_handlers!(on_sqlite, SqlitePool);
baseline_handlers!(on_postgres, PgPool);

fn answer(
    committed: Result<(), sqlx::Error>,
    stage: &str,
) -> Result<Json<serde_json::Value>, StatusCode> {
    match committed {
        Ok(()) => Ok(Json(serde_json::json!({ "stage": stage }))),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// 32 distinct, evenly spread bytes per call (splitmix64 of a counter), as a keyed hash is.
fn code_mac() -> Vec<u8> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut state = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut bytes = Vec::with_capacity(32);
    for _ in 0..4 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    bytes
}

fn now_ms() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    i64::try_from(now).unwrap_or(i64::MAX)
}
