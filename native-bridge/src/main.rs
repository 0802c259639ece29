//! `unlock-bridge`: started by the browser as a native-messaging host, or by an installer
//! (or a person at a terminal) to register itself with the browsers.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use unlock_bridge::config::Config;
use unlock_bridge::host::Host;
use unlock_bridge::install::{self, Browser, Scope};

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
enum Action {
    /// Register this program with the browsers, so the extension can start it.
    Install(Placement),
    /// Remove the registration.
    Uninstall(Placement),
    /// Check everything between the browser and the card, and say what to fix.
    Diagnose {
        /// Print the checks as JSON, for IT tooling.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct Placement {
    /// Which browsers.
    #[arg(long, value_enum, default_value = "all")]
    browser: Browser,
    /// For everyone on this computer (needs administrator rights).
    #[arg(long, conflicts_with = "user")]
    system: bool,
    /// For the current user only (the default).
    #[arg(long)]
    user: bool,
    /// Write under this directory instead of `/`, for building packages (Linux and macOS).
    #[arg(long, value_name = "DIR")]
    destdir: Option<PathBuf>,
}

impl Placement {
    fn scope(&self) -> Scope {
        if self.system {
            Scope::System
        } else {
            Scope::User
        }
    }
}

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
        (Some(Action::Diagnose { json }), _) => diagnose(json),
        (Some(Action::Install(placement)), _) => finish(register(placement)),
        (Some(Action::Uninstall(placement)), _) => finish(unregister(placement)),
    }
}

/// Prints every check; fails if any check the unlock needs found a problem.
fn diagnose(json: bool) -> ExitCode {
    let binary = match std::env::current_exe() {
        Ok(binary) => binary,
        Err(error) => {
            eprintln!("unlock-bridge: cannot find where this program is: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = unlock_bridge::diagnose::run(&binary);
    if json {
        print!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn finish(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("unlock-bridge: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the browsers' manifests for this binary, and says what it did.
fn register(placement: Placement) -> Result<(), Box<dyn std::error::Error>> {
    let binary = std::env::current_exe()?;
    let config = Config::load_beside(&binary)?;
    let written = install::install(
        placement.scope(),
        placement.browser,
        &binary,
        &config.extension_ids,
        placement.destdir.as_deref(),
    )?;
    for place in written {
        println!("registered: {place}");
    }
    if config.allowed_origins.is_empty() {
        eprintln!(
            "unlock-bridge: note: no page may use the card reader until its origin is \
             listed in allowed_origins in {}",
            binary
                .with_file_name(unlock_bridge::config::FILE_NAME)
                .display()
        );
    }
    Ok(())
}

/// Removes the browsers' manifests, and says what it removed.
fn unregister(placement: Placement) -> Result<(), Box<dyn std::error::Error>> {
    let removed = install::uninstall(
        placement.scope(),
        placement.browser,
        placement.destdir.as_deref(),
    )?;
    if removed.is_empty() {
        println!("nothing to remove");
    }
    for place in removed {
        println!("removed: {place}");
    }
    Ok(())
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
