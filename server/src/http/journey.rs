//! Handlers of the holder journey; the rules live in [`crate::journey`].

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{AppendHeaders, IntoResponse};
use unlock_protocol::ApiError;
use unlock_protocol::api::{AllowedDomains, JourneyView, RedeemRaCode, StartJourney, VerifyCode};
use unlock_protocol::card_steps::{CardIdentity, CardProof, CardReceipt, CardRelease};

use super::extract::{ApiJson, ClientAddr, Device, JourneyToken, device_cookie, journey_cookie};
use crate::error::Failure;
use crate::journey;
use crate::journey::device::DeviceCookie;
use crate::state::AppState;

/// How long the browser keeps the journey cookie; the journey itself expires sooner.
const COOKIE_MAX_AGE_SECONDS: u64 = 60 * 60;

/// Start a journey
///
/// Sends a one-time code to the address if it is on a holder's profile, and binds the new
/// journey to the browser with the `unlock_journey` cookie. The answer is the same whether
/// or not the address belongs to a holder.
#[utoipa::path(
    post,
    path = "/api/journeys",
    tag = "holder",
    operation_id = "start_journey",
    request_body = StartJourney,
    responses(
        (status = 200, description = "The journey started: a code was sent (by email, or by text message to a mobile number) if the address or number is on a profile.",
            body = JourneyView,
            headers(("set-cookie" = String, description = "`unlock_journey`, the journey's token (HttpOnly, SameSite=Strict, Path=/api)."))),
        (status = 400, description = "`bad_json`: the body is not JSON.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`: the body is not sent as JSON.", body = ApiError),
        (status = 422, description = "`email_invalid` (neither an email address nor a mobile number), `email_domain_not_allowed` (also: a mobile number when text messages are not configured) or `invalid_body`.", body = ApiError),
        (status = 429, description = "`throttled` or `too_many_codes`; `retry_after_seconds` says when to try again.", body = ApiError,
            headers(("retry-after" = u64, description = "Seconds to wait."))),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn start(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Device(device): Device,
    ApiJson(body): ApiJson<StartJourney>,
) -> Result<impl IntoResponse, Failure> {
    let started = journey::start(&state, &body.email, &client, device.as_ref()).await?;
    let cookie = journey_cookie(
        &started.token,
        state.config.serves_https(),
        COOKIE_MAX_AGE_SECONDS,
    );
    Ok(([(header::SET_COOKIE, cookie)], Json(started.view)))
}

/// Start a journey with an unlock code from the holder's RA
///
/// For a holder who can reach no address on their profile: their Registration Authority
/// verified them over the phone and read out a one-time unlock code. The code names the
/// holder by itself, so the journey starts verified (the card steps come next) and is bound
/// to the browser with the `unlock_journey` cookie. A wrong code counts against the client
/// as a wrong emailed code does.
#[utoipa::path(
    post,
    path = "/api/journey/ra-code",
    tag = "holder",
    operation_id = "redeem_ra_code",
    request_body = RedeemRaCode,
    responses(
        (status = 200, description = "The code was right: `verified`, or `contact_ra` when self-service can't help.",
            body = JourneyView,
            headers(("set-cookie" = String, description = "`unlock_journey`, the journey's token (HttpOnly, SameSite=Strict, Path=/api)."))),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 410, description = "`code_expired`: the code's 30 minutes are up.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`code_invalid`, `code_wrong`, `code_voided` (used already or replaced) or `invalid_body`.", body = ApiError),
        (status = 429, description = "`throttled`; `retry_after_seconds` says when to try again.", body = ApiError,
            headers(("retry-after" = u64, description = "Seconds to wait."))),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn redeem_ra_code(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<RedeemRaCode>,
) -> Result<impl IntoResponse, Failure> {
    let started = journey::redeem_ra_code(&state, &body.code, &client).await?;
    let cookie = journey_cookie(
        &started.token,
        state.config.serves_https(),
        COOKIE_MAX_AGE_SECONDS,
    );
    Ok(([(header::SET_COOKIE, cookie)], Json(started.view)))
}

/// The email domains a holder's address may be on
///
/// The allow list is no secret: the start of the journey says which addresses qualify.
#[utoipa::path(
    get,
    path = "/api/allowed-domains",
    tag = "holder",
    operation_id = "allowed_domains",
    responses(
        (status = 200, description = "The allowed domains, in order.", body = AllowedDomains),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn allowed_domains(
    State(state): State<AppState>,
) -> Result<Json<AllowedDomains>, Failure> {
    let domains = crate::db::allowed_domains::names(&mut *state.db.reader().await?).await?;
    Ok(Json(AllowedDomains { domains }))
}

/// Where the journey stands
#[utoipa::path(
    get,
    path = "/api/journey",
    tag = "holder",
    operation_id = "view_journey",
    security(("journey_cookie" = [])),
    responses(
        (status = 200, description = "The journey's stage.", body = JourneyView),
        (status = 404, description = "`no_journey`: no cookie, or it names no journey.", body = ApiError),
        (status = 409, description = "`journey_closed`: the journey ended without an unlock.", body = ApiError),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn view(
    State(state): State<AppState>,
    JourneyToken(token): JourneyToken,
) -> Result<Json<JourneyView>, Failure> {
    journey::view(&state, token.as_deref()).await.map(Json)
}

/// Verify the one-time code
#[utoipa::path(
    post,
    path = "/api/journey/code",
    tag = "holder",
    operation_id = "verify_code",
    security(("journey_cookie" = [])),
    request_body = VerifyCode,
    responses(
        (status = 200, description = "The code was right: `verified`, or `contact_ra` when self-service can't help.", body = JourneyView),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 404, description = "`no_journey`.", body = ApiError),
        (status = 409, description = "`journey_closed`.", body = ApiError),
        (status = 410, description = "`code_expired`.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`code_invalid`, `code_wrong` (with `tries_left`), `code_voided` or `invalid_body`.", body = ApiError),
        (status = 429, description = "`throttled`; `retry_after_seconds` says when to try again.", body = ApiError,
            headers(("retry-after" = u64, description = "Seconds to wait."))),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
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

/// Send a new one-time code
#[utoipa::path(
    post,
    path = "/api/journey/resend",
    tag = "holder",
    operation_id = "resend_code",
    security(("journey_cookie" = [])),
    responses(
        (status = 200, description = "A new code was sent (if the address is on a profile); the earlier one no longer works.", body = JourneyView),
        (status = 404, description = "`no_journey`.", body = ApiError),
        (status = 409, description = "`journey_closed`.", body = ApiError),
        (status = 410, description = "`code_expired`: the journey ran out of time.", body = ApiError),
        (status = 429, description = "`resend_too_soon`, `too_many_codes` or `throttled`; `retry_after_seconds` says when to try again.", body = ApiError,
            headers(("retry-after" = u64, description = "Seconds to wait."))),
        (status = 500, description = "`internal`.", body = ApiError),
    ),
)]
pub async fn resend(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JourneyToken(token): JourneyToken,
) -> Result<Json<JourneyView>, Failure> {
    journey::resend(&state, token.as_deref(), &client)
        .await
        .map(Json)
}

/// Present the card the bridge read
#[utoipa::path(
    post,
    path = "/api/journey/card",
    tag = "holder",
    operation_id = "present_card",
    security(("journey_cookie" = [])),
    request_body = CardIdentity,
    responses(
        (status = 200, description = "`card_accepted`: the card is the holder's and can be unlocked; `challenge` says what to ask of it.", body = JourneyView),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 404, description = "`no_journey`.", body = ApiError),
        (status = 409, description = "`not_verified` or `journey_closed`.", body = ApiError),
        (status = 410, description = "`journey_expired`.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`card_not_on_profile`, `card_not_usable`, `certificate_not_trusted` or `invalid_body`.", body = ApiError),
        (status = 429, description = "`throttled`: too many requests from this client named no journey; `retry_after_seconds` says when to try again.", body = ApiError,
            headers(("retry-after" = u64, description = "Seconds to wait."))),
        (status = 500, description = "`internal`.", body = ApiError),
        (status = 503, description = "`unavailable`: this server can't unlock cards of this profile (no card master key, or no PIV trust anchors).", body = ApiError),
    ),
)]
pub async fn present_card(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JourneyToken(token): JourneyToken,
    ApiJson(card): ApiJson<CardIdentity>,
) -> Result<Json<JourneyView>, Failure> {
    journey::present_card(&state, token.as_deref(), card, &client)
        .await
        .map(Json)
}

