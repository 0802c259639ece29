//! `cargo xtask bench-status`: the staff API against a month of a national service's history
//! (by default 100,000 holders and 2,000 unlocks a day, the 60,000 a month the service is
//! for, with a quarter as many failed journeys), each endpoint timed against
//! `GET /api/staff/me` in the same run: a signed-in request that reads nothing else.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use sqlx::{ConnectOptions, Connection};

use super::scratch::TempDir;
use super::target::{Target, holder_email};
use crate::cmd;

const DAY: i64 = 86_400_000;
/// The bench staff member's own profile: none of the seeded holders.
const OWN_PROFILE: &str = "999999999999";

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Holders on record.
    #[arg(long, default_value_t = 100_000)]
    pub holders: usize,
    /// Cards unlocked each day of the history.
    #[arg(long, default_value_t = 2_000)]
    pub unlocks_per_day: usize,
    /// Days of history, ending now.
    #[arg(long, default_value_t = 30)]
    pub days: usize,
    /// Requests timed per endpoint.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
}

pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    println!("==> building unlock-server (release)");
    cmd::run(cmd::cargo().args(["build", "--release", "--locked", "-p", "unlock-server"]))?;
    let scratch = TempDir::new("unlock-bench-status")?;
    let target = Target::new(
        cmd::target_dir().join("release/unlock-server"),
        scratch.path().join("server"),
        None,
    )?;
    std::fs::create_dir_all(&target.dir).context("create the server's folder")?;
    println!("==> importing {} holders", args.holders);
    target.seed(args.holders)?;
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    let seeding = Instant::now();
    let seeded = runtime.block_on(seed_history(&target.database_url, args))?;
    println!("    {seeded} in {:.1} s", seeding.elapsed().as_secs_f64());
    let printed = target.cli(&[
        "staff",
        "add",
        "bench",
        "--role",
        "ra-manager",
        "--holder",
        OWN_PROFILE,
    ])?;
    let _server = target.serve()?;
    runtime.block_on(measure(&target, &printed, args))
}

