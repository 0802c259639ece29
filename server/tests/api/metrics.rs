//! `/metrics` on its own listener, and the request id on answers and log lines.
//!
//! The metrics recorder is global to the test process and tests run side by side, so the
//! counters here are compared as "at least this many more than before"; the gauges come
//! from each server's own database and are exact.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::binary::{KillOnDrop, cli, stdout, wait_until_ready};
use crate::helpers::*;

const BINARY: &str = env!("CARGO_BIN_EXE_unlock-server");

/// The text `/metrics` answers on `addr`.
async fn scrape(addr: SocketAddr) -> String {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.expect("read the metrics")
}

fn metrics_addr(app: &TestApp) -> SocketAddr {
    app.server()
        .metrics_addr
        .expect("the tests serve metrics on a port of their own")
}

/// One sample line's name, labels and value.
type Sample<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

/// Reads one sample line (`name{a="x",b="y"} 1`).
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, labels)) = series.split_once('{') else {
        return Some((series, Vec::new(), value));
    };
    let labels = labels
        .strip_suffix("\"}")?
        .split("\",")
        .filter_map(|pair| pair.split_once("=\""))
        .collect();
    Some((name, labels, value))
}

/// The sum of the samples of `name` whose labels include all of `wanted`, and how many
/// there were.
fn samples(text: &str, name: &str, wanted: &[(&str, &str)]) -> (f64, usize) {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(parse_sample)
        .filter(|(found, labels, _)| {
            *found == name && wanted.iter().all(|pair| labels.contains(pair))
        })
        .fold((0.0, 0), |(sum, n), (_, _, value)| (sum + value, n + 1))
}

fn value(text: &str, name: &str, wanted: &[(&str, &str)]) -> f64 {
    samples(text, name, wanted).0
}

