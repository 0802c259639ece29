//! Debian's Chromium, headless, with the unpacked extension loaded; stopped with every process
//! it started (renderers, the native host) when dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where Debian's package puts the browser itself (the `/usr/bin/chromium` wrapper script
/// adds nothing the tests need).
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// The unpacked extension in this repository.
pub fn extension_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../native-bridge/extension")
}

/// A headless Chromium showing one page.
#[derive(Debug)]
pub struct Chromium {
    process: Child,
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
        Self { process }
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
