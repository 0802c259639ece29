//! Both virtual cards, which parse every command APDU a reader sends them: a run of APDUs
//! (see [`parts`]) goes to a fresh card, as one session would.

use std::sync::LazyLock;

use unlock_e2e::card::VirtualCard;
use unlock_e2e::piv_ca::TestCa;
use unlock_e2e::piv_card::{PivCardOptions, VirtualPivCard};
use unlock_protocol::{card_profile, piv};

use crate::{PIV_GUID, parts};

/// The `unlock-cr/1` card the targets talk to (the first independent test vector's key and
/// serial).
const MASTER_KEY: [u8; 16] = [
    0x35, 0xa4, 0x7d, 0x45, 0xd7, 0x58, 0x53, 0xe0, 0x26, 0x69, 0x5f, 0xff, 0xa1, 0x98, 0xb7, 0x9d,
];
const SERIAL: [u8; 8] = [0x2d, 0x6b, 0xdd, 0xb8, 0xad, 0x09, 0x6c, 0x2d];
/// The `unlock-cr/1` card's passcode.
pub const UNLOCK_CR_PIN: &str = "284759";

/// APDUs to a fresh `unlock-cr/1` card: every answer ends in a status word, and the counters
/// never pass their limits.
pub fn unlock_cr_card(data: &[u8]) {
    let mut card = VirtualCard::new(SERIAL, &MASTER_KEY, UNLOCK_CR_PIN);
    for apdu in parts(data) {
        let answer = card.process(apdu);
        assert!(answer.len() >= 2, "an answer ends in a status word");
        let counters = card.counters();
        assert!(counters.pin_tries <= card_profile::PIN_TRIES);
        assert!(counters.admin_tries <= card_profile::ADMIN_TRIES);
    }
}

/// One PIV card, made once (its keys and certificates take a while); each input gets a clone
/// with full counters.
static PIV_CARD: LazyLock<VirtualPivCard> = LazyLock::new(|| {
    let ca = TestCa::new("Fuzz PIV CA").expect("a test CA");
    let guid: [u8; 16] = hex::decode(PIV_GUID)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .expect("a GUID of 32 hex digits");
    VirtualPivCard::new(&PivCardOptions::new(guid), &ca).expect("a virtual PIV card")
});

/// APDUs to a fresh PIV card: every answer ends in a status word, short answers fit a short
/// response, and the counters never pass their limits.
pub fn piv_card(data: &[u8]) {
    let mut card = PIV_CARD.clone();
    for apdu in parts(data) {
        let answer = card.process(apdu);
        assert!(answer.len() >= 2, "an answer ends in a status word");
        let extended = apdu.len() > 5 && apdu[4] == 0;
        assert!(
            extended || answer.len() <= 256 + 2,
            "{} bytes",
            answer.len()
        );
        let counters = card.counters();
        assert!(counters.pin_tries <= piv::PIN_TRIES);
        assert!(counters.puk_tries <= piv::PUK_TRIES);
    }
}
