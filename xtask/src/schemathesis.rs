//! Hostile HTTP input, a step of `cargo xtask test`: schemathesis (PyPI, pinned, in a
//! virtualenv under the target folder) against the OpenAPI document the real server serves.
//! Every operation is tried twice, each run on a fresh server: by a stranger whose cookies
//! name nothing, on the real limits; then by a signed-in RA manager with a verified journey,
//! on limits raised so that fuzzed requests reach the rules behind the lock-outs. A run fails
//! on any 5xx, and on any answer the document does not describe.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use unlock_testkit::piv_ca::TestCa;

use crate::cmd;

/// The schemathesis release installed.
pub const VERSION: &str = "4.32.5";
/// No server error, and a status, content type, headers and body that the document gives
/// the operation.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";
/// The same cases on every run, so a failure can be replayed.
const SEED: &str = "13";
/// Schemathesis's own `--max-time` keeps fuzzing until the time is spent, so the bound on a
/// run's wall time is kept here instead.
const RUN_BOUND: Duration = Duration::from_secs(180);
/// Limits raised for the signed-in run (the stranger's run keeps the real ones).
const RAISED_LIMITS: [&str; 9] = [
    "UNLOCK_THROTTLE__CLIENT_STARTS_PER_HOUR",
    "UNLOCK_THROTTLE__CLIENT_FAILURES_PER_HOUR",
    "UNLOCK_THROTTLE__HOLDER_VOIDED_CODES_PER_DAY",
    "UNLOCK_THROTTLE__HOLDER_WRONG_CODES_PER_DAY",
    "UNLOCK_THROTTLE__HOLDER_WRONG_CODES_IN_ALL",
    "UNLOCK_THROTTLE__STAFF_FAILURES_PER_ACCOUNT",
    "UNLOCK_THROTTLE__STAFF_FAILURES_PER_CLIENT",
    "UNLOCK_JOURNEY__CODES_PER_HOUR",
    "UNLOCK_JOURNEY__CODES_PER_DAY",
];
/// The holder the fuzzed staff requests and the journey are about: the document's example
/// user id and card serial, so schemathesis's examples name something that exists.
const HOLDER_ID: &str = "123456789012";
const HOLDER_EMAIL: &str = "jane.doe@trust.example";
const CARD_SERIAL: &str = "2d6bddb8ad096c2d";
const STAFF_USERNAME: &str = "fuzz.manager";
/// The signed-in staff member's own profile, which they may not act on.
const OWN_HOLDER_ID: &str = "100000000009";
const STAFF_PASSWORD: &str = "hostile input finds no five hundreds";

/// Installs schemathesis, builds the server, and runs schemathesis as a stranger and then
/// as a signed-in RA manager.
pub fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let st = ensure_installed()?;
    cmd::run(cmd::cargo().args(["build", "-p", "unlock-server", "--locked"]))?;
    let binary = cmd::target_dir().join("debug").join("unlock-server");
    let scratch = Scratch::new()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start an async runtime")?;

    println!("    as a stranger whose cookies name no journey and no session, on the real limits");
    let mut server = Server::new(&binary, &scratch.0.join("stranger"), &[])?;
    runtime.block_on(server.serve())?;
    let forged = "0".repeat(64);
    let cookie = format!("unlock_staff={forged}; unlock_journey={forged}");
    server.fuzz(&st, 40, &cookie, &[])?;
    drop(server);

    println!("    as a signed-in RA manager with a verified journey, on raised limits");
    let raised: Vec<(&str, &str)> = RAISED_LIMITS.iter().map(|key| (*key, "1000000")).collect();
    let mut server = Server::new(&binary, &scratch.0.join("staff"), &raised)?;
    let handed = server.seed()?;
    let cookie = runtime.block_on(async {
        server.serve().await?;
        server.sign_in_and_verify(&handed).await
    })?;
    // Signing out would end the session the rest of the run relies on.
    server.fuzz(&st, 80, &cookie, &["staff_sign_out"])?;
    drop(server);

    println!(
        "    schemathesis found nothing outside the document ({} s in all)",
        started.elapsed().as_secs()
    );
    Ok(())
}

/// schemathesis's command line, installed at [`VERSION`] unless it already is.
fn ensure_installed() -> anyhow::Result<PathBuf> {
    let venv = cmd::target_dir().join("tools").join("schemathesis");
    let st = venv.join("bin").join("st");
    let found = Command::new(&st)
        .arg("--version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    if found.split_whitespace().any(|word| word == VERSION) {
        println!("    schemathesis {VERSION} is already installed");
        return Ok(st);
    }
    cmd::run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )
    .context("make a Python virtualenv (Debian: apt-get install python3-venv)")?;
    cmd::run(Command::new(venv.join("bin").join("python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("schemathesis=={VERSION}"),
    ]))?;
    Ok(st)
}

