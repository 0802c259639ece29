//! Graduated throttling per client address and per holder, kept in the database so every
//! server instance sees it and staff can release it.

use crate::clock::Millis;
use crate::config::ThrottleConfig;
use crate::db::{self, Conn};

pub use crate::db::states::Scope;

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;
/// A window that never ends and a lock-out nobody waits out: a century, until staff release it.
const UNTIL_RELEASED: Millis = 100 * 365 * DAY;

struct Policy {
    window: Millis,
    free_hits: u32,
    /// Lock-out after the first hit over the limit, the second, ...; the last one repeats.
    ladder: &'static [Millis],
}

/// The length of a scope's counting window.
pub fn window(config: &ThrottleConfig, scope: Scope) -> Millis {
    scope.policy(config).window
}

/// Hits a key may have in a window before it is locked out.
pub fn allowance(config: &ThrottleConfig, scope: Scope) -> i64 {
    i64::from(scope.policy(config).free_hits)
}

impl Scope {
    fn policy(self, config: &ThrottleConfig) -> Policy {
        match self {
            Self::ClientStart => Policy {
                window: HOUR,
                free_hits: config.client_starts_per_hour,
                ladder: &[15 * MINUTE, HOUR, DAY],
            },
            Self::ClientFailure => Policy {
                window: HOUR,
                free_hits: config.client_failures_per_hour,
                ladder: &[5 * MINUTE, 30 * MINUTE, 2 * HOUR, DAY],
            },
            Self::SubjectVoided => Policy {
                window: DAY,
                free_hits: config.holder_voided_codes_per_day,
                ladder: &[15 * MINUTE, HOUR, DAY],
            },
            // The Nth wrong code of the day is the last: the lock-out starts with it, so no
            // N+1th is ever checked.
            Self::SubjectWrongCode => Policy {
                window: DAY,
                free_hits: config.holder_wrong_codes_per_day.saturating_sub(1),
                ladder: &[DAY],
            },
            Self::SubjectWrongTotal => Policy {
                window: UNTIL_RELEASED,
                free_hits: config.holder_wrong_codes_in_all.saturating_sub(1),
                ladder: &[UNTIL_RELEASED],
            },
            Self::StaffAccount => Policy {
                window: HOUR,
                free_hits: config.staff_failures_per_account,
                ladder: &[15 * MINUTE, HOUR, 4 * HOUR, DAY],
            },
            Self::StaffClient => Policy {
                window: HOUR,
                free_hits: config.staff_failures_per_client,
                ladder: &[15 * MINUTE, HOUR, DAY],
            },
        }
    }
}

/// A lock-out in force: the time it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub until: Millis,
}

/// Counts one event and returns the lock-out in force after it: one already running, or a
/// new one because this hit ran over the free allowance (the next rung of the ladder).
pub async fn hit(
    conn: &mut Conn,
    config: &ThrottleConfig,
    scope: Scope,
    key: &str,
    now: Millis,
) -> anyhow::Result<Option<Locked>> {
    let count = db::throttles::count(conn, scope, key, now, window(config, scope)).await?;
    settle(conn, config, scope, key, count, now).await
}

/// Decides the lock-out after a hit that left `count` on the row: one already running, a
/// new one if the hit ran over the allowance, or none.
pub async fn settle(
    conn: &mut Conn,
    config: &ThrottleConfig,
    scope: Scope,
    key: &str,
    db::throttles::Count { hits, locked_until }: db::throttles::Count,
    now: Millis,
) -> anyhow::Result<Option<Locked>> {
    let policy = scope.policy(config);
    if locked_until > now {
        crate::metrics::throttle_hit(scope);
        return Ok(Some(Locked {
            until: locked_until,
        }));
    }
    let over = hits - i64::from(policy.free_hits);
    if over <= 0 {
        return Ok(None);
    }
    let rung = usize::try_from(over - 1)
        .unwrap_or(usize::MAX)
        .min(policy.ladder.len() - 1);
    let until = now + policy.ladder[rung];
    let until = db::throttles::lock_unless_locked(conn, scope, key, until, now).await?;
    crate::metrics::throttle_hit(scope);
    Ok(Some(Locked { until }))
}

/// Forgets every count and lock-out for `key`; returns how many throttles were cleared.
pub async fn release(conn: &mut Conn, key: &str) -> anyhow::Result<u64> {
    db::throttles::clear(conn, key, Scope::ALL).await
}

/// The scopes that count what holders do, which Registration Authority staff may release
/// (staff sign-in throttles are the operator's to release).
pub const HOLDER_SCOPES: [Scope; 5] = [
    Scope::ClientStart,
    Scope::ClientFailure,
    Scope::SubjectVoided,
    Scope::SubjectWrongCode,
    Scope::SubjectWrongTotal,
];

/// Whether a lock-out ending at `until` (as of `now`) lasts until staff release it.
pub fn until_released(until: Millis, now: Millis) -> bool {
    until - now > 10 * 365 * DAY
}

/// Forgets the counts and lock-outs for `key` in the holder scopes only.
pub async fn release_holder_scopes(conn: &mut Conn, key: &str) -> anyhow::Result<u64> {
    db::throttles::clear(conn, key, &HOLDER_SCOPES).await
}

/// The lock-out in force at `now`, if `until` (the latest end on record) is later.
pub fn in_force(until: Option<Millis>, now: Millis) -> Option<Locked> {
    until
        .filter(|until| *until > now)
        .map(|until| Locked { until })
}
