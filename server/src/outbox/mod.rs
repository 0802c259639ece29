//! The email outbox: messages are queued in the same transaction as the change that needs
//! them and sent later by [`worker`], so an SMTP failure never changes an answer and no
//! message is lost across restarts.

pub mod mailer;
pub mod templates;
pub mod worker;

use crate::db::states::OutboxKind;
use crate::db::{self, Conn};
use anyhow::Context;
use serde::{Deserialize, Serialize};

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
    pub kind: OutboxKind,
    pub recipient: &'a str,
    pub journey_id: Option<i64>,
    /// Whose profile the message concerns.
    pub holder_id: Option<&'a str>,
    /// The message as [`seal`] returned it.
    pub sealed: Vec<u8>,
    /// After this the message is pointless (an expired code) and is not sent.
    pub expires_at: Option<Millis>,
}

/// Encrypts a message for the outbox: bodies may carry codes, so they are sealed at rest.
pub fn seal(keys: &Keys, message: &Composed) -> anyhow::Result<Vec<u8>> {
    let plaintext = serde_json::to_vec(message).context("encode an outbox message")?;
    keys.seal(&plaintext)
}

/// Queues a sealed message inside the caller's transaction.
pub async fn enqueue(conn: &mut Conn, outgoing: Outgoing<'_>, now: Millis) -> anyhow::Result<i64> {
    let message = db::outbox::NewMessage {
        kind: outgoing.kind,
        recipient: outgoing.recipient,
        journey_id: outgoing.journey_id,
        holder_id: outgoing.holder_id,
        sealed: &outgoing.sealed,
        expires_at: outgoing.expires_at,
    };
    db::outbox::enqueue(conn, &message, now).await
}
