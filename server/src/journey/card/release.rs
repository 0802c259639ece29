//! `POST /api/journey/card/release`: the card's secret against its proof, at most a few
//! times per journey. For `unlock-cr/1`, the cryptogram for a fresh challenge, never twice
//! for one challenge; for `piv/1`, see [`super::release_puk`].

use sha2::{Digest, Sha256};
use unlock_protocol::card_profile;
use unlock_protocol::card_steps::{CardProof, CardRelease};
use unlock_protocol::{CardSerial, ErrorCode};

use super::{
    audited, card_master_configured, custody_failure, find, notify_release, other_profile,
    releasable, release_cap, too_many_attempts,
};
use crate::audit::{Action, Audited, Outcome};
use crate::clock::Millis;
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::journey::{no_journey, no_journey_step, step};
use crate::state::AppState;

/// `POST /api/journey/card/release`: what the accepted card needs to be unblocked, against
/// its proof.
pub async fn release(
    state: &AppState,
    token: Option<&str>,
    proof: CardProof,
    client: &str,
) -> Result<CardRelease, Failure> {
    match proof {
        CardProof::UnlockCr { challenge } => {
            release_cryptogram(state, token, challenge.0, client).await
        }
        CardProof::Piv { signature } => {
            super::release_puk::release_puk(state, token, signature, client).await
        }
    }
}

/// The cryptogram for a fresh challenge from the accepted card. It is computed only once the
/// challenge's release is on disk, with the card master key version the card was issued
/// under (on the token, if that is where the key is).
async fn release_cryptogram(
    state: &AppState,
    token: Option<&str>,
    challenge: [u8; 16],
    client: &str,
) -> Result<CardRelease, Failure> {
    card_master_configured(state)?;
    let token = token.ok_or_else(no_journey)?.to_owned();
    let (job_state, job_client) = (state.clone(), client.to_owned());
    let (serial, version) = step(state, client, Action::JourneyRelease, move |conn, now| {
        let (state, token, client) = (job_state.clone(), token.clone(), job_client.clone());
        Box::pin(async move { record_release(conn, now, &state, &token, challenge, &client).await })
    })
    .await?;
    let key = state
        .custody
        .card_key(version, &serial)
        .await
        .map_err(custody_failure)?;
    let cryptogram = key.cryptogram(&serial, &challenge);
    Ok(CardRelease::UnlockCr {
        serial,
        cryptogram: unlock_protocol::bridge::Block(cryptogram),
    })
}

async fn record_release(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    token: &str,
    challenge: [u8; 16],
    client: &str,
) -> anyhow::Result<Audited<(CardSerial, i64)>> {
    let Some(journey) = find(conn, token).await? else {
        return no_journey_step(conn, state, client, now).await;
    };
    let cap = release_cap(state);
    let mut detail = None;
    let checked = 'checked: {
        let card_id = match releasable(
            conn,
            now,
            state,
            &journey,
            card_profile::PROFILE,
            &mut detail,
        )
        .await?
        {
            Ok(card_id) => card_id,
            Err(refused) => break 'checked refused,
        };
        let Ok(serial) = CardSerial::parse(card_id.as_str()) else {
            break 'checked other_profile();
        };
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
            break 'checked too_many_attempts(conn, journey.id, now).await?;
        };
        notify_release(conn, state, &journey, &card_id, released, client, now).await?;
        let version = journey.card.key_version().unwrap_or(1);
        detail = Some(format!(
            "card {serial}, release {released} of {cap}, card master key v{version}"
        ));
        (Outcome::Released, Ok((serial, version)))
    };
    Ok(audited(&journey, checked, detail))
}
