//! Signing in, one thing per page: the username and password, then the code from the
//! authenticator app, and at first sign-in a new password in place of the one-time one.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use unlock_protocol::staff::{
    ChangePassword, MIN_PASSWORD_CHARS, NewPassword, SecondFactor, SignIn, SignInStep,
    StaffPassword, StaffUsername,
};
use unlock_protocol::{ErrorCode, OneTimeCode};

use crate::components::{ErrorItem, ErrorSummary, Heading, TextField};
use crate::pages::PageScope;
use crate::session::wipe_field;
use crate::staff::{StaffPage, StaffSession, api, use_staff};

/// Goes where the server's answer to a sign-in step leads.
fn follow(scope: PageScope, session: StaffSession, step: SignInStep) {
    match step {
        SignInStep::SecondFactor => scope.navigate(&StaffPage::SignInCode.path(), false),
        SignInStep::NewPassword => scope.navigate(&StaffPage::NewPassword.path(), true),
        SignInStep::SignedIn { me } => {
            session.notice.set(None);
            session.signed_in_as(me);
            scope.navigate(&StaffPage::Overview.path(), true);
        }
    }
}

/// The errors of a form with fields: the fields' own, then any general one.
fn summary(
    fields: Vec<(&'static str, RwSignal<Option<String>>)>,
    general: RwSignal<Option<String>>,
) -> Signal<Vec<ErrorItem>> {
    Signal::derive(move || {
        fields
            .iter()
            .filter_map(|(id, error)| error.get().map(|message| ErrorItem::field(id, message)))
            .chain(general.get().map(ErrorItem::general))
            .collect()
    })
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_staff();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let username_error = RwSignal::new(None::<String>);
    let password_error = RwSignal::new(None::<String>);
    let general = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    Effect::new(move |_| {
        if session.signed_in().is_some() {
            scope.navigate(&StaffPage::Overview.path(), true);
        }
    });

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let typed = username.get_untracked();
        let name = StaffUsername::parse(&typed);
        username_error.set(
            name.as_ref()
                .err()
                .filter(|_| typed.trim().is_empty())
                .map(ToString::to_string),
        );
        password_error.set(
            password
                .with_untracked(String::is_empty)
                .then(|| "Enter your password".to_owned()),
        );
        general.set(None);
        if username_error.get_untracked().is_some() || password_error.get_untracked().is_some() {
            return;
        }
        session.username.set(name.ok());
        let body = SignIn {
            username: typed,
            password: password.get_untracked(),
        };
        wipe_field(password);
        busy.set(true);
        scope.spawn(async move {
            let result = api::post::<_, SignInStep>("/api/staff/sign-in", &body).await;
            busy.set(false);
            match result {
                Ok(step) => follow(scope, session, step),
                Err(failure) if failure.code == Some(ErrorCode::SignInFailed) => {
                    username_error.set(Some(failure.message));
                }
                Err(failure) => general.set(Some(failure.message)),
            }
        });
    };

    let errors = summary(
        vec![("username", username_error), ("password", password_error)],
        general,
    );
    view! {
        <div class="nhsuk-grid-row">
            <div class="nhsuk-grid-column-two-thirds">
                <ErrorSummary errors=errors />
                <Heading title="Sign in" />
                {move || session.notice.get().map(|notice| view! {
                    <div class="nhsuk-inset-text"><p>{notice}</p></div>
                })}
                <p>"For support and Registration Authority staff. You need your password and the authenticator app on your phone."</p>
                <form novalidate on:submit=submit>
                    <TextField
                        id="username"
                        label="Username"
                        value=username
                        error=username_error
                        autocomplete="username"
                        width="nhsuk-input--width-20"
                    />
                    <TextField
                        id="password"
                        label="Password"
                        value=password
                        error=password_error
                        input_type="password"
                        autocomplete="current-password"
                        width="nhsuk-input--width-20"
                    />
                    <button class="nhsuk-button" type="submit">"Continue"</button>
                </form>
                <p>"If you have lost your phone or forgotten your password, ask your service's operator to reset your account."</p>
            </div>
        </div>
    }
}

