//! A `piv/1` card (NIST SP 800-73-4 PIV, as YubiKeys and PIV smartcards answer): the PIV
//! application selected by default, its data objects, PIN and PUK with their retry counters,
//! and two ECDSA P-256 keys — Card Authentication (9E, no PIN) and PIV Authentication (9A,
//! PIN) — whose certificates a test CA issues when the card starts. Long answers go out in
//! 256-byte pieces fetched with GET RESPONSE; long commands may come chained or with extended
//! lengths. Written to satisfy OpenSC as a real card does, so `opensc-tool`, `pkcs15-tool`
//! and `pkcs11-tool` check it.

mod apdu;
mod keys;
mod objects;
mod reference;
#[cfg(test)]
mod tests;

use std::fmt;

use p256::ecdsa::Signature;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use unlock_protocol::piv::{
    PIN_BLOCK_LEN, PIN_TRIES, PUK_TRIES, algorithm, ins, key, object, sw, tag, tlv,
};

use crate::piv_ca::{PivKey, TestCa, Validity};
use apdu::{CHAINING, Command, status, with_status};
use keys::{KeySlot, signing_request};
pub use objects::FULL_AID;
use reference::{Reference, check, tries_word, two_blocks};

/// The GUID, PIN and PUK the `virtual-card` binary gives a PIV card unless told otherwise.
pub const DEFAULT_GUID: &str = "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b";
pub const DEFAULT_PIN: &str = "284759";
pub const DEFAULT_PUK: &str = "40719263";

/// Largest command a chain may build up: an RSA-4096 template fits several times over.
const MAX_CHAINED: usize = 4096;
/// ISO/IEC 7816-4: the chain was broken by a different command.
const LAST_OF_CHAIN_EXPECTED: u16 = 0x6883;

/// The card's answer to reset: T=1, historical bytes "UNLOCKPV", with its check byte. Neither
/// OpenSC's YubiKey tests (historical bytes "Yubikey…", or compact-TLV naming one) nor any
/// vendor's ATR table match it, so OpenSC finds the PIV application by SELECT and treats the
/// card as a generic PIV card.
pub fn atr() -> Vec<u8> {
    let mut atr = vec![0x3B, 0x88, 0x80, 0x01];
    atr.extend_from_slice(b"UNLOCKPV");
    let check = atr[1..].iter().fold(0, |acc, b| acc ^ b);
    atr.push(check);
    atr
}

/// What a PIV card is made from. `Debug` hides the PIN and PUK.
#[derive(Clone)]
pub struct PivCardOptions {
    pub guid: [u8; 16],
    /// 6 to 8 digits.
    pub pin: String,
    /// 6 to 8 digits (the service's PUKs are 8).
    pub puk: String,
    pub pin_tries: u8,
    pub puk_tries: u8,
    /// For both certificates.
    pub validity: Validity,
}

impl PivCardOptions {
    /// A card with `guid`, the default PIN and PUK, full counters and certificates valid for
    /// a year.
    pub fn new(guid: [u8; 16]) -> Self {
        Self {
            guid,
            pin: DEFAULT_PIN.to_owned(),
            puk: DEFAULT_PUK.to_owned(),
            pin_tries: PIN_TRIES,
            puk_tries: PUK_TRIES,
            validity: Validity::days_from_now(365),
        }
    }
}

impl fmt::Debug for PivCardOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PivCardOptions")
            .field("guid", &hex::encode(self.guid))
            .field("pin_tries", &self.pin_tries)
            .field("puk_tries", &self.puk_tries)
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

/// Forgotten on power-off, reset and removal.
#[derive(Debug, Clone, Default)]
struct Session {
    pin_verified: bool,
    /// A chained command so far: its instruction and parameters, and its data.
    chain: Option<((u8, u8, u8), Vec<u8>)>,
    /// Response data not yet fetched with GET RESPONSE.
    pending: Vec<u8>,
}

/// What the card's counters read, for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub pin_tries: u8,
    pub puk_tries: u8,
}

