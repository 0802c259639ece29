//! The single-page app's toolchain and build: Trunk and wasm-bindgen-cli at the exact
//! versions the build needs, the npm packages of `package-lock.json`, and `trunk build`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

use crate::cmd;

/// Trunk 0.21.x still builds on the pinned toolchain (0.22 needs a newer rustc).
const TRUNK_VERSION: &str = "0.21.14";

/// Installs whatever is missing or at the wrong version; quick when all is in place.
pub fn ensure_tools() -> anyhow::Result<()> {
    ensure_cargo_tool("trunk", "trunk", TRUNK_VERSION, true)?;
    // The CLI must match the `wasm-bindgen` crate in Cargo.lock exactly.
    let bindgen = locked_version("wasm-bindgen")?;
    // Its own lockfile pins a crate the registry no longer has, so no --locked (RECIPES.md).
    ensure_cargo_tool("wasm-bindgen-cli", "wasm-bindgen", &bindgen, false)?;
    ensure_npm_packages()
}

/// Builds the app into `frontend/dist` (release, optimised), where the server serves it from.
pub fn build() -> anyhow::Result<()> {
    let mut trunk = Command::new("trunk");
    trunk
        .current_dir(cmd::root())
        .args(["build", "--release", "--offline"])
        .env("PATH", path_with_node_bin()?);
    cmd::run(&mut trunk)
}

fn ensure_cargo_tool(
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
    install.args(["install", &format!("{crate_name}@{version}")]);
    if locked {
        install.arg("--locked");
    }
    cmd::run(&mut install)
}

/// The version of `package` in Cargo.lock.
fn locked_version(package: &str) -> anyhow::Result<String> {
    let lock = std::fs::read_to_string(cmd::root().join("Cargo.lock"))?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .with_context(|| format!("{package} is not in Cargo.lock"))?
        + needle.len();
    let version = lock[start..].split('"').next().unwrap_or_default();
    if version.is_empty() {
        bail!("no version for {package} in Cargo.lock");
    }
    Ok(version.to_owned())
}

/// `npm ci` when `node_modules` is missing or older than `package-lock.json`.
fn ensure_npm_packages() -> anyhow::Result<()> {
    let root = cmd::root();
    let modified = |path: PathBuf| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    let lock = modified(root.join("package-lock.json")).context("package-lock.json is missing")?;
    match modified(root.join("node_modules/.package-lock.json")) {
        Some(installed) if installed >= lock => {
            println!("    npm packages are already installed");
            Ok(())
        }
        _ => {
            cmd::run(
                Command::new("npm")
                    .current_dir(&root)
                    .args(["ci", "--no-audit", "--no-fund"]),
            )
        }
    }
}

/// `PATH` with `node_modules/.bin` first, for the pinned wasm-opt.
fn path_with_node_bin() -> anyhow::Result<std::ffi::OsString> {
    let bin = cmd::root().join("node_modules/.bin");
    let rest = std::env::var_os("PATH").unwrap_or_default();
    Ok(std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&rest)),
    )?)
}
