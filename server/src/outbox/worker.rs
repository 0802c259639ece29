//! Sends queued messages with retries and exponential back-off, recording every attempt.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::Composed;
use super::mailer::{Envelope, Mailer, SendError, build_message, message_id};
use super::sms::SmsGateway;
use crate::clock::{Clock, Millis};
use crate::config::Config;
use crate::db::outbox::{Attempted, Claimed};
use crate::db::states::Channel;
use crate::db::{self, Db};
use crate::secrets::Keys;

/// Messages claimed per round, kept small so a round of slow sends (8 at a time, each up to the send timeout) ends well
/// within the claim's lease.
const BATCH: i64 = 16;
/// Messages being sent at once.
const SENDS_IN_FLIGHT: usize = 8;

/// The outbox worker of one server instance.
#[derive(Debug, Clone)]
pub struct Worker {
    pub db: Db,
    pub mailer: Mailer,
    /// Where text messages go; `None` when no SMS gateway is configured.
    pub sms: Option<SmsGateway>,
    pub keys: Arc<Keys>,
    pub clock: Clock,
    pub config: Arc<Config>,
    /// Poked after a message is queued, so it goes out at once rather than at the next poll.
    pub wake: Arc<Notify>,
}

/// How one attempt ended.
enum Outcome {
    /// Handed over; a text carries the id the SMS gateway gave it.
    Sent {
        gateway_id: Option<String>,
    },
    Retry {
        at: Millis,
        detail: String,
    },
    Failed {
        detail: String,
    },
}

