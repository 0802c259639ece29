//! The email outbox: messages are queued in the same transaction as the change that needs
//! them and sent later by [`worker`], so an SMTP failure never changes an answer and no
//! message is lost across restarts.

pub mod mailer;
pub mod templates;
pub mod worker;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;

use crate::clock::Millis;
use crate::secrets::Keys;

/// A rendered message, as sealed into the outbox.
#[derive(Clone, Serialize, Deserialize)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Composed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body may carry a one-time code.
        f.debug_struct("Composed")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A message to queue.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub kind: &'a str,
    pub recipient: &'a str,
    pub journey_id: Option<i64>,
    pub message: Composed,
    /// After this the message is pointless (an expired code) and is not sent.
    pub expires_at: Option<Millis>,
}

/// Queues a message inside the caller's transaction; the body is sealed at rest.
pub async fn enqueue(
    conn: &mut SqliteConnection,
    keys: &Keys,
    outgoing: Outgoing<'_>,
    now: Millis,
) -> anyhow::Result<i64> {
    let plaintext = serde_json::to_vec(&outgoing.message).context("encode an outbox message")?;
    let sealed = keys.seal(&plaintext)?;
    sqlx::query_scalar(
        "INSERT INTO outbox (kind, recipient, journey_id, sealed_message, state, next_attempt_at, expires_at, created_at)
         VALUES (?, ?, ?, ?, 'queued', ?, ?, ?) RETURNING id",
    )
    .bind(outgoing.kind)
    .bind(outgoing.recipient)
    .bind(outgoing.journey_id)
    .bind(sealed)
    .bind(now)
    .bind(outgoing.expires_at)
    .bind(now)
    .fetch_one(conn)
    .await
    .context("queue an email")
}
