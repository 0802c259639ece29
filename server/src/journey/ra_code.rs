//! RA-assisted remote unlock: a holder who can reach no address on their profile phones
//! their Registration Authority, who verifies them and issues a one-time unlock code
//! ([`crate::staff::actions::issue_unlock_code`]). The holder types it here instead of an
//! emailed code; it names the holder by itself, so it starts the journey, verified, and the
//! rest of the journey is the same.
//!
//! The code alone is enough because it is long (12 characters of 29, about 2^58) and lives
//! 30 minutes: guessing one is hopeless, and every wrong code counts against the client
//! exactly as a wrong emailed code does, under the same lock-outs. Only its keyed hash is
//! stored; the row is found by that hash and compared again in constant time. A right code
//! for a holder who is locked out of self-service is refused until staff release them.

use unlock_protocol::{ErrorCode, RaUnlockCode};

use super::start::Started;
use super::{Journey, code::mark_verified, step, throttled, view_of};
use crate::audit::{Action, Audited, Outcome};
use crate::clock::Millis;
use crate::db::journeys::NewJourney;
use crate::db::states::{CodeState, JourneyState};
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::secrets::{self, token_hash};
use crate::state::AppState;
use crate::throttle::{self, Scope};

/// `POST /api/journey/ra-code`.
pub async fn redeem(state: &AppState, raw_code: &str, client: &str) -> Result<Started, Failure> {
    let code = RaUnlockCode::parse(raw_code)
        .map_err(|e| Failure::client_message(ErrorCode::CodeInvalid, format!("{e}.")))?;
    let (job_state, job_client) = (state.clone(), client.to_owned());
    step(state, client, Action::JourneyRaCode, move |conn, now| {
        let (state, code, client) = (job_state.clone(), code.clone(), job_client.clone());
        Box::pin(async move { check(conn, now, &state, &code, &client).await })
    })
    .await
}

fn wrong() -> Failure {
    Failure::client_message(
        ErrorCode::CodeWrong,
        "The unlock code is not right. Check it with your Registration Authority.",
    )
}

async fn check(
    conn: &mut Conn,
    now: Millis,
    state: &AppState,
    code: &RaUnlockCode,
    client: &str,
) -> anyhow::Result<Audited<Started>> {
    let config = &state.config;
    let key = crate::http::client_addr::throttle_key(client);
    // A client locked out for wrong codes (emailed or these) or too many starts can't try.
    let client_locked = db::throttles::locked_until(
        conn,
        (Scope::ClientFailure, key.as_str()),
        (Scope::ClientStart, key.as_str()),
    )
    .await?;
    if let Some(locked) = throttle::in_force(client_locked, now) {
        return Ok(Audited::refused(
            Outcome::ThrottledClient,
            None,
            throttled(now, locked),
        ));
    }
    let mac = state.keys.ra_code_mac(code.expose());
    let found = db::ra_codes::find(conn, &mac)
        .await?
        .filter(|found| state.keys.ra_code_matches(code.expose(), &found.code_mac));
    let Some(found) = found else {
        let locked = throttle::hit(conn, &config.throttle, Scope::ClientFailure, &key, now).await?;
        let refused = match locked {
            Some(locked) => throttled(now, locked),
            None => wrong(),
        };
        return Ok(Audited::refused(Outcome::WrongCode, None, refused));
    };
    let holder = found.holder_id.clone();
    let by = Some(format!("issued by {}", found.issued_by));
    let refused = |outcome, failure| {
        Ok(Audited::refused(outcome, by.clone(), failure).concerning(None, Some(&holder)))
    };
    if found.state != CodeState::Live {
        let used = Failure::client_message(
            ErrorCode::CodeVoided,
            "This unlock code has been used already. Ask your Registration Authority for a new \
             one.",
        );
        return refused(Outcome::NoLiveCode, used);
    }
    if now >= found.expires_at {
        let expired = Failure::client_message(
            ErrorCode::CodeExpired,
            "This unlock code has expired. Ask your Registration Authority for a new one.",
        );
        return refused(Outcome::Expired, expired);
    }
    // The holder's own lock-outs (wrong emailed codes) hold here too, until staff release them.
    let subject = format!("holder:{holder}");
    db::throttles::lock_subject(conn, &subject).await?;
    let limits = db::throttles::subject_limits(conn, &subject, now).await?;
    if let Some(locked) = throttle::in_force(limits.locked_until, now) {
        return refused(Outcome::ThrottledHolder, throttled(now, locked));
    }
    if !db::ra_codes::use_up(conn, found.id, now).await? {
        return refused(Outcome::NoLiveCode, Failure::client(ErrorCode::CodeVoided));
    }
    let token = secrets::new_token()?;
    let new = NewJourney {
        token_hash: &token_hash(&token),
        subject: &subject,
        holder_id: Some(&holder),
        // No address: the code came from the RA, not by email.
        email: "",
        client_addr: client,
        expires_at: now,
    };
    let id = db::journeys::create(conn, &new, now).await?;
    db::ra_codes::opened(conn, found.id, id).await?;
    let journey = Journey {
        id,
        subject,
        holder_id: Some(holder.clone()),
        email: String::new(),
        state: JourneyState::AwaitingCode,
        ineligible_reason: None,
        expires_at: now,
        card_serial: None,
        closed_reason: None,
    };
    let journey = mark_verified(conn, config, journey, now).await?;
    let (outcome, detail) = match journey.state {
        JourneyState::Verified => (Outcome::Verified, by),
        // Why self-service can't help, as a verified code records it.
        _ => (
            Outcome::VerifiedIneligible,
            journey.ineligible_reason.clone(),
        ),
    };
    let view = view_of(&config.journey, &journey, None, now);
    Ok(
        Audited::new(outcome, detail, view.map(|view| Started { token, view }))
            .concerning(Some(id), Some(&holder)),
    )
}
