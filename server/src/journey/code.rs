//! Checking a typed code, and sending a new one.

use unlock_protocol::api::{IneligibleReason, JourneyView};
use unlock_protocol::{CardStatus, ErrorCode, OneTimeCode};

use super::start::issue_code;
use super::{
    Found, Journey, code_refused, find, no_journey, no_journey_step, step, throttled, view_of,
};
use crate::audit::{Action, Audited, Outcome};
use crate::clock::{Millis, seconds_until};
use crate::config::Config;
use crate::db::cards::CardRecord;
use crate::db::codes::WrongTry;
use crate::db::journeys::Purpose;
use crate::db::states::{CodeState, JourneyState};
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::state::AppState;
use crate::throttle::{self, Locked, Scope};

/// `POST /api/journey/code`.
pub async fn verify(
    state: &AppState,
    token: Option<&str>,
    raw_code: &str,
    client: &str,
) -> Result<JourneyView, Failure> {
    let code = OneTimeCode::parse(raw_code)
        .map_err(|e| Failure::client_message(ErrorCode::CodeInvalid, format!("{e}.")))?;
    let token = token.ok_or_else(no_journey)?.to_owned();
    let (job_state, job_client) = (state.clone(), client.to_owned());
    step(
        state,
        client,
        Action::JourneyVerifyCode,
        move |conn, now| {
            let (state, token, code) = (job_state.clone(), token.clone(), code.clone());
            let client = job_client.clone();
            Box::pin(async move { check_code(conn, now, &state, &token, &code, &client).await })
        },
    )
    .await
}

/// `POST /api/journey/resend`.
pub async fn resend(
    state: &AppState,
    token: Option<&str>,
    client: &str,
) -> Result<JourneyView, Failure> {
    let token = token.ok_or_else(no_journey)?.to_owned();
    let (job_state, job_client) = (state.clone(), client.to_owned());
    step(
        state,
        client,
        Action::JourneyResendCode,
        move |conn, now| {
            let (state, token, client) = (job_state.clone(), token.clone(), job_client.clone());
            Box::pin(async move { send_new_code(conn, now, &state, &token, &client).await })
        },
    )
    .await
}

async fn check_code(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    token: &str,
    code: &OneTimeCode,
    client: &str,
) -> anyhow::Result<Audited<JourneyView>> {
    let config = &state.config;
    let Some(Found {
        journey,
        code: latest,
        locked,
        contact_owner,
    }) = find(conn, token, client, now, Purpose::Change).await?
    else {
        return no_journey_step(conn, state, client, now).await;
    };
    let mut ineligible = None;
    let (outcome, result) = 'checked: {
        if let Some(refused) = refuse_code_step(&journey, locked, now) {
            break 'checked refused;
        }
        let Some(latest) = latest.filter(|c| c.state == CodeState::Live) else {
            let voided = Failure::client(ErrorCode::CodeVoided);
            break 'checked (Outcome::NoLiveCode, Err(voided));
        };
        // The address the code went to must still be on the holder's profile.
        if let Some(holder) = journey.holder_id.as_deref()
            && contact_owner.as_deref() != Some(holder)
        {
            db::journeys::close_open_for_email(conn, holder, &journey.email, now).await?;
            let closed = Failure::client(ErrorCode::JourneyClosed);
            break 'checked (Outcome::JourneyClosed, Err(closed));
        }
        if state
            .keys
            .code_matches(journey.id, code.expose(), &latest.code_mac)
        {
            if !db::codes::use_up(conn, latest.id).await? {
                let voided = Failure::client(ErrorCode::CodeVoided);
                break 'checked (Outcome::NoLiveCode, Err(voided));
            }
            let journey = mark_verified(conn, config, journey.clone(), now).await?;
            let outcome = if journey.state == JourneyState::Verified {
                Outcome::Verified
            } else {
                Outcome::VerifiedIneligible
            };
            // Why self-service can't help, for the status view's failures by reason.
            ineligible.clone_from(&journey.ineligible_reason);
            break 'checked (outcome, view_of(&config.journey, &journey, None, now));
        }
        let max_tries = i64::from(config.journey.max_code_tries);
        let Some(WrongTry {
            wrong_tries,
            voided,
        }) = db::codes::record_wrong_try(conn, latest.id, max_tries).await?
        else {
            let voided = Failure::client(ErrorCode::CodeVoided);
            break 'checked (Outcome::NoLiveCode, Err(voided));
        };
        let key = crate::http::client_addr::throttle_key(client);
        throttle::hit(conn, &config.throttle, Scope::ClientFailure, &key, now).await?;
        // Every wrong code counts against the holder, whatever code or journey it was for:
        // so many a day, and so many in all before staff must release them.
        for scope in [Scope::SubjectWrongCode, Scope::SubjectWrongTotal] {
            throttle::hit(conn, &config.throttle, scope, &journey.subject, now).await?;
        }
        if voided {
            throttle::hit(
                conn,
                &config.throttle,
                Scope::SubjectVoided,
                &journey.subject,
                now,
            )
            .await?;
            let voided = Failure::client(ErrorCode::CodeVoided).tries_left(0);
            break 'checked (Outcome::WrongCodeVoided, Err(voided));
        }
        let tries_left =
            u8::try_from(i64::from(config.journey.max_code_tries) - wrong_tries).unwrap_or(0);
        let message = match tries_left {
            1 => "The security code is not right. You have 1 more try.".to_owned(),
            n => format!("The security code is not right. You have {n} more tries."),
        };
        let wrong = Failure::client_message(ErrorCode::CodeWrong, message);
        (Outcome::WrongCode, Err(wrong.tries_left(tries_left)))
    };
    Ok(Audited::new(outcome, ineligible, result)
        .concerning(Some(journey.id), journey.holder_id.as_deref()))
}

