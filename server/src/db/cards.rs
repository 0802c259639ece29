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
    card_key_version: Option<i64>,
}

impl MaybeCard {
    /// The key version the card was issued under, if the card was there.
    pub fn key_version(&self) -> Option<i64> {
        self.card_key_version
    }

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
/// `puk_sealed` (piv/1) is the escrowed PUK as the card management system issued it: it is
/// kept only if the card has none yet, since the service rotates it with every unlock and an
/// export made before that would hold a PUK the card no longer takes. `key_version` is the
/// version of its profile's key a new card is issued under (and the one `puk_sealed` was
/// sealed with); a card on record keeps its own unless its PUK is taken now.
pub async fn save(
    conn: &mut Conn,
    serial: &str,
    holder_id: &str,
    record: &CardRecord,
    puk_sealed: Option<&[u8]>,
    key_version: i64,
    now: Millis,
) -> anyhow::Result<String> {
    sqlx::query_scalar(
        "INSERT INTO cards (serial, holder_id, status, cert_expires_at, model, puk_sealed,
                            key_version, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (serial) DO UPDATE SET status = $3, cert_expires_at = $4, model = $5,
                puk_sealed = COALESCE(cards.puk_sealed, $6),
                key_version = CASE WHEN cards.puk_sealed IS NULL AND $6 IS NOT NULL
                                   THEN $7 ELSE cards.key_version END,
                updated_at = $8
         RETURNING holder_id",
    )
    .bind(serial)
    .bind(holder_id)
    .bind(record.status.as_str())
    .bind(record.cert_expires_at)
    .bind(&record.model)
    .bind(puk_sealed)
    .bind(key_version)
    .bind(now)
    .fetch_one(conn)
    .await
    .context("save the card")
}

/// Replaces card `serial`'s escrowed PUK (the card management system reset it), and
/// forgets any rotation not yet confirmed; `key_version` is the escrow key version `sealed`
/// was sealed with.
pub async fn replace_puk(
    conn: &mut Conn,
    serial: &str,
    sealed: &[u8],
    key_version: i64,
    now: Millis,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE cards SET puk_sealed = $1, puk_pending_sealed = NULL, key_version = $4,
                updated_at = $2
         WHERE serial = $3",
    )
    .bind(sealed)
    .bind(now)
    .bind(serial)
    .bind(key_version)
    .execute(conn)
    .await
    .context("replace the escrowed PUK")?;
    Ok(())
}

/// A piv/1 card's escrowed PUKs, sealed.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Escrow {
    /// The PUK the card had at its last confirmed unlock (or import).
    #[sqlx(rename = "puk_sealed")]
    pub current: Option<Vec<u8>>,
    /// The next PUK, released and not yet confirmed by the card's receipt.
    #[sqlx(rename = "puk_pending_sealed")]
    pub pending: Option<Vec<u8>>,
    /// How many times the PUK has been rotated.
    #[sqlx(rename = "puk_generation")]
    pub generation: i64,
}

impl std::fmt::Debug for Escrow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Escrow")
            .field("current", &self.current.is_some())
            .field("pending", &self.pending.is_some())
            .field("generation", &self.generation)
            .finish()
    }
}

/// Card `serial`'s escrowed PUKs.
pub async fn escrow(conn: &mut Conn, serial: &str) -> anyhow::Result<Option<Escrow>> {
    sqlx::query_as(
        "SELECT puk_sealed, puk_pending_sealed, puk_generation FROM cards WHERE serial = $1",
    )
    .bind(serial)
    .fetch_optional(conn)
    .await
    .context("read the card's escrowed PUK")
}

/// Records `sealed` as card `serial`'s pending next PUK, unless it has one already; whether
/// it was recorded.
pub async fn hold_pending_puk(
    conn: &mut Conn,
    serial: &str,
    sealed: &[u8],
    now: Millis,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE cards SET puk_pending_sealed = $1, updated_at = $2
         WHERE serial = $3 AND puk_pending_sealed IS NULL",
    )
    .bind(sealed)
    .bind(now)
    .bind(serial)
    .execute(conn)
    .await
    .context("hold the next PUK")?;
    Ok(done.rows_affected() == 1)
}

/// The card confirmed its rotation: its pending PUK becomes current. The new generation, or
/// `None` if there was nothing pending.
pub async fn commit_pending_puk(
    conn: &mut Conn,
    serial: &str,
    now: Millis,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE cards SET puk_sealed = puk_pending_sealed, puk_pending_sealed = NULL,
                puk_generation = puk_generation + 1, updated_at = $1
         WHERE serial = $2 AND puk_pending_sealed IS NOT NULL
         RETURNING puk_generation",
    )
    .bind(now)
    .bind(serial)
    .fetch_optional(conn)
    .await
    .context("make the next PUK current")
}
