//! `/`: what the service does, and a check that the card reader can be reached and is empty.

use leptos::prelude::*;

use super::PageScope;
use crate::bridge::use_bridge;
use crate::components::{ContactRa, ErrorItem, ErrorSummary, Heading};
use crate::route::{HelpTopic, Page, Resume};
use crate::session::use_session;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    Checking,
    Ready,
    Failed(String),
}

#[component]
pub fn StartPage() -> impl IntoView {
    let scope = PageScope::new();
    let bridge = use_bridge();
    // A new journey starts here: nothing from an earlier one carries over.
    use_session().forget_all();
    let check = RwSignal::new(Check::Checking);

    scope.spawn(async move {
        match bridge.ensure_ready().await {
            Ok(()) => check.set(Check::Ready),
            Err(error) => match HelpTopic::for_bridge_error(error.code) {
                Some(topic) => scope.replace(Page::Help {
                    topic,
                    then: Resume::Start,
                }),
                None => check.set(Check::Failed(error.message)),
            },
        }
    });
    // The reader was unplugged while the page waited.
    Effect::new(move |_| {
        if check.get() == Check::Ready && bridge.readers.with(Vec::is_empty) {
            scope.replace(Page::Help {
                topic: HelpTopic::Reader,
                then: Resume::Start,
            });
        }
    });

    let card_in_reader = move || {
        bridge
            .readers
            .with(|list| list.iter().any(|r| r.card_present))
    };
    let errors = Signal::derive(move || match check.get() {
        Check::Failed(message) => vec![ErrorItem::general(message)],
        _ => Vec::new(),
    });

    view! {
        <ErrorSummary errors=errors />
        <Heading title="Unlock your smartcard" />
        <p class="nhsuk-body-l">
            "Use this service if your smartcard is locked, or if you have forgotten your passcode and want to choose a new one."
        </p>
        <p>"It takes about 2 minutes. You do not need to visit your Registration Authority."</p>
        <h2>"Who can use this service"</h2>
        <p>
            "You can use this service if you have a smartcard and your smartcard profile has your work email address or your mobile number."
        </p>
        <h2>"What you need"</h2>
        <ul class="nhsuk-list nhsuk-list--bullet">
            <li>"your smartcard"</li>
            <li>"a card reader connected to this computer"</li>
            <li>"access to your work email or mobile phone, to get a security code"</li>
        </ul>
        <p>
            "If you cannot get to your work email or mobile phone, contact your Registration Authority. They can check who you are over the phone and give you a one-time unlock code, or unlock your card in person."
        </p>
        <div aria-live="polite">
            {move || match check.get() {
                Check::Checking => view! { <p>"Checking your card reader…"</p> }.into_any(),
                Check::Ready if card_in_reader() => {
                    view! {
                        <div class="nhsuk-inset-text">
                            <p class="app-instruction">"Remove your smartcard from the reader"</p>
                            <p>
                                "This closes anything that is using your card. This page carries on by itself as soon as the reader is empty."
                            </p>
                        </div>
                    }
                        .into_any()
                }
                Check::Ready => {
                    view! {
                        <button
                            class="nhsuk-button"
                            type="button"
                            on:click=move |_| scope.go(Page::Email)
                        >
                            "Start now"
                        </button>
                    }
                        .into_any()
                }
                Check::Failed(_) => view! { <ContactRa /> }.into_any(),
            }}
        </div>
    }
}
