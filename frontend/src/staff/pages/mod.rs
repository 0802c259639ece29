//! One module per staff page, and what they share.

mod allowlist;
mod audit;
mod holder;
mod holders;
mod not_found;
mod overview;
mod reports;
mod sign_in;

use leptos::prelude::*;

pub use allowlist::AllowListPage;
pub use audit::AuditPage;
pub use holder::HolderPage;
pub use holders::HoldersPage;
pub use not_found::NotFoundPage;
pub use overview::OverviewPage;
pub use reports::ReportsPage;
pub use sign_in::{ChangePasswordPage, CodePage, NewPasswordPage, SignInPage};

/// A green banner saying something was done; `role="alert"` announces it.
#[component]
pub fn Done(#[prop(into)] message: Signal<Option<String>>) -> impl IntoView {
    move || {
        message.get().map(|message| {
            view! {
                <div
                    class="nhsuk-notification-banner nhsuk-notification-banner--success"
                    role="alert"
                    aria-labelledby="done-title"
                >
                    <div class="nhsuk-notification-banner__header">
                        <h2 class="nhsuk-notification-banner__title" id="done-title">
                            "Success"
                        </h2>
                    </div>
                    <div class="nhsuk-notification-banner__content">
                        <p class="nhsuk-notification-banner__heading">{message}</p>
                    </div>
                </div>
            }
        })
    }
}

/// "Are you sure?" before a change staff can't simply take back, with the way out beside it.
#[component]
pub fn Confirm(
    title: String,
    body: String,
    yes: &'static str,
    on_yes: Callback<()>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    view! {
        <div class="nhsuk-warning-callout">
            <h2 class="nhsuk-warning-callout__label">
                <span role="text">
                    <span class="nhsuk-u-visually-hidden">"Important: "</span>
                    {title}
                </span>
            </h2>
            <p>{body}</p>
            <div class="nhsuk-button-group">
                <button class="nhsuk-button nhsuk-button--warning" type="button" on:click=move |_| on_yes.run(())>
                    {yes}
                </button>
                <button class="nhsuk-button nhsuk-button--secondary" type="button" on:click=move |_| on_cancel.run(())>
                    "Cancel"
                </button>
            </div>
        </div>
    }
}

/// A small button in a table row; screen readers hear what it acts on, `about`.
#[component]
pub fn RowButton(label: &'static str, about: String, on_press: Callback<()>) -> impl IntoView {
    view! {
        <button
            class="nhsuk-button nhsuk-button--secondary nhsuk-button--small nhsuk-u-margin-bottom-0"
            type="button"
            on:click=move |_| on_press.run(())
        >
            {label}
            <span class="nhsuk-u-visually-hidden">{format!(" {about}")}</span>
        </button>
    }
}

/// A coloured tag with words (the colour is never the only sign).
#[component]
pub fn Tag(class: &'static str, #[prop(into)] text: String) -> impl IntoView {
    view! { <strong class=class>{text}</strong> }
}

/// A table's header row.
pub fn header_row(columns: &[&'static str]) -> impl IntoView + use<> {
    header(columns, false)
}

/// The header row of a table of figures: every column but the first holds numbers.
pub fn figures_header(columns: &[&'static str]) -> impl IntoView + use<> {
    header(columns, true)
}

fn header(columns: &[&'static str], figures: bool) -> impl IntoView + use<> {
    let cells = columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let class = if figures && i > 0 {
                "nhsuk-table__header nhsuk-table__header--numeric"
            } else {
                "nhsuk-table__header"
            };
            view! { <th scope="col" class=class>{*column}</th> }
        })
        .collect_view();
    view! {
        <thead class="nhsuk-table__head">
            <tr class="nhsuk-table__row">{cells}</tr>
        </thead>
    }
}
