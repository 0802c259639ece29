//! Handlers of the holder journey; the rules live in [`crate::journey`].

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use unlock_protocol::api::{
    AllowedDomains, CardReceipt, Cryptogram, CryptogramRequest, JourneyView, PresentCard,
    StartJourney, VerifyCode,
};
use unlock_protocol::bridge::Block;

use super::extract::{ApiJson, ClientAddr, JourneyToken, journey_cookie};
use crate::error::Failure;
use crate::journey;
use crate::state::AppState;

/// How long the browser keeps the journey cookie; the journey itself expires sooner.
const COOKIE_MAX_AGE_SECONDS: u64 = 60 * 60;

pub async fn start(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<StartJourney>,
) -> Result<impl IntoResponse, Failure> {
    let started = journey::start(&state, &body.email, &client).await?;
    let cookie = journey_cookie(
        &started.token,
        state.config.serves_https(),
        COOKIE_MAX_AGE_SECONDS,
    );
    Ok(([(header::SET_COOKIE, cookie)], Json(started.view)))
}

/// The allow list, which is no secret: the start of the journey says which addresses qualify.
pub async fn allowed_domains(
    State(state): State<AppState>,
) -> Result<Json<AllowedDomains>, Failure> {
    let domains = sqlx::query_scalar("SELECT domain FROM allowed_domains ORDER BY domain")
        .fetch_all(state.db.read_pool())
        .await
        .map_err(|error| {
            Failure::from(anyhow::Error::from(error).context("read the allow list"))
        })?;
    Ok(Json(AllowedDomains { domains }))
}

pub async fn view(
    State(state): State<AppState>,
    JourneyToken(token): JourneyToken,
) -> Result<Json<JourneyView>, Failure> {
    journey::view(&state, token.as_deref()).await.map(Json)
}

pub async fn verify(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JourneyToken(token): JourneyToken,
    ApiJson(body): ApiJson<VerifyCode>,
) -> Result<Json<JourneyView>, Failure> {
    journey::verify(&state, token.as_deref(), &body.code, &client)
        .await
        .map(Json)
}

pub async fn resend(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JourneyToken(token): JourneyToken,
) -> Result<Json<JourneyView>, Failure> {
    journey::resend(&state, token.as_deref(), &client)
        .await
        .map(Json)
}

pub async fn present_card(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JourneyToken(token): JourneyToken,
    ApiJson(body): ApiJson<PresentCard>,
) -> Result<Json<JourneyView>, Failure> {
    journey::present_card(&state, token.as_deref(), body.serial, body.profile, &client)
        .await
        .map(Json)
}

pub async fn cryptogram(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JourneyToken(token): JourneyToken,
    ApiJson(body): ApiJson<CryptogramRequest>,
) -> Result<Json<Cryptogram>, Failure> {
    let cryptogram =
        journey::release_cryptogram(&state, token.as_deref(), body.challenge.0, &client).await?;
    Ok(Json(Cryptogram {
        cryptogram: Block(cryptogram),
    }))
}

pub async fn receipt(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JourneyToken(token): JourneyToken,
    ApiJson(body): ApiJson<CardReceipt>,
) -> Result<Json<JourneyView>, Failure> {
    journey::confirm_receipt(&state, token.as_deref(), body.receipt.0, &client)
        .await
        .map(Json)
}
