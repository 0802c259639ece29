//! `audit_events`: appended to inside the transaction of the change it records, read by the
//! staff's audit log. Never updated; deleted only once an archive holds it (both engines
//! refuse anything else). `audit_repeats`: a minute's repeated refusals from one client,
//! counted until they are folded into one event. `audit_archives`: what left for a file.

use anyhow::Context;
use sqlx::any::AnyArguments;
use sqlx::{Any, AnyPool, Arguments, AssertSqlSafe};

use super::Conn;
use crate::audit::Event;
use crate::clock::Millis;

/// The details of `holder`'s audited steps of `action` with `outcome` since `since`, oldest
/// first (the addresses RA staff removed from a profile, say).
pub async fn details_since(
    conn: &mut Conn,
    holder: &str,
    action: crate::audit::Action,
    outcome: crate::audit::Outcome,
    since: Millis,
) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT detail FROM audit_events
         WHERE holder_id = $1 AND action = $2 AND outcome = $3 AND at >= $4 AND detail IS NOT NULL
         ORDER BY id",
    )
    .bind(holder)
    .bind(action)
    .bind(outcome)
    .bind(since)
    .fetch_all(conn)
    .await
    .context("read the holder's audited steps")
}

/// Appends an event inside the caller's transaction, so it commits with the change it records.
pub async fn append(conn: &mut Conn, at: Millis, event: &Event<'_>) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor, action, outcome, journey_id, holder_id, client_addr, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(at)
    .bind(event.actor)
    .bind(event.action)
    .bind(event.outcome)
    .bind(event.journey_id)
    .bind(event.holder_id)
    .bind(event.client_addr)
    .bind(event.detail)
    .execute(conn)
    .await
    .with_context(|| format!("record the audit event {}", event.action))?;
    Ok(())
}

/// Counts one more `event` (a refusal from `client`) in its minute, and returns how many
/// there have been in that minute from that client under that actor's name, this one
/// included.
pub async fn count_repeat(
    conn: &mut Conn,
    at: Millis,
    client: &str,
    event: &Event<'_>,
) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO audit_repeats (client_addr, action, outcome, minute, actor, times, last_at)
         VALUES ($1, $2, $3, $4, $5, 1, $6)
         ON CONFLICT (client_addr, actor, action, outcome, minute)
         DO UPDATE SET times = audit_repeats.times + 1, last_at = excluded.last_at
         RETURNING times",
    )
    .bind(client)
    .bind(event.action)
    .bind(event.outcome)
    .bind(at / MINUTE)
    .bind(event.actor)
    .bind(at)
    .fetch_one(conn)
    .await
    .with_context(|| format!("count a repeated {}", event.action))
}

/// A minute's repeats of one refusal from one client under one name, taken out of
/// `audit_repeats`.
#[derive(Debug, sqlx::FromRow)]
pub struct Repeats {
    pub client_addr: String,
    pub action: String,
    pub outcome: String,
    pub minute: i64,
    pub actor: String,
    /// The first, audited whole when it came, included.
    pub times: i64,
    pub last_at: Millis,
}

/// Takes out (deletes and returns) up to [`super::retention::BATCH`] minutes of repeats that
/// ended before `before`.
pub async fn take_repeats(conn: &mut Conn, before: Millis) -> anyhow::Result<Vec<Repeats>> {
    sqlx::query_as(
        "DELETE FROM audit_repeats WHERE (client_addr, actor, action, outcome, minute) IN (
             SELECT client_addr, actor, action, outcome, minute FROM audit_repeats
             WHERE minute < $1 LIMIT $2)
         RETURNING client_addr, action, outcome, minute, actor, times, last_at",
    )
    .bind(before / MINUTE)
    .bind(super::retention::BATCH)
    .fetch_all(conn)
    .await
    .context("take out the repeated refusals")
}

/// Appends the event that stands for `repeats`' repeats after its first (audited whole).
pub async fn append_repeats(conn: &mut Conn, repeats: &Repeats) -> anyhow::Result<()> {
    let times = repeats.times - 1;
    let detail = format!(
        "{times} more in the minute from {}",
        crate::clock::date_time_utc(repeats.minute * MINUTE)
    );
    sqlx::query(
        "INSERT INTO audit_events (at, actor, action, outcome, client_addr, detail, times)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(repeats.last_at)
    .bind(&repeats.actor)
    .bind(&repeats.action)
    .bind(&repeats.outcome)
    .bind(&repeats.client_addr)
    .bind(detail)
    .bind(times)
    .execute(conn)
    .await
    .context("record a minute's repeated refusals")?;
    Ok(())
}

const MINUTE: Millis = 60_000;

/// Which events a page of the audit log shows; `None` filters nothing.
#[derive(Debug, Default)]
pub struct Search<'a> {
    pub actor: Option<&'a str>,
    /// The start of the action's name.
    pub action_prefix: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub holder_id: Option<&'a str>,
    pub from: Option<Millis>,
    pub until: Option<Millis>,
    /// Events older than this id.
    pub before: Option<i64>,
    pub limit: i64,
}

