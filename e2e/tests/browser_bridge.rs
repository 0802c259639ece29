//! The whole path to the card in a real browser: a page on 127.0.0.1 → the extension's
//! content script → its service worker → `connectNative` → the `unlock-bridge` binary,
//! registered by its own `install` command → a private pcscd → the virtual card. Also the
//! three things a page must tell apart before it gets that far (no extension, no host, a host
//! too old for the page), and the page carrying on when the browser stops the extension's
//! service worker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use serde_json::Value;
use unlock_e2e::bridge::{install_copy, register_for_chromium};
use unlock_e2e::browser::{Chromium, extension_dir};
use unlock_e2e::harness::{Card, PrivatePcscd, READER, wait_until};
use unlock_e2e::piv_ca::CaFiles;
use unlock_e2e::piv_card::DEFAULT_GUID;

const SERIAL: &str = "2d6bddb8ad096c2d";
const EXTENSION_ID: &str = "ooiaefjbcbkkddillkmdbldfflinfgki";

/// What the test pages post, and the test's "go on" signal.
#[derive(Clone)]
struct Pages {
    results: SyncSender<Value>,
    go: Arc<AtomicBool>,
}

/// The test pages on a free loopback port.
struct Site {
    address: SocketAddr,
    results: Receiver<Value>,
    go: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Site {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (sender, results) = sync_channel::<Value>(8);
        let go = Arc::new(AtomicBool::new(false));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .route(
                "/bridge-client.js",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "text/javascript")],
                        include_str!("pages/bridge-client.js"),
                    )
                }),
            )
            .route(
                "/bridge-check.html",
                get(|| async { Html(include_str!("pages/bridge-check.html")) }),
            )
            .route(
                "/worker-restart.html",
                get(|| async { Html(include_str!("pages/worker-restart.html")) }),
            )
            .route(
                "/go",
                get(|State(pages): State<Pages>| async move {
                    if pages.go.load(Ordering::SeqCst) {
                        StatusCode::OK
                    } else {
                        StatusCode::NOT_FOUND
                    }
                    .into_response()
                }),
            )
            .route(
                "/result",
                post(
                    |State(pages): State<Pages>, axum::Json(result): axum::Json<Value>| async move {
                        let _ = pages.results.try_send(result);
                    },
                ),
            )
            .with_state(Pages {
                results: sender,
                go: Arc::clone(&go),
            });
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            address,
            results,
            go,
            _runtime: runtime,
        }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The next result a page posts, or a report with the browser's log.
    fn result(&self, browser: &Chromium, profile: &Path) -> Value {
        let result = self.results.recv_timeout(Duration::from_secs(60));
        result.unwrap_or_else(|_| {
            let _ = browser;
            panic!(
                "the page posted no result; Chromium said:\n{}",
                std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default()
            )
        })
    }
}

/// The bridge binary, which `cargo test --workspace` builds beside this package's binaries.
fn bridge_binary() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_virtual-card")).with_file_name("unlock-bridge")
}

/// Lays out the bridge under `dir` allowing `origin`, and registers it for Chromium in a
/// private home; returns the browser profile folder where it registered itself.
fn install_bridge(dir: &Path, origin: &str) -> PathBuf {
    let home = dir.join("home");
    let binary = install_copy(
        &bridge_binary(),
        &dir.join("opt/unlock-bridge"),
        &format!(
            "allowed_origins = [{origin:?}]\nlog_file = {:?}\n",
            dir.join("bridge.log")
        ),
    );
    register_for_chromium(&binary, &home)
}

/// One browser run of the check page: the result it posted.
fn check_page(
    dir: &Path,
    query: &str,
    extension: bool,
    host_installed: bool,
    pcscd: &PrivatePcscd,
) -> Value {
    let site = Site::start();
    // The browser's profile is the user's Chromium folder in a private home, which is where
    // `unlock-bridge install --user --browser chromium` registers the host.
    let profile = if host_installed {
        install_bridge(dir, &site.origin())
    } else {
        dir.join("home/.config/chromium")
    };
    let extension = extension.then(extension_dir);
    let browser = Chromium::open(
        &format!("{}/bridge-check.html{query}", site.origin()),
        &profile,
        extension.as_deref(),
        &pcscd.socket,
    );
    site.result(&browser, &profile)
}

fn start_card(pcscd: &PrivatePcscd) -> Card {
    Card::start(
        Path::new(env!("CARGO_BIN_EXE_virtual-card")),
        pcscd.vpcd_port,
        &[
            "--serial",
            SERIAL,
            "--master-key",
            "0b2560610fce4019a51221a129d9cf4c",
            "--locked",
        ],
    )
}

fn code(reply: &Value) -> &str {
    reply["err"]["code"].as_str().unwrap_or("(not an error)")
}

