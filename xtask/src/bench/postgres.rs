//! `cargo xtask bench --database postgres`: a private PostgreSQL cluster with production
//! durability (`fsync`, `synchronous_commit` on), baselines committing per request the rows
//! each endpoint writes, then the server on a fresh database twice: one instance, and two
//! instances sharing the database with the load spread over both.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use unlock_testkit::postgres::{Cluster, Durability};

use super::journeys::Loader;
use super::report::{self, Stats};
use super::scratch::free_addr;
use super::target::Target;
use super::{InnerArgs, baseline, disk};

/// Baseline, then one and two instances, then the tables and what PostgreSQL reported.
pub fn measure(loader: &Loader, scratch: &Path, args: &InnerArgs) -> anyhow::Result<()> {
    let bench = &args.bench;
    println!("==> PostgreSQL: a private cluster with fsync and synchronous_commit on");
    let cluster = unlock_testkit::postgres::start(Durability::Full)
        .map_err(anyhow::Error::msg)
        .context("start PostgreSQL")?;
    println!("    {}", cluster.base_url());
    let load_before = report::load_average();
    let sync_before = disk::sync_costs(scratch, 50)?;

    let pool = unlock_server::config::Config::default().database_max_connections;
    println!(
        "==> baselines: bare axum, one PostgreSQL transaction per request writing the endpoint's rows, {pool} connections"
    );
    let baseline_url = cluster.create_database();
    let before = measure_baselines(loader, scratch, &baseline_url)?;
    // The baseline's connections have closed, so their counts are in.
    let baseline_commits = Transactions::of(&cluster, &baseline_url)?;

    let one = Fleet::measure(loader, args, &cluster, scratch.join("one"), 1)?;
    let two = Fleet::measure(loader, args, &cluster, scratch.join("two"), 2)?;
    let baseline_settings = settings(&cluster, &baseline_url)?;
    println!("==> the baselines again, on a fresh database");
    let after = measure_baselines(loader, scratch, &cluster.create_database())?;
    let baselines = [before[0].averaged(&after[0]), before[1].averaged(&after[1])];
    let sync_after = disk::sync_costs(scratch, 50)?;

    report::print("one instance:", &baselines, &one.endpoints);
    report::print(
        "two instances sharing the database, connections spread over both:",
        &baselines,
        &two.endpoints,
    );
    report::print_floor(&[&before, &after]);
    println!("PostgreSQL, a fresh session in each database (the server sets none of these):");
    println!("  server   {}", one.settings);
    println!("  baseline {baseline_settings}");
    println!(
        "  writes: the server's at READ COMMITTED with explicit row locks, run again on a deadlock; the baseline's at the default level"
    );
    println!(
        "  baselines, measured before the server and again after it, each endpoint against their mean: start {:.0} then {:.0} req/s (p99 {:.1} then {:.1} ms), verify {:.0} then {:.0} req/s (p99 {:.1} then {:.1} ms)",
        before[0].per_second,
        after[0].per_second,
        report::millis(before[0].p99),
        report::millis(after[0].p99),
        before[1].per_second,
        after[1].per_second,
        report::millis(before[1].p99),
        report::millis(after[1].p99),
    );
    println!(
        "  baselines before: {} + {} requests, {baseline_commits}",
        before[0].requests, before[1].requests
    );
    for (name, fleet) in [("one instance", &one), ("two instances", &two)] {
        for phase in [&fleet.start_db, &fleet.verify_db] {
            println!(
                "  {name}, {}: {} requests, {} write retries, {} failed writes (unlock_db_retries_total, unlock_db_errors_total); {}",
                phase.name, phase.requests, phase.retries, phase.errors, phase.transactions
            );
            for (refusal, count) in phase.refusals.iter().take(REFUSALS_SHOWN) {
                println!("    {count:>6} x {refusal}");
            }
        }
    }
    for (when, (overwrite, append)) in [("before", sync_before), ("after", sync_after)] {
        println!(
            "disk sync {when} the load (median of 50): overwrite 4 KiB + fdatasync {:.2} ms; append 200 B + fsync {:.2} ms",
            overwrite.as_secs_f64() * 1000.0,
            append.as_secs_f64() * 1000.0
        );
    }
    report::print_conditions(bench, &load_before);
    for (name, fleet) in [("one instance", &one), ("two instances", &two)] {
        if !fleet.log_tail.is_empty() {
            println!(
                "last errors in the servers' logs ({name}):\n{}",
                fleet.log_tail
            );
        }
    }
    Ok(())
}

