//! `unlock-bridge diagnose`: checks, one line each, of everything between the browser and the
//! card that this program can see, with what to do about each problem. For the person at the
//! computer and for IT tooling (`--json`).
//!
//! Nothing secret is read or shown: the card is only selected and asked for its passcode
//! tries, as the page's first step does; its identity is not printed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use unlock_protocol::bridge::{BridgeError, ErrorCode};

use crate::card_access::read_card;
use crate::config::{self, Config, ConfigError, HOST_NAME};
use crate::install::{self, Location, Product, Registration, Scope};
use crate::profile::PROFILES;
use crate::service::readers;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Something the unlock needs is missing or wrong.
    Problem,
    /// Worth knowing, not needed: a browser not set up, an empty reader.
    Note,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub check: String,
    pub status: Status,
    /// What was found.
    pub finding: String,
    /// What to do, for a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every check, in the order the unlock needs them.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: &'static str,
    pub binary: PathBuf,
    /// Whether no check found a problem.
    pub passed: bool,
    pub checks: Vec<Check>,
}

impl Report {
    /// One line per check: `ok`, `PROBLEM` or `note`, then the check, what was found and,
    /// for a problem, what to do.
    pub fn text(&self) -> String {
        let mut out = format!(
            "unlock-bridge {} diagnose: {}\n",
            self.version,
            self.binary.display()
        );
        for check in &self.checks {
            let mark = match check.status {
                Status::Ok => "ok     ",
                Status::Problem => "PROBLEM",
                Status::Note => "note   ",
            };
            let _ = write!(out, "{mark}  {}: {}", check.check, check.finding);
            if let Some(fix) = &check.fix {
                let _ = write!(out, " To fix: {fix}");
            }
            out.push('\n');
        }
        let problems = self
            .checks
            .iter()
            .filter(|check| check.status == Status::Problem)
            .count();
        out.push_str(&match problems {
            0 => "All checks passed.\n".to_owned(),
            1 => "1 problem found. Fix it, then run `unlock-bridge diagnose` again.\n".to_owned(),
            n => format!(
                "{n} problems found. Fix them from the top, then run `unlock-bridge diagnose` \
                 again.\n"
            ),
        });
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises") + "\n"
    }
}

fn ok(check: impl Into<String>, finding: impl Into<String>) -> Check {
    Check {
        check: check.into(),
        status: Status::Ok,
        finding: finding.into(),
        fix: None,
    }
}

fn note(check: impl Into<String>, finding: impl Into<String>) -> Check {
    Check {
        check: check.into(),
        status: Status::Note,
        finding: finding.into(),
        fix: None,
    }
}

fn problem(check: impl Into<String>, finding: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        check: check.into(),
        status: Status::Problem,
        finding: finding.into(),
        fix: Some(fix.into()),
    }
}

/// Runs every check for the program at `binary` (this one).
pub fn run(binary: &Path) -> Report {
    let mut checks = Vec::new();
    let config = settings(binary, &mut checks);
    browsers(binary, config.as_ref(), &mut checks);
    card_service(&mut checks);
    checks.push(note(
        "Browser extension",
        "this program cannot see the browser's extensions. In the browser, open \
         chrome://extensions (edge://extensions in Edge) and check \u{201c}Smartcard unlock\u{201d} \
         is there and switched on; the unlock page's help screens also say whether they can \
         reach it.",
    ));
    Report {
        version: env!("CARGO_PKG_VERSION"),
        binary: binary.to_owned(),
        passed: checks.iter().all(|check| check.status != Status::Problem),
        checks,
    }
}

const ASK_IT: &str = "ask your IT service desk to";

/// The settings file, the extensions allowed to start us and the pages allowed to use the
/// reader.
fn settings(binary: &Path, checks: &mut Vec<Check>) -> Option<Config> {
    let path = binary.with_file_name(config::FILE_NAME);
    let config = match Config::load_beside(binary) {
        Ok(config) => config,
        Err(error) => {
            // One line: the parser's own text quotes the file over several.
            let finding = match &error {
                ConfigError::Read { source, .. } => {
                    format!("cannot read {}: {source}", path.display())
                }
                ConfigError::Parse { source, .. } => format!(
                    "{} is not valid: {}",
                    path.display(),
                    source.message().trim_end_matches('.')
                ),
                _ => error.to_string(),
            };
            checks.push(problem(
                "Settings",
                format!("{finding}; every request from the page is refused."),
                format!("{ASK_IT} correct {}.", path.display()),
            ));
            return None;
        }
    };
    checks.push(ok(
        "Settings",
        if path.exists() {
            format!("read {}.", path.display())
        } else {
            format!("no {} (the defaults apply).", path.display())
        },
    ));
    checks.push(ok(
        "Extensions allowed to start this program",
        format!("{}.", config.extension_ids.join(", ")),
    ));
    if config.allowed_origins.is_empty() {
        let also = if cfg!(windows) {
            r" (or in the policy value AllowedOrigins under HKLM\SOFTWARE\Policies\SmartcardUnlock\Bridge)"
        } else {
            ""
        };
        checks.push(problem(
            "Web pages allowed to use the card reader",
            "none, so every page is refused.",
            format!(
                "{ASK_IT} add the unlock service's address, such as \
                 https://unlock.example.nhs.uk, to allowed_origins in {}{also}.",
                path.display()
            ),
        ));
    } else {
        checks.push(ok(
            "Web pages allowed to use the card reader",
            format!("{}.", config.allowed_origins.join(", ")),
        ));
    }
    Some(config)
}

