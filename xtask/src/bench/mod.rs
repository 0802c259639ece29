//! `cargo xtask bench`: load the real server's start-journey and verify-code endpoints and
//! compare them with a baseline measured in the same run.
//!
//! The `cargo xtask` alias builds xtask in the dev profile, so `bench` only builds the
//! release binaries and hands over to `xtask bench-inner` from `target/release`: the load
//! generator, the baseline server and the server under test are all optimised builds.

pub mod app;
pub mod baseline;
pub mod bridge;
mod disk;
mod load;
mod mail;
mod report;
mod scratch;
pub mod status;
mod target;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use hyper::header::HeaderValue;

use self::load::{Job, Plan, Run};
use self::report::Stats;
use self::scratch::{Process, TempDir, free_addr};
use self::target::{Target, holder_email};
use crate::cmd;

/// How hard and how long to load each endpoint.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Holders imported into the server; each address starts at most one journey per run.
    #[arg(long, default_value_t = 30_000)]
    pub holders: usize,
    /// Requests per endpoint (at most; the time cap may stop a run sooner).
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Concurrent keep-alive connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Time cap of each load run, in seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// How long to wait for the outbox to write the code emails, in seconds.
    #[arg(long, default_value_t = 90)]
    pub mail_wait_seconds: u64,
}

impl BenchArgs {
    fn to_args(&self) -> Vec<String> {
        vec![
            format!("--holders={}", self.holders),
            format!("--requests={}", self.requests),
            format!("--connections={}", self.connections),
            format!("--seconds={}", self.seconds),
            format!("--mail-wait-seconds={}", self.mail_wait_seconds),
        ]
    }
}

/// Arguments of the measuring half.
#[derive(Debug, Clone, clap::Args)]
pub struct InnerArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    /// The release `unlock-server` binary.
    #[arg(long)]
    pub server_bin: PathBuf,
}

/// Builds the release binaries, then measures with the release xtask.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    println!("==> building unlock-server and the load generator (release)");
    // Two builds, so the server binary gets its own features, as `cargo xtask run` builds
    // it, not those unified with the load generator's.
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "unlock-server"]))?;
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "xtask"]))?;
    let release = cmd::target_dir().join("release");
    println!("==> measuring with the release build");
    let mut inner = Command::new(release.join("xtask"));
    inner
        .arg("bench-inner")
        .args(args.to_args())
        .arg("--server-bin")
        .arg(release.join("unlock-server"));
    cmd::run(&mut inner)
}

