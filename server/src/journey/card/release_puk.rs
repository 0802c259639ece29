//! The `piv/1` release: once the card has signed the journey's possession nonce with its Card
//! Authentication key (9E), the server releases its escrowed PUK together with the next PUK
//! the card is to be rotated to, and a receipt nonce.
//!
//! The next PUK is drawn and recorded as *pending* in the same transaction as the release,
//! and becomes current only when the card's receipt (signed with 9A after the new PIN was
//! verified) arrives. Until then a release offers both PUKs the card may hold — pending
//! first, since the card is rotated to it the moment it has been used — and keeps the same
//! pending PUK as the target, so whatever happened to the last attempt the card holds one of
//! the two and at most one PUK try is spent finding which.

use unlock_protocol::card_steps::{CardRelease, Nonce, Signature};
use unlock_protocol::piv::{self, NONCE_LEN, Puk, Purpose};
use unlock_protocol::{CardGuid, ErrorCode};

use super::{
    CardJourney, Checked, audited, find, other_profile, piv_trust, releasable, release_cap,
    too_many_attempts,
};
use crate::audit::{Action, Audited, Outcome};
use crate::clock::Millis;
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::journey::{no_journey, no_journey_step, step};
use crate::piv::{escrow, signature};
use crate::state::AppState;

/// `POST /api/journey/card/release` for a PIV card: its possession signature in, its PUKs out.
pub async fn release_puk(
    state: &AppState,
    token: Option<&str>,
    proof: Signature,
    client: &str,
) -> Result<CardRelease, Failure> {
    piv_trust(state)?;
    let token = token.ok_or_else(no_journey)?.to_owned();
    let job_state = state.clone();
    step(state, client, Action::JourneyRelease, move |conn, now| {
        let (state, token, proof) = (job_state.clone(), token.clone(), proof.clone());
        Box::pin(async move { record_release(conn, now, &state, &token, &proof).await })
    })
    .await
}

async fn record_release(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    token: &str,
    proof: &Signature,
) -> anyhow::Result<Audited<CardRelease>> {
    let Some(journey) = find(conn, token).await? else {
        return Ok(no_journey_step());
    };
    let cap = release_cap(state);
    let mut detail = None;
    let checked = 'checked: {
        let card_id =
            match releasable(conn, now, state, &journey, piv::PROFILE, &mut detail).await? {
                Ok(card_id) => card_id,
                Err(refused) => break 'checked refused,
            };
        let (Ok(guid), Some(possession_key)) = (
            CardGuid::parse(card_id.as_str()),
            journey.possession_key.as_deref(),
        ) else {
            break 'checked other_profile();
        };
        // One proof per nonce: presenting the card again draws a new one.
        let Some(nonce) = db::journeys::take_possession_nonce(conn, journey.id, now).await? else {
            let refused = Failure::client(ErrorCode::ChallengeReused);
            break 'checked (Outcome::ChallengeReused, Err(refused));
        };
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| anyhow::anyhow!("a stored possession nonce has the wrong length"))?;
        let message = piv::message(Purpose::Possession, &nonce);
        if !signature::verifies(possession_key, &message, &proof.0) {
            let refused = Failure::client(ErrorCode::PossessionFailed);
            break 'checked (Outcome::PossessionFailed, Err(refused));
        }
        break 'checked release_escrow(conn, now, state, &journey, guid, cap, &mut detail).await?;
    };
    Ok(audited(&journey, checked, detail))
}

/// The PUKs the card may hold and the one to rotate it to, with the pending PUK recorded in
/// this transaction; a receipt nonce the card is to sign once unlocked.
async fn release_escrow(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    journey: &CardJourney,
    guid: CardGuid,
    cap: i64,
    detail: &mut Option<String>,
) -> anyhow::Result<Checked<CardRelease>> {
    let card_id = guid.clone().into();
    let escrow_row = db::cards::escrow(conn, guid.as_str()).await?;
    let Some((current, pending, generation)) =
        escrow_row.and_then(|e| Some((e.current?, e.pending, e.generation)))
    else {
        anyhow::bail!("card {guid} was accepted without an escrowed PUK");
    };
    let current = escrow::open(&state.keys, &card_id, &current)?;
    let (puks, next_puk): (Vec<Puk>, Puk) = match pending {
        Some(pending) => {
            let pending = escrow::open(&state.keys, &card_id, &pending)?;
            (vec![pending.clone(), current], pending)
        }
        None => {
            let next = escrow::new_puk()?;
            let sealed = escrow::seal(&state.keys, &card_id, &next)?;
            if !db::cards::hold_pending_puk(conn, guid.as_str(), &sealed, now).await? {
                anyhow::bail!("card {guid}'s pending PUK changed during its release");
            }
            (vec![current], next)
        }
    };
    let mut receipt_nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut receipt_nonce)?;
    // Counted in SQL and only below the cap, so parallel requests can't overrun it.
    let Some(released) =
        db::journeys::count_release(conn, journey.id, &receipt_nonce, cap, now).await?
    else {
        return too_many_attempts(conn, journey.id, now).await;
    };
    *detail = Some(format!(
        "card {guid}, release {released} of {cap}, PUK generation {generation}, {} candidate(s)",
        puks.len()
    ));
    let release = CardRelease::Piv {
        guid,
        puks,
        next_puk,
        receipt_nonce: Nonce(receipt_nonce),
    };
    Ok((Outcome::Released, Ok(release)))
}