/// What a browser's host manifest says, as far as the checks go.
#[derive(Debug, serde::Deserialize)]
struct Manifest {
    name: String,
    path: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    allowed_origins: Vec<String>,
}

fn install_command(scope: Scope, product: Product) -> String {
    match scope {
        Scope::User => format!(
            "run `unlock-bridge install --user --browser {}`, then restart the browser.",
            product.flag()
        ),
        Scope::System if cfg!(windows) => format!(
            "run `unlock-bridge install --system --browser {}` as administrator (or {ASK_IT} do \
             it), then restart the browser.",
            product.flag()
        ),
        Scope::System => format!(
            "run `sudo unlock-bridge install --system --browser {}` (or {ASK_IT} do it), then \
             restart the browser.",
            product.flag()
        ),
    }
}

/// Each browser's registration, for this user and for everyone, and whether any browser
/// can start this program.
fn browsers(binary: &Path, config: Option<&Config>, checks: &mut Vec<Check>) {
    let mut ready = Vec::new();
    for product in Product::ALL {
        for scope in [Scope::User, Scope::System] {
            let who = match scope {
                Scope::User => "this user",
                Scope::System => "all users",
            };
            let check = format!("{} host registration ({who})", product.label());
            let fix = install_command(scope, product);
            let found = match install::registration(scope, product) {
                Ok(found) => found,
                Err(error) => {
                    checks.push(problem(check, format!("{error}."), fix));
                    continue;
                }
            };
            let result = registration(binary, config, &found);
            match result {
                Found::Absent => checks.push(note(check, "not registered.")),
                Found::Good(finding) => {
                    if !ready.contains(&product.label()) {
                        ready.push(product.label());
                    }
                    checks.push(ok(check, finding));
                }
                Found::Bad(finding) => checks.push(problem(check, finding, fix)),
            }
        }
    }
    if ready.is_empty() {
        checks.push(problem(
            "Browsers that can start this program",
            "none: the browser extension cannot reach the card reader.",
            format!(
                "run `unlock-bridge install --user` (or {ASK_IT} install the smartcard unlock \
                 helper program), then restart the browser."
            ),
        ));
    } else {
        checks.push(ok(
            "Browsers that can start this program",
            format!("{}.", ready.join(", ")),
        ));
    }
}

enum Found {
    Absent,
    Good(String),
    Bad(String),
}

/// Whether the registration at `found` leads to a manifest that starts this program for an
/// extension it accepts.
fn registration(binary: &Path, config: Option<&Config>, found: &Registration) -> Found {
    let Some(file) = &found.manifest else {
        return Found::Absent;
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return match &found.place {
                Location::File(_) => Found::Absent,
                Location::RegistryKey { .. } => Found::Bad(format!(
                    "{} names {}, which is missing.",
                    found.place,
                    file.display()
                )),
            };
        }
        Err(error) => return Found::Bad(format!("cannot read {}: {error}.", file.display())),
    };
    let manifest: Manifest = match serde_json::from_str(&text) {
        Ok(manifest) => manifest,
        Err(error) => {
            return Found::Bad(format!(
                "{} is not a valid host manifest: {error}.",
                file.display()
            ));
        }
    };
    if manifest.name != HOST_NAME || manifest.kind != "stdio" {
        return Found::Bad(format!(
            "{} is not the manifest of {HOST_NAME} for standard input and output.",
            file.display()
        ));
    }
    let target = Path::new(&manifest.path);
    let points_here = match (target.canonicalize(), binary.canonicalize()) {
        (Ok(target), Ok(this)) => target == this,
        (Err(_), _) => {
            return Found::Bad(format!(
                "{} points at {}, which does not exist.",
                file.display(),
                manifest.path
            ));
        }
        (Ok(_), Err(_)) => false,
    };
    if !points_here {
        return Found::Bad(format!(
            "{} points at {}, not at this program.",
            file.display(),
            manifest.path
        ));
    }
    let ids: Vec<&str> = manifest
        .allowed_origins
        .iter()
        .filter_map(|origin| {
            origin
                .strip_prefix("chrome-extension://")
                .map(|id| id.trim_end_matches('/'))
        })
        .collect();
    let listed = if ids.is_empty() {
        "no extension".to_owned()
    } else {
        format!("extension {}", ids.join(", "))
    };
    if let Some(config) = config
        && !ids
            .iter()
            .any(|id| config.extension_ids.iter().any(|known| known == id))
    {
        return Found::Bad(format!(
            "{} allows {listed}, which this program does not accept (it accepts {}).",
            file.display(),
            config.extension_ids.join(", ")
        ));
    }
    Found::Good(format!(
        "{} points at this program and allows {listed}.",
        file.display()
    ))
}