/// Unlocked journeys spread evenly over the last `days` days, each with its six audited steps
/// and two emails; and a quarter as many that failed: codes voided, domains not allowed,
/// journeys left to run out of time, holders told to contact their RA.
async fn seed_history(url: &str, args: &StatusArgs) -> anyhow::Result<String> {
    let mut conn = unlock_server::db::sqlite_baseline_options(url)?
        .connect()
        .await
        .context("open the bench database")?;
    let now = now_ms();
    let unlocks = args.unlocks_per_day * args.days;
    let failures = unlocks / 4;
    let total = i64::try_from(unlocks + failures).unwrap_or(i64::MAX).max(1);
    let spacing = i64::try_from(args.days).unwrap_or(30) * DAY / total;
    let mut tx = conn.begin().await.context("begin the seeding")?;
    // The bench staff member's own profile, which `staff add --holder` needs.
    sqlx::query("INSERT INTO holders (id, created_at) VALUES ($1, 0)")
        .bind(OWN_PROFILE)
        .execute(&mut *tx)
        .await
        .context("add the bench staff member's own profile")?;
    let (mut events, mut journeys, mut emails) = (0usize, 0usize, 0usize);
    for n in 0..total {
        let at = now - (total - n) * spacing;
        let index = usize::try_from(n).unwrap_or(0) % args.holders.max(1);
        let holder = format!("{:012}", 100_000_000_000_u64 + index as u64);
        let email = holder_email(index);
        // Every fifth journey fails, one way or another.
        let kind = if n % 5 == 4 { (n / 5) % 4 } else { 4 };
        let steps: &[(&str, &str, Option<&str>)] = match kind {
            0 => &[
                ("journey.start", "code_issued", None),
                ("journey.verify_code", "wrong_code", None),
                ("journey.verify_code", "wrong_code", None),
                ("journey.verify_code", "wrong_code_voided", None),
            ],
            1 => &[(
                "journey.start",
                "domain_not_allowed",
                Some("elsewhere.example"),
            )],
            2 => &[("journey.start", "code_issued", None)],
            3 => &[
                ("journey.start", "code_issued", None),
                (
                    "journey.verify_code",
                    "verified_ineligible",
                    Some("certificates_expired"),
                ),
            ],
            _ => &[
                ("journey.start", "code_issued", None),
                ("journey.verify_code", "verified", None),
                ("journey.present_card", "accepted", None),
                ("journey.cryptogram", "released", None),
                ("journey.receipt", "unlocked", None),
                ("outbox.unlock_notice", "queued", None),
            ],
        };
        let journey = if kind == 1 {
            None
        } else {
            let (state, closed) = match kind {
                0 | 2 => ("awaiting_code", None),
                3 => ("ineligible", None),
                _ => ("closed", Some("unlocked")),
            };
            sqlx::query(
                "INSERT INTO journeys (id, token_hash, subject, holder_id, email, client_addr, state,
                                       ineligible_reason, started_at, expires_at, updated_at,
                                       closed_reason, closed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, '192.0.2.1', ?6, ?7, ?8, ?9, ?8, ?10, ?11)",
            )
            .bind(n + 1)
            .bind((n + 1).to_be_bytes().to_vec())
            .bind(format!("holder:{holder}"))
            .bind(&holder)
            .bind(&email)
            .bind(state)
            .bind((kind == 3).then_some("certificates_expired"))
            .bind(at)
            .bind(at + 900_000)
            .bind(closed)
            .bind(closed.map(|_| at + 60_000))
            .execute(&mut *tx)
            .await
            .context("seed a journey")?;
            journeys += 1;
            Some(n + 1)
        };
        for (step, (action, outcome, detail)) in steps.iter().enumerate() {
            sqlx::query(
                "INSERT INTO audit_events (at, actor, action, outcome, journey_id, holder_id, client_addr, detail)
                 VALUES (?, 'holder', ?, ?, ?, ?, '192.0.2.1', ?)",
            )
            .bind(at + i64::try_from(step).unwrap_or(0) * 5_000)
            .bind(action)
            .bind(outcome)
            .bind(journey)
            .bind(&holder)
            .bind(detail)
            .execute(&mut *tx)
            .await
            .context("seed an audit event")?;
            events += 1;
        }
        let sent: &[&str] = match kind {
            1 => &[],
            4 => &["one_time_code", "card_unlocked"],
            _ => &["one_time_code"],
        };
        for email_kind in sent {
            sqlx::query(
                "INSERT INTO outbox (kind, recipient, journey_id, holder_id, state, attempts,
                                     next_attempt_at, created_at, finished_at)
                 VALUES (?, ?, ?, ?, 'sent', 1, ?5, ?5, ?5 + 2000)",
            )
            .bind(email_kind)
            .bind(&email)
            .bind(journey)
            .bind(&holder)
            .bind(at)
            .execute(&mut *tx)
            .await
            .context("seed an email")?;
            emails += 1;
        }
    }
    tx.commit().await.context("commit the history")?;
    conn.close().await.context("close the bench database")?;
    Ok(format!(
        "{journeys} journeys, {events} audit events and {emails} emails over {} days",
        args.days
    ))
}

