//! The server schemathesis runs against: the real `unlock-server` binary on a fresh SQLite
//! file in a folder of its own, on a free loopback port, with emails written to that folder;
//! seeded with a holder and a staff member, who signs in as a person would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use unlock_testkit::piv_ca::TestCa;

use crate::cmd;

/// The holder the fuzzed requests and the journey are about: the document's example user id
/// and card serial, so schemathesis's examples name something that exists.
pub const HOLDER_ID: &str = "123456789012";
pub const HOLDER_EMAILS: [&str; 2] = ["jane.doe@trust.example", "jane@trust.example"];
pub const DOMAIN: &str = "trust.example";
const CARD_SERIAL: &str = "2d6bddb8ad096c2d";
/// The staff member's own profile, which they may not act on.
pub const OWN_HOLDER_ID: &str = "100000000009";
const STAFF_USERNAME: &str = "fuzz.manager";
const STAFF_PASSWORD: &str = "hostile input finds no five hundreds";

/// A child process killed when dropped, whatever happened before.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running server (once [`Server::serve`] has started it); stopped when dropped.
pub struct Server {
    pub base: String,
    pub dir: PathBuf,
    binary: PathBuf,
    settings: Vec<(String, String)>,
    client: reqwest::Client,
    jar: Arc<Jar>,
    child: Option<Killed>,
}

