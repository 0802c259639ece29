//! `cargo xtask run --virtual-card` (Linux): the service as `run` starts it, plus everything a
//! newcomer needs to click through the whole journey without a card reader: a private pcscd
//! with the vpcd reader, the virtual card (locked) in it, the bridge registered for a demo
//! Chromium profile, and Chromium itself when there is a display.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use unlock_e2e::bridge::{install_copy, register_for_chromium};
use unlock_e2e::browser::{CHROMIUM, extension_dir};
use unlock_e2e::harness::{Card, PrivatePcscd};
use unlock_server::demo::{DEMO_CARD_SERIAL, DEMO_EMAIL};

use crate::{cmd, frontend, test};

/// The demo card's passcode before the holder chooses a new one.
const DEMO_PASSCODE: &str = "284759";

/// A child killed when the demo ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(extra: &[String]) -> anyhow::Result<()> {
    test::ensure_debian_packages(&["pcscd", "libpcsclite-dev", "vsmartcard-vpcd", "chromium"])?;
    frontend::ensure_tools()?;
    frontend::build()?;
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "-p",
        "unlock-server",
        "-p",
        "unlock-bridge",
        "-p",
        "unlock-e2e",
    ]))?;
    let release = cmd::target_dir().join("release");
    let root = cmd::root();
    let var = root.join("var");
    let demo = var.join("demo");
    std::fs::create_dir_all(&demo)?;

    // The server's demo key, which the virtual card must share.
    let key_file = var.join("card-master.key");
    if !key_file.exists() {
        cmd::run(
            Command::new(release.join("unlock-server"))
                .current_dir(&root)
                .args(["keys", "generate", "--out"])
                .arg(&key_file),
        )?;
    }
    let master_key = std::fs::read_to_string(&key_file)
        .with_context(|| format!("read {}", key_file.display()))?;

    let pcscd = PrivatePcscd::start(&demo.join("pcsc"));
    let mut card = Card::start(
        &release.join("virtual-card"),
        pcscd.vpcd_port,
        &[
            "--serial",
            DEMO_CARD_SERIAL,
            "--passcode",
            DEMO_PASSCODE,
            "--master-key",
            master_key.trim(),
            "--locked",
        ],
    );

    // The bridge, registered for a Chromium profile of its own under var/demo.
    let home = demo.join("home");
    let bridge = install_copy(
        &release.join("unlock-bridge"),
        &demo.join("bridge"),
        &format!(
            "allowed_origins = [\"http://127.0.0.1:8080\"]\nlog_file = {:?}\n",
            demo.join("bridge.log")
        ),
    );
    let profile = register_for_chromium(&bridge, &home);

    let _server = Killed(
        Command::new(release.join("unlock-server"))
            .current_dir(&root)
            .args(["serve", "--demo"])
            .args(extra)
            .spawn()
            .context("start unlock-server")?,
    );
    let _browser = open_browser(&profile, &pcscd.socket)?;

    println!();
    println!("The demo is running: http://127.0.0.1:8080");
    println!("  email        {DEMO_EMAIL} (the code arrives as a file in ./var/mail/)");
    println!("  card         {DEMO_CARD_SERIAL}, locked, in the virtual reader");
    println!("Type `remove` or `insert` and Enter to move the card; `quit` (or Ctrl-C) to stop.");
    for line in std::io::stdin().lock().lines() {
        match line?.trim() {
            "quit" | "exit" => break,
            "" => {}
            command => println!("card: {}", card.command(command)),
        }
    }
    Ok(())
}

/// Chromium with the extension and the demo profile when there is a display; otherwise the
/// command to start it.
fn open_browser(profile: &Path, pcsc_socket: &Path) -> anyhow::Result<Option<Killed>> {
    let extension: PathBuf = extension_dir();
    let args = [
        format!("--user-data-dir={}", profile.display()),
        format!("--load-extension={}", extension.display()),
        "--no-first-run".to_owned(),
        "http://127.0.0.1:8080".to_owned(),
    ];
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        println!("No display here; start Chromium yourself where the card service is reachable:");
        println!(
            "  PCSCLITE_CSOCK_NAME={} {CHROMIUM} {}",
            pcsc_socket.display(),
            args.join(" ")
        );
        return Ok(None);
    }
    let browser = Command::new(CHROMIUM)
        .args(&args)
        .env("PCSCLITE_CSOCK_NAME", pcsc_socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start Chromium")?;
    Ok(Some(Killed(browser)))
}
