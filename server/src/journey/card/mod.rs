//! The card steps of a verified journey, one seam for every card profile: the card the
//! bridge read is checked against the holder's profile ([`present`]); against the card's
//! proof, its secret is released — a cryptogram for a fresh challenge (`unlock-cr/1`), or the
//! escrowed PUK once the card proved possession of its own key (`piv/1`) — a few times per
//! journey at most ([`release`]); and the card's receipt closes the journey as unlocked and
//! tells every address on the profile ([`receipt`]).

mod present;
mod receipt;
mod release;
mod release_puk;

use std::sync::Arc;

use unlock_protocol::api::IneligibleReason;
use unlock_protocol::{CardId, CardStatus, ErrorCode};

pub use present::present_card;
pub use receipt::{Receipted, confirm_receipt};
pub use release::release;

use crate::audit::{self, Action, Audited, Event, Outcome};
use crate::clock::Millis;
use crate::config::Config;
use crate::custody::CustodyError;
use crate::db::cards::CardRecord;
use crate::db::journeys::CardJourney;
use crate::db::states::{ClosedReason, JourneyState, OutboxKind};
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::outbox::{self, Composed, Outgoing, templates};
use crate::piv::PivTrust;
use crate::secrets::token_hash;
use crate::state::AppState;

/// The outcome of one card step: what the audit trail records, and the answer.
type Checked<T> = (Outcome, Result<T, Failure>);

/// Whether a card master key is configured here, else the answer that unlocking
/// unlock-cr/1 cards is switched off.
fn card_master_configured(state: &AppState) -> Result<(), Failure> {
    if state.custody.has_card_master() {
        Ok(())
    } else {
        Err(unavailable())
    }
}

/// A key that could not be used, as the card step's answer: not available now (503, in plain
/// words; nothing was lost, and the holder can try again), or a fault.
fn custody_failure(error: CustodyError) -> Failure {
    match error {
        CustodyError::Unavailable(cause) => {
            tracing::error!(error = format!("{cause:#}"), "a card key is not available");
            crate::metrics::key_unavailable();
            unavailable()
        }
        CustodyError::Failed(cause) => Failure::from(cause),
    }
}

/// The card the journey with cookie `token` accepted and the key version it was issued
/// under, read before the step's write so that the key custody is asked outside it.
async fn accepted_key(state: &AppState, token: &str) -> Result<Option<(CardId, i64)>, Failure> {
    let mut conn = state.db.reader().await?;
    let found = db::journeys::accepted_card_key(&mut conn, &token_hash(token)).await?;
    Ok(found.and_then(|(card, version)| Some((CardId::parse(&card).ok()?, version))))
}

/// The PIV trust anchors, or the answer that unlocking piv/1 cards is switched off here.
fn piv_trust(state: &AppState) -> Result<Arc<PivTrust>, Failure> {
    state.piv_trust.clone().ok_or_else(unavailable)
}

fn unavailable() -> Failure {
    Failure::client_message(
        ErrorCode::Unavailable,
        "Unlocking smartcards is not available at the moment. Try again later, or contact \
         your Registration Authority.",
    )
}

/// The journey a cookie token names, with the accepted card's record if it is still on the
/// holder's profile.
async fn find(conn: &mut Conn, token: &str) -> anyhow::Result<Option<CardJourney>> {
    db::journeys::for_card_step(conn, &token_hash(token)).await
}

/// A card step's audit record, concerning its journey.
fn audited<T>(
    journey: &CardJourney,
    (outcome, result): Checked<T>,
    detail: Option<String>,
) -> Audited<T> {
    Audited::new(outcome, detail, result).concerning(Some(journey.id), journey.holder_id.as_deref())
}

/// Why a journey can't take a card step now: it is over, its time is up, or its code has
/// not been verified yet.
fn refuse_card_step<T>(journey: &CardJourney, now: Millis) -> Option<Checked<T>> {
    match journey.state {
        JourneyState::Closed | JourneyState::Ineligible => {
            Some((Outcome::JourneyClosed, Err(journey_closed())))
        }
        _ if now >= journey.expires_at => Some((
            Outcome::Expired,
            Err(Failure::client(ErrorCode::JourneyExpired)),
        )),
        JourneyState::AwaitingCode => Some((
            Outcome::NotVerified,
            Err(Failure::client(ErrorCode::NotVerified)),
        )),
        JourneyState::Verified => None,
    }
}

/// Why a card can't be unlocked for this holder: it is not on their profile (`None`), or it
/// is and this is the reason.
#[derive(Debug, Clone, Copy)]
struct Refusal(Option<IneligibleReason>);

