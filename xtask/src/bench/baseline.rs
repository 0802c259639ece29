//! The baseline: a bare axum server that commits one SQLite transaction per request, with
//! the server's own durability settings and single write connection. It is the floor the
//! real endpoints are compared with: what one durable commit per request costs on this disk.
//!
//! It runs as its own process (the release xtask binary), like the server under test, so
//! both compete with the load generator for the CPUs in the same way.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use sqlx::SqlitePool;
use sqlx::sqlite::SqlitePoolOptions;

use super::scratch::Process;

/// Where the baseline listens and keeps its database.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    #[arg(long)]
    pub listen: SocketAddr,
    #[arg(long)]
    pub database_url: String,
}

/// Starts the baseline as a child process of this (release) binary and waits until it answers.
pub fn spawn(dir: &Path, addr: SocketAddr) -> anyhow::Result<Process> {
    let exe = std::env::current_exe().context("find the xtask binary")?;
    let database_url = format!("sqlite://{}", dir.join("baseline.db").display());
    let mut command = Command::new(exe);
    command.args([
        "baseline-server",
        "--listen",
        &addr.to_string(),
        "--database-url",
        &database_url,
    ]);
    let mut process = Process::spawn("baseline server", &mut command, &dir.join("baseline.log"))?;
    process.wait_ready(addr, "/readyz", Duration::from_secs(30))?;
    Ok(process)
}

/// `xtask baseline-server`: serves until killed.
pub fn serve(args: &ServerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    runtime.block_on(async {
        // Exactly the server's settings: WAL, synchronous=FULL, busy timeout; one writer.
        let options = unlock_server::db::sqlite_baseline_options(&args.database_url)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .context("open the baseline database")?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS baseline \
             (id INTEGER PRIMARY KEY, email TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await
        .context("create the baseline table")?;
        let app = Router::new()
            .route("/baseline", post(record))
            .route("/readyz", get(|| async { "ready" }))
            .with_state(pool);
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listen on {}", args.listen))?;
        axum::serve(listener, app).await.context("serve the baseline")
    })
}

#[derive(Debug, Deserialize)]
struct Body {
    email: String,
}

/// One durable row of about 200 bytes per request, in its own transaction.
async fn record(
    State(pool): State<SqlitePool>,
    Json(body): Json<Body>,
) -> Result<Json<serde_json::Value>, StatusCode> {
    let payload = format!("{:-<200}", body.email);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let committed = async {
        let mut tx = pool.begin().await?;
        sqlx::query("INSERT INTO baseline (email, payload, created_at) VALUES (?, ?, ?)")
            .bind(&body.email)
            .bind(&payload)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    };
    match committed.await {
        Ok(()) => Ok(Json(serde_json::json!({ "stage": "recorded" }))),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}
