//! Test harness: the real server on port 0 with a fresh database, a real SMTP server on
//! loopback, a manual clock, and one helper per endpoint.
//!
//! The engine is SQLite (a fresh file per test) unless `SERVER_TEST_DATABASE=postgres`, when
//! every test gets a fresh database in the test binary's private PostgreSQL cluster; the
//! test command runs the suite both ways.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use unlock_server::Server;
use unlock_server::clock::Clock;
use unlock_server::config::{Config, Secret};
use unlock_server::db::{DatabaseUrl, Engine};

/// 2026-11-28T09:00:00Z.
pub const START_OF_TEST: i64 = 1_795_856_400_000;
pub const DOMAIN: &str = "trust.example";
pub const HOLDER: &str = "123456789012";
pub const EMAIL: &str = "jane.doe@trust.example";
pub const SECRET_KEY: &str = "5f0e4c3a2b1d09f8e7d6c5b4a3928170695a4b3c2d1e0f1a2b3c4d5e6f708192";
/// The card master key of the first vector in `shared/test-vectors/unlock-cr-1.json`.
pub const MASTER_KEY: &str = "35a47d45d75853e026695fffa198b79d";
/// The serial of the test holder's card (see [`add_holder`]).
pub const CARD: &str = "0000123456789012";
/// The card profile the bridge reports for the test cards.
pub const PROFILE: &str = "unlock-cr/1";
/// Where a card's secret is released against its proof.
pub const RELEASE: &str = "/api/journey/card/release";

/// The body asking for an unlock-cr/1 card's cryptogram for `challenge` (32 hex digits).
pub fn cryptogram_request(challenge: &str) -> Value {
    serde_json::json!({ "profile": PROFILE, "challenge": challenge })
}

/// The card master key as bytes.
pub fn master() -> [u8; 16] {
    hex::decode(MASTER_KEY).unwrap().try_into().unwrap()
}

/// 32 hex digits as a block.
pub fn block(hex_text: &str) -> [u8; 16] {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

/// A challenge such as a card draws: 16 random bytes, as hex.
pub fn fresh_challenge() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).unwrap();
    hex::encode(bytes)
}

/// What the card computes after an unblock that followed `challenge`.
pub fn receipt_for(serial: &str, challenge: &str) -> String {
    let serial = unlock_protocol::CardSerial::parse(serial)
        .unwrap()
        .to_bytes();
    let key = unlock_protocol::card_profile::card_key(&master(), &serial);
    hex::encode(unlock_protocol::card_profile::receipt(
        &key,
        &block(challenge),
    ))
}

/// A refusal with this status and code, and a plain sentence.
pub fn assert_refused(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(
        (reply.status, reply.code()),
        (status, code.to_owned()),
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.ends_with('.') && m.len() > 20),
        "{}",
        reply.json()
    );
}

