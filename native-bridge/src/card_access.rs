//! Conversations with the card in a reader: reading it, and the two halves of an unblock
//! (the challenge, then — after the page has been to the server — the cryptogram).

use std::ffi::CString;

use unlock_protocol::bridge::{Block, BridgeError, CardInfo, ErrorCode};
use unlock_protocol::{CardSerial, Passcode};

use crate::errors::{fail, from_pcsc};
use crate::profile::CardProfile;

fn reader_name(reader: &str) -> Result<CString, BridgeError> {
    CString::new(reader).map_err(|_| fail(ErrorCode::BadRequest))
}

/// Leaves the card as it is: dropping a `pcsc::Card` would reset it.
fn leave(card: pcsc::Card) {
    let _ = card.disconnect(pcsc::Disposition::LeaveCard);
}

/// Profile, serial and passcode tries of the card in `reader`, sharing the card with others.
pub fn read_card(
    context: &pcsc::Context,
    reader: &str,
    profiles: &[&dyn CardProfile],
) -> Result<CardInfo, BridgeError> {
    let card = context
        .connect(
            &reader_name(reader)?,
            pcsc::ShareMode::Shared,
            pcsc::Protocols::ANY,
        )
        .map_err(from_pcsc)?;
    let result = read_with(&card, profiles);
    leave(card);
    result
}

fn read_with(card: &pcsc::Card, profiles: &[&dyn CardProfile]) -> Result<CardInfo, BridgeError> {
    let profile = profiles
        .iter()
        .find(|profile| profile.select(card).is_ok())
        .ok_or_else(|| fail(ErrorCode::UnsupportedCard))?;
    Ok(CardInfo {
        profile: profile.name().to_owned(),
        serial: profile.serial(card)?,
        tries_left: profile.tries_left(card)?,
    })
}

/// An unblock between its challenge and its cryptogram. It holds the card exclusively: the
/// challenge is consumed by the next command of any kind, so nobody else may speak to the
/// card meanwhile, and a removal or reset shows up as an error rather than a silent change.
pub struct Unblocking<'p> {
    card: pcsc::Card,
    profile: &'p dyn CardProfile,
}

impl std::fmt::Debug for Unblocking<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unblocking")
            .field("profile", &self.profile.name())
            .finish_non_exhaustive()
    }
}

/// Takes the card in `reader`, checks it is the one with `serial`, and asks it for a challenge.
pub fn start_unblock<'p>(
    context: &pcsc::Context,
    reader: &str,
    serial: &CardSerial,
    profile: &'p dyn CardProfile,
) -> Result<(Unblocking<'p>, Block), BridgeError> {
    let card = context
        .connect(
            &reader_name(reader)?,
            pcsc::ShareMode::Exclusive,
            pcsc::Protocols::ANY,
        )
        .map_err(from_pcsc)?;
    let challenge = (|| {
        profile.select(&card)?;
        if profile.serial(&card)? != *serial {
            return Err(fail(ErrorCode::SerialMismatch));
        }
        profile.challenge(&card)
    })();
    match challenge {
        Ok(challenge) => Ok((Unblocking { card, profile }, challenge)),
        Err(error) => {
            leave(card);
            Err(error)
        }
    }
}

impl Unblocking<'_> {
    /// Authenticates with the server's cryptogram and sets the new passcode; returns the
    /// card's receipt and the passcode tries now left. The card is released either way.
    pub fn finish(
        self,
        cryptogram: &Block,
        passcode: &Passcode,
    ) -> Result<(Block, u8), BridgeError> {
        let result = self
            .profile
            .unblock(&self.card, cryptogram, passcode)
            .and_then(|receipt| Ok((receipt, self.profile.tries_left(&self.card)?)));
        leave(self.card);
        result
    }
}
