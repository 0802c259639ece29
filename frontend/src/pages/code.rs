//! `/code`, step 2: the one-time security code from the email.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use unlock_protocol::OneTimeCode;
use unlock_protocol::api::JourneyView;

use super::{PageScope, end_or_show, journey_view};
use crate::api;
use crate::components::{BackLink, ErrorItem, ErrorSummary, Heading, TextField};
use crate::countdown::{
    code_expiry_sentence, deadline, now_ms, resend_wait_sentence, seconds_until,
    tries_left_sentence, use_clock,
};
use crate::route::{EndReason, Page};
use crate::session::use_session;
use unlock_protocol::ErrorCode;

const FIELD: &str = "code";

/// What the page shows of a journey awaiting its code.
#[derive(Debug, Clone, PartialEq)]
struct Waiting {
    email_hint: String,
    tries_left: u8,
    /// Browser-clock times, in milliseconds.
    expires_at: f64,
    resend_at: f64,
}

#[component]
pub fn CodePage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_session();
    let clock = use_clock();
    let waiting = RwSignal::new(None::<Waiting>);
    let code = RwSignal::new(String::new());
    let field_error = RwSignal::new(None::<String>);
    let other_error = RwSignal::new(None::<String>);
    let sent_again = RwSignal::new(false);
    let busy = RwSignal::new(false);

    // Shows a journey still waiting for its code; any other stage has its own page.
    let show = move |view: JourneyView| match view {
        JourneyView::AwaitingCode {
            email_hint,
            expires_in_seconds,
            tries_left,
            resend_in_seconds,
        } => {
            let now = now_ms();
            clock.set(now);
            waiting.set(Some(Waiting {
                email_hint,
                tries_left,
                expires_at: deadline(now, expires_in_seconds),
                resend_at: deadline(now, resend_in_seconds),
            }));
        }
        other => scope.replace(Page::for_view(&other)),
    };

    scope.spawn(async move {
        match journey_view(session).await {
            Ok(view) => show(view),
            Err(failure) => {
                if let Some(failure) = end_or_show(scope, failure) {
                    other_error.set(Some(failure.message));
                }
            }
        }
    });

    let seconds_left = move |at: fn(&Waiting) -> f64| {
        let now = clock.get();
        waiting.with(|w| w.as_ref().map_or(0, |w| seconds_until(at(w), now)))
    };
    let expires_in = move || seconds_left(|w| w.expires_at);
    let resend_in = move || seconds_left(|w| w.resend_at);
    Effect::new(move |_| {
        if waiting.with(Option::is_some) && expires_in() == 0 {
            scope.replace(Page::End(EndReason::Expired));
        }
    });

    let errors = Signal::derive(move || {
        let field = field_error
            .get()
            .map(|message| ErrorItem::field(FIELD, message));
        let other = other_error.get().map(ErrorItem::general);
        field.into_iter().chain(other).collect::<Vec<_>>()
    });

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        field_error.set(None);
        other_error.set(None);
        let typed = match code.with_untracked(|typed| OneTimeCode::parse(typed)) {
            Ok(typed) => typed,
            Err(error) => {
                field_error.set(Some(error.to_string()));
                return;
            }
        };
        busy.set(true);
        scope.spawn(async move {
            let result = api::verify_code(&typed).await;
            busy.set(false);
            match result {
                Ok(view) => {
                    session.view.set(Some(view.clone()));
                    match view {
                        JourneyView::AwaitingCode { .. } => show(view),
                        other => scope.go(Page::for_view(&other)),
                    }
                }
                Err(failure) => {
                    let Some(failure) = end_or_show(scope, failure) else {
                        return;
                    };
                    let tries = match failure.code {
                        Some(ErrorCode::CodeWrong) => failure.tries_left,
                        Some(ErrorCode::CodeVoided) => Some(0),
                        _ => None,
                    };
                    if let Some(tries) = tries {
                        waiting.update(|w| {
                            if let Some(w) = w {
                                w.tries_left = tries;
                            }
                        });
                    }
                    match failure.code {
                        Some(
                            ErrorCode::CodeWrong | ErrorCode::CodeVoided | ErrorCode::CodeInvalid,
                        ) => {
                            field_error.set(Some(failure.message));
                        }
                        _ => other_error.set(Some(failure.message)),
                    }
                }
            }
        });
    };

    let resend = move |_: leptos::ev::MouseEvent| {
        if busy.get_untracked() || resend_in() > 0 {
            return;
        }
        field_error.set(None);
        other_error.set(None);
        busy.set(true);
        scope.spawn(async move {
            let result = api::resend_code().await;
            busy.set(false);
            match result {
                Ok(view) => {
                    session.view.set(Some(view.clone()));
                    code.set(String::new());
                    sent_again.set(true);
                    show(view);
                }
                Err(failure) => {
                    let Some(failure) = end_or_show(scope, failure) else {
                        return;
                    };
                    if let (Some(ErrorCode::ResendTooSoon), Some(seconds)) =
                        (failure.code, failure.retry_after_seconds)
                    {
                        let now = now_ms();
                        clock.set(now);
                        waiting.update(|w| {
                            if let Some(w) = w {
                                w.resend_at = deadline(now, seconds);
                            }
                        });
                    }
                    other_error.set(Some(failure.message));
                }
            }
        });
    };

    let email_hint = move || waiting.with(|w| w.as_ref().map(|w| w.email_hint.clone()));
    let tries_left = move || waiting.with(|w| w.as_ref().map(|w| w.tries_left));
    // Numbers are shown in E.164 form (a leading +); addresses never start with one.
    let by_text =
        move || waiting.with(|w| w.as_ref().is_some_and(|w| w.email_hint.starts_with('+')));

    view! {
        <BackLink href="/email" />
        <ErrorSummary errors=errors />
        <Show
            when=by_text
            fallback=|| view! { <Heading step=2 title="Check your email" /> }
        >
            <Heading step=2 title="Check your phone" />
        </Show>
        <Show
            when=move || waiting.with(Option::is_some)
            fallback=|| view! { <p>"Loading…"</p> }
        >
            <p>
                "We have sent a 6-digit security code to "
                <strong>{email_hint}</strong>
                "."
            </p>
            <p>{move || format!("{}.", code_expiry_sentence(expires_in()))}</p>
            <Show when=move || sent_again.get()>
                <div class="nhsuk-inset-text">
                    <p>"We have sent you a new code. Only the newest code works."</p>
                </div>
            </Show>
            <form novalidate on:submit=submit>
                <TextField
                    id=FIELD
                    label="Security code"
                    hint="The code is 6 numbers."
                    value=code
                    error=field_error
                    autocomplete="one-time-code"
                    inputmode="numeric"
                    width="nhsuk-input--width-10"
                />
                <p>{move || tries_left().map(tries_left_sentence)}</p>
                <button class="nhsuk-button" type="submit">
                    "Continue"
                </button>
            </form>
            <Show when=by_text fallback=not_got_the_email>
                <h2>"Not got the text message?"</h2>
                <p>
                    "Text messages usually arrive within a minute, but can take longer if your phone has no signal."
                </p>
                <p>
                    "If it is still not there, the number you entered may not be the one on your smartcard profile. Go back and check it, or contact your Registration Authority."
                </p>
            </Show>
            <button
                class="nhsuk-button nhsuk-button--secondary"
                type="button"
                aria-describedby="resend-wait"
                disabled=move || { resend_in() > 0 }
                on:click=resend
            >
                "Send a new code"
            </button>
            <p id="resend-wait">
                {move || {
                    let seconds = resend_in();
                    (seconds > 0).then(|| resend_wait_sentence(seconds))
                }}
            </p>
        </Show>
    }
}

/// What to do when the code's email has not come.
fn not_got_the_email() -> impl IntoView {
    view! {
            <h2>"Not got the email?"</h2>
            <p>
                "Emails can take a few minutes to arrive. If it has not arrived, check your spam folder."
            </p>
            <p>
                "If it is still not there, the address you entered may not be the one on your smartcard profile. Go back and check it, or contact your Registration Authority."
            </p>
    }
}
