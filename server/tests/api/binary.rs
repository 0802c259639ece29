//! The real `unlock-server` binary: its command line, and what it writes to its logs.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

const BINARY: &str = env!("CARGO_BIN_EXE_unlock-server");

/// The first vector of `shared/test-vectors/unlock-cr-1.json` (master key [`MASTER_KEY`]).
const VECTOR_CHALLENGE: &str = "e2f9c4a79e98c221a0561065e0626dfa";
const VECTOR_CARD_KEY: &str = "f4764e763f3777ea6043a50dff0cfb65";
const VECTOR_CRYPTOGRAM: &str = "d206290d1935d00cc7a1d6d9754a930f";
const VECTOR_RECEIPT: &str = "05c81625313a68973efa8058c4eace12";

pub fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    cli_with(dir, args, &[])
}

/// [`cli`] with more settings (environment variables).
pub fn cli_with(dir: &Path, args: &[&str], settings: &[(&str, &str)]) -> std::process::Output {
    Command::new(BINARY)
        .args(args)
        .current_dir(dir)
        .env("UNLOCK_DATABASE_URL", cli_database(dir))
        .env("UNLOCK_DATA_DIR", dir)
        .env("UNLOCK_SECRET_KEY", SECRET_KEY)
        .env("RUST_LOG", "warn")
        .envs(settings.iter().copied())
        .output()
        .expect("run unlock-server")
}

pub fn stdout(output: &std::process::Output) -> String {
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
    let holders = query_column(
        &cli_database(dir.path()),
        "SELECT id FROM holders ORDER BY id",
    );
    assert_eq!(holders, ["123456789012", "210987654321"]);
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        stdout(&cli(dir.path(), &["migrate"])),
        "database is up to date\n"
    );
    let applied = query_column(
        &cli_database(dir.path()),
        "SELECT description FROM _sqlx_migrations ORDER BY version",
    );
    assert_eq!(
        applied,
        [
            "initial",
            "card unlock",
            "staff",
            "piv",
            "key versions",
            "four eyes",
            "audit floods and archives",
            "mobile numbers",
            "ra unlock codes",
            "lean outbox indexes"
        ]
    );
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

    // A time zone the tz database does not know, and a DKIM key file that holds no key.
    let output = Command::new(BINARY)
        .args(["serve"])
        .current_dir(dir.path())
        .env("UNLOCK_TIME_ZONE", "Europe/Lundon")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("time_zone \"Europe/Lundon\" is not a time zone"),
        "{stderr}"
    );
    let key = dir.path().join("dkim.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let output = Command::new(BINARY)
        .args(["serve"])
        .current_dir(dir.path())
        .env("UNLOCK_LISTEN", "127.0.0.1:0")
        .env("UNLOCK_METRICS_LISTEN", "")
        .env("UNLOCK_MAIL__DKIM__SELECTOR", "unlock2026")
        .env("UNLOCK_MAIL__DKIM__PRIVATE_KEY_FILE", &key)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("dkim.pem") && stderr.contains("neither an RSA nor an Ed25519"),
        "{stderr}"
    );
    assert!(!stderr.contains("c2VjcmV0"), "{stderr}");
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
    let mut server = serve_with_debug_logs(dir.path(), port, &smtp.url(), &log_path);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let ready = wait_until_ready(&client, &base).await;

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
    // The card steps with the first independent vector: the card 2d6bddb8ad096c2d.
    let mut stages = Vec::new();
    for (path, body) in [
        (
            "/api/journey/card",
            serde_json::json!({"serial": "2d6bddb8ad096c2d", "profile": "unlock-cr/1"}),
        ),
        (RELEASE, cryptogram_request(VECTOR_CHALLENGE)),
        (
            "/api/journey/card/receipt",
            serde_json::json!({"profile": PROFILE, "receipt": VECTOR_RECEIPT}),
        ),
    ] {
        let reply: serde_json::Value = client
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stages.push(reply);
    }

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
    let without_timestamps = without_timestamps(&logs);
    assert_eq!(stages[0]["stage"], "card_accepted", "{stages:?}");
    assert_eq!(stages[1]["cryptogram"], VECTOR_CRYPTOGRAM, "{stages:?}");
    assert_eq!(stages[2]["stage"], "unlocked", "{stages:?}");
    for secret in [
        code.as_str(),
        wrong,
        token.as_str(),
        SECRET_KEY,
        MASTER_KEY,
        VECTOR_CARD_KEY,
        VECTOR_CHALLENGE,
        VECTOR_CRYPTOGRAM,
        VECTOR_RECEIPT,
    ] {
        assert!(
            !without_timestamps.contains(secret),
            "{secret} appeared in the logs"
        );
    }
}

