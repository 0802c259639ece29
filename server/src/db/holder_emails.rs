//! `holder_emails`: the addresses on holders' profiles. An address is on at most one profile;
//! the primary key says so, and adding relies on it rather than on a look-up first.

use std::collections::HashMap;

use anyhow::Context;

use unlock_protocol::EmailAddress;

use super::{Conn, Engine, Flag};
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

/// Whether `email`'s domain is on the allow list, and whose profile the address is on (one
/// round trip: this runs on every start).
pub async fn look_up(
    conn: &mut Conn,
    email: &EmailAddress,
) -> anyhow::Result<(bool, Option<String>)> {
    let (allowed, holder): (Flag, Option<String>) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM allowed_domains WHERE domain = $1),
                (SELECT holder_id FROM holder_emails WHERE email = $2)",
    )
    .bind(email.domain())
    .bind(email.as_str())
    .fetch_one(conn)
    .await
    .context("look up the address")?;
    Ok((allowed.into(), holder))
}

/// How many addresses on profiles each domain has (one pass over the addresses).
pub async fn count_by_domain(conn: &mut Conn) -> anyhow::Result<HashMap<String, i64>> {
    // The part after the '@': each dialect has its own string functions for it.
    let count = match Engine::of(conn) {
        Engine::Sqlite => {
            "SELECT substr(email, instr(email, '@') + 1) AS domain, COUNT(*) FROM holder_emails
             GROUP BY domain"
        }
        Engine::Postgres => {
            "SELECT split_part(email, '@', 2) AS domain, COUNT(*) FROM holder_emails
             GROUP BY domain"
        }
    };
    let counts: Vec<(String, i64)> = sqlx::query_as(count)
        .fetch_all(conn)
        .await
        .context("count the addresses per domain")?;
    Ok(counts.into_iter().collect())
}
