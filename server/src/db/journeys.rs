//! `journeys`: one per holder's attempt, found by the keyed hash of its cookie token. Each
//! step changes the row in one statement; the card steps' counter is raised in SQL, and
//! only below its cap.

use anyhow::Context;
use sqlx::AssertSqlSafe;

use super::states::{ClosedReason, CodeState, JourneyState, Scope};
use super::{Conn, Engine};
use crate::clock::Millis;

/// A journey as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Journey {
    pub id: i64,
    pub subject: String,
    pub holder_id: Option<String>,
    pub email: String,
    pub state: JourneyState,
    pub ineligible_reason: Option<String>,
    pub expires_at: Millis,
    /// The card accepted for unlocking, once one has been.
    pub card_serial: Option<String>,
    /// Why a closed journey closed.
    pub closed_reason: Option<ClosedReason>,
}

/// The latest code of a journey; only it can be right.
#[derive(Clone)]
pub struct LatestCode {
    pub id: i64,
    pub code_mac: Vec<u8>,
    pub issued_at: Millis,
    pub wrong_tries: i64,
    pub state: CodeState,
}

impl std::fmt::Debug for LatestCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatestCode")
            .field("id", &self.id)
            .field("issued_at", &self.issued_at)
            .field("wrong_tries", &self.wrong_tries)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A journey, its latest code, until when its client's or subject's lock-out runs, and whose
/// profile the address (or number) its codes go to is on now.
#[derive(Debug)]
pub struct WithCode {
    pub journey: Journey,
    pub code: Option<LatestCode>,
    pub locked_until: Option<Millis>,
    pub contact_owner: Option<String>,
}

#[derive(sqlx::FromRow)]
struct WithCodeRow {
    #[sqlx(flatten)]
    journey: Journey,
    code_id: Option<i64>,
    code_mac: Option<Vec<u8>>,
    issued_at: Option<Millis>,
    wrong_tries: Option<i64>,
    code_state: Option<CodeState>,
    locked_until: Option<Millis>,
    contact_owner: Option<String>,
}

/// The lock-outs [`with_code`] reads beside the journey: codes typed from `client`, and
/// every lock-out of the journey's subject ([`super::throttles::SUBJECT_SCOPES`]).
#[derive(Debug, Clone, Copy)]
pub struct LockScopes<'a> {
    pub client_scope: Scope,
    pub client: &'a str,
}

/// Whether a journey is read to change it (its row locked until the write commits, so the
/// journey's steps take turns) or only to show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Change,
    Show,
}

/// `FOR UPDATE OF j` where the engine needs it to hold the journey row for a change (SQLite's
/// writes hold the whole database already).
fn lock_clause(conn: &Conn, purpose: Purpose) -> &'static str {
    match (Engine::of(conn), purpose) {
        (Engine::Postgres, Purpose::Change) => " FOR UPDATE OF j",
        _ => "",
    }
}

/// The journey whose token has this keyed hash, with its latest code, the lock-out that
/// applies and the owner of its contact (one query: this runs on every code check). A
/// contact is an email address or a mobile number, never both, so at most one of the
/// owner's look-ups finds a row. The owner is read as the statement began, before it waited
/// for the journey's lock: a contact removed meanwhile closes its open journeys (in the same
/// write as the removal), which the journey's row, read again after the wait, shows.
pub async fn with_code(
    conn: &mut Conn,
    token_hash: &[u8],
    locks: LockScopes<'_>,
    purpose: Purpose,
) -> anyhow::Result<Option<WithCode>> {
    let sql = format!(
        "SELECT j.id, j.subject, j.holder_id, j.email, j.state, j.ineligible_reason, j.expires_at,
                j.card_serial, j.closed_reason,
                c.id AS code_id, c.code_mac, c.issued_at, c.wrong_tries, c.state AS code_state,
                (SELECT MAX(locked_until) FROM throttles
                 WHERE (scope = $2 AND key = $3)
                    OR (scope IN {} AND key = j.subject)) AS locked_until,
                COALESCE((SELECT holder_id FROM holder_emails WHERE email = j.email),
                         (SELECT holder_id FROM holder_mobiles WHERE number = j.email))
                    AS contact_owner
         FROM journeys j
         LEFT JOIN one_time_codes c
           ON c.id = (SELECT MAX(id) FROM one_time_codes WHERE journey_id = j.id)
         WHERE j.token_hash = $1{}",
        super::throttles::subject_scopes_sql!(),
        lock_clause(conn, purpose)
    );
    // The SQL is fixed text, a fixed list and one of two fixed clauses.
    let row: Option<WithCodeRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(token_hash)
        .bind(locks.client_scope)
        .bind(locks.client)
        .fetch_optional(conn)
        .await
        .context("find the journey")?;
    let Some(row) = row else {
        return Ok(None);
    };
    let code = match (
        row.code_id,
        row.code_mac,
        row.issued_at,
        row.wrong_tries,
        row.code_state,
    ) {
        (Some(id), Some(code_mac), Some(issued_at), Some(wrong_tries), Some(state)) => {
            Some(LatestCode {
                id,
                code_mac,
                issued_at,
                wrong_tries,
                state,
            })
        }
        _ => None,
    };
    Ok(Some(WithCode {
        journey: row.journey,
        code,
        locked_until: row.locked_until,
        contact_owner: row.contact_owner,
    }))
}

