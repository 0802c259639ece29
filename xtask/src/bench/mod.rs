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
pub mod journey_load;
mod journeys;
pub mod keys;
mod load;
mod mail;
mod postgres;
mod report;
mod scratch;
mod sqlite;
pub mod status;
mod target;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, ensure};

use self::journeys::Loader;
use self::scratch::TempDir;
use crate::cmd;

/// The engine the server under test (and its baseline) runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Database {
    /// One instance on a fresh SQLite file, the embedded default.
    Sqlite,
    /// A private PostgreSQL cluster (fsync and synchronous_commit on): one instance, then two
    /// sharing the database.
    Postgres,
}

/// How hard and how long to load each endpoint, on which engine.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The database engine to measure on.
    #[arg(long, value_enum, default_value_t = Database::Sqlite)]
    pub database: Database,
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
    /// Client addresses the load comes from. One load generator is one address, so every
    /// start updates that address's throttle row; with more, each holder's requests carry
    /// one of them in `X-Forwarded-For` (the server trusting it, as behind a proxy), as many
    /// holders on their own networks would.
    #[arg(long, default_value_t = 1)]
    pub client_addresses: u32,
}

impl Database {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl BenchArgs {
    fn to_args(&self) -> Vec<String> {
        vec![
            format!("--database={}", self.database.name()),
            format!("--holders={}", self.holders),
            format!("--requests={}", self.requests),
            format!("--connections={}", self.connections),
            format!("--seconds={}", self.seconds),
            format!("--mail-wait-seconds={}", self.mail_wait_seconds),
            format!("--client-addresses={}", self.client_addresses),
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

/// `xtask bench-inner`: the engine's baseline and endpoints, then the table.
pub fn inner(args: &InnerArgs) -> anyhow::Result<()> {
    let bench = &args.bench;
    ensure!(
        bench.requests <= bench.holders,
        "--requests must not exceed --holders: each holder starts one journey"
    );
    ensure!(bench.connections > 0, "--connections must be at least 1");
    ensure!(
        bench.client_addresses > 0,
        "--client-addresses must be at least 1"
    );
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    let scratch = TempDir::new("unlock-bench")?;
    println!("    scratch folder {}", scratch.path().display());
    let loader = Loader {
        runtime: &runtime,
        bench,
    };
    match bench.database {
        Database::Sqlite => sqlite::measure(&loader, scratch.path(), args),
        Database::Postgres => postgres::measure(&loader, scratch.path(), args),
    }
}
