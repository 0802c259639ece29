//! The audit log.

use serde::{Deserialize, Serialize};

/// `GET /api/staff/audit`: a page of audit events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub holder_id: Option<String>,
    pub journey_id: Option<i64>,
    pub client_addr: Option<String>,
    /// Addresses in it are masked unless the role may see them in full.
    pub detail: Option<String>,
    /// How many requests it stands for: 1, but for a minute's repeated refusals from one
    /// client after the first (the detail says which minute).
    pub times: i64,
}
