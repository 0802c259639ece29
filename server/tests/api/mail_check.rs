//! Emails a mail system trusts: every kind of message the service sends, delivered by the
//! real SMTP server or written as `.eml` files, is read back by an independent reader —
//! `check_mail.py`, Python's `email` package and dkimpy (pinned in a virtualenv that
//! `cargo xtask test` installs) — which checks its Message-ID is on the sending domain and
//! unique, `Auto-Submitted: auto-generated`, its Date, and its DKIM signature against the
//! test's public key (given as the TXT record; no DNS is asked).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use reqwest::StatusCode;
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use unlock_protocol::staff::Role;
use unlock_server::config::{Config, DkimConfig};

use crate::helpers::*;

const SECOND: &str = "jane.d@trust.example";
const CODE: &str = "Your smartcard unlock security code";
const STARTED: &str = "An unlock of your smartcard was started";
const UNLOCKED: &str = "Your smartcard was unlocked";
const ADDED: &str = "An email address was added to your smartcard profile";
const REMOVED: &str = "An email address was removed from your smartcard profile";
/// 2027-07-05T13:05:00Z, in British Summer Time.
const JULY: i64 = 1_814_792_700_000;

/// The tests' DKIM keys, made once per run, and their DNS TXT records.
struct DkimKeys {
    _dir: TempDir,
    ed25519_file: PathBuf,
    ed25519_record: String,
    rsa_file: PathBuf,
    rsa_record: String,
}

fn dkim_keys() -> &'static DkimKeys {
    static KEYS: OnceLock<DkimKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a folder for the DKIM keys");
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);

        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        let ed25519 = ed25519_dalek::SigningKey::from_bytes(&seed);
        let ed25519_file = dir.path().join("ed25519.pem");
        let pem = ed25519.to_pkcs8_pem(LineEnding::LF).unwrap();
        std::fs::write(&ed25519_file, pem.as_bytes()).unwrap();
        let ed25519_record = format!(
            "v=DKIM1; k=ed25519; p={}",
            b64(ed25519.verifying_key().as_bytes())
        );

        let rsa = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let rsa_file = dir.path().join("rsa.pem");
        let pem = rsa.to_pkcs8_pem(LineEnding::LF).unwrap();
        std::fs::write(&rsa_file, pem.as_bytes()).unwrap();
        let spki = rsa.to_public_key().to_public_key_der().unwrap();
        let rsa_record = format!("v=DKIM1; k=rsa; p={}", b64(spki.as_bytes()));

        DkimKeys {
            _dir: dir,
            ed25519_file,
            ed25519_record,
            rsa_file,
            rsa_record,
        }
    })
}

/// Sent from the test domain, signed with the Ed25519 key for it.
fn signed_with_ed25519(config: &mut Config) {
    config.mail.from = format!("Smartcard unlock <no-reply@{DOMAIN}>");
    config.mail.dkim = Some(DkimConfig {
        selector: "unlock2026".into(),
        domain: None,
        private_key_file: dkim_keys().ed25519_file.clone(),
    });
}

/// Sent from a subdomain, signed with the RSA key for the parent domain.
fn signed_with_rsa_for_the_parent(config: &mut Config) {
    config.mail.from = format!("Smartcard unlock <no-reply@mail.{DOMAIN}>");
    config.mail.dkim = Some(DkimConfig {
        selector: "unlock2027.rsa".into(),
        domain: Some(DOMAIN.into()),
        private_key_file: dkim_keys().rsa_file.clone(),
    });
}

/// How the checker is told about DKIM.
enum Dkim<'a> {
    Verify {
        selector: &'a str,
        domain: &'a str,
        record: &'a str,
    },
    None,
}

/// Runs `check_mail.py` over `messages` and returns what it read of each; fails the test on
/// anything it refused.
fn check_mail(messages: &[Vec<u8>], sending_domain: &str, dkim: Dkim<'_>) -> Vec<Value> {
    run_check_mail(messages, sending_domain, dkim)
        .unwrap_or_else(|refusal| panic!("check_mail.py refused the messages:\n{refusal}"))
}

