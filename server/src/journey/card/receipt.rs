//! `POST /api/journey/card/receipt`: the card's proof that it was unblocked closes the
//! journey, and every address on the profile is told. A PIV card's receipt also makes the
//! PUK it was rotated to the escrowed one.

use std::sync::Arc;

use unlock_protocol::api::JourneyView;
use unlock_protocol::card_steps::{CardReceipt, Signature};
use unlock_protocol::piv::{self, NONCE_LEN, Purpose};
use unlock_protocol::{CardId, CardSerial};

use super::{
    CardJourney, Notice, accepted_card, accepted_key, audited, card_master_configured,
    card_not_accepted, custody_failure, find, journey_closed, notify_profile, other_profile,
    piv_trust, receipt_wrong, refuse_card_step,
};
use crate::audit::{Action, Audited, Outcome};
use crate::clock::Millis;
use crate::custody::CardKey;
use crate::db::states::{ClosedReason, JourneyState, OutboxKind};
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::journey::{no_journey, no_journey_step, step};
use crate::outbox::templates;
use crate::state::AppState;

/// How a receipt is checked, by profile.
#[derive(Debug, Clone)]
enum Check {
    UnlockCr {
        /// The admin key of the card the journey had accepted when the receipt came, with
        /// the card and its key version (derived before the write).
        key: Option<(CardId, i64, Arc<CardKey>)>,
        receipt: [u8; 16],
    },
    Piv {
        signature: Signature,
    },
}

/// `POST /api/journey/card/receipt`: the card's proof that it was unblocked.
pub async fn confirm_receipt(
    state: &AppState,
    token: Option<&str>,
    receipt: CardReceipt,
    client: &str,
) -> Result<Receipted, Failure> {
    let token = token.ok_or_else(no_journey)?.to_owned();
    let check = match receipt {
        CardReceipt::UnlockCr { receipt } => {
            card_master_configured(state)?;
            Check::UnlockCr {
                key: unlock_cr_key(state, &token).await?,
                receipt: receipt.0,
            }
        }
        CardReceipt::Piv { signature } => {
            piv_trust(state)?;
            Check::Piv { signature }
        }
    };
    let (job_state, job_client) = (state.clone(), client.to_owned());
    step(state, client, Action::JourneyReceipt, move |conn, now| {
        let (state, check, token) = (job_state.clone(), check.clone(), token.clone());
        let client = job_client.clone();
        Box::pin(async move { check_receipt(conn, now, &state, &check, &token, &client).await })
    })
    .await
}

/// The admin key of the unlock-cr/1 card the journey accepted, if it accepted one.
async fn unlock_cr_key(
    state: &AppState,
    token: &str,
) -> Result<Option<(CardId, i64, Arc<CardKey>)>, Failure> {
    let Some((card, version)) = accepted_key(state, token).await? else {
        return Ok(None);
    };
    let Ok(serial) = CardSerial::parse(card.as_str()) else {
        return Ok(None);
    };
    let key = state
        .custody
        .card_key(version, &serial)
        .await
        .map_err(custody_failure)?;
    Ok(Some((card, version, Arc::new(key))))
}

/// Whether the receipt answers the journey's last challenge for the card `card`.
fn receipt_matches(
    journey: &CardJourney,
    card: &CardId,
    check: &Check,
    challenge: &[u8],
) -> Option<bool> {
    match check {
        Check::UnlockCr { key, receipt } => {
            // The key is of the card accepted when the receipt came, under its key version.
            let (keyed, version, key) = key.as_ref()?;
            if keyed != card || journey.card.key_version() != Some(*version) {
                return None;
            }
            let challenge = <[u8; 16]>::try_from(challenge).ok()?;
            Some(key.receipt_matches(&challenge, receipt))
        }
        Check::Piv { signature } => {
            let key = journey.receipt_key.as_deref()?;
            let nonce = <[u8; NONCE_LEN]>::try_from(challenge).ok()?;
            let message = piv::message(Purpose::Receipt, &nonce);
            Some(crate::piv::signature::verifies(key, &message, &signature.0))
        }
    }
}

/// The card confirmed its unlock: what the page is shown, and whose card it was (the browser
/// is trusted for them from now on, see [`crate::journey::device`]).
#[derive(Debug)]
pub struct Receipted {
    pub view: JourneyView,
    pub holder_id: Option<String>,
}

async fn check_receipt(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    check: &Check,
    token: &str,
    client: &str,
) -> anyhow::Result<Audited<Receipted>> {
    let Some(journey) = find(conn, token).await? else {
        return no_journey_step(conn, state, client, now).await;
    };
    let mut detail = None;
    let checked = 'checked: {
        // No expiry check: a card unblocked just before the journey ran out is still unlocked,
        // and its holder must still be told.
        if journey.state != JourneyState::Verified {
            break 'checked refuse_card_step(&journey, now)
                .unwrap_or((Outcome::JourneyClosed, Err(journey_closed())));
        }
        let Some(card) = accepted_card(&journey) else {
            break 'checked (Outcome::NoCard, Err(card_not_accepted()));
        };
        detail = Some(format!("card {card}"));
        let Some(challenge) = journey.last_challenge.as_deref() else {
            break 'checked (Outcome::NoChallenge, Err(receipt_wrong()));
        };
        let Some(matches) = receipt_matches(&journey, &card, check, challenge) else {
            break 'checked other_profile();
        };
        if !matches {
            // One receipt per released challenge: guessing needs a new cryptogram each time,
            // and cryptograms are capped.
            db::journeys::spend_challenge(conn, journey.id, now).await?;
            break 'checked (Outcome::ReceiptWrong, Err(receipt_wrong()));
        }
        if let Check::Piv { .. } = check
            && let Some(generation) =
                db::cards::commit_pending_puk(conn, card.as_str(), now).await?
        {
            detail = Some(format!("card {card}, PUK generation {generation}"));
        }
        db::journeys::close(conn, journey.id, ClosedReason::Unlocked, now).await?;
        let notice = Notice {
            kind: OutboxKind::CardUnlocked,
            composed: templates::card_unlocked(&card, now, &state.config.time_zone),
            action: Action::OutboxUnlockNotice,
        };
        notify_profile(conn, state, &journey, notice, client, now).await?;
        (Outcome::Unlocked, Ok(JourneyView::Unlocked { card }))
    };
    let (outcome, result) = checked;
    let receipted = result.map(|view| Receipted {
        view,
        holder_id: journey.holder_id.clone(),
    });
    Ok(audited(&journey, (outcome, receipted), detail))
}
