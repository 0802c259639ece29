//! Structured logs on stderr, and the request id that ties a request's log lines together.
//! Secrets never reach the logs: the types that hold secrets print as `***`, and request
//! spans carry the method, the route template (never the path, which may hold an address)
//! and the request id only.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::trace::MakeSpan;
use tracing::Span;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Log targets kept at `warn` whatever `RUST_LOG` says (see [`init`]).
const SMPP_QUIET: [&str; 2] = ["rusmpp=warn", "rusmppc=warn"];

/// Installs the global subscriber; `RUST_LOG` overrides the default filter.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // The SMPP library logs whole PDUs at debug level: a text's code and the bind password.
    // Whatever `RUST_LOG` asks, they stay out.
    let filter = SMPP_QUIET
        .iter()
        .filter_map(|directive| directive.parse().ok())
        .fold(filter, EnvFilter::add_directive);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The header a proxy may set, and every response carries.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id accepted from a proxy.
const MAX_REQUEST_ID: usize = 64;

/// One request's id: the proxy's `X-Request-Id` when it is a sane token, else a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The proxy's id if it is 1 to 64 characters of `[A-Za-z0-9._-]`, else a new random one.
    pub fn accept_or_make(given: Option<&HeaderValue>) -> Self {
        given
            .and_then(|value| value.to_str().ok())
            .filter(|id| is_sane(id))
            .map_or_else(Self::new_random, |id| Self(id.to_owned()))
    }

    /// 128 random bits as 32 hex digits.
    pub fn new_random() -> Self {
        let mut bytes = [0u8; 16];
        // Without randomness, a constant id still answers; it just ties nothing together.
        let _ = getrandom::fill(&mut bytes);
        Self(hex::encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_sane(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Middleware giving every request its [`RequestId`] (in its extensions, and as its
/// `X-Request-Id` for what runs after), and every response the same `X-Request-Id`.
pub async fn tag_request(mut request: Request, next: Next) -> Response {
    let id = RequestId::accept_or_make(request.headers().get(REQUEST_ID));
    // The id is a sane token, so it is always a valid header value.
    let value = HeaderValue::from_str(id.as_str()).ok();
    if let Some(value) = &value {
        request.headers_mut().insert(REQUEST_ID, value.clone());
    }
    request.extensions_mut().insert(id);
    let mut response = next.run(request).await;
    if let Some(value) = value {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The span every request's log lines carry, at `info` so that the request id is on every
/// line the default filter shows. It must run inside the router (`Router::layer`), after
/// [`tag_request`], where the route and the id are known.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        let id = request
            .extensions()
            .get::<RequestId>()
            .map_or("-", RequestId::as_str);
        tracing::info_span!(
            "request",
            method = %request.method(),
            route,
            request_id = id,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_request_id_is_kept_and_anything_else_replaced() {
        for kept in ["abc-123", "f81d4fae.7dec_11d0", &"a".repeat(64)] {
            let given = HeaderValue::from_str(kept).unwrap();
            assert_eq!(RequestId::accept_or_make(Some(&given)).as_str(), kept);
        }
        for replaced in ["", "has space", "semi;colon", "caf\u{e9}", &"a".repeat(65)] {
            let given = HeaderValue::from_bytes(replaced.as_bytes()).unwrap();
            let made = RequestId::accept_or_make(Some(&given));
            assert_ne!(made.as_str(), replaced);
            assert_eq!(made.as_str().len(), 32);
            assert!(is_sane(made.as_str()));
        }
        assert_ne!(RequestId::accept_or_make(None), RequestId::new_random());
    }
}
