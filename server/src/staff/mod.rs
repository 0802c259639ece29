//! Staff: accounts and signing in (password, then authenticator code), the status view's
//! figures, holder look-up, the Registration Authority's actions, the audit log and
//! reports. Every endpoint checks the role on the server ([`session::require`]).

pub mod accounts;
pub mod actions;
pub mod audit_log;
pub mod auth;
pub mod holders;
mod labels;
pub mod overview;
pub mod reports;
pub mod session;

pub use session::StaffUser;

use unlock_protocol::HolderId;

use crate::audit::{self, Event};
use crate::error::Failure;
use crate::state::AppState;

/// Audits what a staff member looked at (a search, a profile, a report): reading personal
/// data is itself on the record.
pub async fn record_access(
    state: &AppState,
    user: &StaffUser,
    action: &'static str,
    holder: Option<&HolderId>,
    detail: Option<String>,
) -> Result<(), Failure> {
    let (actor, client) = (user.actor(), user.client.clone());
    let holder = holder.map(|id| id.as_str().to_owned());
    let now = state.clock.now();
    state
        .db
        .write(move |conn| {
            let (actor, client, holder, detail) = (
                actor.clone(),
                client.clone(),
                holder.clone(),
                detail.clone(),
            );
            Box::pin(async move {
                let event = Event {
                    actor: &actor,
                    action,
                    outcome: "viewed",
                    holder_id: holder.as_deref(),
                    client_addr: Some(&client),
                    detail: detail.as_deref(),
                    ..Event::default()
                };
                audit::record(conn, now, event).await
            })
        })
        .await?;
    Ok(())
}