/// Both baselines, served from a fresh process on the database at `url`.
fn measure_baselines(loader: &Loader, scratch: &Path, url: &str) -> anyhow::Result<[Stats; 2]> {
    let addr = free_addr()?;
    let _server = baseline::spawn(scratch, addr, url)?;
    loader.baselines(addr)
}

/// What one configuration of the server measured.
struct Fleet {
    /// start-journey, verify-code.
    endpoints: [Stats; 2],
    start_db: Phase,
    verify_db: Phase,
    settings: String,
    log_tail: String,
}

/// What the database did while one endpoint was loaded.
struct Phase {
    name: &'static str,
    requests: usize,
    retries: u64,
    errors: u64,
    transactions: Transactions,
    /// What PostgreSQL refused meanwhile and where, most frequent first.
    refusals: Vec<(String, usize)>,
}

impl Fleet {
    /// A fresh database seeded with the holders, `instances` servers on it, both endpoints.
    fn measure(
        loader: &Loader,
        args: &InnerArgs,
        cluster: &Cluster,
        dir: PathBuf,
        instances: usize,
    ) -> anyhow::Result<Self> {
        let database_url = cluster.create_database();
        std::fs::create_dir_all(&dir).context("create the servers' folder")?;
        let mut first = Target::new(args.server_bin.clone(), dir, Some(database_url.clone()))?;
        first.loopback_is_a_proxy = loader.bench.client_addresses > 1;
        println!(
            "==> unlock-server x{instances} on one PostgreSQL database: seeding {} holders",
            loader.bench.holders
        );
        first.seed(loader.bench.holders)?;
        let mut targets = vec![first];
        for _ in 1..instances {
            targets.push(targets[0].sibling()?);
        }
        // One after another: the first creates the shared secret key, the others read it.
        let servers = targets
            .iter()
            .map(Target::serve)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let addrs: Vec<_> = targets.iter().map(|target| target.addr).collect();
        println!("    serving on {addrs:?}");

        println!("==> start-journey: POST /api/journeys, each holder once");
        let before = Counters::read(loader, cluster, &targets, &database_url)?;
        let (start, started) = loader.start_journeys(&addrs)?;
        let after_start = Counters::read(loader, cluster, &targets, &database_url)?;
        let codes = loader.wait_for_codes(&targets[0].mail_dir(), &started)?;
        println!("==> verify-code: POST /api/journey/code, the right code, each journey once");
        let before_verify = Counters::read(loader, cluster, &targets, &database_url)?;
        let verify = loader.verify_codes(&addrs, &started, &codes)?;
        let after_verify = Counters::read(loader, cluster, &targets, &database_url)?;

        let log_tail = if start.errors + verify.errors > 0 {
            servers
                .iter()
                // Not the notices that a refused COMMIT's ROLLBACK draws ("no transaction in
                // progress"): the reasons the errors were answered.
                .map(|server| server.log_lines_with("ERROR", 10))
                .collect::<Vec<_>>()
                .join("\n--\n")
        } else {
            String::new()
        };
        drop(servers);
        Ok(Self {
            start_db: after_start.since(&before, cluster, "start-journey", start.requests),
            verify_db: after_verify.since(&before_verify, cluster, "verify-code", verify.requests),
            endpoints: [start, verify],
            settings: settings(cluster, &database_url)?,
            log_tail,
        })
    }
}

/// How long PostgreSQL may keep a backend's transaction counts before `pg_stat_database`
/// shows them (`PGSTAT_IDLE_INTERVAL`, 10 s), and a little more.
const STATS_DELAY: Duration = Duration::from_secs(11);

