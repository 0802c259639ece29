//! `/status/allowlist`: the email domains whose addresses qualify for self-service; RA
//! managers add and remove them.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use unlock_protocol::ErrorCode;
use unlock_protocol::staff::{AddDomain, AllowList, Permission};

use super::{Confirm, Done, RowButton, header_row};
use crate::components::{ErrorItem, ErrorSummary, Heading, TextField};
use crate::pages::PageScope;
use crate::staff::api::{self, encode};
use crate::staff::format::{count, date};
use crate::staff::use_staff;

const FIELD: &str = "domain";

#[component]
pub fn AllowListPage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_staff();
    let list = RwSignal::new(None::<AllowList>);
    let problem = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    let domain = RwSignal::new(String::new());
    let domain_error = RwSignal::new(None::<String>);
    let removing = RwSignal::new(None::<(String, u64)>);
    let may_manage = move || session.may(Permission::ManageAllowList);

    scope.spawn(async move {
        match api::get::<AllowList>("/api/staff/allowlist").await {
            Ok(domains) => list.set(Some(domains)),
            Err(failure) => problem.set(session.problem(failure)),
        }
    });
    let changed =
        move |result: Result<AllowList, crate::api::ApiFailure>, message: String| match result {
            Ok(domains) => {
                problem.set(None);
                list.set(Some(domains));
                done.set(Some(message));
            }
            Err(failure) => {
                done.set(None);
                problem.set(session.problem(failure));
            }
        };

    let add = move |event: SubmitEvent| {
        event.prevent_default();
        let typed = domain
            .get_untracked()
            .trim()
            .trim_start_matches('@')
            .to_lowercase();
        if typed.is_empty() {
            return domain_error.set(Some("Enter a domain name, like trust.nhs.uk".into()));
        }
        domain_error.set(None);
        scope.spawn(async move {
            let body = AddDomain {
                domain: typed.clone(),
            };
            match api::post::<_, AllowList>("/api/staff/allowlist", &body).await {
                Err(failure) if failure.code == Some(ErrorCode::DomainInvalid) => {
                    domain_error.set(Some(failure.message));
                }
                result => {
                    domain.set(String::new());
                    changed(
                        result,
                        format!("Addresses ending in @{typed} can now be used for self-service."),
                    );
                }
            }
        });
    };
    let remove = move |name: String| {
        scope.spawn(async move {
            let result =
                api::delete::<AllowList>(&format!("/api/staff/allowlist/{}", encode(&name))).await;
            removing.set(None);
            changed(
                result,
                format!("Addresses ending in @{name} can no longer be used for self-service."),
            );
        });
    };

    let errors = Signal::derive(move || {
        domain_error
            .get()
            .map(|message| ErrorItem::field(FIELD, message))
            .into_iter()
            .chain(problem.get().map(ErrorItem::general))
            .collect::<Vec<_>>()
    });
    let confirm = move || {
        removing.get().map(|(name, addresses)| {
            let body = format!(
                "{} addresses on profiles end in @{name}. Those holders will no longer be able \
                 to unlock their cards themselves with them.",
                count(addresses)
            );
            view! {
                <Confirm
                    title=format!("Stop allowing {name}?")
                    body=body
                    yes="Yes, stop allowing it"
                    on_yes=Callback::new(move |()| remove(name.clone()))
                    on_cancel=Callback::new(move |()| removing.set(None))
                />
            }
        })
    };
    let table = move || {
        list.get().map(|list| {
            let manage = may_manage();
            let mut columns = vec!["Domain", "Addresses on profiles", "Added"];
            if manage {
                columns.push("Action");
            }
            let rows = list
                .domains
                .into_iter()
                .map(|allowed| {
                    let action = manage.then(|| {
                        let (name, addresses) = (allowed.domain.clone(), allowed.addresses);
                        view! {
                            <td class="nhsuk-table__cell">
                                <RowButton
                                    label="Remove"
                                    about=name.clone()
                                    on_press=Callback::new(move |()| removing.set(Some((name.clone(), addresses))))
                                />
                            </td>
                        }
                    });
                    view! {
                        <tr class="nhsuk-table__row">
                            <td class="nhsuk-table__cell">{allowed.domain}</td>
                            <td class="nhsuk-table__cell nhsuk-table__cell--numeric">{count(allowed.addresses)}</td>
                            <td class="nhsuk-table__cell">{format!("{} by {}", date(allowed.added_at), allowed.added_by)}</td>
                            {action}
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <table class="nhsuk-table">
                    <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Allowed email domains"</caption>
                    {header_row(&columns)}
                    <tbody class="nhsuk-table__body">{rows}</tbody>
                </table>
            }
        })
    };
    view! {
        <ErrorSummary errors=errors />
        <Done message=done />
        <Heading title="Email domains" />
        <p>"Holders can unlock their cards themselves only with an address in one of these domains. Sub-domains need their own entry."</p>
        {confirm}
        {table}
        <Show when=may_manage>
            <h2>"Allow a domain"</h2>
            <form novalidate on:submit=add>
                <TextField
                    id=FIELD
                    label="Domain"
                    hint="For example, trust.nhs.uk"
                    value=domain
                    error=domain_error
                    autocomplete="off"
                    width="nhsuk-input--width-20"
                />
                <button class="nhsuk-button" type="submit">"Allow domain"</button>
            </form>
        </Show>
    }
}