#[test]
fn keys_generate_writes_a_private_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("card-master.key");
    let out = path.to_str().unwrap();
    assert_eq!(
        stdout(&cli(dir.path(), &["keys", "generate", "--out", out])),
        format!("wrote a new card master key to {out}\n")
    );
    let key = std::fs::read_to_string(&path).unwrap();
    assert_eq!(key.len(), 33, "{key:?}");
    assert!(key.ends_with('\n') && key.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let again = cli(dir.path(), &["keys", "generate", "--out", out]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), key);

    // A second key is a different key.
    let other = dir.path().join("other.key");
    stdout(&cli(
        dir.path(),
        &["keys", "generate", "--out", other.to_str().unwrap()],
    ));
    assert_ne!(std::fs::read_to_string(&other).unwrap(), key);

    let help = stdout(&cli(dir.path(), &["keys", "generate", "--help"]));
    assert!(
        help.contains("0600") && help.contains("never overwritten"),
        "{help}"
    );
}

#[test]
fn a_card_master_key_that_cannot_be_read_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("UNLOCK_CARD_MASTER_KEY_FILE", "missing.key"),
        ("UNLOCK_CARD_MASTER_KEY", "35a47d45d75853e0"),
    ] {
        let output = Command::new(BINARY)
            .args(["serve"])
            .current_dir(dir.path())
            .env("UNLOCK_LISTEN", "127.0.0.1:0")
            .env("UNLOCK_DATA_DIR", dir.path())
            .env(name, value)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("card master key"), "{stderr}");
        assert!(!stderr.contains("35a47d45d75853e0"), "{stderr}");
    }
}

/// `serve --demo` without a key creates `./var/card-master.key` (for the demo virtual card),
/// and the demo holder's card unlocks with it; a second start reuses the key.
#[tokio::test]
async fn demo_mode_creates_a_card_master_key_and_the_demo_card_unlocks_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("var").join("card-master.key");
    let mut first_key = None;
    for run in 0..2 {
        let port = free_port();
        let server = Command::new(BINARY)
            .args(["serve", "--demo"])
            .current_dir(dir.path())
            .env("UNLOCK_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
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
            if client.get(format!("{base}/readyz")).send().await.is_ok() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "the demo server never became ready");
        let key = std::fs::read_to_string(&key_path).unwrap();
        if run == 0 {
            let unlocked = demo_journey(&client, &base, dir.path(), &key).await;
            assert_eq!(unlocked["stage"], "unlocked", "{unlocked}");
        } else {
            // The card steps are on: no journey here, but not "unavailable".
            let reply = client
                .post(format!("{base}/api/journey/card"))
                .json(&serde_json::json!({"serial": DEMO_CARD, "profile": "unlock-cr/1"}))
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), StatusCode::NOT_FOUND);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &server.0.id().to_string()])
            .status();
        server.0.wait().unwrap();

        assert_eq!(key.trim_end().len(), 32);
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        match &first_key {
            None => first_key = Some(key),
            Some(first) => assert_eq!(first, &key, "the demo key was replaced"),
        }
    }
}

const DEMO_CARD: &str = "2d6bddb8ad096c2d";