/// Fails unless the served OpenAPI document lists the reply's status for `method path` (the
/// path as the document templates it): no answer falls outside the document.
pub async fn assert_documented(app: &TestApp, method: &str, path: &str, reply: &Reply) {
    let document = app.get("/api/openapi.json").await.json();
    let responses = &document["paths"][path][method.to_lowercase()]["responses"];
    assert!(responses.is_object(), "{method} {path} is not documented");
    assert!(
        responses.get(reply.status.as_str()).is_some(),
        "{method} {path} answered {}, which the document does not list: {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

/// Debian's aiosmtpd writing every message it accepts into a Maildir.
pub struct SmtpSink {
    pub port: u16,
    maildir: PathBuf,
    child: Child,
}

impl SmtpSink {
    pub fn start(dir: &Path) -> Self {
        Self::start_on(dir, free_port())
    }

    pub fn start_on(dir: &Path, port: u16) -> Self {
        let maildir = dir.join(format!("maildir-{port}"));
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("create the maildir");
        }
        let child = Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd (apt-get install python3-aiosmtpd)");
        let sink = Self {
            port,
            maildir,
            child,
        };
        wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message delivered so far, oldest first.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<_> = std::fs::read_dir(self.maildir.join("new"))
            .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|path| std::fs::read(path).ok())
            .collect()
    }

    /// Messages to one recipient.
    pub fn messages_to(&self, recipient: &str) -> Vec<Vec<u8>> {
        self.messages()
            .into_iter()
            .filter(|raw| to_of(raw).eq_ignore_ascii_case(recipient))
            .collect()
    }

    /// Waits for a message to `recipient` with this subject and returns it.
    pub async fn wait_for_subject(&self, recipient: &str, subject: &str) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .messages_to(recipient)
                .into_iter()
                .find(|raw| subject_of(raw) == subject);
            if let Some(raw) = found {
                return raw;
            }
            assert!(
                Instant::now() < deadline,
                "no message {subject:?} reached {recipient}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits for the `n`th message to `recipient` and returns it.
    pub async fn wait_for(&self, recipient: &str, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut messages = self.messages_to(recipient);
            if messages.len() >= n {
                return messages.swap_remove(n - 1);
            }
            assert!(
                Instant::now() < deadline,
                "message {n} to {recipient} never arrived"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // aiosmtpd ignores SIGTERM for a while; nothing of its state matters.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn to_of(raw: &[u8]) -> String {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parse the message");
    message
        .to()
        .and_then(|to| to.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_owned()
}

pub fn subject_of(raw: &[u8]) -> String {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parse the message");
    message.subject().unwrap_or_default().to_owned()
}

/// The one-time code in a delivered message's plain-text part.
pub fn code_in(raw: &[u8]) -> String {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parse the message");
    let text = message.body_text(0).expect("a plain-text part");
    let after = text
        .split("Your security code is ")
        .nth(1)
        .expect("the code line");
    after.chars().take(6).collect()
}

/// Polls a condition (for work done by other threads or processes).
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// What a test changes in the default test configuration.
pub type Tweak = fn(&mut Config);

/// The running application and everything it talks to.
pub struct TestApp {
    pub server: Option<Server>,
    pub config: Config,
    pub clock: Clock,
    pub client: reqwest::Client,
    pub smtp: Option<SmtpSink>,
    pub dir: TempDir,
}

/// A server with a fresh database, a real SMTP server and a manual clock.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: Tweak) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = SmtpSink::start(dir.path());
    let mut app = spawn_app_on(dir, Some(smtp.url()), tweak).await;
    app.smtp = Some(smtp);
    app
}

/// A server whose SMTP URL points at `smtp_url` (which may have nothing listening yet).
pub async fn spawn_app_on(
    dir: TempDir,
    smtp_url: Option<String>,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        database_url: fresh_database(dir.path()),
        data_dir: dir.path().to_owned(),
        secret_key: Some(Secret::new(SECRET_KEY)),
        card_master_key: Some(Secret::new(MASTER_KEY)),
        // Tests that serve an app build it here first.
        static_dir: dir.path().join("app"),
        ..Config::default()
    };
    config.mail.smtp_url = smtp_url.map(Secret::new);
    config.mail.send_timeout_seconds = 5;
    config.outbox.poll_interval_ms = 50;
    config.outbox.retry_base_ms = 100;
    // Staff password hashing at the least work Argon2 allows: the tests check the flow.
    config.staff.argon2_memory_kib = 64;
    config.staff.argon2_iterations = 1;
    tweak(&mut config);
    // `RUST_LOG=…` shows the servers' logs beside a failing test's output.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let clock = Clock::manual(START_OF_TEST);
    let server = Server::start(config.clone(), clock.clone())
        .await
        .expect("start the server");
    seed(&server).await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("HTTP client");
    TestApp {
        server: Some(server),
        config,
        clock,
        client,
        smtp: None,
        dir,
    }
}

/// Which engine the suite runs on this time.
pub fn engine() -> Engine {
    match std::env::var("SERVER_TEST_DATABASE").as_deref() {
        Ok("postgres") => Engine::Postgres,
        Ok("sqlite") | Err(_) => Engine::Sqlite,
        Ok(other) => panic!("SERVER_TEST_DATABASE must be sqlite or postgres, not {other}"),
    }
}

/// A new, empty database on the suite's engine (SQLite: a file in `dir`).
pub fn fresh_database(dir: &Path) -> DatabaseUrl {
    let url = match engine() {
        Engine::Sqlite => format!("sqlite://{}", dir.join("unlock.db").display()),
        Engine::Postgres => unlock_testkit::postgres::shared().create_database(),
    };
    DatabaseUrl::parse(&url).expect("a test database URL")
}

/// The database the command-line tests' binary uses for `dir` (SQLite: `dir/cli.db`); the
/// same one every time for the same folder.
pub fn cli_database(dir: &Path) -> String {
    match engine() {
        Engine::Sqlite => format!("sqlite://{}", dir.join("cli.db").display()),
        Engine::Postgres => {
            let remembered = dir.join("cli-database-url");
            if let Ok(url) = std::fs::read_to_string(&remembered) {
                return url;
            }
            let url = unlock_testkit::postgres::shared().create_database();
            std::fs::write(&remembered, &url).expect("remember the test database");
            url
        }
    }
}

/// The first column of every row `sql` returns, as text, read outside any server (for tests
/// of the command line, which have no server running).
pub fn query_column(url: &str, sql: &'static str) -> Vec<String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(url)
                .await
                .expect("open the database");
            let rows: Vec<(String,)> = sqlx::query_as(sql)
                .fetch_all(&pool)
                .await
                .expect("query the database");
            pool.close().await;
            rows.into_iter().map(|(value,)| value).collect()
        })
}

