//! Prometheus metrics, served as text at `GET /metrics` on a listener of their own
//! (`metrics_listen`), never on the public one.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `unlock_steps_total` | counter | `action`, `outcome` | audited steps (holders' and staff's), counted once committed |
//! | `unlock_unlocks_total` | counter | | journeys closed with the card unlocked |
//! | `unlock_emails_sent_total` | counter | `kind` | emails handed to the relay (`one_time_code`: codes sent) |
//! | `unlock_email_failures_total` | counter | `kind`, `final` | failed sends: `final="false"` will be retried, `"true"` given up |
//! | `unlock_outbox_queued` | gauge | | messages still queued (due, or waiting for a retry) |
//! | `unlock_outbox_oldest_age_seconds` | gauge | | how long the oldest of them has waited |
//! | `unlock_throttle_hits_total` | counter | `scope` | counted events that met, or started, a lock-out |
//! | `unlock_db_retries_total` | counter | | PostgreSQL writes run again after a serialisation failure |
//! | `unlock_db_errors_total` | counter | | writes that finally failed |
//! | `unlock_ready` | gauge | | 1 when the database answered at this scrape, else 0 |
//! | `unlock_http_request_duration_seconds` | histogram | `method`, `route`, `status` | time to answer, by route template (`unmatched` for the app's files and unknown paths) and status class (`2xx`) |
//!
//! The recorder is global to the process: several servers in one process (the tests) count
//! into, and render, the same registry. The gauges are read from the server's database at
//! each scrape (so every instance sharing a database reports the same outbox backlog).

use std::sync::OnceLock;
use std::time::Instant;

use ::metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::{self, outbox_health};
use crate::state::AppState;
use crate::throttle::Scope;

pub const STEPS: &str = "unlock_steps_total";
pub const UNLOCKS: &str = "unlock_unlocks_total";
pub const EMAILS_SENT: &str = "unlock_emails_sent_total";
pub const EMAIL_FAILURES: &str = "unlock_email_failures_total";
pub const OUTBOX_QUEUED: &str = "unlock_outbox_queued";
pub const OUTBOX_OLDEST_AGE: &str = "unlock_outbox_oldest_age_seconds";
pub const THROTTLE_HITS: &str = "unlock_throttle_hits_total";
pub const DB_RETRIES: &str = "unlock_db_retries_total";
pub const DB_ERRORS: &str = "unlock_db_errors_total";
pub const KEY_UNAVAILABLE: &str = "unlock_key_unavailable_total";
pub const PASSWORD_CHECKS_BUSY: &str = "unlock_password_checks_busy_total";
pub const HTTP_SHED: &str = "unlock_http_shed_total";
pub const READY: &str = "unlock_ready";
pub const HTTP_DURATION: &str = "unlock_http_request_duration_seconds";

const READY_HELP: &str = "1 when the database answered at this scrape, else 0";
const OUTBOX_QUEUED_HELP: &str = "Messages queued in the outbox (due, or waiting for a retry)";
const OUTBOX_OLDEST_AGE_HELP: &str = "How long the oldest queued message has waited, in seconds";

/// The audited step that means a card was unlocked (see `journey/card/receipt.rs`).
const UNLOCKED: (&str, &str) = ("journey.receipt", "unlocked");

/// Upper bounds of the latency buckets, in seconds: most answers take milliseconds; a code
/// request that waits on the database writer may take longer.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), LATENCY_BUCKETS)
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if let Err(error) = ::metrics::set_global_recorder(recorder) {
            tracing::error!(%error, "another metrics recorder is installed: /metrics stays empty");
        }
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        STEPS,
        "Audited steps by action and outcome, counted once committed"
    );
    describe_counter!(UNLOCKS, "Journeys closed with the card unlocked");
    describe_counter!(EMAILS_SENT, "Emails handed to the mail relay, by kind");
    describe_counter!(
        EMAIL_FAILURES,
        "Failed email sends, by kind; final=\"true\" when the message was given up"
    );
    describe_counter!(
        THROTTLE_HITS,
        "Counted events that met, or started, a lock-out, by throttle scope"
    );
    describe_counter!(
        DB_RETRIES,
        "Database writes run again after a serialisation failure"
    );
    describe_counter!(DB_ERRORS, "Database writes that finally failed");
    describe_counter!(
        KEY_UNAVAILABLE,
        "Card steps answered 503 because a key was not available (its token did not answer)"
    );
    describe_counter!(
        HTTP_SHED,
        "Requests answered 503 by the HTTP server's bounds, by reason: busy (too many at once) or timeout"
    );
    describe_counter!(
        PASSWORD_CHECKS_BUSY,
        "Staff sign-ins answered 503 because every Argon2 slot stayed busy"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer a request, by method, route template and status class"
    );
}

