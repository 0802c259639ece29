//! Debian's Chromium, headless, with the unpacked extension loaded; stopped with every process
//! it started (renderers, the native host) when dropped. Tests reach inside it through the
//! DevTools protocol, for instance to stop the extension's service worker as the browser
//! itself does when the worker is idle.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// Where Debian's package puts the browser itself (the `/usr/bin/chromium` wrapper script
/// adds nothing the tests need).
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// The unpacked extension in this repository.
pub fn extension_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../native-bridge/extension");
    dir.canonicalize().unwrap_or(dir)
}

/// A headless Chromium showing one page.
#[derive(Debug)]
pub struct Chromium {
    process: Child,
    user_data_dir: PathBuf,
}

impl Chromium {
    /// Opens `url` with a fresh profile in `user_data_dir`, with `extension` loaded if given,
    /// and `PCSCLITE_CSOCK_NAME` set for the native host it starts.
    pub fn open(
        url: &str,
        user_data_dir: &Path,
        extension: Option<&Path>,
        pcsc_socket: &Path,
    ) -> Self {
        std::fs::create_dir_all(user_data_dir).unwrap();
        let mut command = Command::new(CHROMIUM);
        command
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", user_data_dir.display()));
        match extension {
            Some(extension) => command
                .arg(format!("--load-extension={}", extension.display()))
                .arg(format!(
                    "--disable-extensions-except={}",
                    extension.display()
                )),
            None => command.arg("--disable-extensions"),
        };
        let log = std::fs::File::create(user_data_dir.join("chromium.log")).unwrap();
        let process = command
            .arg(url)
            .env("PCSCLITE_CSOCK_NAME", pcsc_socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group, so that dropping it can stop every process it started.
            .process_group(0)
            .spawn()
            .expect("start Chromium (apt-get install chromium)");
        Self {
            process,
            user_data_dir: user_data_dir.to_owned(),
        }
    }

    /// A DevTools connection to the browser, once it is listening.
    pub fn devtools(&self) -> DevTools {
        // Chromium writes the port it chose, and the browser's path, into this file.
        let file = self.user_data_dir.join("DevToolsActivePort");
        crate::harness::wait_until(|| {
            std::fs::read_to_string(&file).is_ok_and(|text| text.lines().count() >= 2)
        });
        let text = std::fs::read_to_string(&file).unwrap();
        let mut lines = text.lines();
        let (port, path) = (lines.next().unwrap(), lines.next().unwrap());
        let (socket, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}{path}"))
            .expect("connect to Chromium's DevTools");
        DevTools { socket, next_id: 1 }
    }
}

/// The browser's DevTools protocol, one command at a time.
#[derive(Debug)]
pub struct DevTools {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next_id: u64,
}

impl DevTools {
    /// Sends a command and returns its result, passing over events meanwhile.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({"id": id, "method": method, "params": params});
        self.socket
            .send(tungstenite::Message::text(command.to_string()))
            .unwrap();
        loop {
            let message = self.socket.read().expect("a DevTools message");
            let Ok(text) = message.to_text() else {
                continue;
            };
            let Ok(reply) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The target ids of the extension's running service workers.
    pub fn extension_workers(&mut self, extension_id: &str) -> Vec<String> {
        let prefix = format!("chrome-extension://{extension_id}/");
        self.call("Target.getTargets", json!({}))["targetInfos"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|target| {
                target["type"] == "service_worker"
                    && target["url"]
                        .as_str()
                        .is_some_and(|url| url.starts_with(&prefix))
            })
            .filter_map(|target| target["targetId"].as_str().map(str::to_owned))
            .collect()
    }

    /// Stops a target, as the browser stops an idle service worker.
    pub fn close(&mut self, target_id: &str) {
        self.call("Target.closeTarget", json!({"targetId": target_id}));
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.process.wait();
    }
}
