//! `ra_unlock_codes`: keyed hashes of the one-time unlock codes RAs issue to holders they
//! verified over the phone, bound to one holder each. Changes are made in SQL on the row as
//! it stands, and only while the code is still live, so a code works once however many
//! requests race for it.

use anyhow::Context;

use super::Conn;
use super::states::CodeState;
use crate::clock::Millis;

/// A code to store (its `Debug` leaves the hash and the note out).
pub struct NewRaCode<'a> {
    pub holder_id: &'a str,
    pub code_mac: &'a [u8],
    pub issued_by: &'a str,
    pub verified_how: &'a str,
    pub note: &'a str,
    pub expires_at: Millis,
}

impl std::fmt::Debug for NewRaCode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRaCode")
            .field("holder_id", &self.holder_id)
            .field("issued_by", &self.issued_by)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Stores a live code for the holder; any earlier live code of theirs stops working.
pub async fn issue(conn: &mut Conn, code: &NewRaCode<'_>, now: Millis) -> anyhow::Result<()> {
    sqlx::query("UPDATE ra_unlock_codes SET state = $1 WHERE holder_id = $2 AND state = $3")
        .bind(CodeState::Superseded)
        .bind(code.holder_id)
        .bind(CodeState::Live)
        .execute(&mut *conn)
        .await
        .context("supersede the holder's earlier unlock code")?;
    sqlx::query(
        "INSERT INTO ra_unlock_codes (holder_id, code_mac, issued_by, verified_how, note, issued_at, expires_at, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(code.holder_id)
    .bind(code.code_mac)
    .bind(code.issued_by)
    .bind(code.verified_how)
    .bind(code.note)
    .bind(now)
    .bind(code.expires_at)
    .bind(CodeState::Live)
    .execute(conn)
    .await
    .context("store the unlock code")?;
    Ok(())
}

/// A stored code, found by its keyed hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RaCode {
    pub id: i64,
    pub holder_id: String,
    pub code_mac: Vec<u8>,
    pub issued_by: String,
    pub expires_at: Millis,
    pub state: CodeState,
}

/// The code stored under `code_mac`, whatever its state.
pub async fn find(conn: &mut Conn, code_mac: &[u8]) -> anyhow::Result<Option<RaCode>> {
    sqlx::query_as(
        "SELECT id, holder_id, code_mac, issued_by, expires_at, state
         FROM ra_unlock_codes WHERE code_mac = $1",
    )
    .bind(code_mac)
    .fetch_optional(conn)
    .await
    .context("look the unlock code up")
}

/// Uses up code `id`; whether it was still live.
pub async fn use_up(conn: &mut Conn, id: i64, now: Millis) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE ra_unlock_codes SET state = $1, used_at = $2 WHERE id = $3 AND state = $4",
    )
    .bind(CodeState::Used)
    .bind(now)
    .bind(id)
    .bind(CodeState::Live)
    .execute(conn)
    .await
    .context("use up the unlock code")?;
    Ok(done.rows_affected() > 0)
}

/// Records the journey code `id` opened.
pub async fn opened(conn: &mut Conn, id: i64, journey_id: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE ra_unlock_codes SET journey_id = $1 WHERE id = $2")
        .bind(journey_id)
        .bind(id)
        .execute(conn)
        .await
        .context("record the journey the unlock code opened")?;
    Ok(())
}