/// A journey to create, awaiting its first code.
pub struct NewJourney<'a> {
    pub token_hash: &'a [u8],
    pub subject: &'a str,
    pub holder_id: Option<&'a str>,
    pub email: &'a str,
    pub client_addr: &'a str,
    pub expires_at: Millis,
}

impl std::fmt::Debug for NewJourney<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewJourney")
            .field("holder_id", &self.holder_id)
            .field("client_addr", &self.client_addr)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Creates a journey awaiting its code; its id.
pub async fn create(conn: &mut Conn, journey: &NewJourney<'_>, now: Millis) -> anyhow::Result<i64> {
    bind_journey(
        "INSERT INTO journeys (token_hash, subject, holder_id, email, client_addr, state, started_at, expires_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7) RETURNING id",
        journey,
        now,
    )
    .fetch_one(conn)
    .await
    .context("create the journey")
}

/// Creates a journey awaiting its code under `id`, reserved for it from the journeys'
/// sequence (see [`super::holder_emails::StartLookUp::journey_id`]).
pub async fn create_as(
    conn: &mut Conn,
    id: i64,
    journey: &NewJourney<'_>,
    now: Millis,
) -> anyhow::Result<()> {
    bind_journey(
        "INSERT INTO journeys (token_hash, subject, holder_id, email, client_addr, state, started_at, expires_at, updated_at, id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $9) RETURNING id",
        journey,
        now,
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .context("create the journey")?;
    Ok(())
}

/// `sql`, an insert of a journey awaiting its code, with `$1`–`$8` bound.
fn bind_journey<'q>(
    sql: &'static str,
    journey: &NewJourney<'q>,
    now: Millis,
) -> sqlx::query::QueryScalar<'q, sqlx::Any, i64, sqlx::any::AnyArguments> {
    sqlx::query_scalar(sql)
        .bind(journey.token_hash)
        .bind(journey.subject)
        .bind(journey.holder_id)
        .bind(journey.email)
        .bind(journey.client_addr)
        .bind(JourneyState::AwaitingCode)
        .bind(now)
        .bind(journey.expires_at)
}

/// Records the right code: the journey is `verified` (or `ineligible`, with the reason) until
/// `expires_at`.
pub async fn mark_verified(conn: &mut Conn, journey: &Journey, now: Millis) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE journeys SET state = $1, ineligible_reason = $2, verified_at = $3, expires_at = $4, updated_at = $3 WHERE id = $5",
    )
    .bind(journey.state)
    .bind(journey.ineligible_reason.as_deref())
    .bind(now)
    .bind(journey.expires_at)
    .bind(journey.id)
    .execute(conn)
    .await
    .context("mark the journey verified")?;
    Ok(())
}

/// A journey as the card steps need it, with the accepted card's record.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CardJourney {
    pub id: i64,
    pub holder_id: Option<String>,
    pub state: JourneyState,
    pub expires_at: Millis,
    pub card_serial: Option<String>,
    pub last_challenge: Option<Vec<u8>>,
    pub cryptograms_released: i64,
    /// piv/1: the public keys of the card's Card Authentication and PIV Authentication
    /// certificates (SubjectPublicKeyInfo, DER), as presented.
    pub possession_key: Option<Vec<u8>>,
    pub receipt_key: Option<Vec<u8>>,
    /// The accepted card's record, if it is still on the holder's profile.
    #[sqlx(flatten)]
    pub card: super::cards::MaybeCard,
}

/// The journey whose token has this keyed hash, with the accepted card's record if that card
/// is still on the holder's profile; its row is held for the card step's change.
pub async fn for_card_step(
    conn: &mut Conn,
    token_hash: &[u8],
) -> anyhow::Result<Option<CardJourney>> {
    let sql = format!(
        "SELECT j.id, j.holder_id, j.state, j.expires_at, j.card_serial, j.last_challenge,
                j.cryptograms_released, j.possession_key, j.receipt_key,
                c.status AS card_status, c.cert_expires_at,
                c.model AS card_model, c.key_version AS card_key_version
         FROM journeys j
         LEFT JOIN cards c ON c.serial = j.card_serial AND c.holder_id = j.holder_id
         WHERE j.token_hash = $1{}",
        lock_clause(conn, Purpose::Change)
    );
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(token_hash)
        .fetch_optional(conn)
        .await
        .context("find the journey")
}

