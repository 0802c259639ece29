//! `POST /api/journey/card/receipt`: the card's proof that it was unblocked closes the
//! journey, and every address on the profile is told.

use unlock_protocol::CardSerial;
use unlock_protocol::api::JourneyView;

use super::{
    CardJourney, accepted_card, audited, card_not_accepted, find, holder_event, journey_closed,
    master_key, receipt_wrong, refuse_card_step,
};
use crate::audit::{self, Action, Audited, Event, Outcome};
use crate::card_key::CardMasterKey;
use crate::clock::Millis;
use crate::db::states::{ClosedReason, JourneyState, OutboxKind};
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::journey::{no_journey, no_journey_step, step};
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
    let (job_state, job_client) = (state.clone(), client.to_owned());
    step(state, client, Action::JourneyReceipt, move |conn, now| {
        let (state, key, token) = (job_state.clone(), key.clone(), token.clone());
        let client = job_client.clone();
        Box::pin(
            async move { check_receipt(conn, now, &state, &key, &token, receipt, &client).await },
        )
    })
    .await
}

async fn check_receipt(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    key: &CardMasterKey,
    token: &str,
    receipt: [u8; 16],
    client: &str,
) -> anyhow::Result<Audited<JourneyView>> {
    let Some(journey) = find(conn, token).await? else {
        return Ok(no_journey_step());
    };
    let mut detail = None;
    let checked = 'checked: {
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
        queue_unlock_notices(conn, state, &journey, &serial, client, now).await?;
        (Outcome::Unlocked, Ok(JourneyView::Unlocked { serial }))
    };
    Ok(audited(&journey, checked, detail))
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
