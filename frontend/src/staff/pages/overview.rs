//! `/status`: how the service is doing today and over 30 days, the RA time it saved, why
//! journeys failed, the email outbox, and unlocks per day. It refreshes itself.

use std::time::Duration;

use leptos::prelude::*;
use unlock_protocol::staff::{Overview, Period};

use super::figures_header;
use crate::components::{ErrorItem, ErrorSummary, Heading};
use crate::pages::PageScope;
use crate::staff::chart::UnlocksChart;
use crate::staff::format::{count, date_time, hours, how_long};
use crate::staff::route::StaffPage;
use crate::staff::{api, use_staff};

/// How often the figures are fetched again while the page is open.
const REFRESH: Duration = Duration::from_secs(15);

#[component]
pub fn OverviewPage() -> impl IntoView {
    let scope = PageScope::new();
    let session = use_staff();
    let overview = RwSignal::new(None::<Overview>);
    let problem = RwSignal::new(None::<String>);

    let fetch = move |background: bool| {
        scope.spawn(async move {
            let url = "/api/staff/overview";
            let result = if background {
                api::get_in_background::<Overview>(url).await
            } else {
                api::get::<Overview>(url).await
            };
            match result {
                Ok(figures) => {
                    problem.set(None);
                    overview.set(Some(figures));
                }
                Err(failure) => problem.set(session.problem(failure)),
            }
        });
    };
    fetch(false);
    if let Ok(handle) = set_interval_with_handle(move || fetch(true), REFRESH) {
        on_cleanup(move || handle.clear());
    }

    let errors = Signal::derive(move || {
        problem
            .get()
            .map(ErrorItem::general)
            .into_iter()
            .collect::<Vec<_>>()
    });
    let body = move || {
        overview.get().map(|figures| {
            let days = figures.unlocks_per_day.clone();
            view! {
                <p class="nhsuk-body-s">
                    {format!("Updated {}. The figures refresh every {} seconds. Days are UTC days.", date_time(figures.generated_at), REFRESH.as_secs())}
                </p>
                <HoursSaved figures=figures.clone() />
                <Journeys figures=figures.clone() />
                <Failures figures=figures.clone() />
                <Outbox figures=figures.clone() />
                <UnderAttempts figures=figures.clone() />
                <InsiderFlags figures=figures />
                <h2>"Cards unlocked per day"</h2>
                <UnlocksChart days=Signal::derive(move || days.clone()) />
            }
        })
    };
    view! {
        <ErrorSummary errors=errors />
        <Heading title="Overview" />
        <Show when=move || overview.with(Option::is_some) fallback=|| view! { <p>"Loading…"</p> }>
            {body}
        </Show>
    }
}

#[component]
fn HoursSaved(figures: Overview) -> impl IntoView {
    let card = |when: &'static str, period: &Period| {
        let alone = period
            .unlocks
            .saturating_sub(period.remote_unlocks_with_ra_help);
        let cards = if alone == 1 { "card" } else { "cards" };
        let mut detail = format!(
            "{} {cards} unlocked by holders alone × {} minutes of RA time each",
            count(alone),
            figures.minutes_saved_per_unlock
        );
        if period.remote_unlocks_with_ra_help > 0 {
            detail.push_str(&format!(
                ", and {} remote unlocks with RA help × {} minutes each",
                count(period.remote_unlocks_with_ra_help),
                figures.minutes_saved_per_ra_unlock
            ));
        }
        view! {
            <div class="nhsuk-grid-column-one-half nhsuk-card-group__item">
                <div class="nhsuk-card">
                    <div class="nhsuk-card__content">
                        <h2 class="nhsuk-card__heading nhsuk-heading-s">{format!("Hours saved {when}")}</h2>
                        <p class="app-figure">{hours(period.hours_saved)}</p>
                        <p class="nhsuk-card__description">{detail}</p>
                    </div>
                </div>
            </div>
        }
    };
    view! {
        <div class="nhsuk-grid-row nhsuk-card-group">
            {card("today", &figures.today)}
            {card("in the last 30 days", &figures.last_30_days)}
        </div>
    }
}

