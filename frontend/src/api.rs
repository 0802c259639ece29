//! Calls to the server's journey API (same origin, `/api/...`, JSON both ways). The journey
//! is bound to the browser by an HttpOnly cookie, which same-origin requests carry.

use gloo_net::http::{Request, Response};
use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde::de::value::{Error as ValueError, StrDeserializer};
use unlock_protocol::api::JourneyView;
use unlock_protocol::bridge::Block;
use unlock_protocol::{CardSerial, EmailAddress, ErrorCode, OneTimeCode};
use wasm_bindgen::JsValue;

use crate::route::EndReason;
use crate::wire::{self, Json, Out};

/// `GET /api/allowed-domains`: the domains a holder's address may be on.
pub async fn allowed_domains() -> Result<Vec<String>, ApiFailure> {
    send(
        Request::get("/api/allowed-domains").build(),
        wire::allowed_domains,
    )
    .await
}

/// `POST /api/journeys`: start a journey; a code is emailed if the address is on a profile.
pub async fn start_journey(email: &EmailAddress) -> Result<JourneyView, ApiFailure> {
    let body = Out::new().text("email", email.as_str());
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

/// `POST /api/journey/resend`: a new code, replacing the last one.
pub async fn resend_code() -> Result<JourneyView, ApiFailure> {
    send(
        Request::post("/api/journey/resend").build(),
        wire::journey_view,
    )
    .await
}

/// `POST /api/journey/card`: the card the bridge read, for the server to accept.
pub async fn present_card(serial: &CardSerial, profile: &str) -> Result<JourneyView, ApiFailure> {
    let body = Out::new()
        .text("serial", serial.as_str())
        .text("profile", profile);
    send(post_json("/api/journey/card", &body), wire::journey_view).await
}

/// `POST /api/journey/card/cryptogram`: the server's answer to the card's challenge.
pub async fn cryptogram(challenge: Block) -> Result<Block, ApiFailure> {
    let body = Out::new().text("challenge", challenge);
    let read = |json: &JsValue| wire::block(json, "cryptogram");
    send(post_json("/api/journey/card/cryptogram", &body), read).await
}

/// `POST /api/journey/card/receipt`: the card's proof that it was unlocked.
pub async fn receipt(receipt: Block) -> Result<JourneyView, ApiFailure> {
    let body = Out::new().text("receipt", receipt);
    send(
        post_json("/api/journey/card/receipt", &body),
        wire::journey_view,
    )
    .await
}

/// A POST with a JSON body, as the API reads it.
fn post_json(url: &str, body: &Out) -> Result<Request, gloo_net::Error> {
    Request::post(url)
        .header("Content-Type", "application/json")
        .body(body.to_text())
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
    let body = json_of(&response).await;
    if response.ok() {
        body.as_ref()
            .and_then(read)
            .ok_or_else(|| ApiFailure::unexpected(response.status()))
    } else {
        Err(body
            .as_ref()
            .and_then(error_body)
            .map(ApiFailure::from_body)
            .unwrap_or_else(|| ApiFailure::unexpected(response.status())))
    }
}

/// The response's body as JSON, if it is JSON.
async fn json_of(response: &Response) -> Option<JsValue> {
    let text = response.text().await.ok()?;
    js_sys::JSON::parse(&text).ok()
}

/// The error body as sent. `code` stays a string here: codes newer than this page are kept
/// as [`Problem::Other`] rather than failing to parse.
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
    pub problem: Problem,
    /// The server's sentence (or ours when the server could not be reached).
    pub message: String,
    pub retry_after_seconds: Option<u64>,
    pub tries_left: Option<u8>,
}

/// What went wrong, as far as the page acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    EmailInvalid,
    EmailDomainNotAllowed,
    CodeInvalid,
    CodeWrong,
    CodeVoided,
    CodeExpired,
    NoJourney,
    JourneyClosed,
    ResendTooSoon,
    TooManyCodes,
    Throttled,
    CardNotOnProfile,
    CardNotUsable,
    NotVerified,
    /// The card step's time ran out.
    JourneyExpired,
    /// A card step came before the server accepted the card.
    CardNotAccepted,
    ChallengeReused,
    TooManyAttempts,
    ReceiptWrong,
    /// No answer, or an answer that was not the API's (a proxy's error page, say).
    Unavailable,
    /// A code this page has no special handling for.
    Other(String),
}

