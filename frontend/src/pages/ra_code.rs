//! `/ra-code`: for a holder who can reach no email on their profile. Their Registration
//! Authority verified them over the phone and read out a one-time unlock code; typed here
//! instead of an emailed code, it takes them straight to the card step.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use unlock_protocol::{ErrorCode, RaUnlockCode};

use super::{PageScope, end_or_show};
use crate::api;
use crate::components::{BackLink, ErrorItem, ErrorSummary, Heading, TextField};
use crate::route::Page;
use crate::session::use_session;

const FIELD: &str = "unlock-code";

#[component]
pub fn RaCodePage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_session();
    let code = RwSignal::new(String::new());
    let field_error = RwSignal::new(None::<String>);
    let other_error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

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
        let typed = match code.with_untracked(|typed| RaUnlockCode::parse(typed)) {
            Ok(typed) => typed,
            Err(error) => {
                field_error.set(Some(format!("{error}.")));
                return;
            }
        };
        busy.set(true);
        scope.spawn(async move {
            let result = api::redeem_ra_code(&typed).await;
            busy.set(false);
            match result {
                Ok(view) => {
                    session.view.set(Some(view.clone()));
                    scope.go(Page::for_view(&view));
                }
                Err(failure) => {
                    let Some(failure) = end_or_show(scope, failure) else {
                        return;
                    };
                    match failure.code {
                        Some(
                            ErrorCode::CodeInvalid
                            | ErrorCode::CodeWrong
                            | ErrorCode::CodeVoided
                            | ErrorCode::CodeExpired,
                        ) => field_error.set(Some(failure.message)),
                        _ => other_error.set(Some(failure.message)),
                    }
                }
            }
        });
    };

    view! {
        <BackLink href="/email" />
        <ErrorSummary errors=errors />
        <form novalidate on:submit=submit>
            <Heading title="Enter the code from your Registration Authority" />
            <p>
                "If you cannot get to any email address on your smartcard profile, your Registration Authority can check who you are over the phone and read you a one-time unlock code."
            </p>
            <TextField
                id=FIELD
                label="Unlock code"
                hint="The code is 12 letters and numbers, like ABCD-EFGH-JKMN. It works once, for 30 minutes."
                value=code
                error=field_error
                autocomplete="one-time-code"
                width="nhsuk-input--width-20"
            />
            <button class="nhsuk-button" type="submit">
                "Continue"
            </button>
        </form>
    }
}
