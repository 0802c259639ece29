//! The status view's figures, counted from the audit trail, the journeys and the outbox for
//! today (UTC) and the last 30 days.

use std::collections::HashMap;

use crate::db::Conn;
use anyhow::Context;
use unlock_protocol::staff::{DayCount, FailureCount, OutboxHealth, Overview, Period};

use super::labels::{self, FAILURES, TIMED_OUT};
use crate::clock::{Millis, seconds_until};
use crate::state::AppState;

const DAY: Millis = 86_400_000;
/// Days the overview covers, today included.
const DAYS: i64 = 30;
/// The steps the overview's headline figures count.
const SUCCESSES: [(&str, &str); 4] = [
    ("journey.start", "code_issued"),
    ("journey.verify_code", "verified"),
    ("journey.verify_code", "verified_ineligible"),
    ("journey.receipt", "unlocked"),
];

/// A count for the last 30 days and for today.
#[derive(Debug, Clone, Copy, Default)]
struct Both {
    month: u64,
    today: u64,
}

impl Both {
    fn from_row((month, today): (i64, i64)) -> Self {
        Self {
            month: u64::try_from(month).unwrap_or(0),
            today: u64::try_from(today).unwrap_or(0),
        }
    }

    fn add(&mut self, other: Self) {
        self.month += other.month;
        self.today += other.today;
    }
}

/// Midnight UTC of the day `at` falls in.
pub fn start_of_day(at: Millis) -> Millis {
    at - at.rem_euclid(DAY)
}

/// `2026-12-01` for the UTC day `at` falls in.
pub fn day_name(at: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp(at.div_euclid(1000))
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_default()
}

/// `GET /api/staff/overview`.
pub async fn overview(state: &AppState) -> anyhow::Result<Overview> {
    let now = state.clock.now();
    let today = start_of_day(now);
    let since = today - (DAYS - 1) * DAY;
    let mut conn = state.db.reader().await?;
    let wanted: Vec<(&str, &str)> = SUCCESSES
        .iter()
        .copied()
        .chain(FAILURES.iter().map(|f| (f.action, f.outcome)))
        .collect();
    let steps = audited_steps(&mut conn, &wanted, since, today).await?;
    let step = |action: &str, outcome: &str| {
        steps
            .get(&(action.to_owned(), outcome.to_owned()))
            .copied()
            .unwrap_or_default()
    };

    let mut failures: Vec<(String, String, Both)> = Vec::new();
    let mut tally = |reason: &str, label: &str, count: Both| match failures
        .iter_mut()
        .find(|(name, ..)| name == reason)
    {
        Some((_, _, total)) => total.add(count),
        None => failures.push((reason.to_owned(), label.to_owned(), count)),
    };
    for failure in FAILURES {
        tally(
            failure.reason,
            failure.label,
            step(failure.action, failure.outcome),
        );
    }
    for (reason, count) in ineligible(&mut conn, since, today).await? {
        let (name, why) = labels::ineligible(reason.as_deref());
        tally(&name, &format!("Told to contact their RA: {why}"), count);
    }
    tally(
        TIMED_OUT.0,
        TIMED_OUT.1,
        timed_out(&mut conn, since, today, now).await?,
    );

    let mut verified = step("journey.verify_code", "verified");
    verified.add(step("journey.verify_code", "verified_ineligible"));
    let started = step("journey.start", "code_issued");
    let unlocks = step("journey.receipt", "unlocked");
    let codes_sent = codes_sent(&mut conn, since, today).await?;
    let minutes = state.config.staff.minutes_saved_per_unlock;
    let period = |pick: fn(Both) -> u64| {
        let mut by_reason: Vec<FailureCount> = failures
            .iter()
            .filter(|(.., count)| pick(*count) > 0)
            .map(|(reason, label, count)| FailureCount {
                reason: reason.clone(),
                label: label.clone(),
                count: pick(*count),
            })
            .collect();
        by_reason.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        Period {
            journeys_started: pick(started),
            codes_sent: pick(codes_sent),
            codes_verified: pick(verified),
            unlocks: pick(unlocks),
            failed: by_reason.iter().map(|f| f.count).sum(),
            failures: by_reason,
            hours_saved: hours(pick(unlocks), minutes),
        }
    };
    Ok(Overview {
        generated_at: now,
        today: period(|both| both.today),
        last_30_days: period(|both| both.month),
        minutes_saved_per_unlock: minutes,
        outbox: outbox_health(&mut conn, since, today, now).await?,
        unlocks_per_day: unlocks_per_day(&mut conn, since).await?,
    })
}

/// `unlocks` × `minutes`, in hours to one decimal place.
fn hours(unlocks: u64, minutes: u32) -> f64 {
    let tenths = (unlocks * u64::from(minutes) + 3) / 6;
    tenths as f64 / 10.0
}

