//! Card profiles: the APDU conversations the bridge knows, one per profile behind one trait.
//! A card is told to be of a profile by answering its SELECT; a challenge and a release name
//! their profile themselves. Each profile speaks through [`Transmit`], so its logic runs
//! against a PC/SC card or, in tests, a virtual card in the same process.

pub mod apdu;
pub mod piv;
pub mod unlock_cr;

use unlock_protocol::bridge::{BridgeError, CardInfo, CardState, ErrorCode, FULL_TRIES};
use unlock_protocol::card_steps::{CardChallenge, CardReceipt, CardRelease};
use unlock_protocol::{CardId, Passcode};

use crate::errors::fail;

pub use apdu::Transmit;
pub use piv::Piv1;
pub use unlock_cr::UnlockCr1;

/// Every profile this bridge speaks, in the order `read_card` tries them: the order of
/// `unlock_protocol::card_steps::PROFILES`.
pub static PROFILES: &[&dyn CardProfile] = &[&UnlockCr1, &Piv1];

/// How the card is kept between the challenge and the unblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Custody {
    /// Held exclusively from the challenge to the unblock: the card's answer is only good
    /// while nobody else speaks to it.
    Held,
    /// Let go after the challenge; the unblock is one transaction of its own.
    Released,
}

/// What the unblock leaves: the card's receipt and its passcode tries now left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unblocked {
    pub receipt: CardReceipt,
    pub tries_left: u8,
}

/// What the bridge needs from a card, whatever its profile. Every method but `select`
/// expects the profile's application selected.
pub trait CardProfile: Send + Sync {
    /// The profile's name, as `hello` and `read_card` report it.
    fn name(&self) -> &'static str;
    fn custody(&self) -> Custody;
    /// Selects the profile's application; [`ErrorCode::UnsupportedCard`] if the card has none.
    ///
    /// [`ErrorCode::UnsupportedCard`]: unlock_protocol::bridge::ErrorCode::UnsupportedCard
    fn select(&self, card: &dyn Transmit) -> Result<(), BridgeError>;
    /// The card's identity, as the page presents it to the server, and its passcode tries.
    fn read(&self, card: &dyn Transmit) -> Result<CardInfo, BridgeError>;
    /// The card's answer to the server's challenge, once it is checked to be the card the
    /// challenge names.
    fn answer(
        &self,
        card: &dyn Transmit,
        challenge: &CardChallenge,
    ) -> Result<unlock_protocol::card_steps::CardProof, BridgeError>;
    /// Unblocks the card with what the server released and sets `passcode`.
    fn unblock(
        &self,
        card: &dyn Transmit,
        release: &CardRelease,
        passcode: &Passcode,
    ) -> Result<Unblocked, BridgeError>;
    /// How the service names the card, read without its certificates.
    fn id(&self, card: &dyn Transmit) -> Result<CardId, BridgeError>;
    /// Passcode tries left; 0 when blocked.
    fn pin_tries(&self, card: &dyn Transmit) -> Result<u8, BridgeError>;
    /// VERIFY with `passcode`: whether the card takes it. A refusal spends one try.
    fn verify(&self, card: &dyn Transmit, passcode: &Passcode) -> Result<bool, BridgeError>;
}

/// Where an unblock cut short left `card`, which must be `expected`, and its passcode tries
/// now (`unlock_protocol::bridge::Command::CheckUnblock`): an unblock fills the counter, so
/// fewer than [`FULL_TRIES`] means untouched without asking; with a full counter, the new
/// passcode verifying means unblocked.
pub fn check_unblock(
    profile: &dyn CardProfile,
    card: &dyn Transmit,
    expected: &CardId,
    passcode: &Passcode,
) -> Result<(CardState, u8), BridgeError> {
    if profile.id(card)? != *expected {
        return Err(fail(ErrorCode::SerialMismatch));
    }
    let tries = profile.pin_tries(card)?;
    if tries < FULL_TRIES {
        return Ok((CardState::Untouched, tries));
    }
    if profile.verify(card, passcode)? {
        tracing::debug!("the card takes the new passcode: the unblock took");
        Ok((CardState::Unblocked, tries))
    } else {
        tracing::debug!("the card refuses the new passcode: the unblock never reached it");
        Ok((CardState::Untouched, profile.pin_tries(card)?))
    }
}

/// The profile a challenge is for.
pub fn for_challenge(challenge: &CardChallenge) -> &'static dyn CardProfile {
    match challenge {
        CardChallenge::UnlockCr { .. } => &UnlockCr1,
        CardChallenge::Piv { .. } => &Piv1,
    }
}

/// The profile a release is for.
pub fn for_release(release: &CardRelease) -> &'static dyn CardProfile {
    match release {
        CardRelease::UnlockCr { .. } => &UnlockCr1,
        CardRelease::Piv { .. } => &Piv1,
    }
}

/// The card a challenge names.
pub fn challenged_card(challenge: &CardChallenge) -> CardId {
    match challenge {
        CardChallenge::UnlockCr { serial } => serial.clone().into(),
        CardChallenge::Piv { guid, .. } => guid.clone().into(),
    }
}

/// The card a release is for.
pub fn released_card(release: &CardRelease) -> CardId {
    match release {
        CardRelease::UnlockCr { serial, .. } => serial.clone().into(),
        CardRelease::Piv { guid, .. } => guid.clone().into(),
    }
}

#[cfg(test)]
mod tests {
    use unlock_protocol::card_steps;

    use super::*;

    #[test]
    fn the_bridge_speaks_every_profile_in_the_protocol_order() {
        let names: Vec<&str> = PROFILES.iter().map(|profile| profile.name()).collect();
        assert_eq!(names, card_steps::PROFILES);
    }
}
