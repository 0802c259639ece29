//! `key_versions`: which versions of the card master key and the PUK escrow key exist, where
//! each is kept, and (through `cards.key_version`) which cards were issued under each. Never
//! key bytes.

use anyhow::Context;

use super::Conn;
use super::states::{CustodyKind, KeyPurpose};
use crate::clock::Millis;

/// A key version on record.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyVersionRow {
    pub purpose: KeyPurpose,
    pub version: i64,
    pub custody: CustodyKind,
    /// The key file's name (without `.key`) or the token object's label.
    pub label: String,
    pub created_at: Millis,
}

/// Every version on record, by purpose and version.
pub async fn all(conn: &mut Conn) -> anyhow::Result<Vec<KeyVersionRow>> {
    sqlx::query_as(
        "SELECT purpose, version, custody, label, created_at FROM key_versions
         ORDER BY purpose, version",
    )
    .fetch_all(conn)
    .await
    .context("read the key versions")
}

/// The newest version of `purpose`, which new cards are issued under: 1 (the configured
/// key) while none is on record.
pub async fn current(conn: &mut Conn, purpose: KeyPurpose) -> anyhow::Result<i64> {
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM key_versions WHERE purpose = $1")
            .bind(purpose)
            .fetch_one(conn)
            .await
            .context("read the current key version")?;
    Ok(newest.unwrap_or(1))
}

/// Records `row`; `false` if that purpose already has that version (the primary key decides,
/// so two operators rotating at once can't both make version n).
pub async fn add(conn: &mut Conn, row: &KeyVersionRow) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO key_versions (purpose, version, custody, label, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(row.purpose)
    .bind(row.version)
    .bind(row.custody)
    .bind(&row.label)
    .bind(row.created_at)
    .execute(conn)
    .await
    .context("record a key version")?;
    Ok(done.rows_affected() > 0)
}

/// Moves an existing version to another custody (a file key imported onto a token): the
/// cards issued under it keep working, now through the token. `false` if it is not on record.
pub async fn move_custody(
    conn: &mut Conn,
    purpose: KeyPurpose,
    version: i64,
    custody: CustodyKind,
    label: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE key_versions SET custody = $1, label = $2 WHERE purpose = $3 AND version = $4",
    )
    .bind(custody)
    .bind(label)
    .bind(purpose)
    .bind(version)
    .execute(conn)
    .await
    .context("move a key version")?;
    Ok(done.rows_affected() > 0)
}

/// How many cards of `model` were issued under each key version, by version.
pub async fn cards_per_version(conn: &mut Conn, model: &str) -> anyhow::Result<Vec<(i64, i64)>> {
    sqlx::query_as(
        "SELECT key_version, COUNT(*) FROM cards WHERE model = $1
         GROUP BY key_version ORDER BY key_version",
    )
    .bind(model)
    .fetch_all(conn)
    .await
    .context("count the cards per key version")
}
