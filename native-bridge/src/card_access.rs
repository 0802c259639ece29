//! Conversations with the card in a reader: reading it, its answer to the server's challenge,
//! and the unblock with what the server released. Each runs in one PC/SC transaction, so no
//! other program speaks to the card in between; a profile whose card must be held from the
//! challenge to the unblock gets it held exclusively.

use std::ffi::CString;

use unlock_protocol::bridge::{BridgeError, CardInfo, CardState, ErrorCode};
use unlock_protocol::card_steps::{CardChallenge, CardProof, CardRelease};
use unlock_protocol::{CardId, Passcode};

use crate::errors::{fail, from_pcsc};
use crate::profile::{CardProfile, Custody, Transmit, Unblocked};

fn connect(
    context: &pcsc::Context,
    reader: &str,
    mode: pcsc::ShareMode,
) -> Result<pcsc::Card, BridgeError> {
    let reader = CString::new(reader).map_err(|_| fail(ErrorCode::BadRequest))?;
    context
        .connect(&reader, mode, pcsc::Protocols::ANY)
        .map_err(from_pcsc)
}

/// Leaves the card as it is: dropping a `pcsc::Card` would reset it.
fn leave(card: pcsc::Card) {
    let _ = card.disconnect(pcsc::Disposition::LeaveCard);
}

/// Runs `work` on the card in `reader`, shared with other programs but in one transaction,
/// and lets go of the card however it ends.
fn in_transaction<T>(
    context: &pcsc::Context,
    reader: &str,
    work: impl FnOnce(&dyn Transmit) -> Result<T, BridgeError>,
) -> Result<T, BridgeError> {
    in_transaction_ending(context, reader, pcsc::Disposition::LeaveCard, work)
}

/// [`in_transaction`], leaving the card as `ending` says when the transaction ends.
fn in_transaction_ending<T>(
    context: &pcsc::Context,
    reader: &str,
    ending: pcsc::Disposition,
    work: impl FnOnce(&dyn Transmit) -> Result<T, BridgeError>,
) -> Result<T, BridgeError> {
    let mut card = connect(context, reader, pcsc::ShareMode::Shared)?;
    let result = match card.transaction() {
        Ok(transaction) => {
            let result = work(&*transaction);
            // The card may be gone; there is nothing more to do about it here.
            let _ = transaction.end(ending);
            result
        }
        Err(error) => Err(from_pcsc(error)),
    };
    leave(card);
    result
}

/// Profile, identity and passcode tries of the card in `reader`: the first of `profiles`
/// whose application the card selects.
pub fn read_card(
    context: &pcsc::Context,
    reader: &str,
    profiles: &[&dyn CardProfile],
) -> Result<CardInfo, BridgeError> {
    in_transaction(context, reader, |card| selected(card, profiles)?.read(card))
}

/// Where an unblock cut short left the card in `reader`, which must be `expected`, and its
/// passcode tries now: see [`crate::profile::check_unblock`]. The card is reset at the end,
/// so a passcode it took does not leave it unlocked for other programs.
pub fn check_unblock(
    context: &pcsc::Context,
    reader: &str,
    profiles: &[&dyn CardProfile],
    expected: &CardId,
    passcode: &Passcode,
) -> Result<(CardState, u8), BridgeError> {
    in_transaction_ending(context, reader, pcsc::Disposition::ResetCard, |card| {
        crate::profile::check_unblock(selected(card, profiles)?, card, expected, passcode)
    })
}

/// The first of `profiles` whose application `card` selects.
fn selected<'p>(
    card: &dyn Transmit,
    profiles: &[&'p dyn CardProfile],
) -> Result<&'p dyn CardProfile, BridgeError> {
    for profile in profiles {
        match profile.select(card) {
            Ok(()) => return Ok(*profile),
            Err(error) if error.code == ErrorCode::UnsupportedCard => continue,
            Err(error) => return Err(error),
        }
    }
    Err(fail(ErrorCode::UnsupportedCard))
}

/// A card held exclusively between its challenge and the unblock (see [`Custody::Held`]): a
/// removal or reset meanwhile shows up as an error rather than a silent change.
/// Let go of (never reset) when dropped.
pub struct Held {
    card: Option<pcsc::Card>,
    profile: &'static dyn CardProfile,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("profile", &self.profile.name())
            .finish_non_exhaustive()
    }
}

impl Held {
    /// Unblocks the held card with `release` and sets `passcode`; the card is let go either
    /// way.
    pub fn unblock(
        mut self,
        release: &CardRelease,
        passcode: &Passcode,
    ) -> Result<Unblocked, BridgeError> {
        let card = self.card.take().ok_or_else(|| fail(ErrorCode::Internal))?;
        let result = self.profile.unblock(&card, release, passcode);
        leave(card);
        result
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            leave(card);
        }
    }
}

/// The answer of the card in `reader` to `challenge`, after checking it is the card the
/// challenge names; with the card still held if the profile needs it held until the unblock.
pub fn answer_challenge(
    context: &pcsc::Context,
    reader: &str,
    profile: &'static dyn CardProfile,
    challenge: &CardChallenge,
) -> Result<(CardProof, Option<Held>), BridgeError> {
    let answer = |card: &dyn Transmit| {
        profile.select(card)?;
        profile.answer(card, challenge)
    };
    match profile.custody() {
        Custody::Released => in_transaction(context, reader, answer).map(|proof| (proof, None)),
        Custody::Held => {
            let card = connect(context, reader, pcsc::ShareMode::Exclusive)?;
            match answer(&card) {
                Ok(proof) => Ok((
                    proof,
                    Some(Held {
                        card: Some(card),
                        profile,
                    }),
                )),
                Err(error) => {
                    leave(card);
                    Err(error)
                }
            }
        }
    }
}

/// Unblocks the card in `reader` with `release` and sets `passcode`, in one transaction,
/// after selecting the profile's application (the profile re-checks the card's identity).
pub fn unblock(
    context: &pcsc::Context,
    reader: &str,
    profile: &'static dyn CardProfile,
    release: &CardRelease,
    passcode: &Passcode,
) -> Result<Unblocked, BridgeError> {
    in_transaction(context, reader, |card| {
        profile.select(card)?;
        profile.unblock(card, release, passcode)
    })
}
