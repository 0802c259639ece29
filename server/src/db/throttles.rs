//! `throttles`: a count of hits in a window and a lock-out per scope and key, shared by every
//! instance. Hits are counted in SQL on the row as it stands (one upsert), never from a
//! count read earlier.

use anyhow::Context;

use super::states::Scope;
use super::{Conn, Engine};
use crate::clock::Millis;

/// A key's count after a hit, and its lock-out as it stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Hits in the current window, this one included.
    pub hits: i64,
    pub locked_until: Millis,
}

/// The scopes whose lock-outs stop a holder (or an unknown address) from self-service.
pub const SUBJECT_SCOPES: [Scope; 3] = [
    Scope::SubjectVoided,
    Scope::SubjectWrongCode,
    Scope::SubjectWrongTotal,
];

/// [`SUBJECT_SCOPES`] as an SQL list (a macro, so `concat!` can take it; a test holds the two
/// together).
macro_rules! subject_scopes_sql {
    () => {
        "('subject_voided', 'subject_wrong_code', 'subject_wrong_total')"
    };
}
pub(super) use subject_scopes_sql;

/// The upsert that counts one hit in a window of `$4` ms ending at `$3` (a macro, so
/// `concat!` can add the `RETURNING` each caller needs).
macro_rules! count_hit {
    () => {
        "INSERT INTO throttles (scope, key, hits, window_started_at) VALUES ($1, $2, 1, $3)
     ON CONFLICT (scope, key) DO UPDATE SET
         hits = CASE WHEN throttles.window_started_at <= $3 - $4 THEN 1 ELSE throttles.hits + 1 END,
         window_started_at = CASE WHEN throttles.window_started_at <= $3 - $4 THEN $3 ELSE throttles.window_started_at END"
    };
}

pub(super) use count_hit;

/// A hit to count: on `scope`/`key` at `now`, in a window of `window` ms.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    pub scope: Scope,
    pub key: &'a str,
    pub now: Millis,
    pub window: Millis,
}

/// Counts one hit on `scope`/`key` in a window of `window` ms.
pub async fn count(
    conn: &mut Conn,
    scope: Scope,
    key: &str,
    now: Millis,
    window: Millis,
) -> anyhow::Result<Count> {
    let (hits, locked_until): (i64, Millis) =
        sqlx::query_as(concat!(count_hit!(), " RETURNING hits, locked_until"))
            .bind(scope)
            .bind(key)
            .bind(now)
            .bind(window)
            .fetch_one(conn)
            .await
            .context("count a throttle hit")?;
    Ok(Count { hits, locked_until })
}

/// Holds `subject` until the write commits, so its codes are counted and added to by one
/// write at a time (codes per hour). PostgreSQL: a transaction-scoped advisory lock on the
/// subject; SQLite's writes hold the whole database already.
pub async fn lock_subject(conn: &mut Conn, subject: &str) -> anyhow::Result<()> {
    if Engine::of(conn) == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(subject)
            .execute(conn)
            .await
            .context("hold the subject for its code count")?;
    }
    Ok(())
}

/// A subject's limits as they stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectLimits {
    /// Until when its latest lock-out runs, if it has a throttle row.
    pub locked_until: Option<Millis>,
    /// Codes sent to it in the hour before now.
    pub codes_last_hour: i64,
    /// Codes sent to it in the day before now.
    pub codes_last_day: i64,
}

/// `subject`'s lock-out and the codes it was sent in the last hour and day (one query: this
/// runs on every start and resend).
pub async fn subject_limits(
    conn: &mut Conn,
    subject: &str,
    now: Millis,
) -> anyhow::Result<SubjectLimits> {
    let (locked_until, codes_last_hour, codes_last_day) = sqlx::query_as(concat!(
        "SELECT (SELECT MAX(locked_until) FROM throttles WHERE scope IN ",
        subject_scopes_sql!(),
        " AND key = $1),
                (SELECT COUNT(*) FROM one_time_codes WHERE subject = $1 AND issued_at > $2 - 3600000),
                (SELECT COUNT(*) FROM one_time_codes WHERE subject = $1 AND issued_at > $2 - 86400000)",
    ))
    .bind(subject)
    .bind(now)
    .fetch_one(conn)
    .await
    .context("read the subject's throttle and recent codes")?;
    Ok(SubjectLimits {
        locked_until,
        codes_last_hour,
        codes_last_day,
    })
}

