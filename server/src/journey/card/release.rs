//! `POST /api/journey/card/cryptogram`: the cryptogram for a fresh challenge, at most a
//! few per journey, never twice for one challenge.

use sha2::{Digest, Sha256};
use unlock_protocol::{CardSerial, ErrorCode};

use super::{
    accepted_card, card_not_accepted, find_audited, holder_event, master_key, refuse_card,
    refuse_card_step,
};
use crate::audit::{self, Action, Outcome};
use crate::db::states::ClosedReason;
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::journey::no_journey;
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
    let (job_state, client) = (state.clone(), client.to_owned());
    let serial = state
        .db
        .write(move |conn| {
            Box::pin(record_release(
                conn,
                job_state.clone(),
                token.clone(),
                challenge,
                client.clone(),
            ))
        })
        .await??;
    Ok(key.cryptogram(&serial, &challenge))
}

async fn record_release(
    conn: &mut Conn,
    state: AppState,
    token: String,
    challenge: [u8; 16],
    client: String,
) -> anyhow::Result<Result<CardSerial, Failure>> {
    let now = state.clock.now();
    let action = Action::JourneyCryptogram;
    let Some(journey) = find_audited(conn, &token, &client, now, action).await? else {
        return Ok(Err(no_journey()));
    };
    let cap = i64::from(state.config.journey.cryptograms_per_journey);
    let mut detail = None;
    let (outcome, result) = 'checked: {
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
    let event = holder_event(&journey, action, outcome, &client, detail.as_deref());
    audit::record(conn, now, event).await?;
    Ok(result)
}
