//! `cargo xtask load`: a bounded open-loop run of whole journeys against the real release
//! server on each engine. Journeys start at a fixed rate (200 a second by default) for a fixed
//! time (60 s), whatever the server's answers, and each goes through the holder's steps:
//! start, look at the journey, (one in ten) a wrong code, the emailed code, look again. The
//! run passes when no request fails, the p99 is within 50 ms and every code email
//! the journeys queued was delivered (written by the outbox) with nothing left queued.
//! Each step's p99 is held to the target, not only all requests' together.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use reqwest::StatusCode;
use tokio::sync::oneshot;
use unlock_testkit::postgres::Durability;

use super::Database;
use super::report::{TARGET_P99, load_average, millis, percentile};
use super::scratch::TempDir;
use super::target::{Target, holder_email};
use crate::cmd;

/// The run's rate, length and engines.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Journeys started per second.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// How long journeys keep starting, in seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// The engines to run on, one after the other (both unless given).
    #[arg(long = "database", value_enum)]
    pub databases: Vec<Database>,
    /// How long to wait, after the last start, for journeys and emails to finish.
    #[arg(long, default_value_t = 60)]
    pub drain_seconds: u64,
}

/// Arguments of the measuring half.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadInnerArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// The release `unlock-server` binary.
    #[arg(long)]
    pub server_bin: PathBuf,
}

/// Builds the release binaries, then runs the load from the release xtask.
pub fn run(args: &LoadArgs) -> anyhow::Result<()> {
    println!("==> building unlock-server and the load generator (release)");
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "unlock-server"]))?;
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "xtask"]))?;
    let release = cmd::target_dir().join("release");
    let mut inner = Command::new(release.join("xtask"));
    inner
        .arg("load-inner")
        .arg(format!("--rate={}", args.rate))
        .arg(format!("--seconds={}", args.seconds))
        .arg(format!("--drain-seconds={}", args.drain_seconds));
    for database in &args.databases {
        inner.arg(format!("--database={}", database.name()));
    }
    inner.arg("--server-bin").arg(release.join("unlock-server"));
    cmd::run(&mut inner)
}

/// `xtask load-inner`: the run on each engine, then whether each met the targets.
pub fn inner(args: &LoadInnerArgs) -> anyhow::Result<()> {
    let load = &args.load;
    ensure!(
        load.rate > 0 && load.seconds > 0,
        "--rate and --seconds must be at least 1"
    );
    let databases = if load.databases.is_empty() {
        vec![Database::Sqlite, Database::Postgres]
    } else {
        load.databases.clone()
    };
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    let mut failed = Vec::new();
    for database in databases {
        let scratch = TempDir::new("unlock-load")?;
        let report = on_engine(&runtime, args, database, scratch.path())?;
        report.print();
        if !report.passed() {
            failed.push(database.name());
        }
    }
    ensure!(
        failed.is_empty(),
        "the load run missed its targets on {}",
        failed.join(", ")
    );
    Ok(())
}

/// Seeds and starts the server on `database`, runs the journeys, waits for the emails.
fn on_engine(
    runtime: &tokio::runtime::Runtime,
    args: &LoadInnerArgs,
    database: Database,
    scratch: &Path,
) -> anyhow::Result<Report> {
    let load = &args.load;
    println!(
        "==> {}: {} journeys a second for {} s",
        database.name(),
        load.rate,
        load.seconds
    );
    let cluster = match database {
        Database::Sqlite => None,
        Database::Postgres => Some(
            unlock_testkit::postgres::start(Durability::Full)
                .map_err(anyhow::Error::msg)
                .context("start PostgreSQL")?,
        ),
    };
    let database_url = cluster.as_ref().map(|cluster| cluster.create_database());
    let target = Target::new(
        args.server_bin.clone(),
        scratch.join("server"),
        database_url,
    )?;
    std::fs::create_dir_all(&target.dir).context("create the server's folder")?;
    let journeys = usize::try_from(u64::from(load.rate) * load.seconds)?;
    target.seed(journeys)?;
    let server = target.serve()?;
    let load_before = load_average();
    let started = Instant::now();
    let (timings, queued_after) = runtime.block_on(drive(&target, load, journeys))?;
    let mut report = Report::new(database, timings, started.elapsed(), load_before);
    report.queued_after = queued_after;
    report.emails = eml_count(&target.mail_dir())?;
    if report.errors() > 0 {
        report.log_tail = server.log_tail(20);
    }
    Ok(report)
}

/// One request's step, latency and, if it went wrong, why.
#[derive(Debug)]
struct Timing {
    step: &'static str,
    latency: Duration,
    error: Option<String>,
}

/// Holder address → where its code goes once the outbox has written it.
type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<String>>>>;

