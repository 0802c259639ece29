//! Card profiles: the APDU conversations the bridge knows. `unlock-cr/1` now; `piv/1` can
//! follow behind the same trait.

use std::time::{Duration, Instant};

use unlock_protocol::bridge::{Block, BridgeError, ErrorCode};
use unlock_protocol::card_profile::{self, AID, BLOCK_LEN, SERIAL_LEN, ins, pin_block, sw};
use unlock_protocol::{CardSerial, Passcode};

use crate::errors::{fail, from_pcsc};

/// What the bridge needs from a card, whatever its profile.
pub trait CardProfile: Send + Sync {
    /// The profile's name, as `hello` and `read_card` report it.
    fn name(&self) -> &'static str;
    /// Selects the profile's application; [`ErrorCode::UnsupportedCard`] if the card has none.
    fn select(&self, card: &pcsc::Card) -> Result<(), BridgeError>;
    fn serial(&self, card: &pcsc::Card) -> Result<CardSerial, BridgeError>;
    /// Passcode tries left; 0 when blocked.
    fn tries_left(&self, card: &pcsc::Card) -> Result<u8, BridgeError>;
    fn challenge(&self, card: &pcsc::Card) -> Result<Block, BridgeError>;
    /// Authenticates with `cryptogram` and sets `passcode`; returns the card's receipt.
    fn unblock(
        &self,
        card: &pcsc::Card,
        cryptogram: &Block,
        passcode: &Passcode,
    ) -> Result<Block, BridgeError>;
}

/// The `unlock-cr/1` profile (DESIGN.md, "Card profile").
#[derive(Debug, Clone, Copy)]
pub struct UnlockCr1;

impl CardProfile for UnlockCr1 {
    fn name(&self) -> &'static str {
        card_profile::PROFILE
    }

    fn select(&self, card: &pcsc::Card) -> Result<(), BridgeError> {
        let select = [&[0x00, ins::SELECT, 0x04, 0x00, 0x08][..], &AID].concat();
        answers::selected(transmit(card, &select)?)
    }

    fn serial(&self, card: &pcsc::Card) -> Result<CardSerial, BridgeError> {
        answers::serial(transmit(card, &[0x00, ins::GET_DATA, 0x00, 0x5A, 0x00])?)
    }

    fn tries_left(&self, card: &pcsc::Card) -> Result<u8, BridgeError> {
        answers::tries_left(transmit(card, &[0x00, ins::VERIFY, 0x00, 0x80])?)
    }

    fn challenge(&self, card: &pcsc::Card) -> Result<Block, BridgeError> {
        answers::challenge(transmit(
            card,
            &[0x00, ins::GET_CHALLENGE, 0x00, 0x00, 0x10],
        )?)
    }

    fn unblock(
        &self,
        card: &pcsc::Card,
        cryptogram: &Block,
        passcode: &Passcode,
    ) -> Result<Block, BridgeError> {
        let authenticate = [
            &[0x00, ins::EXTERNAL_AUTHENTICATE, 0x00, 0x01, 0x10][..],
            &cryptogram.0,
        ]
        .concat();
        answers::authenticated(transmit(card, &authenticate)?)?;
        let pin = pin_block(passcode.expose()).ok_or_else(|| fail(ErrorCode::PasscodeRejected))?;
        let reset = [
            &[0x00, ins::RESET_RETRY_COUNTER, 0x02, 0x80, 0x08][..],
            &pin,
        ]
        .concat();
        answers::receipt(transmit(card, &reset)?)
    }
}

/// What each of the card's answers (response data and status word) means.
mod answers {
    use super::*;

    pub type Answer = (Vec<u8>, u16);

    pub fn selected((_, word): Answer) -> Result<(), BridgeError> {
        match word {
            sw::OK => Ok(()),
            _ => Err(fail(ErrorCode::UnsupportedCard)),
        }
    }

    pub fn serial((data, word): Answer) -> Result<CardSerial, BridgeError> {
        match word {
            sw::OK => <[u8; SERIAL_LEN]>::try_from(data.as_slice())
                .map(CardSerial::from_bytes)
                .map_err(|_| fail(ErrorCode::UnsupportedCard)),
            _ => Err(fail(ErrorCode::UnsupportedCard)),
        }
    }

    pub fn tries_left((_, word): Answer) -> Result<u8, BridgeError> {
        match word {
            sw::OK => Ok(card_profile::PIN_TRIES),
            sw::BLOCKED => Ok(0),
            word if word & 0xFFF0 == sw::TRIES_LEFT_BASE => {
                Ok(u8::try_from(word & 0x000F).unwrap_or(0))
            }
            _ => Err(fail(ErrorCode::UnsupportedCard)),
        }
    }

    pub fn challenge((data, word): Answer) -> Result<Block, BridgeError> {
        block(data, word)
    }

    pub fn authenticated((_, word): Answer) -> Result<(), BridgeError> {
        match word {
            sw::OK => Ok(()),
            sw::SECURITY_NOT_SATISFIED => Err(fail(ErrorCode::WrongCryptogram)),
            sw::BLOCKED => Err(fail(ErrorCode::AdminKeyBlocked)),
            // The challenge is gone: something reset or spoke to the card in between.
            sw::CONDITIONS_NOT_SATISFIED => Err(fail(ErrorCode::CardReset)),
            _ => Err(fail(ErrorCode::UnsupportedCard)),
        }
    }