impl Worker {
    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if let Err(error) = self.release_own_claims().await {
            tracing::error!(
                error = format!("{error:#}"),
                "outbox: could not release earlier claims"
            );
        }
        let poll = Duration::from_millis(self.config.outbox.poll_interval_ms);
        loop {
            if let Err(error) = self.send_due().await {
                tracing::error!(error = format!("{error:#}"), "outbox: round failed");
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// A previous run of this instance may have stopped mid-send: its claims are ours to retry.
    async fn release_own_claims(&self) -> anyhow::Result<()> {
        let instance = self.config.outbox.instance_id.clone();
        let released = self
            .db
            .write(move |conn| {
                let instance = instance.clone();
                Box::pin(async move { db::outbox::release_claims(conn, &instance).await })
            })
            .await?;
        if released > 0 {
            tracing::info!(
                count = released,
                "outbox: resuming messages claimed before a restart"
            );
        }
        Ok(())
    }

    /// Sends everything that is due now; returns how many messages were handled.
    pub async fn send_due(&self) -> anyhow::Result<usize> {
        let mut handled = 0;
        loop {
            let claimed = self.claim().await?;
            if claimed.is_empty() {
                return Ok(handled);
            }
            handled += claimed.len();
            let mut claimed = claimed.into_iter();
            let mut sends = JoinSet::new();
            loop {
                // A few sends at a time: enough to hide SMTP round trips, not so many that a
                // burst of mail starves the requests the server is answering.
                while sends.len() < SENDS_IN_FLIGHT
                    && let Some(message) = claimed.next()
                {
                    let worker = self.clone();
                    sends.spawn(async move {
                        let outcome = worker.attempt(&message).await;
                        (message, outcome)
                    });
                }
                // Each outcome is recorded as soon as it is known, so a crash or a failed
                // record can repeat at most the sends still in flight; the outcomes of sends
                // that finished meanwhile go in the same write (one commit, not one each).
                let Some(first) = sends.join_next().await else {
                    break;
                };
                // A send that could not be joined (it panicked) must not cost the others
                // their record: they would be sent again once the claim's lease ran out.
                let (mut done, mut lost) = (Vec::new(), None);
                for joined in
                    std::iter::once(first).chain(std::iter::from_fn(|| sends.try_join_next()))
                {
                    match joined {
                        Ok(sent) => done.push(sent),
                        Err(error) => lost = Some(error),
                    }
                }
                if !done.is_empty() {
                    self.record(&done).await?;
                }
                if let Some(error) = lost {
                    return Err(error).context("join a send");
                }
            }
        }
    }

    async fn claim(&self) -> anyhow::Result<Vec<Claimed>> {
        let now = self.clock.now();
        let lease = i64::try_from(self.config.outbox.lease_seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let instance = self.config.outbox.instance_id.clone();
        self.db
            .write_statement(move |conn| {
                let instance = instance.clone();
                Box::pin(async move {
                    let until = now.saturating_add(lease);
                    db::outbox::claim_due(conn, &instance, now, until, BATCH).await
                })
            })
            .await
    }

    async fn attempt(&self, message: &Claimed) -> Outcome {
        let now = self.clock.now();
        if message.expires_at.is_some_and(|at| at <= now) {
            return Outcome::Failed {
                detail: "expired before it could be sent".into(),
            };
        }
        let composed = match self.unseal(message) {
            Ok(composed) => composed,
            Err(error) => {
                return Outcome::Failed {
                    detail: format!("{error:#}"),
                };
            }
        };
        let sent = match message.channel {
            Channel::Email => self.send_email(message, &composed).await,
            Channel::Sms => self.send_text(message, &composed).await,
        };
        match sent {
            Ok(gateway_id) => Outcome::Sent { gateway_id },
            Err(error) if error.permanent => Outcome::Failed {
                detail: error.detail,
            },
            Err(error) => {
                let attempts = message.attempts + 1;
                if attempts >= i64::from(self.config.outbox.max_attempts) {
                    Outcome::Failed {
                        detail: format!("gave up after {attempts} attempts: {}", error.detail),
                    }
                } else {
                    Outcome::Retry {
                        at: self.clock.now() + self.backoff(attempts),
                        detail: error.detail,
                    }
                }
            }
        }
    }

    /// Sends a queued row as an email, its `Message-ID` the same on every attempt.
    async fn send_email(
        &self,
        message: &Claimed,
        composed: &Composed,
    ) -> Result<Option<String>, SendError> {
        let permanent = |error: anyhow::Error| SendError {
            permanent: true,
            detail: format!("{error:#}"),
        };
        let sealed = message.sealed_message.as_deref().unwrap_or_default();
        let envelope = Envelope {
            from: &self.config.mail.from,
            to: &message.recipient,
            message_id: message_id(sealed, &self.config.sending_domain().map_err(permanent)?),
            sent_at: self.clock.now(),
            zone: &self.config.time_zone,
        };
        let email = build_message(envelope, composed).map_err(permanent)?;
        self.mailer.send(email, self.config.send_timeout()).await?;
        Ok(None)
    }

    async fn send_text(
        &self,
        message: &Claimed,
        composed: &Composed,
    ) -> Result<Option<String>, SendError> {
        let sms = self.sms.as_ref().ok_or_else(|| SendError {
            permanent: true,
            detail: "no SMS gateway is configured (sms.host)".into(),
        })?;
        sms.send(&message.recipient, &composed.text).await.map(Some)
    }

    fn unseal(&self, message: &Claimed) -> anyhow::Result<Composed> {
        let sealed = message
            .sealed_message
            .as_deref()
            .context("the queued message has no body")?;
        super::open(&self.keys, message.kind, &message.recipient, sealed)
    }

    /// Delay before attempt `attempts + 1`: base × 2^(attempts − 1), capped.
    fn backoff(&self, attempts: i64) -> Millis {
        let base = i64::try_from(self.config.outbox.retry_base_ms).unwrap_or(i64::MAX);
        let cap = i64::try_from(self.config.outbox.retry_max_ms).unwrap_or(i64::MAX);
        let exponent = u32::try_from((attempts - 1).clamp(0, 30)).unwrap_or(30);
        base.saturating_mul(1_i64 << exponent).min(cap)
    }

    /// Records a round's outcomes in one write, whatever its size (one statement on
    /// PostgreSQL, two on SQLite, where under load the worker shares the write connection
    /// with holders' requests).
    async fn record(&self, outcomes: &[(Claimed, Outcome)]) -> anyhow::Result<()> {
        let now = self.clock.now();
        let attempts: Vec<Attempted> = outcomes
            .iter()
            .map(|(message, outcome)| {
                let gateway_id = match outcome {
                    Outcome::Sent { gateway_id } => gateway_id.clone(),
                    _ => None,
                };
                let (state, attempt, next, detail, finished) = match outcome {
                    Outcome::Sent { .. } => ("sent", "sent", now, None, Some(now)),
                    Outcome::Retry { at, detail } => {
                        ("queued", "retry", *at, Some(detail.clone()), None)
                    }
                    Outcome::Failed { detail } => {
                        ("failed", "failed", now, Some(detail.clone()), Some(now))
                    }
                };
                Attempted {
                    id: message.id,
                    state,
                    attempt,
                    next,
                    detail,
                    finished,
                    gateway_id,
                }
            })
            .collect();
        let instance = self.config.outbox.instance_id.clone();
        self.db
            .write_statement(move |conn| {
                let (attempts, instance) = (attempts.clone(), instance.clone());
                Box::pin(async move {
                    db::outbox::record_attempts(conn, &instance, now, &attempts).await
                })
            })
            .await?;
        for (message, outcome) in outcomes {
            let (id, kind) = (message.id, &message.kind);
            let noun = match message.channel {
                Channel::Email => "email",
                Channel::Sms => "text message",
            };
            crate::metrics::email_attempt(
                kind.as_str(),
                matches!(outcome, Outcome::Sent { .. }),
                matches!(outcome, Outcome::Failed { .. }),
            );
            match outcome {
                Outcome::Sent { .. } => tracing::info!(outbox_id = id, %kind, "{noun} sent"),
                Outcome::Retry { detail, .. } => {
                    tracing::warn!(outbox_id = id, %kind, %detail, "{noun} not sent; will retry")
                }
                Outcome::Failed { detail } => {
                    tracing::error!(outbox_id = id, %kind, %detail, "{noun} failed for good")
                }
            }
        }
        Ok(())
    }
}