impl Problem {
    /// The problem a wire code names.
    pub fn from_code(code: &str) -> Self {
        let de: StrDeserializer<'_, ValueError> = code.into_deserializer();
        match ErrorCode::deserialize(de) {
            Ok(ErrorCode::EmailInvalid) => Self::EmailInvalid,
            Ok(ErrorCode::EmailDomainNotAllowed) => Self::EmailDomainNotAllowed,
            Ok(ErrorCode::CodeInvalid) => Self::CodeInvalid,
            Ok(ErrorCode::CodeWrong) => Self::CodeWrong,
            Ok(ErrorCode::CodeVoided) => Self::CodeVoided,
            Ok(ErrorCode::CodeExpired) => Self::CodeExpired,
            Ok(ErrorCode::NoJourney) => Self::NoJourney,
            Ok(ErrorCode::JourneyClosed) => Self::JourneyClosed,
            Ok(ErrorCode::ResendTooSoon) => Self::ResendTooSoon,
            Ok(ErrorCode::TooManyCodes) => Self::TooManyCodes,
            Ok(ErrorCode::Throttled) => Self::Throttled,
            Ok(ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::Internal) => {
                Self::Unavailable
            }
            // The card-step codes are matched by name, so the page works whether or not the
            // protocol crate lists them yet.
            _ => match code {
                "card_not_on_profile" => Self::CardNotOnProfile,
                "card_not_usable" => Self::CardNotUsable,
                "not_verified" => Self::NotVerified,
                "journey_expired" => Self::JourneyExpired,
                "card_not_accepted" => Self::CardNotAccepted,
                "challenge_reused" => Self::ChallengeReused,
                "too_many_attempts" => Self::TooManyAttempts,
                "receipt_wrong" => Self::ReceiptWrong,
                other => Self::Other(other.to_owned()),
            },
        }
    }
}

impl Problem {
    /// The end page this problem leads to, when the journey cannot go on.
    pub fn end_reason(&self) -> Option<EndReason> {
        match self {
            Self::Throttled => Some(EndReason::Throttled),
            Self::TooManyCodes => Some(EndReason::TooManyCodes),
            Self::CodeExpired | Self::NoJourney | Self::JourneyExpired => Some(EndReason::Expired),
            Self::TooManyAttempts => Some(EndReason::TooManyAttempts),
            Self::JourneyClosed => Some(EndReason::Closed),
            _ => None,
        }
    }
}

impl ApiFailure {
    fn from_body(body: ErrorBody) -> Self {
        Self {
            problem: Problem::from_code(&body.code),
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
    fn unexpected(status: u16) -> Self {
        let message = if status >= 500 || status == 0 {
            ErrorCode::Unavailable.default_message()
        } else {
            ErrorCode::Internal.default_message()
        };
        Self::unavailable(message)
    }

    fn unavailable(message: &str) -> Self {
        Self {
            problem: Problem::Unavailable,
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
    fn known_codes_map_to_problems_and_keep_the_servers_sentence() {
        let failure = parsed(
            r#"{"code":"code_wrong","message":"The security code is not right.","tries_left":2}"#,
        );
        assert_eq!(failure.problem, Problem::CodeWrong);
        assert_eq!(failure.message, "The security code is not right.");
        assert_eq!(failure.tries_left, Some(2));

        let failure =
            parsed(r#"{"code":"resend_too_soon","message":"Wait.","retry_after_seconds":12}"#);
        assert_eq!(failure.problem, Problem::ResendTooSoon);
        assert_eq!(failure.retry_after_seconds, Some(12));
    }

    #[test]
    fn every_protocol_code_the_page_acts_on_is_recognised() {
        for (code, problem) in [
            (ErrorCode::EmailInvalid, Problem::EmailInvalid),
            (
                ErrorCode::EmailDomainNotAllowed,
                Problem::EmailDomainNotAllowed,
            ),
            (ErrorCode::CodeInvalid, Problem::CodeInvalid),
            (ErrorCode::CodeVoided, Problem::CodeVoided),
            (ErrorCode::CodeExpired, Problem::CodeExpired),
            (ErrorCode::NoJourney, Problem::NoJourney),
            (ErrorCode::JourneyClosed, Problem::JourneyClosed),
            (ErrorCode::TooManyCodes, Problem::TooManyCodes),
            (ErrorCode::Throttled, Problem::Throttled),
            (ErrorCode::Internal, Problem::Unavailable),
        ] {
            assert_eq!(Problem::from_code(code.as_str()), problem, "{code}");
        }
    }

    #[test]
    fn card_step_codes_and_unknown_codes() {
        for (code, problem) in [
            ("card_not_on_profile", Problem::CardNotOnProfile),
            ("card_not_usable", Problem::CardNotUsable),
            ("not_verified", Problem::NotVerified),
            ("journey_expired", Problem::JourneyExpired),
            ("card_not_accepted", Problem::CardNotAccepted),
            ("challenge_reused", Problem::ChallengeReused),
            ("too_many_attempts", Problem::TooManyAttempts),
            ("receipt_wrong", Problem::ReceiptWrong),
            ("bad_json", Problem::Other("bad_json".into())),
            ("something_new", Problem::Other("something_new".into())),
        ] {
            assert_eq!(Problem::from_code(code), problem, "{code}");
        }
    }

    #[test]
    fn problems_that_end_the_journey() {
        assert_eq!(Problem::Throttled.end_reason(), Some(EndReason::Throttled));
        assert_eq!(Problem::NoJourney.end_reason(), Some(EndReason::Expired));
        assert_eq!(Problem::CodeExpired.end_reason(), Some(EndReason::Expired));
        assert_eq!(
            Problem::TooManyAttempts.end_reason(),
            Some(EndReason::TooManyAttempts)
        );
        assert_eq!(Problem::CodeWrong.end_reason(), None);
        assert_eq!(Problem::CardNotOnProfile.end_reason(), None);
    }

    #[test]
    fn answers_that_are_not_the_apis_become_plain_sentences() {
        assert_eq!(ApiFailure::unexpected(502).problem, Problem::Unavailable);
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
