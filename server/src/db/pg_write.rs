//! PostgreSQL writes: one transaction per write at `READ COMMITTED`, the rows a rule decides
//! on locked explicitly, run again on a deadlock.
//!
//! Why row locks rather than SERIALIZABLE: under load, SERIALIZABLE turned every hot row
//! (one client address's throttle, which every start from behind one NAT address updates)
//! and SSI's page-level read locks on busy indexes into serialisation failures, so writes ran
//! again and again and some failed for good (the PostgreSQL benchmark, README). At READ
//! COMMITTED a transaction that updates a row another holds waits for it instead, and every
//! rule holds because of how it is written:
//!
//! - **counters** are updated in SQL on the row as it stands (`SET n = n + 1 … RETURNING`,
//!   `… WHERE n < cap RETURNING`), and conditional updates (`WHERE state = 'live'`, `WHERE
//!   step < $1`, `WHERE nonce = $2`) are re-checked by PostgreSQL against the newest version
//!   of the row, so of two racing requests one wins;
//! - **unique constraints** replace check-then-insert (`ON CONFLICT …`);
//! - **a journey's steps** lock its row (`FOR UPDATE`) as they read it, so steps of one
//!   journey take turns whatever instance runs them ([`super::journeys`]);
//! - **a subject's code count** (codes per holder per hour) is read and added to under a
//!   transaction-scoped advisory lock on the subject ([`super::throttles::lock_subject`]);
//! - **a hot counter** that needs no other row, a client address's starts, is one statement
//!   committed on its own ([`super::Db::write_each_statement`]), so its row is locked only
//!   while PostgreSQL runs the statement, not for a round trip to the server and back;
//! - **the outbox's claim and record** are each one statement committed on its own
//!   ([`super::Db::write_statement`]): the claim locks what it takes `FOR UPDATE SKIP
//!   LOCKED`, and the record updates only rows its instance still holds.
//!
//! Locks are taken in one order (subject, then throttle rows; journey, then throttle rows),
//! so deadlocks should not happen; if PostgreSQL reports one (40P01), or a serialisation
//! failure (40001, from a transaction someone runs at a stricter level), the write (or the
//! one statement) runs again from the start — writes are closures that may run more than once, as SQLite's group
//! commit already requires.

use std::time::Duration;

use anyhow::Context;
use sqlx::{AnyPool, Connection};

use super::{BoxFuture, Conn};

/// Runs of one write before its serialisation failure is handed to the caller.
const MAX_ATTEMPTS: u32 = 12;

/// How a write's statements commit on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Together, in one READ COMMITTED transaction; run again after a deadlock.
    Together,
    /// One statement, outside a transaction block, committed as it runs; run again after a
    /// deadlock, as a statement that failed committed nothing.
    Alone,
    /// Each statement as it runs, outside a transaction block; never run again, as the
    /// statements before a failure have committed.
    EachAlone,
}

/// Runs `work` on one connection, committing as `commit` says, again (up to
/// [`MAX_ATTEMPTS`] runs) while PostgreSQL refuses it for a deadlock or a serialisation
/// failure, unless statements of it may have committed.
pub async fn write<T, F>(pool: &AnyPool, work: F, commit: Commit) -> anyhow::Result<T>
where
    F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, anyhow::Result<T>>,
{
    let mut conn = pool.acquire().await.context("acquire a write connection")?;
    let mut attempt = 1;
    loop {
        let ran = match commit {
            Commit::Together => run_once(&mut conn, &work).await,
            Commit::Alone | Commit::EachAlone => work(&mut conn).await,
        };
        match ran {
            Err(error)
                if commit != Commit::EachAlone
                    && attempt < MAX_ATTEMPTS
                    && is_serialization_failure(&error) =>
            {
                tracing::debug!(
                    attempt,
                    "deadlock or serialisation failure; running the write again"
                );
                crate::metrics::db_retry();
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Runs `work` in a transaction. sqlx's transaction, not a `BEGIN` of our own: if the write
/// is stopped part-way (its request ran out of time, its client went), dropping it queues a
/// `ROLLBACK` that runs before anything else on the connection, so the next write on it
/// cannot commit what this one had begun.
async fn run_once<T, F>(conn: &mut Conn, work: &F) -> anyhow::Result<T>
where
    F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, anyhow::Result<T>>,
{
    let mut transaction = conn
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .context("begin a write transaction")?;
    // An `Err` drops the transaction, which rolls it back.
    let value = work(&mut transaction).await?;
    transaction
        .commit()
        .await
        .context("commit a write transaction")?;
    Ok(value)
}

/// Whether PostgreSQL refused the transaction only because of another one running beside it
/// (a deadlock, or a serialisation failure).
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
