//! The PIV profile against the virtual PIV card, in this process: every APDU goes through the
//! same code as through PC/SC, only without the daemon.

use std::cell::RefCell;

use sha2::{Digest, Sha256};
use unlock_e2e::piv_ca::{PivKey, TestCa, verify_prehash};
use unlock_e2e::piv_card::{DEFAULT_PUK, PivCardOptions, VirtualPivCard};
use unlock_e2e::vpcd::{Fault, PullTrap};
use unlock_protocol::bridge::CardState;
use unlock_protocol::card_steps::{CardReceipt, Nonce};
use unlock_protocol::piv::Puk;

use super::*;

const GUID: [u8; 16] = [
    0x3f, 0x2a, 0x9c, 0x1e, 0x5b, 0x7d, 0x4e, 0x8f, 0x9a, 0x0b, 0x1c, 0x2d, 0x3e, 0x4f, 0x5a, 0x6b,
];
const NEXT_PUK: &str = "88120457";
const NEW_PIN: &str = "905173";

/// The virtual card as a [`Transmit`]: it records each instruction it is sent, and leaves
/// (as if pulled out) when its trap springs.
struct InProcess {
    card: RefCell<VirtualPivCard>,
    sent: RefCell<Vec<u8>>,
    trap: RefCell<PullTrap>,
}

impl InProcess {
    fn new(change: impl FnOnce(&mut PivCardOptions)) -> Self {
        let ca = TestCa::new("Test PIV CA").unwrap();
        let mut options = PivCardOptions::new(GUID);
        change(&mut options);
        let card = Self {
            card: RefCell::new(VirtualPivCard::new(&options, &ca).unwrap()),
            sent: RefCell::new(Vec::new()),
            trap: RefCell::new(PullTrap::default()),
        };
        Piv1.select(&card).unwrap();
        card
    }

    fn sent(&self, instruction: u8) -> usize {
        self.sent
            .borrow()
            .iter()
            .filter(|sent| **sent == instruction)
            .count()
    }

    fn certificate(&self, key: PivKey) -> Vec<u8> {
        self.card.borrow().certificate(key).to_vec()
    }
}

impl Transmit for InProcess {
    fn transmit(&self, apdu: &[u8]) -> Result<Answer, BridgeError> {
        let instruction = apdu.get(1).copied().unwrap_or_default();
        self.sent.borrow_mut().push(instruction);
        if let Some(fault) = self.trap.borrow_mut().springs(instruction) {
            if fault == Fault::PullAfter {
                self.card.borrow_mut().process(apdu);
            }
            self.card.borrow_mut().reset();
            return Err(fail(ErrorCode::CardRemoved));
        }
        let mut response = self.card.borrow_mut().process(apdu);
        let word = response.split_off(response.len() - 2);
        Ok((response, u16::from_be_bytes([word[0], word[1]])))
    }
}

fn guid() -> CardGuid {
    CardGuid::from_bytes(GUID)
}

fn puk(digits: &str) -> Puk {
    Puk::parse(digits).unwrap()
}

fn release(puks: &[&str], next: &str) -> CardRelease {
    CardRelease::Piv {
        guid: guid(),
        puks: puks.iter().map(|digits| puk(digits)).collect(),
        next_puk: puk(next),
        receipt_nonce: Nonce([0x5A; 32]),
    }
}

fn unblock(card: &InProcess, release: &CardRelease) -> Result<Unblocked, BridgeError> {
    Piv1.unblock(card, release, &Passcode::parse(NEW_PIN).unwrap())
}

fn digest(purpose: Purpose, nonce: &Nonce) -> [u8; 32] {
    Sha256::digest(piv::message(purpose, &nonce.0)).into()
}

#[test]
fn reading_gives_the_guid_both_certificates_and_both_counters() {
    let card = InProcess::new(|options| {
        options.pin_tries = 0;
        options.puk_tries = 2;
    });
    let info = Piv1.read(&card).unwrap();
    assert_eq!(info.tries_left, 0);
    assert_eq!(
        info.card,
        CardIdentity::Piv {
            guid: guid(),
            card_authentication: Certificate(card.certificate(PivKey::CardAuthentication)),
            piv_authentication: Certificate(card.certificate(PivKey::PivAuthentication)),
            puk_tries_left: Some(2),
        }
    );
}

