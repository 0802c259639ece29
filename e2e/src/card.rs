//! The `unlock-cr/1` card itself: retry counters, challenge consumption, the admin key's
//! counter and the receipt, answering APDUs as DESIGN.md's card profile table says.

use unlock_protocol::Passcode;
use unlock_protocol::card_profile::{
    ADMIN_TRIES, AID, BLOCK_LEN, PIN_BLOCK_LEN, PIN_TRIES, SERIAL_LEN, card_key, cryptogram, ins,
    pin_digits, receipt, sw,
};

/// A virtual card's lasting state, and what it remembers until power-off.
#[derive(Debug, Clone)]
pub struct VirtualCard {
    serial: [u8; SERIAL_LEN],
    card_key: [u8; 16],
    pin: String,
    pin_tries: u8,
    admin_tries: u8,
    session: Session,
}

/// Forgotten on power-off, reset and removal.
#[derive(Debug, Clone, Default)]
struct Session {
    selected: bool,
    verified: bool,
    /// The last challenge handed out; consumed by the next command of any kind.
    challenge: Option<[u8; BLOCK_LEN]>,
    /// Set by a successful EXTERNAL AUTHENTICATE (the challenge it answered); good for the
    /// next command only.
    admin_authenticated: Option<[u8; BLOCK_LEN]>,
}

/// What the card's counters read, for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub pin_tries: u8,
    pub admin_tries: u8,
}

impl VirtualCard {
    /// A card with `serial`, the admin key derived from `master_key`, and passcode `pin`.
    pub fn new(serial: [u8; SERIAL_LEN], master_key: &[u8; 16], pin: &str) -> Self {
        Self {
            serial,
            card_key: card_key(master_key, &serial),
            pin: pin.to_owned(),
            pin_tries: PIN_TRIES,
            admin_tries: ADMIN_TRIES,
            session: Session::default(),
        }
    }

    /// Sets the passcode counter (0 = blocked, as after three wrong passcodes).
    pub fn with_pin_tries(mut self, tries: u8) -> Self {
        self.pin_tries = tries.min(PIN_TRIES);
        self
    }

    /// Sets the admin key's counter.
    pub fn with_admin_tries(mut self, tries: u8) -> Self {
        self.admin_tries = tries.min(ADMIN_TRIES);
        self
    }

    pub fn serial(&self) -> [u8; SERIAL_LEN] {
        self.serial
    }

    pub fn counters(&self) -> Counters {
        Counters {
            pin_tries: self.pin_tries,
            admin_tries: self.admin_tries,
        }
    }

    /// Whether `pin` is the card's passcode, without touching any counter (for tests).
    pub fn pin_is(&self, pin: &str) -> bool {
        self.pin == pin
    }

