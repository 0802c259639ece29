//! The one error type of the HTTP boundary.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use unlock_protocol::{ApiError, ErrorCode};

/// A request that failed: either the client's to fix (status + stable code + sentence), or
/// ours (logged with its cause chain, answered with an opaque 500).
#[derive(Debug)]
pub enum Failure {
    Client { status: StatusCode, body: ApiError },
    Internal(anyhow::Error),
}

impl Failure {
    /// A client error with the code's default sentence (and the code's one status).
    pub fn client(code: ErrorCode) -> Self {
        Self::Client {
            status: status_of(code),
            body: ApiError::new(code),
        }
    }

    /// A client error with a specific sentence.
    pub fn client_message(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Client {
            status: status_of(code),
            body: ApiError::with_message(code, message),
        }
    }

    /// Adds when the request may be tried again.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        if let Self::Client { body, .. } = &mut self {
            body.retry_after_seconds = Some(seconds.max(1));
        }
        self
    }

    /// Adds how many code tries are left.
    pub fn tries_left(mut self, tries: u8) -> Self {
        if let Self::Client { body, .. } = &mut self {
            body.tries_left = Some(tries);
        }
        self
    }
}

impl Failure {
    /// As an error for the command line: ours with its causes, or the client's sentence.
    pub fn into_error(self) -> anyhow::Error {
        match self {
            Self::Internal(error) => error,
            Self::Client { body, .. } => anyhow::anyhow!("{}", body.message),
        }
    }
}

/// The HTTP status of a code, from the protocol's table.
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        if crate::db::is_overloaded(&error) {
            tracing::warn!(
                error = format!("{error:#}"),
                "refused: the database is too busy"
            );
            return busy();
        }
        if crate::db::is_unreachable(&error) {
            tracing::error!(
                error = format!("{error:#}"),
                "refused: the database is out of reach"
            );
            return Failure::client_message(
                ErrorCode::Unavailable,
                "The service can't reach its records just now. Try again in a minute.",
            );
        }
        Self::Internal(error)
    }
}

/// The service is too busy for this request now (503): nothing was done, try again.
pub fn busy() -> Failure {
    Failure::client_message(
        ErrorCode::Unavailable,
        "The service is very busy just now. Nothing was changed: wait a moment and try again.",
    )
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Self::Client { status, body } => {
                let retry = body.retry_after_seconds;
                let mut response = (status, Json(body)).into_response();
                if let Some(seconds) = retry {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(ApiError::new(ErrorCode::Internal)),
                )
                    .into_response()
            }
        }
    }
}
