//! The append-only audit trail: who did what, when, from where, and how it ended.

use crate::db::{self, Conn};

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

/// Appends an event inside the caller's transaction, so it commits with the change it records;
/// the step is counted in the metrics (`unlock_steps_total`) once that transaction commits.
pub async fn record(conn: &mut Conn, at: Millis, event: Event<'_>) -> anyhow::Result<()> {
    db::audit::append(conn, at, &event).await?;
    crate::metrics::step(event.action, event.outcome);
    Ok(())
}