/// Release the card's secret against its proof
///
/// `unlock-cr/1`: the cryptogram for the card's fresh challenge. `piv/1`: once the card's
/// Card Authentication key has signed the possession nonce, its escrowed PUK (with the
/// pending one, if a rotation is unconfirmed), the PUK to rotate to, and a receipt nonce.
#[utoipa::path(
    post,
    path = "/api/journey/card/release",
    tag = "holder",
    operation_id = "release_card_secret",
    security(("journey_cookie" = [])),
    request_body = CardProof,
    responses(
        (status = 200, description = "What the card needs to be unblocked.", body = CardRelease),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 404, description = "`no_journey`.", body = ApiError),
        (status = 409, description = "`not_verified`, `card_not_accepted` or `journey_closed`.", body = ApiError),
        (status = 410, description = "`journey_expired`.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`challenge_reused`, `possession_failed`, `card_not_on_profile`, `card_not_usable` or `invalid_body`.", body = ApiError),
        (status = 429, description = "`too_many_attempts`: the journey is closed; or `throttled`: too many requests from this client named no journey, and `retry_after_seconds` says when to try again.", body = ApiError,
            headers(("retry-after" = u64, description = "Seconds to wait (`throttled`)."))),
        (status = 500, description = "`internal`.", body = ApiError),
        (status = 503, description = "`unavailable`: this server can't unlock cards of this profile.", body = ApiError),
    ),
)]
pub async fn release(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JourneyToken(token): JourneyToken,
    ApiJson(proof): ApiJson<CardProof>,
) -> Result<Json<CardRelease>, Failure> {
    journey::release(&state, token.as_deref(), proof, &client)
        .await
        .map(Json)
}