/// The latest end of any lock-out on these scope/key pairs (two at most).
pub async fn locked_until(
    conn: &mut Conn,
    first: (Scope, &str),
    second: (Scope, &str),
) -> anyhow::Result<Option<Millis>> {
    sqlx::query_scalar(
        "SELECT MAX(locked_until) FROM throttles
         WHERE (scope = $1 AND key = $2) OR (scope = $3 AND key = $4)",
    )
    .bind(first.0)
    .bind(first.1)
    .bind(second.0)
    .bind(second.1)
    .fetch_one(conn)
    .await
    .context("read the lock-outs")
}

/// Takes back one hit counted on `scope`/`key` (an attempt that turned out not to be a
/// failure), in SQL on the row as it stands.
pub async fn uncount(conn: &mut Conn, scope: Scope, key: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE throttles SET hits = hits - 1 WHERE scope = $1 AND key = $2 AND hits > 0")
        .bind(scope)
        .bind(key)
        .execute(conn)
        .await
        .context("take back a throttle hit")?;
    Ok(())
}

/// Locks `scope`/`key` out until `until`.
pub async fn lock(conn: &mut Conn, scope: Scope, key: &str, until: Millis) -> anyhow::Result<()> {
    sqlx::query("UPDATE throttles SET locked_until = $1 WHERE scope = $2 AND key = $3")
        .bind(until)
        .bind(scope)
        .bind(key)
        .execute(conn)
        .await
        .context("lock out a throttled key")?;
    Ok(())
}

/// Locks `key` out until `until` unless a lock-out is already in force at `now` (another
/// request set one since this one counted its hit: on PostgreSQL a count may commit on its
/// own, ahead of the lock-out it leads to); the lock-out in force afterwards. Never shortens
/// a lock-out, and a burst of hits counted at once does not climb the ladder past the first
/// lock-out one of them sets.
pub async fn lock_unless_locked(
    conn: &mut Conn,
    scope: Scope,
    key: &str,
    until: Millis,
    now: Millis,
) -> anyhow::Result<Millis> {
    let set = sqlx::query(
        "UPDATE throttles SET locked_until = $1 WHERE scope = $2 AND key = $3 AND locked_until <= $4",
    )
    .bind(until)
    .bind(scope)
    .bind(key)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("lock out a throttled key")?;
    if set.rows_affected() > 0 {
        return Ok(until);
    }
    let (in_force,): (Millis,) =
        sqlx::query_as("SELECT locked_until FROM throttles WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .fetch_one(conn)
            .await
            .context("read the lock-out in force")?;
    Ok(in_force)
}

/// Forgets the counts and lock-outs of `key` in `scopes`, and those of `key` on any trusted
/// device (`<key>|device:…`); how many throttles were cleared.
pub async fn clear(conn: &mut Conn, key: &str, scopes: &[Scope]) -> anyhow::Result<u64> {
    let mut cleared = 0;
    for scope in scopes {
        let done =
            sqlx::query("DELETE FROM throttles WHERE (key = $1 OR key LIKE $3) AND scope = $2")
                .bind(key)
                .bind(*scope)
                .bind(device_keys_pattern(key))
                .execute(&mut *conn)
                .await
                .context("clear a throttle")?;
        cleared += done.rows_affected();
    }
    Ok(cleared)
}

/// A `LIKE` pattern for `key`'s throttles on trusted devices (keys hold no `%` or `_`: they
/// are `holder:<digits>`, `email:<hex>`, addresses and pseudonyms; anything else matches
/// nothing).
fn device_keys_pattern(key: &str) -> String {
    if key.contains(['%', '_', '\\']) {
        return String::new();
    }
    format!("{key}{DEVICE_SEPARATOR}%")
}

/// Between a holder's subject and a trusted device's id in the subject that device's
/// journeys count on (`holder:<id>|device:<hex>`, see [`crate::journey::device`]).
pub const DEVICE_SEPARATOR: &str = "|device:";

/// A throttle row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThrottleRow {
    pub scope: Scope,
    pub key: String,
    pub hits: i64,
    pub locked_until: Millis,
}

