//! The status view's figures: counts over the audit trail, the journeys and the outbox, each
//! for a range starting at `since` and, beside it, for the part from `today` on (both as
//! `(all, today)`). Each reads one range of an index.

use anyhow::Context;

use super::Conn;
use super::states::{ClosedReason, JourneyState, OutboxKind};
use crate::audit::{Action, Outcome};
use crate::clock::Millis;
use unlock_protocol::DeliveryState;

/// A count since `since`, and the part of it from `today` on.
pub type Both = (i64, i64);

/// Steps audited as `action` with `outcome` (a minute's repeated refusals counted as many
/// times as they came).
pub async fn steps(
    conn: &mut Conn,
    action: Action,
    outcome: Outcome,
    since: Millis,
    today: Millis,
) -> anyhow::Result<Both> {
    sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(times), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN at >= $4 THEN times ELSE 0 END), 0) AS BIGINT)
         FROM audit_events
         WHERE action = $1 AND outcome = $2 AND at >= $3",
    )
    .bind(action)
    .bind(outcome)
    .bind(since)
    .bind(today)
    .fetch_one(conn)
    .await
    .with_context(|| format!("count the audited {action} {outcome}"))
}

/// Cards unlocked in journeys a holder started with an RA's one-time unlock code (a
/// minute's repeats counted as many times as they came, as [`steps`] does).
pub async fn remote_unlocks_with_ra_help(
    conn: &mut Conn,
    since: Millis,
    today: Millis,
) -> anyhow::Result<Both> {
    sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(times), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN at >= $4 THEN times ELSE 0 END), 0) AS BIGINT)
         FROM audit_events
         WHERE action = $1 AND outcome = $2 AND at >= $3
           AND journey_id IN (SELECT journey_id FROM audit_events
                              WHERE action = $5 AND outcome = $6 AND at >= $7)",
    )
    .bind(Action::JourneyReceipt)
    .bind(Outcome::Unlocked)
    .bind(since)
    .bind(today)
    .bind(Action::JourneyRaCode)
    .bind(Outcome::Verified)
    // A journey lasts minutes; a day's margin covers one that began before `since`.
    .bind(since - 86_400_000)
    .fetch_one(conn)
    .await
    .context("count the remote unlocks with an RA's help")
}

/// Verified holders told to contact their RA, by the reason in the event's detail.
pub async fn ineligible_by_reason(
    conn: &mut Conn,
    since: Millis,
    today: Millis,
) -> anyhow::Result<Vec<(Option<String>, Both)>> {
    let rows: Vec<(Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT detail, COUNT(*), COUNT(CASE WHEN at >= $2 THEN 1 END) FROM audit_events
         WHERE at >= $1 AND action IN ($3, $5) AND outcome = $4
         GROUP BY detail",
    )
    .bind(since)
    .bind(today)
    .bind(Action::JourneyVerifyCode)
    .bind(Outcome::VerifiedIneligible)
    // An RA's unlock code is a verified code too.
    .bind(Action::JourneyRaCode)
    .fetch_all(conn)
    .await
    .context("count the ineligible holders")?;
    Ok(rows
        .into_iter()
        .map(|(reason, month, today)| (reason, (month, today)))
        .collect())
}

/// Journeys of holders on a profile whose time ran out (by `now`) before any card secret was
/// released.
pub async fn timed_out(
    conn: &mut Conn,
    since: Millis,
    today: Millis,
    now: Millis,
) -> anyhow::Result<Both> {
    sqlx::query_as(
        "SELECT COUNT(*), COUNT(CASE WHEN expires_at >= $2 THEN 1 END) FROM journeys
         WHERE expires_at >= $1 AND expires_at <= $3
           AND state IN ($4, $5) AND holder_id IS NOT NULL AND cryptograms_released = 0",
    )
    .bind(since)
    .bind(today)
    .bind(now)
    .bind(JourneyState::AwaitingCode)
    .bind(JourneyState::Verified)
    .fetch_one(conn)
    .await
    .context("count the journeys that ran out of time")
}

/// Journeys whose time ran out (by `now`) after a card secret was released but before the
/// card's receipt closed them.
pub async fn released_no_receipt(
    conn: &mut Conn,
    since: Millis,
    today: Millis,
    now: Millis,
) -> anyhow::Result<Both> {
    sqlx::query_as(
        "SELECT COUNT(*), COUNT(CASE WHEN expires_at >= $2 THEN 1 END) FROM journeys
         WHERE expires_at >= $1 AND expires_at <= $3
           AND state = $4 AND cryptograms_released > 0",
    )
    .bind(since)
    .bind(today)
    .bind(now)
    .bind(JourneyState::Verified)
    .fetch_one(conn)
    .await
    .context("count the journeys released but never confirmed")
}

/// Code emails delivered.
pub async fn codes_sent(conn: &mut Conn, since: Millis, today: Millis) -> anyhow::Result<Both> {
    sqlx::query_as(
        "SELECT COUNT(*), COUNT(CASE WHEN finished_at >= $2 THEN 1 END) FROM outbox
         WHERE state = $3 AND finished_at >= $1 AND kind = $4",
    )
    .bind(since)
    .bind(today)
    .bind(DeliveryState::Sent.as_str())
    .bind(OutboxKind::OneTimeCode)
    .fetch_one(conn)
    .await
    .context("count the code emails sent")
}

