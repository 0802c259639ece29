//! Purging what the service no longer needs (see [`crate::retention`]). Each purge is one
//! statement, safe to run on several instances at once.

use anyhow::Context;

use super::Conn;
use super::states::{JourneyState, Scope};
use crate::clock::Millis;

/// Rows one statement deletes at most, so a first purge of a large database holds the
/// writer (SQLite) or its locks (PostgreSQL) only briefly at a time.
pub const BATCH: i64 = 2000;

/// Deletes journeys that can't change any more (closed or ineligible, or awaiting a code or
/// verified but past their expiry) last changed before `before`; their codes go with them.
pub async fn journeys(conn: &mut Conn, before: Millis, now: Millis) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM journeys WHERE id IN (
             SELECT id FROM journeys
             WHERE updated_at < $1 AND (state IN ($2, $3) OR expires_at < $4) LIMIT $5)",
    )
    .bind(before)
    .bind(JourneyState::Closed)
    .bind(JourneyState::Ineligible)
    .bind(now)
    .bind(BATCH)
    .execute(conn)
    .await
    .context("purge finished journeys")?;
    Ok(done.rows_affected())
}

/// Deletes RAs' one-time unlock codes issued before `before` (each lived 30 minutes; the
/// audit trail keeps who issued it and why).
pub async fn ra_unlock_codes(conn: &mut Conn, before: Millis) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM ra_unlock_codes WHERE id IN (
             SELECT id FROM ra_unlock_codes WHERE issued_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(BATCH)
    .execute(conn)
    .await
    .context("purge old RA unlock codes")?;
    Ok(done.rows_affected())
}

/// Deletes emails that finished (sent or failed for good) before `before`, with their
/// delivery attempts.
pub async fn emails(conn: &mut Conn, before: Millis) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox WHERE finished_at IS NOT NULL AND finished_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(BATCH)
    .execute(conn)
    .await
    .context("purge finished emails")?;
    Ok(done.rows_affected())
}

/// Deletes card challenges released before `before`.
pub async fn card_challenges(conn: &mut Conn, before: Millis) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM card_challenges WHERE (serial, challenge_hash) IN (
             SELECT serial, challenge_hash FROM card_challenges WHERE released_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(BATCH)
    .execute(conn)
    .await
    .context("purge old card challenges")?;
    Ok(done.rows_affected())
}

/// Deletes throttles with nothing left to say: no lock-out in force and a window over long
/// ago (two days, twice the longest window but one). The lifetime count of wrong codes
/// ([`Scope::SubjectWrongTotal`]) is kept until staff release it.
pub async fn finished_throttles(conn: &mut Conn, now: Millis) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM throttles WHERE (scope, key) IN (
             SELECT scope, key FROM throttles
             WHERE locked_until <= $1 AND window_started_at < $2 AND scope <> $3 LIMIT $4)",
    )
    .bind(now)
    .bind(now - 2 * 86_400_000)
    .bind(Scope::SubjectWrongTotal)
    .bind(BATCH)
    .execute(conn)
    .await
    .context("purge finished throttles")?;
    Ok(done.rows_affected())
}
