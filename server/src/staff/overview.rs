//! The status view's figures, counted from the audit trail, the journeys and the outbox for
//! today (UTC) and the last 30 days.

use std::collections::HashMap;

use unlock_protocol::HolderId;
use unlock_protocol::staff::{
    DayCount, FailureCount, FlaggedUnlock, HolderUnderAttempts, OutboxHealth, Overview, Period,
    RepeatedReleases,
};

use super::labels::{self, FAILURES, RELEASED_NO_RECEIPT, TIMED_OUT};
use crate::audit::{Action, Outcome};
use crate::clock::{Millis, seconds_until};
use crate::db::{self, Conn};
use crate::state::AppState;
use crate::throttle::{self, Scope};

const DAY: Millis = 86_400_000;
/// Days the overview covers, today included.
const DAYS: i64 = 30;
/// The steps the overview's headline figures count.
const SUCCESSES: [(Action, Outcome); 4] = [
    (Action::JourneyStart, Outcome::CodeIssued),
    (Action::JourneyVerifyCode, Outcome::Verified),
    (Action::JourneyVerifyCode, Outcome::VerifiedIneligible),
    (Action::JourneyReceipt, Outcome::Unlocked),
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
    let wanted: Vec<(Action, Outcome)> = SUCCESSES
        .iter()
        .copied()
        .chain(FAILURES.iter().map(|f| (f.action, f.outcome)))
        .collect();
    let steps = audited_steps(&mut conn, &wanted, since, today).await?;
    let step = |action: Action, outcome: Outcome| {
        steps.get(&(action, outcome)).copied().unwrap_or_default()
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
    for (reason, count) in db::figures::ineligible_by_reason(&mut conn, since, today).await? {
        let (name, why) = labels::ineligible(reason.as_deref());
        tally(
            &name,
            &format!("Told to contact their RA: {why}"),
            Both::from_row(count),
        );
    }
    let timed_out = db::figures::timed_out(&mut conn, since, today, now).await?;
    tally(TIMED_OUT.0, TIMED_OUT.1, Both::from_row(timed_out));
    let unconfirmed = db::figures::released_no_receipt(&mut conn, since, today, now).await?;
    tally(
        RELEASED_NO_RECEIPT.0,
        RELEASED_NO_RECEIPT.1,
        Both::from_row(unconfirmed),
    );

    let mut verified = step(Action::JourneyVerifyCode, Outcome::Verified);
    verified.add(step(Action::JourneyVerifyCode, Outcome::VerifiedIneligible));
    let started = step(Action::JourneyStart, Outcome::CodeIssued);
    let unlocks = step(Action::JourneyReceipt, Outcome::Unlocked);
    let codes_sent = Both::from_row(db::figures::codes_sent(&mut conn, since, today).await?);
    let with_ra =
        Both::from_row(db::figures::remote_unlocks_with_ra_help(&mut conn, since, today).await?);
    let minutes = state.config.staff.minutes_saved_per_unlock;
    let ra_minutes = state.config.staff.minutes_saved_per_ra_unlock;
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
            remote_unlocks_with_ra_help: pick(with_ra),
            failed: by_reason.iter().map(|f| f.count).sum(),
            failures: by_reason,
            hours_saved: hours(&[
                (pick(unlocks).saturating_sub(pick(with_ra)), minutes),
                (pick(with_ra), ra_minutes),
            ]),
        }
    };
    Ok(Overview {
        generated_at: now,
        today: period(|both| both.today),
        last_30_days: period(|both| both.month),
        minutes_saved_per_unlock: minutes,
        minutes_saved_per_ra_unlock: ra_minutes,
        outbox: outbox_health(&mut conn, since, today, now).await?,
        unlocks_per_day: unlocks_per_day(&mut conn, since).await?,
        holders_under_attempts: holders_under_attempts(&mut conn, &state.config, now).await?,
        unlocks_via_new_addresses: unlocks_via_new_addresses(&mut conn, since).await?,
        repeated_releases: repeated_releases(&mut conn, now).await?,
    })
}

/// Unlocks through an address staff added in the 7 days before (the RA-insider flag).
async fn unlocks_via_new_addresses(
    conn: &mut Conn,
    since: Millis,
) -> anyhow::Result<Vec<FlaggedUnlock>> {
    let rows = db::figures::unlocks_via_new_addresses(conn, since, 20).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(FlaggedUnlock {
                holder_id: HolderId::parse(&row.holder_id).ok()?,
                card: row.card_serial,
                unlocked_at: row.unlocked_at,
                added_by: row.added_by,
                added_at: row.added_at,
            })
        })
        .collect())
}

/// Holders whose lock-outs staff released more than once in the last 7 days.
async fn repeated_releases(conn: &mut Conn, now: Millis) -> anyhow::Result<Vec<RepeatedReleases>> {
    let since = now - 7 * DAY;
    let rows = db::figures::holders_with_repeated_steps(
        conn,
        Action::StaffThrottleRelease,
        Outcome::Released,
        since,
        2,
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(holder, releases, last)| {
            Some(RepeatedReleases {
                holder_id: HolderId::parse(&holder).ok()?,
                releases: u64::try_from(releases).unwrap_or(0),
                last_released_at: last,
            })
        })
        .collect())
}

