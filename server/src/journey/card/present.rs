//! `POST /api/journey/card`: is the card in the reader one this holder may unlock here?

use unlock_protocol::CardSerial;
use unlock_protocol::api::JourneyView;

use super::{Refusal, find_audited, holder_event, master_key, refuse_card, refuse_card_step};
use crate::audit::{self, Action, Outcome};
use crate::clock::seconds_until;
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::journey::no_journey;
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
    let (state, client) = (state.clone(), client.to_owned());
    state
        .clone()
        .db
        .write(move |conn| {
            Box::pin(accept_card(
                conn,
                state.clone(),
                token.clone(),
                serial.clone(),
                profile.clone(),
                client.clone(),
            ))
        })
        .await?
}

async fn accept_card(
    conn: &mut Conn,
    state: AppState,
    token: String,
    serial: CardSerial,
    profile: String,
    client: String,
) -> anyhow::Result<Result<JourneyView, Failure>> {
    let now = state.clock.now();
    let action = Action::JourneyPresentCard;
    let Some(journey) = find_audited(conn, &token, &client, now, action).await? else {
        return Ok(Err(no_journey()));
    };
    let mut detail = format!("card {serial}");
    let (outcome, result) = 'checked: {
        if let Some(refused) = refuse_card_step(&journey, now) {
            break 'checked refused;
        }
        let card =
            db::cards::on_profile(conn, serial.as_str(), journey.holder_id.as_deref()).await?;
        if let Some(refusal) = refuse_card(&state.config, card.as_ref(), Some(&profile), now) {
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
    let event = holder_event(&journey, action, outcome, &client, Some(&detail));
    audit::record(conn, now, event).await?;
    Ok(result)
}
