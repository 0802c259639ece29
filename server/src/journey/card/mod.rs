//! The card steps of a verified journey: the card the bridge read is checked against the
//! holder's profile ([`present`]), a cryptogram is released for each fresh challenge from it,
//! a few per journey at most ([`release`]), and the card's receipt closes the journey as
//! unlocked and tells every address on the profile ([`receipt`]).

mod present;
mod receipt;
mod release;

use std::sync::Arc;

use crate::db::Conn;
use anyhow::Context;
use unlock_protocol::api::IneligibleReason;
use unlock_protocol::{CardSerial, ErrorCode};

pub use present::present_card;
pub use receipt::confirm_receipt;
pub use release::release_cryptogram;

use crate::audit::Event;
use crate::card_key::CardMasterKey;
use crate::clock::Millis;
use crate::config::Config;
use crate::error::Failure;
use crate::secrets::token_hash;
use crate::state::AppState;

/// A journey as the card steps need it, with the accepted card's record.
#[derive(Debug, Clone, sqlx::FromRow)]
struct CardJourney {
    id: i64,
    holder_id: Option<String>,
    state: String,
    expires_at: Millis,
    card_serial: Option<String>,
    last_challenge: Option<Vec<u8>>,
    cryptograms_released: i64,
    /// The accepted card's record, if it is still on the holder's profile.
    card_status: Option<String>,
    cert_expires_at: Option<Millis>,
    card_model: Option<String>,
}

impl CardJourney {
    /// The accepted card's record, if the card is still on the holder's profile.
    fn card_record(&self) -> Option<CardRecord> {
        Some(CardRecord {
            status: self.card_status.clone()?,
            cert_expires_at: self.cert_expires_at?,
            model: self.card_model.clone()?,
        })
    }
}

/// A card's record.
#[derive(Debug, sqlx::FromRow)]
struct CardRecord {
    status: String,
    cert_expires_at: Millis,
    model: String,
}

/// The outcome of one card step: what the audit trail records, and the answer.
type Checked<T> = (&'static str, Result<T, Failure>);

/// The master key, or the answer that card unlocking is switched off on this server.
fn master_key(state: &AppState) -> Result<Arc<CardMasterKey>, Failure> {
    state.card_key.clone().ok_or_else(|| {
        Failure::client_message(
            ErrorCode::Unavailable,
            "Unlocking smartcards is not available at the moment. Try again later, or contact \
             your Registration Authority.",
        )
    })
}

/// The journey a cookie token names, with the accepted card's record if it is still on the
/// holder's profile; a token that names none is audited under `action`.
async fn find_audited(
    conn: &mut Conn,
    token: &str,
    client: &str,
    now: Millis,
    action: &str,
) -> anyhow::Result<Option<CardJourney>> {
    let found: Option<CardJourney> = sqlx::query_as(
        "SELECT j.id, j.holder_id, j.state, j.expires_at, j.card_serial, j.last_challenge,
                j.cryptograms_released, c.status AS card_status, c.cert_expires_at,
                c.model AS card_model
         FROM journeys j
         LEFT JOIN cards c ON c.serial = j.card_serial AND c.holder_id = j.holder_id
         WHERE j.token_hash = $1",
    )
    .bind(token_hash(token))
    .fetch_optional(&mut *conn)
    .await
    .context("find the journey")?;
    if found.is_none() {
        super::audit_no_journey(conn, now, client, action).await?;
    }
    Ok(found)
}

/// Why a journey can't take a card step now: it is over, its time is up, or its code has
/// not been verified yet.
fn refuse_card_step<T>(journey: &CardJourney, now: Millis) -> Option<Checked<T>> {
    match journey.state.as_str() {
        "closed" | "ineligible" => Some(("journey_closed", Err(journey_closed()))),
        _ if now >= journey.expires_at => {
            Some(("expired", Err(Failure::client(ErrorCode::JourneyExpired))))
        }
        "awaiting_code" => Some(("not_verified", Err(Failure::client(ErrorCode::NotVerified)))),
        _ => None,
    }
}

/// Why a card can't be unlocked for this holder: it is not on their profile (`None`), or it
/// is and this is the reason.
#[derive(Debug, Clone, Copy)]
struct Refusal(Option<IneligibleReason>);

impl Refusal {
    /// The audit trail's outcome.
    fn outcome(self) -> &'static str {
        match self.0 {
            None => "card_not_on_profile",
            Some(_) => "card_not_usable",
        }
    }

    /// The answer: a card that isn't theirs, or the reason theirs can't be unlocked.
    fn answer(self) -> Failure {
        match self.0 {
            None => Failure::client(ErrorCode::CardNotOnProfile),
            Some(reason) => Failure::client_message(ErrorCode::CardNotUsable, reason.message()),
        }
    }
}

/// Why the card with this record (`None`: not on the holder's profile) can't be unlocked
/// here, or `None` if it can. `profile` is what the bridge says the card speaks, when it is
/// being presented.
fn refuse_card(
    config: &Config,
    card: Option<&CardRecord>,
    profile: Option<&str>,
    now: Millis,
) -> Option<Refusal> {
    let Some(card) = card else {
        return Some(Refusal(None));
    };
    let reason = if card.status == "cancelled" {
        IneligibleReason::CardCancelled
    } else if card.status != "active" {
        IneligibleReason::CardSuspended
    } else if card.cert_expires_at <= now {
        IneligibleReason::CertificatesExpired
    } else if !config.cards.supported_models.contains(&card.model)
        || profile.is_some_and(|profile| profile != card.model)
    {
        IneligibleReason::CardModelUnsupported
    } else {
        return None;
    };
    Some(Refusal(Some(reason)))
}

/// Drops the accepted card, so no cryptogram is released until a card is accepted again.
async fn forget_card(conn: &mut Conn, journey_id: i64, now: Millis) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE journeys SET card_serial = NULL, last_challenge = NULL, updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(journey_id)
    .execute(conn)
    .await
    .context("forget the accepted card")?;
    Ok(())
}

fn accepted_card(journey: &CardJourney) -> Option<CardSerial> {
    journey
        .card_serial
        .as_deref()
        .and_then(|serial| CardSerial::parse(serial).ok())
}

fn holder_event<'a>(
    journey: &'a CardJourney,
    action: &'a str,
    outcome: &'a str,
    client: &'a str,
    detail: Option<&'a str>,
) -> Event<'a> {
    Event {
        actor: "holder",
        action,
        outcome,
        journey_id: Some(journey.id),
        holder_id: journey.holder_id.as_deref(),
        client_addr: Some(client),
        detail,
    }
}

fn card_not_accepted() -> Failure {
    Failure::client(ErrorCode::CardNotAccepted)
}

fn receipt_wrong() -> Failure {
    Failure::client(ErrorCode::ReceiptWrong)
}

fn journey_closed() -> Failure {
    Failure::client(ErrorCode::JourneyClosed)
}
