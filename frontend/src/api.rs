//! Calls to the server's journey API (same origin, `/api/...`, JSON both ways). The journey
//! is bound to the browser by an HttpOnly cookie, which same-origin requests carry.

use gloo_net::http::{Request, Response};
use unlock_protocol::api::JourneyView;
use unlock_protocol::{ErrorCode, OneTimeCode};
use wasm_bindgen::JsValue;

use crate::route::EndReason;
use crate::wire::{self, Carried, Json, Out};

/// `GET /api/allowed-domains`: the domains a holder's address may be on.
pub async fn allowed_domains() -> Result<Vec<String>, ApiFailure> {
    send(
        Request::get("/api/allowed-domains").build(),
        wire::allowed_domains,
    )
    .await
}

/// `POST /api/journeys`: start a journey; a code is emailed if the address is on a profile.
/// `contact` is an email address or a mobile number (the server reads the number).
pub async fn start_journey(contact: &str) -> Result<JourneyView, ApiFailure> {
    let body = Out::new().text("email", contact);
    send(post_json("/api/journeys", &body), wire::journey_view).await
}

/// `GET /api/journey`: where the journey in the cookie stands.
pub async fn journey() -> Result<JourneyView, ApiFailure> {
    send(Request::get("/api/journey").build(), wire::journey_view).await
}

/// `POST /api/journey/code`.
pub async fn verify_code(code: &OneTimeCode) -> Result<JourneyView, ApiFailure> {
    let body = Out::new().text("code", code.expose());
    send(post_json("/api/journey/code", &body), wire::journey_view).await
}

/// `POST /api/journey/ra-code`: the unlock code an RA read out; it starts the journey,
/// verified.
pub async fn redeem_ra_code(code: &str) -> Result<JourneyView, ApiFailure> {
    let body = Out::new().text("code", code);
    send(post_json("/api/journey/ra-code", &body), wire::journey_view).await
}

/// `POST /api/journey/resend`: a new code, replacing the last one.
pub async fn resend_code() -> Result<JourneyView, ApiFailure> {
    send(
        Request::post("/api/journey/resend").build(),
        wire::journey_view,
    )
    .await
}

/// `POST /api/journey/card`: the card the bridge read, for the server to accept; the view,
/// and what the server asks of the card.
pub async fn present_card(
    identity: &Carried,
) -> Result<(JourneyView, Option<Carried>), ApiFailure> {
    let read = |json: &JsValue| Some((wire::journey_view(json)?, wire::challenge_of(json)));
    send(post_text("/api/journey/card", identity.text()), read).await
}

/// `POST /api/journey/card/release`: what the card needs to be unblocked, against its proof.
pub async fn release(proof: &Carried) -> Result<Carried, ApiFailure> {
    let read = |json: &JsValue| json.to_text().map(Carried::from_text);
    send(post_text("/api/journey/card/release", proof.text()), read).await
}

/// `POST /api/journey/card/receipt`: the card's proof that it was unlocked.
pub async fn receipt(receipt: &Carried) -> Result<JourneyView, ApiFailure> {
    send(
        post_text("/api/journey/card/receipt", receipt.text()),
        wire::journey_view,
    )
    .await
}

/// A POST with a JSON body, as the API reads it.
fn post_json(url: &str, body: &Out) -> Result<Request, gloo_net::Error> {
    post_text(url, &body.to_text())
}

fn post_text(url: &str, json: &str) -> Result<Request, gloo_net::Error> {
    Request::post(url)
        .header("Content-Type", "application/json")
        .body(json)
}

async fn send<T>(
    request: Result<Request, gloo_net::Error>,
    read: impl FnOnce(&JsValue) -> Option<T>,
) -> Result<T, ApiFailure> {
    let request = request.map_err(|_| ApiFailure::unreachable())?;
    let response = request
        .send()
        .await
        .map_err(|_| ApiFailure::unreachable())?;
    if response.ok() {
        json_of(&response)
            .await
            .as_ref()
            .and_then(read)
            .ok_or_else(|| ApiFailure::unexpected(response.status()))
    } else {
        Err(failure_of(&response).await)
    }
}

/// What a refused request says: the API's error body, or a plain sentence if it has none.
pub async fn failure_of(response: &Response) -> ApiFailure {
    json_of(response)
        .await
        .as_ref()
        .and_then(error_body)
        .map(ApiFailure::from_body)
        .unwrap_or_else(|| ApiFailure::unexpected(response.status()))
}

/// The response's body as JSON, if it is JSON.
async fn json_of(response: &Response) -> Option<JsValue> {
    let text = response.text().await.ok()?;
    js_sys::JSON::parse(&text).ok()
}

/// The error body as sent. `code` stays a string here: a code newer than this page still
/// gives the server's sentence rather than failing to parse.
#[derive(Debug)]
struct ErrorBody {
    code: String,
    message: String,
    retry_after_seconds: Option<u64>,
    tries_left: Option<u8>,
}

