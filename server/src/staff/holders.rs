//! Looking holders up: by 12-digit user id, email address or part of a name, and
//! everything staff may see of one holder. Addresses are masked unless the role may see
//! them in full; codes are never stored, so never shown.

use crate::db::{Conn, Flag};
use anyhow::Context;
use unlock_protocol::staff::{
    Delivery, HolderMatch, HolderProfile, HolderSearch, JourneyRecord, JourneyStep, Permission,
    ProfileCard, ProfileEmail, ThrottleState, ThrottleTarget,
};
use unlock_protocol::{CardSerial, CardStatus, DeliveryState, EmailAddress, ErrorCode, HolderId};

use super::labels;
use super::session::StaffUser;
use crate::clock::Millis;
use crate::error::Failure;
use crate::state::AppState;
use crate::throttle::{HOLDER_SCOPES, Scope};

/// Holders listed for one search; more means the search should be narrowed.
const SEARCH_LIMIT: usize = 20;
/// Journeys and emails shown on a profile, newest first.
const RECENT_JOURNEYS: i64 = 10;
const RECENT_DELIVERIES: i64 = 25;

/// How a search was understood, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub enum Searched {
    Id,
    Email,
    Name,
}

impl Searched {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Id => "by user id",
            Self::Email => "by email",
            Self::Name => "by name",
        }
    }
}

/// An address as this staff member may see it.
pub fn shown(user: &StaffUser, address: &str) -> String {
    if user.may(Permission::SeeFullEmails) {
        return address.to_owned();
    }
    EmailAddress::parse(address).map_or_else(|_| "***".to_owned(), |email| email.masked())
}

