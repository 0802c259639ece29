//! `/status/audit?...`: the audit log, newest first, filtered by who, what, outcome, holder
//! and days, a page at a time. The filters are the page's address, so a filtered view can
//! be shared with a colleague.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use unlock_protocol::staff::AuditPage as Page;

use super::header_row;
use crate::components::{ErrorItem, ErrorSummary, Heading, TextField};
use crate::pages::PageScope;
use crate::staff::api::{self, encode};
use crate::staff::format::date_time;
use crate::staff::use_staff;

/// The filters: query name, label, hint.
const FILTERS: [(&str, &str, &str); 6] = [
    (
        "actor",
        "Who",
        "holder, system, operator, or staff: and a username, like staff:rita",
    ),
    (
        "action",
        "What",
        "The start of an action, like journey. or staff.email_add",
    ),
    ("outcome", "Outcome", "Like unlocked, forbidden or added"),
    ("holder", "User id", "12 digits"),
    ("from", "From day", "Like 2026-11-01"),
    ("to", "To day", "Like 2026-11-30"),
];

/// `name=value&...` for the filters that are set (and `before`, for the next page).
fn query_string(values: &[(&str, String)]) -> String {
    values
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| format!("{name}={}", encode(value.trim())))
        .collect::<Vec<_>>()
        .join("&")
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_staff();
    let query = use_query_map();
    let fields: Vec<(&'static str, RwSignal<String>)> = FILTERS
        .iter()
        .map(|(name, ..)| (*name, RwSignal::new(String::new())))
        .collect();
    let fields = StoredValue::new(fields);
    let page = RwSignal::new(None::<Page>);
    let problem = RwSignal::new(None::<String>);

    Effect::new(move |_| {
        let values: Vec<(&str, String)> = query.with(|q| {
            FILTERS
                .iter()
                .map(|(name, ..)| (*name, q.get(name).unwrap_or_default()))
                .chain(std::iter::once((
                    "before",
                    q.get("before").unwrap_or_default(),
                )))
                .collect()
        });
        fields.with_value(|fields| {
            for ((_, field), (_, value)) in fields.iter().zip(&values) {
                field.set(value.clone());
            }
        });
        let url = format!("/api/staff/audit?{}", query_string(&values));
        scope.spawn(async move {
            match api::get::<Page>(&url).await {
                Ok(events) => {
                    problem.set(None);
                    page.set(Some(events));
                }
                Err(failure) => {
                    page.set(None);
                    problem.set(session.problem(failure));
                }
            }
        });
    });

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let values: Vec<(&str, String)> = fields.with_value(|fields| {
            fields
                .iter()
                .map(|(name, field)| (*name, field.get_untracked()))
                .collect()
        });
        scope.navigate(&format!("/status/audit?{}", query_string(&values)), false);
    };
    let older = move |before: i64| {
        let mut values: Vec<(&str, String)> = fields.with_value(|fields| {
            fields
                .iter()
                .map(|(name, field)| (*name, field.get_untracked()))
                .collect()
        });
        values.push(("before", before.to_string()));
        format!("/status/audit?{}", query_string(&values))
    };

    let errors = Signal::derive(move || {
        problem
            .get()
            .map(ErrorItem::general)
            .into_iter()
            .collect::<Vec<_>>()
    });
    let inputs = fields.with_value(|fields| {
        fields
            .iter()
            .zip(FILTERS)
            .map(|((name, value), (_, label, hint))| {
                view! {
                    <div class="nhsuk-grid-column-one-third">
                        <TextField id=name label=label hint=hint value=*value error=Signal::derive(|| None::<String>) autocomplete="off" />
                    </div>
                }
            })
            .collect_view()
    });
    let table = move || {
        page.get().map(|page| {
            if page.events.is_empty() {
                return view! { <p>"No events match these filters."</p> }.into_any();
            }
            let rows = page
                .events
                .into_iter()
                .map(|event| {
                    view! {
                        <tr class="nhsuk-table__row">
                            <td class="nhsuk-table__cell">{date_time(event.at)}</td>
                            <td class="nhsuk-table__cell">{event.actor}</td>
                            <td class="nhsuk-table__cell">{event.action}</td>
                            <td class="nhsuk-table__cell">{event.outcome}</td>
                            <td class="nhsuk-table__cell">{event.holder_id.unwrap_or_default()}</td>
                            <td class="nhsuk-table__cell">{event.client_addr.unwrap_or_default()}</td>
                            <td class="nhsuk-table__cell">{event.detail.unwrap_or_default()}</td>
                        </tr>
                    }
                })
                .collect_view();
            let next = page.next_before.map(|before| {
                view! { <p><a href=older(before)>"Older events"</a></p> }
            });
            view! {
                <div class="app-table-scroll" tabindex="0" role="region" aria-label="Audit events, scrolls sideways">
                    <table class="nhsuk-table">
                        <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Audit events, newest first"</caption>
                        {header_row(&["When", "Who", "What", "Outcome", "User id", "Client address", "Detail"])}
                        <tbody class="nhsuk-table__body">{rows}</tbody>
                    </table>
                </div>
                {next}
            }
            .into_any()
        })
    };
    view! {
        <ErrorSummary errors=errors />
        <Heading title="Audit log" />
        <p>"Every step holders take and everything staff and operators do, newest first. Nothing here can be changed or deleted."</p>
        <form novalidate on:submit=submit>
            <div class="nhsuk-grid-row">{inputs}</div>
            <div class="nhsuk-button-group">
                <button class="nhsuk-button" type="submit">"Show events"</button>
                <a class="nhsuk-link" href="/status/audit">"Clear filters"</a>
            </div>
        </form>
        {table}
    }
}
