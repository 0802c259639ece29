//! `bridge-bench`: how long the bridge takes, measured against the virtual cards in a private
//! pcscd, with a baseline from the same run for each figure:
//!
//! - start → `hello`: launching `unlock-bridge` as the browser does until its first reply,
//!   against `cat` echoing one frame (the cost of any process and pipe at all);
//! - unlock-cr/1 challenge + unblock: the two requests of an unblock through the bridge,
//!   against the same APDUs sent straight through PC/SC by a client in one process;
//! - piv/1 possession + unblock: the PIV card's whole work (the 9E signature over the
//!   possession nonce; then PUK, PUK rotation, PIN verified, the 9A receipt signature), the
//!   same way against the same APDUs in the same two PC/SC transactions.
//!
//! Run by `cargo xtask bench-bridge` from a release build; the two binaries it drives sit
//! beside it.

mod piv;
mod unlock_cr;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::json;
use unlock_e2e::bridge::{BridgeProcess, PAGE_ORIGIN, extension_caller, install_copy};
use unlock_e2e::harness::{Card, PrivatePcscd, READER};
use unlock_e2e::piv_ca::CaFiles;

/// vpcd's second reader, where the PIV card goes.
const PIV_READER: &str = "Virtual PCD 00 01";
/// Set in the child that measures a direct PC/SC baseline: the runs, the profile, and for
/// PIV the PUK the card holds.
const DIRECT: &str = "BRIDGE_BENCH_DIRECT_RUNS";
const DIRECT_PROFILE: &str = "BRIDGE_BENCH_DIRECT_PROFILE";
const DIRECT_PUK: &str = "BRIDGE_BENCH_DIRECT_PUK";

#[derive(Debug, Parser)]
struct Args {
    /// Measurements per figure.
    #[arg(long, default_value_t = 60)]
    runs: usize,
}

fn main() -> anyhow::Result<()> {
    if let Ok(runs) = std::env::var(DIRECT) {
        let runs = runs.parse()?;
        let times = match std::env::var(DIRECT_PROFILE).as_deref() {
            Ok("piv") => piv::direct(
                PIV_READER,
                runs,
                piv::puk_named(&std::env::var(DIRECT_PUK)?)?,
            )?,
            _ => unlock_cr::direct(READER, runs)?,
        };
        println!("{}", serde_json::to_string(&micros(&times))?);
        return Ok(());
    }
    let args = Args::parse();
    let here = std::env::current_exe()?;
    let bridge = here.with_file_name("unlock-bridge");
    let card_binary = here.with_file_name("virtual-card");
    for binary in [&bridge, &card_binary] {
        if !binary.exists() {
            bail!(
                "{} is missing: run `cargo xtask bench-bridge`",
                binary.display()
            );
        }
    }
    let dir = tempfile::tempdir()?;
    let pcscd = PrivatePcscd::start(dir.path());
    let master = hex::encode(unlock_cr::MASTER_KEY);
    let _card = Card::start(
        &card_binary,
        pcscd.vpcd_port,
        &[
            "--serial",
            unlock_cr::SERIAL,
            "--master-key",
            &master,
            "--locked",
        ],
    );
    let _piv_card = Card::start_piv(
        &card_binary,
        pcscd.vpcd_port + 1,
        &CaFiles::in_dir(dir.path(), "bench"),
        &["--locked"],
    );
    let installed = install_copy(
        &bridge,
        &dir.path().join("bridge"),
        &format!("allowed_origins = [{PAGE_ORIGIN:?}]\nlog_level = \"warn\"\n"),
    );
    println!(
        "bridge benchmark: {} runs per figure, virtual cards through a private pcscd",
        args.runs
    );

    let hello = starts_to_hello(&installed, &pcscd.socket, args.runs);
    let echo = cat_echoes(args.runs)?;
    let unblocks = unlock_cr::through_bridge(&installed, &pcscd.socket, READER, args.runs)?;
    let direct = direct_baseline(&pcscd.socket, args.runs, &[(DIRECT_PROFILE, "unlock-cr")])?;
    let (piv_work, puk) = piv::through_bridge(&installed, &pcscd.socket, PIV_READER, args.runs)?;
    let piv_direct = direct_baseline(
        &pcscd.socket,
        args.runs,
        &[(DIRECT_PROFILE, "piv"), (DIRECT_PUK, puk)],
    )?;

    println!();
    println!("| figure | median ms | p90 ms | min ms | baseline median ms | ratio | target |");
    println!("|---|---|---|---|---|---|---|");
    report("start → hello", &hello, &echo, "≤ 50 ms");
    report(
        "unlock-cr/1 challenge + unblock",
        &unblocks,
        &direct,
        "≤ 150 ms",
    );
    report(
        "piv/1 possession + unblock",
        &piv_work,
        &piv_direct,
        "≤ 150 ms",
    );
    println!();
    println!("baselines: `cat` echoing one frame; the same APDUs straight through PC/SC");
    Ok(())
}

fn starts_to_hello(installed: &Path, socket: &Path, runs: usize) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            let mut bridge = BridgeProcess::spawn(installed, &extension_caller(), socket);
            let reply =
                bridge.request(json!({"type": "hello", "protocol_major": 1, "protocol_minor": 0}));
            let elapsed = started.elapsed();
            assert_eq!(reply["ok"]["type"], "hello", "{reply}");
            bridge.close();
            elapsed
        })
        .collect()
}

/// The floor for any native host: start a process, send it one frame, read it back.
fn cat_echoes(runs: usize) -> anyhow::Result<Vec<Duration>> {
    let body = br#"{"id":1,"type":"hello","protocol_major":1,"protocol_minor":0}"#;
    let frame = [&u32::try_from(body.len())?.to_ne_bytes()[..], body].concat();
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            let mut cat = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            cat.stdin.as_mut().context("stdin")?.write_all(&frame)?;
            let mut echoed = vec![0u8; frame.len()];
            cat.stdout
                .as_mut()
                .context("stdout")?
                .read_exact(&mut echoed)?;
            let elapsed = started.elapsed();
            drop(cat.stdin.take());
            cat.wait()?;
            Ok(elapsed)
        })
        .collect()
}

/// Runs a direct baseline in a child that reaches the private pcscd (libpcsclite takes its
/// socket from the environment at start); `settings` say which.
fn direct_baseline(
    socket: &Path,
    runs: usize,
    settings: &[(&str, &str)],
) -> anyhow::Result<Vec<Duration>> {
    let output = Command::new(std::env::current_exe()?)
        .env(DIRECT, runs.to_string())
        .envs(settings.iter().copied())
        .env("PCSCLITE_CSOCK_NAME", socket)
        .output()?;
    if !output.status.success() {
        bail!(
            "the direct baseline failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let micros: Vec<u64> = serde_json::from_slice(&output.stdout)?;
    Ok(micros.into_iter().map(Duration::from_micros).collect())
}

fn micros(times: &[Duration]) -> Vec<u64> {
    times
        .iter()
        .map(|t| u64::try_from(t.as_micros()).unwrap_or(u64::MAX))
        .collect()
}

fn percentile(times: &[Duration], fraction: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn report(figure: &str, times: &[Duration], baseline: &[Duration], target: &str) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = percentile(times, 0.5);
    let base = percentile(baseline, 0.5);
    println!(
        "| {figure} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}× | {target} |",
        ms(median),
        ms(percentile(times, 0.9)),
        ms(percentile(times, 0.0)),
        ms(base),
        ms(median) / ms(base).max(0.001),
    );
}
