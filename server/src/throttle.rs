//! Graduated throttling per client address and per holder, kept in the database so every
//! server instance sees it and staff can release it.

use crate::db::Conn;
use anyhow::Context;

use crate::clock::Millis;
use crate::config::ThrottleConfig;

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;

/// What is being counted, and how lock-outs grow when the count runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Journeys started from one client address.
    ClientStart,
    /// Wrong codes sent from one client address.
    ClientFailure,
    /// Codes voided by wrong tries, per holder (or per unknown address).
    SubjectVoided,
    /// Wrong staff passwords or authenticator codes, per username (by its pseudonym).
    StaffAccount,
    /// Wrong staff passwords or authenticator codes, per client address.
    StaffClient,
}

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

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientStart => "client_start",
            Self::ClientFailure => "client_failure",
            Self::SubjectVoided => "subject_voided",
            Self::StaffAccount => "staff_account",
            Self::StaffClient => "staff_client",
        }
    }

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
    let policy = scope.policy(config);
    let (hits, locked_until): (i64, Millis) = sqlx::query_as(
        "INSERT INTO throttles (scope, key, hits, window_started_at) VALUES ($1, $2, 1, $3)
         ON CONFLICT (scope, key) DO UPDATE SET
             hits = CASE WHEN throttles.window_started_at <= $3 - $4 THEN 1 ELSE throttles.hits + 1 END,
             window_started_at = CASE WHEN throttles.window_started_at <= $3 - $4 THEN $3 ELSE throttles.window_started_at END
         RETURNING hits, locked_until",
    )
    .bind(scope.as_str())
    .bind(key)
    .bind(now)
    .bind(policy.window)
    .fetch_one(&mut *conn)
    .await
    .context("count a throttle hit")?;
    settle(conn, config, scope, key, hits, locked_until, now).await
}

/// Decides the lock-out after a hit that left `hits` in the window and `locked_until` on the
/// row: one already running, a new one if the hit ran over the allowance, or none.
pub async fn settle(
    conn: &mut Conn,
    config: &ThrottleConfig,
    scope: Scope,
    key: &str,
    hits: i64,
    locked_until: Millis,
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
    sqlx::query("UPDATE throttles SET locked_until = $1 WHERE scope = $2 AND key = $3")
        .bind(until)
        .bind(scope.as_str())
        .bind(key)
        .execute(&mut *conn)
        .await
        .context("lock out a throttled key")?;
    crate::metrics::throttle_hit(scope);
    Ok(Some(Locked { until }))
}

/// Forgets every count and lock-out for `key`; returns how many throttles were cleared.
pub async fn release(conn: &mut Conn, key: &str) -> anyhow::Result<u64> {
    let done = sqlx::query("DELETE FROM throttles WHERE key = $1")
        .bind(key)
        .execute(conn)
        .await
        .context("release a throttle")?;
    Ok(done.rows_affected())
}

/// The scopes that count what holders do, which Registration Authority staff may release
/// (staff sign-in throttles are the operator's to release).
pub const HOLDER_SCOPES: [Scope; 3] = [
    Scope::ClientStart,
    Scope::ClientFailure,
    Scope::SubjectVoided,
];

/// Forgets the counts and lock-outs for `key` in the holder scopes only.
pub async fn release_holder_scopes(conn: &mut Conn, key: &str) -> anyhow::Result<u64> {
    let done = sqlx::query("DELETE FROM throttles WHERE key = $1 AND scope IN ($2, $3, $4)")
        .bind(key)
        .bind(HOLDER_SCOPES[0].as_str())
        .bind(HOLDER_SCOPES[1].as_str())
        .bind(HOLDER_SCOPES[2].as_str())
        .execute(conn)
        .await
        .context("release a holder throttle")?;
    Ok(done.rows_affected())
}

/// A throttle row, for operators.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThrottleRow {
    pub scope: String,
    pub key: String,
    pub hits: i64,
    pub locked_until: Millis,
}

/// Keys that are locked out now.
pub async fn locked(conn: &mut Conn, now: Millis) -> anyhow::Result<Vec<ThrottleRow>> {
    sqlx::query_as("SELECT scope, key, hits, locked_until FROM throttles WHERE locked_until > $1 ORDER BY locked_until")
        .bind(now)
        .fetch_all(conn)
        .await
        .context("list throttles")
}