/// `GET /api/staff/holders?q=...`.
pub async fn search(
    state: &AppState,
    user: &StaffUser,
    raw: &str,
) -> Result<(Searched, HolderSearch), Failure> {
    let query = raw.trim();
    let refuse = |message: &str| Failure::client_message(ErrorCode::QueryInvalid, message);
    let limit = i64::try_from(SEARCH_LIMIT + 1).unwrap_or(i64::MAX);
    let (searched, rows): (Searched, Vec<(String, String, String)>) = if query.is_empty() {
        return Err(refuse("Enter a user id, an email address or a name."));
    } else if let Ok(id) = HolderId::parse(query) {
        let rows =
            sqlx::query_as("SELECT id, display_name, organisation FROM holders WHERE id = $1")
                .bind(id.as_str())
                .fetch_all(state.db.read_pool())
                .await
                .context("find the holder by id")?;
        (Searched::Id, rows)
    } else if query.contains('@') {
        let email = EmailAddress::parse(query).map_err(|error| refuse(&format!("{error}.")))?;
        let rows = sqlx::query_as(
            "SELECT h.id, h.display_name, h.organisation FROM holders h
             JOIN holder_emails e ON e.holder_id = h.id WHERE e.email = $1",
        )
        .bind(email.as_str())
        .fetch_all(state.db.read_pool())
        .await
        .context("find the holder by email")?;
        (Searched::Email, rows)
    } else if query.chars().count() < 2 || query.chars().all(|c| c.is_ascii_digit() || c == ' ') {
        return Err(refuse(
            "Enter a whole 12-digit user id, a whole email address, or at least 2 letters of a name.",
        ));
    } else {
        let pattern = format!(
            "%{}%",
            query
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let rows = sqlx::query_as(
            "SELECT id, display_name, organisation FROM holders
             WHERE LOWER(display_name) LIKE LOWER($1) ESCAPE '\\' ORDER BY display_name, id LIMIT $2",
        )
        .bind(pattern)
        .bind(limit)
        .fetch_all(state.db.read_pool())
        .await
        .context("find holders by name")?;
        (Searched::Name, rows)
    };
    let more = rows.len() > SEARCH_LIMIT;
    let mut conn = state.db.reader().await?;
    let mut matches = Vec::new();
    for (id, name, organisation) in rows.into_iter().take(SEARCH_LIMIT) {
        let emails = addresses(&mut conn, &id)
            .await?
            .iter()
            .map(|(address, ..)| shown(user, address))
            .collect();
        matches.push(HolderMatch {
            id: stored_holder_id(&id)?,
            name,
            organisation,
            emails,
        });
    }
    Ok((searched, HolderSearch { matches, more }))
}

fn stored_holder_id(id: &str) -> anyhow::Result<HolderId> {
    HolderId::parse(id).map_err(|_| anyhow::anyhow!("a stored holder id does not parse"))
}

/// The holder's addresses: address, when added, by whom, whether the domain is allowed.
async fn addresses(
    conn: &mut Conn,
    holder: &str,
) -> anyhow::Result<Vec<(String, Millis, String, bool)>> {
    let rows: Vec<(String, Millis, String, Flag)> = sqlx::query_as(
        "SELECT e.email, e.added_at, e.added_by,
                EXISTS (SELECT 1 FROM allowed_domains d
                        WHERE substr(e.email, length(e.email) - length(d.domain)) = '@' || d.domain)
         FROM holder_emails e WHERE e.holder_id = $1 ORDER BY e.added_at, e.email",
    )
    .bind(holder)
    .fetch_all(conn)
    .await
    .context("read the holder's addresses")?;
    Ok(rows
        .into_iter()
        .map(|(email, at, by, allowed)| (email, at, by, allowed.into()))
        .collect())
}

/// `GET /api/staff/holders/{id}`: the profile, or `None` if there is no such holder.
pub async fn profile(
    state: &AppState,
    user: &StaffUser,
    id: &HolderId,
) -> anyhow::Result<Option<HolderProfile>> {
    let now = state.clock.now();
    let mut conn = state.db.reader().await?;
    let holder: Option<(String, String)> =
        sqlx::query_as("SELECT display_name, organisation FROM holders WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await
            .context("read the holder")?;
    let Some((name, organisation)) = holder else {
        return Ok(None);
    };
    let emails = addresses(&mut conn, id.as_str())
        .await?
        .into_iter()
        .map(
            |(address, added_at, added_by, domain_allowed)| ProfileEmail {
                address: shown(user, &address),
                domain_allowed,
                added_at,
                added_by,
            },
        )
        .collect();
    let journeys = journeys(&mut conn, user, id, now).await?;
    let mut clients: Vec<String> = journeys.iter().map(|j| j.client_addr.clone()).collect();
    clients.sort();
    clients.dedup();
    Ok(Some(HolderProfile {
        id: id.clone(),
        name,
        organisation,
        own_profile: user.owns(id),
        emails,
        cards: cards(&mut conn, state, id, now).await?,
        journeys,
        deliveries: deliveries(&mut conn, user, id).await?,
        throttles: throttles(&mut conn, id, &clients, now).await?,
    }))
}

async fn cards(
    conn: &mut Conn,
    state: &AppState,
    id: &HolderId,
    now: Millis,
) -> anyhow::Result<Vec<ProfileCard>> {
    let rows: Vec<(String, String, String, Millis)> = sqlx::query_as(
        "SELECT serial, status, model, cert_expires_at FROM cards WHERE holder_id = $1 ORDER BY serial",
    )
    .bind(id.as_str())
    .fetch_all(conn)
    .await
    .context("read the holder's cards")?;
    let supported = &state.config.cards.supported_models;
    rows.into_iter()
        .map(|(serial, status, model, cert_expires_at)| {
            let status = CardStatus::try_from(status)?;
            Ok(ProfileCard {
                serial: CardSerial::parse(&serial)
                    .map_err(|_| anyhow::anyhow!("a stored card serial does not parse"))?,
                unlockable: status == CardStatus::Active
                    && cert_expires_at > now
                    && supported.contains(&model),
                status,
                model,
                cert_expires_at,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct JourneyRow {
    id: i64,
    started_at: Millis,
    email: String,
    client_addr: String,
    state: String,
    ineligible_reason: Option<String>,
    closed_reason: Option<String>,
    expires_at: Millis,
    /// The state of the journey's latest code.
    code_state: Option<String>,
}

async fn journeys(
    conn: &mut Conn,
    user: &StaffUser,
    id: &HolderId,
    now: Millis,
) -> anyhow::Result<Vec<JourneyRecord>> {
    let rows: Vec<JourneyRow> = sqlx::query_as(
        "SELECT j.id, j.started_at, j.email, j.client_addr, j.state, j.ineligible_reason,
                j.closed_reason, j.expires_at,
                (SELECT state FROM one_time_codes WHERE journey_id = j.id ORDER BY id DESC LIMIT 1)
                    AS code_state
         FROM journeys j WHERE j.holder_id = $1 ORDER BY j.started_at DESC, j.id DESC LIMIT $2",
    )
    .bind(id.as_str())
    .bind(RECENT_JOURNEYS)
    .fetch_all(&mut *conn)
    .await
    .context("read the holder's journeys")?;
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let steps: Vec<(Millis, String, String, Option<String>)> = sqlx::query_as(
            "SELECT at, action, outcome, detail FROM audit_events WHERE journey_id = $1 ORDER BY id",
        )
        .bind(row.id)
        .fetch_all(&mut *conn)
        .await
        .context("read the journey's steps")?;
        let expired =
            matches!(row.state.as_str(), "awaiting_code" | "verified") && now >= row.expires_at;
        let voided = row.code_state.as_deref() == Some("voided");
        records.push(JourneyRecord {
            id: row.id,
            started_at: row.started_at,
            email: shown(user, &row.email),
            client_addr: row.client_addr,
            summary: labels::summary(
                &row.state,
                row.closed_reason.as_deref(),
                row.ineligible_reason.as_deref(),
                expired,
                voided,
            ),
            unlocked: row.closed_reason.as_deref() == Some("unlocked"),
            steps: steps
                .into_iter()
                .map(|(at, action, outcome, detail)| JourneyStep {
                    label: labels::step(&action, &outcome, detail.as_deref()),
                    at,
                    action,
                    outcome,
                })
                .collect(),
        });
    }
    Ok(records)
}

/// An outbox row as the profile shows it.
#[derive(sqlx::FromRow)]
struct DeliveryRow {
    kind: String,
    recipient: String,
    #[sqlx(try_from = "String")]
    state: DeliveryState,
    attempts: i64,
    created_at: Millis,
    finished_at: Option<Millis>,
    last_error: Option<String>,
}

async fn deliveries(
    conn: &mut Conn,
    user: &StaffUser,
    id: &HolderId,
) -> anyhow::Result<Vec<Delivery>> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(
        "SELECT kind, recipient, state, attempts, created_at, finished_at, last_error
         FROM outbox WHERE holder_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(id.as_str())
    .bind(RECENT_DELIVERIES)
    .fetch_all(conn)
    .await
    .context("read the holder's emails")?;
    Ok(rows
        .into_iter()
        .map(|row| Delivery {
            recipient: shown(user, &row.recipient),
            kind: row.kind,
            state: row.state,
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            queued_at: row.created_at,
            finished_at: row.finished_at,
            last_error: row.last_error,
        })
        .collect())
}

/// The holder's own throttle, and those of the client addresses their journeys came from.
async fn throttles(
    conn: &mut Conn,
    id: &HolderId,
    clients: &[String],
    now: Millis,
) -> anyhow::Result<Vec<ThrottleState>> {
    let holder_key = format!("holder:{id}");
    let keys: Vec<&str> = std::iter::once(holder_key.as_str())
        .chain(clients.iter().map(String::as_str))
        .collect();
    let mut found = Vec::new();
    for key in keys {
        let rows: Vec<(String, i64, Millis)> = sqlx::query_as(
            "SELECT scope, hits, locked_until FROM throttles
             WHERE key = $1 AND scope IN ($2, $3, $4) ORDER BY scope",
        )
        .bind(key)
        .bind(HOLDER_SCOPES[0].as_str())
        .bind(HOLDER_SCOPES[1].as_str())
        .bind(HOLDER_SCOPES[2].as_str())
        .fetch_all(&mut *conn)
        .await
        .context("read the throttles")?;
        for (scope, hits, locked_until) in rows {
            let (target, label) = if key == holder_key {
                (
                    ThrottleTarget::Holder(id.clone()),
                    "Codes voided by wrong tries, for this holder".to_owned(),
                )
            } else {
                let what = if scope == Scope::ClientStart.as_str() {
                    "Journeys started"
                } else {
                    "Wrong codes typed"
                };
                (
                    ThrottleTarget::Client(key.to_owned()),
                    format!("{what} from {key}"),
                )
            };
            found.push(ThrottleState {
                scope,
                label,
                target,
                hits: u64::try_from(hits).unwrap_or(0),
                locked_until: (locked_until > now).then_some(locked_until),
            });
        }
    }
    Ok(found)
}
