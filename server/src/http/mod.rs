//! The HTTP API: routes, and the layers every response passes through.

mod extract;
mod health;
mod journey;

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use unlock_protocol::ErrorCode;

use crate::error::Failure;
use crate::state::AppState;

/// Largest request body accepted; journey bodies are a few dozen bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The whole API.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/journeys", post(journey::start))
        .route("/api/journey", get(journey::view))
        .route("/api/journey/code", post(journey::verify))
        .route("/api/journey/resend", post(journey::resend))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    security_headers(api.layer(CatchPanicLayer::custom(panic_response)))
        .layer(TraceLayer::new_for_http())
}

/// Strict headers on every response, errors included.
fn security_headers(router: Router) -> Router {
    let headers: [(HeaderName, &'static str); 8] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), usb=()",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    headers.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ))
    })
}

async fn not_found() -> Failure {
    Failure::client(StatusCode::NOT_FOUND, ErrorCode::NotFound)
}

async fn method_not_allowed() -> Failure {
    Failure::client(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed)
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    // The panic message may hold request data; it was already logged by the panic hook.
    Failure::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
}