/// Confirm the card's receipt
#[utoipa::path(
    post,
    path = "/api/journey/card/receipt",
    tag = "holder",
    operation_id = "confirm_receipt",
    security(("journey_cookie" = [])),
    request_body = CardReceipt,
    responses(
        (status = 200, description = "`unlocked`: the card is unlocked and the journey is over.", body = JourneyView,
            headers(("set-cookie" = String, description = "`unlock_device`: this browser is trusted for the holder from now on; its journeys for them count their limits apart (HttpOnly, SameSite=Strict, Path=/)."))),
        (status = 400, description = "`bad_json`.", body = ApiError),
        (status = 404, description = "`no_journey`.", body = ApiError),
        (status = 409, description = "`not_verified`, `card_not_accepted` or `journey_closed`.", body = ApiError),
        (status = 410, description = "`journey_expired`.", body = ApiError),
        (status = 413, description = "`payload_too_large`.", body = ApiError),
        (status = 415, description = "`unsupported_media_type`.", body = ApiError),
        (status = 422, description = "`receipt_wrong` or `invalid_body`.", body = ApiError),
        (status = 429, description = "`throttled`: too many requests from this client named no journey; `retry_after_seconds` says when to try again.", body = ApiError,
            headers(("retry-after" = u64, description = "Seconds to wait."))),
        (status = 500, description = "`internal`.", body = ApiError),
        (status = 503, description = "`unavailable`: this server can't unlock cards of this profile.", body = ApiError),
    ),
)]
pub async fn receipt(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JourneyToken(token): JourneyToken,
    Device(device): Device,
    ApiJson(receipt): ApiJson<CardReceipt>,
) -> Result<impl IntoResponse, Failure> {
    let receipted = journey::confirm_receipt(&state, token.as_deref(), receipt, &client).await?;
    // The browser that finished a journey for the holder is trusted for them from now on.
    let cookie = match (&receipted.holder_id, device) {
        (Some(holder), device) => {
            let device = match device {
                Some(device) => device,
                None => DeviceCookie::new()?,
            };
            let trusted = device.trusting(&state.keys, holder);
            Some(device_cookie(&trusted, state.config.serves_https()))
        }
        (None, _) => None,
    };
    let headers: Vec<_> = cookie
        .into_iter()
        .map(|cookie| (header::SET_COOKIE, cookie))
        .collect();
    Ok((AppendHeaders(headers), Json(receipted.view)))
}
