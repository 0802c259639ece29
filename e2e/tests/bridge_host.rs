//! The `unlock-bridge` binary over its standard input and output, as the browser drives it,
//! with the virtual card in a real, private pcscd: listing readers, card events, reading the
//! card, unblocking it, and every failure the page must tell apart.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use unlock_e2e::bridge::{BridgeProcess, PAGE_ORIGIN, extension_caller};
use unlock_e2e::harness::{Card, PrivatePcscd, READER, client_test, run_client_test, wait_until};
use unlock_protocol::card_profile::{card_key, cryptogram, receipt};

const MASTER_KEY: &str = "0b2560610fce4019a51221a129d9cf4c";
const SERIAL: &str = "ac4d0ed99f033e05";
const OLD_PASSCODE: &str = "284759";
const NEW_PASSCODE: &str = "905173";

/// The bridge binary, which `cargo test --workspace` builds beside this package's binaries.
fn bridge_binary() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_virtual-card")).with_file_name("unlock-bridge");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo test --workspace` or `cargo build -p unlock-bridge`",
        binary.display()
    );
    binary
}

/// A private pcscd, the virtual card (locked) in its reader, and the bridge.
struct Rig {
    bridge: BridgeProcess,
    card: Card,
    pcscd: PrivatePcscd,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pcscd = PrivatePcscd::start(dir.path());
        let card = Card::start(
            Path::new(env!("CARGO_BIN_EXE_virtual-card")),
            pcscd.vpcd_port,
            &[
                "--serial",
                SERIAL,
                "--master-key",
                MASTER_KEY,
                "--passcode",
                OLD_PASSCODE,
                "--locked",
            ],
        );
        let bridge = BridgeProcess::start(
            &bridge_binary(),
            &dir.path().join("bridge"),
            &format!("allowed_origins = [{PAGE_ORIGIN:?}]\nlog_level = \"debug\"\n"),
            &extension_caller(),
            &pcscd.socket,
        );
        let mut rig = Self {
            bridge,
            card,
            pcscd,
            _dir: dir,
        };
        rig.wait_for_card();
        rig
    }

    fn wait_for_card(&mut self) {
        wait_until(|| self.read_card()["ok"]["type"] == "card");
    }

    fn read_card(&mut self) -> Value {
        self.bridge
            .request(json!({"type": "read_card", "reader": READER}))
    }

    fn challenge(&mut self) -> Value {
        self.bridge.request(json!({
            "type": "challenge", "reader": READER,
            "challenge": {"profile": "unlock-cr/1", "serial": SERIAL},
        }))
    }

    fn unblock(&mut self, cryptogram: &str) -> Value {
        self.bridge.request(json!({
            "type": "unblock",
            "reader": READER,
            "release": {"profile": "unlock-cr/1", "serial": SERIAL, "cryptogram": cryptogram},
            "new_passcode": NEW_PASSCODE,
        }))
    }

    fn admin_tries(&mut self) -> u64 {
        let state: Value = serde_json::from_str(&self.card.command("state")).unwrap();
        state["admin_tries"].as_u64().unwrap()
    }
}

