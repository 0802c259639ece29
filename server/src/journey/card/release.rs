//! `POST /api/journey/card/cryptogram`: the cryptogram for a fresh challenge, at most a
//! few per journey, never twice for one challenge.

use crate::db::Conn;
use anyhow::Context;
use sha2::{Digest, Sha256};
use unlock_protocol::{CardSerial, ErrorCode};

use super::{
    accepted_card, card_not_accepted, find_audited, forget_card, holder_event, master_key,
    refuse_card, refuse_card_step,
};
use crate::audit;
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
    let action = "journey.cryptogram";
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
            break 'checked ("no_card", Err(card_not_accepted()));
        };
        detail = Some(format!("card {serial}"));
        // The card may have been cancelled or moved since it was accepted.
        if let Some(refusal) = refuse_card(&state.config, journey.card_record().as_ref(), None, now)
        {
            forget_card(conn, journey.id, now).await?;
            break 'checked (refusal.outcome(), Err(refusal.answer()));
        }
        if journey.cryptograms_released >= cap {
            sqlx::query(
                "UPDATE journeys SET state = 'closed', closed_reason = 'too_many_attempts',
                        closed_at = $1, last_challenge = NULL, updated_at = $1
                 WHERE id = $2",
            )
            .bind(now)
            .bind(journey.id)
            .execute(&mut *conn)
            .await
            .context("close the journey after too many attempts")?;
            let refused = Failure::client(ErrorCode::TooManyAttempts);
            break 'checked ("too_many_attempts", Err(refused));
        }
        let fresh = sqlx::query(
            "INSERT INTO card_challenges (serial, challenge_hash, journey_id, released_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(serial.as_str())
        .bind(Sha256::digest(challenge).to_vec())
        .bind(journey.id)
        .bind(now)
        .execute(&mut *conn)
        .await
        .context("record the challenge")?
        .rows_affected()
            == 1;
        if !fresh {
            let refused = Failure::client(ErrorCode::ChallengeReused);
            break 'checked ("challenge_reused", Err(refused));
        }
        sqlx::query(
            "UPDATE journeys SET cryptograms_released = cryptograms_released + 1,
                    last_challenge = $1, updated_at = $2
             WHERE id = $3",
        )
        .bind(challenge.as_slice())
        .bind(now)
        .bind(journey.id)
        .execute(&mut *conn)
        .await
        .context("record the release")?;
        detail = Some(format!(
            "card {serial}, release {} of {cap}",
            journey.cryptograms_released + 1
        ));
        ("released", Ok(serial))
    };
    let event = holder_event(&journey, action, outcome, &client, detail.as_deref());
    audit::record(conn, now, event).await?;
    Ok(result)
}