/// A virtual PIV card. `Debug` shows neither PIN, PUK nor keys. A clone is the same card
/// (same keys and certificates) with counters of its own, as the fuzz targets take it.
#[derive(Clone)]
pub struct VirtualPivCard {
    guid: [u8; 16],
    pin: Reference,
    puk: Reference,
    pin_tries: u8,
    puk_tries: u8,
    /// Wrong PUKs presented since the card was made, for tests: the counter itself is filled
    /// again by the right PUK.
    wrong_puks: u32,
    card_authentication: KeySlot,
    piv_authentication: KeySlot,
    session: Session,
}

impl fmt::Debug for VirtualPivCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualPivCard")
            .field("guid", &hex::encode(self.guid))
            .field("pin_tries", &self.pin_tries)
            .field("puk_tries", &self.puk_tries)
            .finish_non_exhaustive()
    }
}

/// Response data and status word, before it is cut to what the reader takes.
type Answer = (Vec<u8>, u16);

fn refuse(word: u16) -> Answer {
    (Vec::new(), word)
}

impl VirtualPivCard {
    /// A card made from `options`, its two keys fresh and certified by `ca`.
    pub fn new(options: &PivCardOptions, ca: &TestCa) -> anyhow::Result<Self> {
        Ok(Self {
            guid: options.guid,
            pin: Reference::parse_digits(&options.pin)?,
            puk: Reference::parse_digits(&options.puk)?,
            pin_tries: options.pin_tries.min(PIN_TRIES),
            puk_tries: options.puk_tries.min(PUK_TRIES),
            wrong_puks: 0,
            card_authentication: KeySlot::new(ca, options, PivKey::CardAuthentication)?,
            piv_authentication: KeySlot::new(ca, options, PivKey::PivAuthentication)?,
            session: Session::default(),
        })
    }

    pub fn guid(&self) -> [u8; 16] {
        self.guid
    }

    pub fn counters(&self) -> Counters {
        Counters {
            pin_tries: self.pin_tries,
            puk_tries: self.puk_tries,
        }
    }

    /// Wrong PUKs the card was given since it was made.
    pub fn wrong_puks(&self) -> u32 {
        self.wrong_puks
    }

    /// Whether `pin` is the card's PIN, without touching any counter (for tests).
    pub fn pin_is(&self, pin: &str) -> bool {
        Reference::parse_digits(pin).is_ok_and(|pin| pin == self.pin)
    }

    /// Whether `puk` is the card's PUK, without touching any counter (for tests).
    pub fn puk_is(&self, puk: &str) -> bool {
        Reference::parse_digits(puk).is_ok_and(|puk| puk == self.puk)
    }

    /// The certificate (DER) for one of the card's keys.
    pub fn certificate(&self, key: PivKey) -> &[u8] {
        &self.slot(key).certificate
    }

    fn slot(&self, key: PivKey) -> &KeySlot {
        match key {
            PivKey::CardAuthentication => &self.card_authentication,
            PivKey::PivAuthentication => &self.piv_authentication,
        }
    }

