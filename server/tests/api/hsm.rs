//! Key custody on a real PKCS#11 token: SoftHSM2 with a private token store per test, the
//! real binary (SoftHSM2 reads its store's location from the environment, so the server runs
//! as its own process), and OpenSC's `pkcs11-tool` as an independent client of the token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use unlock_protocol::piv::{self, Purpose};
use unlock_testkit::piv::{Period, PivKey, TestCa, TestPivCard, new_guid};

use crate::binary::{
    KillOnDrop, cli_with, serve_with_debug_logs_and, stdout, wait_until_ready, without_timestamps,
};
use crate::helpers::*;

/// The first vector of `shared/test-vectors/unlock-cr-1.json` (master key [`MASTER_KEY`]).
const VECTOR_SERIAL: &str = "2d6bddb8ad096c2d";
const VECTOR_CHALLENGE: &str = "e2f9c4a79e98c221a0561065e0626dfa";
const VECTOR_CARD_KEY: &str = "f4764e763f3777ea6043a50dff0cfb65";
const VECTOR_CRYPTOGRAM: &str = "d206290d1935d00cc7a1d6d9754a930f";
const VECTOR_RECEIPT: &str = "05c81625313a68973efa8058c4eace12";

/// The token's user PIN: distinctive, so the log check can't miss it.
const USER_PIN: &str = "hsm-pin-73914";
const SO_PIN: &str = "so-pin-20611";
const TOKEN: &str = "unlock";
const HEADER: &str =
    "holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model,card_puk";

/// A private SoftHSM2 token store with one token, `unlock`.
struct SoftHsm {
    conf: PathBuf,
    tokens: PathBuf,
    module: String,
    pin_file: PathBuf,
}

impl SoftHsm {
    fn new(dir: &Path) -> Self {
        let tokens = dir.join("softhsm/tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm/softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let module = [
            "/usr/lib/softhsm/libsofthsm2.so",
            "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        ]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .expect("SoftHSM2 is installed (apt-get install softhsm2)")
        .to_owned();
        let made = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", TOKEN])
            .args(["--so-pin", SO_PIN, "--pin", USER_PIN])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let pin_file = dir.join("softhsm/pin");
        std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
        std::fs::set_permissions(
            &pin_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        Self {
            conf,
            tokens,
            module,
            pin_file,
        }
    }

    /// The settings that put new keys on this token.
    fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SOFTHSM2_CONF", self.conf.display().to_string()),
            ("UNLOCK_KEYS__CUSTODY", "pkcs11".into()),
            ("UNLOCK_KEYS__PKCS11_MODULE", self.module.clone()),
            ("UNLOCK_KEYS__PKCS11_TOKEN_LABEL", TOKEN.into()),
            (
                "UNLOCK_KEYS__PKCS11_PIN_FILE",
                self.pin_file.display().to_string(),
            ),
        ]
    }

    /// OpenSC's `pkcs11-tool` against this token, logged in.
    fn pkcs11_tool(&self, args: &[&str]) -> std::process::Output {
        Command::new("pkcs11-tool")
            .args(["--module", &self.module, "--token-label", TOKEN, "--login"])
            .args(["--pin", USER_PIN])
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .expect("run pkcs11-tool (apt-get install opensc)")
    }
}

