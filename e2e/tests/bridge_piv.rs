//! The `unlock-bridge` binary with the virtual PIV card in a real, private pcscd, driven over
//! its standard input and output as the browser drives it: reading the card, its proof of
//! possession, and the unblock with the escrowed PUK — rotation, receipt, every refusal the
//! page must tell apart, and a card pulled half-way — with nothing secret in the host's log.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use unlock_e2e::bridge::{BridgeProcess, PAGE_ORIGIN, extension_caller};
use unlock_e2e::harness::{Card, PrivatePcscd, READER, wait_until};
use unlock_e2e::piv_ca::{CaFiles, TestCa, verify_prehash};
use unlock_e2e::piv_card::{DEFAULT_GUID, DEFAULT_PIN, DEFAULT_PUK};
use unlock_protocol::piv::{self, Purpose};

const NEXT_PUK: &str = "88120457";
const WRONG_PUK: &str = "11223344";
const NEW_PIN: &str = "905173";

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

/// A private pcscd, the virtual PIV card (PIN blocked) in its reader, and the bridge logging
/// at debug level.
struct Rig {
    bridge: BridgeProcess,
    card: Card,
    _pcscd: PrivatePcscd,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pcscd = PrivatePcscd::start(dir.path());
        let files = CaFiles::in_dir(dir.path(), "trusted");
        TestCa::load_or_create(&files, "Trusted PIV CA").unwrap();
        let mut args = vec!["--locked"];
        args.extend_from_slice(extra);
        let card = Card::start_piv(
            Path::new(env!("CARGO_BIN_EXE_virtual-card")),
            pcscd.vpcd_port,
            &files,
            &args,
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
            _pcscd: pcscd,
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

    fn challenge(&mut self, guid: &str, nonce: &[u8; 32]) -> Value {
        self.bridge.request(json!({
            "type": "challenge", "reader": READER,
            "challenge": {"profile": "piv/1", "guid": guid, "nonce": hex::encode(nonce)},
        }))
    }

    fn unblock(&mut self, puks: &[&str], next_puk: &str, receipt_nonce: &[u8; 32]) -> Value {
        self.bridge.request(json!({
            "type": "unblock", "reader": READER,
            "release": {"profile": "piv/1", "guid": DEFAULT_GUID, "puks": puks,
                        "next_puk": next_puk, "receipt_nonce": hex::encode(receipt_nonce)},
            "new_passcode": NEW_PIN,
        }))
    }

    /// The card's certificate for key 9E or 9A, as the bridge read it.
    fn certificate(&mut self, which: &str) -> Vec<u8> {
        let card = self.read_card();
        hex::decode(card["ok"]["card"][which].as_str().expect("a certificate")).unwrap()
    }

    fn is(&mut self, what: &str, digits: &str) -> bool {
        self.card.command(&format!("{what}-is {digits}")) == "true"
    }

    /// Checks the reply is a receipt the PIV Authentication key signed over `receipt_nonce`.
    fn assert_receipt(&mut self, unblocked: &Value, receipt_nonce: &[u8; 32]) {
        assert_eq!(unblocked["ok"]["type"], "unblocked", "{unblocked}");
        assert_eq!(unblocked["ok"]["tries_left"], 3, "{unblocked}");
        assert_eq!(unblocked["ok"]["receipt"]["profile"], "piv/1");
        let signature = hex::decode(unblocked["ok"]["receipt"]["signature"].as_str().unwrap());
        verify_prehash(
            &self.certificate("piv_authentication"),
            &digest(Purpose::Receipt, receipt_nonce),
            &signature.unwrap(),
        )
        .expect("the receipt is the 9A key's signature over the receipt nonce");
    }
}

fn nonce() -> [u8; 32] {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).unwrap();
    nonce
}

fn digest(purpose: Purpose, nonce: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(piv::message(purpose, nonce)).into()
}

fn code(reply: &Value) -> &str {
    reply["err"]["code"].as_str().unwrap_or("(not an error)")
}

#[test]
fn the_bridge_reads_a_piv_card_and_its_possession_signature_verifies() {
    let mut rig = Rig::start(&[]);
    let card = rig.read_card();
    assert_eq!(card["ok"]["card"]["profile"], "piv/1", "{card}");
    assert_eq!(card["ok"]["card"]["guid"], DEFAULT_GUID);
    assert_eq!(card["ok"]["card"]["puk_tries_left"], 3);
    assert_eq!(card["ok"]["tries_left"], 0);
    let card_authentication = rig.certificate("card_authentication");
    assert_ne!(card_authentication, rig.certificate("piv_authentication"));

    let nonce = nonce();
    let proof = rig.challenge(DEFAULT_GUID, &nonce);
    assert_eq!(proof["ok"]["proof"]["profile"], "piv/1", "{proof}");
    let signature = hex::decode(proof["ok"]["proof"]["signature"].as_str().unwrap()).unwrap();
    verify_prehash(
        &card_authentication,
        &digest(Purpose::Possession, &nonce),
        &signature,
    )
    .expect("the 9E key's signature over the possession nonce");

    let other = rig.challenge("00112233445566778899aabbccddeeff", &nonce);
    assert_eq!(code(&other), "serial_mismatch");
    // Proving possession touched no counter.
    let state = rig.card.state();
    assert_eq!(
        (state["pin_tries"].as_u64(), state["puk_tries"].as_u64()),
        (Some(0), Some(3))
    );
}