impl Refusal {
    /// The audit trail's outcome.
    fn outcome(self) -> Outcome {
        match self.0 {
            None => Outcome::CardNotOnProfile,
            Some(_) => Outcome::CardNotUsable,
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
    let reason = if card.status == CardStatus::Cancelled {
        IneligibleReason::CardCancelled
    } else if card.status != CardStatus::Active {
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

fn accepted_card(journey: &CardJourney) -> Option<CardId> {
    journey
        .card_serial
        .as_deref()
        .and_then(|card| CardId::parse(card).ok())
}

/// A card step whose profile is not that of the card the journey accepted: the page must
/// read the card again.
fn other_profile<T>() -> Checked<T> {
    (Outcome::NoCard, Err(card_not_accepted()))
}

fn holder_event<'a>(
    journey: &'a CardJourney,
    action: Action,
    outcome: Outcome,
    client: &'a str,
    detail: Option<&'a str>,
) -> Event<'a> {
    Event {
        journey_id: Some(journey.id),
        holder_id: journey.holder_id.as_deref(),
        client_addr: Some(client),
        detail,
        ..Event::new("holder", action, outcome)
    }
}

/// A notice to every address on a journey's profile.
struct Notice {
    kind: OutboxKind,
    composed: Composed,
    /// What the audit trail records it under.
    action: Action,
}

/// Queues `notice` to every address on the journey holder's profile, in the caller's
/// transaction, and audits it.
async fn notify_profile(
    conn: &mut Conn,
    state: &AppState,
    journey: &CardJourney,
    notice: Notice,
    client: &str,
    now: Millis,
) -> anyhow::Result<()> {
    let addresses = match journey.holder_id.as_deref() {
        Some(holder_id) => crate::staff::actions::everyone_on(conn, state, holder_id).await?,
        None => Vec::new(),
    };
    for address in &addresses {
        // Mobile numbers get the notice as one text message.
        let composed = match crate::contact::channel_of(address) {
            crate::db::states::Channel::Email => notice.composed.clone(),
            crate::db::states::Channel::Sms => outbox::templates::sms_notice(&notice.composed),
        };
        let outgoing = Outgoing {
            kind: notice.kind,
            recipient: address,
            journey_id: Some(journey.id),
            holder_id: journey.holder_id.as_deref(),
            sealed: outbox::seal(&state.keys, notice.kind, address, &composed)?,
            expires_at: None,
        };
        outbox::enqueue(conn, outgoing, now).await?;
    }
    let detail = format!("to {} address(es)", addresses.len());
    let event = Event {
        actor: "system",
        ..holder_event(
            journey,
            notice.action,
            Outcome::Queued,
            client,
            Some(&detail),
        )
    };
    audit::record(conn, now, event).await
}

/// At a journey's first release of a card secret, every address on the profile is told the
/// unlock began, in the release's transaction: an unlock is never silent, even if the card's
/// receipt never comes.
async fn notify_release(
    conn: &mut Conn,
    state: &AppState,
    journey: &CardJourney,
    card: &CardId,
    released: i64,
    client: &str,
    now: Millis,
) -> anyhow::Result<()> {
    if released != 1 {
        return Ok(());
    }
    let notice = Notice {
        kind: OutboxKind::UnlockStarted,
        composed: templates::unlock_started(card, now, &state.config.time_zone),
        action: Action::OutboxReleaseNotice,
    };
    notify_profile(conn, state, journey, notice, client, now).await
}

/// The card a release may now be made for: the journey verified and in time, a card of
/// profile `profile` accepted and still usable, fewer releases than the cap (else the journey
/// is closed). `detail` names the card once there is one.
async fn releasable<T>(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    journey: &CardJourney,
    profile: &str,
    detail: &mut Option<String>,
) -> anyhow::Result<Result<CardId, Checked<T>>> {
    if let Some(refused) = refuse_card_step(journey, now) {
        return Ok(Err(refused));
    }
    let Some(card_id) = accepted_card(journey) else {
        return Ok(Err((Outcome::NoCard, Err(card_not_accepted()))));
    };
    *detail = Some(format!("card {card_id}"));
    // The card may have been cancelled or moved since it was accepted.
    let card = journey.card.record()?;
    if card.as_ref().is_some_and(|card| card.model != profile) {
        return Ok(Err(other_profile()));
    }
    if let Some(refusal) = refuse_card(&state.config, card.as_ref(), None, now) {
        db::journeys::forget_card(conn, journey.id, now).await?;
        return Ok(Err((refusal.outcome(), Err(refusal.answer()))));
    }
    if journey.cryptograms_released >= release_cap(state) {
        return too_many_attempts(conn, journey.id, now).await.map(Err);
    }
    Ok(Ok(card_id))
}

/// Releases one journey may receive.
fn release_cap(state: &AppState) -> i64 {
    i64::from(state.config.journey.cryptograms_per_journey)
}

/// The journey asked for more releases than its cap: it is closed.
async fn too_many_attempts<T>(
    conn: &mut Conn,
    journey_id: i64,
    now: Millis,
) -> anyhow::Result<Checked<T>> {
    db::journeys::close(conn, journey_id, ClosedReason::TooManyAttempts, now).await?;
    Ok((
        Outcome::TooManyAttempts,
        Err(Failure::client(ErrorCode::TooManyAttempts)),
    ))
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
