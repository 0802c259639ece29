//! `holder_emails`: the addresses on holders' profiles. An address is on at most one profile;
//! the primary key says so, and adding relies on it rather than on a look-up first (the
//! statements shared with `holder_mobiles` are in [`super::contacts`]).

use std::collections::HashMap;

use anyhow::Context;

use unlock_protocol::EmailAddress;

use super::contacts::EMAILS;
use super::throttles::{Count, Hit, count_hit};
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

/// Adds `email` to `holder`'s profile unless some profile has it already; with
/// `awaiting_approval`, it starts no journey until a second RA approves it ([`approve`]).
pub async fn add(
    conn: &mut Conn,
    email: &str,
    holder: &str,
    at: Millis,
    by: &str,
    awaiting_approval: bool,
) -> anyhow::Result<Added> {
    EMAILS
        .add(conn, email, holder, at, by, awaiting_approval)
        .await
}

/// Whose profile `email` is on.
pub async fn owner_of(conn: &mut Conn, email: &str) -> anyhow::Result<Option<String>> {
    EMAILS.owner_of(conn, email).await
}

/// The addresses on `holder`'s profile, in order.
pub async fn of_holder(conn: &mut Conn, holder: &str) -> anyhow::Result<Vec<String>> {
    EMAILS.of_holder(conn, holder).await
}

/// What became of an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    Approved,
    /// The address is not on the holder's profile.
    NotOnProfile,
    /// It was not waiting for approval.
    NotWaiting,
    /// The one approving is the one who added it.
    SameStaff,
}

/// Lets `email`, waiting on `holder`'s profile, start journeys, if `by` is not who added it
/// (decided in one statement on the row as it stands).
pub async fn approve(
    conn: &mut Conn,
    email: &str,
    holder: &str,
    by: &str,
    at: Millis,
) -> anyhow::Result<Approval> {
    EMAILS.approve(conn, email, holder, by, at).await
}

/// Removes `email` from `holder`'s profile; whether it was there.
pub async fn remove(conn: &mut Conn, email: &str, holder: &str) -> anyhow::Result<bool> {
    EMAILS.remove(conn, email, holder).await
}

/// Whether `email`'s domain is on the allow list, and whose profile the address is on (one
/// round trip: this runs on every start).
pub async fn look_up(
    conn: &mut Conn,
    email: &EmailAddress,
) -> anyhow::Result<(bool, Option<String>)> {
    let (allowed, holder): (Flag, Option<String>) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM allowed_domains WHERE domain = $1),
                (SELECT holder_id FROM holder_emails
                 WHERE email = $2 AND awaiting_approval_since IS NULL)",
    )
    .bind(email.domain())
    .bind(email.as_str())
    .fetch_one(conn)
    .await
    .context("look up the address")?;
    Ok((allowed.into(), holder))
}

/// What a start finds and counts before its write ([`look_up_counting`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartLookUp {
    /// Whether the address's domain is allowed.
    pub allowed: bool,
    /// The holder whose profile has the address, if any.
    pub holder: Option<String>,
    /// The client's count after the hit.
    pub count: Count,
    /// On PostgreSQL, an id taken from the journeys' sequence for the journey the start may
    /// create, so the journey, its code and its email go in one statement
    /// ([`super::codes::issue_with_journey`]); an id left unused is a gap, nothing more.
    pub journey_id: Option<i64>,
}

/// [`look_up`], and `hit` counted as [`super::throttles::count`] counts it, in one statement
/// on PostgreSQL (one round trip for the two on every start, whose client is counted in a
/// statement committed on its own there), which also reserves the journey's id; in two on
/// SQLite.
pub async fn look_up_counting(
    conn: &mut Conn,
    email: &EmailAddress,
    hit: Hit<'_>,
) -> anyhow::Result<StartLookUp> {
    if Engine::of(conn) == Engine::Sqlite {
        let (allowed, holder) = look_up(conn, email).await?;
        let count = super::throttles::count(conn, hit.scope, hit.key, hit.now, hit.window).await?;
        return Ok(StartLookUp {
            allowed,
            holder,
            count,
            journey_id: None,
        });
    }
    let (allowed, holder, hits, locked_until, journey_id): (
        Flag,
        Option<String>,
        i64,
        Millis,
        i64,
    ) = sqlx::query_as(concat!(
        "WITH hit AS (",
        count_hit!(),
        " RETURNING hits, locked_until)
             SELECT EXISTS (SELECT 1 FROM allowed_domains WHERE domain = $5),
                    (SELECT holder_id FROM holder_emails
                     WHERE email = $6 AND awaiting_approval_since IS NULL),
                    hit.hits, hit.locked_until,
                    nextval(pg_get_serial_sequence('journeys', 'id'))
             FROM hit"
    ))
    .bind(hit.scope)
    .bind(hit.key)
    .bind(hit.now)
    .bind(hit.window)
    .bind(email.domain())
    .bind(email.as_str())
    .fetch_one(conn)
    .await
    .context("look up the address and count a throttle hit")?;
    Ok(StartLookUp {
        allowed: allowed.into(),
        holder,
        count: Count { hits, locked_until },
        journey_id: Some(journey_id),
    })
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
