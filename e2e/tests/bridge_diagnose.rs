//! `unlock-bridge diagnose`, run for real: a copy of the binary laid out as an installer lays
//! it out, a private home folder, and a private pcscd with the vpcd reader and the virtual
//! card (or no pcscd at all). Each problem must come with its fix and a failing exit status.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use unlock_e2e::bridge::{PAGE_ORIGIN, extension_caller, install_copy, spawn_fresh_copy};
use unlock_e2e::harness::{Card, PrivatePcscd, READER, wait_until};

const MASTER_KEY: &str = "0b2560610fce4019a51221a129d9cf4c";
const BROWSERS: [(&str, &str); 3] = [
    ("Google Chrome", "google-chrome"),
    ("Microsoft Edge", "microsoft-edge"),
    ("Chromium", "chromium"),
];

/// The bridge binary, which `cargo test --workspace` builds beside this package's binaries.
fn bridge_binary() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_virtual-card")).with_file_name("unlock-bridge");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo test --workspace` or `cargo build -p unlock-bridge`",
        binary.display()
    );
    binary
}

fn config() -> String {
    format!("allowed_origins = [{PAGE_ORIGIN:?}]\n")
}

/// Runs `installed` with `args` for a person whose home is `home`, reaching pcscd through
/// `socket`; whether it succeeded, and what it printed.
fn run(installed: &Path, args: &[&str], home: &Path, socket: &Path) -> (bool, String) {
    let mut command = Command::new(installed);
    command
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env("PCSCLITE_CSOCK_NAME", socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = spawn_fresh_copy(&mut command).wait_with_output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        args[0] != "diagnose" || output.stderr.is_empty(),
        "diagnose wrote to standard error: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn diagnose(installed: &Path, home: &Path, socket: &Path) -> (bool, String) {
    run(installed, &["diagnose"], home, socket)
}

/// The line of `check`, which must be there once.
fn line<'a>(text: &'a str, check: &str) -> &'a str {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.get(9..)
                .is_some_and(|rest| rest.starts_with(&format!("{check}: ")))
        })
        .collect();
    assert_eq!(lines.len(), 1, "one line for {check:?} in:\n{text}");
    lines[0]
}

fn assert_line(text: &str, check: &str, mark: &str, says: &[&str]) {
    let found = line(text, check);
    assert!(found.starts_with(mark), "{check} is not {mark}:\n{text}");
    for words in says {
        assert!(
            found.contains(words),
            "{check} does not say {words:?}:\n{text}"
        );
    }
}