/// An audited step, counted once the write recording it has committed.
pub fn step(action: &str, outcome: &str) {
    let unlocked = (action, outcome) == UNLOCKED;
    let (action, outcome) = (action.to_owned(), outcome.to_owned());
    db::after_commit(move || {
        counter!(STEPS, "action" => action, "outcome" => outcome).increment(1);
        if unlocked {
            counter!(UNLOCKS).increment(1);
        }
    });
}

/// One send attempt of the outbox worker, once recorded.
pub fn email_attempt(kind: &str, sent: bool, given_up: bool) {
    if sent {
        counter!(EMAILS_SENT, "kind" => kind.to_owned()).increment(1);
    } else {
        let last = if given_up { "true" } else { "false" };
        counter!(EMAIL_FAILURES, "kind" => kind.to_owned(), "final" => last).increment(1);
    }
}

/// A throttled event that met, or started, a lock-out, counted once its write has committed.
pub fn throttle_hit(scope: Scope) {
    db::after_commit(move || counter!(THROTTLE_HITS, "scope" => scope.as_str()).increment(1));
}

/// A PostgreSQL write about to run again after a serialisation failure.
pub fn db_retry() {
    counter!(DB_RETRIES).increment(1);
}

/// A write that failed for good (its error goes to the caller).
pub fn db_error() {
    counter!(DB_ERRORS).increment(1);
}

/// A request the HTTP server's bounds answered with 503 (`busy` or `timeout`).
pub fn http_shed(reason: &'static str) {
    counter!(HTTP_SHED, "reason" => reason).increment(1);
}

/// A staff sign-in that found every Argon2 slot busy (answered 503).
pub fn password_checks_busy() {
    counter!(PASSWORD_CHECKS_BUSY).increment(1);
}

/// A card step that could not use its key (answered 503).
pub fn key_unavailable() {
    counter!(KEY_UNAVAILABLE).increment(1);
}

/// Middleware timing every answer by method, route template and status class. It must run
/// inside the router (`Router::layer`), where the matched route is known.
pub async fn track_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = status_class(response.status());
    histogram!(HTTP_DURATION, "method" => method, "route" => route, "status" => status)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The standard methods by name, anything else as `other`, so a client cannot add labels.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The metrics listener's whole service: `GET /metrics`, nothing else.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    let handle = handle();
    handle.run_upkeep();
    let mut text = handle.render();
    text.push_str(&database_gauges(&state).await);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// The gauges read from this server's database at each scrape. They are written here rather
/// than kept in the process-wide recorder, so each server reports its own database even when
/// several share a process.
async fn database_gauges(state: &AppState) -> String {
    let ready = state.db.ping().await.is_ok();
    let mut text = gauge_text(READY, READY_HELP, if ready { 1.0 } else { 0.0 });
    let backlog = async {
        let mut conn = state.db.reader().await?;
        outbox_health::backlog(&mut conn).await
    };
    match backlog.await {
        Ok(backlog) => {
            let age = backlog.oldest_age(state.clock.now()) as f64 / 1000.0;
            text.push_str(&gauge_text(
                OUTBOX_QUEUED,
                OUTBOX_QUEUED_HELP,
                backlog.queued as f64,
            ));
            text.push_str(&gauge_text(OUTBOX_OLDEST_AGE, OUTBOX_OLDEST_AGE_HELP, age));
        }
        // Left out rather than stale; `unlock_ready` says why.
        Err(error) => tracing::warn!(error = format!("{error:#}"), "metrics: outbox backlog"),
    }
    text
}

fn gauge_text(name: &str, help: &str, value: f64) -> String {
    format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_few_whatever_the_client_sends() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::TOO_MANY_REQUESTS), "4xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }

    #[test]
    fn gauges_are_written_in_the_text_format() {
        assert_eq!(
            gauge_text(OUTBOX_OLDEST_AGE, "How long", 612.5),
            "# HELP unlock_outbox_oldest_age_seconds How long\n\
             # TYPE unlock_outbox_oldest_age_seconds gauge\n\
             unlock_outbox_oldest_age_seconds 612.5\n"
        );
        let backlog = outbox_health::Backlog {
            queued: 2,
            oldest_queued_at: Some(1_000),
        };
        assert_eq!(backlog.oldest_age(61_000), 60_000);
        assert_eq!(backlog.oldest_age(0), 0);
        let empty = outbox_health::Backlog {
            queued: 0,
            oldest_queued_at: None,
        };
        assert_eq!(empty.oldest_age(61_000), 0);
    }
}
