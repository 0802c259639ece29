//! The `unlock-bridge` binary over its standard input and output, as the browser drives it,
//! with no card service behind it: framing, origins, versions and refusals. The card
//! conversations through a real pcscd are in `e2e/tests/bridge_host.rs`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};
use unlock_e2e::bridge::{BridgeProcess, PAGE_ORIGIN, extension_caller};

const BINARY: &str = env!("CARGO_BIN_EXE_unlock-bridge");

fn config() -> String {
    format!("allowed_origins = [{PAGE_ORIGIN:?}]\nlog_level = \"debug\"\n")
}

/// The bridge in `dir`, with no pcscd to reach.
fn start(dir: &Path, config: &str, caller: &str) -> BridgeProcess {
    BridgeProcess::start(
        Path::new(BINARY),
        &dir.join("bridge"),
        config,
        caller,
        &dir.join("no-pcscd-here"),
    )
}

fn code(reply: &Value) -> &str {
    reply["err"]["code"].as_str().unwrap_or("(not an error)")
}

#[test]
fn hello_gives_versions_and_profiles_and_a_different_major_version_is_outdated() {
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = start(dir.path(), &config(), &extension_caller());
    let hello = bridge.request(json!({"type": "hello", "protocol_major": 1, "protocol_minor": 0}));
    assert_eq!(hello["ok"]["type"], "hello");
    assert_eq!(hello["ok"]["protocol_major"], 1);
    assert_eq!(hello["ok"]["host_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(hello["ok"]["profiles"], json!(["unlock-cr/1", "piv/1"]));

    let newer = bridge.request(json!({"type": "hello", "protocol_major": 2, "protocol_minor": 0}));
    assert_eq!(code(&newer), "host_outdated");
    assert!(
        newer["err"]["message"]
            .as_str()
            .unwrap()
            .contains("needs updating")
    );
    assert!(bridge.close().success());
}

#[test]
fn requests_run_side_by_side_and_each_gets_exactly_one_reply() {
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = start(dir.path(), &config(), &extension_caller());
    let sent: BTreeSet<u64> = (0..40)
        .map(|n| {
            let request = if n % 2 == 0 {
                json!({"type": "hello", "protocol_major": 1, "protocol_minor": 0})
            } else {
                json!({"type": "readers"})
            };
            bridge.send(request)
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut answered = BTreeSet::new();
    while answered.len() < sent.len() {
        let reply = bridge.next_frame(deadline).expect("every reply in time");
        let id = reply["id"].as_u64().unwrap();
        assert!(answered.insert(id), "a second reply to {id}");
    }
    assert_eq!(answered, sent);
    let late = bridge.next_frame(std::time::Instant::now() + std::time::Duration::from_millis(300));
    assert!(late.is_none(), "an extra frame: {late:?}");
}

#[test]
fn pages_and_extensions_not_on_the_lists_are_refused_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = start(dir.path(), &config(), &extension_caller());
    let hello = json!({"type": "hello", "protocol_major": 1, "protocol_minor": 0});
    for origin in ["https://elsewhere.example", "http://127.0.0.1:9999", "null"] {
        let mut request = hello.clone();
        request["origin"] = json!(origin);
        assert_eq!(code(&bridge.request(request)), "origin_refused", "{origin}");
    }
    assert!(bridge.log_text().contains("origin refused"));

    let other = tempfile::tempdir().unwrap();
    let mut stranger = start(
        other.path(),
        &config(),
        "chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/",
    );
    assert_eq!(code(&stranger.request(hello)), "origin_refused");
    assert!(stranger.log_text().contains("unknown caller"));
}

#[test]
fn bad_frames_get_a_clear_error_and_the_stream_stays_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = start(dir.path(), &config(), &extension_caller());
    let hello = json!({"type": "hello", "protocol_major": 1, "protocol_minor": 0});

    bridge.send_frame(&vec![b' '; 64 * 1024 + 1]);
    assert_eq!(code(&bridge.reply(0)), "frame_too_large");
    assert_eq!(bridge.request(hello.clone())["ok"]["type"], "hello");

    for body in [&b""[..], b"not json", &[0xFF, 0xFE, 0x00], b"[1, 2]"] {
        bridge.send_frame(body);
        assert_eq!(code(&bridge.reply(0)), "bad_request");
    }
    for request in [
        json!({"id": 70, "type": "apdu", "apdu": "00A40400"}),
        json!({"id": 71, "type": "read_card"}),
        json!({"id": 72, "type": "readers", "origin": 5}),
    ] {
        assert_eq!(code(&bridge.request(request)), "bad_request");
    }
    assert_eq!(bridge.request(hello)["ok"]["type"], "hello");
    assert!(bridge.close().success());
}

#[test]
fn secrets_in_a_refused_request_are_neither_echoed_nor_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = start(dir.path(), &config(), &extension_caller());
    let cryptogram = "5e1f0c8a9b7d6e5f4a3b2c1d0e9f8a7b";
    // The passcode breaks the policy, so serde refuses the whole request, quoting nothing.
    let unlock_cr = bridge.request(json!({
        "type": "unblock",
        "reader": "Reader",
        "release": {"profile": "unlock-cr/1", "serial": "ac4d0ed99f033e05",
                    "cryptogram": cryptogram},
        "new_passcode": "111111",
    }));
    assert_eq!(code(&unlock_cr), "bad_request");
    let nonce = "5a".repeat(32);
    let piv = bridge.request(json!({
        "type": "unblock",
        "reader": "Reader",
        "release": {"profile": "piv/1", "guid": "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b",
                    "puks": ["40719263", "1122334"], "next_puk": "88120457",
                    "receipt_nonce": nonce},
        "new_passcode": "905173",
    }));
    assert_eq!(code(&piv), "bad_request");
    let everything = format!("{unlock_cr}{piv}{}", bridge.log_text());
    for secret in [
        "111111", cryptogram, "40719263", "1122334", "88120457", &nonce, "905173",
    ] {
        assert!(!everything.contains(secret), "{secret} in {everything}");
    }
}

#[test]
fn settings_that_cannot_be_used_refuse_every_request_and_say_why_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = start(
        dir.path(),
        "allowed_origins = [\"http://unlock.example.nhs.uk\"]\n",
        &extension_caller(),
    );
    let reply = bridge.request(json!({"type": "readers"}));
    assert_eq!(code(&reply), "internal");
    assert!(
        reply["err"]["message"]
            .as_str()
            .unwrap()
            .contains("settings")
    );
    assert!(bridge.log_text().contains("http://unlock.example.nhs.uk"));
}

#[test]
fn without_a_card_service_the_page_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = start(dir.path(), &config(), &extension_caller());
    assert_eq!(
        code(&bridge.request(json!({"type": "readers"}))),
        "pcsc_unavailable"
    );
    assert_eq!(
        code(&bridge.request(json!({"type": "read_card", "reader": "Any Reader"}))),
        "pcsc_unavailable"
    );
    assert!(bridge.close().success());
}

#[test]
fn started_by_hand_it_explains_itself_and_writes_nothing_to_standard_output() {
    let output = std::process::Command::new(BINARY).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unlock-bridge install"));
}