/// What `check_mail.py` read of each message, or what it refused.
fn run_check_mail(
    messages: &[Vec<u8>],
    sending_domain: &str,
    dkim: Dkim<'_>,
) -> Result<Vec<Value>, String> {
    let python = std::env::var_os("MAIL_CHECK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/mail-check/bin/python")
        });
    assert!(
        python.exists(),
        "no Python with dkimpy at {} (MAIL_CHECK_PYTHON): `cargo xtask mail-tools` \
         installs it, and `cargo xtask test` does so before the tests",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = messages
        .iter()
        .enumerate()
        .map(|(n, raw)| {
            let file = dir.path().join(format!("{n}.eml"));
            std::fs::write(&file, raw).unwrap();
            file
        })
        .collect();
    let mut command = Command::new(&python);
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/check_mail.py"))
        .args(["--sending-domain", sending_domain]);
    match dkim {
        Dkim::Verify {
            selector,
            domain,
            record,
        } => command.args(["--dkim", selector, domain, record]),
        Dkim::None => command.arg("--no-dkim"),
    };
    let output = command.args(&files).output().expect("run check_mail.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let read: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(read.len(), messages.len(), "{stdout}");
    Ok(read)
}

/// The plain-text part of a message, decoded.
fn text_of(raw: &[u8]) -> String {
    let message = mail_parser::MessageParser::default().parse(raw).unwrap();
    message.body_text(0).unwrap_or_default().into_owned()
}

/// The `Message-ID` a message's outbox row gives it: its sealed body's hash, on `domain`.
fn expected_id(sealed: &[u8], domain: &str) -> String {
    format!("<{}@{domain}>", hex::encode(&Sha256::digest(sealed)[..16]))
}

fn header(raw: &[u8], name: &str) -> String {
    let message = mail_parser::MessageParser::default().parse(raw).unwrap();
    message
        .header_raw(name)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn every_kind_of_email_reads_as_trustworthy_and_its_dkim_signature_verifies() {
    let app = spawn_app_with(signed_with_ed25519).await;

    // Every kind of message the service sends: an address added and removed (told to
    // both), a security code, an unlock started and finished (told to every address).
    let rita = app
        .signed_in_staff("rita", Role::Ra, Some("999988887777"))
        .await;
    let added = rita
        .post(
            &format!("/api/staff/holders/{HOLDER}/emails"),
            json!({"email": SECOND}),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.json());
    app.verified_journey_for(EMAIL).await;
    app.unlock_card(CARD).await;
    let removed = rita
        .delete(&format!("/api/staff/holders/{HOLDER}/emails/{SECOND}"))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.json());
    let expected = [
        (EMAIL, ADDED),
        (SECOND, ADDED),
        (EMAIL, CODE),
        (EMAIL, STARTED),
        (SECOND, STARTED),
        (EMAIL, UNLOCKED),
        (SECOND, UNLOCKED),
        (EMAIL, REMOVED),
        (SECOND, REMOVED),
    ];
    for (to, subject) in expected {
        app.smtp().wait_for_subject(to, subject).await;
    }
    let messages = app.smtp().messages();
    assert_eq!(messages.len(), expected.len());

    let keys = dkim_keys();
    let read = check_mail(
        &messages,
        DOMAIN,
        Dkim::Verify {
            selector: "unlock2026",
            domain: DOMAIN,
            record: &keys.ed25519_record,
        },
    );
    for message in &read {
        assert_eq!(message["dkim"], true, "{message}");
        // 28 November: Greenwich Mean Time.
        let date = message["date"].as_str().unwrap();
        assert!(
            date.starts_with("2026-11-28T09:") && date.ends_with("+00:00"),
            "{message}"
        );
    }
    let code = app.smtp().wait_for_subject(EMAIL, CODE).await;
    let text = text_of(&code);
    assert!(text.contains("until 09:15 GMT."), "{text}");

    // Under another key the signature does not verify: the check can fail.
    let wrong = run_check_mail(
        &messages[..1],
        DOMAIN,
        Dkim::Verify {
            selector: "unlock2026",
            domain: DOMAIN,
            record: &keys.rsa_record,
        },
    )
    .expect_err("a signature checked against the wrong key");
    assert!(wrong.contains("does not verify"), "{wrong}");

    // The staff screens are told the same zone, with its summer and winter names.
    let me = rita.get("/api/staff/me").await.json();
    assert_eq!(me["time_zone"]["name"], "Europe/London");
    let names: Vec<&str> = me["time_zone"]["periods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|period| period["abbreviation"].as_str())
        .collect();
    assert!(names.contains(&"GMT") && names.contains(&"BST"), "{me}");
}

#[tokio::test]
async fn an_eml_file_in_summer_says_bst_and_verifies_with_an_rsa_key_for_the_parent_domain() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_on(dir, None, signed_with_rsa_for_the_parent).await;
    app.clock
        .advance(Duration::from_millis((JULY - START_OF_TEST) as u64));
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
    let folder = app.config.mail_dir();
    let eml = || -> Vec<Vec<u8>> {
        std::fs::read_dir(&folder)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                    .filter_map(|path| std::fs::read(path).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while eml().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no .eml file was written"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let messages = eml();
    assert_eq!(messages.len(), 1);

    let read = check_mail(
        &messages,
        &format!("mail.{DOMAIN}"),
        Dkim::Verify {
            selector: "unlock2027.rsa",
            domain: DOMAIN,
            record: &dkim_keys().rsa_record,
        },
    );
    assert_eq!(read[0]["dkim"], true);
    // 5 July: British Summer Time, in the Date header and in the words.
    assert_eq!(read[0]["date"], "2027-07-05T14:05:00+01:00");
    let text = text_of(&messages[0]);
    assert!(text.contains("until 14:20 BST."), "{text}");
}

#[tokio::test]
async fn a_retried_email_keeps_the_message_id_of_its_outbox_row() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_on(dir, Some(format!("smtp://127.0.0.1:{port}")), |_| {}).await;
    assert_eq!(app.start(EMAIL).await.status, StatusCode::OK);
    // Nothing listens yet: the first attempt fails and the message waits for a retry.
    let attempts = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox_attempts")
            .fetch_one(app.db())
            .await
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while attempts().await == 0 {
        assert!(std::time::Instant::now() < deadline, "no attempt was made");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT sealed_message FROM outbox")
        .fetch_one(app.db())
        .await
        .unwrap();

    let smtp = SmtpSink::start_on(app.dir.path(), port);
    // The retry falls due (the server's clock moves only when told).
    app.clock.advance(Duration::from_secs(60));
    let raw = smtp.wait_for(EMAIL, 1).await;
    // The delivery is recorded as the second attempt once the relay has answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while attempts().await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the delivery was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The default sender, no-reply@unlock.invalid; no DKIM configured, so none is added.
    assert_eq!(
        header(&raw, "Message-ID"),
        expected_id(&sealed, "unlock.invalid")
    );
    assert_eq!(header(&raw, "Auto-Submitted"), "auto-generated");
    check_mail(&[raw], "unlock.invalid", Dkim::None);
}
