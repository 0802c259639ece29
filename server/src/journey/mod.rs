//! The holder's journey: start with an email address, receive a code, type it in (or ask
//! for another), then present the card, get a cryptogram for its challenge, and confirm the
//! unlock with the card's receipt.

mod card;
mod code;
mod start;

use crate::db::Conn;
use anyhow::Context;
use unlock_protocol::api::{IneligibleReason, JourneyView};
use unlock_protocol::{CardSerial, EmailAddress, ErrorCode};

pub use card::{confirm_receipt, present_card, release_cryptogram};
pub use code::{resend, verify};
pub use start::{Started, start};

use crate::clock::{Millis, seconds_until};
use crate::config::JourneyConfig;
use crate::error::Failure;
use crate::secrets::token_hash;
use crate::state::AppState;
use crate::throttle::{Locked, Scope};

/// A journey as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Journey {
    id: i64,
    subject: String,
    holder_id: Option<String>,
    email: String,
    state: String,
    ineligible_reason: Option<String>,
    expires_at: Millis,
    /// The card accepted for unlocking, once one has been.
    card_serial: Option<String>,
    /// Why a closed journey closed: `unlocked` or `too_many_attempts`.
    closed_reason: Option<String>,
}

/// The latest code of a journey; only it can be right.
#[derive(Debug, sqlx::FromRow)]
struct LatestCode {
    id: i64,
    code_mac: Vec<u8>,
    issued_at: Millis,
    wrong_tries: i64,
    state: String,
}

/// A journey row joined with its latest code, as one query reads them.
#[derive(sqlx::FromRow)]
struct JourneyWithCode {
    #[sqlx(flatten)]
    journey: Journey,
    code_id: Option<i64>,
    code_mac: Option<Vec<u8>>,
    issued_at: Option<Millis>,
    wrong_tries: Option<i64>,
    code_state: Option<String>,
    locked_until: Option<Millis>,
}

/// A journey, its latest code, and the lock-out on its holder or on the client's wrong codes.
struct Found {
    journey: Journey,
    code: Option<LatestCode>,
    locked: Option<Locked>,
}

/// The journey a cookie token names, with its latest code and the lock-out that applies to
/// codes typed from `client` (one query: this runs on every code check).
async fn find(
    conn: &mut Conn,
    token: &str,
    client: &str,
    now: Millis,
) -> anyhow::Result<Option<Found>> {
    let row: Option<JourneyWithCode> = sqlx::query_as(
        "SELECT j.id, j.subject, j.holder_id, j.email, j.state, j.ineligible_reason, j.expires_at,
                j.card_serial, j.closed_reason,
                c.id AS code_id, c.code_mac, c.issued_at, c.wrong_tries, c.state AS code_state,
                (SELECT MAX(locked_until) FROM throttles
                 WHERE (scope = $2 AND key = $3) OR (scope = $4 AND key = j.subject)) AS locked_until
         FROM journeys j
         LEFT JOIN one_time_codes c
           ON c.id = (SELECT MAX(id) FROM one_time_codes WHERE journey_id = j.id)
         WHERE j.token_hash = $1",
    )
    .bind(token_hash(token))
    .bind(Scope::ClientFailure.as_str())
    .bind(client)
    .bind(Scope::SubjectVoided.as_str())
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
    let locked = row
        .locked_until
        .filter(|until| *until > now)
        .map(|until| Locked { until });
    Ok(Some(Found {
        journey: row.journey,
        code,
        locked,
    }))
}

/// The answer when the cookie names no journey.
/// Audits a request whose cookie names no journey (expired from the browser, forged, or from
/// another server) under `action`.
async fn audit_no_journey(
    conn: &mut Conn,
    now: Millis,
    client: &str,
    action: &str,
) -> anyhow::Result<()> {
    let event = crate::audit::Event {
        actor: "holder",
        action,
        outcome: "no_journey",
        client_addr: Some(client),
        ..crate::audit::Event::default()
    };
    crate::audit::record(conn, now, event).await
}

fn no_journey() -> Failure {
    Failure::client(ErrorCode::NoJourney)
}

