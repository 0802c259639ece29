//! `/end/<reason>`: the journey cannot go on, and what the holder can do instead.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use unlock_protocol::bridge::ErrorCode as BridgeCode;

use super::NotFoundPage;
use crate::components::Heading;
use crate::route::EndReason;
use crate::session::use_session;

/// What an end page says.
#[derive(Debug, PartialEq, Eq)]
pub struct Ending {
    pub title: &'static str,
    pub body: &'static str,
    /// Whether starting again could help.
    pub start_again: bool,
}

impl Ending {
    pub fn of(reason: EndReason) -> Self {
        let (title, body, start_again) = match reason {
            EndReason::Throttled => (
                "Too many attempts",
                "There have been too many attempts to use this service for your smartcard profile or from this computer, so it is paused for a while. Wait and try again later.",
                false,
            ),
            EndReason::TooManyCodes => (
                "You have asked for too many codes",
                "You can ask for up to 5 security codes an hour. Wait an hour and then start again.",
                false,
            ),
            EndReason::Expired => (
                "Your session has expired",
                "You did not finish in time, so nothing on your card has changed. Security codes last 15 minutes.",
                true,
            ),
            EndReason::TooManyAttempts => (
                "Your card could not be unlocked",
                "We tried to unlock your card too many times without success, so we have stopped to keep it safe.",
                false,
            ),
            EndReason::AdminKeyBlocked => (
                "Contact your Registration Authority",
                BridgeCode::AdminKeyBlocked.default_message(),
                false,
            ),
            EndReason::Closed => (
                "You have already finished",
                "This unlock has already finished. If your card is unlocked, log in with your new passcode. If you need to unlock it again, start again.",
                true,
            ),
            EndReason::ContactRa(reason) => (
                "Contact your Registration Authority",
                reason.message(),
                false,
            ),
        };
        Self {
            title,
            body,
            start_again,
        }
    }
}

#[component]
pub fn EndPage() -> impl IntoView {
    use_session().forget_all();
    let params = use_params_map();
    move || {
        let reason = params.with(|p| p.get("reason").as_deref().and_then(EndReason::from_name));
        match reason {
            Some(reason) => {
                let ending = Ending::of(reason);
                view! {
                    <Heading title=ending.title />
                    <p>{ending.body}</p>
                    {ending
                        .start_again
                        .then(|| {
                            view! {
                                <a class="nhsuk-button" href="/" rel="external">
                                    "Start again"
                                </a>
                            }
                        })}
                    <p>
                        "If you need help, contact your Registration Authority. They can unlock your card in person."
                    </p>
                }
                    .into_any()
            }
            None => view! { <NotFoundPage /> }.into_any(),
        }
    }
}

#[cfg(test)]
mod tests {
    use unlock_protocol::api::IneligibleReason;

    use super::*;

    #[test]
    fn end_pages_have_the_titles_the_holder_looks_for() {
        assert_eq!(Ending::of(EndReason::Throttled).title, "Too many attempts");
        let expired = Ending::of(EndReason::Expired);
        assert_eq!(expired.title, "Your session has expired");
        assert!(expired.start_again);
        let ra = Ending::of(EndReason::ContactRa(IneligibleReason::CardCancelled));
        assert_eq!(ra.title, "Contact your Registration Authority");
        assert_eq!(ra.body, IneligibleReason::CardCancelled.message());
    }
}
