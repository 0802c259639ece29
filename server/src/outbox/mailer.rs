//! Delivery of one message: lettre's SMTP transport, or `.eml` files when no relay is set.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Composed;
use crate::config::Config;

/// Where messages go.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Smtp(_) => "Mailer::Smtp",
            Self::Files(_) => "Mailer::Files",
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
    /// The transport the configuration asks for.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        match &config.mail.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    // lettre's error text may quote the URL, which may hold a password.
                    .map_err(|_| anyhow::anyhow!("mail.smtp_url is not a usable SMTP address"))?
                    .timeout(Some(config.send_timeout()))
                    .build();
                Ok(Self::Smtp(transport))
            }
            None => {
                let dir: PathBuf = config.mail_dir();
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("create the mail folder {}", dir.display()))?;
                tracing::warn!(
                    folder = %dir.display(),
                    "no SMTP relay is configured (mail.smtp_url): emails are written as .eml files"
                );
                Ok(Self::Files(AsyncFileTransport::new(dir)))
            }
        }
    }

    /// Sends one message, giving up after `timeout` whatever the transport is doing.
    pub async fn send(&self, message: Message, timeout: Duration) -> Result<(), SendError> {
        let sent = tokio::time::timeout(timeout, async {
            match self {
                Self::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| SendError {
                    permanent: e.is_permanent(),
                    detail: smtp_detail(&e),
                }),
                Self::Files(files) => files.send(message).await.map(drop).map_err(|e| SendError {
                    permanent: false,
                    detail: format!("write the message file: {e}"),
                }),
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

/// Builds the MIME message: a plain-text part and an HTML part.
pub fn build_message(from: &str, to: &str, composed: &Composed) -> anyhow::Result<Message> {
    let from: Mailbox = from.parse().context("parse mail.from")?;
    let to: Mailbox = to.parse().context("parse the recipient address")?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(composed.subject.clone())
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
        .context("build the email")
}
