//! `/email`, step 1: the email address or mobile number on the holder's profile, where the
//! code is sent. A number is only checked lightly here; the server reads it properly.
//!
//! `/ra-code`, the same page for a holder who can reach no address or number on their
//! profile: their Registration Authority checked who they are over the phone and read out a
//! one-time unlock code, typed here instead; a right one goes straight to the card step. (One
//! page for both keeps the holder's download small.)

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use unlock_protocol::EmailAddress;

use super::{PageScope, end_or_show};
use crate::api;
use crate::components::{BackLink, ErrorItem, ErrorSummary, Heading, TextField};
use crate::route::Page;
use crate::session::use_session;
use unlock_protocol::ErrorCode;

const FIELD: &str = "email";
const RA_FIELD: &str = "unlock-code";

#[component]
pub fn EmailPage() -> impl IntoView {
    page(false)
}

/// `/ra-code`.
#[component]
pub fn RaCodePage() -> impl IntoView {
    page(true)
}

/// The page, taking the RA's unlock code instead of an email address if `ra_code`.
fn page(ra_code: bool) -> AnyView {
    let field_id = if ra_code { RA_FIELD } else { FIELD };
    let scope = PageScope::new();
    let session = use_session();
    let email = RwSignal::new(String::new());
    let field_error = RwSignal::new(None::<String>);
    let other_error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    // Which addresses qualify; the page still works (with a general hint) without the list.
    let domains = RwSignal::new(Vec::<String>::new());
    if !ra_code {
        scope.spawn(async move {
            if let Ok(listed) = api::allowed_domains().await {
                domains.set(listed);
            }
        });
    }

    let errors = Signal::derive(move || {
        let field = field_error
            .get()
            .map(|message| ErrorItem::field(field_id, message));
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
        // The server reads an RA's code (case, spaces and dashes don't matter) and says what
        // is wrong with it; parsing it here too would only add to the download.
        let address = match email.with_untracked(|typed| contact_of(typed)) {
            _ if ra_code => None,
            Ok(address) => Some(address),
            Err(error) => {
                field_error.set(Some(error));
                return;
            }
        };
        busy.set(true);
        scope.spawn(async move {
            let started = match &address {
                Some(address) => api::start_journey(address).await,
                None => api::redeem_ra_code(&email.get_untracked()).await,
            };
            match started {
                Ok(view) => {
                    session.view.set(Some(view.clone()));
                    scope.go(Page::for_view(&view));
                }
                Err(failure) => {
                    busy.set(false);
                    if let Some(failure) = end_or_show(scope, failure) {
                        match failure.code {
                            Some(
                                ErrorCode::EmailInvalid
                                | ErrorCode::EmailDomainNotAllowed
                                | ErrorCode::CodeInvalid
                                | ErrorCode::CodeWrong
                                | ErrorCode::CodeVoided
                                | ErrorCode::CodeExpired,
                            ) => {
                                field_error.set(Some(failure.message));
                            }
                            _ => other_error.set(Some(failure.message)),
                        }
                    }
                }
            }
        });
    };

    if ra_code {
        return view! {
            <BackLink href="/email" />
            <ErrorSummary errors=errors />
            <form novalidate on:submit=submit>
                <Heading title="Enter the code from your Registration Authority" />
                <p>"Your Registration Authority read it to you over the phone."</p>
                <TextField
                    id=RA_FIELD
                    label="Unlock code"
                    hint="12 letters and numbers, like ABCD-EFGH-JKMN"
                    value=email
                    error=field_error
                    autocomplete="one-time-code"
                    width="nhsuk-input--width-20"
                />
                <button class="nhsuk-button" type="submit">
                    "Continue"
                </button>
            </form>
        }
        .into_any();
    }
    view! {
        <BackLink href="/" />
        <ErrorSummary errors=errors />
        <form novalidate on:submit=submit>
            <Heading step=1 title="Enter your email address or mobile number" />
            <p>"We will send a security code to this address or number."</p>
            <Show when=move || domains.with(|listed| !listed.is_empty())>
                <p>{move || domains.with(|listed| allowed_sentence(listed))}</p>
            </Show>
            <TextField
                id=FIELD
                label="Email address or mobile number"
                hint="Use the email address (usually your work email) or the mobile number on your smartcard profile."
                value=email
                error=field_error
                autocomplete="email"
            />
            <button class="nhsuk-button" type="submit">
                "Continue"
            </button>
        </form>
        <p>
            "If you do not know which email address or mobile number is on your smartcard profile, contact your Registration Authority."
        </p>
        <p>
            <a href="/ra-code">"I have a code from my Registration Authority"</a>
        </p>
    }
    .into_any()
}

/// What to send: an email address (it has an `@`), normalised, or what looks like a phone
/// number, as typed. Anything else gets the sentence to show.
fn contact_of(typed: &str) -> Result<String, String> {
    let typed = typed.trim();
    if typed.contains('@') {
        return EmailAddress::parse(typed)
            .map(|address| address.as_str().to_owned())
            .map_err(|error| error.to_string());
    }
    let digits = typed.bytes().filter(u8::is_ascii_digit).count();
    let phone_like = typed
        .bytes()
        .all(|b| b.is_ascii_digit() || b" +-().".contains(&b));
    if phone_like && (10..=15).contains(&digits) {
        return Ok(typed.to_owned());
    }
    Err(if digits > 0 && phone_like {
        "Enter a mobile number in the correct format, like 07700 900 982".to_owned()
    } else {
        "Enter an email address in the correct format, like name@example.org, or a mobile \
         number, like 07700 900 982"
            .to_owned()
    })
}

/// "Addresses ending in @a.example or @b.example can be used."
fn allowed_sentence(domains: &[String]) -> String {
    let endings: Vec<String> = domains.iter().map(|domain| format!("@{domain}")).collect();
    let listed = match endings.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    format!("Addresses ending in {listed} can be used.")
}

#[cfg(test)]
mod tests {
    use super::{allowed_sentence, contact_of};

    #[test]
    fn addresses_and_numbers_are_told_apart_lightly() {
        assert_eq!(
            contact_of(" Jane@Trust.Example "),
            Ok("jane@trust.example".into())
        );
        assert_eq!(contact_of("07400 123456"), Ok("07400 123456".into()));
        assert_eq!(contact_of("+44 7400 123456"), Ok("+44 7400 123456".into()));
        assert!(contact_of("0740012").unwrap_err().contains("mobile number"));
        assert!(contact_of("jane").unwrap_err().contains("email address"));
        assert!(contact_of("jane@").is_err());
    }

    #[test]
    fn the_allowed_domains_read_as_a_sentence() {
        let domains = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            allowed_sentence(&domains(&["trust.example"])),
            "Addresses ending in @trust.example can be used."
        );
        assert_eq!(
            allowed_sentence(&domains(&["a.example", "b.example", "c.example"])),
            "Addresses ending in @a.example, @b.example or @c.example can be used."
        );
    }
}
