//! `cargo xtask bench` on SQLite, the embedded default: one instance on a fresh file, against
//! baselines committing one SQLite transaction per request, with the server's settings,
//! writing the rows each endpoint writes.

use std::path::Path;

use anyhow::Context;

use super::journeys::Loader;
use super::scratch::free_addr;
use super::target::Target;
use super::{InnerArgs, baseline, disk, report};

/// Baseline, start-journey, verify-code, then the table.
pub fn measure(loader: &Loader, scratch: &Path, args: &InnerArgs) -> anyhow::Result<()> {
    let bench = &args.bench;
    let load_before = report::load_average();
    // Sync cost swings with other disk traffic (a build's write-back), so look before and after.
    let sync_before = disk::sync_costs(scratch, 50)?;

    println!(
        "==> baselines: bare axum, one SQLite transaction per request writing the endpoint's rows"
    );
    let baseline_url = format!("sqlite://{}", scratch.join("baseline.db").display());
    let baselines = {
        let addr = free_addr()?;
        let _server = baseline::spawn(scratch, addr, &baseline_url)?;
        loader.baselines(addr)?
    };

    let mut target = Target::new(args.server_bin.clone(), scratch.join("server"), None)?;
    target.loopback_is_a_proxy = bench.client_addresses > 1;
    std::fs::create_dir_all(&target.dir).context("create the server's folder")?;
    println!(
        "==> unlock-server: seeding {} holders, then serving on {}",
        bench.holders, target.addr
    );
    target.seed(bench.holders)?;
    let server = target.serve()?;

    println!("==> start-journey: POST /api/journeys, each holder once");
    let (start, started) = loader.start_journeys(&[target.addr])?;
    let codes = loader.wait_for_codes(&target.mail_dir(), &started)?;
    println!("==> verify-code: POST /api/journey/code, the right code, each journey once");
    let verify = loader.verify_codes(&[target.addr], &started, &codes)?;

    let runtime = loader.runtime;
    let server_settings = runtime.block_on(disk::sqlite_settings(&target.database_url))?;
    let baseline_settings = runtime.block_on(disk::sqlite_settings(&baseline_url))?;
    let sync_after = disk::sync_costs(scratch, 50)?;
    let log_tail = if start.errors + verify.errors > 0 {
        server.log_tail(20)
    } else {
        String::new()
    };
    drop(server);

    report::print("", &baselines, &[start, verify]);
    report::print_floor(&[&baselines]);
    println!("SQLite (both with unlock_server::db's settings, one write connection each):");
    println!("  server   {server_settings}");
    println!("  baseline {baseline_settings}");
    for (when, (overwrite, append)) in [("before", sync_before), ("after", sync_after)] {
        println!(
            "disk sync {when} the load (median of 50): overwrite 4 KiB + fdatasync {:.2} ms; append 200 B + fsync {:.2} ms",
            overwrite.as_secs_f64() * 1000.0,
            append.as_secs_f64() * 1000.0
        );
    }
    report::print_conditions(bench, &load_before);
    if !log_tail.is_empty() {
        println!("last lines of the server's log:\n{log_tail}");
    }
    Ok(())
}
