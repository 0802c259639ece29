//! Running child commands visibly, from the workspace root.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

/// The workspace root (the folder above this crate).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}

/// Where cargo puts build output, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// `cargo` as invoked by the user (cargo sets `CARGO` for the programs it runs), from the root.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    command
}

/// Installs the cargo tool `crate_name` at `version` unless `binary --version` already names
/// it; quick when it is in place.
///
/// Built unoptimised and without debug info: the tools run for seconds in a build, and their
/// own release profiles (Trunk's asks for fat LTO in one codegen unit) made compiling them
/// most of a fresh machine's test time. Measured here: wasm-bindgen-cli 2 min of CPU so
/// built, and it binds the holder's app in 1.2 s instead of 0.2 s.
pub fn ensure_cargo_tool(
    crate_name: &str,
    binary: &str,
    version: &str,
    locked: bool,
) -> anyhow::Result<()> {
    let found = Command::new(binary)
        .arg("--version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    if found.split_whitespace().any(|word| word == version) {
        println!("    {binary} {version} is already installed");
        return Ok(());
    }
    let mut install = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    install
        .args(["install", "--debug", &format!("{crate_name}@{version}")])
        .env("CARGO_PROFILE_DEV_DEBUG", "false");
    if locked {
        install.arg("--locked");
    }
    run(&mut install)
}

/// Prints the command, runs it with inherited output, and fails unless it exits with 0.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    let shown = show(command);
    println!("    $ {shown}");
    let status = command
        .status()
        .with_context(|| format!("start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs the command quietly and returns its standard output.
pub fn output(command: &mut Command) -> anyhow::Result<String> {
    let shown = show(command);
    let output = command
        .output()
        .with_context(|| format!("start `{shown}`"))?;
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn show(command: &Command) -> String {
    let envs = command
        .get_envs()
        .filter_map(|(key, value)| Some(format!("{}={}", key.to_str()?, value?.to_str()?)));
    let program = std::iter::once(command.get_program().to_string_lossy().into_owned());
    let args = command
        .get_args()
        .map(|arg| arg.to_string_lossy().into_owned());
    envs.chain(program)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}
