//! `POST /api/journey/card`: is the card in the reader one this holder may unlock here?

use crate::db::Conn;
use anyhow::Context;
use unlock_protocol::CardSerial;
use unlock_protocol::api::JourneyView;

use super::{
    CardRecord, Refusal, find_audited, forget_card, holder_event, master_key, refuse_card,
    refuse_card_step,
};
use crate::audit;
use crate::clock::seconds_until;
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
    let action = "journey.present_card";
    let Some(journey) = find_audited(conn, &token, &client, now, action).await? else {
        return Ok(Err(no_journey()));
    };
    let mut detail = format!("card {serial}");
    let (outcome, result) = 'checked: {
        if let Some(refused) = refuse_card_step(&journey, now) {
            break 'checked refused;
        }
        let card: Option<CardRecord> = sqlx::query_as(
            "SELECT status, cert_expires_at, model FROM cards WHERE serial = $1 AND holder_id = $2",
        )
        .bind(serial.as_str())
        .bind(journey.holder_id.as_deref())
        .fetch_optional(&mut *conn)
        .await
        .context("read the presented card")?;
        if let Some(refusal) = refuse_card(&state.config, card.as_ref(), Some(&profile), now) {
            if let Refusal(Some(reason)) = refusal {
                detail.push_str(&format!(": {}", reason.as_str()));
            }
            // Whatever card was accepted before, this one is in the reader now.
            forget_card(conn, journey.id, now).await?;
            break 'checked (refusal.outcome(), Err(refusal.answer()));
        }
        // The same card again keeps its last challenge (its receipt may be on its way);
        // another card starts afresh.
        sqlx::query(
            "UPDATE journeys SET last_challenge = CASE WHEN card_serial = $1 THEN last_challenge END,
                    card_serial = $1, card_accepted_at = $2, updated_at = $2
             WHERE id = $3",
        )
        .bind(serial.as_str())
        .bind(now)
        .bind(journey.id)
        .execute(&mut *conn)
        .await
        .context("accept the card")?;
        let view = JourneyView::CardAccepted {
            serial: serial.clone(),
            expires_in_seconds: seconds_until(now, journey.expires_at),
        };
        ("accepted", Ok(view))
    };
    let event = holder_event(&journey, action, outcome, &client, Some(&detail));
    audit::record(conn, now, event).await?;
    Ok(result)
}
