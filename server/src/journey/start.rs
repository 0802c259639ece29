//! Starting a journey: the answer is the same whether or not the address is on a profile.

use anyhow::Context;
use axum::http::StatusCode;
use sqlx::SqliteConnection;
use unlock_protocol::api::JourneyView;
use unlock_protocol::{EmailAddress, ErrorCode};

use super::{Journey, LatestCode, codes_last_hour, view_of};
use crate::audit::{self, Event};
use crate::clock::{Millis, seconds_until};
use crate::error::Failure;
use crate::outbox::{self, Outgoing, templates};
use crate::secrets::{self, token_hash};
use crate::state::AppState;
use crate::throttle::{self, Scope};

/// A journey just started: the cookie token and the first view.
#[derive(Debug)]
pub struct Started {
    pub token: String,
    pub view: JourneyView,
}

/// `POST /api/journeys`.
pub async fn start(state: &AppState, raw_email: &str, client: &str) -> Result<Started, Failure> {
    let email = EmailAddress::parse(raw_email).map_err(|e| {
        Failure::client_message(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::EmailInvalid,
            format!("{e}."),
        )
    })?;
    let now = state.clock.now();
    let config = &state.config;
    let mut tx = state.db.begin().await?;
    let audit_event = |outcome| Event {
        actor: "holder",
        action: "journey.start",
        outcome,
        client_addr: Some(client),
        ..Event::default()
    };

    let client_locked = match throttle::check(&mut tx, Scope::ClientStart, client, now).await? {
        Err(locked) => Some(locked),
        Ok(()) => throttle::hit(&mut tx, &config.throttle, Scope::ClientStart, client, now).await?,
    };
    if let Some(locked) = client_locked {
        audit::record(&mut tx, now, audit_event("throttled_client")).await?;
        tx.commit().await.context("commit")?;
        return Err(
            Failure::client(StatusCode::TOO_MANY_REQUESTS, ErrorCode::Throttled)
                .retry_after(seconds_until(now, locked.until)),
        );
    }

    if !domain_allowed(&mut tx, email.domain()).await? {
        audit::record(
            &mut tx,
            now,
            Event {
                detail: Some(email.domain()),
                ..audit_event("domain_not_allowed")
            },
        )
        .await?;
        tx.commit().await.context("commit")?;
        return Err(Failure::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::EmailDomainNotAllowed,
        ));
    }

    let holder_id: Option<String> =
        sqlx::query_scalar("SELECT holder_id FROM holder_emails WHERE email = ?")
            .bind(email.as_str())
            .fetch_optional(&mut *tx)
            .await
            .context("look up the address")?;
    // Addresses on no profile get a pseudonymous subject and go through every step a known
    // one does, except that no email is queued: the answer and its timing must not differ.
    let subject = match &holder_id {
        Some(id) => format!("holder:{id}"),
        None => state.keys.email_subject(email.as_str()),
    };
    let base = Event {
        holder_id: holder_id.as_deref(),
        ..audit_event("")
    };

    if let Err(locked) = throttle::check(&mut tx, Scope::SubjectVoided, &subject, now).await? {
        audit::record(
            &mut tx,
            now,
            Event {
                outcome: "throttled_holder",
                ..base.clone()
            },
        )
        .await?;
        tx.commit().await.context("commit")?;
        return Err(
            Failure::client(StatusCode::TOO_MANY_REQUESTS, ErrorCode::Throttled)
                .retry_after(seconds_until(now, locked.until)),
        );
    }
    if codes_last_hour(&mut tx, &subject, now).await? >= i64::from(config.journey.codes_per_hour) {
        audit::record(
            &mut tx,
            now,
            Event {
                outcome: "too_many_codes",
                ..base.clone()
            },
        )
        .await?;
        tx.commit().await.context("commit")?;
        return Err(Failure::client(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyCodes,
        ));
    }

    let token = secrets::new_token()?;
    let expires_at =
        now + i64::try_from(config.journey.code_ttl_seconds * 1000).unwrap_or(i64::MAX);
    let journey_id: i64 = sqlx::query_scalar(
        "INSERT INTO journeys (token_hash, subject, holder_id, email, client_addr, state, started_at, expires_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'awaiting_code', ?6, ?7, ?6) RETURNING id",
    )
    .bind(token_hash(&token))
    .bind(&subject)
    .bind(holder_id.as_deref())
    .bind(email.as_str())
    .bind(client)
    .bind(now)
    .bind(expires_at)
    .fetch_one(&mut *tx)
    .await
    .context("create the journey")?;
    let journey = Journey {
        id: journey_id,
        subject,
        holder_id: holder_id.clone(),
        email: email.as_str().to_owned(),
        state: "awaiting_code".into(),
        ineligible_reason: None,
        expires_at,
    };
    let code = issue_code(state, &mut tx, &journey, now).await?;
    audit::record(
        &mut tx,
        now,
        Event {
            outcome: "code_issued",
            journey_id: Some(journey_id),
            ..base
        },
    )
    .await?;
    tx.commit().await.context("commit the new journey")?;
    state.outbox_wake.notify_one();

    let view = view_of(&config.journey, &journey, Some(&code), now)?;
    Ok(Started { token, view })
}

async fn domain_allowed(conn: &mut SqliteConnection, domain: &str) -> anyhow::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM allowed_domains WHERE domain = ?")
        .bind(domain)
        .fetch_optional(conn)
        .await
        .context("check the email domain allow list")?;
    Ok(found.is_some())
}

/// Draws a new code for the journey, makes it the only live one, and queues its email if the
/// address is on a profile. The code itself leaves this function only inside the sealed email.
pub(super) async fn issue_code(
    state: &AppState,
    conn: &mut SqliteConnection,
    journey: &Journey,
    now: Millis,
) -> anyhow::Result<LatestCode> {
    let code = secrets::new_code()?;
    let code_mac = state.keys.code_mac(journey.id, &code);
    sqlx::query(
        "UPDATE one_time_codes SET state = 'superseded' WHERE journey_id = ? AND state = 'live'",
    )
    .bind(journey.id)
    .execute(&mut *conn)
    .await
    .context("supersede the journey's earlier code")?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO one_time_codes (journey_id, subject, code_mac, issued_at, state)
         VALUES (?, ?, ?, ?, 'live') RETURNING id",
    )
    .bind(journey.id)
    .bind(&journey.subject)
    .bind(&code_mac)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .context("store the code's keyed hash")?;
    let minutes = state.config.journey.code_ttl_seconds / 60;
    let message = templates::one_time_code(&code, minutes, journey.expires_at);
    if journey.holder_id.is_some() {
        let outgoing = Outgoing {
            kind: "one_time_code",
            recipient: &journey.email,
            journey_id: Some(journey.id),
            message,
            expires_at: Some(journey.expires_at),
        };
        outbox::enqueue(conn, &state.keys, outgoing, now).await?;
    }
    Ok(LatestCode {
        id,
        code_mac,
        issued_at: now,
        wrong_tries: 0,
        state: "live".into(),
    })
}