#[component]
pub fn CodePage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_staff();
    let code = RwSignal::new(String::new());
    let code_error = RwSignal::new(None::<String>);
    let general = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        general.set(None);
        let typed = match code.with_untracked(|typed| OneTimeCode::parse(typed)) {
            Ok(typed) => typed,
            Err(_) => {
                code_error.set(Some(
                    "Enter the 6-digit code from your authenticator app".into(),
                ));
                return;
            }
        };
        code_error.set(None);
        busy.set(true);
        scope.spawn(async move {
            let body = SecondFactor {
                code: typed.expose().to_owned(),
            };
            let result = api::post::<_, SignInStep>("/api/staff/sign-in/code", &body).await;
            busy.set(false);
            code.set(String::new());
            match result {
                Ok(step) => follow(scope, session, step),
                Err(failure) if failure.code == Some(ErrorCode::AuthenticatorCodeWrong) => {
                    code_error.set(Some(failure.message));
                }
                Err(failure) => {
                    if let Some(message) = session.problem(failure) {
                        general.set(Some(message));
                    } else {
                        scope.navigate(&StaffPage::SignIn.path(), true);
                    }
                }
            }
        });
    };

    let errors = summary(vec![("code", code_error)], general);
    view! {
        <div class="nhsuk-grid-row">
            <div class="nhsuk-grid-column-two-thirds">
                <a class="nhsuk-back-link" href="/status/sign-in">"Back"</a>
                <ErrorSummary errors=errors />
                <Heading title="Enter the code from your authenticator app" />
                <p>"Open the authenticator app on your phone and find Smartcard unlock. It shows a new 6-digit code every 30 seconds."</p>
                <form novalidate on:submit=submit>
                    <TextField
                        id="code"
                        label="Code"
                        hint="The code is 6 numbers. Each code works once."
                        value=code
                        error=code_error
                        autocomplete="one-time-code"
                        inputmode="numeric"
                        width="nhsuk-input--width-10"
                    />
                    <button class="nhsuk-button" type="submit">"Continue"</button>
                </form>
            </div>
        </div>
    }
}

#[component]
pub fn NewPasswordPage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_staff();
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let password_error = RwSignal::new(None::<String>);
    let confirm_error = RwSignal::new(None::<String>);
    let general = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        general.set(None);
        let typed = password.get_untracked();
        // The server checks the username too; the page checks what it knows.
        let checked = match session.username.get_untracked() {
            Some(name) => StaffPassword::parse(&typed, &name)
                .map(drop)
                .map_err(|e| e.to_string()),
            None if typed.chars().count() < MIN_PASSWORD_CHARS => Err(format!(
                "Your password must be {MIN_PASSWORD_CHARS} characters or more"
            )),
            None => Ok(()),
        };
        password_error.set(checked.err());
        confirm_error.set(
            (password_error.get_untracked().is_none() && confirm.get_untracked() != typed)
                .then(|| "Enter the same password twice".to_owned()),
        );
        if password_error.get_untracked().is_some() || confirm_error.get_untracked().is_some() {
            return;
        }
        wipe_field(password);
        wipe_field(confirm);
        busy.set(true);
        scope.spawn(async move {
            let body = NewPassword { password: typed };
            let result = api::post::<_, SignInStep>("/api/staff/sign-in/new-password", &body).await;
            busy.set(false);
            match result {
                Ok(step) => follow(scope, session, step),
                Err(failure) if failure.code == Some(ErrorCode::PasswordRejected) => {
                    password_error.set(Some(failure.message));
                }
                Err(failure) => {
                    if let Some(message) = session.problem(failure) {
                        general.set(Some(message));
                    } else {
                        scope.navigate(&StaffPage::SignIn.path(), true);
                    }
                }
            }
        });
    };

    let errors = summary(
        vec![
            ("new-password", password_error),
            ("confirm-password", confirm_error),
        ],
        general,
    );
    view! {
        <div class="nhsuk-grid-row">
            <div class="nhsuk-grid-column-two-thirds">
                <ErrorSummary errors=errors />
                <Heading title="Choose a new password" />
                <p>"You signed in with a one-time password. Choose your own to replace it."</p>
                <PasswordRules lead="Your password must:" />
                <form novalidate on:submit=submit>
                    <TextField
                        id="new-password"
                        label="New password"
                        value=password
                        error=password_error
                        input_type="password"
                        autocomplete="new-password"
                        width="nhsuk-input--width-20"
                    />
                    <TextField
                        id="confirm-password"
                        label="Confirm new password"
                        value=confirm
                        error=confirm_error
                        input_type="password"
                        autocomplete="new-password"
                        width="nhsuk-input--width-20"
                    />
                    <button class="nhsuk-button" type="submit">"Save password"</button>
                </form>
            </div>
        </div>
    }
}

