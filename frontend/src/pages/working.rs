//! `/working`, step 5: the server's challenge goes to the card, the card's proof to the
//! server, what the server releases and the new passcode to the card, and the card's receipt
//! back to the server. The page carries each of these as it is, whatever the card's profile.

use std::time::Duration;

use gloo_timers::future::sleep;
use leptos::prelude::*;
use unlock_protocol::Passcode;
use unlock_protocol::api::{IneligibleReason, JourneyView};
use unlock_protocol::bridge::{BridgeError, CardState, ErrorCode};

use super::{PageScope, end_or_show, journey_view};
use crate::api::{self, ApiFailure};
use crate::bridge::{Bridge, card_went_away, reader_with_card, use_bridge};
use crate::components::{ContactRa, ErrorItem, ErrorSummary, Heading};
use crate::route::{EndReason, HelpTopic, Page, Resume};
use crate::session::{HeldCard, Session, use_session, wipe_passcode};
use crate::wire::Carried;

/// Shown when the card left the reader (or was reset) before anything on it changed.
pub const CARD_REMOVED: &str = "Your card was removed before anything on it was changed. Put \
                                it back in the reader and try again.";
/// Shown when the card left the reader (or was reset) while it was being unblocked: whether
/// it was is checked once it is back.
pub const CARD_REMOVED_WHILE_SETTING: &str = "Your card was removed while we were setting your \
                                              new passcode.";
/// The same, when another program reset the card (it may still be in the reader).
pub const CARD_RESET_WHILE_SETTING: &str = "Another program reset your card while we were \
                                            setting your new passcode.";
/// Shown when whether the unblock took could not be checked; the retry is safe either way.
pub const CARD_NOT_CHECKED: &str = "We could not check your card. Make sure it is in the \
                                    reader and try again.";
/// How many times a check finding the card gone again is repeated before giving up.
const MAX_CHECKS: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Running(Progress),
    /// "Try again" was pressed with no card in the reader.
    WaitingForCard,
    /// The card left during the unblock: once it is back, the bridge is asked whether the
    /// unblock took.
    CardLeft,
    Checking,
    /// The bridge's answer, which the page tells the holder; "Try again" (or "Finish")
    /// starts again from a fresh challenge either way, and for an unblocked card gets the
    /// receipt the service still needs.
    Checked {
        state: CardState,
        tries_left: u8,
    },
    /// Stopped; "Try again" starts again from a fresh challenge.
    Stopped,
    /// The card refused the new passcode; another must be chosen.
    PasscodeRefused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Preparing,
    Asking,
    Setting,
    Finishing,
}

impl Progress {
    fn sentence(self) -> &'static str {
        match self {
            Self::Preparing => "Getting your card ready…",
            Self::Asking => "Checking your card with the unlock service…",
            Self::Setting => "Setting your new passcode on the card…",
            Self::Finishing => "Finishing off…",
        }
    }
}

/// Why an unlock run stopped.
enum Stop {
    /// Before anything was sent to change the card.
    Bridge(BridgeError),
    /// In the unblock, which may or may not have taken.
    Unblock(BridgeError),
    Api(ApiFailure),
    /// The page no longer holds the card or the passcode.
    Forgotten,
}