#[component]
fn Journeys(figures: Overview) -> impl IntoView {
    type Pick = fn(&Period) -> u64;
    let rows: [(&str, Pick); 6] = [
        ("Journeys started", |p| p.journeys_started),
        ("Security codes sent", |p| p.codes_sent),
        ("Security codes typed in correctly", |p| p.codes_verified),
        ("Cards unlocked", |p| p.unlocks),
        ("Remote unlocks with RA help", |p| {
            p.remote_unlocks_with_ra_help
        }),
        ("Failed or refused", |p| p.failed),
    ];
    let rows = rows
        .into_iter()
        .map(|(label, pick)| {
            view! {
                <tr class="nhsuk-table__row">
                    <th scope="row" class="nhsuk-table__header">{label}</th>
                    <td class="nhsuk-table__cell nhsuk-table__cell--numeric">{count(pick(&figures.today))}</td>
                    <td class="nhsuk-table__cell nhsuk-table__cell--numeric">{count(pick(&figures.last_30_days))}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="nhsuk-table">
            <caption class="nhsuk-table__caption nhsuk-table__caption--m">"Journeys"</caption>
            {figures_header(&["Figure", "Today", "Last 30 days"])}
            <tbody class="nhsuk-table__body">{rows}</tbody>
        </table>
    }
}

#[component]
fn Failures(figures: Overview) -> impl IntoView {
    // Every reason seen in the 30 days, with today's count beside it.
    let rows = figures
        .last_30_days
        .failures
        .iter()
        .map(|reason| {
            let today = figures
                .today
                .failures
                .iter()
                .find(|t| t.reason == reason.reason)
                .map_or(0, |t| t.count);
            view! {
                <tr class="nhsuk-table__row">
                    <th scope="row" class="nhsuk-table__header">{reason.label.clone()}</th>
                    <td class="nhsuk-table__cell nhsuk-table__cell--numeric">{count(today)}</td>
                    <td class="nhsuk-table__cell nhsuk-table__cell--numeric">{count(reason.count)}</td>
                </tr>
            }
        })
        .collect_view();
    let table = if figures.last_30_days.failures.is_empty() {
        view! { <p>"Nothing failed in the last 30 days."</p> }.into_any()
    } else {
        view! {
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Failures by reason"</caption>
                {figures_header(&["Reason", "Today", "Last 30 days"])}
                <tbody class="nhsuk-table__body">{rows}</tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <h2>"Why journeys failed"</h2>
        <p>"A journey can be refused more than once, for example a card that is not the holder's and then their own."</p>
        {table}
    }
}

#[component]
fn UnderAttempts(figures: Overview) -> impl IntoView {
    let holders = figures.holders_under_attempts;
    let table = if holders.is_empty() {
        view! { <p>"No holder has had repeated wrong security codes today."</p> }.into_any()
    } else {
        let rows = holders
            .into_iter()
            .map(|holder| {
                let locked = match (holder.locked_until, holder.locked_until_released) {
                    (Some(_), true) => "Until released".to_owned(),
                    (Some(until), false) => format!("Until {}", date_time(until)),
                    (None, _) => "No".to_owned(),
                };
                view! {
                    <tr class="nhsuk-table__row">
                        <th scope="row" class="nhsuk-table__header">{holder_link(&holder.holder_id)}</th>
                        <td class="nhsuk-table__cell nhsuk-table__cell--numeric">{count(holder.wrong_codes_today)}</td>
                        <td class="nhsuk-table__cell nhsuk-table__cell--numeric">{count(holder.wrong_codes_in_all)}</td>
                        <td class="nhsuk-table__cell">{locked}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Holders with repeated wrong security codes"</caption>
                {figures_header(&["Holder", "Wrong codes today", "Wrong codes in all", "Locked out"])}
                <tbody class="nhsuk-table__body">{rows}</tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <h2>"Holders with repeated wrong security codes"</h2>
        <p>"Someone may be guessing these holders' codes. Their own browsers keep working; a holder locked out until released needs an RA to release them on their profile."</p>
        {table}
    }
}

/// A link to a holder's profile, for a table's row header.
fn holder_link(id: &unlock_protocol::HolderId) -> impl IntoView + use<> {
    let href = StaffPage::Holder(id.clone()).path();
    view! { <a href=href>{id.to_string()}</a> }
}

#[component]
fn InsiderFlags(figures: Overview) -> impl IntoView {
    let unlocks = figures.unlocks_via_new_addresses;
    let unlocks_table = if unlocks.is_empty() {
        view! { <p>"No card was unlocked through an address added in the week before."</p> }
            .into_any()
    } else {
        let rows = unlocks
            .into_iter()
            .map(|unlock| {
                let by = unlock.added_by.trim_start_matches("staff:").to_owned();
                view! {
                    <tr class="nhsuk-table__row">
                        <th scope="row" class="nhsuk-table__header">{holder_link(&unlock.holder_id)}</th>
                        <td class="nhsuk-table__cell">{unlock.card}</td>
                        <td class="nhsuk-table__cell">{date_time(unlock.unlocked_at)}</td>
                        <td class="nhsuk-table__cell">{format!("{by}, {}", date_time(unlock.added_at))}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Unlocks through an address added lately"</caption>
                {figures_header(&["Holder", "Card", "Unlocked", "Address added by"])}
                <tbody class="nhsuk-table__body">{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let releases = figures.repeated_releases;
    let releases_table = if releases.is_empty() {
        view! { <p>"No holder's lock-outs were released more than once this week."</p> }.into_any()
    } else {
        let rows = releases
            .into_iter()
            .map(|holder| {
                view! {
                    <tr class="nhsuk-table__row">
                        <th scope="row" class="nhsuk-table__header">{holder_link(&holder.holder_id)}</th>
                        <td class="nhsuk-table__cell nhsuk-table__cell--numeric">{count(holder.releases)}</td>
                        <td class="nhsuk-table__cell">{date_time(holder.last_released_at)}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Lock-outs released more than once"</caption>
                {figures_header(&["Holder", "Releases in 7 days", "Last released"])}
                <tbody class="nhsuk-table__body">{rows}</tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <h2>"Unlocks through an address added lately"</h2>
        <p>"Cards unlocked in the last 30 days through an email address staff added to the profile in the week before. Check the holder asked for it."</p>
        {unlocks_table}
        <h2>"Lock-outs released more than once"</h2>
        <p>"Holders whose lock-outs staff released more than once in the last 7 days. An RA may release a holder 3 times a week; after that only an RA manager can."</p>
        {releases_table}
    }
}

#[component]
fn Outbox(figures: Overview) -> impl IntoView {
    let outbox = figures.outbox;
    let waiting = match (outbox.queued, outbox.oldest_queued_seconds) {
        (0, _) => "None".to_owned(),
        (n, Some(seconds)) => format!("{} (the oldest for {})", count(n), how_long(seconds)),
        (n, None) => count(n),
    };
    let row = |key: &'static str, value: String| {
        view! {
            <div class="nhsuk-summary-list__row">
                <dt class="nhsuk-summary-list__key">{key}</dt>
                <dd class="nhsuk-summary-list__value">{value}</dd>
            </div>
        }
    };
    view! {
        <h2>"Emails"</h2>
        <dl class="nhsuk-summary-list">
            {row("Waiting to be sent", waiting)}
            {row("Not sent, given up today", count(outbox.failed_today))}
            {row("Not sent, given up in the last 30 days", count(outbox.failed_last_30_days))}
        </dl>
    }
}
