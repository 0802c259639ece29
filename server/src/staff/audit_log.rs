//! The audit log for staff: newest first, filtered by who, what, outcome, holder and dates,
//! a page at a time. Addresses in details are masked unless the role may see them.

use serde::Deserialize;
use unlock_protocol::staff::{AuditEvent, AuditPage, Permission};
use unlock_protocol::{EmailAddress, ErrorCode, HolderId};

use super::session::StaffUser;
use crate::clock::Millis;
use crate::db;
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
    Failure::client_message(ErrorCode::QueryInvalid, message)
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

    let search = db::audit::Search {
        actor: given(&filter.actor),
        action_prefix: given(&filter.action),
        outcome: given(&filter.outcome),
        holder_id: holder.as_ref().map(HolderId::as_str),
        from,
        until: to.map(|to| to + DAY),
        before: filter.before,
        limit: i64::try_from(PAGE + 1).unwrap_or(i64::MAX),
    };
    let rows = db::audit::search(state.db.read_pool(), &search).await?;
    let next_before = (rows.len() > PAGE).then(|| rows[PAGE - 1].id);
    let full = user.may(Permission::SeeFullEmails);
    let events = rows
        .into_iter()
        .take(PAGE)
        .map(|row| AuditEvent {
            id: row.id,
            at: row.at,
            actor: row.actor,
            action: row.action,
            outcome: row.outcome,
            holder_id: row.holder_id,
            journey_id: row.journey_id,
            client_addr: row.client_addr,
            detail: row
                .detail
                .map(|text| if full { text } else { mask_addresses(&text) }),
            times: row.times,
        })
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
