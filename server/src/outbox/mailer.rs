//! Delivery of one message: lettre's SMTP transport, or `.eml` files when no relay is set;
//! DKIM-signed when `[mail.dkim]` is set.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

use super::Composed;
use super::dkim::DkimSigner;
use crate::clock::Millis;
use crate::config::Config;
use crate::time_zone::ServiceZone;

/// Where messages go, and how they are signed.
#[derive(Debug, Clone)]
pub struct Mailer {
    transport: Transport,
    dkim: Option<Arc<DkimSigner>>,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Smtp(_) => "Smtp",
            Self::Files(_) => "Files",
        })
    }
}

/// Why a send failed, and whether trying again could help.
#[derive(Debug)]
pub struct SendError {
    pub permanent: bool,
    /// What went wrong, without the message body.
    pub detail: String,
}

impl Mailer {
    /// The transport and the signer the configuration asks for.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let dkim = DkimSigner::from_config(config)?.map(Arc::new);
        match &dkim {
            Some(signer) => tracing::info!(dkim = %signer.describe(), "emails are DKIM-signed"),
            None => tracing::info!("emails are not DKIM-signed (no [mail.dkim])"),
        }
        Ok(Self {
            transport: transport(config)?,
            dkim,
        })
    }

    /// Signs `message` if DKIM is configured, then sends it, giving up after `timeout`
    /// whatever the transport is doing.
    pub async fn send(&self, mut message: Message, timeout: Duration) -> Result<(), SendError> {
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message);
        }
        let sent = tokio::time::timeout(timeout, async {
            match &self.transport {
                Transport::Smtp(smtp) => {
                    smtp.send(message).await.map(drop).map_err(|e| SendError {
                        permanent: e.is_permanent(),
                        detail: smtp_detail(&e),
                    })
                }
                Transport::Files(files) => {
                    files.send(message).await.map(drop).map_err(|e| SendError {
                        permanent: false,
                        detail: format!("write the message file: {e}"),
                    })
                }
            }
        })
        .await;
        sent.unwrap_or_else(|_| {
            Err(SendError {
                permanent: false,
                detail: format!("no answer within {} s", timeout.as_secs()),
            })
        })
    }
}

/// The transport the configuration asks for.
fn transport(config: &Config) -> anyhow::Result<Transport> {
    match &config.mail.smtp_url {
        Some(url) => {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                // lettre's error text may quote the URL, which may hold a password.
                .map_err(|_| anyhow::anyhow!("mail.smtp_url is not a usable SMTP address"))?
                .timeout(Some(config.send_timeout()))
                .build();
            Ok(Transport::Smtp(transport))
        }
        None => {
            let dir: PathBuf = config.mail_dir();
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("create the mail folder {}", dir.display()))?;
            tracing::warn!(
                folder = %dir.display(),
                "no SMTP relay is configured (mail.smtp_url): emails are written as .eml files"
            );
            Ok(Transport::Files(AsyncFileTransport::new(dir)))
        }
    }
}

/// lettre's errors name the failing step and the server's reply, never the message body.
fn smtp_detail(error: &lettre::transport::smtp::Error) -> String {
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

/// What goes around a message's words.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// The From header (`mail.from`).
    pub from: &'a str,
    pub to: &'a str,
    /// The `Message-ID`, from [`message_id`].
    pub message_id: String,
    /// When it is sent, for the `Date` header.
    pub sent_at: Millis,
    /// The zone the `Date` header is given in.
    pub zone: &'a ServiceZone,
}

/// A `Message-ID` on the sending domain that names one outbox row: the same on every retry
/// of the row (a receiver can tell a repeat from a new message), different for every row
/// (the sealed body it hashes carries a random nonce), and telling nothing of the body.
pub fn message_id(sealed: &[u8], sending_domain: &str) -> String {
    let digest = Sha256::digest(sealed);
    format!("<{}@{sending_domain}>", hex::encode(&digest[..16]))
}

/// `Auto-Submitted: auto-generated` (RFC 3834): out-of-office replies and other automatic
/// answers are not sent back to an address nobody reads.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// The `Date` header in the service's time zone, by the server's clock (lettre's own is
/// always UTC, by the system clock).
#[derive(Debug, Clone)]
struct LocalDate(String);

impl Header for LocalDate {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Date")
    }

    fn parse(text: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(text.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Builds the MIME message: a plain-text part and an HTML part.
pub fn build_message(envelope: Envelope<'_>, composed: &Composed) -> anyhow::Result<Message> {
    let from: Mailbox = envelope.from.parse().context("parse mail.from")?;
    let to: Mailbox = envelope.to.parse().context("parse the recipient address")?;
    let mut message = Message::builder()
        .from(from)
        .to(to)
        .subject(composed.subject.clone())
        .message_id(Some(envelope.message_id))
        .header(AutoSubmitted)
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(composed.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(composed.html.clone()),
                ),
        )
        .context("build the email")?;
    // Set after building: the builder reads a Date back as UTC only, and would replace one
    // with another offset by the system clock's time.
    message
        .headers_mut()
        .set(LocalDate(envelope.zone.email_date(envelope.sent_at)));
    Ok(message)
}