    pub fn receipt((data, word): Answer) -> Result<Block, BridgeError> {
        match word {
            sw::WRONG_DATA => Err(fail(ErrorCode::PasscodeRejected)),
            // The authentication just made no longer counts: the card was reset in between.
            sw::SECURITY_NOT_SATISFIED => Err(fail(ErrorCode::CardReset)),
            word => block(data, word),
        }
    }

    fn block(data: Vec<u8>, word: u16) -> Result<Block, BridgeError> {
        match word {
            sw::OK => <[u8; BLOCK_LEN]>::try_from(data.as_slice())
                .map(Block)
                .map_err(|_| fail(ErrorCode::UnsupportedCard)),
            _ => Err(fail(ErrorCode::UnsupportedCard)),
        }
    }
}

/// A command that failed half-way (or came back without a status word) usually means the card
/// left the reader before the service noticed: ask the reader, for up to a second, so the
/// page can say "card removed"; if the card is still there, the failure is `otherwise`.
fn after_lost_contact(card: &pcsc::Card, otherwise: ErrorCode) -> BridgeError {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match card.status2_owned() {
            Err(error) => return from_pcsc(error),
            Ok(status) if !status.status().contains(pcsc::Status::PRESENT) => {
                return fail(ErrorCode::CardRemoved);
            }
            Ok(_) if Instant::now() >= deadline => return fail(otherwise),
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Sends one APDU; returns the response data and status word. APDUs may carry a passcode,
/// so nothing here logs them.
fn transmit(card: &pcsc::Card, apdu: &[u8]) -> Result<(Vec<u8>, u16), BridgeError> {
    let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
    let response = card
        .transmit(apdu, &mut buffer)
        .map_err(|error| match error {
            pcsc::Error::NotTransacted | pcsc::Error::CommError => {
                after_lost_contact(card, ErrorCode::Internal)
            }
            error => from_pcsc(error),
        })?;
    match response {
        [data @ .., high, low] => Ok((data.to_vec(), u16::from_be_bytes([*high, *low]))),
        _ => Err(after_lost_contact(card, ErrorCode::UnsupportedCard)),
    }
}

#[cfg(test)]
mod tests {
    use super::answers::*;
    use super::*;

    fn code<T: std::fmt::Debug>(result: Result<T, BridgeError>) -> ErrorCode {
        result.unwrap_err().code
    }

    #[test]
    fn tries_left_reads_63cx_blocked_and_verified() {
        assert_eq!(tries_left((vec![], 0x63C2)).unwrap(), 2);
        assert_eq!(tries_left((vec![], 0x63C0)).unwrap(), 0);
        assert_eq!(tries_left((vec![], 0x6983)).unwrap(), 0);
        assert_eq!(tries_left((vec![], 0x9000)).unwrap(), 3);
        assert_eq!(
            code(tries_left((vec![], 0x6D00))),
            ErrorCode::UnsupportedCard
        );
    }

    #[test]
    fn each_authentication_refusal_has_its_own_code() {
        assert!(authenticated((vec![], 0x9000)).is_ok());
        assert_eq!(
            code(authenticated((vec![], 0x6982))),
            ErrorCode::WrongCryptogram
        );
        assert_eq!(
            code(authenticated((vec![], 0x6983))),
            ErrorCode::AdminKeyBlocked
        );
        assert_eq!(code(authenticated((vec![], 0x6985))), ErrorCode::CardReset);
        assert_eq!(
            code(authenticated((vec![], 0x6F00))),
            ErrorCode::UnsupportedCard
        );
    }

    #[test]
    fn the_receipt_needs_sixteen_bytes_and_a_passcode_the_card_accepts() {
        assert_eq!(receipt((vec![7; 16], 0x9000)).unwrap(), Block([7; 16]));
        assert_eq!(
            code(receipt((vec![7; 15], 0x9000))),
            ErrorCode::UnsupportedCard
        );
        assert_eq!(code(receipt((vec![], 0x6A80))), ErrorCode::PasscodeRejected);
        assert_eq!(code(receipt((vec![], 0x6982))), ErrorCode::CardReset);
    }

    #[test]
    fn select_serial_and_challenge_want_ok_and_the_right_length() {
        assert!(selected((vec![], 0x9000)).is_ok());
        assert_eq!(code(selected((vec![], 0x6A82))), ErrorCode::UnsupportedCard);
        assert_eq!(
            serial((vec![0xAC, 0x4D, 0x0E, 0xD9, 0x9F, 0x03, 0x3E, 0x05], 0x9000))
                .unwrap()
                .as_str(),
            "ac4d0ed99f033e05"
        );
        assert_eq!(
            code(serial((vec![1, 2, 3], 0x9000))),
            ErrorCode::UnsupportedCard
        );
        assert_eq!(challenge((vec![9; 16], 0x9000)).unwrap(), Block([9; 16]));
        assert_eq!(
            code(challenge((vec![9; 16], 0x6985))),
            ErrorCode::UnsupportedCard
        );
    }
}
