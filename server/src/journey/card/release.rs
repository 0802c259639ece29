//! `POST /api/journey/card/cryptogram`: the cryptogram for a fresh challenge, at most a
//! few per journey, never twice for one challenge.

use sha2::{Digest, Sha256};
use unlock_protocol::{CardSerial, ErrorCode};

use super::{
    accepted_card, audited, card_not_accepted, find, master_key, refuse_card, refuse_card_step,
};
use crate::audit::{Action, Audited, Outcome};
use crate::clock::Millis;
use crate::db::states::ClosedReason;
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::journey::{no_journey, no_journey_step, step};
use crate::state::AppState;

/// `POST /api/journey/card/cryptogram`: the cryptogram for a fresh challenge from the
/// accepted card. It is computed only once the challenge's release is on disk.
pub async fn release_cryptogram(
    state: &AppState,
    token: Option<&str>,
    challenge: [u8; 16],
    client: &str,
) -> Result<[u8; 16], Failure> {
    let key = master_key(state)?;
    let token = token.ok_or_else(no_journey)?.to_owned();
    let job_state = state.clone();
    let serial = step(
        state,
        client,
        Action::JourneyCryptogram,
        move |conn, now| {
            let (state, token) = (job_state.clone(), token.clone());
            Box::pin(async move { record_release(conn, now, &state, &token, challenge).await })
        },
    )
    .await?;
    Ok(key.cryptogram(&serial, &challenge))
}

async fn record_release(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    token: &str,
    challenge: [u8; 16],
) -> anyhow::Result<Audited<CardSerial>> {
    let Some(journey) = find(conn, token).await? else {
        return Ok(no_journey_step());
    };
    let cap = i64::from(state.config.journey.cryptograms_per_journey);
    let mut detail = None;
    let checked = 'checked: {
        if let Some(refused) = refuse_card_step(&journey, now) {
            break 'checked refused;
        }
        let Some(serial) = accepted_card(&journey) else {
            break 'checked (Outcome::NoCard, Err(card_not_accepted()));
        };
        detail = Some(format!("card {serial}"));
        // The card may have been cancelled or moved since it was accepted.
        let card = journey.card.record()?;
        if let Some(refusal) = refuse_card(&state.config, card.as_ref(), None, now) {
            db::journeys::forget_card(conn, journey.id, now).await?;
            break 'checked (refusal.outcome(), Err(refusal.answer()));
        }
        if journey.cryptograms_released >= cap {
            db::journeys::close(conn, journey.id, ClosedReason::TooManyAttempts, now).await?;
            let refused = Failure::client(ErrorCode::TooManyAttempts);
            break 'checked (Outcome::TooManyAttempts, Err(refused));
        }
        let fresh = db::card_challenges::record(
            conn,
            serial.as_str(),
            &Sha256::digest(challenge),
            journey.id,
            now,
        )
        .await?;
        if !fresh {
            let refused = Failure::client(ErrorCode::ChallengeReused);
            break 'checked (Outcome::ChallengeReused, Err(refused));
        }
        // Counted in SQL and only below the cap, so parallel requests can't overrun it.
        let Some(released) =
            db::journeys::count_release(conn, journey.id, &challenge, cap, now).await?
        else {
            db::journeys::close(conn, journey.id, ClosedReason::TooManyAttempts, now).await?;
            let refused = Failure::client(ErrorCode::TooManyAttempts);
            break 'checked (Outcome::TooManyAttempts, Err(refused));
        };
        detail = Some(format!("card {serial}, release {released} of {cap}"));
        (Outcome::Released, Ok(serial))
    };
    Ok(audited(&journey, checked, detail))
}
