//! `one_time_codes`: keyed hashes of the codes sent, their wrong tries and state. Changes
//! are made in SQL on the row as it stands (`wrong_tries = wrong_tries + 1 … RETURNING`),
//! never from a value read earlier, and only while the code is still live.

use anyhow::Context;
use sqlx::Any;
use sqlx::any::AnyArguments;

use super::journeys::NewJourney;
use super::outbox::{self, NewMessage};
use super::states::{CodeState, JourneyState};
use super::{Conn, Engine};
use crate::clock::Millis;

/// A wrong try counted against a live code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongTry {
    /// Wrong tries so far, this one included.
    pub wrong_tries: i64,
    /// Whether this try used up the code.
    pub voided: bool,
}

/// Counts a wrong try against code `id`, voiding it at `max_tries`; `None` if the code was
/// no longer live (another request used or voided it first).
pub async fn record_wrong_try(
    conn: &mut Conn,
    id: i64,
    max_tries: i64,
) -> anyhow::Result<Option<WrongTry>> {
    let row: Option<(i64, CodeState)> = sqlx::query_as(
        "UPDATE one_time_codes
         SET wrong_tries = wrong_tries + 1,
             state = CASE WHEN wrong_tries + 1 >= $2 THEN $3 ELSE state END
         WHERE id = $1 AND state = $4
         RETURNING wrong_tries, state",
    )
    .bind(id)
    .bind(max_tries)
    .bind(CodeState::Voided)
    .bind(CodeState::Live)
    .fetch_optional(conn)
    .await
    .context("count a wrong code")?;
    Ok(row.map(|(wrong_tries, state)| WrongTry {
        wrong_tries,
        voided: state == CodeState::Voided,
    }))
}

/// Uses up code `id`; whether it was still live.
pub async fn use_up(conn: &mut Conn, id: i64) -> anyhow::Result<bool> {
    let done = sqlx::query("UPDATE one_time_codes SET state = $2 WHERE id = $1 AND state = $3")
        .bind(id)
        .bind(CodeState::Used)
        .bind(CodeState::Live)
        .execute(conn)
        .await
        .context("use up the code")?;
    Ok(done.rows_affected() > 0)
}

/// A live code to store.
pub struct NewCode<'a> {
    pub journey_id: i64,
    pub subject: &'a str,
    pub code_mac: &'a [u8],
    /// Wrong tries carried over from the code it replaces.
    pub wrong_tries: i64,
}

impl std::fmt::Debug for NewCode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCode")
            .field("journey_id", &self.journey_id)
            .field("wrong_tries", &self.wrong_tries)
            .finish_non_exhaustive()
    }
}

/// A code's insert, `$1`–`$6` bound by [`bind_code`] (a macro, so `concat!` can put it in
/// PostgreSQL's statement that queues the code's email too).
macro_rules! insert_code {
    () => {
        "INSERT INTO one_time_codes (journey_id, subject, code_mac, issued_at, state, wrong_tries)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
    };
}

/// PostgreSQL's statement that stores a code and queues its email, after its `WITH` (and
/// any other part before it): `$1`–`$6` the code, `$7`–`$14` the email, bound by
/// [`bind_code_and_email`]. The email's insert is left empty (`WHERE $14` false) for an
/// address on no profile, so known and unknown addresses run the same statement.
macro_rules! code_and_email {
    () => {
        concat!(
            "code AS (",
            insert_code!(),
            "), email AS (
                 INSERT INTO outbox (kind, recipient, journey_id, holder_id, sealed_message, state, next_attempt_at, expires_at, created_at, channel)
                 SELECT $7, $8, $9, $10, $11, 'queued', $4, $12, $4, $13 WHERE $14
             )
             SELECT id FROM code"
        )
    };
}

/// Stores a new live code's keyed hash for the journey and queues `email`, its email, if
/// given; the code's id. On PostgreSQL both rows go in one statement, one round trip, as
/// they do with no email (which only leaves the second insert empty), so a code costs the
/// same whether or not its address is on a profile; on SQLite, in the same transaction.
pub async fn issue(
    conn: &mut Conn,
    new: &NewCode<'_>,
    email: Option<&NewMessage<'_>>,
    now: Millis,
) -> anyhow::Result<i64> {
    if Engine::of(conn) == Engine::Sqlite {
        let id = insert(conn, new, now).await?;
        if let Some(email) = email {
            outbox::enqueue(conn, email, now).await?;
        }
        return Ok(id);
    }
    bind_code_and_email(concat!("WITH ", code_and_email!()), new, email, now)
        .fetch_one(conn)
        .await
        .context("store the code's keyed hash and queue its email")
}

