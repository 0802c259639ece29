//! `holder_emails`: the addresses on holders' profiles. An address is on at most one profile;
//! the primary key says so, and adding relies on it rather than on a look-up first.

use anyhow::Context;

use super::Conn;
use crate::clock::Millis;

/// What became of an address to add.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    Added,
    /// Already on a profile: this holder's own, or the one named.
    Taken {
        owner: String,
    },
}

/// Adds `email` to `holder`'s profile unless some profile has it already.
pub async fn add(
    conn: &mut Conn,
    email: &str,
    holder: &str,
    at: Millis,
    by: &str,
) -> anyhow::Result<Added> {
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO holder_emails (email, holder_id, added_at, added_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (email) DO NOTHING RETURNING email",
    )
    .bind(email)
    .bind(holder)
    .bind(at)
    .bind(by)
    .fetch_optional(&mut *conn)
    .await
    .context("add the address to the profile")?;
    if inserted.is_some() {
        return Ok(Added::Added);
    }
    let owner = owner_of(conn, email)
        .await?
        .context("an address that was taken has no owner")?;
    Ok(Added::Taken { owner })
}

/// Whose profile `email` is on.
pub async fn owner_of(conn: &mut Conn, email: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("SELECT holder_id FROM holder_emails WHERE email = $1")
        .bind(email)
        .fetch_optional(conn)
        .await
        .context("look the address up")
}

/// The addresses on `holder`'s profile, in order.
pub async fn of_holder(conn: &mut Conn, holder: &str) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar("SELECT email FROM holder_emails WHERE holder_id = $1 ORDER BY email")
        .bind(holder)
        .fetch_all(conn)
        .await
        .context("read the holder's addresses")
}

/// Removes `email` from `holder`'s profile; whether it was there.
pub async fn remove(conn: &mut Conn, email: &str, holder: &str) -> anyhow::Result<bool> {
    let done = sqlx::query("DELETE FROM holder_emails WHERE email = $1 AND holder_id = $2")
        .bind(email)
        .bind(holder)
        .execute(conn)
        .await
        .context("remove the address")?;
    Ok(done.rows_affected() > 0)
}
