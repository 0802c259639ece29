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
mod strength;

pub use session::StaffUser;

use unlock_protocol::HolderId;

use crate::audit::{self, Action, Audited, Outcome};
use crate::error::Failure;
use crate::state::AppState;

/// Audits what a staff member looked at (a search, a profile, a report): reading personal
/// data is itself on the record.
pub async fn record_access(
    state: &AppState,
    user: &StaffUser,
    action: Action,
    holder: Option<&HolderId>,
    detail: Option<String>,
) -> Result<(), Failure> {
    let actor = user.audit_actor(holder);
    audit::write(&state.db, &state.clock, actor, action, move |_, _| {
        let detail = detail.clone();
        Box::pin(async move { Ok(Audited::done(Outcome::Viewed, detail, ())) })
    })
    .await
}