    /// Power-off, reset or removal: the session is forgotten, counters stay.
    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// Answers one command APDU.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        // Whatever the command, it consumes the pending challenge and admin authentication.
        let challenge = self.session.challenge.take();
        let admin_authenticated = self.session.admin_authenticated.take();
        let Some(command) = Command::parse(apdu) else {
            return status(sw::WRONG_LENGTH);
        };
        if command.cla != 0x00 {
            return status(sw::CLA_NOT_SUPPORTED);
        }
        if command.ins == ins::SELECT {
            return self.select(&command);
        }
        if !self.session.selected {
            return status(sw::CONDITIONS_NOT_SATISFIED);
        }
        match command.ins {
            ins::GET_DATA => self.get_data(&command),
            ins::VERIFY => self.verify(&command),
            ins::GET_CHALLENGE => self.get_challenge(&command),
            ins::EXTERNAL_AUTHENTICATE => self.external_authenticate(&command, challenge),
            ins::RESET_RETRY_COUNTER => self.reset_retry_counter(&command, admin_authenticated),
            _ => status(sw::INS_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, command: &Command<'_>) -> Vec<u8> {
        if (command.p1, command.p2) != (0x04, 0x00) || command.data != AID {
            self.session.selected = false;
            return status(sw::FILE_NOT_FOUND);
        }
        self.session = Session {
            selected: true,
            ..Session::default()
        };
        status(sw::OK)
    }

    fn get_data(&self, command: &Command<'_>) -> Vec<u8> {
        if (command.p1, command.p2) != (0x00, 0x5A) {
            return status(sw::WRONG_P1P2);
        }
        with_status(&self.serial, sw::OK)
    }

    fn verify(&mut self, command: &Command<'_>) -> Vec<u8> {
        if (command.p1, command.p2) != (0x00, 0x80) {
            return status(sw::WRONG_P1P2);
        }
        if self.pin_tries == 0 {
            return status(sw::BLOCKED);
        }
        if command.data.is_empty() {
            return if self.session.verified {
                status(sw::OK)
            } else {
                self.tries_left()
            };
        }
        if command.data.len() != PIN_BLOCK_LEN {
            return status(sw::WRONG_LENGTH);
        }
        if pin_digits(command.data).is_some_and(|pin| pin == self.pin) {
            self.pin_tries = PIN_TRIES;
            self.session.verified = true;
            return status(sw::OK);
        }
        self.pin_tries -= 1;
        self.session.verified = false;
        if self.pin_tries == 0 {
            status(sw::BLOCKED)
        } else {
            self.tries_left()
        }
    }

    fn tries_left(&self) -> Vec<u8> {
        status(sw::TRIES_LEFT_BASE | u16::from(self.pin_tries))
    }

    fn get_challenge(&mut self, command: &Command<'_>) -> Vec<u8> {
        if (command.p1, command.p2) != (0x00, 0x00) {
            return status(sw::WRONG_P1P2);
        }
        if command.le != Some(BLOCK_LEN) {
            return status(sw::WRONG_LENGTH);
        }
        let mut challenge = [0u8; BLOCK_LEN];
        if getrandom::fill(&mut challenge).is_err() {
            return status(sw::CONDITIONS_NOT_SATISFIED);
        }
        self.session.challenge = Some(challenge);
        with_status(&challenge, sw::OK)
    }

    fn external_authenticate(
        &mut self,
        command: &Command<'_>,
        challenge: Option<[u8; BLOCK_LEN]>,
    ) -> Vec<u8> {
        if (command.p1, command.p2) != (0x00, 0x01) {
            return status(sw::WRONG_P1P2);
        }
        if self.admin_tries == 0 {
            return status(sw::BLOCKED);
        }
        if command.data.len() != BLOCK_LEN {
            return status(sw::WRONG_LENGTH);
        }
        let Some(challenge) = challenge else {
            return status(sw::CONDITIONS_NOT_SATISFIED);
        };
        if command.data == cryptogram(&self.card_key, &challenge, &self.serial) {
            self.admin_tries = ADMIN_TRIES;
            self.session.admin_authenticated = Some(challenge);
            status(sw::OK)
        } else {
            self.admin_tries -= 1;
            status(sw::SECURITY_NOT_SATISFIED)
        }
    }

    fn reset_retry_counter(
        &mut self,
        command: &Command<'_>,
        admin_authenticated: Option<[u8; BLOCK_LEN]>,
    ) -> Vec<u8> {
        if (command.p1, command.p2) != (0x02, 0x80) {
            return status(sw::WRONG_P1P2);
        }
        let Some(challenge) = admin_authenticated else {
            return status(sw::SECURITY_NOT_SATISFIED);
        };
        let Some(pin) = pin_digits(command.data).filter(|pin| Passcode::parse(pin).is_ok()) else {
            return status(sw::WRONG_DATA);
        };
        self.pin = pin;
        self.pin_tries = PIN_TRIES;
        self.session.verified = false;
        with_status(&receipt(&self.card_key, &challenge), sw::OK)
    }
}

/// A short command APDU, split into its parts.
struct Command<'a> {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: &'a [u8],
    le: Option<usize>,
}

