//! `cargo xtask bench-app`: the holder's app — what a browser downloads (gzip and brotli, as
//! the server sends it), how soon the first screen can be used, and how long the automated
//! happy path takes through every real part; and what the staff app downloads (no budget:
//! staff open it once a shift, on a desk).

use std::process::Command;

use crate::{cmd, frontend, test};

/// What the app may cost a browser to download, gzip, in bytes.
const BUDGET_GZIP: usize = 200 * 1024;

#[derive(Debug, clap::Args)]
pub struct AppArgs {
    /// Measurements per timing figure.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
}

pub fn run(args: &AppArgs) -> anyhow::Result<()> {
    test::ensure_debian_packages(&[
        "python3-aiosmtpd",
        "pcscd",
        "libpcsclite-dev",
        "vsmartcard-vpcd",
        "chromium",
        "chromium-driver",
    ])?;
    frontend::ensure_tools()?;
    frontend::build()?;
    println!("==> the holder's app (frontend/dist)");
    let holder = sizes(&frontend::dist_dir())?;
    println!(
        "budget: {:.0} KB gzip — {}\n",
        kb(BUDGET_GZIP),
        if holder <= BUDGET_GZIP {
            "within"
        } else {
            "OVER"
        }
    );
    println!("==> the staff app (frontend/dist/status), for comparison; it has no budget");
    sizes(&frontend::staff_dist_dir())?;
    println!();
    println!("==> building the server, the bridge, the virtual card and app-bench (release)");
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "--locked",
        "-p",
        "unlock-server",
        "-p",
        "unlock-bridge",
        "-p",
        "unlock-e2e",
    ]))?;
    let bench = cmd::target_dir().join("release/app-bench");
    cmd::run(Command::new(bench).args(["--runs", &args.runs.to_string()]))
}

/// Prints the size of `index.html` in `dist` (sent as it is: the server reads it at start-up
/// and adds its CSP) and of each asset raw, gzip and brotli, and the total; returns the gzip
/// total.
fn sizes(dist: &std::path::Path) -> anyhow::Result<usize> {
    println!();
    println!("| asset | raw KB | gzip KB | brotli KB |");
    println!("|---|---|---|---|");
    let html = std::fs::metadata(dist.join("index.html"))?.len() as usize;
    println!(
        "| index.html (uncompressed) | {:.1} | {:.1} | {:.1} |",
        kb(html),
        kb(html),
        kb(html)
    );
    let (mut raw, mut gzip, mut brotli) = (html, html, html);
    for asset in frontend::assets(dist)? {
        let bytes = std::fs::read(&asset)?;
        let (gz, br) = frontend::compressed(&bytes)?;
        let name = asset.file_name().unwrap_or_default().to_string_lossy();
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            kb(bytes.len()),
            kb(gz.len()),
            kb(br.len())
        );
        raw += bytes.len();
        gzip += gz.len();
        brotli += br.len();
    }
    println!(
        "| **total** | {:.1} | {:.1} | {:.1} |",
        kb(raw),
        kb(gzip),
        kb(brotli)
    );
    Ok(gzip)
}

fn kb(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}
