//! PIV cards through the real binary: `import` takes them with their escrowed PUK (sealed,
//! kept the first time only unless `--replace-puks`, never printed), and a whole PIV journey
//! at debug level leaves no PUK, nonce or signature in the logs.

use serde_json::{Value, json};
use unlock_protocol::CardId;
use unlock_protocol::piv::{self, Purpose};
use unlock_server::piv::escrow;
use unlock_server::secrets::Keys;
use unlock_testkit::piv::{Period, PivKey, TestCa, TestPivCard, new_guid};

use crate::binary::{cli, serve_with_debug_logs_and, stdout, wait_until_ready, without_timestamps};
use crate::helpers::*;

const FIRST_PUK: &str = "40719263";
const HEADER: &str =
    "holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model,card_puk";

fn write_csv(dir: &std::path::Path, name: &str, rows: &[String]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{HEADER}\n{}\n", rows.join("\n"))).unwrap();
    path
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    client
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn nonce(value: &Value) -> [u8; 32] {
    hex::decode(value.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[tokio::test]
async fn piv_cards_import_with_their_puk_and_a_piv_journey_logs_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Test PIV CA").unwrap();
    let anchors = dir.path().join("piv-anchors.pem");
    std::fs::write(&anchors, ca.cert_pem()).unwrap();
    let guid = new_guid();
    let card = TestPivCard::issue(&ca, &guid, Period::Current);
    stdout(&cli(dir.path(), &["allowlist", "add", DOMAIN]));

    // A bad PUK is named by its column, never echoed; nothing is imported.
    let bad = write_csv(
        dir.path(),
        "bad.csv",
        &[
            format!("{HOLDER},Jane Doe,Trust,{EMAIL},{guid},active,2099-01-01,piv/1,4071926x"),
            format!(
                "222222222222,No Puk,Trust,,{},active,2099-01-01,piv/1,",
                new_guid()
            ),
            format!(
                "333333333333,Wrong Model,Trust,,2d6bddb8ad096c2d,active,2099-01-01,unlock-cr/1,{FIRST_PUK}"
            ),
        ],
    );
    let output = cli(dir.path(), &["import", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 2: card_puk of a piv/1 card"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 3: card_puk of a piv/1 card"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 4: card_puk is only for piv/1 cards"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("4071926x") && !stderr.contains(FIRST_PUK),
        "{stderr}"
    );

    // The GUID may be written as a UUID; the PUK is stored sealed.
    let good = write_csv(
        dir.path(),
        "good.csv",
        &[format!(
            "{HOLDER},Jane Doe,Trust,{EMAIL},{},active,2099-01-01,piv/1,{FIRST_PUK}",
            unlock_protocol::CardGuid::parse(&guid)
                .unwrap()
                .urn()
                .trim_start_matches("urn:uuid:")
        )],
    );
    let imported = stdout(&cli(dir.path(), &["import", good.to_str().unwrap()]));
    assert_eq!(imported, "imported 1 rows: 1 emails, 1 cards\n");
    // A later export with another PUK does not overwrite the escrow.
    let later = write_csv(
        dir.path(),
        "later.csv",
        &[format!(
            "{HOLDER},Jane Doe,Trust,{EMAIL},{guid},active,2099-01-01,piv/1,11112222"
        )],
    );
    stdout(&cli(dir.path(), &["import", later.to_str().unwrap()]));
    let database = cli_database(dir.path());
    let stored = tokio::task::spawn_blocking(move || {
        query_column(&database, "SELECT serial || ' ' || model FROM cards")
    })
    .await
    .unwrap();
    assert_eq!(stored, [format!("{guid} piv/1")]);

    let smtp = SmtpSink::start(dir.path());
    let port = free_port();
    let log_path = dir.path().join("server.log");
    let anchors_setting = anchors.to_str().unwrap().to_owned();
    let mut server = serve_with_debug_logs_and(
        dir.path(),
        port,
        &smtp.url(),
        &log_path,
        &[("UNLOCK_CARDS__PIV_TRUST_ANCHORS_FILE", &anchors_setting)],
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    assert!(wait_until_ready(&client, &base).await);

    post(&client, &base, "/api/journeys", json!({"email": EMAIL})).await;
    let code = code_in(&smtp.wait_for(EMAIL, 1).await);
    let verified = post(&client, &base, "/api/journey/code", json!({"code": code})).await;
    assert_eq!(verified["stage"], "verified", "{verified}");
    let accepted = post(
        &client,
        &base,
        "/api/journey/card",
        json!({
            "profile": "piv/1", "guid": guid, "puk_tries_left": 3,
            "card_authentication": hex::encode(&card.card_authentication_cert),
            "piv_authentication": hex::encode(&card.piv_authentication_cert),
        }),
    )
    .await;
    assert_eq!(accepted["stage"], "card_accepted", "{accepted}");
    let possession_nonce = nonce(&accepted["challenge"]["nonce"]);
    let proof = hex::encode(card.sign(
        PivKey::CardAuthentication,
        &piv::message(Purpose::Possession, &possession_nonce),
    ));
    let released = post(
        &client,
        &base,
        RELEASE,
        json!({"profile": "piv/1", "signature": proof}),
    )
    .await;
    assert_eq!(released["puks"], json!([FIRST_PUK]), "{released}");
    let next = released["next_puk"].as_str().unwrap().to_owned();
    let receipt_nonce = nonce(&released["receipt_nonce"]);
    let receipt = hex::encode(card.sign(
        PivKey::PivAuthentication,
        &piv::message(Purpose::Receipt, &receipt_nonce),
    ));
    let unlocked = post(
        &client,
        &base,
        "/api/journey/card/receipt",
        json!({"profile": "piv/1", "signature": receipt}),
    )
    .await;
    assert_eq!(unlocked["stage"], "unlocked", "{unlocked}");

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    server.0.wait().unwrap();
    let logs = without_timestamps(&std::fs::read_to_string(&log_path).unwrap());
    assert!(
        logs.contains("/api/journey/card/release") && logs.contains("\"level\":\"DEBUG\""),
        "expected debug logs of the PIV steps"
    );
    for secret in [
        FIRST_PUK,
        next.as_str(),
        "11112222",
        &hex::encode(possession_nonce),
        &hex::encode(receipt_nonce),
        &proof,
        &receipt,
    ] {
        assert!(!logs.contains(secret), "{secret} appeared in the logs");
    }
    assert!(!imported.contains(FIRST_PUK));

    // The service rotated the PUK; after the card management system resets it, the operator
    // replaces the escrow with the file's.
    assert_eq!(escrowed(dir.path(), &guid).await, next);
    stdout(&cli(
        dir.path(),
        &["import", "--replace-puks", later.to_str().unwrap()],
    ));
    assert_eq!(escrowed(dir.path(), &guid).await, "11112222");
}

/// The PUK the command-line tools' database escrows for `guid`, opened.
async fn escrowed(dir: &std::path::Path, guid: &str) -> String {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&cli_database(dir)).await.unwrap();
    let (sealed, pending): (Vec<u8>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT puk_sealed, puk_pending_sealed FROM cards WHERE serial = $1")
            .bind(guid)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(pending, None);
    let keys = Keys::from_secret(&hex::decode(SECRET_KEY).unwrap().try_into().unwrap());
    escrow::open(&keys, &CardId::parse(guid).unwrap(), &sealed)
        .unwrap()
        .expose()
        .to_owned()
}