/// An allow-listed domain and one holder with an active, supported card.
pub async fn seed(server: &Server) {
    let db = server.state.db.pool();
    sqlx::query(
        "INSERT INTO allowed_domains (domain, added_at, added_by) VALUES ($1, 0, 'test')
         ON CONFLICT DO NOTHING",
    )
    .bind(DOMAIN)
    .execute(db)
    .await
    .expect("allow the test domain");
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM holders WHERE id = $1")
        .bind(HOLDER)
        .fetch_optional(db)
        .await
        .expect("query");
    if exists.is_none() {
        add_holder(
            server,
            HOLDER,
            EMAIL,
            Some(("active", START_OF_TEST + 86_400_000 * 365, "unlock-cr/1")),
        )
        .await;
    }
}

/// Adds a holder with one email and optionally one card `(status, cert_expires_at, model)`.
pub async fn add_holder(
    server: &Server,
    holder: &str,
    email: &str,
    card: Option<(&str, i64, &str)>,
) {
    let db = server.state.db.pool();
    sqlx::query("INSERT INTO holders (id, created_at) VALUES ($1, 0)")
        .bind(holder)
        .execute(db)
        .await
        .expect("add holder");
    sqlx::query(
        "INSERT INTO holder_emails (email, holder_id, added_at, added_by) VALUES ($1, $2, 0, 'test')",
    )
    .bind(email)
    .bind(holder)
    .execute(db)
    .await
    .expect("add email");
    if let Some((status, expires, model)) = card {
        let serial = format!("{:0>16}", &holder[..12]);
        sqlx::query("INSERT INTO cards (serial, holder_id, status, cert_expires_at, model, updated_at) VALUES ($1, $2, $3, $4, $5, 0)")
            .bind(serial)
            .bind(holder)
            .bind(status)
            .bind(expires)
            .bind(model)
            .execute(db)
            .await
            .expect("add card");
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    pub fn stage(&self) -> String {
        self.json()["stage"].as_str().unwrap_or_default().to_owned()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("read the body").to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

impl TestApp {
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("the server is running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server().addr)
    }

    pub fn smtp(&self) -> &SmtpSink {
        self.smtp.as_ref().expect("an SMTP server")
    }

    pub fn db(&self) -> &sqlx::AnyPool {
        self.server().state.db.pool()
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        read(
            self.client
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    pub async fn start(&self, email: &str) -> Reply {
        self.post_json("/api/journeys", serde_json::json!({ "email": email }))
            .await
    }

    pub async fn verify(&self, code: &str) -> Reply {
        self.post_json("/api/journey/code", serde_json::json!({ "code": code }))
            .await
    }

    pub async fn resend(&self) -> Reply {
        read(
            self.client
                .post(self.url("/api/journey/resend"))
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    pub async fn journey(&self) -> Reply {
        read(
            self.client
                .get(self.url("/api/journey"))
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        read(self.client.get(self.url(path)).send().await.expect("send")).await
    }

    /// Presents an unlock-cr/1 card (the bridge reports `profile` for it).
    pub async fn present_card(&self, serial: &str, profile: &str) -> Reply {
        self.post_json(
            "/api/journey/card",
            serde_json::json!({ "profile": profile, "serial": serial }),
        )
        .await
    }

    /// Asks for the cryptogram for an unlock-cr/1 card's challenge (32 hex digits).
    pub async fn cryptogram(&self, challenge: &str) -> Reply {
        self.post_json(RELEASE, cryptogram_request(challenge)).await
    }

    /// Sends an unlock-cr/1 card's receipt (32 hex digits).
    pub async fn receipt(&self, receipt: &str) -> Reply {
        self.post_json(
            "/api/journey/card/receipt",
            serde_json::json!({ "profile": PROFILE, "receipt": receipt }),
        )
        .await
    }

    /// Starts a journey for [`EMAIL`] and types the code: the card steps may begin.
    pub async fn verified_journey(&self) {
        self.verified_journey_for(EMAIL).await;
    }

    /// Starts a journey for `email` and types the code from the delivered email.
    pub async fn verified_journey_for(&self, email: &str) {
        assert_eq!(self.journey_with_code(email).await.stage(), "verified");
    }

    /// Starts a journey for `email`, types the code from the delivered email, and returns
    /// the answer.
    pub async fn journey_with_code(&self, email: &str) -> Reply {
        let codes_before = self.code_emails(email).len();
        assert_eq!(self.start(email).await.status, StatusCode::OK);
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(raw) = self.code_emails(email).get(codes_before) {
                break code_in(raw);
            }
            assert!(Instant::now() < deadline, "the code email never arrived");
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        self.verify(&code).await
    }

    /// After a verified journey: the card `serial` goes in, gets its cryptogram and sends
    /// its receipt, as the bridge would.
    pub async fn unlock_card(&self, serial: &str) {
        assert_eq!(
            self.present_card(serial, PROFILE).await.stage(),
            "card_accepted"
        );
        let challenge = fresh_challenge();
        assert_eq!(self.cryptogram(&challenge).await.status, StatusCode::OK);
        assert_eq!(
            self.receipt(&receipt_for(serial, &challenge)).await.stage(),
            "unlocked"
        );
    }

    /// The code emails (not notices) delivered to `email`, oldest first.
    pub fn code_emails(&self, email: &str) -> Vec<Vec<u8>> {
        self.smtp()
            .messages_to(email)
            .into_iter()
            .filter(|raw| subject_of(raw) == "Your smartcard unlock security code")
            .collect()
    }

    /// The code in the `n`th email to `email`.
    pub async fn code_for(&self, email: &str, n: usize) -> String {
        code_in(&self.smtp().wait_for(email, n).await)
    }

    /// A fresh browser: no cookies.
    pub fn new_browser(&mut self) {
        self.client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("HTTP client");
    }

    /// A second server instance on the same database, clock, keys and mail relay: a fleet
    /// of two. It has an outbox instance id of its own.
    pub async fn second_instance(&self) -> Server {
        let mut config = self.config.clone();
        config.outbox.instance_id = format!("{}-second", config.outbox.instance_id);
        Server::start(config, self.clock.clone())
            .await
            .expect("start a second instance")
    }

    /// `POST path` to `server` from this browser (cookies are per host, not per port, so the
    /// journey cookie goes to every instance alike).
    pub async fn post_json_to(&self, server: &Server, path: &str, body: Value) -> Reply {
        let url = format!("http://{}{path}", server.addr);
        read(
            self.client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    /// Stops the server (graceful) and starts it again on the same database.
    pub async fn restart(&mut self) {
        self.stop().await;
        let server = Server::start(self.config.clone(), self.clock.clone())
            .await
            .expect("restart the server");
        self.server = Some(server);
    }

    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("stop the server");
        }
    }

    /// Adds a card to a holder's profile.
    pub async fn add_card(
        &self,
        holder: &str,
        serial: &str,
        status: &str,
        expires: i64,
        model: &str,
    ) {
        sqlx::query("INSERT INTO cards (serial, holder_id, status, cert_expires_at, model, updated_at) VALUES ($1, $2, $3, $4, $5, 0)")
            .bind(serial)
            .bind(holder)
            .bind(status)
            .bind(expires)
            .bind(model)
            .execute(self.db())
            .await
            .expect("add card");
    }

    /// Audit outcomes recorded for an action, oldest first.
    pub async fn audit(&self, action: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT outcome FROM audit_events WHERE action = $1 ORDER BY id")
            .bind(action)
            .fetch_all(self.db())
            .await
            .expect("read audit")
    }
}
