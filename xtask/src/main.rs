//! `cargo xtask <command>`: the project's everyday commands, in Rust so they need no shell.

mod bench;
mod cmd;
mod demo;
mod frontend;
mod fuzz;
mod mail_tools;
mod package;
mod run;
mod schemathesis;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Project tasks for the smartcard unlock service.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service on its embedded defaults with a demo holder (data in ./var/).
    Run {
        /// Also start a private pcscd with a virtual card and a Chromium with the extension
        /// and the bridge (Linux), to click through the whole journey without hardware.
        #[arg(long)]
        virtual_card: bool,
        /// Extra arguments for `unlock-server serve --demo`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Install what the tests need, then run every test and the wasm and cross-target checks.
    Test,
    /// Install the Python (dkimpy, pinned) the server's mail test reads emails back with.
    MailTools,
    /// Build the bridge's packages for IT teams: a .deb, a Windows .msi and a macOS archive
    /// (in target/package/).
    Package(package::PackageArgs),
    /// Fuzz every target for a while (cargo-fuzz on nightly); fails if any crashes.
    Fuzz(fuzz::FuzzArgs),
    /// Load-benchmark the real server against bare axum baselines writing the same rows.
    Bench(bench::BenchArgs),
    /// A bounded load run of whole journeys at a fixed rate on each engine, against targets.
    Load(bench::journey_load::LoadArgs),
    /// The measuring half of `load`, run from a release build.
    #[command(hide = true)]
    LoadInner(bench::journey_load::LoadInnerArgs),
    /// Measure the holder's app: download size, first usable screen, the happy path's time.
    BenchApp(bench::app::AppArgs),
    /// Time the bridge (start → hello, challenge + unblock) against the virtual card.
    BenchBridge(bench::bridge::BridgeArgs),
    /// Time the staff API against a month of a national service's history.
    BenchStatus(bench::status::StatusArgs),
    /// Time what the card steps ask of the key custody: file custody and a SoftHSM2 token.
    BenchKeys(bench::keys::KeysArgs),
    /// The measuring half of `bench-keys`, with SoftHSM2's store in its environment.
    #[command(hide = true)]
    BenchKeysInner(bench::keys::KeysInnerArgs),
    /// The measuring half of `bench`, run from a release build.
    #[command(hide = true)]
    BenchInner(bench::InnerArgs),
    /// The baseline server `bench` measures against (one commit per request, an endpoint's rows).
    #[command(hide = true)]
    BaselineServer(bench::baseline::ServerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            virtual_card: true,
            args,
        } => demo::run(&args),
        Command::Run { args, .. } => run::run(&args),
        Command::Test => test::run(),
        Command::MailTools => mail_tools::ensure_installed().map(|python| {
            println!("    {}={}", mail_tools::PYTHON_VAR, python.display());
        }),
        Command::Package(args) => package::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Load(args) => bench::journey_load::run(&args),
        Command::LoadInner(args) => bench::journey_load::inner(&args),
        Command::BenchApp(args) => bench::app::run(&args),
        Command::BenchBridge(args) => bench::bridge::run(&args),
        Command::BenchStatus(args) => bench::status::run(&args),
        Command::BenchInner(args) => bench::inner(&args),
        Command::BenchKeys(args) => bench::keys::run(&args),
        Command::BenchKeysInner(args) => bench::keys::inner(&args),
        Command::BaselineServer(args) => bench::baseline::serve(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