/// Keys that are locked out at `now`, soonest release first.
pub async fn locked(conn: &mut Conn, now: Millis) -> anyhow::Result<Vec<ThrottleRow>> {
    sqlx::query_as(
        "SELECT scope, key, hits, locked_until FROM throttles WHERE locked_until > $1 ORDER BY locked_until",
    )
    .bind(now)
    .fetch_all(conn)
    .await
    .context("list throttles")
}

/// Holders' subject throttles that show sustained failed attempts at `now`: a lock-out in
/// force, at least `day_hits` wrong codes in a current day's window, or at least `all_hits`
/// in all.
pub async fn holders_under_attempts(
    conn: &mut Conn,
    now: Millis,
    day_hits: i64,
    all_hits: i64,
) -> anyhow::Result<Vec<ThrottleRow>> {
    sqlx::query_as(concat!(
        "SELECT scope, key, hits, locked_until FROM throttles
         WHERE key LIKE 'holder:%' AND scope IN ",
        subject_scopes_sql!(),
        " AND (locked_until > $1
                OR (scope = $2 AND hits >= $3 AND window_started_at > $1 - 86400000)
                OR (scope = $4 AND hits >= $5))"
    ))
    .bind(now)
    .bind(Scope::SubjectWrongCode)
    .bind(day_hits)
    .bind(Scope::SubjectWrongTotal)
    .bind(all_hits)
    .fetch_all(conn)
    .await
    .context("find holders under sustained failed attempts")
}

/// `key`'s throttles in `scopes`, and those of `key` on trusted devices, by scope.
pub async fn of_key(
    conn: &mut Conn,
    key: &str,
    scopes: &[Scope],
) -> anyhow::Result<Vec<ThrottleRow>> {
    let mut rows: Vec<ThrottleRow> = Vec::new();
    for scope in scopes {
        let found: Vec<ThrottleRow> = sqlx::query_as(
            "SELECT scope, key, hits, locked_until FROM throttles
             WHERE (key = $1 OR key LIKE $3) AND scope = $2 ORDER BY key",
        )
        .bind(key)
        .bind(*scope)
        .bind(device_keys_pattern(key))
        .fetch_all(&mut *conn)
        .await
        .context("read the throttles")?;
        rows.extend(found);
    }
    rows.sort_by(|a, b| a.scope.as_str().cmp(b.scope.as_str()));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::super::scratch_sqlite;
    use super::*;

    /// A count committed on its own (PostgreSQL's hot counters) can be followed by another
    /// request's lock-out before its own: the later lock-out never shortens the one in force.
    #[tokio::test]
    async fn a_lock_out_is_never_shortened_by_a_hit_counted_before_it_was_set() {
        let dir = tempfile::tempdir().unwrap();
        let db = scratch_sqlite(dir.path()).await;
        let mut conn = db.write.acquire().await.unwrap();
        let (scope, key, now) = (Scope::ClientStart, "client:192.0.2.7", 1_000_000);
        count(&mut conn, scope, key, now, 60_000).await.unwrap();
        let day = now + 86_400_000;
        assert_eq!(
            lock_unless_locked(&mut conn, scope, key, day, now)
                .await
                .unwrap(),
            day
        );
        let minute = now + 60_000;
        assert_eq!(
            lock_unless_locked(&mut conn, scope, key, minute, now)
                .await
                .unwrap(),
            day,
            "the day's lock-out stays"
        );
        // Once it has run out, a new one is set.
        assert_eq!(
            lock_unless_locked(&mut conn, scope, key, day + 60_000, day)
                .await
                .unwrap(),
            day + 60_000
        );
    }

    #[test]
    fn the_sql_list_of_subject_scopes_names_each_of_them() {
        let names: Vec<String> = SUBJECT_SCOPES
            .iter()
            .map(|scope| format!("'{}'", scope.as_str()))
            .collect();
        assert_eq!(subject_scopes_sql!(), format!("({})", names.join(", ")));
    }
}
