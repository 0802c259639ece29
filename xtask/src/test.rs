//! `cargo xtask test`: the one command that passes every test on a fresh machine.
//!
//! Each step checks first and only installs what is missing, so it is safe to rerun.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::Context;

use crate::{cmd, frontend, mail_tools, package, schemathesis};

/// Debian packages the tests start for real: an SMTP server, SQLite's shell (the backups the
/// operations guide takes), PostgreSQL, PC/SC with the virtual reader driver (plus the
/// client library the `pcsc` crate links against), OpenSC (an independent PIV client the
/// virtual PIV card must satisfy), Chromium with its WebDriver, and Python's `venv` (for
/// schemathesis). The bridge's packages add theirs: [`package::PACKAGES`] (mingw-w64, wixl,
/// msitools) and [`package::check::WINE_PACKAGES`].
const PACKAGES: [&str; 11] = [
    "python3-aiosmtpd",
    "python3-venv",
    "sqlite3",
    "postgresql",
    "pcscd",
    "libpcsclite-dev",
    "vsmartcard-vpcd",
    "opensc",
    "softhsm2",
    "chromium",
    "chromium-driver",
];
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The other systems the bridge ships for. Windows is linked (with mingw-w64) and run under
/// Wine in the packages' step; macOS has no linker here, so it is only type-checked.
const BRIDGE_TARGETS: [&str; 2] = [package::WINDOWS_TARGET, MACOS_TARGET];
const MACOS_TARGET: &str = "x86_64-apple-darwin";
const STEPS: u32 = 11;

/// Runs the steps in order and stops at the first that fails.
pub fn run() -> anyhow::Result<()> {
    step(1, "formatting: cargo fmt --check");
    cmd::run(cmd::cargo().args(["fmt", "--all", "--check"]))?;

    step(
        2,
        "Debian packages for the tests' real SMTP server, PostgreSQL, PC/SC reader and \
         browser, and for building and running the bridge's packages",
    );
    ensure_debian_packages(
        &[
            &PACKAGES[..],
            &package::PACKAGES,
            &package::check::WINE_PACKAGES,
        ]
        .concat(),
    )?;

    step(
        3,
        &format!(
            "Rust targets {WASM_TARGET} (the protocol crate also runs in the browser) and {} \
             (the bridge's other systems)",
            BRIDGE_TARGETS.join(", ")
        ),
    );
    ensure_rust_target(WASM_TARGET)?;
    for target in BRIDGE_TARGETS {
        ensure_rust_target(target)?;
    }

    step(
        4,
        "the app: Trunk, wasm-bindgen-cli and the npm packages, then a release build (which \
         also proves unlock-protocol compiles for the browser)",
    );
    frontend::ensure_tools()?;
    frontend::build()?;

    step(5, "lints: cargo clippy on every target, warnings refused");
    cmd::run(cmd::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;

    step(
        6,
        "Python's dkimpy (pinned, in target/tools/mail-check) for the test that reads the \
         service's emails back",
    );
    let mail_python = mail_tools::ensure_installed()?;

    step(
        7,
        "every test in the workspace (the server's suite on SQLite, each on a fresh file)",
    );
    cmd::run(
        cmd::cargo()
            .args(["test", "--workspace", "--locked"])
            .env(mail_tools::PYTHON_VAR, &mail_python),
    )?;

    step(
        8,
        "the server's suite again on PostgreSQL (a private cluster, a fresh database per test)",
    );
    cmd::run(
        cmd::cargo()
            // The whole workspace's feature set (only its `api` test runs), so the build of
            // step 7 is reused: with `-p unlock-server` features resolve differently and half
            // the dependencies are compiled again.
            .args(["test", "--workspace", "--test", "api", "--locked"])
            .env("SERVER_TEST_DATABASE", "postgres")
            .env(mail_tools::PYTHON_VAR, &mail_python),
    )?;

    step(
        9,
        &format!(
            "hostile HTTP input: schemathesis {} against the served OpenAPI document, every \
             operation, as a stranger and signed in",
            schemathesis::VERSION
        ),
    );
    schemathesis::run()?;

    step(10, "unlock-bridge compiles for macOS");
    cmd::run(cmd::cargo().args([
        "check",
        "-p",
        "unlock-bridge",
        "--bins",
        "--target",
        MACOS_TARGET,
        "--locked",
    ]))?;

    step(
        11,
        "the bridge's packages: the .deb installed with dpkg into a scratch root, the .msi \
         (bridge linked for Windows) read back with msitools, and under Wine the bridge's \
         install --user, a hello over stdio and the .msi installed by msiexec",
    );
    let packages = package::build(&package::PackageArgs {
        extension_id: unlock_bridge::config::DEFAULT_EXTENSION_ID.to_owned(),
        update_url: unlock_bridge::install::packaging::WEB_STORE_UPDATE_URL.to_owned(),
        allowed_origins: vec![unlock_e2e::bridge::PAGE_ORIGIN.to_owned()],
        check: true,
    })?;
    package::check::run(&packages)?;

    println!("==> all test steps passed (in {})", elapsed());
    Ok(())
}

/// Prints the step's heading with the time since the first step began, so a run's log shows
/// where its minutes went.
fn step(number: u32, what: &str) {
    println!("==> [{number}/{STEPS}] {what} (at {})", elapsed());
}

fn elapsed() -> String {
    static START: OnceLock<Instant> = OnceLock::new();
    let seconds = START.get_or_init(Instant::now).elapsed().as_secs();
    format!("{}m{:02}s", seconds / 60, seconds % 60)
}

pub fn ensure_debian_packages(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| !installed(package))
        .collect();
    if missing.is_empty() {
        println!("    {} already installed", packages.join(", "));
        return Ok(());
    }
    println!("    installing {} with apt-get", missing.join(", "));
    cmd::run(&mut privileged(&["apt-get", "update"])?)?;
    let mut install = privileged(&[&["apt-get", "install", "-y"][..], &missing].concat())?;
    install.env("DEBIAN_FRONTEND", "noninteractive");
    cmd::run(&mut install)
}

fn installed(package: &str) -> bool {
    // dpkg-query exits non-zero for a package it has never seen; that just means "install it".
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
}

/// The command as is when running as root, else through sudo (which keeps DEBIAN_FRONTEND
/// only when passed on its command line, hence `env`).
fn privileged(args: &[&str]) -> anyhow::Result<Command> {
    let uid =
        cmd::output(Command::new("id").arg("-u")).context("find out whether we run as root")?;
    if uid.trim() == "0" {
        let mut command = Command::new(args[0]);
        command.args(&args[1..]);
        Ok(command)
    } else {
        let mut command = Command::new("sudo");
        command
            .args(["env", "DEBIAN_FRONTEND=noninteractive"])
            .args(args);
        Ok(command)
    }
}

pub fn ensure_rust_target(target: &str) -> anyhow::Result<()> {
    let installed = cmd::output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if installed.lines().any(|line| line.trim() == target) {
        println!("    {target} is already installed");
        return Ok(());
    }
    cmd::run(Command::new("rustup").args(["target", "add", target]))
}