/// A fresh folder under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "unlock-schemathesis-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed when dropped, whatever happened before.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `unlock-server` on a fresh SQLite file in its own folder, on a free loopback port, with
/// emails written to that folder; stopped when dropped.
struct Server {
    base: String,
    binary: PathBuf,
    dir: PathBuf,
    settings: Vec<(String, String)>,
    client: reqwest::Client,
    jar: Arc<Jar>,
    child: Option<Killed>,
}

impl Server {
    fn new(binary: &Path, dir: &Path, more: &[(&str, &str)]) -> anyhow::Result<Self> {
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
            ("RUST_LOG", "warn".into()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        settings.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .context("build the HTTP client")?;
        Ok(Self {
            base,
            binary: binary.to_owned(),
            dir: dir.to_owned(),
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

    /// The holder, the staff member's own profile, and the staff member; returns what
    /// `staff add --json` handed over.
    fn seed(&self) -> anyhow::Result<String> {
        let csv = self.dir.join("holders.csv");
        std::fs::write(
            &csv,
            format!(
                "holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model\n\
                 {HOLDER_ID},Jane Doe,Trust,{HOLDER_EMAIL},{CARD_SERIAL},active,2099-12-31,unlock-cr/1\n\
                 {OWN_HOLDER_ID},Sam Staff,Trust,,,,,\n"
            ),
        )
        .with_context(|| format!("write {}", csv.display()))?;
        self.cli(&["allowlist", "add", "trust.example"])?;
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
    async fn serve(&mut self) -> anyhow::Result<()> {
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

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// First sign-in (password, authenticator code, new password), then a journey for the
    /// holder verified with the code from its email; returns the `Cookie` header that
    /// carries both.
    async fn sign_in_and_verify(&self, handed: &str) -> anyhow::Result<String> {
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
        let username = STAFF_USERNAME;
        self.post(
            "/api/staff/sign-in",
            json!({"username": username, "password": password}),
        )
        .await?;
        let code = totp.generate_current().to_string();
        self.post("/api/staff/sign-in/code", json!({"code": code}))
            .await?;
        self.post(
            "/api/staff/sign-in/new-password",
            json!({"password": STAFF_PASSWORD}),
        )
        .await?;

        self.post("/api/journeys", json!({"email": HOLDER_EMAIL}))
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

    /// Runs schemathesis on every operation but `excluded`, up to `max_examples` cases each
    /// per phase, sending `cookie`; fails on what it finds or when it runs over its bound.
    fn fuzz(
        &self,
        st: &Path,
        max_examples: u32,
        cookie: &str,
        excluded: &[&str],
    ) -> anyhow::Result<()> {
        let mut args: Vec<String> = [
            "run",
            &format!("{}/api/openapi.json", self.base),
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            &max_examples.to_string(),
            "--seed",
            SEED,
            "--workers",
            "2",
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
        ]
        .map(str::to_owned)
        .into();
        for operation in excluded {
            args.extend(["--exclude-operation-id".to_owned(), (*operation).to_owned()]);
        }
        println!("    $ {} {} -H 'Cookie: …'", st.display(), args.join(" "));
        let started = Instant::now();
        let mut child = Killed(
            Command::new(st)
                .args(&args)
                .args(["-H", &format!("Cookie: {cookie}")])
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .spawn()
                .context("start schemathesis")?,
        );
        let status = loop {
            if let Some(status) = child.0.try_wait().context("check on schemathesis")? {
                break status;
            }
            if started.elapsed() > RUN_BOUND {
                bail!("schemathesis ran over its {} s bound", RUN_BOUND.as_secs());
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if !status.success() {
            let log = self.log();
            let errors: Vec<&str> = log.lines().filter(|line| line.contains("ERROR")).collect();
            bail!(
                "schemathesis found answers outside the document ({status}); the server's errors:\n{}",
                errors.join("\n")
            );
        }
        println!("    passed in {} s", started.elapsed().as_secs());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// The step on its own: `cargo test -p xtask -- --ignored schemathesis`.
    #[test]
    #[ignore = "installs schemathesis, then fuzzes two servers for about two minutes"]
    fn schemathesis_finds_nothing_outside_the_document() {
        super::run().unwrap();
    }
}
