//! The single-page app's toolchain and build: Trunk and wasm-bindgen-cli at the exact
//! versions the build needs, the npm packages of `package-lock.json`, and `trunk build`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::cmd;

/// Trunk 0.21.x still builds on the pinned toolchain (0.22 needs a newer rustc).
const TRUNK_VERSION: &str = "0.21.14";

/// Installs whatever is missing or at the wrong version; quick when all is in place.
pub fn ensure_tools() -> anyhow::Result<()> {
    cmd::ensure_cargo_tool("trunk", "trunk", TRUNK_VERSION, true)?;
    // The CLI must match the `wasm-bindgen` crate in Cargo.lock exactly.
    let bindgen = locked_version("wasm-bindgen")?;
    // Its own lockfile pins a crate the registry no longer has, so no --locked (RECIPES.md).
    cmd::ensure_cargo_tool("wasm-bindgen-cli", "wasm-bindgen", &bindgen, false)?;
    ensure_npm_packages()
}

/// Builds both apps (release, optimised) where the server serves them from: the holder's
/// into `frontend/dist`, the staff app into `frontend/dist/status` (served at `/status`),
/// each with a brotli and a gzip copy of every asset for browsers that take them. The
/// holder's goes first: Trunk empties its `dist` folder.
pub fn build() -> anyhow::Result<()> {
    let path = path_with_node_bin()?;
    let mut holder = Command::new("trunk");
    holder
        .current_dir(cmd::root())
        .args(["build", "--release", "--offline"])
        .env("PATH", &path);
    cmd::run(&mut holder)?;
    let mut staff = Command::new("trunk");
    staff
        .current_dir(cmd::root())
        .args([
            "build",
            "frontend/staff.html",
            "--release",
            "--offline",
            "--public-url",
            "/status/",
        ])
        .arg("--dist")
        .arg(staff_dist_dir())
        .env("PATH", &path);
    cmd::run(&mut staff)?;
    compress_assets(&dist_dir())?;
    compress_assets(&staff_dist_dir())
}

/// Where Trunk puts the holder's app.
pub fn dist_dir() -> PathBuf {
    cmd::root().join("frontend/dist")
}

/// Where Trunk puts the staff app, inside the holder's so one `static_dir` serves both.
pub fn staff_dist_dir() -> PathBuf {
    dist_dir().join("status")
}

/// The app's assets: what a browser downloads besides `index.html`.
pub fn assets(dist: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut assets: Vec<PathBuf> = std::fs::read_dir(dist)
        .with_context(|| format!("read {}", dist.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "wasm" || ext == "js" || ext == "css")
        })
        .collect();
    assets.sort();
    Ok(assets)
}

/// Writes `<asset>.br` (quality 11) and `<asset>.gz` (level 9) beside each asset.
fn compress_assets(dist: &Path) -> anyhow::Result<()> {
    for asset in assets(dist)? {
        let bytes = std::fs::read(&asset)?;
        let (gzip, brotli) = compressed(&bytes)?;
        std::fs::write(with_suffix(&asset, "gz"), gzip)?;
        std::fs::write(with_suffix(&asset, "br"), brotli)?;
    }
    Ok(())
}

/// `bytes` gzipped at level 9 and brotli-compressed at quality 11.
pub fn compressed(bytes: &[u8]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    use std::io::Write;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(bytes)?;
    let mut brotli = Vec::new();
    brotli::CompressorWriter::new(&mut brotli, 4096, 11, 22).write_all(bytes)?;
    Ok((gzip.finish()?, brotli))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
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