impl<'a> Command<'a> {
    /// Cases 1–4 of ISO 7816-3 short APDUs; anything else is `None`.
    fn parse(apdu: &'a [u8]) -> Option<Self> {
        let (header, body) = apdu.split_at_checked(4)?;
        let (data, le) = match body {
            [] => (&[][..], None),
            [le] => (&[][..], Some(if *le == 0 { 256 } else { usize::from(*le) })),
            [lc, rest @ ..] if rest.len() == usize::from(*lc) => (rest, None),
            [lc, rest @ ..] if rest.len() == usize::from(*lc) + 1 => (
                &rest[..rest.len() - 1],
                Some(usize::from(rest[rest.len() - 1])),
            ),
            _ => return None,
        };
        Some(Self {
            cla: header[0],
            ins: header[1],
            p1: header[2],
            p2: header[3],
            data,
            le,
        })
    }
}

fn status(word: u16) -> Vec<u8> {
    word.to_be_bytes().to_vec()
}

fn with_status(data: &[u8], word: u16) -> Vec<u8> {
    [data, &word.to_be_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use unlock_protocol::card_profile::pin_block;

    use super::*;

    const MASTER: [u8; 16] = [
        0x35, 0xa4, 0x7d, 0x45, 0xd7, 0x58, 0x53, 0xe0, 0x26, 0x69, 0x5f, 0xff, 0xa1, 0x98, 0xb7,
        0x9d,
    ];
    const SERIAL: [u8; 8] = [0x2d, 0x6b, 0xdd, 0xb8, 0xad, 0x09, 0x6c, 0x2d];

    fn card() -> VirtualCard {
        let mut card = VirtualCard::new(SERIAL, &MASTER, "284759");
        assert_eq!(card.process(&select()), [0x90, 0x00]);
        card
    }

    fn select() -> Vec<u8> {
        [&[0x00, 0xA4, 0x04, 0x00, 0x08][..], &AID].concat()
    }

    fn verify(pin: &str) -> Vec<u8> {
        [
            &[0x00, 0x20, 0x00, 0x80, 0x08][..],
            &pin_block(pin).unwrap(),
        ]
        .concat()
    }

    fn challenge(card: &mut VirtualCard) -> [u8; 16] {
        let answer = card.process(&[0x00, 0x84, 0x00, 0x00, 0x10]);
        assert_eq!(answer[16..], [0x90, 0x00]);
        answer[..16].try_into().unwrap()
    }

    fn authenticate(cryptogram: &[u8; 16]) -> Vec<u8> {
        [&[0x00, 0x82, 0x00, 0x01, 0x10][..], cryptogram].concat()
    }

    fn unblock(pin: &str) -> Vec<u8> {
        [
            &[0x00, 0x2C, 0x02, 0x80, 0x08][..],
            &pin_block(pin).unwrap(),
        ]
        .concat()
    }

    fn right_cryptogram(challenge: &[u8; 16]) -> [u8; 16] {
        cryptogram(&card_key(&MASTER, &SERIAL), challenge, &SERIAL)
    }

    #[test]
    fn needs_its_application_selected_first() {
        let mut card = VirtualCard::new(SERIAL, &MASTER, "284759");
        assert_eq!(card.process(&[0x00, 0xCA, 0x00, 0x5A, 0x00]), [0x69, 0x85]);
        let wrong_aid = [0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00];
        assert_eq!(card.process(&wrong_aid), [0x6A, 0x82]);
        assert_eq!(card.process(&select()), [0x90, 0x00]);
        assert_eq!(
            card.process(&[0x00, 0xCA, 0x00, 0x5A, 0x00]),
            [&SERIAL[..], &[0x90, 0x00]].concat()
        );
    }

    #[test]
    fn three_wrong_passcodes_block_it() {
        let mut card = card();
        assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x80]), [0x63, 0xC3]);
        assert_eq!(card.process(&verify("111222")), [0x63, 0xC2]);
        assert_eq!(card.process(&verify("111222")), [0x63, 0xC1]);
        assert_eq!(card.process(&verify("111222")), [0x69, 0x83]);
        assert_eq!(
            card.process(&verify("284759")),
            [0x69, 0x83],
            "blocked, even for the right one"
        );
        assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x80]), [0x69, 0x83]);
    }

    #[test]
    fn the_right_cryptogram_unblocks_and_sets_a_new_passcode_with_a_receipt() {
        let mut card = card().with_pin_tries(0);
        let challenge = challenge(&mut card);
        assert_eq!(
            card.process(&authenticate(&right_cryptogram(&challenge))),
            [0x90, 0x00]
        );
        let answer = card.process(&unblock("905173"));
        assert_eq!(answer[16..], [0x90, 0x00]);
        assert_eq!(
            answer[..16],
            receipt(&card_key(&MASTER, &SERIAL), &challenge)
        );
        assert_eq!(
            card.counters(),
            Counters {
                pin_tries: 3,
                admin_tries: 10
            }
        );
        assert_eq!(card.process(&verify("905173")), [0x90, 0x00]);
        assert_eq!(card.process(&[0x00, 0x20, 0x00, 0x80]), [0x90, 0x00]);
    }

    #[test]
    fn a_wrong_cryptogram_is_refused_and_counted() {
        let mut card = card().with_pin_tries(0);
        let challenge = challenge(&mut card);
        let mut wrong = right_cryptogram(&challenge);
        wrong[0] ^= 1;
        assert_eq!(card.process(&authenticate(&wrong)), [0x69, 0x82]);
        assert_eq!(card.counters().admin_tries, 9);
        assert_eq!(
            card.process(&unblock("905173")),
            [0x69, 0x82],
            "no unblock without admin auth"
        );
        let blocked = card.clone().with_admin_tries(0);
        let mut blocked = blocked;
        let challenge = self::challenge(&mut blocked);
        assert_eq!(
            blocked.process(&authenticate(&right_cryptogram(&challenge))),
            [0x69, 0x83]
        );
    }

    #[test]
    fn a_challenge_is_consumed_by_the_next_command_and_by_reset() {
        let mut card = card();
        let first = challenge(&mut card);
        assert_eq!(
            card.process(&[0x00, 0xCA, 0x00, 0x5A, 0x00])[8..],
            [0x90, 0x00]
        );
        assert_eq!(
            card.process(&authenticate(&right_cryptogram(&first))),
            [0x69, 0x85]
        );

        let second = challenge(&mut card);
        assert_ne!(first, second, "challenges never repeat");
        card.reset();
        card.process(&select());
        assert_eq!(
            card.process(&authenticate(&right_cryptogram(&second))),
            [0x69, 0x85]
        );
    }

    #[test]
    fn admin_authentication_is_good_for_the_next_command_only() {
        let mut card = card().with_pin_tries(0);
        let challenge = challenge(&mut card);
        assert_eq!(
            card.process(&authenticate(&right_cryptogram(&challenge))),
            [0x90, 0x00]
        );
        card.process(&[0x00, 0xCA, 0x00, 0x5A, 0x00]);
        assert_eq!(card.process(&unblock("905173")), [0x69, 0x82]);
        assert_eq!(card.counters().pin_tries, 0);
    }

    #[test]
    fn a_new_passcode_must_meet_the_policy() {
        let mut card = card().with_pin_tries(0);
        for weak in ["123456", "111111", "12345"] {
            let challenge = challenge(&mut card);
            assert_eq!(
                card.process(&authenticate(&right_cryptogram(&challenge))),
                [0x90, 0x00]
            );
            assert_eq!(card.process(&unblock(weak)), [0x6A, 0x80], "{weak}");
        }
        assert_eq!(card.counters().pin_tries, 0);
    }

    #[test]
    fn malformed_commands_get_status_words_not_panics() {
        let mut card = card();
        for apdu in [
            &[][..],
            &[0x00],
            &[0x00, 0xA4, 0x04],
            &[0x80, 0xCA, 0x00, 0x5A, 0x00],
            &[0x00, 0x20, 0x00, 0x80, 0x08, 0x31],
            &[0x00, 0x99, 0x00, 0x00],
        ] {
            let answer = card.process(apdu);
            assert_eq!(answer.len(), 2, "{apdu:02x?}");
            assert_ne!(answer, [0x90, 0x00], "{apdu:02x?}");
        }
    }
}
