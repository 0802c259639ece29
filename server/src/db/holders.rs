//! `holders`: the card holders the card management system exports, by their holder id.

use anyhow::Context;

use super::Conn;
use crate::clock::Millis;

/// Saves holder `id`, or updates the name and organisation of one already there (an empty
/// value keeps what is stored).
pub async fn save(
    conn: &mut Conn,
    id: &str,
    display_name: &str,
    organisation: &str,
    now: Millis,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO holders (id, display_name, organisation, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET
             display_name = CASE WHEN $2 = '' THEN holders.display_name ELSE $2 END,
             organisation = CASE WHEN $3 = '' THEN holders.organisation ELSE $3 END",
    )
    .bind(id)
    .bind(display_name)
    .bind(organisation)
    .bind(now)
    .execute(conn)
    .await
    .context("save the holder")?;
    Ok(())
}

/// How many holders there are.
pub async fn count(conn: &mut Conn) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM holders")
        .fetch_one(conn)
        .await
        .context("count holders")
}

/// Whether holder `id` exists.
pub async fn exists(conn: &mut Conn, id: &str) -> anyhow::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM holders WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .context("look the holder up")?;
    Ok(found.is_some())
}
