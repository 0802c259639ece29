//! The `unlock-cr/1` profile (DESIGN.md, "Card profile `unlock-cr/1`"): the card draws its own
//! challenge, which the server's cryptogram must answer before the card takes a new passcode.
//! The challenge is consumed by the next command of any kind, so the card is held exclusively
//! from the challenge to the unblock.

use unlock_protocol::bridge::{Block, BridgeError, CardInfo, ErrorCode};
use unlock_protocol::card_profile::{self, AID, BLOCK_LEN, SERIAL_LEN, ins, pin_block, sw};
use unlock_protocol::card_steps::{
    CardChallenge, CardIdentity, CardProof, CardReceipt, CardRelease,
};
use unlock_protocol::{CardId, CardSerial, Passcode};

use super::apdu::{Answer, Command, Transmit, send};
use super::{CardProfile, Custody, Unblocked};
use crate::errors::fail;

/// The `unlock-cr/1` profile.
#[derive(Debug, Clone, Copy)]
pub struct UnlockCr1;

impl CardProfile for UnlockCr1 {
    fn name(&self) -> &'static str {
        card_profile::PROFILE
    }

    fn custody(&self) -> Custody {
        Custody::Held
    }

    fn select(&self, card: &dyn Transmit) -> Result<(), BridgeError> {
        answers::selected(exchange(card, [0x00, ins::SELECT, 0x04, 0x00], &AID, None)?)
    }

    fn read(&self, card: &dyn Transmit) -> Result<CardInfo, BridgeError> {
        Ok(CardInfo {
            card: CardIdentity::UnlockCr {
                serial: serial(card)?,
            },
            tries_left: tries_left(card)?,
        })
    }

    /// Checks the card is the one the challenge names, then asks it for a challenge of its
    /// own.
    fn answer(
        &self,
        card: &dyn Transmit,
        challenge: &CardChallenge,
    ) -> Result<CardProof, BridgeError> {
        let CardChallenge::UnlockCr { serial: expected } = challenge else {
            return Err(fail(ErrorCode::BadRequest));
        };
        if serial(card)? != *expected {
            return Err(fail(ErrorCode::SerialMismatch));
        }
        let answer = exchange(
            card,
            [0x00, ins::GET_CHALLENGE, 0x00, 0x00],
            &[],
            Some(0x10),
        )?;
        Ok(CardProof::UnlockCr {
            challenge: answers::challenge(answer)?,
        })
    }

    /// Authenticates with the server's cryptogram and sets the new passcode; the card's
    /// receipt proves it.
    fn unblock(
        &self,
        card: &dyn Transmit,
        release: &CardRelease,
        passcode: &Passcode,
    ) -> Result<Unblocked, BridgeError> {
        let CardRelease::UnlockCr { cryptogram, .. } = release else {
            return Err(fail(ErrorCode::BadRequest));
        };
        let authenticate = [0x00, ins::EXTERNAL_AUTHENTICATE, 0x00, 0x01];
        answers::authenticated(exchange(card, authenticate, &cryptogram.0, None)?)?;
        let pin = pin_block(passcode.expose()).ok_or_else(|| fail(ErrorCode::PasscodeRejected))?;
        let reset = [0x00, ins::RESET_RETRY_COUNTER, 0x02, 0x80];
        let receipt = answers::receipt(exchange(card, reset, &pin, None)?)?;
        // The receipt proves the card took the new passcode and filled its counter: if the
        // card is pulled now, it is unblocked all the same, and the receipt must reach the
        // server rather than a removal the holder would retry for nothing.
        Ok(Unblocked {
            receipt: CardReceipt::UnlockCr { receipt },
            tries_left: tries_left(card).unwrap_or(card_profile::PIN_TRIES),
        })
    }

    fn id(&self, card: &dyn Transmit) -> Result<CardId, BridgeError> {
        serial(card).map(CardId::from)
    }

    fn pin_tries(&self, card: &dyn Transmit) -> Result<u8, BridgeError> {
        tries_left(card)
    }

    fn verify(&self, card: &dyn Transmit, passcode: &Passcode) -> Result<bool, BridgeError> {
        let pin = pin_block(passcode.expose()).ok_or_else(|| fail(ErrorCode::BadRequest))?;
        answers::verified(exchange(card, [0x00, ins::VERIFY, 0x00, 0x80], &pin, None)?)
    }
}

fn serial(card: &dyn Transmit) -> Result<CardSerial, BridgeError> {
    answers::serial(exchange(
        card,
        [0x00, ins::GET_DATA, 0x00, 0x5A],
        &[],
        Some(0x00),
    )?)
}

/// Passcode tries left; 0 when blocked.
fn tries_left(card: &dyn Transmit) -> Result<u8, BridgeError> {
    answers::tries_left(exchange(card, [0x00, ins::VERIFY, 0x00, 0x80], &[], None)?)
}

fn exchange(
    card: &dyn Transmit,
    header: [u8; 4],
    data: &[u8],
    le: Option<u8>,
) -> Result<Answer, BridgeError> {
    send(card, &Command { header, data, le })
}

/// What each of the card's answers (response data and status word) means.
mod answers {
    use super::*;

    pub use crate::profile::apdu::Answer;

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

    /// VERIFY with a passcode: taken, or refused (a try spent, or the card blocked).
    pub fn verified((_, word): Answer) -> Result<bool, BridgeError> {
        match word {
            sw::OK => Ok(true),
            sw::BLOCKED => Ok(false),
            word if word & 0xFFF0 == sw::TRIES_LEFT_BASE => Ok(false),
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

#[cfg(test)]
mod tests {
    use unlock_protocol::bridge::{Block, BridgeError, ErrorCode};

    use super::answers::*;

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
    fn verify_is_taken_on_9000_only() {
        assert!(verified((vec![], 0x9000)).unwrap());
        assert!(!verified((vec![], 0x63C2)).unwrap());
        assert!(!verified((vec![], 0x6983)).unwrap());
        assert_eq!(code(verified((vec![], 0x6D00))), ErrorCode::UnsupportedCard);
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