#[component]
pub fn WorkingPage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_session();
    let bridge = use_bridge();
    let step = RwSignal::new(Step::Running(Progress::Preparing));
    let errors = RwSignal::new(Vec::<ErrorItem>::new());
    // The card's receipt, kept in case sending it to the server has to be tried again.
    let receipt = StoredValue::new(None::<Carried>);
    // Checks of a card back after the unblock was cut short that found it gone again.
    let checks = StoredValue::new(0_u32);
    // Leaving the page forgets the passcode; coming back means choosing it again.
    on_cleanup(move || session.forget_passcode());

    // A refusal from the card or the helper program, whatever step it came in (the card
    // going away in the unblock itself aside: see `stopped`).
    let bridge_stopped = move |error: BridgeError| match error.code {
        code if card_went_away(code) => {
            errors.set(vec![ErrorItem::general(CARD_REMOVED)]);
            step.set(Step::Stopped);
        }
        // The card refuses what the server holds for it (its admin key is blocked, or it
        // did not take its escrowed PUK, which must not be tried again): only the RA can help.
        ErrorCode::AdminKeyBlocked | ErrorCode::PukRejected => {
            scope.replace(Page::End(EndReason::AdminKeyBlocked));
        }
        ErrorCode::PukBlocked => {
            scope.replace(Page::End(EndReason::ContactRa(
                IneligibleReason::PukBlocked,
            )));
        }
        ErrorCode::PasscodeRejected => {
            session.forget_passcode();
            errors.set(vec![ErrorItem::general(
                "Your card did not accept that passcode. Choose a different one.",
            )]);
            step.set(Step::PasscodeRefused);
        }
        code => match HelpTopic::for_bridge_error(code) {
            Some(topic) => scope.replace(Page::Help {
                topic,
                then: Resume::Card,
            }),
            None => {
                errors.set(vec![ErrorItem::general(error.message)]);
                step.set(Step::Stopped);
            }
        },
    };

    let stopped = move |stop: Stop| match stop {
        Stop::Unblock(error) if card_went_away(error.code) => {
            let said = if error.code == ErrorCode::CardReset {
                CARD_RESET_WHILE_SETTING
            } else {
                CARD_REMOVED_WHILE_SETTING
            };
            errors.set(vec![ErrorItem::general(said)]);
            checks.set_value(0);
            step.set(Step::CardLeft);
        }
        // Any other refusal in the unblock means what it means before it.
        Stop::Bridge(error) | Stop::Unblock(error) => bridge_stopped(error),
        Stop::Api(failure) => {
            if let Some(failure) = end_or_show(scope, failure) {
                if failure.code == Some(unlock_protocol::ErrorCode::CardNotAccepted) {
                    // The server has not accepted this card (yet): read it again.
                    session.view.set(None);
                    return scope.replace(Page::Card);
                }
                if failure.code == Some(unlock_protocol::ErrorCode::NotVerified) {
                    // The journey moved on (it expired, say): its own page explains.
                    session.view.set(None);
                    scope.spawn(async move {
                        if let Ok(view) = journey_view(session).await {
                            scope.replace(Page::for_view(&view));
                        }
                    });
                }
                errors.set(vec![ErrorItem::general(failure.message)]);
                step.set(Step::Stopped);
            }
        }
        Stop::Forgotten => scope.replace(Page::Passcode),
    };

    // Asks the bridge where the unblock cut short left the card, now back in the reader.
    let check = move || {
        step.set(Step::Checking);
        scope.spawn(async move {
            let Some((reader, card)) = session
                .card
                .with_untracked(|c| c.as_ref().map(|c| (c.reader.clone(), c.id.clone())))
            else {
                return scope.replace(Page::Passcode);
            };
            let reader =
                reader_with_card(&bridge.readers.get_untracked(), Some(&reader)).unwrap_or(reader);
            let Some(passcode) = session.with_passcode(Passcode::clone) else {
                return scope.replace(Page::Passcode);
            };
            let checked = bridge.check_unblock(&reader, &card, &passcode).await;
            wipe_passcode(passcode);
            match checked {
                Ok((state, tries_left)) => {
                    errors.set(Vec::new());
                    step.set(Step::Checked { state, tries_left });
                }
                // The reader list may not know yet that the card is out: wait, then look again,
                // a few times.
                Err(error) if card_went_away(error.code) && checks.get_value() < MAX_CHECKS => {
                    checks.update_value(|checks| *checks += 1);
                    sleep(Duration::from_millis(500)).await;
                    step.set(Step::CardLeft);
                }
                // A helper program too old to check (protocol 1.0), or a card that keeps
                // going away: the retry is safe either way.
                Err(error) if card_went_away(error.code) || error.code == ErrorCode::BadRequest => {
                    errors.set(vec![ErrorItem::general(CARD_NOT_CHECKED)]);
                    step.set(Step::Stopped);
                }
                Err(error) => bridge_stopped(error),
            }
        });
    };

    let run = move || {
        errors.set(Vec::new());
        step.set(Step::Running(Progress::Preparing));
        scope.spawn(async move {
            let progress = move |p| step.set(Step::Running(p));
            match unlock(bridge, session, receipt, progress).await {
                Ok(view) => {
                    receipt.set_value(None);
                    session.view.set(Some(view.clone()));
                    scope.replace(Page::for_view(&view));
                }
                Err(stop) => stopped(stop),
            }
        });
    };

    // Start at once, if the page holds what the card needs.
    if session.card.with_untracked(Option::is_some) && session.has_passcode() {
        run();
    } else {
        scope.spawn(async move { scope.replace(Page::Passcode) });
    }

    bridge.poll_readers_while(move || {
        matches!(step.get_untracked(), Step::WaitingForCard | Step::CardLeft)
    });

    // After "Try again" with the reader empty: carry on when the card is back. After the card
    // left during the unblock: ask where it stands when it is back.
    Effect::new(move |_| {
        let readers = bridge.readers.get();
        let step = step.get();
        if matches!(step, Step::WaitingForCard | Step::CardLeft) {
            let preferred = session
                .card
                .with_untracked(|c| c.as_ref().map(|c| c.reader.clone()));
            if reader_with_card(&readers, preferred.as_deref()).is_some() {
                if step == Step::CardLeft {
                    check();
                } else {
                    run();
                }
            }
        }
    });

    let try_again = move |_| {
        // Only the server's part is left: no need for the card.
        if receipt.with_value(Option::is_some) {
            return run();
        }
        let preferred = session
            .card
            .with_untracked(|c| c.as_ref().map(|c| c.reader.clone()));
        let card_in = bridge
            .readers
            .with_untracked(|readers| reader_with_card(readers, preferred.as_deref()).is_some());
        if card_in {
            run();
        } else {
            step.set(Step::WaitingForCard);
        }
    };

    view! {
        <ErrorSummary errors=errors />
        <Heading step=5 title="Unlocking your card" />
        <div aria-live="polite">
            {move || match step.get() {
                Step::Running(progress) => {
                    view! {
                        <p>{progress.sentence()}</p>
                        <p>"Do not remove your card from the reader."</p>
                    }
                        .into_any()
                }
                Step::WaitingForCard => {
                    view! {
                        <p>"Put your smartcard back in the reader. We will carry on as soon as it is in."</p>
                    }
                        .into_any()
                }
                Step::CardLeft => {
                    view! {
                        <p>"Put your smartcard back in the reader. We will then check whether your card was unlocked."</p>
                    }
                        .into_any()
                }
                Step::Checking => {
                    view! {
                        <p>"Checking your card…"</p>
                        <p>"Do not remove your card from the reader."</p>
                    }
                        .into_any()
                }
                Step::Checked { state: CardState::Untouched, tries_left } => {
                    let still = if tries_left == 0 {
                        "It is still locked."
                    } else {
                        "Your old passcode still works."
                    };
                    view! {
                        <p>"Your card has not been changed. " {still}</p>
                        <button class="nhsuk-button" type="button" on:click=try_again>
                            "Try again"
                        </button>
                        <ContactRa />
                    }
                        .into_any()
                }
                Step::Checked { state: CardState::Unblocked, .. } => {
                    view! {
                        <p>"Your card was unlocked, and your new passcode is set on it."</p>
                        <p>"Select Finish so that we can record the unlock."</p>
                        <button class="nhsuk-button" type="button" on:click=try_again>
                            "Finish"
                        </button>
                    }
                        .into_any()
                }
                Step::Stopped => {
                    view! {
                        <button class="nhsuk-button" type="button" on:click=try_again>
                            "Try again"
                        </button>
                        <ContactRa />
                    }
                        .into_any()
                }
                Step::PasscodeRefused => {
                    view! {
                        <button
                            class="nhsuk-button"
                            type="button"
                            on:click=move |_| scope.replace(Page::Passcode)
                        >
                            "Choose a different passcode"
                        </button>
                    }
                        .into_any()
                }
            }}
        </div>
    }
}