#[test]
fn the_possession_proof_is_the_9e_signature_over_the_nonce() {
    let card = InProcess::new(|_| {});
    let nonce = Nonce([0x17; 32]);
    let challenge = CardChallenge::Piv {
        guid: guid(),
        nonce,
    };
    let CardProof::Piv { signature } = Piv1.answer(&card, &challenge).unwrap() else {
        panic!("not a PIV proof");
    };
    let certificate = card.certificate(PivKey::CardAuthentication);
    verify_prehash(
        &certificate,
        &digest(Purpose::Possession, &nonce),
        &signature.0,
    )
    .unwrap();
    assert!(
        verify_prehash(
            &certificate,
            &digest(Purpose::Receipt, &nonce),
            &signature.0
        )
        .is_err(),
        "a possession signature is no receipt"
    );

    let other = CardChallenge::Piv {
        guid: CardGuid::from_bytes([9; 16]),
        nonce,
    };
    assert_eq!(
        Piv1.answer(&card, &other).unwrap_err().code,
        ErrorCode::SerialMismatch
    );
}

#[test]
fn the_right_puk_unblocks_rotates_the_puk_and_signs_the_receipt_with_9a() {
    let card = InProcess::new(|options| options.pin_tries = 0);
    let release = release(&[DEFAULT_PUK], NEXT_PUK);
    let unblocked = unblock(&card, &release).unwrap();
    assert_eq!(unblocked.tries_left, 3);
    let CardReceipt::Piv { signature } = unblocked.receipt else {
        panic!("not a PIV receipt");
    };
    verify_prehash(
        &card.certificate(PivKey::PivAuthentication),
        &digest(Purpose::Receipt, &Nonce([0x5A; 32])),
        &signature.0,
    )
    .unwrap();
    let state = card.card.borrow();
    assert!(state.pin_is(NEW_PIN));
    assert!(state.puk_is(NEXT_PUK) && !state.puk_is(DEFAULT_PUK));
    assert_eq!(state.wrong_puks(), 0);
}

#[test]
fn with_the_pending_puk_first_a_card_still_on_the_current_one_costs_one_try() {
    let card = InProcess::new(|options| options.pin_tries = 0);
    let unblocked = unblock(&card, &release(&["11223344", DEFAULT_PUK], NEXT_PUK)).unwrap();
    assert_eq!(unblocked.tries_left, 3);
    assert_eq!(card.card.borrow().wrong_puks(), 1);
    assert_eq!(card.sent(ins::RESET_RETRY_COUNTER), 2);
    assert!(card.card.borrow().puk_is(NEXT_PUK));
}

#[test]
fn a_card_already_on_the_next_puk_is_not_rotated_again() {
    let card = InProcess::new(|options| options.puk = NEXT_PUK.into());
    unblock(&card, &release(&[NEXT_PUK, DEFAULT_PUK], NEXT_PUK)).unwrap();
    assert_eq!(card.sent(ins::RESET_RETRY_COUNTER), 1);
    assert_eq!(card.sent(ins::CHANGE_REFERENCE_DATA), 0);
    assert!(card.card.borrow().puk_is(NEXT_PUK));
}

#[test]
fn a_wrong_single_puk_is_rejected_with_exactly_one_try_spent() {
    let card = InProcess::new(|options| options.pin_tries = 0);
    let refused = unblock(&card, &release(&["11223344"], NEXT_PUK)).unwrap_err();
    assert_eq!(refused.code, ErrorCode::PukRejected);
    let state = card.card.borrow();
    assert_eq!(state.counters().puk_tries, 2);
    assert_eq!(state.counters().pin_tries, 0);
    assert!(state.puk_is(DEFAULT_PUK));
}

#[test]
fn a_blocked_puk_or_too_few_tries_for_the_candidates_tries_nothing() {
    let blocked = InProcess::new(|options| options.puk_tries = 0);
    let refused = unblock(&blocked, &release(&[DEFAULT_PUK], NEXT_PUK)).unwrap_err();
    assert_eq!(refused.code, ErrorCode::PukBlocked);
    assert_eq!(blocked.sent(ins::RESET_RETRY_COUNTER), 0);

    let last_try = InProcess::new(|options| options.puk_tries = 1);
    let refused = unblock(&last_try, &release(&["11223344", DEFAULT_PUK], NEXT_PUK)).unwrap_err();
    assert_eq!(refused.code, ErrorCode::PukRejected);
    assert_eq!(last_try.sent(ins::RESET_RETRY_COUNTER), 0);
    assert_eq!(last_try.card.borrow().counters().puk_tries, 1);

    // One candidate and one try: it is tried, and a wrong one blocks the card.
    let refused = unblock(&last_try, &release(&["11223344"], NEXT_PUK)).unwrap_err();
    assert_eq!(refused.code, ErrorCode::PukBlocked);
}

