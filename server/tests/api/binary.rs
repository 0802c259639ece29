//! The real `unlock-server` binary: its command line, and what it writes to its logs.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

const BINARY: &str = env!("CARGO_BIN_EXE_unlock-server");

fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BINARY)
        .args(args)
        .current_dir(dir)
        .env(
            "UNLOCK_DATABASE_URL",
            format!("sqlite://{}", dir.join("cli.db").display()),
        )
        .env("UNLOCK_DATA_DIR", dir)
        .env("UNLOCK_SECRET_KEY", SECRET_KEY)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run unlock-server")
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn allowlist_commands_add_list_and_remove_domains() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        stdout(&cli(dir.path(), &["allowlist", "add", "Trust.Example"])),
        "trust.example: added\n"
    );
    assert_eq!(
        stdout(&cli(dir.path(), &["allowlist", "add", "@nhs.example"])),
        "nhs.example: added\n"
    );
    assert_eq!(
        stdout(&cli(dir.path(), &["allowlist", "list"])),
        "nhs.example\ntrust.example\n"
    );
    assert_eq!(
        stdout(&cli(dir.path(), &["allowlist", "remove", "nhs.example"])),
        "nhs.example: removed\n"
    );
    assert_eq!(
        stdout(&cli(dir.path(), &["allowlist", "list"])),
        "trust.example\n"
    );
    let bad = cli(dir.path(), &["allowlist", "add", "not a domain"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a domain name"));
}

#[test]
fn import_loads_holders_emails_and_cards_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    stdout(&cli(dir.path(), &["allowlist", "add", "trust.example"]));
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model\n\
         1234 5678 9012,Jane Doe,Trust,Jane.Doe@trust.example;jd@other.example,2D6BDDB8AD096C2D,active,2028-03-31,unlock-cr/1\n\
         123456789012,,,,AC4D0ED99F033E05,cancelled,2027-01-01,unlock-cr/1\n\
         210987654321,\"Smith, John\",Trust,john@trust.example,,,,\n",
    )
    .unwrap();
    assert_eq!(
        stdout(&cli(dir.path(), &["import", good.to_str().unwrap()])),
        "imported 3 rows: 3 emails, 2 cards; 1 emails are on domains that are not allow-listed\n"
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model\n\
         999999999999,New Person,Trust,new@trust.example,,,,\n\
         12345,Short Id,Trust,x@trust.example,,,,\n\
         888888888888,Thief,Trust,jane.doe@trust.example,,,,\n\
         777777777777,Bad Card,Trust,,zz,active,2028-01-01,unlock-cr/1\n\
         666666666666,Bad Date,Trust,,0000000000000001,active,31/03/2028,unlock-cr/1\n",
    )
    .unwrap();
    let output = cli(dir.path(), &["import", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert!(
        stderr.contains("line 3: holder_id: A user id must be 12 digits"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 4: email jane.doe@trust.example already belongs to another holder"),
        "{stderr}"
    );
    assert!(stderr.contains("line 5: card_serial"), "{stderr}");
    assert!(
        stderr.contains("line 6: cert_expires must be a date"),
        "{stderr}"
    );
    assert!(!stderr.contains("line 2"), "{stderr}");

    // The good file's rows are there; none of the bad file's are.
    let db = dir.path().join("cli.db");
    let holders = Command::new("/usr/bin/python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(sorted(r[0] for r in c.execute('select id from holders')))"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&holders.stdout).trim(),
        "['123456789012', '210987654321']"
    );
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        stdout(&cli(dir.path(), &["migrate"])),
        "database is up to date\n"
    );
    assert!(dir.path().join("cli.db").exists());
}

#[test]
fn a_bad_configuration_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .args(["serve"])
        .current_dir(dir.path())
        .env(
            "UNLOCK_MAIL__SMTP_URL",
            "smtp://user:hunter2@relay.example.org:25",
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must use TLS"), "{stderr}");
    assert!(!stderr.contains("hunter2"));
}

/// The real binary, with debug logging, through a whole journey: no code, token or key in
/// its logs.
#[tokio::test]
async fn no_code_or_secret_appears_in_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path());
    let port = free_port();
    stdout(&cli(dir.path(), &["allowlist", "add", DOMAIN]));
    let csv = dir.path().join("holders.csv");
    std::fs::File::create(&csv)
        .and_then(|mut f| {
            writeln!(
                f,
                "holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model"
            )?;
            writeln!(
                f,
                "{HOLDER},Jane Doe,Trust,{EMAIL},2d6bddb8ad096c2d,active,2099-01-01,unlock-cr/1"
            )
        })
        .unwrap();
    stdout(&cli(dir.path(), &["import", csv.to_str().unwrap()]));

    let log_path = dir.path().join("server.log");
    let server = Command::new(BINARY)
        .args(["serve"])
        .current_dir(dir.path())
        .env("UNLOCK_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "UNLOCK_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("cli.db").display()),
        )
        .env("UNLOCK_DATA_DIR", dir.path())
        .env("UNLOCK_SECRET_KEY", SECRET_KEY)
        .env("UNLOCK_MAIL__SMTP_URL", smtp.url())
        .env("UNLOCK_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(server);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let started = client
        .post(format!("{base}/api/journeys"))
        .json(&serde_json::json!({"email": EMAIL}))
        .send()
        .await
        .unwrap();
    let cookie = started
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("unlock_journey=")
        .to_owned();
    let code = code_in(&smtp.wait_for(EMAIL, 1).await);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    client
        .post(format!("{base}/api/journey/code"))
        .json(&serde_json::json!({"code": wrong}))
        .send()
        .await
        .unwrap();
    let verified = client
        .post(format!("{base}/api/journey/code"))
        .json(&serde_json::json!({"code": code}))
        .send()
        .await
        .unwrap();
    let verified_status = verified.status();

    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    let exit = server.0.wait().unwrap();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(ready, "server never became ready: {logs}");
    assert_eq!(verified_status, StatusCode::OK);
    assert!(
        exit.success(),
        "server did not stop cleanly on SIGTERM: {logs}"
    );
    assert!(
        logs.contains("email sent"),
        "expected debug logs, got: {logs}"
    );
    assert!(logs.contains("shutting down"));
    // Timestamps carry 6-digit fractions of a second: look everywhere but there.
    let without_timestamps: String = logs
        .lines()
        .map(|line| {
            let mut event: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            event.as_object_mut().map(|o| o.remove("timestamp"));
            event.to_string()
        })
        .collect();
    for secret in [code.as_str(), wrong, token.as_str(), SECRET_KEY] {
        assert!(
            !without_timestamps.contains(secret),
            "{secret} appeared in the logs"
        );
    }
}

/// Kills the server if the test panics before stopping it, so no process outlives the test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