/// Holders under sustained failed attempts, most wrong codes first.
async fn holders_under_attempts(
    conn: &mut Conn,
    config: &crate::config::Config,
    now: Millis,
) -> anyhow::Result<Vec<HolderUnderAttempts>> {
    const SHOWN: usize = 20;
    let throttle = &config.throttle;
    let day_hits = i64::from(throttle.holder_wrong_codes_per_day.div_ceil(2).max(1));
    let all_hits = i64::from(throttle.holder_wrong_codes_in_all.div_ceil(2).max(1));
    let rows = db::throttles::holders_under_attempts(conn, now, day_hits, all_hits).await?;
    let mut holders: Vec<HolderUnderAttempts> = Vec::new();
    for row in rows {
        // `holder:<id>`, or `holder:<id>|device:<id>` for a browser trusted for them.
        let id = row.key.trim_start_matches("holder:");
        let id = id.split('|').next().unwrap_or_default();
        let Ok(holder_id) = HolderId::parse(id) else {
            continue;
        };
        let index = match holders.iter().position(|h| h.holder_id == holder_id) {
            Some(index) => index,
            None => {
                holders.push(HolderUnderAttempts {
                    holder_id,
                    wrong_codes_today: 0,
                    wrong_codes_in_all: 0,
                    locked_until: None,
                    locked_until_released: false,
                });
                holders.len() - 1
            }
        };
        let holder = &mut holders[index];
        let hits = u64::try_from(row.hits).unwrap_or(0);
        match row.scope {
            Scope::SubjectWrongCode => {
                holder.wrong_codes_today = holder.wrong_codes_today.max(hits)
            }
            Scope::SubjectWrongTotal => holder.wrong_codes_in_all += hits,
            _ => {}
        }
        if row.locked_until > now
            && holder
                .locked_until
                .is_none_or(|until| until < row.locked_until)
        {
            holder.locked_until = Some(row.locked_until);
            holder.locked_until_released = throttle::until_released(row.locked_until, now);
        }
    }
    holders.sort_by(|a, b| {
        (b.wrong_codes_today, b.wrong_codes_in_all)
            .cmp(&(a.wrong_codes_today, a.wrong_codes_in_all))
    });
    holders.truncate(SHOWN);
    Ok(holders)
}

/// The sum of `unlocks` × `minutes` over each kind of unlock, in hours to one decimal place.
fn hours(kinds: &[(u64, u32)]) -> f64 {
    let minutes: u64 = kinds
        .iter()
        .map(|&(unlocks, minutes)| unlocks * u64::from(minutes))
        .sum();
    let tenths = (minutes + 3) / 6;
    tenths as f64 / 10.0
}

/// How many steps of each kind in `wanted` were audited since `since`.
async fn audited_steps(
    conn: &mut Conn,
    wanted: &[(Action, Outcome)],
    since: Millis,
    today: Millis,
) -> anyhow::Result<HashMap<(Action, Outcome), Both>> {
    let mut counts = HashMap::with_capacity(wanted.len());
    for &(action, outcome) in wanted {
        let row = db::figures::steps(conn, action, outcome, since, today).await?;
        counts.insert((action, outcome), Both::from_row(row));
    }
    Ok(counts)
}

/// The backlog, and messages given up on after trying.
async fn outbox_health(
    conn: &mut Conn,
    since: Millis,
    today: Millis,
    now: Millis,
) -> anyhow::Result<OutboxHealth> {
    let backlog = db::outbox_health::backlog(conn).await?;
    let failed = Both::from_row(db::figures::failed_emails(conn, since, today).await?);
    Ok(OutboxHealth {
        queued: u64::try_from(backlog.queued).unwrap_or(0),
        oldest_queued_seconds: backlog.oldest_queued_at.map(|at| seconds_until(at, now)),
        failed_today: failed.today,
        failed_last_30_days: failed.month,
    })
}

/// Unlocks on each day since `since`, zeros included, oldest first.
async fn unlocks_per_day(conn: &mut Conn, since: Millis) -> anyhow::Result<Vec<DayCount>> {
    let counts: HashMap<i64, i64> = db::figures::unlocks_by_day(conn, since)
        .await?
        .into_iter()
        .collect();
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
        assert_eq!(hours(&[(0, 20)]), 0.0);
        assert_eq!(hours(&[(3, 20)]), 1.0);
        assert_eq!(hours(&[(1, 20)]), 0.3);
        assert_eq!(hours(&[(50_000, 20)]), 16_666.7);
        // Two self-service unlocks and two with an RA's help: 40 + 30 minutes.
        assert_eq!(hours(&[(2, 20), (2, 15)]), 1.2);
    }
}