/// What the server computes from the challenge: the cryptogram, and the receipt it expects.
fn server_side(challenge: &Value) -> (String, String) {
    let challenge: [u8; 16] = hex::decode(challenge["ok"]["proof"]["challenge"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let master: [u8; 16] = hex::decode(MASTER_KEY).unwrap().try_into().unwrap();
    let serial: [u8; 8] = hex::decode(SERIAL).unwrap().try_into().unwrap();
    let key = card_key(&master, &serial);
    (
        hex::encode(cryptogram(&key, &challenge, &serial)),
        hex::encode(receipt(&key, &challenge)),
    )
}

fn code(reply: &Value) -> &str {
    reply["err"]["code"].as_str().unwrap_or("(not an error)")
}

#[test]
fn the_bridge_lists_reads_and_unblocks_the_card() {
    let mut rig = Rig::start();
    let readers = rig.bridge.request(json!({"type": "readers"}));
    let reader = readers["ok"]["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|reader| reader["name"] == READER)
        .unwrap_or_else(|| panic!("{READER} in {readers}"));
    assert_eq!(reader["card_present"], true);
    assert_eq!(reader["atr"], hex::encode_upper(unlock_e2e::vpcd::atr()));

    let card = rig.read_card();
    assert_eq!(
        card["ok"],
        json!({"type": "card", "card": {"profile": "unlock-cr/1", "serial": SERIAL},
               "tries_left": 0})
    );

    // A wrong cryptogram is refused, and the card counts it.
    let before = rig.admin_tries();
    let (right, _) = server_side(&rig.challenge());
    let mut wrong = hex::decode(&right).unwrap();
    wrong[0] ^= 1;
    let wrong = hex::encode(wrong);
    assert_eq!(code(&rig.unblock(&wrong)), "wrong_cryptogram");
    assert_eq!(rig.admin_tries(), before - 1);
    // The challenge it answered is spent.
    assert_eq!(code(&rig.unblock(&right)), "bad_request");

    // The right one unblocks and sets the new passcode; the receipt is the card's proof.
    let challenge = rig.challenge();
    let (right, expected_receipt) = server_side(&challenge);
    let unblocked = rig.unblock(&right);
    assert_eq!(
        unblocked["ok"],
        json!({"type": "unblocked",
               "receipt": {"profile": "unlock-cr/1", "receipt": expected_receipt},
               "tries_left": 3}),
        "{unblocked}"
    );
    assert_eq!(rig.read_card()["ok"]["tries_left"], 3);
    let verify = client_test("verify_client_side", &rig.pcscd.socket)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && String::from_utf8_lossy(&verify.stdout).contains("1 passed"),
        "VERIFY with the new passcode:\n{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // The log tells what happened, but holds no passcode and no cryptogram.
    let log = rig.bridge.log_text();
    assert!(log.contains("kind=\"unblock\""), "{log}");
    for secret in [NEW_PASSCODE, OLD_PASSCODE, right.as_str(), wrong.as_str()] {
        assert!(
            !log.to_lowercase().contains(secret),
            "{secret} in the log:\n{log}"
        );
    }
    assert!(rig.bridge.close().success());
}

/// Runs in a child process whose `PCSCLITE_CSOCK_NAME` names the private daemon: VERIFY with
/// the new passcode succeeds, as it will when the holder next logs in.
#[test]
#[ignore = "run by the_bridge_lists_reads_and_unblocks_the_card in a child process"]
fn verify_client_side() {
    let context = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let reader = std::ffi::CString::new(READER).unwrap();
    let card = context
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap();
    let mut buffer = [0u8; 258];
    let select = [
        0x00, 0xA4, 0x04, 0x00, 0x08, 0xF0, 0x55, 0x4E, 0x4C, 0x4F, 0x43, 0x4B, 0x01,
    ];
    assert_eq!(card.transmit(&select, &mut buffer).unwrap(), [0x90, 0x00]);
    let pin = unlock_protocol::card_profile::pin_block(NEW_PASSCODE).unwrap();
    let verify = [&[0x00, 0x20, 0x00, 0x80, 0x08][..], &pin].concat();
    assert_eq!(card.transmit(&verify, &mut buffer).unwrap(), [0x90, 0x00]);
    card.disconnect(pcsc::Disposition::LeaveCard)
        .map_err(|(_, error)| error)
        .unwrap();
}

#[test]
fn watching_pages_hear_the_card_come_and_go() {
    let mut rig = Rig::start();
    assert_eq!(
        rig.bridge.request(json!({"type": "watch"}))["ok"]["type"],
        "watching"
    );
    // The state at the start is not an event: the page reads it with `readers`.
    assert_eq!(rig.bridge.event(Duration::from_millis(700)), None);

    assert_eq!(rig.card.command("remove"), "ok");
    let removed = rig
        .bridge
        .event(Duration::from_secs(10))
        .expect("a removal event");
    assert_eq!(
        removed,
        json!({"type": "event", "event": "card_removed", "reader": READER})
    );
    assert_eq!(code(&rig.read_card()), "no_card");

    assert_eq!(rig.card.command("insert"), "ok");
    let inserted = rig
        .bridge
        .event(Duration::from_secs(10))
        .expect("an insertion event");
    assert_eq!(
        inserted,
        json!({"type": "event", "event": "card_inserted", "reader": READER})
    );
    rig.wait_for_card();
}

#[test]
fn a_card_pulled_between_challenge_and_unblock_is_told_apart_and_a_retry_works() {
    let mut rig = Rig::start();
    let (right, _) = server_side(&rig.challenge());
    assert_eq!(rig.card.command("remove"), "ok");
    let pulled = rig.unblock(&right);
    assert_eq!(code(&pulled), "card_removed", "{}", rig.bridge.log_text());

    assert_eq!(rig.card.command("insert"), "ok");
    rig.wait_for_card();
    let challenge = rig.challenge();
    let (right, expected_receipt) = server_side(&challenge);
    assert_eq!(
        rig.unblock(&right)["ok"]["receipt"]["receipt"],
        expected_receipt
    );
    assert_eq!(rig.card.command(&format!("pin-is {NEW_PASSCODE}")), "true");
}

#[test]
fn the_wrong_card_an_empty_reader_and_a_missing_reader_each_have_their_own_error() {
    let mut rig = Rig::start();
    let other = rig.bridge.request(json!({
        "type": "challenge", "reader": READER,
        "challenge": {"profile": "unlock-cr/1", "serial": "0000000000000001"},
    }));
    assert_eq!(code(&other), "serial_mismatch");
    let nowhere = rig
        .bridge
        .request(json!({"type": "read_card", "reader": "No Such Reader 00 00"}));
    assert_eq!(code(&nowhere), "no_reader");
    assert_eq!(rig.card.command("remove"), "ok");
    wait_until(|| code(&rig.read_card()) == "no_card");
    assert_eq!(code(&rig.challenge()), "no_card");
}

#[test]
fn a_card_another_program_holds_is_in_use_until_it_lets_go() {
    let mut rig = Rig::start();
    let mut holder = client_test("hold_card_client_side", &rig.pcscd.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|line| line.unwrap().contains("holding")),
        "the other program never took the card"
    );
    assert_eq!(code(&rig.read_card()), "card_in_use");
    assert_eq!(code(&rig.challenge()), "card_in_use");

    holder.stdin.take().unwrap().write_all(b"done\n").unwrap();
    assert!(holder.wait().unwrap().success());
    rig.wait_for_card();
    assert_eq!(rig.challenge()["ok"]["type"], "proof");
}

/// Another program (a clinical system, say) holding the card exclusively until told.
#[test]
#[ignore = "run by a_card_another_program_holds_is_in_use_until_it_lets_go in a child process"]
fn hold_card_client_side() {
    let context = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let reader = std::ffi::CString::new(READER).unwrap();
    let card = context
        .connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
        .unwrap();
    println!("holding");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    card.disconnect(pcsc::Disposition::LeaveCard)
        .map_err(|(_, error)| error)
        .unwrap();
}

#[test]
fn the_bridge_reaches_the_card_service_again_after_it_restarts() {
    let mut rig = Rig::start();
    assert_eq!(
        rig.bridge.request(json!({"type": "watch"}))["ok"]["type"],
        "watching"
    );
    rig.pcscd.restart();
    // The virtual card was in the old daemon's reader; put it in the new one.
    assert_eq!(rig.card.command("remove"), "ok");
    assert_eq!(rig.card.command("insert"), "ok");
    wait_until(|| {
        let readers = rig.bridge.request(json!({"type": "readers"}));
        readers["ok"]["readers"][0]["card_present"] == true
    });
    rig.wait_for_card();
    // Card events flow again from the new daemon. Events from the watch catching up with the
    // restart (readers going and coming) may still arrive; the removal must follow them.
    while rig.bridge.event(Duration::from_millis(500)).is_some() {}
    assert_eq!(rig.card.command("remove"), "ok");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rig.bridge.event(left) {
            Some(event) if event["event"] == "card_removed" && event["reader"] == READER => break,
            Some(event) => seen.push(event),
            None => panic!(
                "no removal event (other events: {seen:?}); the bridge's log:\n{}",
                rig.bridge.log_text()
            ),
        }
    }
}

#[test]
fn the_client_side_tests_are_reachable() {
    // Guards the helpers above: a misspelt name would make a child run nothing.
    let dir = tempfile::tempdir().unwrap();
    let pcscd = PrivatePcscd::start(dir.path());
    let _ = std::panic::catch_unwind(|| run_client_test("hold_card_client_side_missing", &pcscd))
        .expect_err("a missing client test is reported");
}

#[test]
fn a_card_pulled_in_the_middle_of_the_unblock_is_removed_and_a_retry_works() {
    let mut rig = Rig::start();
    let (right, _) = server_side(&rig.challenge());
    // The card leaves the reader the moment RESET RETRY COUNTER reaches it, unanswered.
    assert_eq!(rig.card.command("pull-on 2C"), "ok");
    assert_eq!(code(&rig.unblock(&right)), "card_removed");

    assert_eq!(rig.card.command("insert"), "ok");
    rig.wait_for_card();
    let (right, expected_receipt) = server_side(&rig.challenge());
    assert_eq!(
        rig.unblock(&right)["ok"]["receipt"]["receipt"],
        expected_receipt
    );
    assert_eq!(rig.card.command(&format!("pin-is {NEW_PASSCODE}")), "true");
}
