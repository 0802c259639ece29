//! The holder's journey up to a verified one-time code: start with an email address,
//! receive a code, type it in, ask for another.

mod code;
mod start;

use anyhow::Context;
use sqlx::SqliteConnection;
use unlock_protocol::api::{IneligibleReason, JourneyView};
use unlock_protocol::{EmailAddress, ErrorCode};

pub use code::{resend, verify};
pub use start::{Started, start};

use crate::clock::{Millis, seconds_until};
use crate::config::JourneyConfig;
use crate::error::Failure;
use crate::secrets::token_hash;
use crate::state::AppState;
use axum::http::StatusCode;

/// A journey as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Journey {
    id: i64,
    subject: String,
    holder_id: Option<String>,
    email: String,
    state: String,
    ineligible_reason: Option<String>,
    expires_at: Millis,
}

/// The latest code of a journey; only it can be right.
#[derive(Debug, sqlx::FromRow)]
struct LatestCode {
    id: i64,
    code_mac: Vec<u8>,
    issued_at: Millis,
    wrong_tries: i64,
    state: String,
}

/// The journey a cookie token names.
async fn find(conn: &mut SqliteConnection, token: Option<&str>) -> Result<Journey, Failure> {
    let token =
        token.ok_or_else(|| Failure::client(StatusCode::NOT_FOUND, ErrorCode::NoJourney))?;
    sqlx::query_as(
        "SELECT id, subject, holder_id, email, state, ineligible_reason, expires_at FROM journeys WHERE token_hash = ?",
    )
    .bind(token_hash(token))
    .fetch_optional(conn)
    .await
    .context("find the journey")?
    .ok_or_else(|| Failure::client(StatusCode::NOT_FOUND, ErrorCode::NoJourney))
}

async fn latest_code(
    conn: &mut SqliteConnection,
    journey_id: i64,
) -> anyhow::Result<Option<LatestCode>> {
    sqlx::query_as(
        "SELECT id, code_mac, issued_at, wrong_tries, state FROM one_time_codes
         WHERE journey_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(journey_id)
    .fetch_optional(conn)
    .await
    .context("read the journey's latest code")
}

/// Codes issued to a subject in the hour before `now`.
async fn codes_last_hour(
    conn: &mut SqliteConnection,
    subject: &str,
    now: Millis,
) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM one_time_codes WHERE subject = ? AND issued_at > ?")
        .bind(subject)
        .bind(now - 3_600_000)
        .fetch_one(conn)
        .await
        .context("count the subject's recent codes")
}

/// Where a journey stands, as the page sees it.
fn view_of(
    config: &JourneyConfig,
    journey: &Journey,
    code: Option<&LatestCode>,
    now: Millis,
) -> Result<JourneyView, Failure> {
    match journey.state.as_str() {
        "awaiting_code" if now >= journey.expires_at => Ok(JourneyView::Expired),
        "awaiting_code" => {
            let live = code.filter(|c| c.state == "live");
            let tries_left = live.map_or(0, |c| {
                i64::from(config.max_code_tries).saturating_sub(c.wrong_tries)
            });
            let cooldown = i64::try_from(config.resend_cooldown_seconds * 1000).unwrap_or(i64::MAX);
            Ok(JourneyView::AwaitingCode {
                email_hint: EmailAddress::parse(&journey.email)
                    .map(|e| e.masked())
                    .unwrap_or_default(),
                expires_in_seconds: seconds_until(now, journey.expires_at),
                tries_left: u8::try_from(tries_left.max(0)).unwrap_or(0),
                resend_in_seconds: code.map_or(0, |c| seconds_until(now, c.issued_at + cooldown)),
            })
        }
        "verified" if now >= journey.expires_at => Ok(JourneyView::Expired),
        "verified" => Ok(JourneyView::Verified {
            expires_in_seconds: seconds_until(now, journey.expires_at),
        }),
        "ineligible" => {
            let reason = journey
                .ineligible_reason
                .as_deref()
                .and_then(IneligibleReason::from_name)
                .unwrap_or(IneligibleReason::NoCard);
            Ok(JourneyView::ContactRa { reason })
        }
        _ => Err(Failure::client(
            StatusCode::CONFLICT,
            ErrorCode::JourneyClosed,
        )),
    }
}

/// `GET /api/journey`: where the journey in the cookie stands.
pub async fn view(state: &AppState, token: Option<&str>) -> Result<JourneyView, Failure> {
    let mut conn = state
        .db
        .read
        .acquire()
        .await
        .context("acquire a read connection")?;
    let journey = find(&mut conn, token).await?;
    let code = latest_code(&mut conn, journey.id).await?;
    view_of(
        &state.config.journey,
        &journey,
        code.as_ref(),
        state.clock.now(),
    )
}
