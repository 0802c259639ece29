//! `/status/reports`: RA managers download unlocks and address registrations per
//! organisation for a range of days, as CSV.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use time::{Date, OffsetDateTime};
use unlock_protocol::staff::Permission;

use crate::components::{ErrorItem, ErrorSummary, Heading, TextField};
use crate::staff::api::encode;
use crate::staff::use_staff;

/// The longest range the server reports on.
const MAX_DAYS: i64 = 366;

fn parse_day(raw: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(raw.trim(), &format).ok()
}

/// Checks a range as the server will; the sentence for each field that is wrong.
pub fn check_range(from: &str, to: &str) -> Result<(Date, Date), (Option<String>, Option<String>)> {
    let (first, last) = (parse_day(from), parse_day(to));
    let wrong = |day: Option<Date>, name: &str| {
        day.is_none()
            .then(|| format!("Enter the {name} day as year-month-day, like 2026-11-01"))
    };
    match (first, last) {
        (Some(first), Some(last)) if last < first => Err((
            None,
            Some("The last day must be the same as or after the first day".into()),
        )),
        (Some(first), Some(last)) if (last - first).whole_days() >= MAX_DAYS => {
            Err((None, Some("A report can cover at most 366 days".into())))
        }
        (Some(first), Some(last)) => Ok((first, last)),
        _ => Err((wrong(first, "first"), wrong(last, "last"))),
    }
}

/// `2026-11-01`.
fn day_text(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

#[component]
pub fn ReportsPage() -> impl IntoView {
    let session = use_staff();
    let today = OffsetDateTime::from_unix_timestamp((js_sys::Date::now() / 1000.0) as i64)
        .map(OffsetDateTime::date)
        .unwrap_or(Date::MIN);
    let from = RwSignal::new(day_text(today.replace_day(1).unwrap_or(today)));
    let to = RwSignal::new(day_text(today));
    let from_error = RwSignal::new(None::<String>);
    let to_error = RwSignal::new(None::<String>);
    let download = RwSignal::new(None::<String>);

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        match check_range(&from.get_untracked(), &to.get_untracked()) {
            Ok((first, last)) => {
                from_error.set(None);
                to_error.set(None);
                let url = format!(
                    "/api/staff/reports/organisations.csv?from={}&to={}",
                    encode(&day_text(first)),
                    encode(&day_text(last))
                );
                download.set(Some(url.clone()));
                // The server answers with an attachment: the browser saves it and stays here.
                let _ = window().location().set_href(&url);
            }
            Err((first, last)) => {
                download.set(None);
                from_error.set(first);
                to_error.set(last);
            }
        }
    };
    let errors = Signal::derive(move || {
        [("from", from_error.get()), ("to", to_error.get())]
            .into_iter()
            .filter_map(|(id, message)| message.map(|m| ErrorItem::field(id, m)))
            .collect::<Vec<_>>()
    });
    let allowed = move || session.may(Permission::ExportReports);
    view! {
        <ErrorSummary errors=errors />
        <Heading title="Reports" />
        <Show
            when=allowed
            fallback=|| view! { <p>"Reports are for Registration Authority managers. Ask one if you need a report."</p> }
        >
            <p>"Unlocks, hours of RA time saved, and email addresses added and removed by RA staff, per organisation, for a range of days (UTC). The file opens in a spreadsheet."</p>
            <form novalidate on:submit=submit>
                <TextField
                    id="from"
                    label="First day"
                    hint="For example, 2026-11-01"
                    value=from
                    error=from_error
                    autocomplete="off"
                    width="nhsuk-input--width-10"
                />
                <TextField
                    id="to"
                    label="Last day"
                    hint="For example, 2026-11-30"
                    value=to
                    error=to_error
                    autocomplete="off"
                    width="nhsuk-input--width-10"
                />
                <button class="nhsuk-button" type="submit">"Download report (CSV)"</button>
            </form>
            {move || download.get().map(|url| view! {
                <p role="status">
                    "Your report is downloading. If it does not, "
                    <a href=url download="">"download the report"</a>
                    "."
                </p>
            })}
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_as_the_server_checks_them() {
        assert!(check_range("2026-11-01", "2026-11-30").is_ok());
        assert!(check_range("2026-11-01", "2026-11-01").is_ok());
        let (first, last) = check_range("1 Nov", "2026-11-30").unwrap_err();
        assert!(first.unwrap().contains("first day"));
        assert!(last.is_none());
        let (_, last) = check_range("2026-11-30", "2026-11-01").unwrap_err();
        assert!(last.unwrap().contains("after the first day"));
        let (_, last) = check_range("2025-01-01", "2026-11-01").unwrap_err();
        assert!(last.unwrap().contains("366 days"));
    }
}
