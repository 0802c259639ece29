//! What every request handler shares.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::card_key::CardMasterKey;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::piv::PivTrust;
use crate::secrets::Keys;
use crate::staff::accounts::Passwords;

/// Shared state of one server instance; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub keys: Arc<Keys>,
    /// The card master key; without it the unlock-cr/1 card steps answer 503.
    pub card_key: Option<Arc<CardMasterKey>>,
    /// The anchors PIV cards' certificates must chain to; without them the piv/1 card steps
    /// answer 503.
    pub piv_trust: Option<Arc<PivTrust>>,
    /// Staff password hashing, with the configured work factor.
    pub passwords: Arc<Passwords>,
    pub clock: Clock,
    /// Wakes the outbox worker after a message is queued.
    pub outbox_wake: Arc<Notify>,
}
