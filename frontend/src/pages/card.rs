//! `/card`, step 3: wait for the card, read it through the bridge, and have the server check
//! it belongs to the holder and can be unlocked.

use leptos::prelude::*;
use unlock_protocol::api::JourneyView;
use unlock_protocol::bridge::BridgeError;

use super::{PageScope, end_or_show, journey_view};
use crate::api::{self, ApiFailure};
use crate::bridge::{card_went_away, reader_with_card, use_bridge};
use crate::components::{ContactRa, ErrorItem, ErrorSummary, Heading};
use crate::route::{HelpTopic, Page, Resume};
use crate::session::{HeldCard, Session, use_session};
use crate::wire::ReadCard;
use unlock_protocol::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Checking the journey and the bridge.
    Checking,
    /// Waiting for a card in a reader.
    Waiting,
    Reading,
    /// The card in `reader` can't be used; waiting for it to come out (or "Try again").
    Refused {
        reader: String,
    },
}

#[component]
pub fn CardPage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_session();
    let bridge = use_bridge();
    let step = RwSignal::new(Step::Checking);
    let errors = RwSignal::new(Vec::<ErrorItem>::new());

    let bridge_problem = move |error: BridgeError, reader: Option<String>| {
        if let Some(topic) = HelpTopic::for_bridge_error(error.code) {
            scope.replace(Page::Help {
                topic,
                then: Resume::Card,
            });
            return;
        }
        errors.set(vec![ErrorItem::general(error.message)]);
        step.set(match reader {
            Some(reader) => Step::Refused { reader },
            None => Step::Waiting,
        });
    };

    scope.spawn(async move {
        match journey_view(session).await {
            Ok(JourneyView::Verified { .. } | JourneyView::CardAccepted { .. }) => {}
            Ok(other) => return scope.replace(Page::for_view(&other)),
            Err(failure) => {
                if let Some(failure) = end_or_show(scope, failure) {
                    errors.set(vec![ErrorItem::general(failure.message)]);
                }
                return;
            }
        }
        match bridge.ensure_ready().await {
            Ok(()) => step.set(Step::Waiting),
            Err(error) => bridge_problem(error, None),
        }
    });

    let read = move |reader: String| {
        scope.spawn(async move {
            let card = match bridge.read_card(&reader).await {
                Ok(card) => card,
                Err(error) if card_went_away(error.code) => return step.set(Step::Waiting),
                Err(error) => return bridge_problem(error, Some(reader)),
            };
            match accept(session, &card).await {
                Ok(JourneyView::CardAccepted { .. }) => {
                    errors.set(Vec::new());
                    session.card.set(Some(HeldCard {
                        reader,
                        id: card.id,
                        identity: card.card,
                    }));
                    scope.go(Page::Passcode);
                }
                Ok(other) => scope.replace(Page::for_view(&other)),
                Err(failure) => {
                    if let Some(failure) = end_or_show(scope, failure) {
                        errors.set(vec![ErrorItem::general(failure.message)]);
                        step.set(Step::Refused { reader });
                    }
                }
            }
        });
    };

    // Reacts to cards going in and out of the readers.
    Effect::new(move |_| {
        let readers = bridge.readers.get();
        match step.get() {
            Step::Waiting | Step::Refused { .. } if readers.is_empty() => {
                scope.replace(Page::Help {
                    topic: HelpTopic::Reader,
                    then: Resume::Card,
                });
            }
            Step::Waiting => {
                if let Some(reader) = reader_with_card(&readers, None) {
                    step.set(Step::Reading);
                    read(reader);
                }
            }
            Step::Refused { reader } => {
                let still_in = readers.iter().any(|r| r.name == reader && r.card_present);
                if !still_in {
                    step.set(Step::Waiting);
                }
            }
            Step::Checking | Step::Reading => {}
        }
    });

    bridge.poll_readers_while(move || {
        matches!(step.get_untracked(), Step::Waiting | Step::Refused { .. })
    });

    let try_again = move |_| {
        errors.set(Vec::new());
        step.set(Step::Waiting);
    };

    view! {
        <ErrorSummary errors=errors />
        <Heading step=3 title="Insert your smartcard" />
        <p>"Put your smartcard into the card reader."</p>
        <p>"Leave it in the reader until this service tells you that your card is unlocked."</p>
        <div aria-live="polite">
            {move || match step.get() {
                Step::Checking => view! { <p>"Checking your card reader…"</p> }.into_any(),
                Step::Waiting => view! { <p>"Waiting for your smartcard…"</p> }.into_any(),
                Step::Reading => view! { <p>"Reading your smartcard…"</p> }.into_any(),
                Step::Refused { .. } => {
                    view! {
                        <p>
                            "Take the card out of the reader and put in your own smartcard, or select Try again."
                        </p>
                        <button class="nhsuk-button" type="button" on:click=try_again>
                            "Try again"
                        </button>
                        <ContactRa />
                    }
                        .into_any()
                }
            }}
        </div>
    }
}

/// Has the server accept the card, unless it already accepted this very card for this
/// journey (the holder reloaded the page after this step).
async fn accept(session: Session, card: &ReadCard) -> Result<JourneyView, ApiFailure> {
    let result = api::present_card(&card.card).await;
    match result {
        Ok((view, challenge)) => {
            session.keep_challenge(challenge);
            session.view.set(Some(view.clone()));
            Ok(view)
        }
        // The server's journey moved on (it expired, say): ask where it stands now.
        Err(failure) if failure.code == Some(ErrorCode::NotVerified) => {
            session.view.set(None);
            match journey_view(session).await? {
                JourneyView::Verified { .. } | JourneyView::CardAccepted { .. } => Err(failure),
                other => Ok(other),
            }
        }
        Err(failure) => Err(failure),
    }
}
