//! The audit log for staff: newest first, filtered by who, what, outcome, holder and dates,
//! a page at a time. Addresses in details are masked unless the role may see them.

use anyhow::Context;
use axum::http::StatusCode;
use serde::Deserialize;
use sqlx::{QueryBuilder, Sqlite};
use unlock_protocol::staff::{AuditEvent, AuditPage, Permission};
use unlock_protocol::{EmailAddress, ErrorCode, HolderId};

use super::session::StaffUser;
use crate::clock::Millis;
use crate::error::Failure;
use crate::state::AppState;

/// Events on one page.
const PAGE: usize = 50;
const DAY: Millis = 86_400_000;

/// `GET /api/staff/audit?...`: each filter is optional; empty ones are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Exactly: `holder`, `system`, `operator`, `staff:<username>`.
    pub actor: Option<String>,
    /// The start of the action's name: `journey.` or `staff.email_add`.
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// A 12-digit user id.
    pub holder: Option<String>,
    /// First and last day (UTC), `2026-12-01`.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Events older than this id (the previous page's `next_before`).
    pub before: Option<i64>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn refuse(message: &str) -> Failure {
    Failure::client_message(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::QueryInvalid,
        message,
    )
}

/// Midnight UTC at the start of `2026-12-01`.
pub fn parse_day(raw: &str) -> Option<Millis> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(raw.trim(), &format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// A date filter, or the sentence saying what is wrong with it.
pub fn day_filter(raw: Option<&str>, name: &str) -> Result<Option<Millis>, Failure> {
    raw.map(|raw| {
        parse_day(raw).ok_or_else(|| refuse(&format!("Enter the {name} date like 2026-12-01.")))
    })
    .transpose()
}

pub async fn page(
    state: &AppState,
    user: &StaffUser,
    filter: &AuditFilter,
) -> Result<AuditPage, Failure> {
    let from = day_filter(given(&filter.from), "from")?;
    let to = day_filter(given(&filter.to), "to")?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(refuse(
            "The to date must be the same as or after the from date.",
        ));
    }
    let holder = given(&filter.holder)
        .map(|raw| HolderId::parse(raw).map_err(|error| refuse(&format!("{error}."))))
        .transpose()?;

    let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT id, at, actor, action, outcome, holder_id, journey_id, client_addr, detail
         FROM audit_events WHERE 1 = 1",
    );
    if let Some(actor) = given(&filter.actor) {
        query.push(" AND actor = ").push_bind(actor.to_owned());
    }
    if let Some(action) = given(&filter.action) {
        let escaped = action
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query
            .push(" AND action LIKE ")
            .push_bind(format!("{escaped}%"))
            .push(" ESCAPE '\\'");
    }
    if let Some(outcome) = given(&filter.outcome) {
        query.push(" AND outcome = ").push_bind(outcome.to_owned());
    }
    if let Some(holder) = &holder {
        query
            .push(" AND holder_id = ")
            .push_bind(holder.as_str().to_owned());
    }
    if let Some(from) = from {
        query.push(" AND at >= ").push_bind(from);
    }
    if let Some(to) = to {
        query.push(" AND at < ").push_bind(to + DAY);
    }
    if let Some(before) = filter.before {
        query.push(" AND id < ").push_bind(before);
    }
    query
        .push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::try_from(PAGE + 1).unwrap_or(i64::MAX));
    type Row = (
        i64,
        Millis,
        String,
        String,
        String,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = query
        .build_query_as()
        .fetch_all(&state.db.read)
        .await
        .context("read the audit log")?;
    let next_before = (rows.len() > PAGE).then(|| rows[PAGE - 1].0);
    let full = user.may(Permission::SeeFullEmails);
    let events = rows
        .into_iter()
        .take(PAGE)
        .map(
            |(id, at, actor, action, outcome, holder_id, journey_id, client_addr, detail)| {
                AuditEvent {
                    id,
                    at,
                    actor,
                    action,
                    outcome,
                    holder_id,
                    journey_id,
                    client_addr,
                    detail: detail.map(|text| if full { text } else { mask_addresses(&text) }),
                }
            },
        )
        .collect();
    Ok(AuditPage {
        events,
        next_before,
    })
}

/// `text` with every email address in it masked.
pub fn mask_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let address = word.trim_end_matches([',', ';', ':', ')', '.']);
            match EmailAddress::parse(address.trim_start_matches('(')) {
                Ok(email) if word.contains('@') => {
                    word.replacen(address.trim_start_matches('('), &email.masked(), 1)
                }
                _ => word.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_details_are_masked() {
        assert_eq!(
            mask_addresses("jane.doe@trust.example"),
            "j*******@trust.example"
        );
        assert_eq!(
            mask_addresses("to (jane.doe@trust.example), then x"),
            "to (j*******@trust.example), then x"
        );
        assert_eq!(
            mask_addresses("card 2d6bddb8ad096c2d"),
            "card 2d6bddb8ad096c2d"
        );
    }

    #[test]
    fn days_are_utc_midnights() {
        assert_eq!(parse_day("2026-11-28"), Some(1_795_824_000_000));
        assert_eq!(parse_day("28/11/2026"), None);
        assert_eq!(parse_day("2026-02-30"), None);
    }
}