/// The servers' write counters, summed over the instances, and the database's transactions.
struct Counters {
    retries: u64,
    errors: u64,
    transactions: Transactions,
    /// How far the cluster's log went.
    log_len: u64,
}

impl Counters {
    fn read(
        loader: &Loader,
        cluster: &Cluster,
        targets: &[Target],
        database_url: &str,
    ) -> anyhow::Result<Self> {
        // A busy backend hands its statistics over at most once a second, and an idle one
        // (most of a pool, once the load stops) 10 s after its last transaction; a fresh
        // snapshot after that sees everything done before it.
        std::thread::sleep(STATS_DELAY);
        let (mut retries, mut errors) = (0, 0);
        for target in targets {
            let text = loader.runtime.block_on(scrape(target))?;
            retries += counter(&text, "unlock_db_retries_total");
            errors += counter(&text, "unlock_db_errors_total");
        }
        Ok(Self {
            retries,
            errors,
            transactions: Transactions::of(cluster, database_url)?,
            log_len: cluster
                .log()
                .and_then(|log| std::fs::metadata(log).ok())
                .map_or(0, |meta| meta.len()),
        })
    }

    fn since(
        &self,
        before: &Self,
        cluster: &Cluster,
        name: &'static str,
        requests: usize,
    ) -> Phase {
        let logged = cluster
            .log()
            .and_then(|log| read_range(log, before.log_len, self.log_len).ok())
            .unwrap_or_default();
        Phase {
            refusals: refusals(&logged),
            name,
            requests,
            retries: self.retries.saturating_sub(before.retries),
            errors: self.errors.saturating_sub(before.errors),
            transactions: Transactions {
                committed: self
                    .transactions
                    .committed
                    .saturating_sub(before.transactions.committed),
                rolled_back: self
                    .transactions
                    .rolled_back
                    .saturating_sub(before.transactions.rolled_back),
            },
        }
    }
}

/// Transactions PostgreSQL counted in one database (`pg_stat_database`; a statement outside
/// a transaction block counts as one too). Rolled back ones include serialisation failures.
struct Transactions {
    committed: u64,
    rolled_back: u64,
}

impl Transactions {
    fn of(cluster: &Cluster, database_url: &str) -> anyhow::Result<Self> {
        let row = cluster
            .query(
                database_url,
                "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()",
            )
            .map_err(anyhow::Error::msg)
            .context("read pg_stat_database")?;
        let (committed, rolled_back) = row
            .split_once('|')
            .with_context(|| format!("pg_stat_database answered {row:?}"))?;
        Ok(Self {
            committed: committed.trim().parse().context("read xact_commit")?,
            rolled_back: rolled_back.trim().parse().context("read xact_rollback")?,
        })
    }
}

impl std::fmt::Display for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} transactions committed, {} rolled back (pg_stat_database)",
            self.committed, self.rolled_back
        )
    }
}

