//! The service's time zone (`time_zone`, default `Europe/London`): every time an email or a
//! staff screen shows is in it, daylight saving included, and names the zone as people know
//! it ("14:05 BST", "09:00 GMT") so nobody has to guess.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unlock_protocol::staff::{TimeZoneRules, ZonePeriod};

use crate::clock::Millis;

/// The zone used when none is configured.
pub const DEFAULT: &str = "Europe/London";

/// A time zone from the tz database (the system's copy where there is one, else the copy
/// built into the server).
#[derive(Clone)]
pub struct ServiceZone {
    name: String,
    tz: TimeZone,
}

impl ServiceZone {
    /// The zone the tz database calls `name`; an error sentence that says what to write if
    /// it knows no such zone.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        let name = name.trim();
        let tz = TimeZone::get(name).map_err(|_| {
            anyhow::anyhow!(
                "time_zone {name:?} is not a time zone the tz database knows: use a name such as \
                 \"Europe/London\" or \"UTC\""
            )
        })?;
        Ok(Self {
            name: name.to_owned(),
            tz,
        })
    }

    /// The tz database name, such as `Europe/London`.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn zoned(&self, at: Millis) -> ZonedDateTime {
        Timestamp::from_millisecond(at)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned_datetime(self.tz.clone())
    }

    /// `14:05 BST`.
    pub fn clock_time(&self, at: Millis) -> String {
        self.zoned(at).strftime("%H:%M %Z").to_string()
    }

    /// `5 July 2026 at 14:05 BST`.
    pub fn date_time(&self, at: Millis) -> String {
        self.zoned(at).strftime("%-d %B %Y at %H:%M %Z").to_string()
    }

    /// An email's `Date` header, with this zone's offset: `Sun, 05 Jul 2026 14:05:00 +0100`.
    pub fn email_date(&self, at: Millis) -> String {
        self.zoned(at)
            .strftime("%a, %d %b %Y %H:%M:%S %z")
            .to_string()
    }

    /// The zone's offsets from `from` to `to` (both milliseconds since the epoch), for a
    /// page that must show times in it without a tz database of its own.
    pub fn rules(&self, from: Millis, to: Millis) -> TimeZoneRules {
        let start = Timestamp::from_millisecond(from).unwrap_or(Timestamp::UNIX_EPOCH);
        let info = self.tz.to_offset_info(start);
        let mut periods = vec![ZonePeriod {
            from: i64::MIN,
            offset_seconds: info.offset().seconds(),
            abbreviation: info.abbreviation().to_owned(),
        }];
        for transition in self.tz.following(start) {
            let at = transition.timestamp().as_millisecond();
            if at > to {
                break;
            }
            periods.push(ZonePeriod {
                from: at,
                offset_seconds: transition.offset().seconds(),
                abbreviation: transition.abbreviation().to_owned(),
            });
        }
        TimeZoneRules {
            name: self.name.clone(),
            periods,
        }
    }
}

impl Default for ServiceZone {
    fn default() -> Self {
        // The built-in tz database always has it.
        Self::parse(DEFAULT).expect("the tz database knows Europe/London")
    }
}

impl fmt::Debug for ServiceZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Serialize for ServiceZone {
    fn serialize<S: Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for ServiceZone {
    fn deserialize<D: Deserializer<'de>>(input: D) -> Result<Self, D::Error> {
        let name = String::deserialize(input)?;
        Self::parse(&name).map_err(|error| serde::de::Error::custom(format!("{error:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-07-05T13:05:00Z, in British Summer Time.
    const JULY: Millis = 1_783_256_700_000;
    /// 2026-01-15T13:05:00Z, in Greenwich Mean Time.
    const JANUARY: Millis = 1_768_482_300_000;

    #[test]
    fn london_times_say_bst_in_summer_and_gmt_in_winter() {
        let london = ServiceZone::default();
        assert_eq!(london.name(), "Europe/London");
        assert_eq!(london.clock_time(JULY), "14:05 BST");
        assert_eq!(london.date_time(JULY), "5 July 2026 at 14:05 BST");
        assert_eq!(london.email_date(JULY), "Sun, 05 Jul 2026 14:05:00 +0100");
        assert_eq!(london.clock_time(JANUARY), "13:05 GMT");
        assert_eq!(london.date_time(JANUARY), "15 January 2026 at 13:05 GMT");
        assert_eq!(
            london.email_date(JANUARY),
            "Thu, 15 Jan 2026 13:05:00 +0000"
        );
    }

    #[test]
    fn other_zones_are_named_too() {
        let utc = ServiceZone::parse("UTC").unwrap();
        assert_eq!(utc.clock_time(JULY), "13:05 UTC");
        let new_york = ServiceZone::parse("America/New_York").unwrap();
        assert_eq!(new_york.clock_time(JULY), "09:05 EDT");
        assert_eq!(new_york.clock_time(JANUARY), "08:05 EST");
    }

    #[test]
    fn an_unknown_zone_is_refused_with_a_sentence() {
        let error = ServiceZone::parse("Europe/Lundon").unwrap_err().to_string();
        assert!(error.contains("\"Europe/Lundon\""), "{error}");
        assert!(error.contains("Europe/London"), "{error}");
        assert!(ServiceZone::parse("").is_err());
    }

    #[test]
    fn the_rules_a_page_gets_give_the_same_names_as_the_emails() {
        let london = ServiceZone::default();
        let rules = london.rules(JANUARY, JULY + 86_400_000);
        assert_eq!(rules.name, "Europe/London");
        // GMT in January, BST from the last Sunday in March (29 March 2026, 01:00 UTC).
        assert_eq!(rules.periods.len(), 2, "{rules:?}");
        assert_eq!(rules.at(JANUARY), (0, "GMT"));
        assert_eq!(rules.periods[1].from, 1_774_746_000_000);
        assert_eq!(rules.at(JULY), (3600, "BST"));
        // Before the window: the offset at its start.
        assert_eq!(rules.at(0), (0, "GMT"));
    }
}
