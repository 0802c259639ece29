//! The unblock of both profiles with the card pulled out just before each of the bridge's
//! APDUs reaches it, and just after the card has processed one (its answer lost), and with
//! the bridge killed in the middle: the bridge answers `card_removed` or, once it holds the
//! card's receipt, `unblocked` (never hangs or crashes); the card is left in the state the
//! table says, never half-done beyond recovery; and once it is back a retry as the server
//! would allow it (a new challenge; for PIV both PUKs, the pending one first) unblocks it with
//! the new PIN. One pcscd and one bridge serve every case; each case gets a fresh card.
//!
//! What a lost answer means: when the card took the new PIN but its answer (the `unlock-cr/1`
//! receipt, or the PIV rotation or signature) was lost with the card, the unblock itself
//! cannot know, so it reports the removal. Once the card is back, the page asks the bridge
//! (`check_unblock`) where it stands, and the answer must match the card's real state in
//! every case: `untouched` (without spending a try on a blocked card) or `unblocked`; the page
//! says which, and its retry unblocks the card again. A PIV card pulled between RESET RETRY
//! COUNTER and the PUK's rotation has the new PIN but still the PUK this computer saw: it is
//! `unblocked`, and the retry spends one PUK try on the pending PUK, then rotates.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use unlock_e2e::bridge::{BridgeProcess, PAGE_ORIGIN, extension_caller};
use unlock_e2e::harness::{Card, PrivatePcscd, READER, wait_until};
use unlock_e2e::piv_ca::{CaFiles, TestCa};
use unlock_e2e::piv_card::{DEFAULT_GUID, DEFAULT_PIN, DEFAULT_PUK};
use unlock_protocol::card_profile::{card_key, cryptogram};

const MASTER_KEY: &str = "0b2560610fce4019a51221a129d9cf4c";
const SERIAL: &str = "ac4d0ed99f033e05";
const OLD_PASSCODE: &str = "284759";
const NEW_PASSCODE: &str = "905173";
const NEXT_PUK: &str = "88120457";

/// Where the card is after a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CardState {
    /// Still blocked, with its old PIN (and, PIV, its old PUK, no try spent).
    Untouched,
    /// PIV: the new PIN set and its counter full, the PUK this computer saw not yet rotated.
    PinSetPukNotRotated,
    /// The new PIN set and its counter full (PIV: the PUK rotated to the next one).
    Unblocked,
}
use CardState::{PinSetPukNotRotated, Unblocked, Untouched};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    UnlockCr,
    Piv,
}

/// One APDU of an unblock sequence: its instruction, what it is for, the card's state once
/// it has processed it, and whether its answer is the receipt (once the bridge holds the
/// receipt, a pull no longer matters: it answers `unblocked`).
type Step = (&'static str, &'static str, CardState, bool);

/// `unlock-cr/1`, on the card held since the challenge (native-bridge/src/profile/unlock_cr.rs).
#[rustfmt::skip]
const UNLOCK_CR_STEPS: &[Step] = &[
    ("82", "EXTERNAL AUTHENTICATE with the cryptogram", Untouched, false),
    ("2C", "RESET RETRY COUNTER with the new passcode", Unblocked, true),
    ("20", "VERIFY without data: the tries left", Unblocked, false),
];

/// `piv/1`, one transaction of its own (native-bridge/src/profile/piv/).
#[rustfmt::skip]
const PIV_STEPS: &[Step] = &[
    ("A4", "SELECT the PIV application", Untouched, false),
    ("CB", "GET DATA: the CHUID, to check the GUID", Untouched, false),
    ("20", "VERIFY the PUK without data: its tries left", Untouched, false),
    ("2C", "RESET RETRY COUNTER: PUK and new PIN", PinSetPukNotRotated, false),
    ("24", "CHANGE REFERENCE DATA: the PUK rotated", Unblocked, false),
    ("20", "VERIFY the new PIN", Unblocked, false),
    ("CB", "GET DATA: the 9A certificate", Unblocked, false),
    ("C0", "GET RESPONSE: more of it", Unblocked, false),
    ("C0", "GET RESPONSE: the rest of it", Unblocked, false),
    ("87", "GENERAL AUTHENTICATE: 9A signs the receipt nonce", Unblocked, true),
    ("20", "VERIFY without data: the PIN tries left", Unblocked, false),
];

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

