//! `/passcode`, step 4: the new passcode, typed twice. It stays in this page's memory, on its
//! way to the card; the server never sees it.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use unlock_protocol::Passcode;
use unlock_protocol::api::JourneyView;

use super::{PageScope, end_or_show, journey_view};
use crate::components::{ErrorItem, ErrorSummary, Heading, TextField};
use crate::route::Page;
use crate::session::{use_session, wipe_field, wipe_passcode};

const NEW: &str = "new-passcode";
const CONFIRM: &str = "confirm-passcode";

/// What the confirmation field says about the two passcodes typed.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmation {
    Missing,
    Mismatch,
    Matches,
}

impl Confirmation {
    pub fn of(new: &str, confirm: &str) -> Self {
        if confirm.is_empty() {
            Self::Missing
        } else if new == confirm {
            Self::Matches
        } else {
            Self::Mismatch
        }
    }

    fn message(&self) -> Option<&'static str> {
        match self {
            Self::Missing => Some("Confirm your new passcode"),
            Self::Mismatch => Some("The passcodes do not match"),
            Self::Matches => None,
        }
    }
}

#[component]
pub fn PasscodePage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_session();
    let new = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let new_error = RwSignal::new(None::<String>);
    let confirm_error = RwSignal::new(None::<String>);
    on_cleanup(move || {
        wipe_field(new);
        wipe_field(confirm);
    });

    // Without an accepted card in this page's memory (after a reload, say), the card
    // has to be read again first.
    if session.card.with_untracked(Option::is_none) {
        scope.spawn(async move {
            match journey_view(session).await {
                Ok(JourneyView::Verified { .. } | JourneyView::CardAccepted { .. }) => {
                    scope.replace(Page::Card);
                }
                Ok(other) => scope.replace(Page::for_view(&other)),
                // The card page shows what went wrong.
                Err(failure) => {
                    if end_or_show(scope, failure).is_some() {
                        scope.replace(Page::Card);
                    }
                }
            }
        });
    }

    let errors = Signal::derive(move || {
        let new = new_error
            .get()
            .map(|message| ErrorItem::field(NEW, message));
        let confirm = confirm_error
            .get()
            .map(|message| ErrorItem::field(CONFIRM, message));
        new.into_iter().chain(confirm).collect::<Vec<_>>()
    });

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        new_error.set(None);
        confirm_error.set(None);
        let parsed = new.with_untracked(|typed| Passcode::parse(typed));
        let confirmation = new
            .with_untracked(|typed| confirm.with_untracked(|again| Confirmation::of(typed, again)));
        match (parsed, confirmation.message()) {
            (Ok(passcode), None) => {
                session.keep_passcode(passcode);
                wipe_field(new);
                wipe_field(confirm);
                scope.go(Page::Working);
            }
            (parsed, mismatch) => {
                match parsed {
                    Ok(passcode) => wipe_passcode(passcode),
                    Err(error) => new_error.set(Some(error.to_string())),
                }
                confirm_error.set(mismatch.map(str::to_owned));
                // Passwords are typed again after an error, never shown back.
                wipe_field(new);
                wipe_field(confirm);
            }
        }
    };

    view! {
        <ErrorSummary errors=errors />
        <Heading step=4 title="Choose a new passcode" />
        <p>"You will use this passcode to log in with your smartcard."</p>
        <p>"Your new passcode must:"</p>
        <ul class="nhsuk-list nhsuk-list--bullet">
            <li>"be 6 to 8 digits, using only the numbers 0 to 9"</li>
            <li>"not be the same digit repeated, like 111111"</li>
            <li>"not be digits in order, like 123456 or 654321"</li>
            <li>"not be easy to guess, like 121212"</li>
        </ul>
        <p>
            "Your passcode goes from this page straight to your card. It is never sent to the unlock service or stored."
        </p>
        <form novalidate on:submit=submit>
            <TextField
                id=NEW
                label="New passcode"
                value=new
                error=new_error
                input_type="password"
                autocomplete="new-password"
                inputmode="numeric"
                width="nhsuk-input--width-10"
            />
            <TextField
                id=CONFIRM
                label="Confirm new passcode"
                value=confirm
                error=confirm_error
                input_type="password"
                autocomplete="new-password"
                inputmode="numeric"
                width="nhsuk-input--width-10"
            />
            <button class="nhsuk-button" type="submit">
                "Unlock my card"
            </button>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use unlock_protocol::PasscodeError;

    use super::*;

    #[test]
    fn the_confirmation_must_be_typed_and_match() {
        assert_eq!(Confirmation::of("284759", ""), Confirmation::Missing);
        assert_eq!(Confirmation::of("284759", "284758"), Confirmation::Mismatch);
        assert_eq!(Confirmation::of("284759", "284759"), Confirmation::Matches);
        assert_eq!(
            Confirmation::Mismatch.message(),
            Some("The passcodes do not match")
        );
    }

    #[test]
    fn the_page_refuses_what_the_card_policy_refuses() {
        // The page checks with the protocol crate's own parser, the one the bridge uses.
        assert_eq!(Passcode::parse("111111"), Err(PasscodeError::Repeated));
        assert_eq!(Passcode::parse("123456"), Err(PasscodeError::Sequence));
        assert_eq!(Passcode::parse("12345"), Err(PasscodeError::Length));
        assert!(Passcode::parse("284759").is_ok());
    }
}
