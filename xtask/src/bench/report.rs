//! Figures from a load run, and the table that compares them with the baseline.

use std::collections::BTreeMap;
use std::time::Duration;

use super::BenchArgs;
use super::load::Run;

/// Each endpoint must reach this share of the baseline's requests per second.
pub const TARGET_RATIO: f64 = 0.5;
/// And keep its 99th percentile latency under this.
pub const TARGET_P99: Duration = Duration::from_millis(50);

/// The figures of one load run.
#[derive(Debug)]
pub struct Stats {
    pub name: &'static str,
    pub requests: usize,
    pub errors: usize,
    /// Reason → count, to say what the errors were.
    pub error_kinds: BTreeMap<String, usize>,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

impl Stats {
    pub fn new(name: &'static str, run: &Run) -> Self {
        let sent: Vec<_> = run.outcomes.iter().flatten().collect();
        let mut latencies: Vec<Duration> = sent.iter().map(|outcome| outcome.latency).collect();
        latencies.sort_unstable();
        let mut error_kinds = BTreeMap::new();
        for reason in sent.iter().filter_map(|outcome| outcome.error.as_ref()) {
            *error_kinds.entry(reason.clone()).or_insert(0) += 1;
        }
        let seconds = run.elapsed.as_secs_f64();
        Self {
            name,
            requests: sent.len(),
            errors: error_kinds.values().sum(),
            error_kinds,
            per_second: if seconds > 0.0 {
                sent.len() as f64 / seconds
            } else {
                0.0
            },
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
        }
    }
}

impl Stats {
    /// One measurement made of two of the same thing taken at different times (a baseline
    /// before and after the server's runs, so a machine that sped up or slowed down between
    /// them moves both): requests and errors added up, the mean rate, the worse percentiles.
    pub fn averaged(&self, later: &Self) -> Self {
        let mut error_kinds = self.error_kinds.clone();
        for (reason, count) in &later.error_kinds {
            *error_kinds.entry(reason.clone()).or_insert(0) += count;
        }
        Self {
            name: self.name,
            requests: self.requests + later.requests,
            errors: self.errors + later.errors,
            error_kinds,
            per_second: (self.per_second + later.per_second) / 2.0,
            p50: self.p50.max(later.p50),
            p99: self.p99.max(later.p99),
        }
    }
}

/// Nearest-rank percentile of sorted values (zero when there are none).
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Prints the table under `title` (if any): each endpoint under its own baseline, the
/// targets and what the errors were.
pub fn print(title: &str, baselines: &[Stats; 2], endpoints: &[Stats; 2]) {
    println!();
    if !title.is_empty() {
        println!("{title}");
    }
    println!(
        "{:<15} {:>9} {:>7} {:>10} {:>8} {:>8} {:>12}  {:<17} {:<11}",
        "endpoint",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "vs baseline",
        "req/s >= 50% base",
        "p99 <= 50ms"
    );
    for (baseline, stats) in baselines.iter().zip(endpoints) {
        row(baseline, 1.0, "-", "-");
        let ratio = if baseline.per_second > 0.0 {
            stats.per_second / baseline.per_second
        } else {
            0.0
        };
        row(
            stats,
            ratio,
            verdict(ratio >= TARGET_RATIO),
            verdict(stats.p99 <= TARGET_P99),
        );
    }
    println!();
    println!(
        "targets: each endpoint >= {:.0}% of its baseline's req/s, and p99 <= {} ms at the same connection count",
        TARGET_RATIO * 100.0,
        TARGET_P99.as_millis()
    );
    println!(
        "baselines: bare axum, one transaction per request writing the rows the endpoint writes, in the server's schema"
    );
    for stats in baselines.iter().zip(endpoints).flat_map(|(b, e)| [b, e]) {
        for (reason, count) in &stats.error_kinds {
            println!("errors in {}: {count} x {reason}", stats.name);
        }
    }
}

/// Says which baselines missed the latency target themselves, in every measurement of them
/// (`measurements`: the baselines, measured once or more). In a closed loop each connection
/// waits for its answer before it sends again, so the mean latency is the connections over
/// the rate (Little's law): an endpoint that writes what its baseline writes, and more, on
/// the same cores, has the baseline's latency only if it has the baseline's rate. Where the
/// bare baseline misses the p99 target, the endpoint meets it only by outrunning it.
pub fn print_floor(measurements: &[&[Stats; 2]]) {
    for line in floor(measurements) {
        println!("{line}");
    }
}

/// What [`print_floor`] prints.
fn floor(measurements: &[&[Stats; 2]]) -> Vec<String> {
    let Some(first) = measurements.first() else {
        return Vec::new();
    };
    (0..2)
        .filter(|&endpoint| measurements.iter().all(|m| m[endpoint].p99 > TARGET_P99))
        .map(|endpoint| {
            let p99s: Vec<String> = measurements
                .iter()
                .map(|m| format!("{:.1}", millis(m[endpoint].p99)))
                .collect();
            format!(
                "{}: p99 {} ms, over {} ms itself each time it was measured: on this machine its endpoint meets the p99 target only by running faster than the bare baseline",
                first[endpoint].name,
                p99s.join(" and "),
                TARGET_P99.as_millis()
            )
        })
        .collect()
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// How hard the endpoints were loaded, and how busy the machine was around it (another
/// build on the same cores shows here, and in the figures).
pub fn print_conditions(bench: &BenchArgs, load_before: &str) {
    println!(
        "load: {} keep-alive connections, at most {} requests or {} s per endpoint; {} CPUs shared by server and load generator",
        bench.connections,
        bench.requests,
        bench.seconds,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "load average (1, 5, 15 min): {load_before} before, {} after",
        load_average()
    );
}

fn row(stats: &Stats, ratio: f64, rate: &str, p99: &str) {
    println!(
        "{:<15} {:>9} {:>7} {:>10.1} {:>8.2} {:>8.2} {:>11.0}%  {:<17} {:<11}",
        stats.name,
        stats.requests,
        stats.errors,
        stats.per_second,
        millis(stats.p50),
        millis(stats.p99),
        ratio * 100.0,
        rate,
        p99
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}

/// A duration in milliseconds, as the tables print them.
pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&values, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }

    fn stats(name: &'static str, p99_ms: u64) -> Stats {
        Stats {
            name,
            requests: 1,
            errors: 0,
            error_kinds: BTreeMap::new(),
            per_second: 1.0,
            p50: Duration::from_millis(1),
            p99: Duration::from_millis(p99_ms),
        }
    }

    #[test]
    fn the_floor_names_a_baseline_only_when_every_measurement_missed() {
        let before = [stats("start baseline", 61), stats("verify baseline", 62)];
        let after = [stats("start baseline", 55), stats("verify baseline", 50)];
        let lines = floor(&[&before, &after]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("start baseline: p99 61.0 and 55.0 ms"),
            "{lines:?}"
        );
        assert!(floor(&[]).is_empty());
        assert_eq!(floor(&[&before]).len(), 2);
    }
}
