//! What staff see of holders: look-ups by id, address or name, and a profile's addresses,
//! recent journeys with their audited steps, and recent emails.

use anyhow::Context;
use unlock_protocol::DeliveryState;

use super::states::{ClosedReason, CodeState, JourneyState};
use super::{Conn, Flag};
use crate::clock::Millis;

/// A holder as a search lists them: id, name, organisation.
pub type Listed = (String, String, String);

/// The holder with this id, if there is one.
pub async fn by_id(conn: &mut Conn, id: &str) -> anyhow::Result<Vec<Listed>> {
    sqlx::query_as("SELECT id, display_name, organisation FROM holders WHERE id = $1")
        .bind(id)
        .fetch_all(conn)
        .await
        .context("find the holder by id")
}

/// The holder whose profile has this address, if there is one.
pub async fn by_email(conn: &mut Conn, email: &str) -> anyhow::Result<Vec<Listed>> {
    sqlx::query_as(
        "SELECT h.id, h.display_name, h.organisation FROM holders h
         JOIN holder_emails e ON e.holder_id = h.id WHERE e.email = $1",
    )
    .bind(email)
    .fetch_all(conn)
    .await
    .context("find the holder by email")
}

/// The holder whose profile has this mobile number (E.164), if there is one.
pub async fn by_mobile(conn: &mut Conn, number: &str) -> anyhow::Result<Vec<Listed>> {
    sqlx::query_as(
        "SELECT h.id, h.display_name, h.organisation FROM holders h
         JOIN holder_mobiles m ON m.holder_id = h.id WHERE m.number = $1",
    )
    .bind(number)
    .fetch_all(conn)
    .await
    .context("find the holder by mobile number")
}

/// Up to `limit` holders whose name contains `part` (any case), by name.
pub async fn by_name(conn: &mut Conn, part: &str, limit: i64) -> anyhow::Result<Vec<Listed>> {
    let pattern = format!(
        "%{}%",
        part.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    sqlx::query_as(
        "SELECT id, display_name, organisation FROM holders
         WHERE LOWER(display_name) LIKE LOWER($1) ESCAPE '\\' ORDER BY display_name, id LIMIT $2",
    )
    .bind(pattern)
    .bind(limit)
    .fetch_all(conn)
    .await
    .context("find holders by name")
}

/// A holder's name and organisation, if there is such a holder.
pub async fn holder(conn: &mut Conn, id: &str) -> anyhow::Result<Option<(String, String)>> {
    sqlx::query_as("SELECT display_name, organisation FROM holders WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .context("read the holder")
}

/// An address on a profile.
#[derive(Debug, Clone)]
pub struct Address {
    pub email: String,
    pub added_at: Millis,
    pub added_by: String,
    /// Whether its domain is on the allow list.
    pub allowed: bool,
    /// Since when it has waited for a second RA's approval, if it is waiting.
    pub awaiting_approval_since: Option<Millis>,
}

/// The holder's addresses, oldest first.
pub async fn addresses(conn: &mut Conn, holder: &str) -> anyhow::Result<Vec<Address>> {
    let rows: Vec<(String, Millis, String, Flag, Option<Millis>)> = sqlx::query_as(
        "SELECT e.email, e.added_at, e.added_by,
                EXISTS (SELECT 1 FROM allowed_domains d
                        WHERE substr(e.email, length(e.email) - length(d.domain)) = '@' || d.domain),
                e.awaiting_approval_since
         FROM holder_emails e WHERE e.holder_id = $1 ORDER BY e.added_at, e.email",
    )
    .bind(holder)
    .fetch_all(conn)
    .await
    .context("read the holder's addresses")?;
    Ok(rows
        .into_iter()
        .map(
            |(email, added_at, added_by, allowed, awaiting_approval_since)| Address {
                email,
                added_at,
                added_by,
                allowed: allowed.into(),
                awaiting_approval_since,
            },
        )
        .collect())
}

/// The holder's mobile numbers, oldest first (as [`Address`]es; `allowed` is true).
pub async fn mobile_numbers(conn: &mut Conn, holder: &str) -> anyhow::Result<Vec<Address>> {
    let rows: Vec<(String, Millis, String, Option<Millis>)> = sqlx::query_as(
        "SELECT number, added_at, added_by, awaiting_approval_since
         FROM holder_mobiles WHERE holder_id = $1 ORDER BY added_at, number",
    )
    .bind(holder)
    .fetch_all(conn)
    .await
    .context("read the holder's mobile numbers")?;
    Ok(rows
        .into_iter()
        .map(
            |(number, added_at, added_by, awaiting_approval_since)| Address {
                email: number,
                added_at,
                added_by,
                allowed: true,
                awaiting_approval_since,
            },
        )
        .collect())
}

/// One of a holder's journeys.
#[derive(Debug, sqlx::FromRow)]
pub struct JourneyRow {
    pub id: i64,
    pub started_at: Millis,
    pub email: String,
    pub client_addr: String,
    pub state: JourneyState,
    pub ineligible_reason: Option<String>,
    pub closed_reason: Option<ClosedReason>,
    pub expires_at: Millis,
    /// The state of the journey's latest code.
    pub code_state: Option<CodeState>,
    /// Card secrets released to the journey.
    pub cryptograms_released: i64,
}

/// The holder's latest `limit` journeys, newest first.
pub async fn journeys(
    conn: &mut Conn,
    holder: &str,
    limit: i64,
) -> anyhow::Result<Vec<JourneyRow>> {
    sqlx::query_as(
        "SELECT j.id, j.started_at, j.email, j.client_addr, j.state, j.ineligible_reason,
                j.closed_reason, j.expires_at, j.cryptograms_released,
                (SELECT state FROM one_time_codes WHERE journey_id = j.id ORDER BY id DESC LIMIT 1)
                    AS code_state
         FROM journeys j WHERE j.holder_id = $1 ORDER BY j.started_at DESC, j.id DESC LIMIT $2",
    )
    .bind(holder)
    .bind(limit)
    .fetch_all(conn)
    .await
    .context("read the holder's journeys")
}

/// An audited step of a journey, as stored: when, action, outcome, detail.
pub type Step = (Millis, String, String, Option<String>);

/// The journey's audited steps, in order.
pub async fn steps(conn: &mut Conn, journey_id: i64) -> anyhow::Result<Vec<Step>> {
    sqlx::query_as(
        "SELECT at, action, outcome, detail FROM audit_events WHERE journey_id = $1 ORDER BY id",
    )
    .bind(journey_id)
    .fetch_all(conn)
    .await
    .context("read the journey's steps")
}

/// An email about the holder's profile.
#[derive(Debug, sqlx::FromRow)]
pub struct DeliveryRow {
    pub kind: String,
    pub recipient: String,
    #[sqlx(try_from = "String")]
    pub state: DeliveryState,
    pub attempts: i64,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
    pub last_error: Option<String>,
    /// What the SMS gateway's delivery receipt said of a text.
    pub delivery_state: Option<String>,
}

/// The latest `limit` emails about the holder's profile, newest first.
pub async fn deliveries(
    conn: &mut Conn,
    holder: &str,
    limit: i64,
) -> anyhow::Result<Vec<DeliveryRow>> {
    sqlx::query_as(
        "SELECT kind, recipient, state, attempts, created_at, finished_at, last_error, delivery_state
         FROM outbox WHERE holder_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(holder)
    .bind(limit)
    .fetch_all(conn)
    .await
    .context("read the holder's emails")
}
