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
        match transmit(
            card,
            &[&[0x00, ins::SELECT, 0x04, 0x00, 0x08][..], &AID].concat(),
        )? {
            (_, sw::OK) => Ok(()),
            _ => Err(fail(ErrorCode::UnsupportedCard)),
        }
    }

    fn serial(&self, card: &pcsc::Card) -> Result<CardSerial, BridgeError> {
        match transmit(card, &[0x00, ins::GET_DATA, 0x00, 0x5A, 0x00])? {
            (data, sw::OK) => <[u8; SERIAL_LEN]>::try_from(data.as_slice())
                .map(CardSerial::from_bytes)
                .map_err(|_| fail(ErrorCode::UnsupportedCard)),
            _ => Err(fail(ErrorCode::UnsupportedCard)),
        }
    }

    fn tries_left(&self, card: &pcsc::Card) -> Result<u8, BridgeError> {
        match transmit(card, &[0x00, ins::VERIFY, 0x00, 0x80])? {
            (_, sw::OK) => Ok(card_profile::PIN_TRIES),
            (_, sw::BLOCKED) => Ok(0),
            (_, word) if word & 0xFFF0 == sw::TRIES_LEFT_BASE => {
                Ok(u8::try_from(word & 0x000F).unwrap_or(0))
            }
            _ => Err(fail(ErrorCode::UnsupportedCard)),
        }
    }

    fn challenge(&self, card: &pcsc::Card) -> Result<Block, BridgeError> {
        match transmit(card, &[0x00, ins::GET_CHALLENGE, 0x00, 0x00, 0x10])? {
            (data, sw::OK) => <[u8; BLOCK_LEN]>::try_from(data.as_slice())
                .map(Block)
                .map_err(|_| fail(ErrorCode::UnsupportedCard)),
            _ => Err(fail(ErrorCode::UnsupportedCard)),
        }
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
        match transmit(card, &authenticate)?.1 {
            sw::OK => {}
            sw::SECURITY_NOT_SATISFIED => return Err(fail(ErrorCode::WrongCryptogram)),
            sw::BLOCKED => return Err(fail(ErrorCode::AdminKeyBlocked)),
            // The challenge is gone: something reset or spoke to the card in between.
            sw::CONDITIONS_NOT_SATISFIED => return Err(fail(ErrorCode::CardReset)),
            _ => return Err(fail(ErrorCode::UnsupportedCard)),
        }
        let pin = pin_block(passcode.expose()).ok_or_else(|| fail(ErrorCode::PasscodeRejected))?;
        let reset = [
            &[0x00, ins::RESET_RETRY_COUNTER, 0x02, 0x80, 0x08][..],
            &pin,
        ]
        .concat();
        match transmit(card, &reset)? {
            (data, sw::OK) => <[u8; BLOCK_LEN]>::try_from(data.as_slice())
                .map(Block)
                .map_err(|_| fail(ErrorCode::UnsupportedCard)),
            (_, sw::WRONG_DATA) => Err(fail(ErrorCode::PasscodeRejected)),
            _ => Err(fail(ErrorCode::Internal)),
        }
    }
}

/// A command that failed half-way usually means the card left the reader before the service
/// noticed: ask the reader, for up to a second, so the page can say "card removed".
fn after_lost_contact(card: &pcsc::Card) -> BridgeError {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match card.status2_owned() {
            Err(error) => return from_pcsc(error),
            Ok(status) if !status.status().contains(pcsc::Status::PRESENT) => {
                return fail(ErrorCode::CardRemoved);
            }
            Ok(_) if Instant::now() >= deadline => return fail(ErrorCode::Internal),
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
            pcsc::Error::NotTransacted | pcsc::Error::CommError => after_lost_contact(card),
            error => from_pcsc(error),
        })?;
    match response {
        [data @ .., high, low] => Ok((data.to_vec(), u16::from_be_bytes([*high, *low]))),
        _ => Err(fail(ErrorCode::UnsupportedCard)),
    }
}