/// `xtask bench-inner`: baseline, start-journey, verify-code, then the table.
pub fn inner(args: &InnerArgs) -> anyhow::Result<()> {
    let bench = &args.bench;
    ensure!(
        bench.requests <= bench.holders,
        "--requests must not exceed --holders: each holder starts one journey"
    );
    ensure!(bench.connections > 0, "--connections must be at least 1");
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    let scratch = TempDir::new("unlock-bench")?;
    println!("    scratch folder {}", scratch.path().display());
    let plan = |addr, path, expect| Plan {
        addr,
        path,
        connections: bench.connections,
        time_cap: Duration::from_secs(bench.seconds),
        expect,
    };
    let emails: Vec<String> = (0..bench.requests).map(holder_email).collect();
    // Sync cost swings with other disk traffic (a build's write-back), so look before and after.
    let sync_before = disk::sync_costs(scratch.path(), 50)?;

    println!("==> baseline: bare axum, one SQLite transaction per request");
    let baseline = {
        let addr = free_addr()?;
        let _server = baseline::spawn(scratch.path(), addr)?;
        let jobs = emails
            .iter()
            .map(|email| json_job(&serde_json::json!({ "email": email }), None))
            .collect();
        let run = runtime.block_on(load::run(
            &plan(addr, "/baseline", r#""stage":"recorded""#),
            jobs,
        ))?;
        Stats::new("baseline", &run)
    };

    let target = Target {
        bin: args.server_bin.clone(),
        dir: scratch.path().join("server"),
        addr: free_addr()?,
    };
    std::fs::create_dir_all(&target.dir).context("create the server's folder")?;
    println!(
        "==> unlock-server: seeding {} holders, then serving on {}",
        bench.holders, target.addr
    );
    target.seed(bench.holders)?;
    let server = target.serve()?;

    println!("==> start-journey: POST /api/journeys, each holder once");
    let jobs = emails
        .iter()
        .map(|email| json_job(&serde_json::json!({ "email": email }), None))
        .collect();
    let started = runtime.block_on(load::run(
        &plan(target.addr, "/api/journeys", r#""stage":"awaiting_code""#),
        jobs,
    ))?;
    let start = Stats::new("start-journey", &started);

    let cookies = journey_cookies(&started);
    println!(
        "==> waiting for the outbox to write {} code emails",
        cookies.len()
    );
    let waited = Instant::now();
    let arrived = mail::wait_for(
        &target.mail_dir(),
        cookies.len(),
        Duration::from_secs(bench.mail_wait_seconds),
    )?;
    let codes = mail::codes(&target.mail_dir())?;
    println!(
        "    {arrived} emails after {:.1} s; {} codes read",
        waited.elapsed().as_secs_f64(),
        codes.len()
    );

    println!("==> verify-code: POST /api/journey/code, the right code, each journey once");
    let jobs: Vec<Job> = cookies
        .iter()
        .filter_map(|(holder, cookie)| {
            let code = codes.get(&holder_email(*holder))?;
            Some(json_job(
                &serde_json::json!({ "code": code }),
                Some(cookie.clone()),
            ))
        })
        .collect();
    let verified = runtime.block_on(load::run(
        &plan(target.addr, "/api/journey/code", r#""stage":"verified""#),
        jobs,
    ))?;
    let verify = Stats::new("verify-code", &verified);

    let server_settings = runtime.block_on(disk::sqlite_settings(&target.database_url()))?;
    let baseline_url = format!("sqlite://{}", scratch.path().join("baseline.db").display());
    let baseline_settings = runtime.block_on(disk::sqlite_settings(&baseline_url))?;
    let sync_after = disk::sync_costs(scratch.path(), 50)?;
    let log_tail = if start.errors + verify.errors > 0 {
        tail(&server, 20)
    } else {
        String::new()
    };
    drop(server);

    report::print(&baseline, &[start, verify]);
    println!("SQLite (both with unlock_server::db's settings, one write connection each):");
    println!("  server   {server_settings}");
    println!("  baseline {baseline_settings}");
    for (when, (overwrite, append)) in [("before", sync_before), ("after", sync_after)] {
        println!(
            "disk sync {when} the load (median of 50): overwrite 4 KiB + fdatasync {:.2} ms; append 200 B + fsync {:.2} ms",
            overwrite.as_secs_f64() * 1000.0,
            append.as_secs_f64() * 1000.0
        );
    }
    println!(
        "load: {} keep-alive connections, at most {} requests or {} s per endpoint; {} CPUs shared by server and load generator",
        bench.connections,
        bench.requests,
        bench.seconds,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    if !log_tail.is_empty() {
        println!("last lines of the server's log:\n{log_tail}");
    }
    Ok(())
}

fn json_job(body: &serde_json::Value, cookie: Option<HeaderValue>) -> Job {
    Job {
        body: Bytes::from(body.to_string()),
        cookie,
    }
}

/// Holder index → the `Cookie` value of its journey, for every start that was answered right.
fn journey_cookies(run: &Run) -> Vec<(usize, HeaderValue)> {
    run.outcomes
        .iter()
        .enumerate()
        .filter_map(|(holder, outcome)| {
            let outcome = outcome.as_ref().filter(|outcome| outcome.error.is_none())?;
            Some((holder, cookie_from(outcome.set_cookie.as_ref()?)?))
        })
        .collect()
}

/// `unlock_journey=<token>; Path=/api; …` → `unlock_journey=<token>`.
fn cookie_from(set_cookie: &HeaderValue) -> Option<HeaderValue> {
    let pair = set_cookie.to_str().ok()?.split(';').next()?.trim();
    let token = pair.strip_prefix("unlock_journey=")?;
    if token.is_empty() {
        return None;
    }
    HeaderValue::from_str(pair).ok()
}

fn tail(process: &Process, lines: usize) -> String {
    let log = process.log_text();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_journey_pair_of_a_set_cookie() {
        let header = HeaderValue::from_static(
            "unlock_journey=abc123; Path=/api; Max-Age=3600; HttpOnly; SameSite=Strict",
        );
        assert_eq!(
            cookie_from(&header),
            Some(HeaderValue::from_static("unlock_journey=abc123"))
        );
        assert_eq!(
            cookie_from(&HeaderValue::from_static("other=1; Path=/")),
            None
        );
        assert_eq!(
            cookie_from(&HeaderValue::from_static("unlock_journey=; Path=/api")),
            None
        );
    }
}