/// Scrapes until `done` holds, moving the manual clock so that retries fall due if `tick`.
async fn scrape_until(
    app: &TestApp,
    tick: bool,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(metrics_addr(app)).await;
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "never saw {what}:\n{text}");
        if tick {
            app.clock.advance(Duration::from_millis(200));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_whole_journey_is_counted_on_the_metrics_listener() {
    let app = spawn_app().await;
    let before = scrape(metrics_addr(&app)).await;
    let started = ("action", "journey.start");
    let verified = [("action", "journey.verify_code"), ("outcome", "verified")];
    let unlocked = [("action", "journey.receipt"), ("outcome", "unlocked")];
    let codes = [("kind", "one_time_code")];
    let notices = [("kind", "card_unlocked")];

    app.verified_journey().await;
    app.unlock_card(CARD).await;
    // An id in the path, and a path no route matches.
    let holder = app.get(&format!("/api/staff/holders/{HOLDER}")).await;
    assert_eq!(holder.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/nowhere/at/all").await.status,
        StatusCode::NOT_FOUND
    );

    let sent = "unlock_emails_sent_total";
    // Every address on the profile gets a notice: wait until the last one is recorded too.
    let after = scrape_until(&app, false, "the unlock notices sent", |text| {
        value(text, sent, &notices) > value(&before, sent, &notices)
            && samples(text, "unlock_outbox_queued", &[]) == (0.0, 1)
    })
    .await;
    let more = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert!(
        more("unlock_steps_total", &[started, ("outcome", "code_issued")]) >= 1.0,
        "{after}"
    );
    assert!(more("unlock_steps_total", &verified) >= 1.0, "{after}");
    assert!(more("unlock_steps_total", &unlocked) >= 1.0, "{after}");
    assert!(more("unlock_unlocks_total", &[]) >= 1.0, "{after}");
    assert!(more(sent, &codes) >= 1.0, "{after}");
    assert!(more(sent, &notices) >= 1.0, "{after}");
    assert!(
        after.contains("# TYPE unlock_steps_total counter"),
        "{after}"
    );

    // Latency by route template and status class: real Prometheus histograms.
    let latency = "unlock_http_request_duration_seconds";
    assert!(
        after.contains(&format!("# TYPE {latency} histogram")),
        "{after}"
    );
    let start_route = [
        ("method", "POST"),
        ("route", "/api/journeys"),
        ("status", "2xx"),
    ];
    assert!(more(&format!("{latency}_count"), &start_route) >= 1.0);
    let (_, buckets) = samples(&after, &format!("{latency}_bucket"), &start_route);
    assert!(buckets >= 10, "{after}");
    assert!(
        samples(
            &after,
            &format!("{latency}_bucket"),
            &[("route", "/api/journeys"), ("le", "+Inf")]
        )
        .1 >= 1,
        "{after}"
    );
    for (route, status) in [
        ("/api/journey/card/receipt", "2xx"),
        ("/api/staff/holders/{id}", "4xx"),
        ("unmatched", "4xx"),
    ] {
        let labels = [("route", route), ("status", status)];
        assert!(
            more(&format!("{latency}_count"), &labels) >= 1.0,
            "{route}: {after}"
        );
    }
    assert!(
        !after.contains(HOLDER),
        "a raw path reached a label: {after}"
    );
    assert!(
        !after.contains("/nowhere"),
        "a raw path reached a label: {after}"
    );

    // This server's own database: ready, and nothing left in its outbox.
    assert_eq!(samples(&after, "unlock_ready", &[]), (1.0, 1), "{after}");
    assert_eq!(samples(&after, "unlock_outbox_queued", &[]), (0.0, 1));
    assert_eq!(
        samples(&after, "unlock_outbox_oldest_age_seconds", &[]),
        (0.0, 1)
    );
}

#[tokio::test]
async fn metrics_are_not_served_on_the_public_listener() {
    // Even with the app built, whose page answers every other path.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/index.html"),
        "<!DOCTYPE html><p>the app</p>",
    )
    .unwrap();
    let app = spawn_app_on(dir, None, |_| {}).await;
    assert_eq!(app.get("/metrics-not").await.status, StatusCode::OK);
    assert_ne!(metrics_addr(&app), app.server().addr);
    assert!(metrics_addr(&app).ip().is_loopback());
    let public = app.get("/metrics").await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);
    assert_eq!(public.code(), "not_found");
    assert!(!String::from_utf8_lossy(&public.body).contains("unlock_"));

    // And the metrics listener serves nothing else.
    let other = reqwest::get(format!("http://{}/readyz", metrics_addr(&app)))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn smtp_failures_the_outbox_backlog_and_throttle_hits_are_counted() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_app_on(dir, Some(format!("smtp://127.0.0.1:{port}")), |c| {
        c.throttle.client_starts_per_hour = 1
    })
    .await;
    let failures = "unlock_email_failures_total";
    let retried = [("kind", "one_time_code"), ("final", "false")];
    let given_up = [("kind", "one_time_code"), ("final", "true")];
    let before = scrape(metrics_addr(&app)).await;
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
    scrape_until(&app, false, "a failed send", |text| {
        value(text, failures, &retried) > value(&before, failures, &retried)
    })
    .await;

    // Eleven minutes on, the code email still waits (the relay is down).
    app.clock.advance(Duration::from_secs(11 * 60));
    let waiting = scrape(metrics_addr(&app)).await;
    assert_eq!(samples(&waiting, "unlock_outbox_queued", &[]), (1.0, 1));
    let age = value(&waiting, "unlock_outbox_oldest_age_seconds", &[]);
    assert!((660.0..700.0).contains(&age), "{waiting}");

    // A second journey from the same address runs into the lock-out.
    app.new_browser();
    let hits = "unlock_throttle_hits_total";
    let client_start = [("scope", "client_start")];
    assert_eq!(app.start(EMAIL).await.status, StatusCode::TOO_MANY_REQUESTS);
    let throttled = scrape(metrics_addr(&app)).await;
    assert!(value(&throttled, hits, &client_start) > value(&before, hits, &client_start));
    assert!(
        value(
            &throttled,
            "unlock_steps_total",
            &[("action", "journey.start"), ("outcome", "throttled_client")]
        ) >= 1.0,
        "{throttled}"
    );

    // Past the code's expiry the message is given up, and the backlog is empty again.
    app.clock.advance(Duration::from_secs(5 * 60));
    let done = scrape_until(&app, true, "the message given up", |text| {
        value(text, failures, &given_up) > value(&before, failures, &given_up)
    })
    .await;
    let queued = samples(&done, "unlock_outbox_queued", &[]);
    assert_eq!(queued, (0.0, 1), "{done}");
    assert_eq!(
        samples(&done, "unlock_outbox_oldest_age_seconds", &[]),
        (0.0, 1)
    );
    app.stop().await;
}

