//! `bridge-bench`: how long the bridge takes, measured against the virtual card in a private
//! pcscd, with a baseline from the same run for each figure:
//!
//! - start → `hello`: launching `unlock-bridge` as the browser does until its first reply,
//!   against `cat` echoing one frame (the cost of any process and pipe at all);
//! - challenge + unblock: the two requests of an unblock through the bridge, against the
//!   same APDUs sent straight through PC/SC by a client in one process.
//!
//! Run by `cargo xtask bench-bridge` from a release build; the two binaries it drives sit
//! beside it.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use unlock_e2e::bridge::{BridgeProcess, PAGE_ORIGIN, extension_caller, install_copy};
use unlock_e2e::harness::{Card, PrivatePcscd, READER, wait_until};
use unlock_protocol::card_profile::{self, card_key, cryptogram, pin_block};

const MASTER_KEY: [u8; 16] = *b"bench-master-key";
const SERIAL: &str = "5be7c4a1d2e3f409";
const PASSCODE: &str = "905173";
/// Set in the child that measures the direct PC/SC baseline.
const DIRECT: &str = "BRIDGE_BENCH_DIRECT_RUNS";

#[derive(Debug, Parser)]
struct Args {
    /// Measurements per figure.
    #[arg(long, default_value_t = 60)]
    runs: usize,
}

fn main() -> anyhow::Result<()> {
    if let Ok(runs) = std::env::var(DIRECT) {
        let times = direct_unblocks(runs.parse()?)?;
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
    let master = hex::encode(MASTER_KEY);
    let _card = Card::start(
        &card_binary,
        pcscd.vpcd_port,
        &["--serial", SERIAL, "--master-key", &master, "--locked"],
    );
    let installed = install_copy(
        &bridge,
        &dir.path().join("bridge"),
        &format!("allowed_origins = [{PAGE_ORIGIN:?}]\nlog_level = \"warn\"\n"),
    );
    println!(
        "bridge benchmark: {} runs per figure, virtual card through a private pcscd",
        args.runs
    );

    let hello = starts_to_hello(&installed, &pcscd.socket, args.runs);
    let echo = cat_echoes(args.runs)?;
    let unblocks = bridge_unblocks(&installed, &pcscd.socket, args.runs)?;
    let direct = direct_baseline(&pcscd.socket, args.runs)?;

    println!();
    println!("| figure | median ms | p90 ms | min ms | baseline median ms | ratio | target |");
    println!("|---|---|---|---|---|---|---|");
    report("start → hello", &hello, &echo, "≤ 50 ms");
    report("challenge + unblock", &unblocks, &direct, "≤ 150 ms");
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

fn bridge_unblocks(installed: &Path, socket: &Path, runs: usize) -> anyhow::Result<Vec<Duration>> {
    let mut bridge = BridgeProcess::spawn(installed, &extension_caller(), socket);
    wait_until(|| {
        bridge.request(json!({"type": "read_card", "reader": READER}))["ok"]["type"] == "card"
    });
    let key = card_key(&MASTER_KEY, &serial_bytes());
    let times = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let challenge =
                bridge.request(json!({"type": "challenge", "reader": READER, "serial": SERIAL}));
            let answer = server_cryptogram(&key, &challenge)?;
            let unblocked = bridge.request(json!({
                "type": "unblock", "reader": READER, "serial": SERIAL,
                "cryptogram": answer, "new_passcode": PASSCODE,
            }));
            let elapsed = started.elapsed();
            if unblocked["ok"]["type"] != "unblocked" {
                bail!("the unblock failed: {unblocked}");
            }
            Ok(elapsed)
        })
        .collect();
    bridge.close();
    times
}

fn server_cryptogram(key: &[u8; 16], challenge: &Value) -> anyhow::Result<String> {
    let challenge: [u8; 16] = hex::decode(
        challenge["ok"]["challenge"]
            .as_str()
            .context("a challenge")?,
    )?
    .try_into()
    .map_err(|_| anyhow::anyhow!("16 bytes"))?;
    Ok(hex::encode(cryptogram(key, &challenge, &serial_bytes())))
}

fn serial_bytes() -> [u8; 8] {
    hex::decode(SERIAL)
        .ok()
        .and_then(|b| b.try_into().ok())
        .unwrap_or_default()
}

/// Runs [`direct_unblocks`] in a child that reaches the private pcscd (libpcsclite takes its
/// socket from the environment at start).
fn direct_baseline(socket: &Path, runs: usize) -> anyhow::Result<Vec<Duration>> {
    let output = Command::new(std::env::current_exe()?)
        .env(DIRECT, runs.to_string())
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

/// The unblock's APDUs without the bridge: connect exclusively, select, serial, challenge,
/// authenticate, reset the retry counter, tries left, disconnect.
fn direct_unblocks(runs: usize) -> anyhow::Result<Vec<Duration>> {
    let context = pcsc::Context::establish(pcsc::Scope::User)?;
    let reader = std::ffi::CString::new(READER)?;
    let key = card_key(&MASTER_KEY, &serial_bytes());
    let pin = pin_block(PASSCODE).context("a passcode")?;
    let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
    let mut send = |card: &pcsc::Card, apdu: &[u8]| -> anyhow::Result<Vec<u8>> {
        let response = card.transmit(apdu, &mut buffer)?.to_vec();
        Ok(response)
    };
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            let card =
                context.connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)?;
            send(
                &card,
                &[&[0x00, 0xA4, 0x04, 0x00, 0x08][..], &card_profile::AID].concat(),
            )?;
            send(&card, &[0x00, 0xCA, 0x00, 0x5A, 0x00])?;
            let challenge = send(&card, &[0x00, 0x84, 0x00, 0x00, 0x10])?;
            let challenge: [u8; 16] = challenge[..16].try_into()?;
            let answer = cryptogram(&key, &challenge, &serial_bytes());
            let authenticated = send(
                &card,
                &[&[0x00, 0x82, 0x00, 0x01, 0x10][..], &answer].concat(),
            )?;
            if authenticated != [0x90, 0x00] {
                bail!("the card refused the cryptogram");
            }
            send(&card, &[&[0x00, 0x2C, 0x02, 0x80, 0x08][..], &pin].concat())?;
            send(&card, &[0x00, 0x20, 0x00, 0x80])?;
            card.disconnect(pcsc::Disposition::LeaveCard)
                .map_err(|(_, error)| error)?;
            Ok(started.elapsed())
        })
        .collect()
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