/// The demo holder's whole journey, the code read from the `.eml` file the demo writes, the
/// card's receipt computed as the virtual card would with the demo key. Returns the last answer.
async fn demo_journey(
    client: &reqwest::Client,
    base: &str,
    dir: &Path,
    key_hex: &str,
) -> serde_json::Value {
    use unlock_protocol::card_profile::{card_key, receipt};
    let post = |path: &str, body: serde_json::Value| {
        let request = client.post(format!("{base}{path}")).json(&body);
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let email = unlock_server::demo::DEMO_EMAIL;
    post("/api/journeys", serde_json::json!({ "email": email })).await;
    let mail_dir = dir.join("var").join("mail");
    let mut code = None;
    for _ in 0..400 {
        let message = std::fs::read_dir(&mail_dir)
            .ok()
            .and_then(|mut files| files.find_map(Result::ok))
            .and_then(|file| std::fs::read(file.path()).ok());
        // The file may still be being written: use it once its code line is there.
        let complete = message.as_deref().is_some_and(|raw| {
            mail_parser::MessageParser::default()
                .parse(raw)
                .and_then(|m| m.body_text(0).map(|t| t.contains("Your security code is ")))
                .unwrap_or(false)
        });
        if let (true, Some(raw)) = (complete, message) {
            code = Some(code_in(&raw));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let code = code.expect("the demo code email was never written");
    let verified = post("/api/journey/code", serde_json::json!({ "code": code })).await;
    assert_eq!(verified["stage"], "verified", "{verified}");
    let accepted = post(
        "/api/journey/card",
        serde_json::json!({"serial": DEMO_CARD, "profile": "unlock-cr/1"}),
    )
    .await;
    assert_eq!(accepted["stage"], "card_accepted", "{accepted}");
    let challenge = "00112233445566778899aabbccddeeff";
    let released = post(RELEASE, cryptogram_request(challenge)).await;
    assert!(released["cryptogram"].is_string(), "{released}");
    let master: [u8; 16] = hex::decode(key_hex.trim()).unwrap().try_into().unwrap();
    let serial: [u8; 8] = hex::decode(DEMO_CARD).unwrap().try_into().unwrap();
    let challenge: [u8; 16] = hex::decode(challenge).unwrap().try_into().unwrap();
    let proof = hex::encode(receipt(&card_key(&master, &serial), &challenge));
    post(
        "/api/journey/card/receipt",
        serde_json::json!({ "profile": "unlock-cr/1", "receipt": proof }),
    )
    .await
}

/// The real binary serving on `port` with the database and settings [`cli`] uses, mail
/// through `smtp_url`, and JSON logs at debug level into `log`.
pub fn serve_with_debug_logs(dir: &Path, port: u16, smtp_url: &str, log: &Path) -> KillOnDrop {
    serve_with_debug_logs_and(dir, port, smtp_url, log, &[])
}

/// [`serve_with_debug_logs`], with more settings as `UNLOCK_*` variables.
pub fn serve_with_debug_logs_and(
    dir: &Path,
    port: u16,
    smtp_url: &str,
    log: &Path,
    settings: &[(&str, &str)],
) -> KillOnDrop {
    let mut server = Command::new(BINARY);
    server
        .args(["serve"])
        .current_dir(dir)
        .env("UNLOCK_LISTEN", format!("127.0.0.1:{port}"))
        .env("UNLOCK_DATABASE_URL", cli_database(dir))
        .env("UNLOCK_DATA_DIR", dir)
        .env("UNLOCK_SECRET_KEY", SECRET_KEY)
        .env("UNLOCK_CARD_MASTER_KEY", MASTER_KEY)
        .env("UNLOCK_MAIL__SMTP_URL", smtp_url)
        .env("UNLOCK_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug");
    // A setting given here wins; an empty one is left unset.
    for (name, value) in settings {
        if value.is_empty() {
            server.env_remove(name);
        } else {
            server.env(name, value);
        }
    }
    let server = server
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    KillOnDrop(server)
}

/// Polls `/readyz` for up to 10 s.
pub async fn wait_until_ready(client: &reqwest::Client, base: &str) -> bool {
    for _ in 0..200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The log's JSON lines without their timestamps (whose 6-digit fractions of a second
/// would look like codes).
pub fn without_timestamps(logs: &str) -> String {
    logs.lines()
        .map(|line| {
            let mut event: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            event.as_object_mut().map(|o| o.remove("timestamp"));
            event.to_string()
        })
        .collect()
}

/// Kills the server if the test panics before stopping it, so no process outlives the test.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