impl Server {
    /// A server to be in `dir`, with `more` settings on top of this module's.
    pub fn new(binary: &Path, dir: &Path, more: &[(&str, &str)]) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("find a free port")?
            .port();
        let base = format!("http://127.0.0.1:{port}");
        // PIV card steps answer 503 without trust anchors: give them a test CA's.
        let anchors = dir.join("piv-anchors.pem");
        let ca = TestCa::new("Schemathesis test CA")?;
        std::fs::write(&anchors, ca.cert_pem())
            .with_context(|| format!("write {}", anchors.display()))?;
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let mut settings: Vec<(String, String)> = [
            ("UNLOCK_LISTEN", format!("127.0.0.1:{port}")),
            ("UNLOCK_PUBLIC_URL", base.clone()),
            (
                "UNLOCK_DATABASE_URL",
                format!("sqlite://{}", path("unlock.db")),
            ),
            ("UNLOCK_DATA_DIR", path("")),
            ("UNLOCK_METRICS_LISTEN", String::new()),
            ("UNLOCK_STATIC_DIR", path("no-app")),
            (
                "UNLOCK_CARD_MASTER_KEY",
                "00112233445566778899aabbccddeeff".into(),
            ),
            (
                "UNLOCK_CARDS__PIV_TRUST_ANCHORS_FILE",
                path("piv-anchors.pem"),
            ),
            ("UNLOCK_OUTBOX__POLL_INTERVAL_MS", "100".into()),
            // A sign-in that waits too long for a password-hashing slot answers 503, which
            // the run counts as a failure: on a busy test machine, let it wait.
            ("UNLOCK_STAFF__ARGON2_WAIT_MS", "30000".into()),
            ("RUST_LOG", "warn".into()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        settings.extend(
            more.iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
        );
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .context("build the HTTP client")?;
        Ok(Self {
            base,
            dir: dir.to_owned(),
            binary: binary.to_owned(),
            settings,
            client,
            jar,
            child: None,
        })
    }

    /// The server's command with this server's settings, and none from our environment.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.current_dir(&self.dir);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("UNLOCK_") {
                command.env_remove(key);
            }
        }
        command.envs(self.settings.iter().map(|(key, value)| (key, value)));
        command
    }

    /// Runs a command of the server's CLI on its database; returns what it printed.
    fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        cmd::output(self.command().args(args))
    }

    /// Allow-lists the holder's domain and imports the holder and the staff member's own
    /// profile; then adds the staff member and returns what `staff add --json` handed over.
    pub fn seed(&self) -> anyhow::Result<String> {
        let csv = self.dir.join("holders.csv");
        let emails = HOLDER_EMAILS.join(";");
        std::fs::write(
            &csv,
            format!(
                "holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model\n\
                 {HOLDER_ID},Jane Doe,Trust,{emails},{CARD_SERIAL},active,2099-12-31,unlock-cr/1\n\
                 {OWN_HOLDER_ID},Sam Staff,Trust,,,,,\n"
            ),
        )
        .with_context(|| format!("write {}", csv.display()))?;
        self.cli(&["allowlist", "add", DOMAIN])?;
        self.cli(&["import", &csv.to_string_lossy()])?;
        self.cli(&[
            "staff",
            "add",
            STAFF_USERNAME,
            "--role",
            "ra-manager",
            "--holder",
            OWN_HOLDER_ID,
            "--json",
        ])
    }

    /// Starts `serve` and waits for `/readyz`.
    pub async fn serve(&mut self) -> anyhow::Result<()> {
        let log = self.dir.join("server.log");
        let file =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let mut child = Killed(
            self.command()
                .arg("serve")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .context("start unlock-server")?,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = child.0.try_wait().context("check on unlock-server")? {
                bail!("unlock-server exited ({status}): {}", self.log());
            }
            let ready = self.client.get(format!("{}/readyz", self.base)).send();
            if ready.await.is_ok_and(|reply| reply.status().is_success()) {
                self.child = Some(child);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("unlock-server was not ready within 30 s: {}", self.log())
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// First sign-in (password, authenticator code, new password), then a journey for the
    /// holder verified with the code from its email; returns the `Cookie` header that
    /// carries both.
    pub async fn sign_in_and_verify(&self, handed: &str) -> anyhow::Result<String> {
        let handed: Value =
            serde_json::from_str(handed.trim()).context("staff add --json printed no JSON")?;
        let (Some(password), Some(uri)) = (
            handed["one_time_password"].as_str(),
            handed["otpauth_uri"].as_str(),
        ) else {
            bail!("staff add --json printed {handed}");
        };
        let totp = totp_rs::Totp::from_url(uri)
            .map_err(|error| anyhow::anyhow!("the otpauth address: {error}"))?;
        let begin = json!({"username": STAFF_USERNAME, "password": password});
        self.post("/api/staff/sign-in", begin).await?;
        let code = totp.generate_current().to_string();
        self.post("/api/staff/sign-in/code", json!({"code": code}))
            .await?;
        let chosen = json!({"password": STAFF_PASSWORD});
        self.post("/api/staff/sign-in/new-password", chosen).await?;

        self.post("/api/journeys", json!({"email": HOLDER_EMAILS[0]}))
            .await?;
        let code = self.emailed_code().await?;
        let view = self
            .post("/api/journey/code", json!({"code": code}))
            .await?;
        if view["stage"] != "verified" {
            bail!("the emailed code did not verify the journey: {view}");
        }
        let url = format!("{}/api/staff/me", self.base)
            .parse()
            .context("the server's address")?;
        let cookies = self.jar.cookies(&url).context("no cookies were set")?;
        Ok(cookies.to_str().context("the cookies")?.to_owned())
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let reply = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("POST {path}: {status} {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("POST {path} answered {text}"))
    }

    /// The one-time code in the first email the outbox wrote to the mail folder.
    async fn emailed_code(&self) -> anyhow::Result<String> {
        let mail = self.dir.join("mail");
        for _ in 0..200 {
            for entry in std::fs::read_dir(&mail).into_iter().flatten().flatten() {
                let raw = std::fs::read(entry.path()).unwrap_or_default();
                let text = mail_parser::MessageParser::default()
                    .parse(&raw)
                    .and_then(|message| message.body_text(0).map(|text| text.into_owned()));
                let code = text.as_deref().and_then(|text| {
                    let (_, after) = text.split_once("Your security code is ")?;
                    after
                        .get(..6)
                        .filter(|code| code.bytes().all(|b| b.is_ascii_digit()))
                });
                if let Some(code) = code {
                    return Ok(code.to_owned());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("no code email in {} within 10 s", mail.display())
    }
}
