//! The HTTP API: routes, and the layers every response passes through.

pub mod client_addr;
mod extract;
mod health;
mod journey;
pub mod openapi;
pub mod spa;
mod staff;

use std::any::Any;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use axum::{BoxError, Router};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use unlock_protocol::ErrorCode;

use crate::error::Failure;
use crate::state::AppState;

/// Largest request body accepted; journey bodies are a few dozen bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// One endpoint of the API: a method on a path, and the handler that answers it.
struct Endpoint {
    method: Method,
    path: &'static str,
    handler: MethodRouter<AppState>,
}

impl Endpoint {
    fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self {
            method: Method::GET,
            path,
            handler: routing::get(handler),
        }
    }

    fn post<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self {
            method: Method::POST,
            path,
            handler: routing::post(handler),
        }
    }

    fn delete<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self {
            method: Method::DELETE,
            path,
            handler: routing::delete(handler),
        }
    }
}

/// Every endpoint of the API, the one table [`router`] is built from and [`routes`] lists.
/// Each handler's `#[utoipa::path]` documents it in [`openapi::ApiDoc`]; a test checks that
/// the document and this table name the same endpoints.
fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get("/api/allowed-domains", journey::allowed_domains),
        Endpoint::post("/api/journeys", journey::start),
        Endpoint::get("/api/journey", journey::view),
        Endpoint::post("/api/journey/code", journey::verify),
        Endpoint::post("/api/journey/resend", journey::resend),
        Endpoint::post("/api/journey/ra-code", journey::redeem_ra_code),
        Endpoint::post("/api/journey/card", journey::present_card),
        Endpoint::post("/api/journey/card/release", journey::release),
        Endpoint::post("/api/journey/card/receipt", journey::receipt),
        Endpoint::post("/api/staff/sign-in", staff::sign_in),
        Endpoint::post("/api/staff/sign-in/code", staff::sign_in_code),
        Endpoint::post(
            "/api/staff/sign-in/new-password",
            staff::sign_in_new_password,
        ),
        Endpoint::post("/api/staff/sign-out", staff::sign_out),
        Endpoint::post("/api/staff/password", staff::change_password),
        Endpoint::get("/api/staff/me", staff::me),
        Endpoint::get("/api/staff/overview", staff::overview),
        Endpoint::get("/api/staff/holders", staff::search_holders),
        Endpoint::get("/api/staff/holders/{id}", staff::holder),
        Endpoint::post("/api/staff/holders/{id}/emails", staff::add_email),
        Endpoint::post(
            "/api/staff/holders/{id}/emails/approve",
            staff::approve_email,
        ),
        Endpoint::delete(
            "/api/staff/holders/{id}/emails/{email}",
            staff::remove_email,
        ),
        Endpoint::post(
            "/api/staff/holders/{id}/unlock-code",
            staff::issue_unlock_code,
        ),
        Endpoint::post("/api/staff/throttles/release", staff::release_throttle),
        Endpoint::get("/api/staff/allowlist", staff::allow_list),
        Endpoint::post("/api/staff/allowlist", staff::allow_domain),
        Endpoint::delete("/api/staff/allowlist/{domain}", staff::disallow_domain),
        Endpoint::get("/api/staff/reports/organisations.csv", staff::report),
        Endpoint::get("/api/staff/audit", staff::audit),
        Endpoint::get("/api/openapi.json", openapi::document),
        Endpoint::get("/healthz", health::healthz),
        Endpoint::get("/readyz", health::readyz),
    ]
}

/// The API's endpoints as (method, path), in axum's path syntax (`{id}`, as OpenAPI's), in
/// the order the router takes them. `GET` ones answer `HEAD` too, as axum does.
pub fn routes() -> Vec<(Method, &'static str)> {
    endpoints()
        .into_iter()
        .map(|endpoint| (endpoint.method, endpoint.path))
        .collect()
}

/// The whole service: the API, and the built app for every other path.
pub fn router(state: AppState) -> Router {
    let app = spa::Spa::load(&state.config.static_dir);
    // Two endpoints on one path (the allow list's GET and POST) merge into one route.
    let api = endpoints()
        .into_iter()
        .fold(Router::new(), |api, endpoint| {
            api.route(endpoint.path, endpoint.handler)
        })
        .fallback(move |request: Request| {
            let app = app.clone();
            async move { app.serve(request).await }
        })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let limits = &state.config.http;
    // Overload answers 503 at once instead of queueing without end: at most this many
    // requests in hand (one more is shed), each answered within the timeout.
    let api = api
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                // One semaphore for the whole API: `Router::layer` wraps each route apart.
                .layer(GlobalConcurrencyLimitLayer::new(
                    usize::try_from(limits.max_concurrent_requests).unwrap_or(1),
                ))
                .timeout(Duration::from_millis(limits.request_timeout_ms)),
        )
        .with_state(state);
    // Outermost last: the request id first, then the latency histogram, then the span that
    // carries the id and the route (these run inside routing, where the route is known).
    security_headers(api.layer(CatchPanicLayer::custom(panic_response)))
        .layer(TraceLayer::new_for_http().make_span_with(crate::telemetry::RequestSpan))
        .layer(axum::middleware::from_fn(crate::metrics::track_request))
        .layer(axum::middleware::from_fn(crate::telemetry::tag_request))
}

/// A request shed by the concurrency limit or stopped by the timeout, as the API's 503.
async fn overloaded(error: BoxError) -> Failure {
    if error.is::<tower::timeout::error::Elapsed>() {
        crate::metrics::http_shed("timeout");
        tracing::warn!("a request ran out of time");
        Failure::client_message(
            ErrorCode::Unavailable,
            "This took too long, so it was stopped. Wait a moment and try again.",
        )
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        crate::metrics::http_shed("busy");
        crate::error::busy()
    } else {
        Failure::Internal(anyhow::anyhow!(
            "a request failed in the HTTP layers: {error}"
        ))
    }
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
