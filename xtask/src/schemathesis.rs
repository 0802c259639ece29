//! Hostile HTTP input, a step of `cargo xtask test`: schemathesis (PyPI, pinned, in a
//! virtualenv under the target folder) against the OpenAPI document the real server serves.
//! Every operation is tried twice, each run on a fresh server: by a stranger whose cookies
//! name nothing, on the real limits; then by a signed-in RA manager with a verified journey,
//! on limits raised so that fuzzed requests reach the rules behind the lock-outs. A run fails
//! on any 5xx, and on any answer the document does not describe.

mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use self::server::{DOMAIN, HOLDER_EMAILS, HOLDER_ID, Killed, OWN_HOLDER_ID, Server};
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
/// Limits raised for the signed-in run (the stranger's run keeps the real ones), so that
/// fuzzed requests reach the rules behind the lock-outs.
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

/// Installs schemathesis, builds the server, and runs schemathesis as a stranger and then
/// as a signed-in RA manager.
pub fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let st = ensure_installed()?;
    // The binary the workspace's tests build (a no-op after that step): `cargo build`, or
    // `-p unlock-server`, would unify features differently and compile much of it again.
    cmd::run(cmd::cargo().args([
        "test",
        "--workspace",
        "--test",
        "api",
        "--locked",
        "--no-run",
    ]))?;
    let binary = cmd::target_dir().join("debug").join("unlock-server");
    let scratch = Scratch::new()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start an async runtime")?;

    println!("    as a stranger whose cookies name no journey and no session, on the real limits");
    let mut server = Server::new(&binary, &scratch.0.join("stranger"), &[])?;
    server.seed()?;
    runtime.block_on(server.serve())?;
    let forged = "0".repeat(64);
    let cookie = format!("unlock_staff={forged}; unlock_journey={forged}");
    fuzz(&st, &server, 60, &cookie, &[])?;
    drop(server);

    println!("    as a signed-in RA manager with a verified journey, on raised limits");
    let mut settings: Vec<(&str, &str)> =
        RAISED_LIMITS.iter().map(|key| (*key, "1000000")).collect();
    // So that approving an added address has a rule to apply.
    settings.push(("UNLOCK_STAFF__FOUR_EYES_FOR_ADDED_ADDRESSES", "true"));
    let mut server = Server::new(&binary, &scratch.0.join("staff"), &settings)?;
    let handed = server.seed()?;
    let cookie = runtime.block_on(async {
        server.serve().await?;
        server.sign_in_and_verify(&handed).await
    })?;
    // Signing out would end the session the rest of the run relies on.
    fuzz(&st, &server, 150, &cookie, &["staff_sign_out"])?;
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

/// schemathesis's configuration: half the values it draws for these parameters name what
/// the server holds (or nearly), so requests get past "not found" to the rules behind.
fn config() -> String {
    let [email, other_email] = HOLDER_EMAILS;
    format!(
        "[dictionaries.holders]\nvalues = [\"{HOLDER_ID}\", \"{OWN_HOLDER_ID}\"]\n\
         [dictionaries.addresses]\n\
         values = [\"{email}\", \"{other_email}\", \"new.person@{DOMAIN}\", \"x@other.example\"]\n\
         [dictionaries.domains]\nvalues = [\"{DOMAIN}\", \"other.example\"]\n\
         [parameters]\n\
         \"path.id\" = {{ dictionary = \"holders\", probability = 0.5 }}\n\
         \"path.email\" = {{ dictionary = \"addresses\", probability = 0.5 }}\n\
         \"body.email\" = {{ dictionary = \"addresses\", probability = 0.5 }}\n\
         \"path.domain\" = {{ dictionary = \"domains\", probability = 0.5 }}\n"
    )
}

/// Runs schemathesis on every operation but `excluded`, up to `max_examples` cases each
/// per phase, sending `cookie`; fails on what it finds or when it runs over its bound.
fn fuzz(
    st: &Path,
    server: &Server,
    max_examples: u32,
    cookie: &str,
    excluded: &[&str],
) -> anyhow::Result<()> {
    let config_file = server.dir.join("schemathesis.toml");
    std::fs::write(&config_file, config())
        .with_context(|| format!("write {}", config_file.display()))?;
    let mut args: Vec<String> = [
        "--config-file",
        &config_file.to_string_lossy(),
        "run",
        &format!("{}/api/openapi.json", server.base),
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
            .current_dir(&server.dir)
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
        let log = server.log();
        let errors: Vec<&str> = log.lines().filter(|line| line.contains("ERROR")).collect();
        bail!(
            "schemathesis found answers outside the document ({status}); the server's errors:\n{}",
            errors.join("\n")
        );
    }
    println!("    passed in {} s", started.elapsed().as_secs());
    Ok(())
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

#[cfg(test)]
mod tests {
    /// The step on its own: `cargo test -p xtask -- --ignored schemathesis`.
    #[test]
    #[ignore = "installs schemathesis, then fuzzes two servers for a couple of minutes"]
    fn schemathesis_finds_nothing_outside_the_document() {
        super::run().unwrap();
    }
}