/// A private pcscd, a blocked virtual card of one profile in its reader, and the bridge.
struct Rig {
    profile: Profile,
    bridge: BridgeProcess,
    card: Card,
    pcscd: PrivatePcscd,
    ca: CaFiles,
    bridges: u32,
    dir: tempfile::TempDir,
}

impl Rig {
    fn start(profile: Profile) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pcscd = PrivatePcscd::start(dir.path());
        let ca = CaFiles::in_dir(dir.path(), "trusted");
        TestCa::load_or_create(&ca, "Trusted PIV CA").unwrap();
        let card = start_card(profile, &pcscd, &ca);
        let bridge = start_bridge(dir.path(), 0, &pcscd);
        let mut rig = Self {
            profile,
            bridge,
            card,
            pcscd,
            ca,
            bridges: 0,
            dir,
        };
        rig.wait_for_card();
        rig
    }

    /// Takes the card out and puts a fresh blocked one in.
    fn new_card(&mut self) {
        assert_eq!(self.card.command("remove"), "ok");
        self.card = start_card(self.profile, &self.pcscd, &self.ca);
        self.wait_for_card();
    }

    /// Kills the bridge (SIGKILL) and starts another, as the browser does on the next page.
    fn kill_and_restart_bridge(&mut self) {
        self.bridges += 1;
        self.bridge = start_bridge(self.dir.path(), self.bridges, &self.pcscd);
    }

    fn wait_for_card(&mut self) {
        wait_until(|| {
            self.bridge
                .request(json!({"type": "read_card", "reader": READER}))["ok"]["type"]
                == "card"
        });
    }

    /// What the holder's page sends for the unblock (after the challenge the profile needs),
    /// as the server would release it the first time, with the card told `fault` (such as
    /// `pull-before 3`) just before; the reply is not waited for.
    fn send_unblock(&mut self, fault: Option<String>) -> u64 {
        let release = match self.profile {
            Profile::UnlockCr => self.cr_release(),
            Profile::Piv => piv_release(&[DEFAULT_PUK]),
        };
        if let Some(fault) = fault {
            assert_eq!(self.card.command(&fault), "ok");
        }
        self.bridge.send(json!({
            "type": "unblock", "reader": READER, "release": release,
            "new_passcode": NEW_PASSCODE,
        }))
    }

    /// The retry once the card is back: a new challenge; for PIV, as the server releases
    /// when no receipt came, both PUKs with the pending one first.
    fn retry(&mut self) -> Value {
        let release = match self.profile {
            Profile::UnlockCr => self.cr_release(),
            Profile::Piv => piv_release(&[NEXT_PUK, DEFAULT_PUK]),
        };
        self.bridge.request(json!({
            "type": "unblock", "reader": READER, "release": release,
            "new_passcode": NEW_PASSCODE,
        }))
    }

    /// Where the page, once the card is back, is told the unblock left it.
    fn check(&mut self) -> Value {
        let card = match self.profile {
            Profile::UnlockCr => SERIAL,
            Profile::Piv => DEFAULT_GUID,
        };
        self.bridge.request(json!({
            "type": "check_unblock", "reader": READER, "card": card,
            "new_passcode": NEW_PASSCODE,
        }))
    }

    /// Checks the bridge tells the state the card is really in, and that telling changed
    /// nothing.
    fn assert_checked(&mut self, expected: CardState, case: &str) {
        let checked = self.check();
        let (said, tries) = match expected {
            Untouched => ("untouched", 0),
            PinSetPukNotRotated | Unblocked => ("unblocked", 3),
        };
        assert_eq!(
            checked["ok"]["type"], "unblock_checked",
            "{case}: {checked}"
        );
        assert_eq!(checked["ok"]["card_state"], said, "{case}: {checked}");
        assert_eq!(checked["ok"]["tries_left"], tries, "{case}: {checked}");
        assert_eq!(self.card_state(), expected, "{case}: after the check");
    }

    /// `unlock-cr/1`: the card's challenge (it is held from here) and the server's
    /// cryptogram for it.
    fn cr_release(&mut self) -> Value {
        let challenge = self.bridge.request(json!({
            "type": "challenge", "reader": READER,
            "challenge": {"profile": "unlock-cr/1", "serial": SERIAL},
        }));
        let challenge: [u8; 16] =
            hex::decode(challenge["ok"]["proof"]["challenge"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
        let master: [u8; 16] = hex::decode(MASTER_KEY).unwrap().try_into().unwrap();
        let serial: [u8; 8] = hex::decode(SERIAL).unwrap().try_into().unwrap();
        let cryptogram = cryptogram(&card_key(&master, &serial), &challenge, &serial);
        json!({"profile": "unlock-cr/1", "serial": SERIAL, "cryptogram": hex::encode(cryptogram)})
    }

    fn is(&mut self, what: &str, digits: &str) -> bool {
        self.card.command(&format!("{what}-is {digits}")) == "true"
    }

    /// The card's state, read through its control commands.
    fn card_state(&mut self) -> CardState {
        let state = self.card.state();
        let tries = state["pin_tries"].as_u64();
        let old_pin = match self.profile {
            Profile::UnlockCr => OLD_PASSCODE,
            Profile::Piv => DEFAULT_PIN,
        };
        let pin_set = tries == Some(3) && self.is("pin", NEW_PASSCODE);
        let untouched = tries == Some(0) && self.is("pin", old_pin);
        let found = match self.profile {
            Profile::UnlockCr if untouched => Some(Untouched),
            Profile::UnlockCr if pin_set => Some(Unblocked),
            Profile::UnlockCr => None,
            Profile::Piv => {
                assert_eq!(state["puk_tries"], 3, "no PUK try spent: {state}");
                assert_eq!(state["wrong_puks"], 0, "{state}");
                match (untouched, pin_set) {
                    (true, _) if self.is("puk", DEFAULT_PUK) => Some(Untouched),
                    (_, true) if self.is("puk", DEFAULT_PUK) => Some(PinSetPukNotRotated),
                    (_, true) if self.is("puk", NEXT_PUK) => Some(Unblocked),
                    _ => None,
                }
            }
        };
        found.unwrap_or_else(|| panic!("the card is half-done: {state}"))
    }

    /// After a retry: the new PIN set, and for PIV the PUK rotated with at most the one try
    /// the pending PUK costs a card that was never rotated.
    fn assert_unblocked_after_retry(&mut self, before: CardState) {
        let state = self.card.state();
        assert_eq!(state["pin_tries"], 3, "{state}");
        assert!(self.is("pin", NEW_PASSCODE));
        if self.profile == Profile::Piv {
            assert!(self.is("puk", NEXT_PUK), "{state}");
            assert_eq!(state["puk_tries"], 3, "{state}");
            let spent = u64::from(before != Unblocked);
            assert_eq!(state["wrong_puks"], spent, "{state}");
        }
    }

    /// The card's log of instructions since it was last read.
    fn instructions(&mut self) -> String {
        self.card.command("log")
    }
}

fn start_card(profile: Profile, pcscd: &PrivatePcscd, ca: &CaFiles) -> Card {
    let binary = Path::new(env!("CARGO_BIN_EXE_virtual-card"));
    match profile {
        Profile::UnlockCr => Card::start(
            binary,
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
        ),
        Profile::Piv => Card::start_piv(binary, pcscd.vpcd_port, ca, &["--locked"]),
    }
}

fn start_bridge(dir: &Path, number: u32, pcscd: &PrivatePcscd) -> BridgeProcess {
    BridgeProcess::start(
        &bridge_binary(),
        &dir.join(format!("bridge-{number}")),
        &format!("allowed_origins = [{PAGE_ORIGIN:?}]\n"),
        &extension_caller(),
        &pcscd.socket,
    )
}

fn piv_release(puks: &[&str]) -> Value {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).unwrap();
    json!({"profile": "piv/1", "guid": DEFAULT_GUID, "puks": puks, "next_puk": NEXT_PUK,
           "receipt_nonce": hex::encode(nonce)})
}

