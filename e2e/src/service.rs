//! The real `unlock-server` binary with a fresh SQLite database, a real SMTP relay, a card
//! master key and the built single-page app; killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One holder to import.
#[derive(Debug, Clone, Default)]
pub struct Holder<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub emails: &'a [&'a str],
    /// Empty for a holder without a card; a PIV card's GUID.
    pub card_serial: &'a str,
    /// Empty for `unlock-cr/1`.
    pub card_model: &'a str,
    /// A PIV card's escrowed PUK, as the card management system exports it.
    pub card_puk: &'a str,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// `http://127.0.0.1:<port>`, the page's origin.
    pub url: String,
    binary: PathBuf,
    config: PathBuf,
    /// The server's log (standard error).
    pub log: PathBuf,
    child: Child,
}

impl Server {
    /// Imports `holders` (all on the allow-listed `domain`), then serves `static_dir` and the
    /// API from `dir` on a fresh SQLite file there, sending mail through `smtp_url` and
    /// deriving card keys from the hex `master_key`.
    pub fn start(
        binary: &Path,
        dir: &Path,
        smtp_url: &str,
        master_key: &str,
        static_dir: &Path,
        domain: &str,
        holders: &[Holder<'_>],
    ) -> Self {
        let database_url = format!("sqlite://{}", dir.join("unlock.db").display());
        Self::start_on(
            binary,
            dir,
            &database_url,
            smtp_url,
            master_key,
            static_dir,
            domain,
            holders,
            "",
        )
    }

    /// As [`Server::start`], on the empty database `database_url` (SQLite or PostgreSQL),
    /// with `more_config` (TOML) at the end of its configuration file.
    #[allow(clippy::too_many_arguments)]
    pub fn start_on(
        binary: &Path,
        dir: &Path,
        database_url: &str,
        smtp_url: &str,
        master_key: &str,
        static_dir: &Path,
        domain: &str,
        holders: &[Holder<'_>],
        more_config: &str,
    ) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        let url = format!("http://127.0.0.1:{port}");
        let key_file = dir.join("card-master.key");
        std::fs::write(&key_file, format!("{master_key}\n")).unwrap();
        // Only its owner may read a key file: the server refuses any other.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let config = dir.join("unlock.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\npublic_url = {url:?}\n\
                 database_url = {database_url:?}\ndata_dir = {data:?}\n\
                 card_master_key_file = {key_file:?}\nstatic_dir = {static_dir:?}\n\
                 [mail]\nsmtp_url = {smtp_url:?}\n[outbox]\npoll_interval_ms = 100\n\
                 retry_base_ms = 200\n{more_config}",
                data = dir.join("var"),
            ),
        )
        .unwrap();
        let run = |args: &[&str]| {
            let output = Command::new(binary)
                .arg("--config")
                .arg(&config)
                .args(args)
                .output()
                .expect("run unlock-server");
            assert!(
                output.status.success(),
                "unlock-server {args:?}: {output:?}"
            );
        };
        run(&["migrate"]);
        run(&["allowlist", "add", domain]);
        let mut csv = String::from(
            "holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model,card_puk\n",
        );
        for holder in holders {
            // A holder without a card leaves the card columns empty.
            let card = if holder.card_serial.is_empty() {
                ",,,,".to_owned()
            } else {
                let model = if holder.card_model.is_empty() {
                    "unlock-cr/1"
                } else {
                    holder.card_model
                };
                format!(
                    "{},active,2099-12-31,{model},{}",
                    holder.card_serial, holder.card_puk
                )
            };
            csv.push_str(&format!(
                "{},{},Test Trust,{},{card}\n",
                holder.id,
                holder.name,
                holder.emails.join(";"),
            ));
        }
        let csv_file = dir.join("holders.csv");
        std::fs::write(&csv_file, csv).unwrap();
        run(&["import", csv_file.to_str().unwrap()]);

        let log = dir.join("server.log");
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start unlock-server");
        let server = Self {
            url,
            binary: binary.to_owned(),
            config,
            log,
            child,
        };
        crate::harness::wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        server
    }

    /// Runs a command of the server's CLI against its database; returns standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run unlock-server");
        assert!(
            output.status.success(),
            "unlock-server {args:?}: {output:?}"
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The database file, for reading the audit trail.
    pub fn database(&self) -> PathBuf {
        self.config.with_file_name("unlock.db")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