#[test]
fn registrations_are_reported_before_and_after_install_and_the_card_as_it_comes_and_goes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pcscd = PrivatePcscd::start(dir.path());
    let mut card = Card::start(
        Path::new(env!("CARGO_BIN_EXE_virtual-card")),
        pcscd.vpcd_port,
        &["--master-key", MASTER_KEY, "--locked"],
    );
    let installed = install_copy(&bridge_binary(), &dir.path().join("opt/bridge"), &config());
    let id = extension_caller()
        .trim_start_matches("chrome-extension://")
        .trim_end_matches('/')
        .to_owned();

    // Not registered yet: every browser says so, and the summary is a problem with its fix.
    // (pcscd sees the card within a poll or two of its start.)
    let mut text = String::new();
    wait_until(|| {
        text = diagnose(&installed, &home, &pcscd.socket).1;
        text.contains("a card of profile")
    });
    let (passed, text) = diagnose(&installed, &home, &pcscd.socket);
    assert!(
        !passed,
        "nothing is registered, yet diagnose passed:\n{text}"
    );
    assert!(text.starts_with(&format!(
        "unlock-bridge {} diagnose: {}\n",
        env!("CARGO_PKG_VERSION"),
        installed.display()
    )));
    for (browser, _) in BROWSERS {
        assert_line(
            &text,
            &format!("{browser} host registration (this user)"),
            "note",
            &["not registered"],
        );
    }
    assert_line(
        &text,
        "Browsers that can start this program",
        "PROBLEM",
        &["none", "To fix: run `unlock-bridge install --user`"],
    );
    assert_line(
        &text,
        "Extensions allowed to start this program",
        "ok",
        &[&id],
    );
    assert_line(
        &text,
        "Web pages allowed to use the card reader",
        "ok",
        &[PAGE_ORIGIN],
    );
    // The card service, the reader and the locked card are seen all the same.
    assert_line(&text, "Smart card service (PC/SC)", "ok", &["running"]);
    assert_line(
        &text,
        &format!("Reader \u{201c}{READER}\u{201d}"),
        "ok",
        &["a card of profile unlock-cr/1", "its passcode is locked"],
    );
    assert_line(&text, "Card", "ok", &["ready"]);
    assert!(text.ends_with("1 problem found. Fix it, then run `unlock-bridge diagnose` again.\n"));

    // Registered as the fix says: every browser's manifest is this program's.
    let (installed_ok, said) = run(&installed, &["install", "--user"], &home, &pcscd.socket);
    assert!(installed_ok, "{said}");
    let (passed, text) = diagnose(&installed, &home, &pcscd.socket);
    assert!(passed, "diagnose failed after install:\n{text}");
    for (browser, folder) in BROWSERS {
        let manifest = home.join(format!(
            ".config/{folder}/NativeMessagingHosts/uk.nhs.smartcard_unlock.json"
        ));
        assert_line(
            &text,
            &format!("{browser} host registration (this user)"),
            "ok",
            &[
                &manifest.display().to_string(),
                "points at this program",
                &format!("allows extension {id}"),
            ],
        );
    }
    assert_line(
        &text,
        "Browsers that can start this program",
        "ok",
        &["Google Chrome, Microsoft Edge, Chromium"],
    );
    assert!(text.ends_with("All checks passed.\n"), "{text}");
    assert!(!text.contains("PROBLEM"), "{text}");

    // The same, for IT tooling.
    let (passed, json) = run(&installed, &["diagnose", "--json"], &home, &pcscd.socket);
    assert!(passed);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["binary"], installed.display().to_string());
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.iter().all(|check| check["status"] != "problem"));
    assert!(checks.iter().any(|check| check["check"] == "Card"
        && check["status"] == "ok"
        && check.get("fix").is_none()));

    // Another copy, elsewhere and with no pages allowed, sees the registrations lead to the
    // first copy, not to itself.
    let other = install_copy(&bridge_binary(), &dir.path().join("elsewhere"), "");
    let (passed, text) = diagnose(&other, &home, &pcscd.socket);
    assert!(!passed);
    assert_line(
        &text,
        "Google Chrome host registration (this user)",
        "PROBLEM",
        &[
            &format!("points at {}, not at this program", installed.display()),
            "To fix: run `unlock-bridge install --user --browser chrome`",
        ],
    );
    assert_line(
        &text,
        "Web pages allowed to use the card reader",
        "PROBLEM",
        &["none", "allowed_origins", "elsewhere/unlock-bridge.toml"],
    );
    assert_line(
        &text,
        "Browsers that can start this program",
        "PROBLEM",
        &["none"],
    );

    // The card taken out: the reader is empty and the fix is to insert the card.
    assert_eq!(card.command("remove"), "ok");
    let mut text = String::new();
    wait_until(|| {
        let (passed, now) = diagnose(&installed, &home, &pcscd.socket);
        text = now;
        !passed && text.contains("no card in any reader")
    });
    assert_line(
        &text,
        &format!("Reader \u{201c}{READER}\u{201d}"),
        "note",
        &["no card in it"],
    );
    assert_line(
        &text,
        "Card",
        "PROBLEM",
        &["To fix: insert your smartcard into the reader"],
    );
    // Nothing about the card's identity is printed.
    assert_eq!(card.command("insert"), "ok");
    wait_until(|| diagnose(&installed, &home, &pcscd.socket).0);
    let serial = card.state()["serial"].as_str().unwrap().to_owned();
    let (_, text) = diagnose(&installed, &home, &pcscd.socket);
    assert!(
        !text.to_lowercase().contains(&serial.to_lowercase()),
        "{text}"
    );
}

#[test]
fn without_pcscd_or_with_broken_settings_the_problems_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let nowhere = dir.path().join("no-pcscd-here");
    let installed = install_copy(&bridge_binary(), &dir.path().join("opt/bridge"), &config());
    let (registered, said) = run(&installed, &["install", "--user"], &home, &nowhere);
    assert!(registered, "{said}");

    let (passed, text) = diagnose(&installed, &home, &nowhere);
    assert!(!passed, "{text}");
    assert_line(
        &text,
        "Smart card service (PC/SC)",
        "PROBLEM",
        &[
            "not running",
            "To fix: start the smart card service: `sudo systemctl start pcscd`",
        ],
    );
    assert!(!text.contains("Reader \u{201c}"), "{text}");
    assert_line(&text, "Browsers that can start this program", "ok", &[]);

    let (passed, json) = run(&installed, &["diagnose", "--json"], &home, &nowhere);
    assert!(!passed);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["passed"], false);
    let service = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["check"] == "Smart card service (PC/SC)")
        .unwrap();
    assert_eq!(service["status"], "problem");
    assert!(
        service["fix"]
            .as_str()
            .unwrap()
            .contains("systemctl start pcscd")
    );

    // A misspelt setting: every request would be refused, and the file to correct is named.
    std::fs::write(
        installed.with_file_name("unlock-bridge.toml"),
        "allowed_origin = []\n",
    )
    .unwrap();
    let (passed, text) = diagnose(&installed, &home, &nowhere);
    assert!(!passed);
    assert_line(
        &text,
        "Settings",
        "PROBLEM",
        &[
            "is not valid",
            "every request from the page is refused",
            "To fix: ask your IT service desk to correct",
        ],
    );
}
