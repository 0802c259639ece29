//! `/status/holders?q=...`: find a holder by their 12-digit user id, email address or name.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use unlock_protocol::staff::HolderSearch;

use super::header_row;
use crate::components::{ErrorItem, ErrorSummary, Heading, TextField};
use crate::pages::PageScope;
use crate::staff::api::{self, encode};
use crate::staff::{StaffPage, use_staff};

const FIELD: &str = "q";

#[component]
pub fn HoldersPage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_staff();
    let query = use_query_map();
    let typed = RwSignal::new(query.with_untracked(|q| q.get(FIELD).unwrap_or_default()));
    let field_error = RwSignal::new(None::<String>);
    let found = RwSignal::new(None::<HolderSearch>);

    // Each search is its own address, so Back and reloads show it again.
    Effect::new(move |_| {
        let Some(searched) = query
            .with(|q| q.get(FIELD))
            .filter(|q| !q.trim().is_empty())
        else {
            found.set(None);
            return;
        };
        typed.set(searched.clone());
        scope.spawn(async move {
            let url = format!("/api/staff/holders?q={}", encode(&searched));
            match api::get::<HolderSearch>(&url).await {
                Ok(result) => {
                    field_error.set(None);
                    found.set(Some(result));
                }
                Err(failure) => {
                    found.set(None);
                    field_error.set(session.problem(failure));
                }
            }
        });
    });

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let searched = typed.get_untracked();
        if searched.trim().is_empty() {
            field_error.set(Some("Enter a user id, an email address or a name".into()));
            return;
        }
        scope.navigate(
            &StaffPage::HolderSearch(searched.trim().to_owned()).path(),
            false,
        );
    };

    let errors = Signal::derive(move || {
        field_error
            .get()
            .map(|message| ErrorItem::field(FIELD, message))
            .into_iter()
            .collect::<Vec<_>>()
    });
    let results = move || {
        found
            .get()
            .map(|result| view! { <Results result=result /> })
    };
    view! {
        <ErrorSummary errors=errors />
        <Heading title="Find a holder" />
        <form novalidate on:submit=submit>
            <TextField
                id=FIELD
                label="User id, email address or name"
                hint="A whole 12-digit user id (like 1234 5678 9012), a whole email address, or part of a name."
                value=typed
                error=field_error
                autocomplete="off"
                width="nhsuk-input--width-30"
            />
            <button class="nhsuk-button" type="submit">"Search"</button>
        </form>
        {results}
    }
}

#[component]
fn Results(result: HolderSearch) -> impl IntoView {
    if result.matches.is_empty() {
        return view! {
            <h2>"No holders found"</h2>
            <p>"Check the user id, email address or name, or search for something else."</p>
        }
        .into_any();
    }
    let more = result.more.then(|| {
        view! {
            <div class="nhsuk-inset-text">
                <p>"Only the first 20 holders are shown. Search for more of the name, or for a user id or email address."</p>
            </div>
        }
    });
    let rows = result
        .matches
        .into_iter()
        .map(|holder| {
            let href = StaffPage::Holder(holder.id.clone()).path();
            let name = if holder.name.is_empty() {
                "(no name on record)".to_owned()
            } else {
                holder.name
            };
            view! {
                <tr class="nhsuk-table__row">
                    <td class="nhsuk-table__cell"><a href=href>{holder.id.to_string()}</a></td>
                    <td class="nhsuk-table__cell">{name}</td>
                    <td class="nhsuk-table__cell">{holder.organisation}</td>
                    <td class="nhsuk-table__cell">{holder.emails.join(", ")}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {more}
        <table class="nhsuk-table">
            <caption class="nhsuk-table__caption nhsuk-table__caption--m">"Holders found"</caption>
            {header_row(&["User id", "Name", "Organisation", "Email addresses"])}
            <tbody class="nhsuk-table__body">{rows}</tbody>
        </table>
    }
    .into_any()
}
