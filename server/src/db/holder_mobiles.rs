//! `holder_mobiles`: the mobile numbers on holders' profiles (E.164). A number is on at most
//! one profile; the primary key says so, and adding relies on it rather than on a look-up
//! first. The same shape as [`super::holder_emails`].

use anyhow::Context;

use super::Conn;
use super::holder_emails::{Added, Approval};
use crate::clock::Millis;

/// Adds `number` to `holder`'s profile unless some profile has it already; with
/// `awaiting_approval`, it starts no journey until a second RA approves it ([`approve`]).
pub async fn add(
    conn: &mut Conn,
    number: &str,
    holder: &str,
    at: Millis,
    by: &str,
    awaiting_approval: bool,
) -> anyhow::Result<Added> {
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO holder_mobiles (number, holder_id, added_at, added_by, awaiting_approval_since)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (number) DO NOTHING RETURNING number",
    )
    .bind(number)
    .bind(holder)
    .bind(at)
    .bind(by)
    .bind(awaiting_approval.then_some(at))
    .fetch_optional(&mut *conn)
    .await
    .context("add the mobile number to the profile")?;
    if inserted.is_some() {
        return Ok(Added::Added);
    }
    let owner = owner_of(conn, number)
        .await?
        .context("a number that was taken has no owner")?;
    Ok(Added::Taken { owner })
}

/// Whose profile `number` is on.
pub async fn owner_of(conn: &mut Conn, number: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("SELECT holder_id FROM holder_mobiles WHERE number = $1")
        .bind(number)
        .fetch_optional(conn)
        .await
        .context("look the mobile number up")
}

/// The numbers on `holder`'s profile, in order.
pub async fn of_holder(conn: &mut Conn, holder: &str) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar("SELECT number FROM holder_mobiles WHERE holder_id = $1 ORDER BY number")
        .bind(holder)
        .fetch_all(conn)
        .await
        .context("read the holder's mobile numbers")
}

/// Lets `number`, waiting on `holder`'s profile, start journeys, if `by` is not who added it
/// (decided in one statement on the row as it stands).
pub async fn approve(
    conn: &mut Conn,
    number: &str,
    holder: &str,
    by: &str,
    at: Millis,
) -> anyhow::Result<Approval> {
    let approved: Option<String> = sqlx::query_scalar(
        "UPDATE holder_mobiles SET awaiting_approval_since = NULL, approved_by = $3, approved_at = $4
         WHERE number = $1 AND holder_id = $2 AND awaiting_approval_since IS NOT NULL
           AND added_by <> $3
         RETURNING number",
    )
    .bind(number)
    .bind(holder)
    .bind(by)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await
    .context("approve the mobile number")?;
    if approved.is_some() {
        return Ok(Approval::Approved);
    }
    let row: Option<(String, Option<Millis>)> = sqlx::query_as(
        "SELECT added_by, awaiting_approval_since FROM holder_mobiles
         WHERE number = $1 AND holder_id = $2",
    )
    .bind(number)
    .bind(holder)
    .fetch_optional(conn)
    .await
    .context("read the mobile number")?;
    Ok(match row {
        None => Approval::NotOnProfile,
        Some((_, None)) => Approval::NotWaiting,
        Some(_) => Approval::SameStaff,
    })
}

/// Removes `number` from `holder`'s profile; whether it was there.
pub async fn remove(conn: &mut Conn, number: &str, holder: &str) -> anyhow::Result<bool> {
    let done = sqlx::query("DELETE FROM holder_mobiles WHERE number = $1 AND holder_id = $2")
        .bind(number)
        .bind(holder)
        .execute(conn)
        .await
        .context("remove the mobile number")?;
    Ok(done.rows_affected() > 0)
}

/// Whose profile `number` is on, if it may start journeys (not waiting for approval).
pub async fn look_up(conn: &mut Conn, number: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT holder_id FROM holder_mobiles
         WHERE number = $1 AND awaiting_approval_since IS NULL",
    )
    .bind(number)
    .fetch_optional(conn)
    .await
    .context("look up the mobile number")
}
