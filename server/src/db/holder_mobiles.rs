//! `holder_mobiles`: the mobile numbers on holders' profiles (E.164). A number is on at most
//! one profile; the primary key says so, and adding relies on it rather than on a look-up
//! first. The same shape as [`super::holder_emails`], through [`super::contacts`].

use anyhow::Context;

use super::Conn;
use super::contacts::MOBILES;
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
    MOBILES
        .add(conn, number, holder, at, by, awaiting_approval)
        .await
}

/// The numbers on `holder`'s profile, in order.
pub async fn of_holder(conn: &mut Conn, holder: &str) -> anyhow::Result<Vec<String>> {
    MOBILES.of_holder(conn, holder).await
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
    MOBILES.approve(conn, number, holder, by, at).await
}

/// Removes `number` from `holder`'s profile; whether it was there.
pub async fn remove(conn: &mut Conn, number: &str, holder: &str) -> anyhow::Result<bool> {
    MOBILES.remove(conn, number, holder).await
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
