//! Time as milliseconds since the Unix epoch, injectable so tests can move it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as stored in the database.
pub type Millis = i64;

/// The server's source of "now".
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    /// A clock that only moves when told to.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: Millis) -> Self {
        Self::Manual(Arc::new(AtomicI64::new(start)))
    }

    pub fn now(&self) -> Millis {
        match self {
            Self::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Self::Manual(now) => now.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward; the system clock moves by itself.
    pub fn advance(&self, by: Duration) {
        if let Self::Manual(now) = self {
            now.fetch_add(millis(by), Ordering::SeqCst);
        }
    }
}

/// A duration in milliseconds, saturating.
pub fn millis(duration: Duration) -> Millis {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Whole seconds from `now` until `then`, rounded up, never negative.
pub fn seconds_until(now: Millis, then: Millis) -> u64 {
    u64::try_from((then - now).max(0))
        .unwrap_or(0)
        .div_ceil(1000)
}

/// `HH:MM` (UTC) of a timestamp, for messages.
pub fn clock_time_utc(at: Millis) -> String {
    let minutes_of_day = (at.div_euclid(60_000)).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minutes_of_day / 60, minutes_of_day % 60)
}

/// `28 November 2026 at 13:05 (UTC)`, for messages that say when something happened.
pub fn date_time_utc(at: Millis) -> String {
    let day = time::OffsetDateTime::from_unix_timestamp(at.div_euclid(1000))
        .map(|t| format!("{} {} {}", t.day(), t.month(), t.year()))
        .unwrap_or_default();
    format!("{day} at {} (UTC)", clock_time_utc(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now(), 1_000);
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now(), 3_000);
    }

    #[test]
    fn seconds_until_rounds_up_and_floors_at_zero() {
        assert_eq!(seconds_until(0, 1), 1);
        assert_eq!(seconds_until(0, 30_000), 30);
        assert_eq!(seconds_until(5, 0), 0);
    }

    #[test]
    fn clock_time_is_utc_hours_and_minutes() {
        // 2026-11-28T13:05:59Z
        assert_eq!(clock_time_utc(1_795_871_159_000), "13:05");
        assert_eq!(
            date_time_utc(1_795_871_159_000),
            "28 November 2026 at 13:05 (UTC)"
        );
    }
}
