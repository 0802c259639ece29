//! PostgreSQL writes: one transaction per write at `SERIALIZABLE`, run again on a
//! serialisation failure.
//!
//! Why SERIALIZABLE rather than row locks: the rules read several rows and then write
//! (a code's tries and the holder's throttles; a session's stage and the account's last
//! TOTP step; a journey's release count and the card's challenges; an address on no profile).
//! Under SERIALIZABLE, PostgreSQL guarantees the outcome is one some serial order of the
//! transactions would give, whatever instance ran them, and refuses to commit (SQLSTATE
//! 40001, or 40P01 for a deadlock) a transaction that would break that; the write is then
//! run again from the start against fresh data. Writes are already closures that may run
//! more than once (SQLite's group commit relies on the same contract), so no rule needs a
//! lock of its own. Counters are still updated in SQL (`SET n = n + 1 … RETURNING`), which
//! keeps conflicts, and so retries, rare.

use std::time::Duration;

use anyhow::Context;
use sqlx::{AnyPool, Executor};

use super::{BoxFuture, Conn};

/// Runs of one write before its serialisation failure is handed to the caller.
const MAX_ATTEMPTS: u32 = 12;

/// Runs `work` in its own SERIALIZABLE transaction, again after each serialisation failure.
pub async fn write<T, F>(pool: &AnyPool, work: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, anyhow::Result<T>> + Send + 'static,
{
    let mut conn = pool.acquire().await.context("acquire a write connection")?;
    let mut attempt = 1;
    loop {
        let ran = run_once(&mut conn, &work).await;
        match ran {
            Err(error) if attempt < MAX_ATTEMPTS && is_serialization_failure(&error) => {
                tracing::debug!(attempt, "serialisation failure; running the write again");
                crate::metrics::db_retry();
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn run_once<T, F>(conn: &mut Conn, work: &F) -> anyhow::Result<T>
where
    F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, anyhow::Result<T>>,
{
    conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .context("begin a write transaction")?;
    match work(conn).await {
        Ok(value) => match conn.execute("COMMIT").await {
            Ok(_) => Ok(value),
            Err(error) => {
                let _ = conn.execute("ROLLBACK").await;
                Err(anyhow::Error::new(error).context("commit a write transaction"))
            }
        },
        Err(error) => {
            let _ = conn.execute("ROLLBACK").await;
            Err(error)
        }
    }
}

/// Whether PostgreSQL refused the transaction only because of another one running beside it.
pub fn is_serialization_failure(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(|error| error.as_database_error())
            .and_then(|error| error.code())
            .is_some_and(|code| code == "40001" || code == "40P01")
    })
}

/// A short wait, growing with the attempt and jittered, so transactions that collided do not
/// collide again in step.
fn backoff(attempt: u32) -> Duration {
    let mut jitter = [0u8; 1];
    let _ = getrandom::fill(&mut jitter);
    let base = 2u64.saturating_pow(attempt.min(6));
    Duration::from_millis(base + u64::from(jitter[0]) % (base * 2))
}
