//! The append-only audit trail: who did what, when, from where, and how it ended.

use anyhow::Context;
use sqlx::SqliteConnection;

use crate::clock::Millis;

/// One audit event. Details must never hold a code, passcode, key or cryptogram.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub journey_id: Option<i64>,
    pub holder_id: Option<&'a str>,
    pub client_addr: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// Appends an event inside the caller's transaction, so it commits with the change it records.
pub async fn record(
    conn: &mut SqliteConnection,
    at: Millis,
    event: Event<'_>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor, action, outcome, journey_id, holder_id, client_addr, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