#[test]
fn a_page_reaches_the_virtual_card_through_the_extension_and_the_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = PrivatePcscd::start(dir.path());
    let _card = start_card(&pcscd);
    let result = check_page(dir.path(), "", true, true, &pcscd);

    assert_eq!(result["ping"]["ok"]["type"], "pong", "{result}");
    assert_eq!(result["hello"]["ok"]["protocol_major"], 1, "{result}");
    assert_eq!(
        result["hello"]["ok"]["profiles"],
        serde_json::json!(["unlock-cr/1", "piv/1"]),
        "{result}"
    );
    let readers = result["readers"]["ok"]["readers"].as_array().unwrap();
    assert!(
        readers
            .iter()
            .any(|r| r["name"] == READER && r["card_present"] == true),
        "{result}"
    );
    assert_eq!(result["card"]["ok"]["card"]["serial"], SERIAL, "{result}");
    assert_eq!(result["card"]["ok"]["tries_left"], 0, "{result}");
    assert_eq!(result["watch"]["ok"]["type"], "watching", "{result}");

    // The host saw the origin the browser vouched for, from the extension it knows.
    let log = std::fs::read_to_string(dir.path().join("bridge.log")).unwrap();
    assert!(
        log.contains(&format!("caller=\"chrome-extension://{EXTENSION_ID}/\"")),
        "{log}"
    );
    assert!(log.contains("origin=\"http://127.0.0.1:"), "{log}");
}

#[test]
fn a_page_reads_a_piv_card_with_its_certificates_through_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = PrivatePcscd::start(dir.path());
    let _card = Card::start_piv(
        Path::new(env!("CARGO_BIN_EXE_virtual-card")),
        pcscd.vpcd_port,
        &CaFiles::in_dir(dir.path(), "trusted"),
        &["--locked"],
    );
    let result = check_page(dir.path(), "", true, true, &pcscd);
    let card = &result["card"]["ok"]["card"];
    assert_eq!(card["profile"], "piv/1", "{result}");
    assert_eq!(card["guid"], DEFAULT_GUID, "{result}");
    for certificate in ["card_authentication", "piv_authentication"] {
        let der = card[certificate].as_str().unwrap_or_default();
        assert!(
            der.starts_with("3082") && der.len() > 800,
            "{certificate}: {result}"
        );
    }
    assert_eq!(result["card"]["ok"]["tries_left"], 0, "{result}");
}

#[test]
fn a_page_tells_a_missing_extension_from_a_missing_host_from_an_outdated_one() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = PrivatePcscd::start(dir.path());

    let no_extension = check_page(&dir.path().join("a"), "", false, true, &pcscd);
    assert_eq!(
        code(&no_extension["ping"]),
        "extension_missing",
        "{no_extension}"
    );

    let no_host = check_page(&dir.path().join("b"), "", true, false, &pcscd);
    assert_eq!(no_host["ping"]["ok"]["type"], "pong", "{no_host}");
    assert_eq!(code(&no_host["hello"]), "host_missing", "{no_host}");

    let later_page = check_page(&dir.path().join("c"), "?major=2", true, true, &pcscd);
    assert_eq!(code(&later_page["hello"]), "host_outdated", "{later_page}");
}

#[test]
fn the_page_carries_on_when_the_browser_stops_the_extension_service_worker() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = PrivatePcscd::start(dir.path());
    let mut card = start_card(&pcscd);
    let site = Site::start();
    let profile = install_bridge(dir.path(), &site.origin());
    let browser = Chromium::open(
        &format!("{}/worker-restart.html", site.origin()),
        &profile,
        Some(&extension_dir()),
        &pcscd.socket,
    );
    let before = site.result(&browser, &profile);
    assert_eq!(before["watch"]["ok"]["type"], "watching", "{before}");

    let mut devtools = browser.devtools();
    let workers = devtools.extension_workers(EXTENSION_ID);
    assert_eq!(workers.len(), 1, "one service worker: {workers:?}");
    devtools.close(&workers[0]);
    wait_until(|| {
        !devtools
            .extension_workers(EXTENSION_ID)
            .contains(&workers[0])
    });
    site.go.store(true, Ordering::SeqCst);

    let after = site.result(&browser, &profile);
    assert_eq!(after["card"]["ok"]["card"]["serial"], SERIAL, "{after}");
    let restarted = devtools.extension_workers(EXTENSION_ID);
    assert!(
        restarted.len() == 1 && restarted[0] != workers[0],
        "a new service worker: {restarted:?}"
    );

    // The content script subscribed again by itself: the page still hears the card.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(card.command("remove"), "ok");
    let removed = site.result(&browser, &profile);
    assert_eq!(removed["event"]["event"], "card_removed", "{removed}");
    assert_eq!(removed["event"]["reader"], READER, "{removed}");
}
