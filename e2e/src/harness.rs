//! Test harness: a private `pcscd` with the `vpcd` driver, and the `virtual-card` binary in
//! its reader, as an `unlock-cr/1` card ([`Card::start`]) or a `piv/1` card
//! ([`Card::start_piv`]). Used by this crate's tests and by the bridge's.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::piv_ca::CaFiles;

/// The first of vpcd's two readers.
pub const READER: &str = "Virtual PCD 00 00";

/// Hands pcscd a listening socket at a private path, the systemd way, so several daemons
/// can run at once and none touches /run/pcscd.
const HANDOVER: &str = r#"
import os, socket, sys
path, confdir = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(16)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execvp("pcscd", ["pcscd", "-f", "-c", confdir])
"#;

/// A child process killed when the test ends, however it ends.
#[derive(Debug)]
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private pcscd, stopped when dropped.
#[derive(Debug)]
pub struct PrivatePcscd {
    /// Give this to clients as `PCSCLITE_CSOCK_NAME`.
    pub socket: PathBuf,
    /// vpcd's first port; the virtual card connects here.
    pub vpcd_port: u16,
    conf: PathBuf,
    daemon: Killed,
}

impl PrivatePcscd {
    /// Starts a daemon whose files live in `dir`.
    pub fn start(dir: &Path) -> Self {
        let vpcd_port = free_port_pair();
        let conf = dir.join("readers");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("vpcd"),
            format!(
                "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:{vpcd_port}\n\
                 LIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID {vpcd_port}\n"
            ),
        )
        .unwrap();
        let socket = dir.join("pcscd.comm");
        let daemon = spawn_daemon(&socket, &conf);
        Self {
            socket,
            conf,
            vpcd_port,
            daemon,
        }
    }
}

impl PrivatePcscd {
    /// Stops the daemon, as when the smart card service is switched off.
    pub fn stop(&mut self) {
        let _ = self.daemon.0.kill();
        let _ = self.daemon.0.wait();
    }

    /// Stops the daemon and starts it again on the same socket and vpcd port, as when an
    /// administrator restarts the service.
    pub fn restart(&mut self) {
        let _ = self.daemon.0.kill();
        let _ = self.daemon.0.wait();
        self.daemon = spawn_daemon(&self.socket, &self.conf);
    }
}

/// Starts pcscd listening on `socket`, and waits until it answers there.
fn spawn_daemon(socket: &Path, conf: &Path) -> Killed {
    let _ = std::fs::remove_file(socket);
    let daemon = Command::new("/usr/bin/python3")
        .args(["-c", HANDOVER])
        .arg(socket)
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pcscd (apt-get install pcscd vsmartcard-vpcd)");
    let daemon = Killed(daemon);
    wait_until(|| std::os::unix::net::UnixStream::connect(socket).is_ok());
    daemon
}

/// vpcd listens on PORT and PORT+1 (two readers): find two free ones in a row.
fn free_port_pair() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// Polls a condition for up to 15 s.
pub fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The `virtual-card` binary, driven through its standard input; killed when dropped.
#[derive(Debug)]
pub struct Card {
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    _process: Killed,
}

impl Card {
    /// Starts `binary` (the `virtual-card` executable) in vpcd's first reader: an
    /// `unlock-cr/1` card unless `extra` says `--profile piv`.
    pub fn start(binary: &Path, vpcd_port: u16, extra: &[&str]) -> Self {
        let mut process = Command::new(binary)
            .args(["--vpcd", &format!("127.0.0.1:{vpcd_port}")])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = process.stdin.take().unwrap();
        let output = BufReader::new(process.stdout.take().unwrap());
        let mut card = Self {
            input,
            output,
            _process: Killed(process),
        };
        assert_eq!(card.line(), "ready");
        card
    }

    /// Starts `binary` as a `piv/1` card whose certificates the CA in `ca` issues (made there
    /// if it is not yet), with `extra` arguments such as `--guid`, `--puk`, `--locked`.
    pub fn start_piv(binary: &Path, vpcd_port: u16, ca: &CaFiles, extra: &[&str]) -> Self {
        let mut args: Vec<&str> = vec!["--profile", "piv", "--ca-cert"];
        let (cert, key) = (ca.cert.to_string_lossy(), ca.key.to_string_lossy());
        args.push(&cert);
        args.push("--ca-key");
        args.push(&key);
        args.extend_from_slice(extra);
        Self::start(binary, vpcd_port, &args)
    }

    /// The card's `state`: its identity, its counters and whether it is in the reader.
    pub fn state(&mut self) -> serde_json::Value {
        let answer = self.command("state");
        serde_json::from_str(&answer).unwrap_or_else(|_| panic!("state: {answer}"))
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    /// Sends one control command and returns its answer line.
    pub fn command(&mut self, command: &str) -> String {
        writeln!(self.input, "{command}").unwrap();
        self.line()
    }
}

/// Runs the ignored test `name` of the current test binary in a child process that reaches
/// `pcscd` (libpcsclite reads `PCSCLITE_CSOCK_NAME` from the environment), and returns its
/// output; panics if it failed or did not run.
pub fn run_client_test(name: &str, pcscd: &PrivatePcscd) -> String {
    run_client_test_on(name, &pcscd.socket)
}

/// As [`run_client_test`], with `PCSCLITE_CSOCK_NAME` set to `socket` (which may lead nowhere).
pub fn run_client_test_on(name: &str, socket: &Path) -> String {
    let client = client_test(name, socket)
        .output()
        .expect("run the client side");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&client.stdout),
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(client.status.success(), "client side failed:\n{report}");
    assert!(
        report.contains("1 passed"),
        "the client side did not run:\n{report}"
    );
    report
}

/// The command that runs the ignored test `name` of the current test binary as a PC/SC
/// client of the daemon at `socket`; add arguments through the environment.
pub fn client_test(name: &str, socket: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PCSCLITE_CSOCK_NAME", socket);
    command
}
