//! The whole path to the card in a real browser: a page on 127.0.0.1 → the extension's
//! content script → its service worker → `connectNative` → the `unlock-bridge` binary,
//! registered by its own `install` command → a private pcscd → the virtual card. Also the
//! three things a page must tell apart before it gets that far: no extension, no host, and a
//! host too old for the page.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::{get, post};
use serde_json::Value;
use unlock_e2e::bridge::install_copy;
use unlock_e2e::browser::{Chromium, extension_dir};
use unlock_e2e::harness::{Card, PrivatePcscd, READER};

const SERIAL: &str = "2d6bddb8ad096c2d";
const PAGE: &str = include_str!("pages/bridge-check.html");

/// Serves the check page on a free loopback port; results posted to `/result` arrive on the
/// receiver.
fn serve_page() -> (SocketAddr, Receiver<Value>, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (sender, results) = sync_channel::<Value>(4);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let app =
        Router::new()
            .route("/bridge-check.html", get(|| async { Html(PAGE) }))
            .route(
                "/result",
                post(
                    |State(sender): State<SyncSender<Value>>,
                     axum::Json(result): axum::Json<Value>| async move {
                        let _ = sender.try_send(result);
                    },
                ),
            )
            .with_state(sender);
    runtime.spawn(async move { axum::serve(listener, app).await });
    (address, results, runtime)
}

/// The bridge binary, which `cargo test --workspace` builds beside this package's binaries.
fn bridge_binary() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_virtual-card")).with_file_name("unlock-bridge")
}

/// One browser run: the result the page posted, or a report with the browser's log.
fn run_page(
    dir: &Path,
    query: &str,
    extension: bool,
    host_installed: bool,
    pcscd: &PrivatePcscd,
) -> Value {
    let (address, results, _runtime) = serve_page();
    let origin = format!("http://{address}");
    // The browser's profile is the user's Chromium folder in a private home, which is where
    // `unlock-bridge install --user --browser chromium` registers the host.
    let home = dir.join("home");
    let profile = home.join(".config/chromium");
    if host_installed {
        let binary = install_copy(
            &bridge_binary(),
            &dir.join("opt/unlock-bridge"),
            &format!(
                "allowed_origins = [{origin:?}]\nlog_file = {:?}\n",
                dir.join("bridge.log")
            ),
        );
        let install = std::process::Command::new(&binary)
            .args(["install", "--user", "--browser", "chromium"])
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .unwrap();
        assert!(install.status.success(), "{install:?}");
        assert!(
            profile
                .join("NativeMessagingHosts/uk.nhs.smartcard_unlock.json")
                .exists()
        );
    }
    let extension = extension.then(extension_dir);
    let browser = Chromium::open(
        &format!("{origin}/bridge-check.html{query}"),
        &profile,
        extension.as_deref(),
        &pcscd.socket,
    );
    let result = results.recv_timeout(Duration::from_secs(60));
    drop(browser);
    result.unwrap_or_else(|_| {
        panic!(
            "the page posted no result; Chromium said:\n{}",
            std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default()
        )
    })
}

fn code(reply: &Value) -> &str {
    reply["err"]["code"].as_str().unwrap_or("(not an error)")
}

#[test]
fn a_page_reaches_the_virtual_card_through_the_extension_and_the_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = PrivatePcscd::start(dir.path());
    let _card = Card::start(
        Path::new(env!("CARGO_BIN_EXE_virtual-card")),
        pcscd.vpcd_port,
        &[
            "--serial",
            SERIAL,
            "--master-key",
            "0b2560610fce4019a51221a129d9cf4c",
            "--locked",
        ],
    );
    let result = run_page(dir.path(), "", true, true, &pcscd);

    assert_eq!(result["ping"]["ok"]["type"], "pong", "{result}");
    assert_eq!(result["hello"]["ok"]["protocol_major"], 1, "{result}");
    assert_eq!(
        result["hello"]["ok"]["profiles"][0], "unlock-cr/1",
        "{result}"
    );
    let readers = result["readers"]["ok"]["readers"].as_array().unwrap();
    assert!(
        readers
            .iter()
            .any(|r| r["name"] == READER && r["card_present"] == true),
        "{result}"
    );
    assert_eq!(result["card"]["ok"]["serial"], SERIAL, "{result}");
    assert_eq!(result["card"]["ok"]["tries_left"], 0, "{result}");
    assert_eq!(result["watch"]["ok"]["type"], "watching", "{result}");

    // The host saw the origin the browser vouched for, from the extension it knows.
    let log = std::fs::read_to_string(dir.path().join("bridge.log")).unwrap();
    assert!(
        log.contains("caller=\"chrome-extension://ooiaefjbcbkkddillkmdbldfflinfgki/\""),
        "{log}"
    );
    assert!(log.contains("origin=\"http://127.0.0.1:"), "{log}");
}

#[test]
fn a_page_tells_a_missing_extension_from_a_missing_host_from_an_outdated_one() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = PrivatePcscd::start(dir.path());

    let no_extension = run_page(&dir.path().join("a"), "", false, true, &pcscd);
    assert_eq!(
        code(&no_extension["ping"]),
        "extension_missing",
        "{no_extension}"
    );

    let no_host = run_page(&dir.path().join("b"), "", true, false, &pcscd);
    assert_eq!(no_host["ping"]["ok"]["type"], "pong", "{no_host}");
    assert_eq!(code(&no_host["hello"]), "host_missing", "{no_host}");

    let later_page = run_page(&dir.path().join("c"), "?major=2", true, true, &pcscd);
    assert_eq!(code(&later_page["hello"]), "host_outdated", "{later_page}");
}
