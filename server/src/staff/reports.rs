//! The RA manager's CSV report: unlocks and address registrations per organisation over a
//! range of days, from the audit trail.

use std::collections::BTreeMap;

use crate::audit::{Action, Outcome};
use crate::db;
use anyhow::Context;
use unlock_protocol::ErrorCode;

use super::audit_log::parse_day;
use crate::clock::Millis;
use crate::error::Failure;
use crate::state::AppState;

const DAY: Millis = 86_400_000;
/// The longest range one report covers.
const MAX_DAYS: i64 = 366;

/// A checked range of whole UTC days.
#[derive(Debug, Clone)]
pub struct Range {
    pub from: String,
    pub to: String,
    start: Millis,
    end: Millis,
}

impl Range {
    /// `from` and `to` inclusive, like `2026-11-01` and `2026-11-30`.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, Failure> {
        let refuse = |message: &str| Failure::client_message(ErrorCode::QueryInvalid, message);
        let day = |raw: Option<&str>, name: &str| {
            raw.map(str::trim)
                .and_then(|raw| parse_day(raw).map(|at| (raw.to_owned(), at)))
                .ok_or_else(|| refuse(&format!("Enter the {name} date like 2026-11-01.")))
        };
        let (from, start) = day(from, "first")?;
        let (to, last) = day(to, "last")?;
        if last < start {
            return Err(refuse(
                "The last date must be the same as or after the first date.",
            ));
        }
        if (last - start) / DAY >= MAX_DAYS {
            return Err(refuse("A report can cover at most 366 days."));
        }
        Ok(Self {
            from,
            to,
            start,
            end: last + DAY,
        })
    }

    /// `unlocks-and-registrations-2026-11-01-to-2026-11-30.csv`.
    pub fn file_name(&self) -> String {
        format!("unlocks-and-registrations-{}-to-{}.csv", self.from, self.to)
    }
}

/// One organisation's line.
#[derive(Debug, Default, Clone, Copy)]
struct Line {
    unlocks: i64,
    added: i64,
    removed: i64,
}

/// The report as CSV: a header, then one line per organisation (every organisation with
/// holders, and any that had activity), in name order.
pub async fn organisations(state: &AppState, range: &Range) -> anyhow::Result<String> {
    let mut conn = state.db.reader().await?;
    let mut lines: BTreeMap<String, Line> = db::figures::organisations(&mut conn)
        .await?
        .into_iter()
        .map(|organisation| (organisation, Line::default()))
        .collect();
    for (action, outcome, pick) in [
        (
            Action::JourneyReceipt,
            Outcome::Unlocked,
            (|line: &mut Line| &mut line.unlocks) as fn(&mut Line) -> &mut i64,
        ),
        (Action::StaffEmailAdd, Outcome::Added, |line: &mut Line| {
            &mut line.added
        }),
        (
            Action::StaffEmailRemove,
            Outcome::Removed,
            |line: &mut Line| &mut line.removed,
        ),
    ] {
        let counts =
            db::figures::steps_per_organisation(&mut conn, action, outcome, range.start, range.end)
                .await?;
        for (organisation, count) in counts {
            *pick(lines.entry(organisation).or_default()) += count;
        }
    }
    let minutes = i64::from(state.config.staff.minutes_saved_per_unlock);
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record([
        "organisation",
        "unlocks",
        "hours_saved",
        "emails_added",
        "emails_removed",
        "from",
        "to",
    ])?;
    for (organisation, line) in lines {
        let hours = format!("{:.1}", (line.unlocks * minutes) as f64 / 60.0);
        csv.write_record([
            defuse(&organisation),
            line.unlocks.to_string(),
            hours,
            line.added.to_string(),
            line.removed.to_string(),
            range.from.clone(),
            range.to.clone(),
        ])?;
    }
    String::from_utf8(csv.into_inner().context("finish the CSV")?).context("the CSV is UTF-8")
}

/// A cell a spreadsheet would take as a formula is made plain text.
fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_whole_days_and_bounded() {
        let range = Range::parse(Some("2026-11-01"), Some("2026-11-30")).unwrap();
        assert_eq!((range.end - range.start) / DAY, 30);
        assert_eq!(
            range.file_name(),
            "unlocks-and-registrations-2026-11-01-to-2026-11-30.csv"
        );
        assert!(Range::parse(Some("2026-11-30"), Some("2026-11-01")).is_err());
        assert!(Range::parse(Some("2025-01-01"), Some("2026-11-01")).is_err());
        assert!(Range::parse(None, Some("2026-11-01")).is_err());
        assert!(Range::parse(Some("yesterday"), Some("2026-11-01")).is_err());
    }

    #[test]
    fn formulas_are_defused() {
        assert_eq!(defuse("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse("Example Trust"), "Example Trust");
    }
}