fn code(reply: &Value) -> &str {
    reply["err"]["code"].as_str().unwrap_or("(not an error)")
}

/// Every step of `steps`, the card pulled before it and after it; first a clean run shows
/// the table is the sequence the bridge really sends.
fn pull_at_every_step(profile: Profile, steps: &[Step]) {
    let mut rig = Rig::start(profile);
    let _ = rig.instructions();
    let id = rig.send_unblock(None);
    let clean = rig.bridge.reply(id);
    assert_eq!(clean["ok"]["type"], "unblocked", "{clean}");
    let mut log = rig.instructions();
    if profile == Profile::UnlockCr {
        // The challenge's SELECT, GET DATA and GET CHALLENGE.
        log = log.split_at(9).1.to_owned();
    }
    let table: Vec<&str> = steps.iter().map(|(instruction, ..)| *instruction).collect();
    assert_eq!(log, table.join(" "), "the bridge's sequence");

    let receipt = steps.iter().position(|step| step.3).unwrap();
    let mut seen = Vec::new();
    for (index, (instruction, what, after, _)) in steps.iter().enumerate() {
        let before = index
            .checked_sub(1)
            .map_or(Untouched, |previous| steps[previous].2);
        for (fault, expected) in [("pull-before", before), ("pull-after", *after)] {
            rig.new_card();
            let id = rig.send_unblock(Some(format!("{fault} {}", index + 1)));
            let reply = rig.bridge.reply(id);
            let case = format!("{fault} {instruction} ({what})");
            assert_eq!(rig.card_state(), expected, "{case}");
            assert_eq!(rig.card.command("insert"), "ok");
            rig.wait_for_card();
            if index > receipt {
                // The receipt reached the page, and with it the server: the journey is over.
                assert_eq!(reply["ok"]["type"], "unblocked", "{case}: {reply}");
                assert_eq!(reply["ok"]["tries_left"], 3, "{case}: {reply}");
                seen.push(format!("{case}: unblocked, card {expected:?}"));
                continue;
            }
            assert_eq!(code(&reply), "card_removed", "{case}: {reply}");
            rig.assert_checked(expected, &case);
            seen.push(format!("{case}: card_removed, checked {expected:?}"));
            let retried = rig.retry();
            assert_eq!(
                retried["ok"]["type"], "unblocked",
                "{case}, retry: {retried}"
            );
            rig.assert_unblocked_after_retry(expected);
        }
    }
    println!("{}", seen.join("\n"));
}

