//! `POST /api/journey/card`: is the card in the reader one this holder may unlock here?

use unlock_protocol::CardSerial;
use unlock_protocol::api::JourneyView;

use super::{Refusal, audited, find, master_key, refuse_card, refuse_card_step};
use crate::audit::{Action, Audited, Outcome};
use crate::clock::Millis;
use crate::clock::seconds_until;
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::journey::{no_journey, no_journey_step, step};
use crate::state::AppState;

/// `POST /api/journey/card`: the card the bridge read, checked against the verified holder's
/// profile.
pub async fn present_card(
    state: &AppState,
    token: Option<&str>,
    serial: CardSerial,
    profile: String,
    client: &str,
) -> Result<JourneyView, Failure> {
    master_key(state)?;
    let token = token.ok_or_else(no_journey)?.to_owned();
    let job_state = state.clone();
    step(
        state,
        client,
        Action::JourneyPresentCard,
        move |conn, now| {
            let (state, token) = (job_state.clone(), token.clone());
            let (serial, profile) = (serial.clone(), profile.clone());
            Box::pin(async move { accept_card(conn, now, &state, &token, &serial, &profile).await })
        },
    )
    .await
}

async fn accept_card(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    token: &str,
    serial: &CardSerial,
    profile: &str,
) -> anyhow::Result<Audited<JourneyView>> {
    let Some(journey) = find(conn, token).await? else {
        return Ok(no_journey_step());
    };
    let mut detail = format!("card {serial}");
    let checked = 'checked: {
        if let Some(refused) = refuse_card_step(&journey, now) {
            break 'checked refused;
        }
        let card =
            db::cards::on_profile(conn, serial.as_str(), journey.holder_id.as_deref()).await?;
        if let Some(refusal) = refuse_card(&state.config, card.as_ref(), Some(profile), now) {
            if let Refusal(Some(reason)) = refusal {
                detail.push_str(&format!(": {}", reason.as_str()));
            }
            // Whatever card was accepted before, this one is in the reader now.
            db::journeys::forget_card(conn, journey.id, now).await?;
            break 'checked (refusal.outcome(), Err(refusal.answer()));
        }
        // The same card again keeps its last challenge (its receipt may be on its way);
        // another card starts afresh.
        db::journeys::accept_card(conn, journey.id, serial.as_str(), now).await?;
        let view = JourneyView::CardAccepted {
            serial: serial.clone(),
            expires_in_seconds: seconds_until(now, journey.expires_at),
        };
        (Outcome::Accepted, Ok(view))
    };
    Ok(audited(&journey, checked, Some(detail)))
}
