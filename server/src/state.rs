//! What every request handler shares.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Config;
use crate::custody::Custody;
use crate::db::Db;
use crate::http::client_addr::TrustedProxies;
use crate::piv::PivTrust;
use crate::secrets::Keys;
use crate::staff::accounts::Passwords;

/// Shared state of one server instance; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub keys: Arc<Keys>,
    /// The card master key and the PUK escrow key, in files or on a PKCS#11 token; without
    /// a key (or while its token does not answer) the card steps answer 503.
    pub custody: Arc<Custody>,
    /// The anchors PIV cards' certificates must chain to; without them the piv/1 card steps
    /// answer 503.
    pub piv_trust: Option<Arc<PivTrust>>,
    /// Staff password hashing, with the configured work factor.
    pub passwords: Arc<Passwords>,
    pub clock: Clock,
    /// Whose forwarding headers name the client.
    pub proxies: Arc<TrustedProxies>,
    /// Wakes the outbox worker after a message is queued.
    pub outbox_wake: Arc<Notify>,
}
