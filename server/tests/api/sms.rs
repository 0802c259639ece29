//! Codes by text message: the real server sends them over SMPP 3.4 to a real message centre
//! on loopback (npm `smpp`'s server, `smpp_server.js`), which records every `submit_sm` and
//! sends delivery receipts when told to.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const NUMBER: &str = "+447400123456";
/// How the holder types it.
const TYPED: &str = "07400 123456";
/// A number on no profile, masked like [`NUMBER`] (same length, same last three digits).
const UNKNOWN: &str = "07400 654456";
const SYSTEM_ID: &str = "unlock";
const PASSWORD: &str = "s3cret";

/// The message centre: `node smpp_server.js` on a loopback port, its events collected.
struct Smsc {
    port: u16,
    child: Child,
    stdin: ChildStdin,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Smsc {
    fn start() -> Self {
        Self::start_on(0)
    }

    fn start_on(port: u16) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/smpp_server.js");
        let mut child = Command::new("node")
            .arg(script)
            .args([&port.to_string(), SYSTEM_ID, PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node (the npm packages: cargo xtask test installs them)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let events = Arc::new(Mutex::new(Vec::new()));
        let collected = events.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let event: Value = serde_json::from_str(&line).expect("a JSON line");
                collected.lock().unwrap().push(event);
            }
        });
        let mut smsc = Self {
            port,
            child,
            stdin,
            events,
        };
        wait_until(Duration::from_secs(20), || {
            !smsc.events_named("listening").is_empty()
        });
        smsc.port = smsc.events_named("listening")[0].as_u64().unwrap() as u16;
        smsc
    }

    fn events_named(&self, name: &str) -> Vec<Value> {
        let events = self.events.lock().unwrap();
        events.iter().filter_map(|e| e.get(name).cloned()).collect()
    }

    fn submits(&self) -> Vec<Value> {
        self.events_named("submit_sm")
    }

    async fn wait_for_submits(&self, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let submits = self.submits();
            if submits.len() >= n {
                return submits;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no {n} submit_sm in time: {:?}", self.submits());
    }

    fn send_receipt(&mut self, message_id: &str, stat: &str) {
        let command = serde_json::json!({"receipt": {"message_id": message_id, "stat": stat}});
        writeln!(self.stdin, "{command}").expect("tell the message centre");
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server whose SMS gateway is the message centre on `port`, with the test holder's
/// mobile number on their profile.
async fn spawn_sms_app(port: u16) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = SmtpSink::start(dir.path());
    let mut app = spawn_app_on(dir, Some(smtp.url()), move |config| {
        config.sms.host = Some("127.0.0.1".into());
        config.sms.port = port;
        config.sms.system_id = SYSTEM_ID.into();
        config.sms.password = Some(unlock_server::config::Secret::new(PASSWORD));
        config.sms.send_timeout_seconds = 2;
    })
    .await;
    app.smtp = Some(smtp);
    add_mobile(&app, HOLDER, NUMBER).await;
    app
}

async fn add_mobile(app: &TestApp, holder: &str, number: &str) {
    sqlx::query(
        "INSERT INTO holder_mobiles (number, holder_id, added_at, added_by) VALUES ($1, $2, 0, 'test')",
    )
    .bind(number)
    .bind(holder)
    .execute(app.db())
    .await
    .expect("add the mobile number");
}

/// The six-digit code at the start of a text.
fn code_in_text(submit: &Value) -> String {
    let text = submit["text"].as_str().expect("text");
    let code: String = text.chars().take(6).collect();
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{text}");
    code
}

/// `(channel, state, gateway id, delivery state)` of every text queued, oldest first.
async fn texts(app: &TestApp) -> Vec<(String, String, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT channel, state, gateway_message_id, delivery_state FROM outbox
         WHERE channel = 'sms' ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .expect("read the outbox")
}

#[tokio::test]
async fn the_code_goes_by_text_and_the_journey_completes() {
    let smsc = Smsc::start();
    let app = spawn_sms_app(smsc.port).await;

    let started = app.start(TYPED).await;
    assert_eq!(started.status, StatusCode::OK, "{:?}", started.json());
    assert_eq!(started.stage(), "awaiting_code");
    assert_eq!(started.json()["email_hint"], "+•••••••••456");

    let submit = &smsc.wait_for_submits(1).await[0];
    assert_eq!(smsc.events_named("bound"), [Value::from(SYSTEM_ID)]);
    // International number, ISDN plan; alphanumeric sender; a receipt asked for.
    assert_eq!(submit["destination"], "447400123456");
    assert_eq!(submit["destination_ton"], 1);
    assert_eq!(submit["destination_npi"], 1);
    assert_eq!(submit["source"], "NHS Unlock");
    assert_eq!(submit["source_ton"], 5);
    assert_eq!(submit["registered_delivery"], 1);
    let text = submit["text"].as_str().unwrap();
    assert!(text.len() <= 160 && text.contains("15 minutes"), "{text}");
    assert!(app.smtp().messages().is_empty(), "no email for a number");

    let code = code_in_text(submit);
    let verified = app.verify(&code).await;
    assert_eq!(verified.status, StatusCode::OK, "{:?}", verified.json());
    assert_eq!(verified.stage(), "verified");
    // The rest of the journey is the email one's: the card is unlocked.
    app.unlock_card(CARD).await;

    assert_eq!(
        texts(&app).await[0],
        ("sms".into(), "sent".into(), Some("msg-1".into()), None)
    );
    assert_eq!(app.audit("journey.start").await, ["code_issued"]);
}

#[tokio::test]
async fn a_delivery_receipt_is_recorded_as_delivery_state() {
    let mut smsc = Smsc::start();
    let app = spawn_sms_app(smsc.port).await;
    app.start(NUMBER).await;
    smsc.wait_for_submits(1).await;
    wait_for_state(&app, "sent").await;

    smsc.send_receipt("msg-1", "DELIVRD");
    for _ in 0..200 {
        if texts(&app).await[0].3.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(texts(&app).await[0].3.as_deref(), Some("delivered"));
    // Acknowledged, so the gateway does not send it again.
    eventually(|| !smsc.events_named("deliver_sm_resp").is_empty()).await;
    assert_eq!(smsc.events_named("deliver_sm_resp")[0]["status"], 0);

    // A later receipt for the same message (a failure after all) replaces it; one for a
    // message that is not ours changes nothing.
    smsc.send_receipt("msg-1", "UNDELIV");
    smsc.send_receipt("msg-404", "DELIVRD");
    eventually(|| smsc.events_named("deliver_sm_resp").len() == 3).await;
    assert_eq!(texts(&app).await[0].3.as_deref(), Some("undeliverable"));
}

/// Waits (without blocking the server, which runs on this test's runtime) until `done` holds.
async fn eventually(done: impl Fn() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting");
}

/// Waits, moving the manual clock on so that retries fall due, until `done` holds.
async fn advance_until<F, Fut>(app: &TestApp, done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if done().await {
            return;
        }
        app.clock.advance(Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting");
}

async fn wait_for_state(app: &TestApp, state: &str) {
    for _ in 0..400 {
        if texts(app).await.first().is_some_and(|t| t.1 == state) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the text never reached {state}: {:?}", texts(app).await);
}

#[tokio::test]
async fn known_and_unknown_numbers_get_identical_answers() {
    let smsc = Smsc::start();
    let mut app = spawn_sms_app(smsc.port).await;

    let known = app.start(TYPED).await;
    app.new_browser();
    let unknown = app.start(UNKNOWN).await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.body, unknown.body);
    let names = |reply: &Reply| {
        let mut names: Vec<_> = reply.headers.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(names(&known), names(&unknown));

    // The unknown number's journey goes on exactly as far: a wrong code is just wrong.
    let wrong = app.verify("000000").await;
    assert_eq!(wrong.code(), "code_wrong");

    // Only the number on a profile gets a text.
    smsc.wait_for_submits(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let submits = smsc.submits();
    assert_eq!(submits.len(), 1, "{submits:?}");
    assert_eq!(submits[0]["destination"], "447400123456");
}

#[tokio::test]
async fn without_a_gateway_every_number_gets_the_same_refusal() {
    let mut app = spawn_app().await;
    add_mobile(&app, HOLDER, NUMBER).await;

    let known = app.start(TYPED).await;
    app.new_browser();
    let unknown = app.start(UNKNOWN).await;
    assert_refused(
        &known,
        StatusCode::UNPROCESSABLE_ENTITY,
        "email_domain_not_allowed",
    );
    assert_eq!(known.body, unknown.body);
    assert!(
        known.json()["message"]
            .as_str()
            .unwrap()
            .contains("Use the email address on your smartcard profile")
    );
    // Audited as refused (repeats within a minute are folded into one event with a count).
    let audit: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT outcome, detail FROM audit_events WHERE action = 'journey.start' ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(audit[0].0, "domain_not_allowed");
    assert!(
        audit[0]
            .1
            .as_deref()
            .unwrap_or_default()
            .starts_with("text messages are not configured"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn what_is_neither_an_address_nor_a_mobile_number_is_refused_plainly() {
    let smsc = Smsc::start();
    let app = spawn_sms_app(smsc.port).await;
    for (typed, words) in [
        ("jane", "or a mobile number"),
        ("0740012", "mobile number in the correct format"),
        ("07400 12345a", "mobile number in the correct format"),
        // A London landline: a number, but no text reaches it.
        ("020 7946 0123", "can't receive text messages"),
        ("jane@", "email address"),
    ] {
        let reply = app.start(typed).await;
        assert_refused(&reply, StatusCode::UNPROCESSABLE_ENTITY, "email_invalid");
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(words), "{typed}: {message}");
    }
    assert!(smsc.submits().is_empty());
}

#[tokio::test]
async fn the_code_caps_hold_for_numbers() {
    let smsc = Smsc::start();
    let mut app = spawn_sms_app(smsc.port).await;
    app.start(NUMBER).await;
    for sent in 1..=4 {
        // Each code's text goes out before the next is asked for (else it is withdrawn).
        smsc.wait_for_submits(sent).await;
        app.clock.advance(Duration::from_secs(30));
        assert_eq!(app.resend().await.status, StatusCode::OK);
    }
    app.clock.advance(Duration::from_secs(30));
    let sixth = app.resend().await;
    assert_eq!(
        (sixth.status, sixth.code()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_codes".into())
    );
    // The cap is per holder: typed another way, in another browser, it holds.
    app.new_browser();
    assert_eq!(app.start(TYPED).await.code(), "too_many_codes");
    smsc.wait_for_submits(5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smsc.submits().len(), 5);
    // And the holder's email address shares it: the limit is the holder's, not the channel's.
    app.new_browser();
    assert_eq!(app.start(EMAIL).await.code(), "too_many_codes");

    // An unknown number is capped alike.
    for _ in 0..5 {
        app.new_browser();
        assert_eq!(app.start(UNKNOWN).await.status, StatusCode::OK);
        app.clock.advance(Duration::from_secs(1));
    }
    app.new_browser();
    assert_eq!(app.start(UNKNOWN).await.code(), "too_many_codes");
}

#[tokio::test]
async fn a_text_queued_while_the_gateway_is_down_is_delivered_once_when_it_is_back() {
    let port = free_port();
    let app = spawn_sms_app(port).await;

    let started = app.start(NUMBER).await;
    assert_eq!(
        started.status,
        StatusCode::OK,
        "the answer does not wait on the gateway"
    );
    // Attempts fail and are retried with back-off while nothing listens.
    advance_until(&app, || async {
        let retries: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox_attempts WHERE outcome = 'retry'")
                .fetch_one(app.db())
                .await
                .unwrap();
        retries >= 2
    })
    .await;
    assert_eq!(texts(&app).await[0].1, "queued");
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM outbox")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert!(
        error
            .as_deref()
            .unwrap_or_default()
            .contains("connect to the SMS gateway"),
        "{error:?}"
    );

    let smsc = Smsc::start_on(port);
    advance_until(&app, || async { !smsc.submits().is_empty() }).await;
    let submit = smsc.submits()[0].clone();
    wait_for_state(&app, "sent").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smsc.submits().len(), 1, "delivered exactly once");

    let verified = app.verify(&code_in_text(&submit)).await;
    assert_eq!(verified.stage(), "verified");

    // The gateway goes away and comes back again: the next text opens a new session.
    smsc.stop();
    let smsc = Smsc::start_on(port);
    app.clock.advance(Duration::from_secs(60));
    let mut app = app;
    app.new_browser();
    app.start(NUMBER).await;
    advance_until(&app, || async { !smsc.submits().is_empty() }).await;
    assert_eq!(smsc.submits()[0]["destination"], "447400123456");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smsc.submits().len(), 1);
}

#[tokio::test]
async fn a_gateway_that_refuses_the_account_gets_retries_not_texts() {
    let smsc = Smsc::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = smsc.port;
    let app = spawn_app_on(dir, None, move |config| {
        config.sms.host = Some("127.0.0.1".into());
        config.sms.port = port;
        config.sms.system_id = SYSTEM_ID.into();
        config.sms.password = Some(unlock_server::config::Secret::new("wrong"));
    })
    .await;
    add_mobile(&app, HOLDER, NUMBER).await;
    assert_eq!(app.start(NUMBER).await.status, StatusCode::OK);
    eventually(|| !smsc.events_named("refused_bind").is_empty()).await;
    let mut detail = None;
    for _ in 0..400 {
        detail = sqlx::query_scalar("SELECT detail FROM outbox_attempts ORDER BY id LIMIT 1")
            .fetch_optional(app.db())
            .await
            .unwrap()
            .flatten();
        if detail.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let detail: String = detail.unwrap_or_default();
    assert!(detail.contains("refused the bind"), "{detail}");
    assert!(
        !detail.contains("wrong"),
        "the password stays out: {detail}"
    );
    assert!(smsc.submits().is_empty());
}

#[tokio::test]
async fn an_ra_adds_and_removes_a_number_as_they_would_an_address() {
    let smsc = Smsc::start();
    let mut app = spawn_sms_app(smsc.port).await;
    let remote = "555566667777";
    let card = Some(("active", START_OF_TEST + 86_400_000 * 365, "unlock-cr/1"));
    add_holder(app.server(), remote, "jo.bloggs@trust.example", card).await;
    let rita = app
        .signed_in_staff(
            "rita",
            unlock_protocol::staff::Role::Ra,
            Some("999988887777"),
        )
        .await;

    let path = format!("/api/staff/holders/{remote}/emails");
    let added = rita
        .post(&path, serde_json::json!({"email": "07400 777888"}))
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.json());
    let emails = &added.json()["emails"];
    assert_eq!(emails[1]["address"], "+447400777888");
    assert_eq!(
        emails[1]["domain_allowed"], true,
        "text messages are configured"
    );
    assert_eq!(emails[1]["added_by"], "staff:rita");
    // The number on another profile is refused; so is what is not a mobile number.
    let taken = rita.post(&path, serde_json::json!({"email": NUMBER})).await;
    assert_refused(&taken, StatusCode::CONFLICT, "email_taken");
    assert!(
        taken.json()["message"]
            .as_str()
            .unwrap()
            .contains("mobile number")
    );
    let landline = rita
        .post(&path, serde_json::json!({"email": "020 7946 0123"}))
        .await;
    assert_refused(&landline, StatusCode::UNPROCESSABLE_ENTITY, "email_invalid");

    // The address on the profile is emailed, and the new number texted.
    let raw = app
        .smtp()
        .wait_for_subject(
            "jo.bloggs@trust.example",
            "A mobile number was added to your smartcard profile",
        )
        .await;
    assert!(String::from_utf8_lossy(&raw).contains("+447400777888"));
    let notice = smsc.wait_for_submits(1).await[0].clone();
    assert_eq!(notice["destination"], "447400777888");
    assert!(
        notice["text"]
            .as_str()
            .unwrap()
            .contains("A mobile number was added to your smartcard profile")
    );
    let audit: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT outcome, detail FROM audit_events WHERE action = 'staff.email_add' ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(audit[0], ("added".into(), Some("+447400777888".into())));

    // Staff find the holder by the number, however it is typed.
    let found = rita.get("/api/staff/holders?q=%2B44%207400%20777888").await;
    assert_eq!(found.json()["matches"][0]["id"], remote, "{}", found.json());

    // The holder unlocks their card with a code sent to the number.
    app.new_browser();
    assert_eq!(app.start("+44 7400 777888").await.status, StatusCode::OK);
    let code = code_in_text(&smsc.wait_for_submits(2).await[1]);
    assert_eq!(app.verify(&code).await.stage(), "verified");
    app.unlock_card("0000555566667777").await;

    // Removed, the number gets no more codes, and the answer does not change.
    let removed = rita.delete(&format!("{path}/%2B447400777888")).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.json());
    assert_eq!(removed.json()["emails"].as_array().unwrap().len(), 1);
    let before = smsc.submits().len();
    app.clock.advance(Duration::from_secs(60));
    app.new_browser();
    assert_eq!(app.start("07400 777888").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let codes_after = smsc
        .submits()
        .iter()
        .skip(before)
        .filter(|s| s["text"].as_str().unwrap().contains("security code"))
        .count();
    assert_eq!(codes_after, 0);
    let removals: Vec<String> = sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE action = 'staff.email_remove' AND outcome = 'removed'",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(removals, ["+447400777888"]);
}

/// The real binary, with debug logging: holders imported with a mobile number, a code sent
/// by text and typed in; neither the code nor the SMPP password is in its logs (the SMPP
/// library logs whole PDUs at debug level, and the server keeps it quiet).
#[tokio::test]
async fn the_binary_imports_numbers_and_logs_no_code_or_password() {
    use crate::binary::{
        cli, serve_with_debug_logs_and, stdout, wait_until_ready, without_timestamps,
    };

    let smsc = Smsc::start();
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path());
    let csv = dir.path().join("holders.csv");
    std::fs::write(
        &csv,
        format!(
            "holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model,mobiles\n\
             {HOLDER},Jane Doe,Trust,{EMAIL},2d6bddb8ad096c2d,active,2099-01-01,unlock-cr/1,07400 123456\n"
        ),
    )
    .unwrap();
    stdout(&cli(dir.path(), &["allowlist", "add", DOMAIN]));
    let imported = stdout(&cli(dir.path(), &["import", csv.to_str().unwrap()]));
    assert_eq!(
        imported,
        "imported 1 rows: 1 emails, 1 cards, 1 mobile numbers\n"
    );
    // A row with a landline is refused whole, naming the line.
    std::fs::write(
        &csv,
        "holder_id,name,organisation,emails,mobiles\n210987654321,John,Trust,,020 7946 0123\n",
    )
    .unwrap();
    let refused = cli(dir.path(), &["import", csv.to_str().unwrap()]);
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(
        error.contains("line 2") && error.contains("can't receive text messages"),
        "{error}"
    );

    let port = free_port();
    let log_path = dir.path().join("server.log");
    let smsc_port = smsc.port.to_string();
    let mut server = serve_with_debug_logs_and(
        dir.path(),
        port,
        &smtp.url(),
        &log_path,
        &[
            ("UNLOCK_SMS__HOST", "127.0.0.1"),
            ("UNLOCK_SMS__PORT", &smsc_port),
            ("UNLOCK_SMS__SYSTEM_ID", SYSTEM_ID),
            ("UNLOCK_SMS__PASSWORD", PASSWORD),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    assert!(wait_until_ready(&client, &base).await);
    let started = client
        .post(format!("{base}/api/journeys"))
        .json(&serde_json::json!({"email": "+44 7400 123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::OK);
    let code = code_in_text(&smsc.wait_for_submits(1).await[0]);
    let verified = client
        .post(format!("{base}/api/journey/code"))
        .json(&serde_json::json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::OK);

    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    server.0.wait().unwrap();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("text message sent"), "{logs}");
    assert!(logs.contains("bound to the gateway"), "{logs}");
    let logs = without_timestamps(&logs);
    assert!(!logs.contains(&code), "the code is in the logs");
    assert!(!logs.contains(PASSWORD), "the SMPP password is in the logs");
}
