//! `cargo xtask test`: the one command that passes every test on a fresh machine.
//!
//! Each step checks first and only installs what is missing, so it is safe to rerun.

use std::process::Command;

use anyhow::Context;

use crate::cmd;

const SMTP_PACKAGE: &str = "python3-aiosmtpd";
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Runs the steps in order and stops at the first that fails.
pub fn run() -> anyhow::Result<()> {
    step(
        1,
        &format!("Debian package {SMTP_PACKAGE} (the tests' real SMTP server)"),
    );
    ensure_debian_package(SMTP_PACKAGE)?;

    step(
        2,
        &format!("Rust target {WASM_TARGET} (the protocol crate also runs in the browser)"),
    );
    ensure_rust_target(WASM_TARGET)?;

    step(3, "every test in the workspace");
    cmd::run(cmd::cargo().args(["test", "--workspace", "--locked"]))?;

    step(4, &format!("unlock-protocol compiles for {WASM_TARGET}"));
    cmd::run(cmd::cargo().args([
        "check",
        "-p",
        "unlock-protocol",
        "--target",
        WASM_TARGET,
        "--locked",
    ]))?;

    println!("==> all test steps passed");
    Ok(())
}

fn step(number: u32, what: &str) {
    println!("==> [{number}/4] {what}");
}

fn ensure_debian_package(package: &str) -> anyhow::Result<()> {
    let status = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output();
    // dpkg-query exits non-zero for a package it has never seen; that just means "install it".
    if status.is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
    {
        println!("    {package} is already installed");
        return Ok(());
    }
    println!("    installing {package} with apt-get");
    cmd::run(&mut privileged(&["apt-get", "update"])?)?;
    let mut install = privileged(&["apt-get", "install", "-y", package])?;
    install.env("DEBIAN_FRONTEND", "noninteractive");
    cmd::run(&mut install)
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

fn ensure_rust_target(target: &str) -> anyhow::Result<()> {
    let installed = cmd::output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if installed.lines().any(|line| line.trim() == target) {
        println!("    {target} is already installed");
        return Ok(());
    }
    cmd::run(Command::new("rustup").args(["target", "add", target]))
}