/// Starts `journeys` journeys at the rate, each on a task of its own, and waits for them all
/// and then for the outbox; returns every request's timing and what the outbox still held.
async fn drive(
    target: &Target,
    load: &LoadArgs,
    journeys: usize,
) -> anyhow::Result<(Vec<Timing>, Option<f64>)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()?;
    let waiting: Waiting = Arc::default();
    let watcher = tokio::spawn(watch_mail(target.mail_dir(), waiting.clone()));
    let every = Duration::from_secs(1) / load.rate;
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(journeys);
    for holder in 0..journeys {
        let at = start + every * u32::try_from(holder)?;
        tokio::time::sleep_until(at).await;
        let (client, waiting, addr) = (client.clone(), waiting.clone(), target.addr);
        tasks.push(tokio::spawn(async move {
            journey(&client, addr, holder, &waiting).await
        }));
    }
    let mut timings = Vec::new();
    let drain = Duration::from_secs(load.drain_seconds);
    for task in tasks {
        match tokio::time::timeout(drain, task).await {
            Ok(Ok(steps)) => timings.extend(steps),
            Ok(Err(error)) => timings.push(failed("journey", format!("task: {error}"))),
            Err(_) => timings.push(failed("journey", "not finished in time".into())),
        }
    }
    watcher.abort();
    let queued = outbox_drained(target, drain).await?;
    Ok((timings, queued))
}

fn failed(step: &'static str, error: String) -> Timing {
    Timing {
        step,
        latency: Duration::ZERO,
        error: Some(error),
    }
}