fn borrowed<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn write_csv(dir: &Path, name: &str, rows: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{HEADER}\n{}\n", rows.join("\n"))).unwrap();
    path
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> (u16, Value) {
    let response = client
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// A verified journey for `email` in a fresh browser.
async fn verified(base: &str, smtp: &SmtpSink, email: &str, nth_code: usize) -> reqwest::Client {
    let client = cookie_client();
    post(&client, base, "/api/journeys", json!({"email": email})).await;
    let code = code_in(&smtp.wait_for(email, nth_code).await);
    let (_, verified) = post(&client, base, "/api/journey/code", json!({"code": code})).await;
    assert_eq!(verified["stage"], "verified", "{verified}");
    client
}

fn stop(server: &mut KillOnDrop) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    server.0.wait().unwrap();
}

async fn readyz(client: &reqwest::Client, base: &str) -> Value {
    client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unlock_cr_card_unlocks_through_the_token_which_never_gives_its_key_out() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path());
    let settings = hsm.settings();
    let mut with_key = borrowed(&settings);
    with_key.push(("UNLOCK_CARD_MASTER_KEY", MASTER_KEY));

    // The configured file key moves onto the token as version 1.
    let imported = stdout(&cli_with(
        dir.path(),
        &["keys", "import", "--purpose", "card-master"],
        &with_key,
    ));
    assert!(imported.contains("unlock-card-master-v1"), "{imported}");
    assert!(!imported.contains(MASTER_KEY));
    let again = cli_with(
        dir.path(),
        &["keys", "import", "--purpose", "card-master"],
        &with_key,
    );
    assert!(!again.status.success(), "a second import must be refused");

    // An independent client can't read the key out: it is sensitive and not extractable.
    let listed = hsm.pkcs11_tool(&["--list-objects", "--type", "secrkey"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("unlock-card-master-v1"), "{listed}");
    assert!(listed.contains("sensitive"), "{listed}");
    let read = hsm.pkcs11_tool(&[
        "--read-object",
        "--type",
        "secrkey",
        "--label",
        "unlock-card-master-v1",
    ]);
    assert!(!read.status.success(), "CKA_VALUE was given out");
    assert!(!String::from_utf8_lossy(&read.stdout).contains(MASTER_KEY));

    stdout(&cli_with(dir.path(), &["allowlist", "add", DOMAIN], &[]));
    let csv = write_csv(
        dir.path(),
        "holders.csv",
        &[format!(
            "{HOLDER},Jane Doe,Trust,{EMAIL},{VECTOR_SERIAL},active,2099-01-01,unlock-cr/1,"
        )],
    );
    stdout(&cli_with(
        dir.path(),
        &["import", csv.to_str().unwrap()],
        &borrowed(&settings),
    ));

    // The server has no master key but the token's.
    let smtp = SmtpSink::start(dir.path());
    let port = free_port();
    let log_path = dir.path().join("server.log");
    let mut serve = borrowed(&settings);
    serve.push(("UNLOCK_CARD_MASTER_KEY", ""));
    let mut server = serve_with_debug_logs_and(dir.path(), port, &smtp.url(), &log_path, &serve);
    let base = format!("http://127.0.0.1:{port}");
    let client = cookie_client();
    assert!(wait_until_ready(&client, &base).await);
    assert_eq!(readyz(&client, &base).await["key_token"], "ok");

    let client = verified(&base, &smtp, EMAIL, 1).await;
    let (_, accepted) = post(
        &client,
        &base,
        "/api/journey/card",
        json!({"profile": "unlock-cr/1", "serial": VECTOR_SERIAL}),
    )
    .await;
    assert_eq!(accepted["stage"], "card_accepted", "{accepted}");
    // The independent vector, reproduced with the key on the token.
    let (status, released) = post(
        &client,
        &base,
        RELEASE,
        cryptogram_request(VECTOR_CHALLENGE),
    )
    .await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(released["cryptogram"], VECTOR_CRYPTOGRAM, "{released}");
    let (_, unlocked) = post(
        &client,
        &base,
        "/api/journey/card/receipt",
        json!({"profile": "unlock-cr/1", "receipt": VECTOR_RECEIPT}),
    )
    .await;
    assert_eq!(unlocked["stage"], "unlocked", "{unlocked}");

    stop(&mut server);
    let logs = without_timestamps(&std::fs::read_to_string(&log_path).unwrap());
    assert!(logs.contains("\"level\":\"DEBUG\""), "expected debug logs");
    for secret in [USER_PIN, MASTER_KEY, VECTOR_CARD_KEY, VECTOR_CRYPTOGRAM] {
        assert!(!logs.contains(secret), "{secret} appeared in the logs");
    }
    let audit = audit_rows(dir.path()).await;
    assert!(
        audit
            .iter()
            .any(|row| row.starts_with("keys.import card_master v1")),
        "{audit:?}"
    );
    assert!(
        audit.iter().any(|row| row.contains("card master key v1")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn after_a_rotation_cards_on_the_old_and_the_new_escrow_key_both_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path());
    let settings = hsm.settings();
    let cli = |args: &[&str]| stdout(&cli_with(dir.path(), args, &borrowed(&settings)));
    let ca = TestCa::new("Test PIV CA").unwrap();
    let anchors = dir.path().join("piv-anchors.pem");
    std::fs::write(&anchors, ca.cert_pem()).unwrap();
    cli(&["allowlist", "add", DOMAIN]);

    // Version 1 made on the token; a card issued under it.
    let made = cli(&["keys", "generate", "--purpose", "puk-escrow"]);
    assert!(made.contains("unlock-puk-escrow-v1"), "{made}");
    // Made on the token: sensitive, never extractable, and refused to an independent client.
    let listed = hsm.pkcs11_tool(&["--list-objects", "--type", "secrkey"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("never extractable"), "{listed}");
    let read = hsm.pkcs11_tool(&[
        "--read-object",
        "--type",
        "secrkey",
        "--label",
        "unlock-puk-escrow-v1",
    ]);
    assert!(!read.status.success(), "CKA_VALUE was given out");
    let (old_guid, new_guid_) = (new_guid(), new_guid());
    let (old_card, new_card) = (
        TestPivCard::issue(&ca, &old_guid, Period::Current),
        TestPivCard::issue(&ca, &new_guid_, Period::Current),
    );
    let first = write_csv(
        dir.path(),
        "first.csv",
        &[format!(
            "{HOLDER},Jane Doe,Trust,{EMAIL},{old_guid},active,2099-01-01,piv/1,40719263"
        )],
    );
    cli(&["import", first.to_str().unwrap()]);

    // Version 2 made current; the next card is issued under it, the first keeps version 1.
    let rotated = cli(&["keys", "rotate", "--purpose", "puk-escrow"]);
    assert!(rotated.contains("unlock-puk-escrow-v2"), "{rotated}");
    let second_email = "john.roe@trust.example";
    let second = write_csv(
        dir.path(),
        "second.csv",
        &[format!(
            "222222222222,John Roe,Trust,{second_email},{new_guid_},active,2099-01-01,piv/1,52830174"
        )],
    );
    cli(&["import", second.to_str().unwrap()]);
    let listed = cli(&["keys", "list"]);
    let line = |version: &str| {
        listed
            .lines()
            .find(|l| l.starts_with("puk_escrow") && l.split_whitespace().nth(1) == Some(version))
            .unwrap_or_else(|| panic!("no version {version} in {listed}"))
            .to_owned()
    };
    assert!(
        line("1").contains("pkcs11") && line("1").split_whitespace().nth(4) == Some("1"),
        "{listed}"
    );
    assert!(
        line("2").contains("pkcs11") && line("2").ends_with("yes"),
        "{listed}"
    );
    assert!(!listed.contains(USER_PIN));

    let smtp = SmtpSink::start(dir.path());
    let port = free_port();
    let log_path = dir.path().join("server.log");
    let mut serve = borrowed(&settings);
    let anchors_setting = anchors.display().to_string();
    serve.push(("UNLOCK_CARDS__PIV_TRUST_ANCHORS_FILE", &anchors_setting));
    let mut server = serve_with_debug_logs_and(dir.path(), port, &smtp.url(), &log_path, &serve);
    let base = format!("http://127.0.0.1:{port}");
    assert!(wait_until_ready(&cookie_client(), &base).await);

    for (email, guid, card, puk) in [
        (EMAIL, &old_guid, &old_card, "40719263"),
        (second_email, &new_guid_, &new_card, "52830174"),
    ] {
        let client = verified(&base, &smtp, email, 1).await;
        let (_, released) = piv_release(&client, &base, guid, card).await;
        assert_eq!(released["puks"], json!([puk]), "{released}");
        let receipt_nonce: [u8; 32] = hex::decode(released["receipt_nonce"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let receipt = hex::encode(card.sign(
            PivKey::PivAuthentication,
            &piv::message(Purpose::Receipt, &receipt_nonce),
        ));
        let (_, unlocked) = post(
            &client,
            &base,
            "/api/journey/card/receipt",
            json!({"profile": "piv/1", "signature": receipt}),
        )
        .await;
        assert_eq!(unlocked["stage"], "unlocked", "{unlocked}");
    }
    stop(&mut server);
    let logs = std::fs::read_to_string(&log_path).unwrap();
    for secret in [USER_PIN, "40719263", "52830174"] {
        assert!(!logs.contains(secret), "{secret} appeared in the logs");
    }
    let audit = audit_rows(dir.path()).await;
    for wanted in [
        "keys.generate puk_escrow v1 in pkcs11",
        "keys.rotate puk_escrow v2 in pkcs11",
    ] {
        assert!(
            audit.iter().any(|row| row == wanted),
            "{wanted} not in {audit:?}"
        );
    }
    assert!(
        audit.iter().any(|row| row.contains("escrow key v1")),
        "{audit:?}"
    );
    assert!(
        audit.iter().any(|row| row.contains("escrow key v2")),
        "{audit:?}"
    );
}

/// The audit trail of the command-line tools' database: action and detail, oldest first.
async fn audit_rows(dir: &Path) -> Vec<String> {
    let database = cli_database(dir);
    tokio::task::spawn_blocking(move || {
        query_column(
            &database,
            "SELECT action || ' ' || COALESCE(detail, '') FROM audit_events ORDER BY id",
        )
    })
    .await
    .unwrap()
}

/// Presents the PIV card `card` and proves possession: the release's status and answer.
async fn piv_release(
    client: &reqwest::Client,
    base: &str,
    guid: &str,
    card: &TestPivCard,
) -> (u16, Value) {
    let (_, accepted) = post(
        client,
        base,
        "/api/journey/card",
        json!({
            "profile": "piv/1", "guid": guid, "puk_tries_left": 3,
            "card_authentication": hex::encode(&card.card_authentication_cert),
            "piv_authentication": hex::encode(&card.piv_authentication_cert),
        }),
    )
    .await;
    assert_eq!(accepted["stage"], "card_accepted", "{accepted}");
    let nonce: [u8; 32] = hex::decode(accepted["challenge"]["nonce"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let proof = hex::encode(card.sign(
        PivKey::CardAuthentication,
        &piv::message(Purpose::Possession, &nonce),
    ));
    post(
        client,
        base,
        RELEASE,
        json!({"profile": "piv/1", "signature": proof}),
    )
    .await
}

#[tokio::test]
async fn a_token_that_goes_away_stops_only_the_card_steps_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path());
    let settings = hsm.settings();
    let mut with_key = borrowed(&settings);
    with_key.push(("UNLOCK_CARD_MASTER_KEY", MASTER_KEY));
    stdout(&cli_with(
        dir.path(),
        &["keys", "import", "--purpose", "card-master"],
        &with_key,
    ));
    stdout(&cli_with(dir.path(), &["allowlist", "add", DOMAIN], &[]));
    let csv = write_csv(
        dir.path(),
        "holders.csv",
        &[format!(
            "{HOLDER},Jane Doe,Trust,{EMAIL},{VECTOR_SERIAL},active,2099-01-01,unlock-cr/1,"
        )],
    );
    stdout(&cli_with(
        dir.path(),
        &["import", csv.to_str().unwrap()],
        &borrowed(&settings),
    ));

    let smtp = SmtpSink::start(dir.path());
    let port = free_port();
    let log_path = dir.path().join("server.log");
    let mut serve = borrowed(&settings);
    serve.push(("UNLOCK_CARD_MASTER_KEY", ""));
    let mut server = serve_with_debug_logs_and(dir.path(), port, &smtp.url(), &log_path, &serve);
    let base = format!("http://127.0.0.1:{port}");
    let probe = cookie_client();
    assert!(wait_until_ready(&probe, &base).await);

    let client = verified(&base, &smtp, EMAIL, 1).await;
    let present = json!({"profile": "unlock-cr/1", "serial": VECTOR_SERIAL});
    let (_, accepted) = post(&client, &base, "/api/journey/card", present.clone()).await;
    assert_eq!(accepted["stage"], "card_accepted", "{accepted}");
    let (status, _) = post(
        &client,
        &base,
        RELEASE,
        cryptogram_request(&fresh_challenge()),
    )
    .await;
    assert_eq!(status, 200);

    // The token's store disappears (a pulled HSM): the card step answers 503 in plain words.
    let away = hsm.tokens.with_extension("away");
    std::fs::rename(&hsm.tokens, &away).unwrap();
    let (status, refused) = post(
        &client,
        &base,
        RELEASE,
        cryptogram_request(&fresh_challenge()),
    )
    .await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["code"], "unavailable", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("not available at the moment"),
        "{refused}"
    );
    // The rest of the service carries on: ready, and a holder can still start and get a code.
    assert_eq!(readyz(&probe, &base).await["key_token"], "unavailable");
    let other = cookie_client();
    let (status, _) = post(&other, &base, "/api/journeys", json!({"email": EMAIL})).await;
    assert_eq!(status, 200);
    smtp.wait_for(EMAIL, 2).await;

    // It comes back: the same server uses it again, no restart.
    std::fs::rename(&away, &hsm.tokens).unwrap();
    let mut answered = None;
    for _ in 0..50 {
        let (status, body) = post(
            &client,
            &base,
            RELEASE,
            cryptogram_request(&fresh_challenge()),
        )
        .await;
        if status != 503 {
            answered = Some((status, body));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = answered.expect("the token was used again");
    assert_eq!(status, 200, "{body}");
    assert_eq!(readyz(&probe, &base).await["key_token"], "ok");
    stop(&mut server);
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(!logs.contains(USER_PIN));
    assert!(
        logs.contains("the PKCS#11 token failed"),
        "the failure was not logged"
    );
}

/// What an unlock-cr/1 card personalised under `master` answers: its cryptogram for
/// `challenge`, and its receipt once unblocked.
fn card_answers(master: &[u8; 16], serial: &str, challenge: &str) -> (String, String) {
    use unlock_protocol::card_profile::{card_key, cryptogram, receipt};
    let serial = unlock_protocol::CardSerial::parse(serial)
        .unwrap()
        .to_bytes();
    let key = card_key(master, &serial);
    let challenge = block(challenge);
    (
        hex::encode(cryptogram(&key, &challenge, &serial)),
        hex::encode(receipt(&key, &challenge)),
    )
}

#[tokio::test]
async fn a_rotated_card_master_key_moved_onto_the_token_unlocks_its_cards_beside_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path());
    let on_token = hsm.settings();
    let mut with_key = borrowed(&on_token);
    with_key.push(("UNLOCK_CARD_MASTER_KEY", MASTER_KEY));
    stdout(&cli_with(
        dir.path(),
        &["keys", "import", "--purpose", "card-master"],
        &with_key,
    ));

    stdout(&cli_with(dir.path(), &["allowlist", "add", DOMAIN], &[]));
    let first = write_csv(
        dir.path(),
        "first.csv",
        &[format!(
            "{HOLDER},Jane Doe,Trust,{EMAIL},{VECTOR_SERIAL},active,2099-01-01,unlock-cr/1,"
        )],
    );
    stdout(&cli_with(
        dir.path(),
        &["import", first.to_str().unwrap()],
        &with_key,
    ));

    // Version 2 made as a file (the card management system personalises its cards from it),
    // a card issued under it, then the file key moved onto the token.
    let mut in_files = with_key.clone();
    in_files.push(("UNLOCK_KEYS__CUSTODY", "file"));
    let rotated = stdout(&cli_with(
        dir.path(),
        &["keys", "rotate", "--purpose", "card-master"],
        &in_files,
    ));
    assert!(rotated.contains("version 2"), "{rotated}");
    let file = dir.path().join("keys/unlock-card-master-v2.key");
    let second_master: [u8; 16] = hex::decode(std::fs::read_to_string(&file).unwrap().trim())
        .unwrap()
        .try_into()
        .unwrap();
    let second_email = "john.roe@trust.example";
    let second_serial = "0000000000000042";
    let second = write_csv(
        dir.path(),
        "second.csv",
        &[format!(
            "222222222222,John Roe,Trust,{second_email},{second_serial},active,2099-01-01,unlock-cr/1,"
        )],
    );
    stdout(&cli_with(
        dir.path(),
        &["import", second.to_str().unwrap()],
        &with_key,
    ));
    let moved = stdout(&cli_with(
        dir.path(),
        &[
            "keys",
            "import",
            "--purpose",
            "card-master",
            "--version",
            "2",
        ],
        &with_key,
    ));
    assert!(moved.contains("unlock-card-master-v2"), "{moved}");
    let listed = stdout(&cli_with(dir.path(), &["keys", "list"], &with_key));
    for version in ["1", "2"] {
        let line = listed
            .lines()
            .find(|l| l.starts_with("card_master") && l.split_whitespace().nth(1) == Some(version))
            .unwrap_or_else(|| panic!("no version {version}: {listed}"));
        assert!(line.contains("pkcs11"), "{listed}");
        assert_eq!(line.split_whitespace().nth(4), Some("1"), "{listed}");
    }

    let smtp = SmtpSink::start(dir.path());
    let port = free_port();
    let log_path = dir.path().join("server.log");
    let mut serve = borrowed(&on_token);
    serve.push(("UNLOCK_CARD_MASTER_KEY", ""));
    let mut server = serve_with_debug_logs_and(dir.path(), port, &smtp.url(), &log_path, &serve);
    let base = format!("http://127.0.0.1:{port}");
    assert!(wait_until_ready(&cookie_client(), &base).await);
    for (email, serial, master) in [
        (
            EMAIL,
            VECTOR_SERIAL,
            hex::decode(MASTER_KEY).unwrap().try_into().unwrap(),
        ),
        (second_email, second_serial, second_master),
    ] {
        let client = verified(&base, &smtp, email, 1).await;
        let (_, accepted) = post(
            &client,
            &base,
            "/api/journey/card",
            json!({"profile": "unlock-cr/1", "serial": serial}),
        )
        .await;
        assert_eq!(accepted["stage"], "card_accepted", "{accepted}");
        let challenge = fresh_challenge();
        let (expected, receipt) = card_answers(&master, serial, &challenge);
        let (_, released) = post(&client, &base, RELEASE, cryptogram_request(&challenge)).await;
        assert_eq!(
            released["cryptogram"],
            expected.as_str(),
            "{serial}: {released}"
        );
        let (_, unlocked) = post(
            &client,
            &base,
            "/api/journey/card/receipt",
            json!({"profile": "unlock-cr/1", "receipt": receipt}),
        )
        .await;
        assert_eq!(unlocked["stage"], "unlocked", "{serial}: {unlocked}");
    }
    stop(&mut server);
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(!logs.contains(&hex::encode(second_master)));
}
