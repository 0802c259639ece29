//! What the page remembers between its pages. The journey itself lives on the server (bound
//! to the browser by a cookie); the page only keeps what the server must never see or cannot
//! know: which reader holds the card, and the new passcode on its way to the card.

use leptos::prelude::*;
use unlock_protocol::api::JourneyView;
use unlock_protocol::{CardId, Passcode};
use zeroize::Zeroize;

use crate::wire::Carried;

/// The page's memory of this journey, shared through the context.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// Where the server last said the journey stands.
    pub view: RwSignal<Option<JourneyView>>,
    /// The card the server accepted, and the reader it is in.
    pub card: RwSignal<Option<HeldCard>>,
    /// What the server last asked of the accepted card; spent by the card's answer.
    challenge: StoredValue<Option<Carried>>,
    /// The new passcode, between the passcode page and the card. Not a signal: nothing
    /// renders it.
    passcode: StoredValue<Option<Passcode>>,
}

/// A card the server accepted for this journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCard {
    pub reader: String,
    pub id: CardId,
    /// Its identity as the bridge read it, to present again.
    pub identity: Carried,
}

/// The session shared through the context.
pub fn use_session() -> Session {
    expect_context()
}

impl Session {
    pub fn new() -> Self {
        Self {
            view: RwSignal::new(None),
            card: RwSignal::new(None),
            challenge: StoredValue::new(None),
            passcode: StoredValue::new(None),
        }
    }

    /// Keeps the new passcode until the card has it, replacing (and wiping) any earlier one.
    pub fn keep_passcode(&self, passcode: Passcode) {
        let earlier = self
            .passcode
            .try_update_value(|kept| kept.replace(passcode));
        if let Some(Some(earlier)) = earlier {
            wipe_passcode(earlier);
        }
    }

    /// Keeps the server's challenge for the accepted card until the card answers it.
    pub fn keep_challenge(&self, challenge: Option<Carried>) {
        self.challenge.set_value(challenge);
    }

    /// The server's challenge, if one is waiting for the card: it is answered once.
    pub fn take_challenge(&self) -> Option<Carried> {
        self.challenge.try_update_value(Option::take).flatten()
    }

    /// Whether a passcode is waiting for the card.
    pub fn has_passcode(&self) -> bool {
        self.passcode
            .try_with_value(Option::is_some)
            .unwrap_or(false)
    }

    /// Runs `use_it` with the kept passcode, without copying it out.
    pub fn with_passcode<T>(&self, use_it: impl FnOnce(&Passcode) -> T) -> Option<T> {
        self.passcode
            .try_with_value(|kept| kept.as_ref().map(use_it))
            .flatten()
    }

    /// Wipes the kept passcode: once the card has it, or when the holder leaves.
    pub fn forget_passcode(&self) {
        if let Some(Some(passcode)) = self.passcode.try_update_value(Option::take) {
            wipe_passcode(passcode);
        }
    }

    /// Forgets everything, at the end of a journey.
    pub fn forget_all(&self) {
        self.forget_passcode();
        self.keep_challenge(None);
        self.card.set(None);
    }
}

/// Overwrites a passcode's digits before its memory is given back.
pub fn wipe_passcode(passcode: Passcode) {
    let mut digits = String::from(passcode);
    digits.zeroize();
}

/// Overwrites what was typed into a field.
pub fn wipe_field(field: RwSignal<String>) {
    field.try_update(Zeroize::zeroize);
}
