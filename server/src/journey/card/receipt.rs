//! `POST /api/journey/card/receipt`: the card's proof that it was unblocked closes the
//! journey, and every address on the profile is told.

use std::sync::Arc;

use unlock_protocol::CardSerial;
use unlock_protocol::api::JourneyView;

use super::{
    CardJourney, accepted_card, card_not_accepted, find_audited, holder_event, journey_closed,
    master_key, receipt_wrong, refuse_card_step,
};
use crate::audit::{self, Action, Event, Outcome};
use crate::card_key::CardMasterKey;
use crate::clock::Millis;
use crate::db::states::{ClosedReason, JourneyState, OutboxKind};
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::journey::no_journey;
use crate::outbox::{self, Outgoing, templates};
use crate::state::AppState;

/// `POST /api/journey/card/receipt`: the card's proof that it was unblocked.
pub async fn confirm_receipt(
    state: &AppState,
    token: Option<&str>,
    receipt: [u8; 16],
    client: &str,
) -> Result<JourneyView, Failure> {
    let key = master_key(state)?;
    let token = token.ok_or_else(no_journey)?.to_owned();
    let (job_state, client) = (state.clone(), client.to_owned());
    let result = state
        .db
        .write(move |conn| {
            Box::pin(check_receipt(
                conn,
                job_state.clone(),
                key.clone(),
                token.clone(),
                receipt,
                client.clone(),
            ))
        })
        .await?;
    if result.is_ok() {
        state.outbox_wake.notify_one();
    }
    result
}

async fn check_receipt(
    conn: &mut Conn,
    state: AppState,
    key: Arc<CardMasterKey>,
    token: String,
    receipt: [u8; 16],
    client: String,
) -> anyhow::Result<Result<JourneyView, Failure>> {
    let now = state.clock.now();
    let action = Action::JourneyReceipt;
    let Some(journey) = find_audited(conn, &token, &client, now, action).await? else {
        return Ok(Err(no_journey()));
    };
    let mut detail = None;
    let (outcome, result) = 'checked: {
        // No expiry check: a card unblocked just before the journey ran out is still unlocked,
        // and its holder must still be told.
        if journey.state != JourneyState::Verified {
            break 'checked refuse_card_step(&journey, now)
                .unwrap_or((Outcome::JourneyClosed, Err(journey_closed())));
        }
        let Some(serial) = accepted_card(&journey) else {
            break 'checked (Outcome::NoCard, Err(card_not_accepted()));
        };
        detail = Some(format!("card {serial}"));
        let Some(challenge) = journey
            .last_challenge
            .as_deref()
            .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        else {
            break 'checked (Outcome::NoChallenge, Err(receipt_wrong()));
        };
        if !key.receipt_matches(&serial, &challenge, &receipt) {
            // One receipt per released challenge: guessing needs a new cryptogram each time,
            // and cryptograms are capped.
            db::journeys::spend_challenge(conn, journey.id, now).await?;
            break 'checked (Outcome::ReceiptWrong, Err(receipt_wrong()));
        }
        db::journeys::close(conn, journey.id, ClosedReason::Unlocked, now).await?;
        queue_unlock_notices(conn, &state, &journey, &serial, &client, now).await?;
        (Outcome::Unlocked, Ok(JourneyView::Unlocked { serial }))
    };
    let event = holder_event(&journey, action, outcome, &client, detail.as_deref());
    audit::record(conn, now, event).await?;
    Ok(result)
}

/// Tells every address on the holder's profile that the card was unlocked, in the same
/// transaction as the unlock.
async fn queue_unlock_notices(
    conn: &mut Conn,
    state: &AppState,
    journey: &CardJourney,
    serial: &CardSerial,
    client: &str,
    now: Millis,
) -> anyhow::Result<()> {
    let addresses = match journey.holder_id.as_deref() {
        Some(holder_id) => db::holder_emails::of_holder(conn, holder_id).await?,
        None => Vec::new(),
    };
    let notice = templates::card_unlocked(serial, now);
    for address in &addresses {
        let outgoing = Outgoing {
            kind: OutboxKind::CardUnlocked,
            recipient: address,
            journey_id: Some(journey.id),
            holder_id: journey.holder_id.as_deref(),
            sealed: outbox::seal(&state.keys, &notice)?,
            expires_at: None,
        };
        outbox::enqueue(conn, outgoing, now).await?;
    }
    let detail = format!("to {} address(es)", addresses.len());
    let event = Event {
        actor: "system",
        ..holder_event(
            journey,
            Action::OutboxUnlockNotice,
            Outcome::Queued,
            client,
            Some(&detail),
        )
    };
    audit::record(conn, now, event).await
}
