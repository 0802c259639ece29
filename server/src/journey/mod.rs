//! The holder's journey: start with an email address, receive a code, type it in (or ask
//! for another), then present the card, have its secret released against the card's proof,
//! and confirm the unlock with the card's receipt.

mod card;
mod code;
pub mod device;
mod ra_code;
mod start;

use unlock_protocol::api::{IneligibleReason, JourneyView};
use unlock_protocol::{CardId, ErrorCode};

pub use card::{Receipted, confirm_receipt, present_card, release};
pub use code::{resend, verify};
pub use ra_code::redeem as redeem_ra_code;
pub use start::{Started, start};

use crate::audit::{Action, Actor, Audited, Outcome};
use crate::clock::{Millis, seconds_until};
use crate::config::JourneyConfig;
use crate::contact::Contact;
use crate::db::journeys::{Journey, LatestCode, LockScopes, Purpose, WithCode};
use crate::db::states::{ClosedReason, CodeState, JourneyState};
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::secrets::token_hash;
use crate::state::AppState;
use crate::throttle::{self, Locked, Scope};

/// A journey, its latest code, and the lock-out on its holder or on the client's wrong codes.
struct Found {
    journey: Journey,
    code: Option<LatestCode>,
    locked: Option<Locked>,
    /// Whose profile the journey's address or number is on now.
    contact_owner: Option<String>,
}

/// The journey a cookie token names, with its latest code and the lock-out that applies to
/// codes typed from `client`; read to change it, or only to show it.
async fn find(
    conn: &mut Conn,
    token: &str,
    client: &str,
    now: Millis,
    purpose: Purpose,
) -> anyhow::Result<Option<Found>> {
    let client = &crate::http::client_addr::throttle_key(client);
    let locks = LockScopes {
        client_scope: Scope::ClientFailure,
        client,
    };
    let found = db::journeys::with_code(conn, &token_hash(token), locks, purpose).await?;
    Ok(found.map(
        |WithCode {
             journey,
             code,
             locked_until,
             contact_owner,
         }| Found {
            journey,
            code,
            locked: throttle::in_force(locked_until, now),
            contact_owner,
        },
    ))
}

/// Runs one step of a journey as the audited write of the holder at `client` (see
/// [`crate::audit::write`]); the outbox is woken when it succeeds, since a step may have
/// queued an email.
async fn step<T, F>(state: &AppState, client: &str, action: Action, work: F) -> Result<T, Failure>
where
    T: Send + 'static,
    F: for<'c> Fn(&'c mut Conn, Millis) -> db::BoxFuture<'c, anyhow::Result<Audited<T>>>
        + Send
        + Sync
        + 'static,
{
    let actor = Actor::holder(client);
    let result = crate::audit::write(&state.db, &state.clock, actor, action, work).await;
    if result.is_ok() {
        state.outbox_wake.notify_one();
    }
    result
}

/// The audited refusal of a request whose cookie names no journey (expired from the
/// browser, forged, or from another server). It is counted against the client first, as a
/// wrong code is, so a client sending them in a flood is soon locked out; the audit trail
/// keeps one row a minute for the flood (see [`crate::audit::record`]).
async fn no_journey_step<T>(
    conn: &mut Conn,
    state: &AppState,
    client: &str,
    now: Millis,
) -> anyhow::Result<Audited<T>> {
    let key = crate::http::client_addr::throttle_key(client);
    let locked = throttle::hit(
        conn,
        &state.config.throttle,
        Scope::ClientFailure,
        &key,
        now,
    )
    .await?;
    Ok(match locked {
        Some(locked) => Audited::refused(Outcome::ThrottledClient, None, throttled(now, locked)),
        None => Audited::refused(Outcome::NoJourney, None, no_journey()),
    })
}

/// The answer when the cookie names no journey.
fn no_journey() -> Failure {
    Failure::client(ErrorCode::NoJourney)
}

