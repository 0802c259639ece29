//! Figures, times and stored names as staff read them. Times are shown in UTC and say so:
//! the overview's days are UTC days, and every screen should agree.

use time::OffsetDateTime;
use unlock_protocol::{CardStatus, DeliveryState};

/// `28 Nov 2026, 09:05 UTC`.
pub fn date_time(at: i64) -> String {
    match utc(at) {
        Some(t) => format!("{}, {:02}:{:02} UTC", date_of(t), t.hour(), t.minute()),
        None => String::new(),
    }
}

/// `28 Nov 2026`.
pub fn date(at: i64) -> String {
    utc(at).map(date_of).unwrap_or_default()
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
    fn times_are_utc_and_say_so() {
        // 2026-11-28T13:05:59Z
        assert_eq!(date_time(1_795_871_159_000), "28 Nov 2026, 13:05 UTC");
        assert_eq!(date(1_795_871_159_000), "28 Nov 2026");
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
