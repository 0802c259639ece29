//! `cargo xtask fuzz`: every fuzz target under libFuzzer (cargo-fuzz, on the nightly
//! toolchain) for a while, starting from the committed corpus in `fuzz/corpus/<target>/`;
//! inputs that reach new code are added there, and crashes are written to
//! `fuzz/artifacts/<target>/`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use clap::Args;

use crate::cmd;

/// cargo-fuzz at the version the README's figures were measured with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// How long to fuzz each target, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Minimise each target's corpus afterwards (`cargo fuzz cmin`), before committing it.
    #[arg(long)]
    minimise: bool,
    /// Only these targets (every one when none is named).
    targets: Vec<String>,
}

/// Fuzzes each target in turn, then fails naming every target that crashed.
pub fn run(args: &FuzzArgs) -> anyhow::Result<()> {
    cmd::output(nightly().arg("--version"))
        .context("fuzzing needs the nightly toolchain (rustup toolchain install nightly)")?;
    cmd::ensure_cargo_tool("cargo-fuzz", "cargo-fuzz", CARGO_FUZZ_VERSION, true)?;
    let all = targets()?;
    if let Some(unknown) = args.targets.iter().find(|name| !all.contains(name)) {
        bail!(
            "no fuzz target {unknown}; the targets are {}",
            all.join(", ")
        );
    }
    let chosen: Vec<&String> = all
        .iter()
        .filter(|name| args.targets.is_empty() || args.targets.contains(name))
        .collect();
    cmd::run(nightly().args(["fuzz", "build"]))?;
    let mut crashed = Vec::new();
    for target in chosen {
        let fuzz = cmd::run(nightly().args([
            "fuzz",
            "run",
            target,
            "--",
            &format!("-max_total_time={}", args.seconds),
        ]));
        if let Err(error) = fuzz {
            eprintln!("xtask: {target}: {error:#}");
            crashed.push(target.as_str());
            continue;
        }
        if args.minimise {
            // A small set of inputs that still reaches every edge (not every hit count, nor
            // every input that added something in turn): the committed corpus stays small.
            cmd::run(nightly().args([
                "fuzz",
                "cmin",
                target,
                "--",
                "-set_cover_merge=1",
                "-use_counters=0",
            ]))?;
        }
    }
    if !crashed.is_empty() {
        bail!(
            "fuzzing found crashes in {} (reproducers in fuzz/artifacts/)",
            crashed.join(", ")
        );
    }
    Ok(())
}

/// `cargo +nightly`, from the workspace root: rustup's `cargo`, which takes the toolchain
/// (`CARGO` is the stable one the xtask runs under).
fn nightly() -> Command {
    let mut command = Command::new("cargo");
    command
        .current_dir(cmd::root())
        .arg("+nightly")
        .env_remove("CARGO")
        .env_remove("RUSTUP_TOOLCHAIN");
    command
}

/// The targets: `fuzz/fuzz_targets/<name>.rs`, sorted.
fn targets() -> anyhow::Result<Vec<String>> {
    let dir: PathBuf = cmd::root().join("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            (path.extension()? == "rs").then_some(path.file_stem()?.to_str()?.to_owned())
        })
        .collect();
    names.sort();
    Ok(names)
}
