//! A real SMTP server on loopback: Debian's aiosmtpd, writing every message it accepts into a
//! Maildir that tests read.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// aiosmtpd on a free port; killed when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    pub port: u16,
    maildir: PathBuf,
    child: Child,
}

impl SmtpSink {
    pub fn start(dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        let maildir = dir.join(format!("maildir-{port}"));
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("create the maildir");
        }
        // Debian's interpreter: the first python3 on PATH may be another without the package.
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
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
        crate::harness::wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        sink
    }

    /// The relay address for the server's `mail.smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message delivered so far to `recipient`, oldest first, parsed.
    pub fn messages_to(&self, recipient: &str) -> Vec<Mail> {
        let mut files: Vec<_> = std::fs::read_dir(self.maildir.join("new"))
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .collect()
            })
            .unwrap_or_default();
        files.sort_by_key(|path| {
            std::fs::metadata(path)
                .and_then(|meta| meta.modified())
                .ok()
        });
        files
            .iter()
            .filter_map(|path| std::fs::read(path).ok())
            .filter_map(|raw| Mail::parse(&raw))
            .filter(|mail| mail.to.eq_ignore_ascii_case(recipient))
            .collect()
    }

    /// Waits up to 30 s for the `n`th message (from 1) to `recipient`.
    pub fn wait_for(&self, recipient: &str, n: usize) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut messages = self.messages_to(recipient);
            if messages.len() >= n {
                return messages.swap_remove(n - 1);
            }
            assert!(
                Instant::now() < deadline,
                "message {n} to {recipient} never arrived"
            );
            std::thread::sleep(Duration::from_millis(50));
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

/// The parts of a delivered message the tests read.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

impl Mail {
    fn parse(raw: &[u8]) -> Option<Self> {
        let message = mail_parser::MessageParser::default().parse(raw)?;
        let to = message.to()?.first()?.address()?.to_owned();
        Some(Self {
            to,
            subject: message.subject().unwrap_or_default().to_owned(),
            text: message.body_text(0).unwrap_or_default().into_owned(),
        })
    }

    /// The first run of six digits in the text: the one-time code.
    pub fn code(&self) -> Option<String> {
        self.text
            .as_bytes()
            .windows(6)
            .enumerate()
            .find(|(at, digits)| {
                digits.iter().all(u8::is_ascii_digit)
                    && !self
                        .text
                        .as_bytes()
                        .get(at + 6)
                        .is_some_and(u8::is_ascii_digit)
                    && (*at == 0 || !self.text.as_bytes()[at - 1].is_ascii_digit())
            })
            .map(|(_, digits)| String::from_utf8_lossy(digits).into_owned())
    }
}