#[tokio::test]
async fn request_ids_come_back_and_bad_ones_are_replaced() {
    let app = spawn_app().await;
    let with_id = |path: &str, id: &str| {
        app.client
            .get(app.url(path))
            .header("x-request-id", id)
            .send()
    };
    let made = |reply: &reqwest::Response| {
        let id = reply.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        id
    };

    let kept = "proxy-7f3a.1_B";
    for path in ["/healthz", "/api/nowhere", "/metrics"] {
        let reply = with_id(path, kept).await.unwrap();
        assert_eq!(reply.headers()["x-request-id"], kept, "{path}");
    }
    let longest = "a".repeat(64);
    let reply = with_id("/healthz", &longest).await.unwrap();
    assert_eq!(reply.headers()["x-request-id"], longest.as_str());

    for bad in ["has space", "semi;colon", "quote\"d", &"a".repeat(65), ""] {
        let reply = with_id("/healthz", bad).await.unwrap();
        assert_ne!(made(&reply), bad);
    }
    let first = made(&app.client.get(app.url("/healthz")).send().await.unwrap());
    let second = made(
        &app.client
            .post(app.url("/api/journeys"))
            .send()
            .await
            .unwrap(),
    );
    assert_ne!(first, second);
}

/// The real binary: the request id is on its log lines, its metrics listener answers, and
/// an empty `metrics_listen` turns the listener off.
#[tokio::test]
async fn the_request_id_is_on_the_log_lines_of_its_request() {
    let dir = tempfile::tempdir().unwrap();
    stdout(&cli(dir.path(), &["allowlist", "add", DOMAIN]));
    let (port, metrics_port) = (free_port(), free_port());
    let log_path = dir.path().join("server.log");
    let serve = |metrics_listen: &str, log: &std::path::Path| {
        let server = Command::new(BINARY)
            .args(["serve"])
            .current_dir(dir.path())
            .env("UNLOCK_LISTEN", format!("127.0.0.1:{port}"))
            .env("UNLOCK_METRICS_LISTEN", metrics_listen)
            .env("UNLOCK_DATABASE_URL", cli_database(dir.path()))
            .env("UNLOCK_DATA_DIR", dir.path())
            .env("UNLOCK_SECRET_KEY", SECRET_KEY)
            .env("UNLOCK_LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        KillOnDrop(server)
    };
    let stop = |server: &mut KillOnDrop| {
        let _ = Command::new("kill")
            .args(["-TERM", &server.0.id().to_string()])
            .status();
        server.0.wait().unwrap()
    };
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let mut server = serve(&format!("127.0.0.1:{metrics_port}"), &log_path);
    let ready = wait_until_ready(&client, &base).await;
    let started = client
        .post(format!("{base}/api/journeys"))
        .header("x-request-id", "trace-me-42")
        .json(&serde_json::json!({ "email": EMAIL }))
        .send()
        .await
        .unwrap();
    let started_id = started.headers().get("x-request-id").cloned();
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await;
    let metrics = match metrics {
        Ok(reply) => reply.text().await.unwrap_or_default(),
        Err(error) => format!("no metrics: {error}"),
    };
    let exit = stop(&mut server);
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(ready, "server never became ready: {logs}");
    assert!(exit.success(), "{logs}");
    assert_eq!(started_id.as_ref().unwrap(), "trace-me-42");

    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let of_request: Vec<_> = lines
        .iter()
        .filter(|line| line["span"]["request_id"] == "trace-me-42")
        .collect();
    assert!(
        of_request.len() >= 2,
        "the request's lines should carry its id: {logs}"
    );
    for line in &of_request {
        assert_eq!(line["span"]["route"], "/api/journeys", "{line}");
        assert_eq!(line["span"]["method"], "POST", "{line}");
    }
    assert!(
        of_request
            .iter()
            .any(|line| line["fields"]["message"] == "finished processing request"),
        "{logs}"
    );
    assert!(
        metrics.contains(
            "unlock_http_request_duration_seconds_count{method=\"POST\",route=\"/api/journeys\",status=\"2xx\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line["fields"]["message"] == "serving metrics"),
        "{logs}"
    );

    // Empty: no metrics listener at all.
    let quiet_log = dir.path().join("quiet.log");
    let mut server = serve("", &quiet_log);
    let ready = wait_until_ready(&client, &base).await;
    let refused = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await;
    let exit = stop(&mut server);
    let logs = std::fs::read_to_string(&quiet_log).unwrap();
    assert!(ready && exit.success(), "{logs}");
    assert!(refused.is_err(), "metrics served though turned off");
    assert!(!logs.contains("serving metrics"), "{logs}");
}
