//! `audit_events`: appended to inside the transaction of the change it records, read by the
//! staff's audit log. Never updated or deleted (both engines refuse it).

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
#[derive(Debug, sqlx::FromRow)]
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
}

/// The newest events matching `search`, newest first.
pub async fn search(pool: &AnyPool, search: &Search<'_>) -> anyhow::Result<Vec<StoredEvent>> {
    let mut query = Filter::new(
        "SELECT id, at, actor, action, outcome, holder_id, journey_id, client_addr, detail
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