#[test]
fn unlock_cr_card_pulled_before_and_after_each_unblock_apdu_is_untouched_or_unblocked_and_a_retry_works()
 {
    pull_at_every_step(Profile::UnlockCr, UNLOCK_CR_STEPS);
}

#[test]
fn piv_card_pulled_before_and_after_each_unblock_apdu_is_untouched_or_unblocked_and_a_retry_works()
{
    pull_at_every_step(Profile::Piv, PIV_STEPS);
}

/// The bridge killed while the card holds RESET RETRY COUNTER: the card processes it once
/// let go, so a new bridge finds it unblocked (PIV: the PUK not yet rotated), and a retry
/// finishes the job.
fn kill_during_reset_retry_counter(profile: Profile, steps: &[Step]) {
    let mut rig = Rig::start(profile);
    let nth = steps.iter().position(|(i, ..)| *i == "2C").unwrap() + 1;
    rig.send_unblock(Some(format!("stall-before {nth}")));
    wait_until(|| rig.card.state()["stalled"] == true);
    rig.kill_and_restart_bridge();
    assert_eq!(rig.card.command("go"), "ok");
    rig.wait_for_card();
    let state = rig.card_state();
    assert_eq!(state, steps[nth - 1].2);
    rig.assert_checked(state, "bridge killed");
    let retried = rig.retry();
    assert_eq!(retried["ok"]["type"], "unblocked", "{retried}");
    rig.assert_unblocked_after_retry(state);
}

#[test]
fn unlock_cr_bridge_killed_mid_unblock_leaves_the_card_unblocked_and_a_new_bridge_retries() {
    kill_during_reset_retry_counter(Profile::UnlockCr, UNLOCK_CR_STEPS);
}

#[test]
fn piv_bridge_killed_mid_unblock_leaves_the_pin_set_and_a_new_bridge_retries() {
    kill_during_reset_retry_counter(Profile::Piv, PIV_STEPS);
}