fn start_service_fix() -> &'static str {
    if cfg!(windows) {
        "start the Smart Card service: open Services (services.msc), select \u{201c}Smart Card\u{201d} \
         and Start; it also starts when a reader is plugged in."
    } else if cfg!(target_os = "macos") {
        "unplug the card reader and plug it in again, which starts the smart card service; if \
         that does not help, restart the computer."
    } else {
        "start the smart card service: `sudo systemctl start pcscd` (install it first with \
         `sudo apt install pcscd` or your system's package manager if it is missing)."
    }
}

fn reader_fix() -> &'static str {
    if cfg!(any(windows, target_os = "macos")) {
        "plug your card reader into this computer and wait a few seconds; if it is plugged in, \
         unplug it and plug it in again, or try another USB port."
    } else {
        "plug your card reader into this computer and wait a few seconds; if it is plugged in, \
         unplug it and plug it in again, or try another USB port. Most readers also need the \
         CCID driver: `sudo apt install libccid`."
    }
}

/// The PC/SC service, each reader and the card in it.
fn card_service(checks: &mut Vec<Check>) {
    const SERVICE: &str = "Smart card service (PC/SC)";
    let context = match pcsc::Context::establish(pcsc::Scope::User) {
        Ok(context) => context,
        Err(pcsc::Error::NoService | pcsc::Error::ServiceStopped) => {
            checks.push(problem(SERVICE, "not running.", start_service_fix()));
            return;
        }
        Err(error) => {
            checks.push(problem(
                SERVICE,
                format!("cannot be reached: {error}."),
                start_service_fix(),
            ));
            return;
        }
    };
    checks.push(ok(SERVICE, "running."));
    let found = match readers(&context) {
        Ok(found) => found,
        Err(error) => {
            checks.push(problem(
                "Card readers",
                bridge_finding(&error),
                reader_fix(),
            ));
            return;
        }
    };
    if found.is_empty() {
        checks.push(problem("Card readers", "none found.", reader_fix()));
        return;
    }
    let mut usable = 0;
    let mut cards = 0;
    for reader in &found {
        let check = format!("Reader \u{201c}{}\u{201d}", reader.name);
        if !reader.card_present {
            checks.push(note(check, "no card in it."));
            continue;
        }
        cards += 1;
        let atr = reader.atr.as_deref().unwrap_or("unknown");
        match read_card(&context, &reader.name, PROFILES) {
            Ok(card) => {
                usable += 1;
                let tries = match card.tries_left {
                    0 => "its passcode is locked".to_owned(),
                    1 => "its passcode is not locked (1 try left)".to_owned(),
                    n => format!("its passcode is not locked ({n} tries left)"),
                };
                checks.push(ok(
                    check,
                    format!(
                        "a card of profile {} (answer to reset {atr}); {tries}.",
                        card.card.profile()
                    ),
                ));
            }
            Err(error) => checks.push(card_problem(check, atr, &error)),
        }
    }
    if cards == 0 {
        checks.push(problem(
            "Card",
            "no card in any reader.",
            "insert your smartcard into the reader, chip first.",
        ));
    } else if usable == 0 {
        checks.push(problem(
            "Card",
            "no card this service can use.",
            "insert your own NHS smartcard; if it still fails, contact your Registration \
             Authority.",
        ));
    } else {
        checks.push(ok("Card", "ready."));
    }
}

fn card_problem(check: String, atr: &str, error: &BridgeError) -> Check {
    let fix = match error.code {
        ErrorCode::UnsupportedCard => {
            "this is not a card the service can unlock: use your own NHS smartcard."
        }
        ErrorCode::CardInUse => {
            "another program is using the card: close other smartcard programs, or take the \
             card out and put it back."
        }
        ErrorCode::CardRemoved | ErrorCode::CardReset | ErrorCode::NoCard => {
            "leave the card in the reader and run `unlock-bridge diagnose` again."
        }
        _ => "take the card out, put it back, and run `unlock-bridge diagnose` again.",
    };
    problem(
        check,
        format!(
            "a card (answer to reset {atr}) that could not be read: {}",
            bridge_finding(error)
        ),
        fix,
    )
}

fn bridge_finding(error: &BridgeError) -> String {
    let code = serde_json::to_value(error.code)
        .ok()
        .and_then(|code| code.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{} ({code})", error.message.trim_end_matches('.'))
}
