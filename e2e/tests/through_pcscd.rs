//! The virtual card plugged into a real, private `pcscd` through the `vpcd` driver, driven by
//! the real `pcsc` crate: what the bridge will see.
//!
//! libpcsclite finds a private daemon through `PCSCLITE_CSOCK_NAME`, read from this process's
//! environment. Rather than change our own environment, the harness test starts the daemon
//! and the card, then runs the client test (ignored on its own) in a child process with the
//! variable set.

use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use unlock_protocol::card_profile::{AID, card_key, cryptogram, pin_block, receipt};

const MASTER_KEY: &str = "35a47d45d75853e026695fffa198b79d";
const SERIAL: &str = "2d6bddb8ad096c2d";
const READER: &str = "Virtual PCD 00 00";

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
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct PrivatePcscd {
    socket: PathBuf,
    vpcd_port: u16,
    _daemon: Killed,
}

impl PrivatePcscd {
    fn start(dir: &Path) -> Self {
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
        let daemon = Command::new("/usr/bin/python3")
            .args(["-c", HANDOVER])
            .arg(&socket)
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pcscd (apt-get install pcscd vsmartcard-vpcd)");
        let pcscd = Self {
            socket,
            vpcd_port,
            _daemon: Killed(daemon),
        };
        wait_until(|| std::os::unix::net::UnixStream::connect(&pcscd.socket).is_ok());
        pcscd
    }
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

fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The `virtual-card` binary, driven through its standard input.
struct Card {
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    _process: Killed,
}

impl Card {
    fn start(vpcd_port: u16, extra: &[&str]) -> Self {
        let mut process = Command::new(env!("CARGO_BIN_EXE_virtual-card"))
            .args([
                "--vpcd",
                &format!("127.0.0.1:{vpcd_port}"),
                "--serial",
                SERIAL,
                "--master-key",
                MASTER_KEY,
            ])
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

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    fn command(&mut self, command: &str) -> String {
        writeln!(self.input, "{command}").unwrap();
        self.line()
    }
}

#[test]
fn the_virtual_card_answers_through_a_real_pcscd() {
    let dir = tempfile::tempdir().unwrap();
    let pcscd = PrivatePcscd::start(dir.path());
    let mut card = Card::start(pcscd.vpcd_port, &["--locked", "--passcode", "284759"]);

    let client = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "client_side",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PCSCLITE_CSOCK_NAME", &pcscd.socket)
        .output()
        .unwrap();
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

    // The card itself agrees: a new passcode and a full retry counter.
    assert_eq!(card.command("pin-is 905173"), "true");
    let state: serde_json::Value = serde_json::from_str(&card.command("state")).unwrap();
    assert_eq!(state["pin_tries"], 3);
    // The wrong cryptogram cost a try; the right one that followed restored the counter.
    assert_eq!(state["admin_tries"], 10);
    assert_eq!(card.command("remove"), "ok");
    assert_eq!(card.command("quit"), "");
}

/// Runs in a child process whose `PCSCLITE_CSOCK_NAME` names the private daemon.
#[test]
#[ignore = "run by the_virtual_card_answers_through_a_real_pcscd in a child process"]
fn client_side() {
    let context = pcsc::Context::establish(pcsc::Scope::User).expect("reach the private pcscd");
    let readers: Vec<String> = context
        .list_readers_owned()
        .unwrap()
        .into_iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect();
    assert!(readers.iter().any(|r| r == READER), "{readers:?}");

    let reader = CString::new(READER).unwrap();
    wait_until(|| {
        let mut states = [pcsc::ReaderState::new(
            reader.as_c_str(),
            pcsc::State::UNAWARE,
        )];
        context
            .get_status_change(Duration::from_millis(100), &mut states)
            .is_ok()
            && states[0].event_state().contains(pcsc::State::PRESENT)
    });
    let card = context
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .expect("connect to the card");
    let mut buffer = [0u8; 258];
    let mut send =
        |apdu: &[u8]| -> Vec<u8> { card.transmit(apdu, &mut buffer).expect("transmit").to_vec() };

    assert_eq!(
        send(&[&[0x00, 0xA4, 0x04, 0x00, 0x08][..], &AID].concat()),
        [0x90, 0x00]
    );
    let serial: [u8; 8] = send(&[0x00, 0xCA, 0x00, 0x5A, 0x00])[..8]
        .try_into()
        .unwrap();
    assert_eq!(hex::encode(serial), SERIAL);
    assert_eq!(
        send(&[0x00, 0x20, 0x00, 0x80]),
        [0x69, 0x83],
        "the card starts blocked"
    );

    let master: [u8; 16] = hex::decode(MASTER_KEY).unwrap().try_into().unwrap();
    let key = card_key(&master, &serial);
    let challenge = |send: &mut dyn FnMut(&[u8]) -> Vec<u8>| -> [u8; 16] {
        let answer = send(&[0x00, 0x84, 0x00, 0x00, 0x10]);
        assert_eq!(answer[16..], [0x90, 0x00]);
        answer[..16].try_into().unwrap()
    };

    // A wrong cryptogram is refused and counted.
    let first = challenge(&mut send);
    let mut wrong = cryptogram(&key, &first, &serial);
    wrong[15] ^= 0x55;
    assert_eq!(
        send(&[&[0x00, 0x82, 0x00, 0x01, 0x10][..], &wrong].concat()),
        [0x69, 0x82]
    );

    // The right one unblocks and sets the new passcode; the receipt proves it.
    let second = challenge(&mut send);
    let right = cryptogram(&key, &second, &serial);
    assert_eq!(
        send(&[&[0x00, 0x82, 0x00, 0x01, 0x10][..], &right].concat()),
        [0x90, 0x00]
    );
    let answer = send(
        &[
            &[0x00, 0x2C, 0x02, 0x80, 0x08][..],
            &pin_block("905173").unwrap(),
        ]
        .concat(),
    );
    assert_eq!(answer[16..], [0x90, 0x00]);
    assert_eq!(answer[..16], receipt(&key, &second));
    assert_eq!(
        send(
            &[
                &[0x00, 0x20, 0x00, 0x80, 0x08][..],
                &pin_block("905173").unwrap()
            ]
            .concat()
        ),
        [0x90, 0x00]
    );

    card.disconnect(pcsc::Disposition::LeaveCard)
        .map_err(|(_, error)| error)
        .unwrap();
}
