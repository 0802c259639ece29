//! The service's time zone as the staff screens need it: its name and its UTC offsets over
//! the years a screen may show, worked out by the server from the tz database, so the page
//! carries no tz database of its own and shows the same zone names as the emails.

use serde::{Deserialize, Serialize};

/// The service's time zone: which offset and abbreviation apply at any moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeZoneRules {
    /// The tz database name, such as `Europe/London`.
    pub name: String,
    /// Periods of one offset each, oldest first; each lasts until the next one starts. The
    /// first also covers every earlier time, the last every later one.
    pub periods: Vec<ZonePeriod>,
}

/// From `from` on, local time is UTC + `offset_seconds`, called `abbreviation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZonePeriod {
    /// Milliseconds since the Unix epoch.
    pub from: i64,
    pub offset_seconds: i32,
    /// What the zone is called then, such as `GMT` or `BST`.
    pub abbreviation: String,
}

impl TimeZoneRules {
    /// UTC, for a page that has not been told the service's zone.
    pub fn utc() -> Self {
        Self {
            name: "UTC".into(),
            periods: vec![ZonePeriod {
                from: i64::MIN,
                offset_seconds: 0,
                abbreviation: "UTC".into(),
            }],
        }
    }

    /// The offset in seconds and the abbreviation at `at` (milliseconds since the epoch).
    pub fn at(&self, at: i64) -> (i32, &str) {
        let started = self.periods.partition_point(|period| period.from <= at);
        match self.periods.get(started.saturating_sub(1)) {
            Some(period) => (period.offset_seconds, &period.abbreviation),
            None => (0, "UTC"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_moment_falls_in_the_period_that_started_last() {
        let london = TimeZoneRules {
            name: "Europe/London".into(),
            periods: vec![
                ZonePeriod {
                    from: 1_000,
                    offset_seconds: 0,
                    abbreviation: "GMT".into(),
                },
                ZonePeriod {
                    from: 2_000,
                    offset_seconds: 3600,
                    abbreviation: "BST".into(),
                },
            ],
        };
        assert_eq!(london.at(0), (0, "GMT"));
        assert_eq!(london.at(1_999), (0, "GMT"));
        assert_eq!(london.at(2_000), (3600, "BST"));
        assert_eq!(london.at(i64::MAX), (3600, "BST"));
        let empty = TimeZoneRules {
            name: "Nowhere".into(),
            periods: Vec::new(),
        };
        assert_eq!(empty.at(5), (0, "UTC"));
        assert_eq!(TimeZoneRules::utc().at(i64::MIN), (0, "UTC"));
    }
}