    /// Power-off, reset or removal: the session is forgotten, counters stay.
    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// Answers one command APDU.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        // Whatever comes next, response data not fetched by now is gone.
        let pending = std::mem::take(&mut self.session.pending);
        let Some(command) = Command::parse(apdu) else {
            self.session.chain = None;
            return status(sw::WRONG_LENGTH);
        };
        if command.cla & !CHAINING != 0x00 {
            self.session.chain = None;
            return status(sw::CLA_NOT_SUPPORTED);
        }
        let header = (command.ins, command.p1, command.p2);
        let data = match self.session.chain.take() {
            Some((chained, so_far)) if chained == header => {
                [so_far, command.data.to_vec()].concat()
            }
            Some(_) => return status(LAST_OF_CHAIN_EXPECTED),
            None if command.ins == ins::GET_RESPONSE => {
                return self.get_response(&command, pending);
            }
            None => command.data.to_vec(),
        };
        if command.chained() {
            if data.len() > MAX_CHAINED {
                return status(sw::WRONG_LENGTH);
            }
            self.session.chain = Some((header, data));
            return status(sw::OK);
        }
        let whole = Command {
            data: &data,
            ..command.clone()
        };
        let (response, word) = self.answer(&whole);
        self.send(response, word, &command)
    }

    fn answer(&mut self, command: &Command<'_>) -> Answer {
        match command.ins {
            ins::SELECT => self.select(command),
            ins::GET_DATA => self.get_data(command),
            ins::VERIFY => self.verify(command),
            ins::CHANGE_REFERENCE_DATA => self.change_reference_data(command),
            ins::RESET_RETRY_COUNTER => self.reset_retry_counter(command),
            ins::GENERAL_AUTHENTICATE => self.general_authenticate(command),
            _ => refuse(sw::INS_NOT_SUPPORTED),
        }
    }

    /// What the reader takes at once: up to 256 bytes for a short command (whatever its Le,
    /// as YubiKeys do), up to Le for an extended one; the rest waits for GET RESPONSE.
    fn send(&mut self, mut response: Vec<u8>, word: u16, command: &Command<'_>) -> Vec<u8> {
        let limit = match (command.extended, command.le) {
            (true, Some(le)) => le,
            _ => 256,
        };
        if word != sw::OK || response.len() <= limit {
            return with_status(&response, word);
        }
        let rest = response.split_off(limit);
        let more = more_data(rest.len());
        self.session.pending = rest;
        with_status(&response, more)
    }

    fn get_response(&mut self, command: &Command<'_>, mut pending: Vec<u8>) -> Vec<u8> {
        if (command.p1, command.p2) != (0x00, 0x00) {
            return status(sw::INCORRECT_P1P2);
        }
        if pending.is_empty() {
            return status(sw::CONDITIONS_NOT_SATISFIED);
        }
        let take = command.le.unwrap_or(256).min(pending.len());
        let rest = pending.split_off(take);
        if rest.is_empty() {
            return with_status(&pending, sw::OK);
        }
        let more = more_data(rest.len());
        self.session.pending = rest;
        with_status(&pending, more)
    }

    /// SELECT by name: the PIV AID, or a leading part of it. Any other application is not
    /// here, and the PIV application stays selected, as the card's default.
    fn select(&mut self, command: &Command<'_>) -> Answer {
        let piv =
            command.p1 == 0x04 && command.data.len() >= 5 && FULL_AID.starts_with(command.data);
        if !piv {
            return refuse(sw::FILE_NOT_FOUND);
        }
        // P2 `0C`: no answer data wanted.
        if command.p2 & 0x0C == 0x0C {
            return refuse(sw::OK);
        }
        (objects::application_property_template(), sw::OK)
    }

    /// GET DATA `00 CB 3F FF` with the object's tag in `5C`.
    fn get_data(&self, command: &Command<'_>) -> Answer {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return refuse(sw::INCORRECT_P1P2);
        }
        let elements = tlv::decode(command.data);
        let Some([(tag, requested)]) = elements.as_deref() else {
            return refuse(sw::WRONG_DATA);
        };
        if *tag != [tag::TAG_LIST] {
            return refuse(sw::WRONG_DATA);
        }
        let object = match *requested {
            t if t == object::DISCOVERY => objects::discovery(),
            t if t == object::CHUID => objects::chuid(&self.guid),
            t if t == object::CARD_AUTHENTICATION_CERT => {
                objects::certificate(&self.card_authentication.certificate)
            }
            t if t == object::PIV_AUTHENTICATION_CERT => {
                objects::certificate(&self.piv_authentication.certificate)
            }
            _ => return refuse(sw::FILE_NOT_FOUND),
        };
        (object, sw::OK)
    }

    /// VERIFY: the PIN with data; without, whether it is verified or how many tries are left.
    /// For the PUK (P2 `81`), which VERIFY cannot check, only the tries left, as the bridge
    /// asks. P1 `FF` forgets a verified PIN.
    fn verify(&mut self, command: &Command<'_>) -> Answer {
        match (command.p1, command.p2, command.data.is_empty()) {
            (0xFF, key::PIN, true) => {
                self.session.pin_verified = false;
                refuse(sw::OK)
            }
            (0x00, key::PIN, true) if self.session.pin_verified => refuse(sw::OK),
            (0x00, key::PIN, true) => refuse(tries_word(self.pin_tries)),
            (0x00, key::PIN, false) => {
                self.session.pin_verified = false;
                if command.data.len() != PIN_BLOCK_LEN {
                    return refuse(sw::WRONG_DATA);
                }
                let word = check(&mut self.pin_tries, PIN_TRIES, command.data, self.pin);
                self.session.pin_verified = word == sw::OK;
                refuse(word)
            }
            (0x00, key::PUK, true) => refuse(tries_word(self.puk_tries)),
            (0x00 | 0xFF, _, _) => refuse(sw::REFERENCE_NOT_FOUND),
            _ => refuse(sw::INCORRECT_P1P2),
        }
    }

    /// CHANGE REFERENCE DATA: old ‖ new, for the PIN (P2 `80`) or the PUK (P2 `81`). A wrong
    /// old value costs that counter a try.
    fn change_reference_data(&mut self, command: &Command<'_>) -> Answer {
        if command.p1 != 0x00 {
            return refuse(sw::INCORRECT_P1P2);
        }
        let Some((old, new)) = two_blocks(command.data) else {
            return refuse(sw::WRONG_DATA);
        };
        let Some(new) = Reference::parse_block(new) else {
            return refuse(sw::WRONG_DATA);
        };
        let (tries, limit, reference) = match command.p2 {
            key::PIN => (&mut self.pin_tries, PIN_TRIES, &mut self.pin),
            key::PUK => (&mut self.puk_tries, PUK_TRIES, &mut self.puk),
            _ => return refuse(sw::REFERENCE_NOT_FOUND),
        };
        let word = check(tries, limit, old, *reference);
        if word == sw::OK {
            *reference = new;
        } else if command.p2 == key::PUK && word != sw::BLOCKED {
            self.wrong_puks += 1;
        }
        refuse(word)
    }

    /// RESET RETRY COUNTER `00 2C 00 80`: PUK ‖ new PIN. The right PUK sets the PIN and fills
    /// both counters; a wrong one costs the PUK counter a try.
    fn reset_retry_counter(&mut self, command: &Command<'_>) -> Answer {
        if (command.p1, command.p2) != (0x00, key::PIN) {
            return refuse(sw::INCORRECT_P1P2);
        }
        let Some((puk, pin)) = two_blocks(command.data) else {
            return refuse(sw::WRONG_DATA);
        };
        let Some(pin) = Reference::parse_block(pin) else {
            return refuse(sw::WRONG_DATA);
        };
        let word = check(&mut self.puk_tries, PUK_TRIES, puk, self.puk);
        match word {
            sw::OK => {
                self.pin = pin;
                self.pin_tries = PIN_TRIES;
                self.session.pin_verified = false;
            }
            sw::BLOCKED => {}
            _ => self.wrong_puks += 1,
        }
        refuse(word)
    }

    /// GENERAL AUTHENTICATE `00 87 11 9E|9A`, template `7C { 82 00, 81 <digest> }`: an ECDSA
    /// signature over the 32-byte digest, as given, answered as `7C { 82 <DER signature> }`.
    /// 9A needs the PIN verified in this session; 9E does not.
    fn general_authenticate(&mut self, command: &Command<'_>) -> Answer {
        let slot = match command.p2 {
            key::CARD_AUTHENTICATION => &self.card_authentication,
            key::PIV_AUTHENTICATION => &self.piv_authentication,
            _ => return refuse(sw::REFERENCE_NOT_FOUND),
        };
        if command.p1 != algorithm::ECC_P256 {
            return refuse(sw::WRONG_DATA);
        }
        if command.p2 == key::PIV_AUTHENTICATION && !self.session.pin_verified {
            return refuse(sw::SECURITY_NOT_SATISFIED);
        }
        let Some(digest) = signing_request(command.data) else {
            return refuse(sw::WRONG_DATA);
        };
        let Ok(signature) = PrehashSigner::<Signature>::sign_prehash(&slot.key, &digest) else {
            return refuse(sw::WRONG_DATA);
        };
        let response = tlv::encode(&[tag::RESPONSE], signature.to_der().as_bytes());
        (
            tlv::encode(&[tag::DYNAMIC_AUTHENTICATION], &response),
            sw::OK,
        )
    }
}

/// `61xx`: `xx` more bytes to fetch (`00`: 256 or more).
fn more_data(left: usize) -> u16 {
    sw::MORE_DATA_BASE | u16::from(u8::try_from(left).unwrap_or(0))
}