/// The card the journey with this keyed token hash accepted, if it is still on the holder's
/// profile, and the key version it was issued under: read before a card step's write, so
/// the key custody (perhaps an HSM) is never asked while the write is open.
pub async fn accepted_card_key(
    conn: &mut Conn,
    token_hash: &[u8],
) -> anyhow::Result<Option<(String, i64)>> {
    sqlx::query_as(
        "SELECT c.serial, c.key_version FROM journeys j
         JOIN cards c ON c.serial = j.card_serial AND c.holder_id = j.holder_id
         WHERE j.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
    .context("find the journey's card")
}

/// What accepting a piv/1 card records: the nonce its possession proof must sign, and the
/// public keys of its two certificates.
#[derive(Debug, Clone, Copy)]
pub struct PivAcceptance<'a> {
    pub possession_nonce: &'a [u8],
    pub possession_key: &'a [u8],
    pub receipt_key: &'a [u8],
}

/// Accepts card `serial` for the journey (with what a piv/1 card needs, else nothing); its
/// last challenge is kept only if it was this card's (its receipt may be on its way).
pub async fn accept_card(
    conn: &mut Conn,
    id: i64,
    serial: &str,
    piv: Option<PivAcceptance<'_>>,
    now: Millis,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE journeys SET last_challenge = CASE WHEN card_serial = $1 THEN last_challenge END,
                card_serial = $1, card_accepted_at = $2, possession_nonce = $3,
                possession_key = $4, receipt_key = $5, updated_at = $2
         WHERE id = $6",
    )
    .bind(serial)
    .bind(now)
    .bind(piv.map(|p| p.possession_nonce))
    .bind(piv.map(|p| p.possession_key))
    .bind(piv.map(|p| p.receipt_key))
    .bind(id)
    .execute(conn)
    .await
    .context("accept the card")?;
    Ok(())
}

/// Takes the journey's possession nonce, so it proves one release at most; `None` if there
/// is none (spent already, or never handed out).
pub async fn take_possession_nonce(
    conn: &mut Conn,
    id: i64,
    now: Millis,
) -> anyhow::Result<Option<Vec<u8>>> {
    let nonce: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT possession_nonce FROM journeys WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .context("read the possession nonce")?;
    let Some(nonce) = nonce else {
        return Ok(None);
    };
    // Cleared only if it is still this nonce: of two requests racing for it, one gets it.
    let cleared = sqlx::query(
        "UPDATE journeys SET possession_nonce = NULL, updated_at = $1
         WHERE id = $2 AND possession_nonce = $3",
    )
    .bind(now)
    .bind(id)
    .bind(&nonce)
    .execute(conn)
    .await
    .context("spend the possession nonce")?;
    Ok((cleared.rows_affected() == 1).then_some(nonce))
}

/// Drops the accepted card, so no secret is released until a card is accepted again.
pub async fn forget_card(conn: &mut Conn, id: i64, now: Millis) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE journeys SET card_serial = NULL, last_challenge = NULL, possession_nonce = NULL,
                possession_key = NULL, receipt_key = NULL, updated_at = $1
         WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await
    .context("forget the accepted card")?;
    Ok(())
}

/// Spends the journey's last challenge (a wrong receipt was given for it).
pub async fn spend_challenge(conn: &mut Conn, id: i64, now: Millis) -> anyhow::Result<()> {
    sqlx::query("UPDATE journeys SET last_challenge = NULL, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .context("spend the challenge on a wrong receipt")?;
    Ok(())
}

/// Records one more cryptogram released for `challenge`, if fewer than `cap` have been; the
/// count after this one, or `None` if the cap was reached already.
pub async fn count_release(
    conn: &mut Conn,
    id: i64,
    challenge: &[u8],
    cap: i64,
    now: Millis,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE journeys SET cryptograms_released = cryptograms_released + 1,
                last_challenge = $1, updated_at = $2
         WHERE id = $3 AND cryptograms_released < $4
         RETURNING cryptograms_released",
    )
    .bind(challenge)
    .bind(now)
    .bind(id)
    .bind(cap)
    .fetch_optional(conn)
    .await
    .context("record the release")
}

/// Closes the journey for `reason`.
/// Closes `holder_id`'s open journeys that started with `email` (the address was removed
/// from the profile: a code sent to it must not unlock anything); how many.
pub async fn close_open_for_email(
    conn: &mut Conn,
    holder_id: &str,
    email: &str,
    now: Millis,
) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE journeys SET state = $1, closed_at = $2, last_challenge = NULL, updated_at = $2
         WHERE holder_id = $3 AND email = $4 AND state IN ($5, $6)",
    )
    .bind(JourneyState::Closed)
    .bind(now)
    .bind(holder_id)
    .bind(email)
    .bind(JourneyState::AwaitingCode)
    .bind(JourneyState::Verified)
    .execute(conn)
    .await
    .context("close the removed address's journeys")?;
    Ok(done.rows_affected())
}

pub async fn close(
    conn: &mut Conn,
    id: i64,
    reason: ClosedReason,
    now: Millis,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE journeys SET state = $1, closed_reason = $2, closed_at = $3,
                last_challenge = NULL, updated_at = $3
         WHERE id = $4",
    )
    .bind(JourneyState::Closed)
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await
    .with_context(|| format!("close the journey ({reason})"))?;
    Ok(())
}