/// How many steps of each kind in `wanted` were audited since `since`: one range of the
/// (action, outcome, time) index each, so only those steps are read.
async fn audited_steps(
    conn: &mut Conn,
    wanted: &[(&str, &str)],
    since: Millis,
    today: Millis,
) -> anyhow::Result<HashMap<(String, String), Both>> {
    let mut counts = HashMap::with_capacity(wanted.len());
    for (action, outcome) in wanted {
        let row: (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(CASE WHEN at >= $4 THEN 1 END) FROM audit_events
             WHERE action = $1 AND outcome = $2 AND at >= $3",
        )
        .bind(action)
        .bind(outcome)
        .bind(since)
        .bind(today)
        .fetch_one(&mut *conn)
        .await
        .with_context(|| format!("count the audited {action} {outcome}"))?;
        counts.insert(
            ((*action).to_owned(), (*outcome).to_owned()),
            Both::from_row(row),
        );
    }
    Ok(counts)
}

/// Verified holders told to contact their RA, by reason.
async fn ineligible(
    conn: &mut Conn,
    since: Millis,
    today: Millis,
) -> anyhow::Result<Vec<(Option<String>, Both)>> {
    let rows: Vec<(Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT detail, COUNT(*), COUNT(CASE WHEN at >= $2 THEN 1 END) FROM audit_events
         WHERE at >= $1 AND action = 'journey.verify_code' AND outcome = 'verified_ineligible'
         GROUP BY detail",
    )
    .bind(since)
    .bind(today)
    .fetch_all(conn)
    .await
    .context("count the ineligible holders")?;
    Ok(rows
        .into_iter()
        .map(|(reason, month, today)| (reason, Both::from_row((month, today))))
        .collect())
}

/// Journeys of holders on a profile whose time ran out before the card was unlocked.
async fn timed_out(
    conn: &mut Conn,
    since: Millis,
    today: Millis,
    now: Millis,
) -> anyhow::Result<Both> {
    let row: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(CASE WHEN expires_at >= $2 THEN 1 END) FROM journeys
         WHERE expires_at >= $1 AND expires_at <= $3
           AND state IN ('awaiting_code', 'verified') AND holder_id IS NOT NULL",
    )
    .bind(since)
    .bind(today)
    .bind(now)
    .fetch_one(conn)
    .await
    .context("count the journeys that ran out of time")?;
    Ok(Both::from_row(row))
}

/// Code emails delivered.
async fn codes_sent(conn: &mut Conn, since: Millis, today: Millis) -> anyhow::Result<Both> {
    let row: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(CASE WHEN finished_at >= $2 THEN 1 END) FROM outbox
         WHERE state = 'sent' AND finished_at >= $1 AND kind = 'one_time_code'",
    )
    .bind(since)
    .bind(today)
    .fetch_one(conn)
    .await
    .context("count the code emails sent")?;
    Ok(Both::from_row(row))
}

/// The backlog, and messages given up on after trying (codes withdrawn because a newer one
/// replaced them were never tried and are not failures).
async fn outbox_health(
    conn: &mut Conn,
    since: Millis,
    today: Millis,
    now: Millis,
) -> anyhow::Result<OutboxHealth> {
    let (queued, oldest): (i64, Option<Millis>) =
        sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 'queued'")
            .fetch_one(&mut *conn)
            .await
            .context("count the queued emails")?;
    let failed: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(CASE WHEN finished_at >= $2 THEN 1 END) FROM outbox
         WHERE state = 'failed' AND finished_at >= $1 AND attempts > 0",
    )
    .bind(since)
    .bind(today)
    .fetch_one(conn)
    .await
    .context("count the failed emails")?;
    let failed = Both::from_row(failed);
    Ok(OutboxHealth {
        queued: u64::try_from(queued).unwrap_or(0),
        oldest_queued_seconds: oldest.map(|at| seconds_until(at, now)),
        failed_today: failed.today,
        failed_last_30_days: failed.month,
    })
}

/// Unlocks on each day since `since`, zeros included, oldest first.
async fn unlocks_per_day(conn: &mut Conn, since: Millis) -> anyhow::Result<Vec<DayCount>> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT at / 86400000, COUNT(*) FROM audit_events
         WHERE at >= $1 AND action = 'journey.receipt' AND outcome = 'unlocked'
         GROUP BY at / 86400000",
    )
    .bind(since)
    .fetch_all(conn)
    .await
    .context("count the unlocks per day")?;
    let counts: HashMap<i64, i64> = rows.into_iter().collect();
    Ok((0..DAYS)
        .map(|n| {
            let day = since + n * DAY;
            DayCount {
                day: day_name(day),
                count: u64::try_from(counts.get(&(day / DAY)).copied().unwrap_or(0)).unwrap_or(0),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc() {
        // 2026-11-28T13:05:59Z
        let at = 1_795_871_159_000;
        assert_eq!(day_name(at), "2026-11-28");
        assert_eq!(day_name(start_of_day(at)), "2026-11-28");
        assert_eq!(start_of_day(at) % DAY, 0);
        assert_eq!(day_name(start_of_day(at) - 1), "2026-11-27");
    }

    #[test]
    fn hours_saved_round_to_a_tenth() {
        assert_eq!(hours(0, 20), 0.0);
        assert_eq!(hours(3, 20), 1.0);
        assert_eq!(hours(1, 20), 0.3);
        assert_eq!(hours(50_000, 20), 16_666.7);
    }
}