/// Whether a subject is locked out, and how many codes it was sent in the hour before `now`
/// (one query: this runs on every start and resend).
async fn subject_limits(
    conn: &mut Conn,
    subject: &str,
    now: Millis,
) -> anyhow::Result<(Option<Locked>, i64)> {
    let (locked_until, codes): (Option<Millis>, i64) = sqlx::query_as(
        "SELECT (SELECT locked_until FROM throttles WHERE scope = $1 AND key = $2),
                (SELECT COUNT(*) FROM one_time_codes WHERE subject = $2 AND issued_at > $3)",
    )
    .bind(Scope::SubjectVoided.as_str())
    .bind(subject)
    .bind(now - 3_600_000)
    .fetch_one(conn)
    .await
    .context("read the subject's throttle and recent codes")?;
    let locked = locked_until
        .filter(|until| *until > now)
        .map(|until| Locked { until });
    Ok((locked, codes))
}

/// The answer to a request refused by a lock-out.
fn throttled(now: Millis, locked: Locked) -> Failure {
    Failure::client(ErrorCode::Throttled).retry_after(seconds_until(now, locked.until))
}

/// Where a journey stands, as the page sees it.
fn view_of(
    config: &JourneyConfig,
    journey: &Journey,
    code: Option<&LatestCode>,
    now: Millis,
) -> Result<JourneyView, Failure> {
    match journey.state.as_str() {
        "awaiting_code" if now >= journey.expires_at => Ok(JourneyView::Expired),
        "awaiting_code" => {
            let live = code.filter(|c| c.state == "live");
            let tries_left = live.map_or(0, |c| {
                i64::from(config.max_code_tries).saturating_sub(c.wrong_tries)
            });
            let cooldown = i64::try_from(config.resend_cooldown_seconds * 1000).unwrap_or(i64::MAX);
            Ok(JourneyView::AwaitingCode {
                email_hint: EmailAddress::parse(&journey.email)
                    .map(|e| e.masked())
                    .unwrap_or_default(),
                expires_in_seconds: seconds_until(now, journey.expires_at),
                tries_left: u8::try_from(tries_left.max(0)).unwrap_or(0),
                resend_in_seconds: code.map_or(0, |c| seconds_until(now, c.issued_at + cooldown)),
            })
        }
        "verified" if now >= journey.expires_at => Ok(JourneyView::Expired),
        "verified" => Ok(match accepted_card(journey) {
            Some(serial) => JourneyView::CardAccepted {
                serial,
                expires_in_seconds: seconds_until(now, journey.expires_at),
            },
            None => JourneyView::Verified {
                expires_in_seconds: seconds_until(now, journey.expires_at),
            },
        }),
        "ineligible" => {
            let reason = journey
                .ineligible_reason
                .as_deref()
                .and_then(IneligibleReason::from_name)
                .unwrap_or(IneligibleReason::NoCard);
            Ok(JourneyView::ContactRa { reason })
        }
        "closed" if journey.closed_reason.as_deref() == Some("unlocked") => {
            match accepted_card(journey) {
                Some(serial) => Ok(JourneyView::Unlocked { serial }),
                None => Err(anyhow::anyhow!("an unlocked journey has no card").into()),
            }
        }
        _ => Err(Failure::client(ErrorCode::JourneyClosed)),
    }
}

/// The card accepted for the journey (stored already parsed, so it parses again).
fn accepted_card(journey: &Journey) -> Option<CardSerial> {
    journey
        .card_serial
        .as_deref()
        .and_then(|serial| CardSerial::parse(serial).ok())
}

/// `GET /api/journey`: where the journey in the cookie stands.
pub async fn view(state: &AppState, token: Option<&str>) -> Result<JourneyView, Failure> {
    let token = token.ok_or_else(no_journey)?;
    let mut conn = state.db.reader().await?;
    let now = state.clock.now();
    let found = find(&mut conn, token, "", now)
        .await?
        .ok_or_else(no_journey)?;
    view_of(
        &state.config.journey,
        &found.journey,
        found.code.as_ref(),
        now,
    )
}
