//! `cards`: each holder's cards as the card management system knows them. A serial is on one
//! profile at most (its primary key).

use anyhow::Context;
use unlock_protocol::CardStatus;

use super::Conn;
use crate::clock::Millis;

/// A card's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRecord {
    pub status: CardStatus,
    pub cert_expires_at: Millis,
    pub model: String,
}

/// A card's record as a left join reads it: every column `NULL` when the card is not there.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct MaybeCard {
    card_status: Option<String>,
    cert_expires_at: Option<Millis>,
    card_model: Option<String>,
}

impl MaybeCard {
    /// The record, if the card was there.
    pub fn record(&self) -> anyhow::Result<Option<CardRecord>> {
        let (Some(status), Some(cert_expires_at), Some(model)) = (
            self.card_status.clone(),
            self.cert_expires_at,
            self.card_model.clone(),
        ) else {
            return Ok(None);
        };
        Ok(Some(CardRecord {
            status: CardStatus::try_from(status).context("read the card's status")?,
            cert_expires_at,
            model,
        }))
    }
}

/// One of a holder's cards.
#[derive(Debug, Clone)]
pub struct HeldCard {
    pub serial: String,
    pub record: CardRecord,
}

/// A holder's cards, by serial.
pub async fn of_holder(conn: &mut Conn, holder_id: &str) -> anyhow::Result<Vec<HeldCard>> {
    let rows: Vec<(String, String, Millis, String)> = sqlx::query_as(
        "SELECT serial, status, cert_expires_at, model FROM cards WHERE holder_id = $1 ORDER BY serial",
    )
    .bind(holder_id)
    .fetch_all(conn)
    .await
    .context("read the holder's cards")?;
    rows.into_iter()
        .map(|(serial, status, cert_expires_at, model)| {
            Ok(HeldCard {
                serial,
                record: CardRecord {
                    status: CardStatus::try_from(status).context("read a card's status")?,
                    cert_expires_at,
                    model,
                },
            })
        })
        .collect()
}

/// Card `serial`'s record, if it is on `holder_id`'s profile.
pub async fn on_profile(
    conn: &mut Conn,
    serial: &str,
    holder_id: Option<&str>,
) -> anyhow::Result<Option<CardRecord>> {
    let row: Option<(String, Millis, String)> = sqlx::query_as(
        "SELECT status, cert_expires_at, model FROM cards WHERE serial = $1 AND holder_id = $2",
    )
    .bind(serial)
    .bind(holder_id)
    .fetch_optional(conn)
    .await
    .context("read the presented card")?;
    row.map(|(status, cert_expires_at, model)| {
        Ok(CardRecord {
            status: CardStatus::try_from(status).context("read the card's status")?,
            cert_expires_at,
            model,
        })
    })
    .transpose()
}

/// Saves card `serial` on `holder_id`'s profile, or updates its record if it is there
/// already; the holder whose profile it is on (another's, if it was on theirs before).
pub async fn save(
    conn: &mut Conn,
    serial: &str,
    holder_id: &str,
    record: &CardRecord,
    now: Millis,
) -> anyhow::Result<String> {
    sqlx::query_scalar(
        "INSERT INTO cards (serial, holder_id, status, cert_expires_at, model, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (serial) DO UPDATE SET status = $3, cert_expires_at = $4, model = $5, updated_at = $6
         RETURNING holder_id",
    )
    .bind(serial)
    .bind(holder_id)
    .bind(record.status.as_str())
    .bind(record.cert_expires_at)
    .bind(&record.model)
    .bind(now)
    .fetch_one(conn)
    .await
    .context("save the card")
}