/// `/status/password`: a signed-in staff member changes their own password.
#[component]
pub fn ChangePasswordPage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_staff();
    let current = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let current_error = RwSignal::new(None::<String>);
    let password_error = RwSignal::new(None::<String>);
    let confirm_error = RwSignal::new(None::<String>);
    let general = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        general.set(None);
        done.set(None);
        let (old, typed) = (current.get_untracked(), password.get_untracked());
        current_error.set(
            old.is_empty()
                .then(|| "Enter your current password".to_owned()),
        );
        let checked = match session.username.get_untracked() {
            Some(name) => StaffPassword::parse(&typed, &name)
                .map(drop)
                .map_err(|e| e.to_string()),
            None => Ok(()),
        };
        password_error.set(checked.err());
        confirm_error.set(
            (password_error.get_untracked().is_none() && confirm.get_untracked() != typed)
                .then(|| "Enter the same new password twice".to_owned()),
        );
        if current_error.get_untracked().is_some()
            || password_error.get_untracked().is_some()
            || confirm_error.get_untracked().is_some()
        {
            return;
        }
        wipe_field(current);
        wipe_field(password);
        wipe_field(confirm);
        busy.set(true);
        scope.spawn(async move {
            let body = ChangePassword {
                current_password: old,
                new_password: typed,
            };
            let result = api::post_json_for_nothing("/api/staff/password", &body).await;
            busy.set(false);
            match result {
                Ok(()) => done.set(Some(
                    "Your password has been changed. Any other session of yours has been signed out."
                        .to_owned(),
                )),
                Err(failure) if failure.code == Some(ErrorCode::PasswordRejected) => {
                    password_error.set(Some(failure.message));
                }
                Err(failure) if failure.code == Some(ErrorCode::SignInFailed) => {
                    current_error.set(Some(failure.message));
                }
                Err(failure) => general.set(session.problem(failure)),
            }
        });
    };

    let errors = summary(
        vec![
            ("current-password", current_error),
            ("new-password", password_error),
            ("confirm-password", confirm_error),
        ],
        general,
    );
    view! {
        <div class="nhsuk-grid-row">
            <div class="nhsuk-grid-column-two-thirds">
                <ErrorSummary errors=errors />
                <super::Done message=done />
                <Heading title="Change your password" />
                <PasswordRules lead="Your new password must:" />
                <form novalidate on:submit=submit>
                    <TextField
                        id="current-password"
                        label="Current password"
                        value=current
                        error=current_error
                        input_type="password"
                        autocomplete="current-password"
                        width="nhsuk-input--width-20"
                    />
                    <TextField
                        id="new-password"
                        label="New password"
                        value=password
                        error=password_error
                        input_type="password"
                        autocomplete="new-password"
                        width="nhsuk-input--width-20"
                    />
                    <TextField
                        id="confirm-password"
                        label="Confirm new password"
                        value=confirm
                        error=confirm_error
                        input_type="password"
                        autocomplete="new-password"
                        width="nhsuk-input--width-20"
                    />
                    <button class="nhsuk-button" type="submit">"Change password"</button>
                </form>
            </div>
        </div>
    }
}

/// What a new staff password must be, as both password pages say it.
#[component]
fn PasswordRules(lead: &'static str) -> impl IntoView {
    view! {
        <p>{lead}</p>
        <ul>
            <li>{format!("be {MIN_PASSWORD_CHARS} characters or more")}</li>
            <li>"not contain your username"</li>
            <li>"not be easy to guess"</li>
        </ul>
        <p>"Three or four random words work well, like "<strong>"purple tractor river lamp"</strong>"."</p>
    }
}