/// The settings that decide what a commit costs, as a new session in the database sees them.
fn settings(cluster: &Cluster, database_url: &str) -> anyhow::Result<String> {
    const NAMES: [&str; 6] = [
        "server_version",
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_sync_method",
        "default_transaction_isolation",
    ];
    let columns: Vec<String> = NAMES
        .iter()
        .map(|name| format!("current_setting('{name}')"))
        .collect();
    let row = cluster
        .query(database_url, &format!("SELECT {}", columns.join(", ")))
        .map_err(anyhow::Error::msg)
        .context("read the database's settings")?;
    Ok(NAMES
        .iter()
        .zip(row.split('|'))
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// Kinds of refusal printed per endpoint.
const REFUSALS_SHOWN: usize = 8;

/// Bytes `from..to` of a file, as text.
fn read_range(path: &Path, from: u64, to: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(to.saturating_sub(from)).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Each `ERROR` in a stretch of PostgreSQL's log, with its reason code (SERIALIZABLE's
/// refusals give one) and the statement it ended, counted; most frequent first.
fn refusals(log: &str) -> Vec<(String, usize)> {
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut current: Option<(String, String, String)> = None;
    let mut finish = |entry: Option<(String, String, String)>| {
        if let Some((error, detail, statement)) = entry {
            let mut key = error;
            for part in [detail, statement] {
                if !part.is_empty() {
                    key.push_str(" | ");
                    key.push_str(&part);
                }
            }
            *counts.entry(key).or_insert(0) += 1;
        }
    };
    for line in log.lines() {
        // "2026-12-03 15:19:18.327 UTC [1234] ERROR:  could not serialize access …"
        let Some((_, body)) = line.split_once("] ") else {
            continue;
        };
        if let Some(error) = body.strip_prefix("ERROR:  ") {
            finish(current.take());
            current = Some((error.to_owned(), String::new(), String::new()));
        } else if let Some(entry) = current.as_mut() {
            if let Some(detail) = body.strip_prefix("DETAIL:  ") {
                entry.1 = detail.trim_end_matches('.').to_owned();
            } else if let Some(statement) = body.strip_prefix("STATEMENT:  ") {
                let words: Vec<&str> = statement.split_whitespace().collect();
                let mut shown = words.join(" ");
                if shown.len() > 70 {
                    shown.truncate(shown.floor_char_boundary(70));
                    shown.push('…');
                }
                entry.2 = format!("at `{shown}`");
            } else if !body.starts_with("HINT:  ") {
                finish(current.take());
            }
        }
    }
    finish(current.take());
    let mut counted: Vec<_> = counts.into_iter().collect();
    counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counted
}

/// The instance's `/metrics` page.
async fn scrape(target: &Target) -> anyhow::Result<String> {
    let url = format!("http://{}/metrics", target.metrics_addr);
    let reply = reqwest::get(&url)
        .await
        .with_context(|| format!("GET {url}"))?;
    reply
        .error_for_status()
        .with_context(|| format!("GET {url}"))?
        .text()
        .await
        .with_context(|| format!("read {url}"))
}

/// An unlabelled counter's value in Prometheus' text format; 0 until it is first counted.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .filter_map(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_logged_error_with_its_reason_and_statement() {
        let log = "2026-12-03 15:19:18.327 UTC [11] ERROR:  could not serialize access due to read/write dependencies among transactions\n\
                   2026-12-03 15:19:18.327 UTC [11] DETAIL:  Reason code: Canceled on identification as a pivot, during commit attempt.\n\
                   2026-12-03 15:19:18.327 UTC [11] HINT:  The transaction might succeed if retried.\n\
                   2026-12-03 15:19:18.327 UTC [11] STATEMENT:  COMMIT\n\
                   2026-12-03 15:19:18.330 UTC [12] ERROR:  could not serialize access due to concurrent update\n\
                   2026-12-03 15:19:18.330 UTC [12] STATEMENT:  INSERT INTO throttles (scope, key)\n\
                   2026-12-03 15:19:18.331 UTC [13] LOG:  checkpoint starting: time\n\
                   2026-12-03 15:19:18.340 UTC [14] ERROR:  could not serialize access due to concurrent update\n\
                   2026-12-03 15:19:18.340 UTC [14] STATEMENT:  INSERT INTO throttles (scope, key)\n";
        assert_eq!(
            refusals(log),
            vec![
                (
                    "could not serialize access due to concurrent update | at `INSERT INTO throttles (scope, key)`".to_owned(),
                    2
                ),
                (
                    "could not serialize access due to read/write dependencies among transactions | Reason code: Canceled on identification as a pivot, during commit attempt | at `COMMIT`".to_owned(),
                    1
                ),
            ]
        );
    }

    #[test]
    fn reads_an_unlabelled_counter_and_nothing_that_only_starts_like_it() {
        let text = "# TYPE unlock_db_retries_total counter\n\
                    unlock_db_retries_total 17\n\
                    unlock_db_retries_total_other 5\n\
                    unlock_db_errors_total 0\n";
        assert_eq!(counter(text, "unlock_db_retries_total"), 17);
        assert_eq!(counter(text, "unlock_db_errors_total"), 0);
        assert_eq!(counter(text, "unlock_unlocks_total"), 0);
    }
}