#[test]
fn pulled_after_the_rotation_the_card_unblocks_next_time_with_the_pending_puk_first() {
    let card = InProcess::new(|options| options.pin_tries = 0);
    *card.trap.borrow_mut() = PullTrap::on_after(ins::VERIFY, ins::CHANGE_REFERENCE_DATA);
    let pulled = unblock(&card, &release(&[DEFAULT_PUK], NEXT_PUK)).unwrap_err();
    assert_eq!(pulled.code, ErrorCode::CardRemoved);
    assert!(
        card.card.borrow().puk_is(NEXT_PUK),
        "rotated before it left"
    );

    Piv1.select(&card).unwrap();
    let retry = unblock(&card, &release(&[NEXT_PUK, DEFAULT_PUK], NEXT_PUK)).unwrap();
    assert_eq!(retry.tries_left, 3);
    assert_eq!(card.card.borrow().wrong_puks(), 0);
    assert!(card.card.borrow().pin_is(NEW_PIN));
}

#[test]
fn pulled_once_the_receipt_is_signed_the_unblock_still_answers_with_the_receipt() {
    let card = InProcess::new(|options| options.pin_tries = 0);
    *card.trap.borrow_mut() = PullTrap::on_after(ins::VERIFY, ins::GENERAL_AUTHENTICATE);
    let unblocked = unblock(&card, &release(&[DEFAULT_PUK], NEXT_PUK)).unwrap();
    assert_eq!(unblocked.tries_left, 3);
    assert!(card.card.borrow().pin_is(NEW_PIN));
}

#[test]
fn the_other_profiles_steps_are_bad_requests() {
    let card = InProcess::new(|_| {});
    let serial = unlock_protocol::CardSerial::parse("2d6bddb8ad096c2d").unwrap();
    let challenge = CardChallenge::UnlockCr { serial };
    assert_eq!(
        Piv1.answer(&card, &challenge).unwrap_err().code,
        ErrorCode::BadRequest
    );
}

fn check(card: &InProcess, id: &CardGuid) -> Result<(CardState, u8), BridgeError> {
    Piv1.select(card).unwrap();
    let passcode = Passcode::parse(NEW_PIN).unwrap();
    crate::profile::check_unblock(&Piv1, card, &id.clone().into(), &passcode)
}

#[test]
fn a_blocked_card_the_unblock_never_reached_is_untouched_without_a_verify() {
    let card = InProcess::new(|options| options.pin_tries = 0);
    *card.trap.borrow_mut() = PullTrap::on(ins::RESET_RETRY_COUNTER);
    let pulled = unblock(&card, &release(&[DEFAULT_PUK], NEXT_PUK)).unwrap_err();
    assert_eq!(pulled.code, ErrorCode::CardRemoved);
    let verifies = card.sent(ins::VERIFY);
    assert_eq!(check(&card, &guid()).unwrap(), (CardState::Untouched, 0));
    assert_eq!(
        card.sent(ins::VERIFY),
        verifies + 1,
        "only VERIFY without data"
    );
}

#[test]
fn a_card_pulled_after_reset_retry_counter_took_is_unblocked() {
    let card = InProcess::new(|options| options.pin_tries = 0);
    *card.trap.borrow_mut() = PullTrap::on(ins::CHANGE_REFERENCE_DATA);
    unblock(&card, &release(&[DEFAULT_PUK], NEXT_PUK)).unwrap_err();
    assert_eq!(check(&card, &guid()).unwrap(), (CardState::Unblocked, 3));
    assert_eq!(card.card.borrow().counters().pin_tries, 3, "no try spent");
}

#[test]
fn a_full_counter_the_unblock_never_reached_spends_one_try_and_a_lower_one_none() {
    let card = InProcess::new(|_| {});
    assert_eq!(check(&card, &guid()).unwrap(), (CardState::Untouched, 2));
    assert_eq!(check(&card, &guid()).unwrap(), (CardState::Untouched, 2));
    assert_eq!(card.card.borrow().counters().pin_tries, 2, "one try, once");
    assert_eq!(
        check(&card, &CardGuid::from_bytes([9; 16]))
            .unwrap_err()
            .code,
        ErrorCode::SerialMismatch
    );
}
