//! Self-service smartcard unlock: the HTTP API, the email outbox worker and the operator CLI.

pub mod allowlist;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contact;
pub mod custody;
pub mod db;
pub mod demo;
pub mod error;
pub mod http;
pub mod journey;
pub mod metrics;
pub mod mobile;
pub mod outbox;
pub mod piv;
pub mod retention;
pub mod secrets;
pub mod staff;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod time_zone;

#[cfg(test)]
mod debug_redaction;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::Config;
use crate::custody::Custody;
use crate::db::Db;
use crate::outbox::mailer::Mailer;
use crate::outbox::worker::Worker;
use crate::piv::PivTrust;
use crate::secrets::Keys;
use crate::staff::accounts::Passwords;
use crate::state::AppState;

/// A running server: the HTTP listener, the metrics listener and the outbox worker.
#[derive(Debug)]
pub struct Server {
    /// Where it listens (the real port when the configuration asked for port 0).
    pub addr: SocketAddr,
    /// Where `/metrics` is served, if `metrics_listen` is set and could be bound.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    metrics: Option<JoinHandle<std::io::Result<()>>>,
    worker: JoinHandle<()>,
    checkpoints: JoinHandle<()>,
    retention: JoinHandle<()>,
}

/// How often the write-ahead log is copied into the database file.
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

impl Server {
    /// Opens and migrates the database, binds the listener and starts the outbox worker.
    pub async fn start(config: Config, clock: Clock) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let db = Db::connect_with(
            &config.database_url,
            config.database_max_connections,
            usize::try_from(config.database_write_queue).unwrap_or(usize::MAX),
        )
        .await?;
        db.migrate().await?;
        let keys = Arc::new(Keys::load(&config)?);
        let custody = Arc::new(Custody::load(&config, &keys, db.clone())?);
        if !custody.has_card_master() {
            tracing::warn!(
                "no card master key is configured (card_master_key_file or card_master_key): \
                 holders can verify codes but cards can't be unlocked (the card steps answer 503)"
            );
        }
        let piv_trust = match &config.cards.piv_trust_anchors_file {
            Some(path) => Some(Arc::new(PivTrust::load(path)?)),
            None => {
                tracing::warn!(
                    "no PIV trust anchors are configured (cards.piv_trust_anchors_file): piv/1 \
                     cards can't be unlocked (their card steps answer 503)"
                );
                None
            }
        };
        let mailer = Mailer::from_config(&config)?;
        let passwords = Arc::new(Passwords::new(&config.staff).await?);
        let state = AppState {
            config: config.clone(),
            db: db.clone(),
            keys: keys.clone(),
            custody,
            proxies: Arc::new(http::client_addr::TrustedProxies::parse(
                &config.trusted_proxies,
            )?),
            piv_trust,
            passwords,
            clock: clock.clone(),
            outbox_wake: Arc::new(Notify::new()),
        };

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listen on {}", config.listen))?;
        let addr = listener
            .local_addr()
            .context("read the listening address")?;
        let (shutdown, _) = watch::channel(false);
        let metrics = match config.metrics_listen {
            Some(at) => serve_metrics(at, state.clone(), shutdown.subscribe()).await,
            None => None,
        };
        let metrics_addr = metrics.as_ref().map(|(addr, _)| *addr);
        let metrics = metrics.map(|(_, task)| task);

        let checkpoints = db.checkpoint_in_background(CHECKPOINT_INTERVAL, shutdown.subscribe());
        let sms = outbox::sms::SmsGateway::from_config(&config.sms, db.clone(), clock.clone());
        if sms.is_none() {
            tracing::info!(
                "no SMS gateway is configured (sms.host): codes go by email only, and mobile \
                 numbers are refused with the same answer whatever the number"
            );
        }
        let worker = Worker {
            db,
            mailer,
            sms,
            keys,
            clock,
            config,
            wake: state.outbox_wake.clone(),
        };
        let worker = tokio::spawn(worker.run(shutdown.subscribe()));
        let retention = tokio::spawn(retention::run(state.clone(), shutdown.subscribe()));

        let app = http::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let mut stop = shutdown.subscribe();
        let http = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await
        });
        tracing::info!(%addr, "listening");
        Ok(Self {
            addr,
            metrics_addr,
            state,
            shutdown,
            http,
            metrics,
            worker,
            checkpoints,
            retention,
        })
    }

    /// Stops taking requests, lets the worker finish its round, and closes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        // Everything is stopped and the database closed even if one part failed.
        let http = self.http.await;
        let metrics = match self.metrics {
            Some(task) => Some(task.await),
            None => None,
        };
        let worker = self.worker.await;
        let checkpoints = self.checkpoints.await;
        let retention = self.retention.await;
        self.state.db.close().await;
        http.context("join the HTTP task")?.context("serve HTTP")?;
        if let Some(metrics) = metrics {
            metrics
                .context("join the metrics task")?
                .context("serve metrics")?;
        }
        worker.context("join the outbox worker")?;
        retention.context("join the retention task")?;
        checkpoints.context("join the checkpoint task")
    }
}

/// Serves `GET /metrics` on `at` until `stop` turns true. Metrics are never worth keeping the
/// service down for: if `at` cannot be bound the error is logged and the server runs on
/// without them (Prometheus sees the target down).
async fn serve_metrics(
    at: SocketAddr,
    state: AppState,
    mut stop: watch::Receiver<bool>,
) -> Option<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let bound = tokio::net::TcpListener::bind(at)
        .await
        .and_then(|listener| Ok((listener.local_addr()?, listener)));
    let (addr, listener) = match bound {
        Ok(bound) => bound,
        Err(error) => {
            tracing::error!(%error, addr = %at, "could not listen for metrics; serving without /metrics");
            return None;
        }
    };
    // Installed before the first request is counted.
    metrics::handle();
    let app = metrics::router(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            })
            .await
    });
    tracing::info!(%addr, "serving metrics");
    Some((addr, task))
}
