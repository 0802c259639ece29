//! The server under test: the release `unlock-server` binary, seeded through its own CLI,
//! with emails written as files and the per-client throttles lifted for one busy client.
//! On PostgreSQL several instances may share one database (and one folder, so they share
//! the secret key that code hashes are keyed with, as a fleet must).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use super::scratch::{Process, free_addr};

/// The domain every bench holder's address is in.
pub const DOMAIN: &str = "bench.example";

/// The address of bench holder `i`.
pub fn holder_email(i: usize) -> String {
    format!("h{i}@{DOMAIN}")
}

/// How to start one instance of the binary.
#[derive(Debug)]
pub struct Target {
    pub bin: PathBuf,
    /// Its data folder: the secret key, the mail folder, the logs.
    pub dir: PathBuf,
    pub addr: SocketAddr,
    /// Its `/metrics` listener, on a port of its own so instances never collide.
    pub metrics_addr: SocketAddr,
    pub database_url: String,
    /// Take the client address from `X-Forwarded-For`, as behind a proxy.
    pub loopback_is_a_proxy: bool,
}

impl Target {
    /// An instance on free ports with its database in `dir` (SQLite) or at `database_url`.
    pub fn new(bin: PathBuf, dir: PathBuf, database_url: Option<String>) -> anyhow::Result<Self> {
        let database_url =
            database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
        Ok(Self {
            bin,
            dir,
            addr: free_addr()?,
            metrics_addr: free_addr()?,
            database_url,
            loopback_is_a_proxy: false,
        })
    }

    /// Another instance on the same database and folder, on free ports of its own.
    pub fn sibling(&self) -> anyhow::Result<Self> {
        Ok(Self {
            loopback_is_a_proxy: self.loopback_is_a_proxy,
            ..Self::new(
                self.bin.clone(),
                self.dir.clone(),
                Some(self.database_url.clone()),
            )?
        })
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.dir.join("mail")
    }

    /// The binary with the bench environment, so every subcommand hits the same database.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .current_dir(&self.dir)
            .env("UNLOCK_LISTEN", self.addr.to_string())
            .env("UNLOCK_METRICS_LISTEN", self.metrics_addr.to_string())
            .env("UNLOCK_DATABASE_URL", &self.database_url)
            .env("UNLOCK_DATA_DIR", &self.dir)
            .env(
                "UNLOCK_TRUSTED_PROXIES",
                if self.loopback_is_a_proxy {
                    r#"["127.0.0.1"]"#.to_owned()
                } else {
                    "[]".to_owned()
                },
            )
            // One load generator is one client address; the per-client limits would stop it.
            .env("UNLOCK_THROTTLE__CLIENT_STARTS_PER_HOUR", "100000000")
            .env("UNLOCK_THROTTLE__CLIENT_FAILURES_PER_HOUR", "100000000")
            .env("RUST_LOG", "warn");
        command
    }

    /// Allow-lists the bench domain and imports `holders` holders, each with one active card.
    pub fn seed(&self, holders: usize) -> anyhow::Result<()> {
        let csv = self.dir.join("holders.csv");
        std::fs::write(&csv, holders_csv(holders))
            .with_context(|| format!("write {}", csv.display()))?;
        self.run_cli(&["allowlist", "add", DOMAIN])?;
        self.run_cli(&["import", &csv.to_string_lossy()])
    }

    fn run_cli(&self, args: &[&str]) -> anyhow::Result<()> {
        let printed = self.cli(args)?;
        println!("    unlock-server {}: {}", args[0], printed.trim());
        Ok(())
    }

    /// Runs a subcommand against the bench database and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self
            .command()
            .args(args)
            .output()
            .with_context(|| format!("run unlock-server {args:?}"))?;
        if !output.status.success() {
            bail!(
                "unlock-server {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Starts `serve` and waits for `/readyz`.
    pub fn serve(&self) -> anyhow::Result<Process> {
        let mut process = Process::spawn(
            "unlock-server",
            self.command().arg("serve"),
            &self.dir.join(format!("server-{}.log", self.addr.port())),
        )?;
        process.wait_ready(self.addr, "/readyz", Duration::from_secs(30))?;
        Ok(process)
    }
}

/// One row per holder: a 12-digit holder id, one address, one 16-hex-digit card serial.
fn holders_csv(holders: usize) -> String {
    let mut csv = String::from(
        "holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model\n",
    );
    for i in 0..holders {
        let _ = writeln!(
            csv,
            "{:012},Bench Holder,Bench Trust,{},{:016x},active,2030-01-01,unlock-cr/1",
            100_000_000_000_u64 + i as u64,
            holder_email(i),
            0xb000_0000_0000_0000_u64 + i as u64,
        );
    }
    csv
}
