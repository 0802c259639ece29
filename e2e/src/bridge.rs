//! The `unlock-bridge` binary driven over its standard input and output, as the browser
//! drives it: native-messaging frames in, replies and events out.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The origin the test pages are served from, unless a test says otherwise.
pub const PAGE_ORIGIN: &str = "http://127.0.0.1:8443";

/// The argument the browser passes for the project's extension.
pub fn extension_caller() -> String {
    "chrome-extension://ooiaefjbcbkkddillkmdbldfflinfgki/".to_owned()
}

/// `unlock-bridge` in its own directory with its config file beside it, as an installer
/// lays it out; killed when dropped.
#[derive(Debug)]
pub struct BridgeProcess {
    input: Option<ChildStdin>,
    frames: Receiver<Value>,
    /// Events that arrived while waiting for a reply.
    events: VecDeque<Value>,
    next_id: u64,
    /// The host's log (its standard error).
    pub log: PathBuf,
    /// The installed copy of the binary.
    pub binary: PathBuf,
    process: Child,
}

impl BridgeProcess {
    /// Copies `binary` into `dir`, writes `config` beside it as `unlock-bridge.toml`, and
    /// starts it as the browser would for `caller`, reaching pcscd through `pcsc_socket`.
    pub fn start(
        binary: &Path,
        dir: &Path,
        config: &str,
        caller: &str,
        pcsc_socket: &Path,
    ) -> Self {
        Self::spawn(&install_copy(binary, dir, config), caller, pcsc_socket)
    }

    /// Starts an installed copy (see [`install_copy`]); its log goes beside it.
    pub fn spawn(installed: &Path, caller: &str, pcsc_socket: &Path) -> Self {
        let log = installed.with_file_name("bridge.log");
        let mut command = Command::new(installed);
        command
            .arg(caller)
            .env("PCSCLITE_CSOCK_NAME", pcsc_socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut process = spawn_fresh_copy(&mut command);
        let mut output = process.stdout.take().unwrap();
        let (sender, frames) = channel();
        std::thread::spawn(move || {
            while let Ok(Some(text)) = read_frame(&mut output) {
                let value = serde_json::from_str(&text).unwrap_or_else(|_| {
                    panic!("the bridge wrote something that is not JSON: {text}")
                });
                if sender.send(value).is_err() {
                    break;
                }
            }
        });
        Self {
            input: process.stdin.take(),
            frames,
            events: VecDeque::new(),
            next_id: 1,
            log,
            binary: installed.to_owned(),
            process,
        }
    }

    /// Sends raw bytes as one frame.
    pub fn send_frame(&mut self, body: &[u8]) {
        let input = self.input.as_mut().expect("input still open");
        let length = u32::try_from(body.len()).unwrap().to_ne_bytes();
        input.write_all(&[&length[..], body].concat()).unwrap();
        input.flush().unwrap();
    }

    /// Sends `request` (its `id` and `origin` filled in unless given) without waiting.
    pub fn send(&mut self, mut request: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let object = request.as_object_mut().expect("a JSON object");
        object.entry("id").or_insert(json!(id));
        object.entry("origin").or_insert(json!(PAGE_ORIGIN));
        let id = object["id"].as_u64().unwrap_or(id);
        self.send_frame(request.to_string().as_bytes());
        id
    }

    /// Sends `request` and returns its reply.
    pub fn request(&mut self, request: Value) -> Value {
        let id = self.send(request);
        self.reply(id)
    }

    /// Waits up to 20 s for the reply to `id`, keeping events that come first.
    pub fn reply(&mut self, id: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let frame = self.next_frame(deadline).expect("a reply in time");
            if frame["type"] == "event" {
                self.events.push_back(frame);
            } else {
                assert_eq!(
                    frame["id"],
                    json!(id),
                    "replies answer in any order, but one each"
                );
                return frame;
            }
        }
    }

    /// The next frame of any kind, if one comes before `deadline`.
    pub fn next_frame(&mut self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.frames.recv_timeout(left).ok()
    }

    /// The next pushed event within `wait`.
    pub fn event(&mut self, wait: Duration) -> Option<Value> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        let frame = self.next_frame(Instant::now() + wait)?;
        assert_eq!(frame["type"], "event", "an unexpected reply: {frame}");
        Some(frame)
    }

    /// Closes the host's input, as the browser does, and waits for it to exit.
    pub fn close(mut self) -> std::process::ExitStatus {
        drop(self.input.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the bridge did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the host has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Lays out `binary` and its config in `dir`, as an installer would.
pub fn install_copy(binary: &Path, dir: &Path, config: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let installed = dir.join("unlock-bridge");
    std::fs::copy(binary, &installed).expect("copy unlock-bridge (build it first)");
    std::fs::write(dir.join("unlock-bridge.toml"), config).unwrap();
    installed
}

/// Registers an installed copy for Chromium in a private `home`, as `unlock-bridge install
/// --user --browser chromium` does for a person; returns the browser profile folder (the
/// `--user-data-dir`) whose `NativeMessagingHosts/` it wrote to.
pub fn register_for_chromium(installed: &Path, home: &Path) -> PathBuf {
    let mut command = Command::new(installed);
    command
        .args(["install", "--user", "--browser", "chromium"])
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = spawn_fresh_copy(&mut command)
        .wait_with_output()
        .expect("run unlock-bridge install");
    assert!(output.status.success(), "unlock-bridge install: {output:?}");
    let profile = home.join(".config/chromium");
    assert!(
        profile
            .join("NativeMessagingHosts/uk.nhs.smartcard_unlock.json")
            .exists()
    );
    profile
}

/// Starts a binary copied a moment ago. Another test thread forking meanwhile can hold the
/// copy open for writing until its child execs, which makes exec fail with "text file busy"
/// for a moment.
pub fn spawn_fresh_copy(command: &mut Command) -> Child {
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(error) if error.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result.expect("start unlock-bridge"),
        }
    }
}

/// Reads one frame as the browser does; written apart from the host's own framing so that
/// each checks the other.
fn read_frame(input: &mut impl std::io::Read) -> std::io::Result<Option<String>> {
    let mut length = [0u8; 4];
    if input.read_exact(&mut length).is_err() {
        return Ok(None);
    }
    let mut body = vec![0u8; u32::from_ne_bytes(length) as usize];
    input.read_exact(&mut body)?;
    Ok(Some(String::from_utf8(body).expect("UTF-8 frames")))
}
