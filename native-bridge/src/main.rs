//! `unlock-bridge`: started by the browser as a native-messaging host, or by an installer
//! (or a person at a terminal) to register itself with the browsers.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use unlock_bridge::config::Config;
use unlock_bridge::host::Host;

#[derive(Debug, Parser)]
#[command(
    name = "unlock-bridge",
    version,
    about = "Lets the smartcard unlock page reach the card reader, through the browser extension",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Action>,
    /// The extension that started us, as the browser passes it: chrome-extension://<id>/
    caller: Option<String>,
    /// The browser window, which Chrome and Edge pass on Windows; unused.
    #[arg(long, hide = true)]
    parent_window: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Action {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match (cli.command, cli.caller) {
        (None, Some(caller)) => {
            serve(&caller);
            ExitCode::SUCCESS
        }
        (None, None) => {
            eprintln!(
                "unlock-bridge is started by the smartcard unlock browser extension.\n\
                 To set it up for your browsers, run: unlock-bridge install\n\
                 For more, run: unlock-bridge --help"
            );
            ExitCode::from(2)
        }
        (Some(action), _) => match action {},
    }
}

/// Runs as the browser's native-messaging host until the browser closes the connection.
/// Standard output carries frames and nothing else; Rust's standard streams are binary on
/// every platform, so there is no text-mode translation to switch off on Windows.
fn serve(caller: &str) {
    let binary = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("unlock-bridge"));
    let config = Config::load_beside(&binary).map_err(|error| error.to_string());
    start_logging(config.as_ref().ok());
    if let Err(error) = &config {
        tracing::error!(%error, "settings could not be used; refusing every request");
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), caller, "started");
    let host = Host::new(config, caller, std::io::stdout());
    host.serve(std::io::stdin().lock());
}

/// Logs go to the configured file, or to standard error, which the browser keeps; never to
/// standard output.
fn start_logging(config: Option<&Config>) {
    let level = config.map_or("info", |config| config.log_level.as_str());
    let filter = EnvFilter::try_new(format!("unlock_bridge={level},warn"))
        .unwrap_or_else(|_| EnvFilter::new("unlock_bridge=info,warn"));
    let file = config
        .and_then(|config| config.log_file.as_ref())
        .and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .inspect_err(|error| {
                    eprintln!(
                        "unlock-bridge: cannot open the log file {}: {error}",
                        path.display()
                    );
                })
                .ok()
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    match file {
        Some(file) => builder.with_writer(std::sync::Mutex::new(file)).init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
}
