//! The outbox as monitoring sees it: how many messages still wait to go out, and since when.

use anyhow::Context;

use super::Conn;
use crate::clock::Millis;

/// The messages still queued: due now, or waiting for a retry after a failed send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub queued: i64,
    /// When the oldest of them was queued; `None` when nothing waits.
    pub oldest_queued_at: Option<Millis>,
}

impl Backlog {
    /// How long the oldest message has waited at `now`, in milliseconds (0 when none waits).
    pub fn oldest_age(&self, now: Millis) -> Millis {
        self.oldest_queued_at
            .map_or(0, |at| now.saturating_sub(at).max(0))
    }
}

/// One look at the whole outbox, whichever instance queued or claimed its messages.
pub async fn backlog(conn: &mut Conn) -> anyhow::Result<Backlog> {
    let (queued, oldest_queued_at): (i64, Option<Millis>) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT), CAST(MIN(created_at) AS BIGINT)
         FROM outbox WHERE state = 'queued'",
    )
    .fetch_one(conn)
    .await
    .context("read the outbox backlog")?;
    Ok(Backlog {
        queued,
        oldest_queued_at,
    })
}
