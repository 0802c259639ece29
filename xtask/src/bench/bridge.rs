//! `cargo xtask bench-bridge`: the bridge's start-up time, the unlock-cr/1 unblock and the
//! piv/1 card work against the virtual cards through a private pcscd, each beside a baseline
//! from the same run.

use std::process::Command;

use crate::{cmd, test};

#[derive(Debug, clap::Args)]
pub struct BridgeArgs {
    /// Measurements per figure.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
}

/// Builds the bridge, the virtual card and the benchmark in release mode, then measures.
pub fn run(args: &BridgeArgs) -> anyhow::Result<()> {
    test::ensure_debian_packages(&["pcscd", "libpcsclite-dev", "vsmartcard-vpcd"])?;
    println!("==> building unlock-bridge, virtual-card and bridge-bench (release)");
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "--locked",
        "-p",
        "unlock-bridge",
        "-p",
        "unlock-e2e",
        "--features",
        "unlock-e2e/pcsc",
    ]))?;
    let bench = cmd::target_dir().join("release/bridge-bench");
    cmd::run(Command::new(bench).args(["--runs", &args.runs.to_string()]))
}