async fn send_new_code(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    token: &str,
    client: &str,
) -> anyhow::Result<Audited<JourneyView>> {
    let config = &state.config;
    let Some(Found {
        journey,
        code: latest,
        locked,
        ..
    }) = find(conn, token, client, now, Purpose::Change).await?
    else {
        return no_journey_step(conn, state, client, now).await;
    };
    let (outcome, result) = 'checked: {
        if let Some(refused) = refuse_code_step(&journey, locked, now) {
            break 'checked refused;
        }
        let cooldown =
            i64::try_from(config.journey.resend_cooldown_seconds * 1000).unwrap_or(i64::MAX);
        if let Some(latest) = &latest
            && now < latest.issued_at + cooldown
        {
            let wait = seconds_until(now, latest.issued_at + cooldown);
            let message = format!("Wait {wait} seconds before asking for another code.");
            let too_soon = Failure::client_message(ErrorCode::ResendTooSoon, message);
            break 'checked (Outcome::TooSoon, Err(too_soon.retry_after(wait)));
        }
        db::throttles::lock_subject(conn, &journey.subject).await?;
        if let Some((outcome, refused)) =
            code_refused(conn, &config.journey, &journey.subject, now).await?
        {
            break 'checked (outcome, Err(refused));
        }
        // Only the latest code may work. It brings no new tries: the live code's wrong ones
        // carry over, so "guess twice, then ask for another" gains nothing. (A voided code
        // was counted against the holder when its tries ran out; the next starts afresh.)
        let carried = db::codes::supersede_live(conn, journey.id).await?;
        // An earlier code's email still waiting to go out would only confuse.
        db::outbox::withdraw_code_emails(conn, journey.id, now).await?;
        let code = issue_code(state, conn, &journey, carried, None, now).await?;
        (
            Outcome::CodeIssued,
            view_of(&config.journey, &journey, Some(&code), now),
        )
    };
    Ok(Audited::new(outcome, None, result)
        .concerning(Some(journey.id), journey.holder_id.as_deref()))
}

/// Why a journey can't take a code or a resend now: it has moved on, its holder or client is
/// locked out, or its time is up.
fn refuse_code_step(
    journey: &Journey,
    locked: Option<Locked>,
    now: Millis,
) -> Option<(Outcome, Result<JourneyView, Failure>)> {
    if journey.state != JourneyState::AwaitingCode {
        return Some((
            Outcome::NotAwaitingCode,
            Err(Failure::client(ErrorCode::JourneyClosed)),
        ));
    }
    if let Some(locked) = locked {
        return Some((Outcome::Throttled, Err(throttled(now, locked))));
    }
    if now >= journey.expires_at {
        return Some((
            Outcome::Expired,
            Err(Failure::client(ErrorCode::CodeExpired)),
        ));
    }
    None
}

/// After a right code: the holder may go on only if one of their cards can be unlocked here.
pub(super) async fn mark_verified(
    conn: &mut Conn,
    config: &Config,
    mut journey: Journey,
    now: Millis,
) -> anyhow::Result<Journey> {
    let holder_id = journey.holder_id.as_deref().unwrap_or_default();
    let reason = ineligibility(conn, config, holder_id, now).await?;
    journey.state = if reason.is_some() {
        JourneyState::Ineligible
    } else {
        JourneyState::Verified
    };
    journey.ineligible_reason = reason.map(|r| r.as_str().to_owned());
    journey.expires_at =
        now + i64::try_from(config.journey.verified_ttl_seconds * 1000).unwrap_or(i64::MAX);
    db::journeys::mark_verified(conn, &journey, now).await?;
    Ok(journey)
}

/// Why none of the holder's cards can be unlocked, or `None` if one can.
async fn ineligibility(
    conn: &mut Conn,
    config: &Config,
    holder_id: &str,
    now: Millis,
) -> anyhow::Result<Option<IneligibleReason>> {
    let cards: Vec<CardRecord> = db::cards::of_holder(conn, holder_id)
        .await?
        .into_iter()
        .map(|card| card.record)
        .collect();
    let usable = |card: &CardRecord| {
        card.status == CardStatus::Active
            && card.cert_expires_at > now
            && config.cards.supported_models.contains(&card.model)
    };
    if cards.iter().any(usable) {
        return Ok(None);
    }
    // Name the reason that applies to the most promising card.
    let live: Vec<_> = cards
        .iter()
        .filter(|card| card.status == CardStatus::Active)
        .collect();
    Ok(Some(if cards.is_empty() {
        IneligibleReason::NoCard
    } else if live.is_empty()
        && cards
            .iter()
            .any(|card| card.status == CardStatus::Suspended)
    {
        IneligibleReason::CardSuspended
    } else if live.is_empty() {
        IneligibleReason::CardCancelled
    } else if live.iter().any(|card| card.cert_expires_at > now) {
        IneligibleReason::CardModelUnsupported
    } else {
        IneligibleReason::CertificatesExpired
    }))
}
