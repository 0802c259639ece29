//! Live countdowns (code expiry, resend cool-down) and the sentences that show them.

use std::time::Duration;

use leptos::prelude::*;

/// Milliseconds since the epoch, as the browser's clock has it.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// A signal holding the browser clock, ticking every second while the page is shown. Set it
/// to [`now_ms`] when starting a countdown, so the first figure shown is the whole count.
pub fn use_clock() -> RwSignal<f64> {
    let now = RwSignal::new(now_ms());
    if let Ok(handle) = set_interval_with_handle(move || now.set(now_ms()), Duration::from_secs(1))
    {
        on_cleanup(move || handle.clear());
    }
    now
}

/// When something `seconds` from `now` happens, in milliseconds since the epoch.
pub fn deadline(now: f64, seconds: u64) -> f64 {
    now + seconds as f64 * 1000.0
}

/// Whole seconds from `now` until `deadline`, rounded up; 0 once it has passed.
pub fn seconds_until(deadline: f64, now: f64) -> u64 {
    let left = ((deadline - now) / 1000.0).ceil();
    if left > 0.0 { left as u64 } else { 0 }
}

/// "The code expires in 15 minutes", rounding up to whole minutes.
pub fn code_expiry_sentence(seconds: u64) -> String {
    let minutes = seconds.div_ceil(60).max(1);
    format!("The code expires in {}", plural(minutes, "minute"))
}

/// "You can ask for a new code in 30 seconds".
pub fn resend_wait_sentence(seconds: u64) -> String {
    format!(
        "You can ask for a new code in {}",
        plural(seconds, "second")
    )
}

/// "You have 2 tries left" (or none).
pub fn tries_left_sentence(tries: u8) -> String {
    match tries {
        0 => "You have no tries left with this code. Send a new code.".into(),
        1 => "You have 1 try left.".into(),
        n => format!("You have {n} tries left."),
    }
}

fn plural(count: u64, unit: &str) -> String {
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up_and_stop_at_zero() {
        let now = 1_000_000.0;
        let end = deadline(now, 30);
        assert_eq!(seconds_until(end, now), 30);
        assert_eq!(seconds_until(end, now + 100.0), 30);
        assert_eq!(seconds_until(end, now + 29_001.0), 1);
        assert_eq!(seconds_until(end, now + 30_000.0), 0);
        assert_eq!(seconds_until(end, now + 99_000.0), 0);
    }

    #[test]
    fn expiry_is_told_in_whole_minutes() {
        assert_eq!(code_expiry_sentence(900), "The code expires in 15 minutes");
        assert_eq!(code_expiry_sentence(841), "The code expires in 15 minutes");
        assert_eq!(code_expiry_sentence(840), "The code expires in 14 minutes");
        assert_eq!(code_expiry_sentence(61), "The code expires in 2 minutes");
        assert_eq!(code_expiry_sentence(60), "The code expires in 1 minute");
        assert_eq!(code_expiry_sentence(1), "The code expires in 1 minute");
    }

    #[test]
    fn cool_down_and_tries_read_naturally() {
        assert_eq!(
            resend_wait_sentence(30),
            "You can ask for a new code in 30 seconds"
        );
        assert_eq!(
            resend_wait_sentence(1),
            "You can ask for a new code in 1 second"
        );
        assert_eq!(tries_left_sentence(3), "You have 3 tries left.");
        assert_eq!(tries_left_sentence(1), "You have 1 try left.");
        assert!(tries_left_sentence(0).contains("Send a new code"));
    }
}