/// One stored event.
#[derive(Debug, sqlx::FromRow, serde::Serialize)]
pub struct StoredEvent {
    pub id: i64,
    pub at: Millis,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub holder_id: Option<String>,
    pub journey_id: Option<i64>,
    pub client_addr: Option<String>,
    pub detail: Option<String>,
    /// How many requests it stands for: 1 but for a minute's repeated refusals.
    pub times: i64,
}

/// The newest events matching `search`, newest first.
pub async fn search(pool: &AnyPool, search: &Search<'_>) -> anyhow::Result<Vec<StoredEvent>> {
    let mut query = Filter::new(
        "SELECT id, at, actor, action, outcome, holder_id, journey_id, client_addr, detail, times
         FROM audit_events WHERE 1 = 1",
    );
    if let Some(actor) = search.actor {
        query.and("actor = ", actor.to_owned(), "")?;
    }
    if let Some(action) = search.action_prefix {
        let escaped = action
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query.and("action LIKE ", format!("{escaped}%"), " ESCAPE '\\'")?;
    }
    if let Some(outcome) = search.outcome {
        query.and("outcome = ", outcome.to_owned(), "")?;
    }
    if let Some(holder) = search.holder_id {
        query.and("holder_id = ", holder.to_owned(), "")?;
    }
    if let Some(from) = search.from {
        query.and("at >= ", from, "")?;
    }
    if let Some(until) = search.until {
        query.and("at < ", until, "")?;
    }
    if let Some(before) = search.before {
        query.and("id < ", before, "")?;
    }
    query.sql.push_str(" ORDER BY id DESC LIMIT ");
    query.bind(search.limit)?;
    sqlx::query_as_with(AssertSqlSafe(query.sql), query.args)
        .fetch_all(pool)
        .await
        .context("read the audit log")
}

/// A `WHERE` clause built a condition at a time, with `$n` placeholders numbered for both
/// engines (sqlx's query builder writes `?` for `Any`, which PostgreSQL does not take).
struct Filter {
    sql: String,
    args: AnyArguments,
}

impl Filter {
    fn new(select: &str) -> Self {
        Self {
            sql: select.to_owned(),
            args: AnyArguments::default(),
        }
    }

    fn bind<T>(&mut self, value: T) -> anyhow::Result<()>
    where
        T: 'static + Send + sqlx::Encode<'static, Any> + sqlx::Type<Any>,
    {
        self.args
            .add(value)
            .map_err(|error| anyhow::anyhow!("bind an audit filter: {error}"))?;
        self.sql.push_str(&format!("${}", self.args.len()));
        Ok(())
    }

    fn and<T>(&mut self, condition: &str, value: T, after: &str) -> anyhow::Result<()>
    where
        T: 'static + Send + sqlx::Encode<'static, Any> + sqlx::Type<Any>,
    {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
        self.bind(value)?;
        self.sql.push_str(after);
        Ok(())
    }
}

/// The id of the newest event recorded before `at`, if any.
pub async fn last_id_before(pool: &AnyPool, at: Millis) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar("SELECT MAX(id) FROM audit_events WHERE at < $1")
        .bind(at)
        .fetch_one(pool)
        .await
        .context("find the last event to archive")
}

/// Up to `limit` events after id `after` up to id `through`, oldest first.
pub async fn page(
    pool: &AnyPool,
    after: i64,
    through: i64,
    limit: i64,
) -> anyhow::Result<Vec<StoredEvent>> {
    sqlx::query_as(
        "SELECT id, at, actor, action, outcome, holder_id, journey_id, client_addr, detail, times
         FROM audit_events WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3",
    )
    .bind(after)
    .bind(through)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("read the events to archive")
}

/// An archive of the audit trail: its events up to `through_id`, in a file with this digest.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Archive {
    pub through_id: i64,
    pub events: i64,
    pub first_at: Option<Millis>,
    pub last_at: Option<Millis>,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    pub file_name: String,
    pub archived_at: Millis,
}

/// Records `archive` and deletes the events it holds (the engines refuse to delete any other);
/// returns how many were deleted.
pub async fn archive(conn: &mut Conn, archive: &Archive) -> anyhow::Result<u64> {
    sqlx::query(
        "INSERT INTO audit_archives
             (through_id, events, first_at, last_at, sha256, file_name, archived_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(archive.through_id)
    .bind(archive.events)
    .bind(archive.first_at)
    .bind(archive.last_at)
    .bind(&archive.sha256)
    .bind(&archive.file_name)
    .bind(archive.archived_at)
    .execute(&mut *conn)
    .await
    .context("record the archive")?;
    let deleted = sqlx::query("DELETE FROM audit_events WHERE id <= $1")
        .bind(archive.through_id)
        .execute(conn)
        .await
        .context("delete the archived events")?;
    Ok(deleted.rows_affected())
}

/// Every archive made, oldest first.
pub async fn archives(pool: &AnyPool) -> anyhow::Result<Vec<Archive>> {
    sqlx::query_as(
        "SELECT through_id, events, first_at, last_at, sha256, file_name, archived_at
         FROM audit_archives ORDER BY through_id",
    )
    .fetch_all(pool)
    .await
    .context("read the archives")
}
