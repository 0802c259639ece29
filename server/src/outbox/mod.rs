//! The outbox: emails and text messages are queued in the same transaction as the change
//! that needs them and sent later by [`worker`], so an SMTP or SMPP failure never changes an
//! answer and no message is lost across restarts.

pub mod dkim;
pub mod mailer;
pub mod sms;
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

impl std::fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("kind", &self.kind)
            .field("journey_id", &self.journey_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Encrypts a message of `kind` for `recipient`: bodies may carry codes, so they are sealed
/// at rest, and the kind and recipient are authenticated with it — a sealed code copied to
/// another row (another address) does not open.
pub fn seal(
    keys: &Keys,
    kind: OutboxKind,
    recipient: &str,
    message: &Composed,
) -> anyhow::Result<Vec<u8>> {
    let plaintext = serde_json::to_vec(message).context("encode an outbox message")?;
    keys.seal_as(&bound_to(kind, recipient), &plaintext)
}

/// Opens what [`seal`] sealed for `kind` and `recipient` (or, for a message queued before
/// messages were bound to their rows, what the old sealing made).
pub fn open(
    keys: &Keys,
    kind: OutboxKind,
    recipient: &str,
    sealed: &[u8],
) -> anyhow::Result<Composed> {
    let plaintext = keys
        .open_as(&bound_to(kind, recipient), sealed)
        .or_else(|_| keys.open(sealed))?;
    serde_json::from_slice(&plaintext).context("decode the queued message")
}

fn bound_to(kind: OutboxKind, recipient: &str) -> Vec<u8> {
    format!("outbox:{}:{recipient}", kind.as_str()).into_bytes()
}

/// Queues a sealed message inside the caller's transaction.
pub async fn enqueue(conn: &mut Conn, outgoing: Outgoing<'_>, now: Millis) -> anyhow::Result<i64> {
    db::outbox::enqueue(conn, &outgoing.row(), now).await
}

impl Outgoing<'_> {
    /// The row that queues it.
    pub fn row(&self) -> db::outbox::NewMessage<'_> {
        db::outbox::NewMessage {
            kind: self.kind,
            recipient: self.recipient,
            journey_id: self.journey_id,
            holder_id: self.holder_id,
            sealed: &self.sealed,
            expires_at: self.expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_only_for_its_kind_and_recipient() {
        let keys = Keys::from_secret(&[3; 32]);
        let message = Composed {
            subject: "Your code".into(),
            text: "Your security code is 123456".into(),
            html: "<p>123456</p>".into(),
        };
        let kind = OutboxKind::OneTimeCode;
        let sealed = seal(&keys, kind, "jane@trust.example", &message).unwrap();
        let opened = open(&keys, kind, "jane@trust.example", &sealed).unwrap();
        assert_eq!(opened.text, message.text);
        // Moved to another address's row, or passed off as another kind: it does not open.
        assert!(open(&keys, kind, "mallory@trust.example", &sealed).is_err());
        assert!(
            open(
                &keys,
                OutboxKind::CardUnlocked,
                "jane@trust.example",
                &sealed
            )
            .is_err()
        );
        // A message queued before rows were bound still opens.
        let legacy = keys.seal(&serde_json::to_vec(&message).unwrap()).unwrap();
        assert_eq!(
            open(&keys, kind, "anyone@trust.example", &legacy)
                .unwrap()
                .text,
            message.text
        );
    }
}
