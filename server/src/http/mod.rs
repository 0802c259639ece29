//! The HTTP API: routes, and the layers every response passes through.

mod extract;
mod health;
mod journey;
pub mod spa;
mod staff;

use std::any::Any;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use unlock_protocol::ErrorCode;

use crate::error::Failure;
use crate::state::AppState;

/// Largest request body accepted; journey bodies are a few dozen bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The whole service: the API, and the built app for every other path.
pub fn router(state: AppState) -> Router {
    let app = spa::Spa::load(&state.config.static_dir);
    let api = Router::new()
        .route("/api/allowed-domains", get(journey::allowed_domains))
        .route("/api/journeys", post(journey::start))
        .route("/api/journey", get(journey::view))
        .route("/api/journey/code", post(journey::verify))
        .route("/api/journey/resend", post(journey::resend))
        .route("/api/journey/card", post(journey::present_card))
        .route("/api/journey/card/cryptogram", post(journey::cryptogram))
        .route("/api/journey/card/receipt", post(journey::receipt))
        .route("/api/staff/sign-in", post(staff::sign_in))
        .route("/api/staff/sign-in/code", post(staff::sign_in_code))
        .route(
            "/api/staff/sign-in/new-password",
            post(staff::sign_in_new_password),
        )
        .route("/api/staff/sign-out", post(staff::sign_out))
        .route("/api/staff/me", get(staff::me))
        .route("/api/staff/overview", get(staff::overview))
        .route("/api/staff/holders", get(staff::search_holders))
        .route("/api/staff/holders/{id}", get(staff::holder))
        .route("/api/staff/holders/{id}/emails", post(staff::add_email))
        .route(
            "/api/staff/holders/{id}/emails/{email}",
            delete(staff::remove_email),
        )
        .route(
            "/api/staff/throttles/release",
            post(staff::release_throttle),
        )
        .route(
            "/api/staff/allowlist",
            get(staff::allow_list).post(staff::allow_domain),
        )
        .route(
            "/api/staff/allowlist/{domain}",
            delete(staff::disallow_domain),
        )
        .route("/api/staff/reports/organisations.csv", get(staff::report))
        .route("/api/staff/audit", get(staff::audit))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(move |request: Request| {
            let app = app.clone();
            async move { app.serve(request).await }
        })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    // Outermost last: the request id first, then the latency histogram, then the span that
    // carries the id and the route (these run inside routing, where the route is known).
    security_headers(api.layer(CatchPanicLayer::custom(panic_response)))
        .layer(TraceLayer::new_for_http().make_span_with(crate::telemetry::RequestSpan))
        .layer(axum::middleware::from_fn(crate::metrics::track_request))
        .layer(axum::middleware::from_fn(crate::telemetry::tag_request))
}

/// Strict headers on every response, errors included. Only the app's own files set their
/// own policy (`index.html`, whose inline scripts it allows by hash) and caching.
fn security_headers(router: Router) -> Router {
    let defaults = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&spa::content_security_policy(&[]))
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    let router = defaults.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(name, value))
    });
    let headers: [(HeaderName, &'static str); 6] = [
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
    ];
    headers.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ))
    })
}

async fn method_not_allowed() -> Failure {
    Failure::client(ErrorCode::MethodNotAllowed)
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    // The panic message may hold request data; it was already logged by the panic hook.
    Failure::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
}