fn error_body<J: Json>(json: &J) -> Option<ErrorBody> {
    Some(ErrorBody {
        code: json.text("code")?,
        message: json.text("message")?,
        retry_after_seconds: json.optional("retry_after_seconds", Json::integer)?,
        tries_left: json.optional("tries_left", Json::integer)?,
    })
}

/// A refused or failed API call, with the sentence to show the holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// The API's code; `None` when no API answer came (or a code newer than this page).
    pub code: Option<ErrorCode>,
    /// The server's sentence (or ours when the server could not be reached).
    pub message: String,
    pub retry_after_seconds: Option<u64>,
    pub tries_left: Option<u8>,
}

/// The code a wire name stands for, if this page knows it.
fn error_code(name: &str) -> Option<ErrorCode> {
    ErrorCode::from_name(name)
}

impl ApiFailure {
    /// The end page this failure leads to, when the journey cannot go on.
    pub fn end_reason(&self) -> Option<EndReason> {
        match self.code? {
            ErrorCode::Throttled => Some(EndReason::Throttled),
            ErrorCode::TooManyCodes => Some(EndReason::TooManyCodes),
            ErrorCode::CodeExpired | ErrorCode::NoJourney | ErrorCode::JourneyExpired => {
                Some(EndReason::Expired)
            }
            ErrorCode::TooManyAttempts => Some(EndReason::TooManyAttempts),
            ErrorCode::JourneyClosed => Some(EndReason::Closed),
            _ => None,
        }
    }

    fn from_body(body: ErrorBody) -> Self {
        Self {
            code: error_code(&body.code),
            message: body.message,
            retry_after_seconds: body.retry_after_seconds,
            tries_left: body.tries_left,
        }
    }

    /// The request never got an answer.
    pub fn unreachable() -> Self {
        Self::unavailable(
            "We could not reach the unlock service. Check your internet connection and try again.",
        )
    }

    /// An answer that is not the API's JSON.
    pub fn unexpected(status: u16) -> Self {
        let message = if status >= 500 || status == 0 {
            ErrorCode::Unavailable.default_message()
        } else {
            ErrorCode::Internal.default_message()
        };
        Self::unavailable(message)
    }

    fn unavailable(message: &str) -> Self {
        Self {
            code: None,
            message: message.to_owned(),
            retry_after_seconds: None,
            tries_left: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(json: &str) -> ApiFailure {
        let json: serde_json::Value = serde_json::from_str(json).unwrap();
        ApiFailure::from_body(error_body(&json).unwrap())
    }

    #[test]
    fn known_codes_keep_the_servers_sentence() {
        let failure = parsed(
            r#"{"code":"code_wrong","message":"The security code is not right.","tries_left":2}"#,
        );
        assert_eq!(failure.code, Some(ErrorCode::CodeWrong));
        assert_eq!(failure.message, "The security code is not right.");
        assert_eq!(failure.tries_left, Some(2));

        let failure =
            parsed(r#"{"code":"resend_too_soon","message":"Wait.","retry_after_seconds":12}"#);
        assert_eq!(failure.code, Some(ErrorCode::ResendTooSoon));
        assert_eq!(failure.retry_after_seconds, Some(12));
    }

    #[test]
    fn every_protocol_code_is_recognised_and_unknown_ones_keep_the_sentence() {
        for code in [
            ErrorCode::EmailDomainNotAllowed,
            ErrorCode::CodeVoided,
            ErrorCode::CardNotOnProfile,
            ErrorCode::NotVerified,
            ErrorCode::CardNotAccepted,
            ErrorCode::ReceiptWrong,
        ] {
            assert_eq!(error_code(code.as_str()), Some(code), "{code}");
        }
        let failure = parsed(r#"{"code":"something_new","message":"Try later."}"#);
        assert_eq!(
            (failure.code, failure.message.as_str()),
            (None, "Try later.")
        );
    }

    #[test]
    fn failures_that_end_the_journey() {
        let ending = |code| {
            ApiFailure {
                code: Some(code),
                ..ApiFailure::unreachable()
            }
            .end_reason()
        };
        assert_eq!(ending(ErrorCode::Throttled), Some(EndReason::Throttled));
        assert_eq!(ending(ErrorCode::NoJourney), Some(EndReason::Expired));
        assert_eq!(ending(ErrorCode::CodeExpired), Some(EndReason::Expired));
        assert_eq!(
            ending(ErrorCode::TooManyAttempts),
            Some(EndReason::TooManyAttempts)
        );
        assert_eq!(ending(ErrorCode::CodeWrong), None);
        assert_eq!(ending(ErrorCode::CardNotOnProfile), None);
        assert_eq!(ApiFailure::unreachable().end_reason(), None);
    }

    #[test]
    fn answers_that_are_not_the_apis_become_plain_sentences() {
        assert_eq!(ApiFailure::unexpected(502).code, None);
        assert_eq!(
            ApiFailure::unexpected(502).message,
            ErrorCode::Unavailable.default_message()
        );
        assert!(
            ApiFailure::unreachable()
                .message
                .contains("internet connection")
        );
    }
}