/// Emails given up on after trying (codes withdrawn because a newer one replaced them were
/// never tried and are not failures).
pub async fn failed_emails(conn: &mut Conn, since: Millis, today: Millis) -> anyhow::Result<Both> {
    sqlx::query_as(
        "SELECT COUNT(*), COUNT(CASE WHEN finished_at >= $2 THEN 1 END) FROM outbox
         WHERE state = $3 AND finished_at >= $1 AND attempts > 0",
    )
    .bind(since)
    .bind(today)
    .bind(DeliveryState::Failed.as_str())
    .fetch_one(conn)
    .await
    .context("count the failed emails")
}

/// Unlocks per UTC day number (`at / 86 400 000`) since `since`, days without any left out.
pub async fn unlocks_by_day(conn: &mut Conn, since: Millis) -> anyhow::Result<Vec<(i64, i64)>> {
    sqlx::query_as(
        "SELECT at / 86400000, COUNT(*) FROM audit_events
         WHERE at >= $1 AND action = $2 AND outcome = $3
         GROUP BY at / 86400000",
    )
    .bind(since)
    .bind(Action::JourneyReceipt)
    .bind(Outcome::Unlocked)
    .fetch_all(conn)
    .await
    .context("count the unlocks per day")
}

/// Every named organisation with holders (a profile imported without one, such as a staff
/// member's own, adds no row of its own; its holders' activity still counts).
pub async fn organisations(conn: &mut Conn) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar("SELECT DISTINCT organisation FROM holders WHERE organisation <> ''")
        .fetch_all(conn)
        .await
        .context("list the organisations")
}

/// Steps audited as `action` with `outcome` from `start` until `end`, per organisation of
/// the holder concerned.
pub async fn steps_per_organisation(
    conn: &mut Conn,
    action: Action,
    outcome: Outcome,
    start: Millis,
    end: Millis,
) -> anyhow::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT COALESCE(h.organisation, '(holder no longer on record)'), COUNT(*)
         FROM audit_events a LEFT JOIN holders h ON h.id = a.holder_id
         WHERE a.at >= $1 AND a.at < $2 AND a.action = $3 AND a.outcome = $4
         GROUP BY 1",
    )
    .bind(start)
    .bind(end)
    .bind(action)
    .bind(outcome)
    .fetch_all(conn)
    .await
    .with_context(|| format!("count {action} per organisation"))
}

/// An unlock through an address staff had added in the 7 days before it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FlaggedUnlockRow {
    pub holder_id: String,
    pub card_serial: String,
    pub unlocked_at: Millis,
    pub added_by: String,
    pub added_at: Millis,
}

/// Unlocks since `since` through an address staff added to the profile in the 7 days before
/// the unlock, newest first (at most `limit`).
pub async fn unlocks_via_new_addresses(
    conn: &mut Conn,
    since: Millis,
    limit: i64,
) -> anyhow::Result<Vec<FlaggedUnlockRow>> {
    sqlx::query_as(
        "SELECT j.holder_id, j.card_serial, j.updated_at AS unlocked_at, e.added_by, e.added_at
         FROM journeys j JOIN holder_emails e ON e.email = j.email
         WHERE j.state = $1 AND j.closed_reason = $2 AND j.updated_at >= $3
           AND e.added_by LIKE 'staff:%' AND e.added_at > j.updated_at - 604800000
         ORDER BY j.updated_at DESC LIMIT $4",
    )
    .bind(JourneyState::Closed)
    .bind(ClosedReason::Unlocked)
    .bind(since)
    .bind(limit)
    .fetch_all(conn)
    .await
    .context("find unlocks through addresses added lately")
}

/// How often `action` succeeded (`outcome`) for `holder` since `since`.
pub async fn holder_steps_since(
    conn: &mut Conn,
    action: Action,
    outcome: Outcome,
    holder: &str,
    since: Millis,
) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events
         WHERE action = $1 AND outcome = $2 AND holder_id = $3 AND at >= $4",
    )
    .bind(action)
    .bind(outcome)
    .bind(holder)
    .bind(since)
    .fetch_one(conn)
    .await
    .context("count a holder's audited steps")
}

/// Holders for whom `action` succeeded (`outcome`) at least `at_least` times since `since`:
/// (holder, times, latest), most first.
pub async fn holders_with_repeated_steps(
    conn: &mut Conn,
    action: Action,
    outcome: Outcome,
    since: Millis,
    at_least: i64,
) -> anyhow::Result<Vec<(String, i64, Millis)>> {
    sqlx::query_as(
        "SELECT holder_id, COUNT(*), MAX(at) FROM audit_events
         WHERE action = $1 AND outcome = $2 AND at >= $3 AND holder_id IS NOT NULL
         GROUP BY holder_id HAVING COUNT(*) >= $4
         ORDER BY COUNT(*) DESC, MAX(at) DESC LIMIT 20",
    )
    .bind(action)
    .bind(outcome)
    .bind(since)
    .bind(at_least)
    .fetch_all(conn)
    .await
    .context("find holders with repeated steps")
}
