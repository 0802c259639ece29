//! Figures, times and stored names as staff read them. Times are shown in the service's
//! time zone, which the server sends with who is signed in (its offsets, worked out from the
//! tz database, so this page needs none), and name it as the emails do: `09:05 GMT`,
//! `14:05 BST`. Until the server has said, they are UTC and say so.

use std::cell::RefCell;

use time::{OffsetDateTime, UtcOffset};
use unlock_protocol::staff::TimeZoneRules;
use unlock_protocol::{CardStatus, DeliveryState};

thread_local! {
    static ZONE: RefCell<TimeZoneRules> = RefCell::new(TimeZoneRules::utc());
}

/// Shows times in `zone` from now on.
pub fn set_time_zone(zone: TimeZoneRules) {
    ZONE.with(|current| *current.borrow_mut() = zone);
}

/// `28 Nov 2026, 09:05 GMT`.
pub fn date_time(at: i64) -> String {
    match local(at) {
        Some((t, zone)) => format!("{}, {:02}:{:02} {zone}", date_of(t), t.hour(), t.minute()),
        None => String::new(),
    }
}

/// `28 Nov 2026`, the day in the service's zone.
pub fn date(at: i64) -> String {
    local(at).map(|(t, _)| date_of(t)).unwrap_or_default()
}

/// The moment `at` in the service's zone, and the zone's name then.
fn local(at: i64) -> Option<(OffsetDateTime, String)> {
    let (offset, name) = ZONE.with(|zone| {
        let zone = zone.borrow();
        let (offset, name) = zone.at(at);
        (offset, name.to_owned())
    });
    let offset = UtcOffset::from_whole_seconds(offset).ok()?;
    Some((utc(at)?.to_offset(offset), name))
}

/// `28 Nov` for a day named `2026-11-28`, as the chart labels days.
pub fn short_day(day: &str) -> String {
    let mut parts = day.split('-').skip(1);
    let month = parts.next().and_then(|m| m.parse::<u8>().ok());
    let day = parts.next().and_then(|d| d.parse::<u8>().ok());
    match (month.and_then(|m| time::Month::try_from(m).ok()), day) {
        (Some(month), Some(day)) => format!("{day} {}", &month.to_string()[..3]),
        _ => String::new(),
    }
}

fn utc(at: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(at.div_euclid(1000)).ok()
}

fn date_of(t: OffsetDateTime) -> String {
    format!("{} {} {}", t.day(), &t.month().to_string()[..3], t.year())
}

/// `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `16,666.7`: hours to one decimal place.
pub fn hours(hours: f64) -> String {
    let tenths = (hours * 10.0).round().max(0.0) as u64;
    format!("{}.{}", count(tenths / 10), tenths % 10)
}

/// `3 minutes`, `1 hour`, `2 days`: roughly how long, for waits.
pub fn how_long(seconds: u64) -> String {
    let (n, unit) = match seconds {
        0..=59 => (seconds, "second"),
        60..=3599 => (seconds / 60, "minute"),
        3600..=86_399 => (seconds / 3600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// What an email in the outbox was, in words.
pub fn email_kind(kind: &str) -> &str {
    match kind {
        "one_time_code" => "Security code",
        "card_unlocked" => "Card unlocked notice",
        "email_added" => "Address added notice",
        "email_removed" => "Address removed notice",
        other => other,
    }
}

/// The tag colour and words for an email's delivery state.
pub fn delivery_state(state: DeliveryState) -> (&'static str, &'static str) {
    match state {
        DeliveryState::Sent => ("nhsuk-tag nhsuk-tag--green", "Sent"),
        DeliveryState::Queued => ("nhsuk-tag nhsuk-tag--blue", "Waiting to send"),
        DeliveryState::Failed => ("nhsuk-tag nhsuk-tag--red", "Not sent"),
    }
}

/// The tag colour and words for a card's status.
pub fn card_status(status: CardStatus) -> (&'static str, &'static str) {
    match status {
        CardStatus::Active => ("nhsuk-tag nhsuk-tag--green", "Active"),
        CardStatus::Suspended => ("nhsuk-tag nhsuk-tag--orange", "Suspended"),
        CardStatus::Cancelled => ("nhsuk-tag nhsuk-tag--red", "Cancelled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_in_the_service_zone_and_name_it() {
        // 2026-11-28T13:05:59Z
        assert_eq!(date_time(1_795_871_159_000), "28 Nov 2026, 13:05 UTC");
        assert_eq!(date(1_795_871_159_000), "28 Nov 2026");
        // Europe/London as the server describes it: GMT, then BST from 29 March 2026 01:00 UTC.
        set_time_zone(TimeZoneRules {
            name: "Europe/London".into(),
            periods: vec![
                unlock_protocol::staff::ZonePeriod {
                    from: i64::MIN,
                    offset_seconds: 0,
                    abbreviation: "GMT".into(),
                },
                unlock_protocol::staff::ZonePeriod {
                    from: 1_774_746_000_000,
                    offset_seconds: 3600,
                    abbreviation: "BST".into(),
                },
            ],
        });
        // 2026-01-15T13:05:00Z and 2026-07-05T23:30:00Z (past midnight in London).
        assert_eq!(date_time(1_768_482_300_000), "15 Jan 2026, 13:05 GMT");
        assert_eq!(date_time(1_783_294_200_000), "6 Jul 2026, 00:30 BST");
        assert_eq!(date(1_783_294_200_000), "6 Jul 2026");
        set_time_zone(TimeZoneRules::utc());
        assert_eq!(short_day("2026-11-28"), "28 Nov");
        assert_eq!(short_day("2026-09-01"), "1 Sep");
        assert_eq!(short_day("nonsense"), "");
    }

    #[test]
    fn figures_read_easily() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(hours(16_666.66), "16,666.7");
        assert_eq!(hours(0.3), "0.3");
        assert_eq!(how_long(1), "1 second");
        assert_eq!(how_long(150), "2 minutes");
        assert_eq!(how_long(7200), "2 hours");
        assert_eq!(how_long(200_000), "2 days");
    }
}
