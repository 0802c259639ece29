//! A private PostgreSQL cluster for tests: Debian's `postgresql` binaries, run as the
//! `postgres` system user (`initdb` refuses root), on a free loopback port, its data in a
//! temporary folder. One cluster serves a whole test binary ([`shared`]); each test makes a
//! fresh database in it ([`Cluster::create_database`]). A watcher process stops the cluster
//! and removes its folder once the process that started it has exited, however it exits.
//! The tests' cluster skips `fsync` ([`Durability::Off`]); a benchmark starts one of its own
//! with [`start`] and [`Durability::Full`].
//!
//! `TEST_POSTGRES_URL=postgres://user@host:port` makes the tests use a cluster that is
//! already running instead (its user must be allowed to create databases).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The user the tests connect as.
const USER: &str = "unlock";

/// What a commit promises, which is what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync`, `synchronous_commit` and `full_page_writes` off: a crash of the machine may
    /// lose commits, which no test depends on, and tests want speed.
    Off,
    /// PostgreSQL's defaults, stated explicitly: `fsync`, `synchronous_commit` and
    /// `full_page_writes` on, as a production cluster runs (and as the server expects: it
    /// sets none of them). What a benchmark must measure.
    Full,
}

impl Durability {
    /// The server settings (`-c name=value`) that make it so.
    fn settings(self) -> &'static str {
        match self {
            Self::Off => "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            Self::Full => "-c fsync=on -c synchronous_commit=on -c full_page_writes=on",
        }
    }
}

/// A running cluster.
#[derive(Debug)]
pub struct Cluster {
    /// `postgres://user@127.0.0.1:port` (no database).
    base_url: String,
    host: String,
    port: u16,
    user: String,
    bin: PathBuf,
    /// The server's log, for a cluster this process started.
    log: Option<PathBuf>,
    /// Its data folder and `pg_ctl start` options, for a cluster this process started.
    data: Option<(PathBuf, String)>,
}

/// The test binary's cluster, started on first use.
pub fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Cluster::existing(url.trim()),
        _ => start(Durability::Off).unwrap_or_else(|error| panic!("start PostgreSQL: {error}")),
    })
}

/// A cluster of this process's own, stopped (and its folder removed) once the process exits.
pub fn start(durability: Durability) -> Result<Cluster, String> {
    Cluster::start(durability)
}

impl Cluster {
    fn existing(url: &str) -> Self {
        let rest = url
            .trim_end_matches('/')
            .split_once("://")
            .map_or(url, |(_, rest)| rest);
        let (user, address) = rest.split_once('@').unwrap_or((USER, rest));
        let (host, port) = address.rsplit_once(':').unwrap_or((address, "5432"));
        Self {
            base_url: url.trim_end_matches('/').to_owned(),
            host: host.to_owned(),
            port: port.parse().expect("TEST_POSTGRES_URL names a port"),
            user: user.to_owned(),
            bin: bin_dir().expect("PostgreSQL's client programs"),
            log: None,
            data: None,
        }
    }

    /// initdb, then pg_ctl start, as the `postgres` user, in a folder of its own.
    fn start(durability: Durability) -> Result<Self, String> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("unlock-pg-")
            .tempdir()
            .map_err(|e| format!("make a folder: {e}"))?
            .keep();
        run(Command::new("chown").arg("postgres").arg(&dir))?;
        let data = dir.join("data");
        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", USER]);
        if durability == Durability::Off {
            initdb.arg("--no-sync");
        }
        run(&mut initdb)?;
        let port = free_port();
        let options = format!(
            "-k {} -p {port} -c listen_addresses=127.0.0.1 {} -c max_connections=400",
            dir.display(),
            durability.settings()
        );
        let cluster = Self {
            base_url: format!("postgres://{USER}@127.0.0.1:{port}"),
            host: "127.0.0.1".into(),
            port,
            user: USER.into(),
            bin,
            log: Some(dir.join("log")),
            data: Some((data, options)),
        };
        cluster.start_again()?;
        watch_and_stop(&cluster.bin, &dir, &cluster.data_dir()?)?;
        Ok(cluster)
    }

    fn data_dir(&self) -> Result<PathBuf, String> {
        self.data
            .as_ref()
            .map(|(data, _)| data.clone())
            .ok_or_else(|| "only a cluster this process started can be stopped".to_owned())
    }

    /// Stops a cluster this process started (`pg_ctl stop -m fast`: every connection is cut),
    /// as a database restart or failover would; [`Cluster::start_again`] brings it back on the
    /// same port with the same data.
    pub fn stop(&self) -> Result<(), String> {
        run(as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data_dir()?)
            .args(["-m", "fast", "-w", "-t", "60", "stop"]))
    }

    /// Starts a cluster this process started (and stopped) again.
    pub fn start_again(&self) -> Result<(), String> {
        let (data, options) = self
            .data
            .as_ref()
            .ok_or_else(|| "only a cluster this process started can be started".to_owned())?;
        let log = self.log.clone().unwrap_or_else(|| data.join("log"));
        run(as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(data)
            .args(["-o", options, "-l"])
            .arg(log)
            .args(["-w", "-t", "60", "start"]))
    }

    /// A new, empty database; its URL.
    pub fn create_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        self.psql(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|error| panic!("create a test database: {error}"));
        format!("{}/{name}", self.base_url)
    }

    /// Runs one statement in the `postgres` database.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_in("postgres", sql)
    }

    /// Runs one statement in the database a [`Cluster::create_database`] URL names; its
    /// rows, one a line, columns split by `|`.
    pub fn query(&self, database_url: &str, sql: &str) -> Result<String, String> {
        let database = database_url.rsplit('/').next().unwrap_or("postgres");
        self.psql_in(database, sql)
    }

    fn psql_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                &self.host,
                "-p",
                &self.port.to_string(),
                "-U",
                &self.user,
            ])
            .args(["-d", database, "-c", sql])
            .output()
            .map_err(|e| format!("run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Where PostgreSQL's programs are (`pg_dump`, `psql`, …).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The server's log (every error with its statement, as PostgreSQL logs by default), for
    /// a cluster this process started.
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The role the tests connect as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `postgres://user@host:port`, without a database.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

/// The newest installed `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "PostgreSQL is not installed (apt-get install postgresql)".to_owned())?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL server programs under /usr/lib/postgresql".into())
}

fn as_postgres(program: &Path) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program);
    command.current_dir("/");
    command
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A process in a session of its own that waits for this one to exit, then stops the
/// cluster and removes its folder (a test binary never runs destructors of statics).
fn watch_and_stop(bin: &Path, dir: &Path, data: &Path) -> Result<(), String> {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         runuser -u postgres -- '{pg_ctl}' -D '{data}' -m fast -w stop >/dev/null 2>&1; \
         rm -rf '{dir}'",
        pid = std::process::id(),
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display(),
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start the cluster's watcher: {e}"))?;
    Ok(())
}

fn free_port() -> u16 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(port) = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
        {
            return port;
        }
        assert!(Instant::now() < deadline, "no free port");
        std::thread::sleep(Duration::from_millis(20));
    }
}