/// One holder's journey; a step that goes wrong ends it.
async fn journey(
    client: &reqwest::Client,
    addr: SocketAddr,
    holder: usize,
    waiting: &Waiting,
) -> Vec<Timing> {
    let email = holder_email(holder);
    let (code_tx, code_rx) = oneshot::channel();
    waiting
        .lock()
        .map(|mut waiting| waiting.insert(email.clone(), code_tx))
        .ok();
    let mut timings = Vec::new();
    let base = format!("http://{addr}");
    let body = serde_json::json!({ "email": email });
    let start = client.post(format!("{base}/api/journeys")).json(&body);
    let (timing, reply) = send("start", start, StatusCode::OK).await;
    let cookie = reply.and_then(|(headers, _)| journey_cookie(&headers));
    timings.push(timing);
    let Some(cookie) = cookie else {
        return timings;
    };
    let view = || {
        client
            .get(format!("{base}/api/journey"))
            .header("cookie", &cookie)
    };
    timings.push(send("view", view(), StatusCode::OK).await.0);
    let code = match tokio::time::timeout(Duration::from_secs(30), code_rx).await {
        Ok(Ok(code)) => code,
        _ => {
            timings.push(failed("code email", "no code email within 30 s".into()));
            return timings;
        }
    };
    let verify = |code: &str| {
        client
            .post(format!("{base}/api/journey/code"))
            .header("cookie", &cookie)
            .json(&serde_json::json!({ "code": code }))
    };
    if holder.is_multiple_of(10) {
        let wrong = if code == "000000" { "000001" } else { "000000" };
        let (timing, _) = send(
            "wrong code",
            verify(wrong),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        timings.push(timing);
    }
    let (timing, reply) = send("verify", verify(&code), StatusCode::OK).await;
    let verified = reply.is_some_and(|(_, body)| body.contains(r#""stage":"verified""#));
    timings.push(if verified || timing.error.is_some() {
        timing
    } else {
        Timing {
            error: Some("not verified".into()),
            ..timing
        }
    });
    timings.push(send("view", view(), StatusCode::OK).await.0);
    timings
}

/// Sends one request and times it until its whole body has arrived.
async fn send(
    step: &'static str,
    request: reqwest::RequestBuilder,
    expected: StatusCode,
) -> (Timing, Option<(reqwest::header::HeaderMap, String)>) {
    let sent = Instant::now();
    let answer = async {
        let response = request.send().await?;
        let (status, headers) = (response.status(), response.headers().clone());
        Ok::<_, reqwest::Error>((status, headers, response.text().await?))
    }
    .await;
    let latency = sent.elapsed();
    match answer {
        Ok((status, headers, body)) if status == expected => (
            Timing {
                step,
                latency,
                error: None,
            },
            Some((headers, body)),
        ),
        Ok((status, ..)) => (
            Timing {
                step,
                latency,
                error: Some(format!("status {}", status.as_u16())),
            },
            None,
        ),
        Err(error) => (failed(step, format!("{error}")), None),
    }
}

/// The `unlock_journey=<token>` pair of a start's `Set-Cookie`.
fn journey_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| pair.trim().starts_with("unlock_journey="))
        .map(|pair| pair.trim().to_owned())
}

/// Reads each new `.eml` file the outbox writes and hands its code to the journey waiting.
async fn watch_mail(dir: PathBuf, waiting: Waiting) {
    let mut seen = HashSet::new();
    loop {
        if let Ok(codes) = super::mail::new_codes(&dir, &mut seen)
            && let Ok(mut waiting) = waiting.lock()
        {
            for (to, code) in codes {
                if let Some(journey) = waiting.remove(&to) {
                    let _ = journey.send(code);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the outbox holds nothing queued (`unlock_outbox_queued`), or `timeout`;
/// returns what it last held.
async fn outbox_drained(target: &Target, timeout: Duration) -> anyhow::Result<Option<f64>> {
    let deadline = Instant::now() + timeout;
    let url = format!("http://{}/metrics", target.metrics_addr);
    loop {
        let text = reqwest::get(&url).await?.text().await?;
        let queued = text
            .lines()
            .filter_map(|line| line.strip_prefix("unlock_outbox_queued "))
            .find_map(|value| value.trim().parse::<f64>().ok());
        if queued == Some(0.0) || Instant::now() >= deadline {
            return Ok(queued);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn eml_count(dir: &Path) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("list {}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "eml"))
        .count())
}

/// What one engine's run measured.
struct Report {
    database: Database,
    timings: Vec<Timing>,
    elapsed: Duration,
    load_before: String,
    /// Journeys whose start was answered: each queued one code email.
    started: usize,
    emails: usize,
    queued_after: Option<f64>,
    log_tail: String,
}

impl Report {
    fn new(
        database: Database,
        timings: Vec<Timing>,
        elapsed: Duration,
        load_before: String,
    ) -> Self {
        let started = timings
            .iter()
            .filter(|timing| timing.step == "start" && timing.error.is_none())
            .count();
        Self {
            database,
            timings,
            elapsed,
            load_before,
            started,
            emails: 0,
            queued_after: None,
            log_tail: String::new(),
        }
    }

    fn errors(&self) -> usize {
        self.timings.iter().filter(|t| t.error.is_some()).count()
    }

    /// The slowest step's p99.
    fn p99(&self) -> Duration {
        let mut by_step: HashMap<&str, Vec<Duration>> = HashMap::new();
        for timing in &self.timings {
            by_step.entry(timing.step).or_default().push(timing.latency);
        }
        by_step
            .into_values()
            .map(|mut latencies| {
                latencies.sort_unstable();
                percentile(&latencies, 0.99)
            })
            .max()
            .unwrap_or_default()
    }

    fn passed(&self) -> bool {
        self.errors() == 0
            && self.p99() <= TARGET_P99
            && self.emails == self.started
            && self.queued_after == Some(0.0)
    }

    fn print(&self) {
        println!();
        println!(
            "{}: {} requests in {:.1} s ({:.0} req/s), {} journeys started",
            self.database.name(),
            self.timings.len(),
            self.elapsed.as_secs_f64(),
            self.timings.len() as f64 / self.elapsed.as_secs_f64().max(0.001),
            self.started
        );
        println!(
            "{:<12} {:>9} {:>7} {:>8} {:>8} {:>8}",
            "step", "requests", "errors", "p50 ms", "p99 ms", "max ms"
        );
        let mut steps: Vec<&'static str> = Vec::new();
        for timing in &self.timings {
            if !steps.contains(&timing.step) {
                steps.push(timing.step);
            }
        }
        let mut kinds: HashMap<(&str, &str), usize> = HashMap::new();
        for step in steps.iter().copied().chain(std::iter::once("all")) {
            let of_step: Vec<&Timing> = self
                .timings
                .iter()
                .filter(|t| step == "all" || t.step == step)
                .collect();
            let mut latencies: Vec<Duration> = of_step.iter().map(|t| t.latency).collect();
            latencies.sort_unstable();
            let errors = of_step.iter().filter(|t| t.error.is_some()).count();
            if step != "all" {
                for error in of_step.iter().filter_map(|t| t.error.as_deref()) {
                    *kinds.entry((step, error)).or_default() += 1;
                }
            }
            println!(
                "{:<12} {:>9} {:>7} {:>8.2} {:>8.2} {:>8.2}",
                step,
                of_step.len(),
                errors,
                millis(percentile(&latencies, 0.50)),
                millis(percentile(&latencies, 0.99)),
                millis(latencies.last().copied().unwrap_or_default())
            );
        }
        for ((step, error), count) in &kinds {
            println!("errors in {step}: {count} x {error}");
        }
        println!(
            "code emails: {} written for {} journeys started; outbox still queued after the run: {}",
            self.emails,
            self.started,
            self.queued_after
                .map_or_else(|| "unknown".to_owned(), |q| format!("{q}"))
        );
        println!(
            "targets: no errors, every step's p99 <= {} ms, every email delivered: {}",
            TARGET_P99.as_millis(),
            if self.passed() { "PASS" } else { "MISS" }
        );
        println!(
            "load average (1, 5, 15 min): {} before, {} after; {} CPUs shared by the server{} and the load generator",
            self.load_before,
            load_average(),
            std::thread::available_parallelism().map_or(0, usize::from),
            if self.database == Database::Postgres {
                ", PostgreSQL"
            } else {
                ""
            }
        );
        if !self.log_tail.is_empty() {
            println!("last lines of the server's log:\n{}", self.log_tail);
        }
    }
}