/// Why `subject` may not be sent another code now: a lock-out, or its codes an hour or a
/// day used up (the day's cap stops anyone who knows an address from flooding its mailbox).
async fn code_refused(
    conn: &mut Conn,
    config: &JourneyConfig,
    subject: &str,
    now: Millis,
) -> anyhow::Result<Option<(Outcome, Failure)>> {
    let limits = db::throttles::subject_limits(conn, subject, now).await?;
    Ok(
        if let Some(locked) = throttle::in_force(limits.locked_until, now) {
            Some((Outcome::ThrottledHolder, throttled(now, locked)))
        } else if limits.codes_last_hour >= i64::from(config.codes_per_hour) {
            Some((
                Outcome::TooManyCodes,
                Failure::client(ErrorCode::TooManyCodes),
            ))
        } else if limits.codes_last_day >= i64::from(config.codes_per_day) {
            let message = "You have asked for too many security codes today. Try again tomorrow, \
                       or contact your Registration Authority.";
            Some((
                Outcome::TooManyCodes,
                Failure::client_message(ErrorCode::TooManyCodes, message),
            ))
        } else {
            None
        },
    )
}

/// The answer to a request refused by a lock-out.
fn throttled(now: Millis, locked: Locked) -> Failure {
    if throttle::until_released(locked.until, now) {
        return Failure::client_message(
            ErrorCode::Throttled,
            "There have been too many wrong security codes for your smartcard profile. Contact \
             your Registration Authority to use this service again.",
        );
    }
    Failure::client(ErrorCode::Throttled).retry_after(seconds_until(now, locked.until))
}

/// Where a journey stands, as the page sees it.
fn view_of(
    config: &JourneyConfig,
    journey: &Journey,
    code: Option<&LatestCode>,
    now: Millis,
) -> Result<JourneyView, Failure> {
    match journey.state {
        JourneyState::AwaitingCode if now >= journey.expires_at => Ok(JourneyView::Expired),
        JourneyState::AwaitingCode => {
            let live = code.filter(|c| c.state == CodeState::Live);
            let tries_left = live.map_or(0, |c| {
                i64::from(config.max_code_tries).saturating_sub(c.wrong_tries)
            });
            let cooldown = i64::try_from(config.resend_cooldown_seconds * 1000).unwrap_or(i64::MAX);
            Ok(JourneyView::AwaitingCode {
                email_hint: Contact::from_stored(&journey.email)
                    .map(|contact| contact.masked())
                    .unwrap_or_default(),
                expires_in_seconds: seconds_until(now, journey.expires_at),
                tries_left: u8::try_from(tries_left.max(0)).unwrap_or(0),
                resend_in_seconds: code.map_or(0, |c| seconds_until(now, c.issued_at + cooldown)),
            })
        }
        JourneyState::Verified if now >= journey.expires_at => Ok(JourneyView::Expired),
        JourneyState::Verified => Ok(match accepted_card(journey) {
            Some(card) => JourneyView::CardAccepted {
                card,
                expires_in_seconds: seconds_until(now, journey.expires_at),
                challenge: None,
            },
            None => JourneyView::Verified {
                expires_in_seconds: seconds_until(now, journey.expires_at),
            },
        }),
        JourneyState::Ineligible => {
            let reason = journey
                .ineligible_reason
                .as_deref()
                .and_then(IneligibleReason::from_name)
                .unwrap_or(IneligibleReason::NoCard);
            Ok(JourneyView::ContactRa { reason })
        }
        JourneyState::Closed => match (journey.closed_reason, accepted_card(journey)) {
            (Some(ClosedReason::Unlocked), Some(card)) => Ok(JourneyView::Unlocked { card }),
            (Some(ClosedReason::Unlocked), None) => {
                Err(anyhow::anyhow!("an unlocked journey has no card").into())
            }
            _ => Err(Failure::client(ErrorCode::JourneyClosed)),
        },
    }
}

/// The card accepted for the journey (stored already parsed, so it parses again).
fn accepted_card(journey: &Journey) -> Option<CardId> {
    journey
        .card_serial
        .as_deref()
        .and_then(|card| CardId::parse(card).ok())
}

/// `GET /api/journey`: where the journey in the cookie stands.
pub async fn view(state: &AppState, token: Option<&str>) -> Result<JourneyView, Failure> {
    let token = token.ok_or_else(no_journey)?;
    let mut conn = state.db.reader().await?;
    let now = state.clock.now();
    let found = find(&mut conn, token, "", now, Purpose::Show)
        .await?
        .ok_or_else(no_journey)?;
    view_of(
        &state.config.journey,
        &found.journey,
        found.code.as_ref(),
        now,
    )
}