/// [`issue`] for a journey stored with it, under the id reserved for it (`new.journey_id`,
/// see [`super::holder_emails::StartLookUp::journey_id`]): on PostgreSQL the journey, its
/// code and the email are one statement, one round trip; on SQLite, three in the same
/// transaction. The code's id.
pub async fn issue_with_journey(
    conn: &mut Conn,
    journey: &NewJourney<'_>,
    new: &NewCode<'_>,
    email: Option<&NewMessage<'_>>,
    now: Millis,
) -> anyhow::Result<i64> {
    if Engine::of(conn) == Engine::Sqlite {
        super::journeys::create_as(conn, new.journey_id, journey, now).await?;
        return issue(conn, new, email, now).await;
    }
    bind_code_and_email(
        concat!(
            "WITH journey AS (
                 INSERT INTO journeys (id, token_hash, subject, holder_id, email, client_addr, state, started_at, expires_at, updated_at)
                 VALUES ($1, $15, $2, $16, $17, $18, $19, $4, $20, $4)
             ), ",
            code_and_email!()
        ),
        new,
        email,
        now,
    )
    .bind(journey.token_hash)
    .bind(journey.holder_id)
    .bind(journey.email)
    .bind(journey.client_addr)
    .bind(JourneyState::AwaitingCode)
    .bind(journey.expires_at)
    .fetch_one(conn)
    .await
    .context("store the journey, its code's keyed hash and its email")
}

/// `sql`, an [`insert_code!`] of its own or within a larger statement, with the code bound.
fn bind_code<'q>(
    sql: &'static str,
    new: &NewCode<'q>,
    now: Millis,
) -> sqlx::query::QueryScalar<'q, Any, i64, AnyArguments> {
    sqlx::query_scalar(sql)
        .bind(new.journey_id)
        .bind(new.subject)
        .bind(new.code_mac)
        .bind(now)
        .bind(CodeState::Live)
        .bind(new.wrong_tries)
}

/// `sql`, with a [`code_and_email!`] in it, with the code and `email` (or nothing to
/// queue) bound.
fn bind_code_and_email<'q>(
    sql: &'static str,
    new: &NewCode<'q>,
    email: Option<&NewMessage<'q>>,
    now: Millis,
) -> sqlx::query::QueryScalar<'q, Any, i64, AnyArguments> {
    bind_code(sql, new, now)
        .bind(email.map(|email| email.kind))
        .bind(email.map(|email| email.recipient))
        .bind(email.and_then(|email| email.journey_id))
        .bind(email.and_then(|email| email.holder_id))
        .bind(email.map(|email| email.sealed.to_vec()))
        .bind(email.and_then(|email| email.expires_at))
        .bind(email.map(|email| crate::contact::channel_of(email.recipient)))
        .bind(email.is_some())
}

async fn insert(conn: &mut Conn, new: &NewCode<'_>, now: Millis) -> anyhow::Result<i64> {
    bind_code(insert_code!(), new, now)
        .fetch_one(conn)
        .await
        .context("store the code's keyed hash")
}

/// Supersedes the journey's live code, so only the one about to be sent may work; the wrong
/// tries it had, read from the row as it stands (none if no code was live).
pub async fn supersede_live(conn: &mut Conn, journey_id: i64) -> anyhow::Result<i64> {
    let tries: Option<i64> = sqlx::query_scalar(
        "UPDATE one_time_codes SET state = $2 WHERE journey_id = $1 AND state = $3
         RETURNING wrong_tries",
    )
    .bind(journey_id)
    .bind(CodeState::Superseded)
    .bind(CodeState::Live)
    .fetch_optional(conn)
    .await
    .context("supersede the journey's earlier code")?;
    Ok(tries.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::super::scratch_sqlite;
    use super::super::states::OutboxKind;
    use super::*;

    /// SQLite never reserves a journey's id, but [`issue_with_journey`] stores one it is
    /// given, as PostgreSQL's statement does (the API suite runs that one on every start).
    #[tokio::test]
    async fn a_journey_is_stored_with_its_code_and_email_under_the_id_reserved_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = scratch_sqlite(dir.path()).await;
        let mut conn = db.write.acquire().await.unwrap();
        let (id, now) = (4242, 1_000_000);
        let journey = NewJourney {
            token_hash: b"token hash",
            subject: "email:subject",
            holder_id: None,
            email: "jane.doe@trust.example",
            client_addr: "192.0.2.7",
            expires_at: now + 600_000,
        };
        let code = NewCode {
            journey_id: id,
            subject: journey.subject,
            code_mac: b"code mac",
            wrong_tries: 0,
        };
        let email = NewMessage {
            kind: OutboxKind::OneTimeCode,
            recipient: journey.email,
            journey_id: Some(id),
            holder_id: None,
            sealed: b"sealed",
            expires_at: Some(journey.expires_at),
        };
        let code_id = issue_with_journey(&mut conn, &journey, &code, Some(&email), now)
            .await
            .unwrap();
        let stored: (i64, String) = sqlx::query_as("SELECT id, state FROM journeys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(stored, (id, "awaiting_code".to_owned()));
        let codes: Vec<(i64, i64)> = sqlx::query_as("SELECT id, journey_id FROM one_time_codes")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        assert_eq!(codes, [(code_id, id)]);
        let queued: Vec<i64> = sqlx::query_scalar("SELECT journey_id FROM outbox")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        assert_eq!(queued, [id]);
    }
}