/// Signs in as the bench staff member, then times each endpoint.
async fn measure(target: &Target, printed: &str, args: &StatusArgs) -> anyhow::Result<()> {
    let base = format!("http://{}", target.addr);
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .context("build the HTTP client")?;
    let handed: serde_json::Value =
        serde_json::from_str(printed.trim()).context("staff add --json printed no JSON")?;
    let (Some(one_time), Some(uri)) = (
        handed["one_time_password"].as_str(),
        handed["otpauth_uri"].as_str(),
    ) else {
        bail!("staff add --json printed {handed}");
    };
    let totp =
        totp_rs::Totp::from_url(uri).map_err(|e| anyhow::anyhow!("the otpauth address: {e}"))?;
    let password = "purple tractor river lamp";
    let steps = [
        (
            "/api/staff/sign-in",
            serde_json::json!({"username": "bench", "password": one_time}),
        ),
        (
            "/api/staff/sign-in/code",
            serde_json::json!({"code": totp.generate_current().to_string()}),
        ),
        (
            "/api/staff/sign-in/new-password",
            serde_json::json!({"password": password}),
        ),
    ];
    for (path, body) in steps {
        let reply = client
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await?;
        if !reply.status().is_success() {
            bail!(
                "{path}: {} {}",
                reply.status(),
                reply.text().await.unwrap_or_default()
            );
        }
    }

    let today = unlock_server::staff::overview::day_name(now_ms());
    let month_ago = unlock_server::staff::overview::day_name(now_ms() - 29 * DAY);
    let one = 100_000_000_000_u64 + 12_345;
    let endpoints = [
        ("GET /api/staff/me (baseline)", "/api/staff/me".to_owned()),
        ("GET /api/staff/overview", "/api/staff/overview".to_owned()),
        (
            "holder by user id",
            format!("/api/staff/holders?q={one:012}"),
        ),
        (
            "holder by email",
            format!("/api/staff/holders?q={}", holder_email(12_345)),
        ),
        (
            "holders by name, no match (a full scan)",
            "/api/staff/holders?q=nobody".to_owned(),
        ),
        (
            "a holder's profile",
            format!("/api/staff/holders/{one:012}"),
        ),
        ("audit log, first page", "/api/staff/audit".to_owned()),
        (
            "audit log, unlocks over 30 days",
            format!("/api/staff/audit?action=journey.receipt&from={month_ago}&to={today}"),
        ),
        (
            "allow list with address counts",
            "/api/staff/allowlist".to_owned(),
        ),
        (
            "CSV report, 30 days",
            format!("/api/staff/reports/organisations.csv?from={month_ago}&to={today}"),
        ),
    ];
    let mut rows = Vec::new();
    for (name, path) in endpoints {
        let mut times = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            let started = Instant::now();
            let reply = client.get(format!("{base}{path}")).send().await?;
            let status = reply.status();
            let _ = reply.bytes().await?;
            times.push(started.elapsed());
            if !status.is_success() {
                bail!("{path}: {status}");
            }
        }
        rows.push((
            name,
            percentile(&mut times, 0.5),
            percentile(&mut times, 0.99),
        ));
    }
    // The password step: one Argon2id check at the configured work factor.
    let mut times = Vec::new();
    for _ in 0..args.runs.min(10) {
        let started = Instant::now();
        let reply = client
            .post(format!("{base}/api/staff/sign-in"))
            .json(&serde_json::json!({"username": "bench", "password": password}))
            .send()
            .await?;
        let _ = reply.bytes().await?;
        times.push(started.elapsed());
    }
    rows.push((
        "POST /api/staff/sign-in (password step)",
        percentile(&mut times, 0.5),
        percentile(&mut times, 0.99),
    ));

    let baseline = rows[0].1.as_secs_f64();
    println!();
    println!("| request | p50 ms | p99 ms | p50 × baseline |");
    println!("|---|---|---|---|");
    for (name, p50, p99) in &rows {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            p50.as_secs_f64() / baseline
        );
    }
    println!(
        "\n{} sequential requests each ({} for sign-in) on one keep-alive connection; {} CPUs",
        args.runs,
        args.runs.min(10),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    Ok(())
}

fn percentile(times: &mut [Duration], q: f64) -> Duration {
    times.sort_unstable();
    let rank = (q * times.len() as f64).ceil() as usize;
    times
        .get(rank.clamp(1, times.len().max(1)) - 1)
        .copied()
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