/// One run: the server's challenge to the card (a new one if the last was answered), the
/// card's proof to the server, the release and the new passcode to the card, the card's
/// receipt to the server. A receipt kept from an earlier run that failed only at the last
/// step is sent again instead.
async fn unlock(
    bridge: Bridge,
    session: Session,
    kept_receipt: StoredValue<Option<Carried>>,
    progress: impl Fn(Progress),
) -> Result<JourneyView, Stop> {
    let receipt = match kept_receipt.get_value() {
        Some(receipt) => receipt,
        None => {
            let card = session.card.get_untracked().ok_or(Stop::Forgotten)?;
            let reader = reader_with_card(&bridge.readers.get_untracked(), Some(&card.reader))
                .unwrap_or_else(|| card.reader.clone());
            if reader != card.reader {
                session.card.set(Some(HeldCard {
                    reader: reader.clone(),
                    ..card.clone()
                }));
            }
            progress(Progress::Preparing);
            let challenge = match session.take_challenge() {
                Some(challenge) => challenge,
                None => {
                    let (_, challenge) =
                        api::present_card(&card.identity).await.map_err(Stop::Api)?;
                    challenge.ok_or(Stop::Forgotten)?
                }
            };
            let proof = bridge
                .challenge(&reader, &challenge)
                .await
                .map_err(Stop::Bridge)?;
            progress(Progress::Asking);
            let release = api::release(&proof).await.map_err(Stop::Api)?;
            progress(Progress::Setting);
            let passcode = session
                .with_passcode(Passcode::clone)
                .ok_or(Stop::Forgotten)?;
            let unblocked = bridge.unblock(&reader, &release, &passcode).await;
            // What the server released (a PUK, say) is of no more use to the page.
            release.wipe();
            wipe_passcode(passcode);
            let receipt = unblocked.map_err(Stop::Unblock)?;
            // The card has the new passcode: the page has no more use for it.
            session.forget_passcode();
            kept_receipt.set_value(Some(receipt.clone()));
            receipt
        }
    };
    progress(Progress::Finishing);
    api::receipt(&receipt).await.map_err(Stop::Api)
}