#[test]
fn the_right_puk_unblocks_rotates_the_puk_and_the_old_one_is_then_refused() {
    let mut rig = Rig::start(&[]);
    let possession = nonce();
    assert_eq!(
        rig.challenge(DEFAULT_GUID, &possession)["ok"]["type"],
        "proof"
    );
    let receipt_nonce = nonce();
    let unblocked = rig.unblock(&[DEFAULT_PUK], NEXT_PUK, &receipt_nonce);
    rig.assert_receipt(&unblocked, &receipt_nonce);
    assert!(rig.is("pin", NEW_PIN));
    assert!(rig.is("puk", NEXT_PUK) && !rig.is("puk", DEFAULT_PUK));
    assert_eq!(rig.read_card()["ok"]["tries_left"], 3);

    // The PUK this computer saw is dead: the card refuses it, at the cost of one try.
    let again = rig.unblock(&[DEFAULT_PUK], "40404040", &nonce());
    assert_eq!(code(&again), "puk_rejected", "{again}");
    assert_eq!(rig.card.state()["puk_tries"], 2);

    // The host logged at debug level and told what happened, but nothing secret.
    let log = rig.bridge.log_text();
    assert!(
        log.contains("kind=\"unblock\"") && log.contains("DEBUG"),
        "{log}"
    );
    let secrets = [
        DEFAULT_PUK.to_owned(),
        NEXT_PUK.to_owned(),
        NEW_PIN.to_owned(),
        DEFAULT_PIN.to_owned(),
        hex::encode(possession),
        hex::encode(receipt_nonce),
        hex::encode(NEXT_PUK),
        hex::encode(DEFAULT_PUK),
        hex::encode(NEW_PIN),
    ];
    for secret in &secrets {
        assert!(
            !log.to_lowercase().contains(secret),
            "{secret} in the log:\n{log}"
        );
    }
}

#[test]
fn with_the_pending_puk_first_a_card_still_on_the_current_one_unblocks_for_one_try() {
    let mut rig = Rig::start(&[]);
    let receipt_nonce = nonce();
    let unblocked = rig.unblock(&[WRONG_PUK, DEFAULT_PUK], NEXT_PUK, &receipt_nonce);
    rig.assert_receipt(&unblocked, &receipt_nonce);
    assert_eq!(rig.card.state()["wrong_puks"], 1);
    assert!(rig.is("puk", NEXT_PUK) && rig.is("pin", NEW_PIN));
}

#[test]
fn a_wrong_single_puk_is_rejected_with_exactly_one_try_spent() {
    let mut rig = Rig::start(&[]);
    let refused = rig.unblock(&[WRONG_PUK], NEXT_PUK, &nonce());
    assert_eq!(code(&refused), "puk_rejected", "{refused}");
    let state = rig.card.state();
    assert_eq!(state["puk_tries"], 2, "{state}");
    assert_eq!(state["wrong_puks"], 1, "{state}");
    assert_eq!(state["pin_tries"], 0, "{state}");
    assert!(rig.is("puk", DEFAULT_PUK));
}

#[test]
fn a_card_whose_puk_is_blocked_is_told_apart_and_nothing_is_tried() {
    let mut rig = Rig::start(&["--puk-blocked"]);
    assert_eq!(rig.read_card()["ok"]["card"]["puk_tries_left"], 0);
    let refused = rig.unblock(&[DEFAULT_PUK], NEXT_PUK, &nonce());
    assert_eq!(code(&refused), "puk_blocked", "{refused}");
    assert_eq!(rig.card.state()["wrong_puks"], 0);
}

#[test]
fn a_card_pulled_after_the_rotation_unblocks_next_time_with_the_next_puk_first() {
    let mut rig = Rig::start(&[]);
    // The card leaves the reader right after CHANGE REFERENCE DATA, as VERIFY reaches it.
    assert_eq!(rig.card.command("pull-on 20 after 24"), "ok");
    let pulled = rig.unblock(&[DEFAULT_PUK], NEXT_PUK, &nonce());
    assert_eq!(code(&pulled), "card_removed", "{}", rig.bridge.log_text());
    assert!(
        rig.is("puk", NEXT_PUK),
        "the PUK was rotated before the card left"
    );

    assert_eq!(rig.card.command("insert"), "ok");
    rig.wait_for_card();
    let receipt_nonce = nonce();
    let unblocked = rig.unblock(&[NEXT_PUK, DEFAULT_PUK], NEXT_PUK, &receipt_nonce);
    rig.assert_receipt(&unblocked, &receipt_nonce);
    assert_eq!(rig.card.state()["wrong_puks"], 0);
    assert!(rig.is("pin", NEW_PIN) && rig.is("puk", NEXT_PUK));
}
