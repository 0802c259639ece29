//! Looking holders up: by 12-digit user id, email address or part of a name, and
//! everything staff may see of one holder. Addresses are masked unless the role may see
//! them in full; codes are never stored, so never shown.

use unlock_protocol::staff::{
    Delivery, HolderMatch, HolderProfile, HolderSearch, JourneyRecord, JourneyStep, Permission,
    ProfileCard, ProfileEmail, ThrottleState, ThrottleTarget,
};
use unlock_protocol::{CardId, CardStatus, EmailAddress, ErrorCode, HolderId};

use crate::mobile::MobileNumber;

use super::labels;
use super::session::StaffUser;
use crate::clock::Millis;
use crate::db::states::{ClosedReason, CodeState, JourneyState};
use crate::db::{self, Conn};
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
    Mobile,
    Name,
}

impl Searched {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Id => "by user id",
            Self::Email => "by email",
            Self::Mobile => "by mobile number",
            Self::Name => "by name",
        }
    }
}

/// An address as this staff member may see it.
pub fn shown(user: &StaffUser, address: &str) -> String {
    if user.may(Permission::SeeFullEmails) {
        return address.to_owned();
    }
    crate::contact::Contact::from_stored(address)
        .map_or_else(|| "***".to_owned(), |contact| contact.masked())
}

/// `text` (a relay's error, say) with every email address in it shown as [`shown`] shows
/// addresses: masked unless the user may see them in full.
pub fn shown_in_text(user: &StaffUser, text: &str) -> String {
    if user.may(Permission::SeeFullEmails) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') {
            out.push_str(&shown(user, word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || "<>,;:\"'()[]".contains(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
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
    let mut conn = state.db.reader().await?;
    let (searched, rows) = if query.is_empty() {
        return Err(refuse("Enter a user id, an email address or a name."));
    } else if let Ok(id) = HolderId::parse(query) {
        (
            Searched::Id,
            db::profiles::by_id(&mut conn, id.as_str()).await?,
        )
    } else if query.contains('@') {
        let email = EmailAddress::parse(query).map_err(|error| refuse(&format!("{error}.")))?;
        let rows = db::profiles::by_email(&mut conn, email.as_str()).await?;
        (Searched::Email, rows)
    } else if let Ok(number) = MobileNumber::parse(query, state.config.sms.region()) {
        let rows = db::profiles::by_mobile(&mut conn, number.as_str()).await?;
        (Searched::Mobile, rows)
    } else if query.chars().count() < 2
        || query
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c))
    {
        return Err(refuse(
            "Enter a whole 12-digit user id, a whole email address, a whole mobile number, or at \
             least 2 letters of a name.",
        ));
    } else {
        let rows = db::profiles::by_name(&mut conn, query, limit).await?;
        (Searched::Name, rows)
    };
    let more = rows.len() > SEARCH_LIMIT;
    let mut matches = Vec::new();
    for (id, name, organisation) in rows.into_iter().take(SEARCH_LIMIT) {
        let emails = db::profiles::addresses(&mut conn, &id)
            .await?
            .iter()
            .map(|address| shown(user, &address.email))
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

/// `GET /api/staff/holders/{id}`: the profile, or `None` if there is no such holder.
pub async fn profile(
    state: &AppState,
    user: &StaffUser,
    id: &HolderId,
) -> anyhow::Result<Option<HolderProfile>> {
    let now = state.clock.now();
    let mut conn = state.db.reader().await?;
    let Some((name, organisation)) = db::profiles::holder(&mut conn, id.as_str()).await? else {
        return Ok(None);
    };
    let texts = state.config.sms.enabled();
    let mut addresses = db::profiles::addresses(&mut conn, id.as_str()).await?;
    for mut number in db::profiles::mobile_numbers(&mut conn, id.as_str()).await? {
        number.allowed = texts;
        addresses.push(number);
    }
    let emails = addresses
        .into_iter()
        .map(|address| ProfileEmail {
            address: shown(user, &address.email),
            domain_allowed: address.allowed,
            added_at: address.added_at,
            added_by: address.added_by,
            awaiting_approval: address.awaiting_approval_since.is_some(),
        })
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
    let supported = &state.config.cards.supported_models;
    db::cards::of_holder(conn, id.as_str())
        .await?
        .into_iter()
        .map(|card| {
            let record = card.record;
            Ok(ProfileCard {
                serial: CardId::parse(&card.serial)
                    .map_err(|_| anyhow::anyhow!("a stored card id does not parse"))?,
                unlockable: record.status == CardStatus::Active
                    && record.cert_expires_at > now
                    && supported.contains(&record.model),
                status: record.status,
                model: record.model,
                cert_expires_at: record.cert_expires_at,
            })
        })
        .collect()
}

async fn journeys(
    conn: &mut Conn,
    user: &StaffUser,
    id: &HolderId,
    now: Millis,
) -> anyhow::Result<Vec<JourneyRecord>> {
    let rows = db::profiles::journeys(conn, id.as_str(), RECENT_JOURNEYS).await?;
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let steps = db::profiles::steps(conn, row.id).await?;
        let expired = matches!(
            row.state,
            JourneyState::AwaitingCode | JourneyState::Verified
        ) && now >= row.expires_at;
        let voided = row.code_state == Some(CodeState::Voided);
        records.push(JourneyRecord {
            id: row.id,
            started_at: row.started_at,
            // A journey started with an RA's unlock code has no address.
            email: if row.email.is_empty() {
                "Unlock code from an RA".to_owned()
            } else {
                shown(user, &row.email)
            },
            client_addr: row.client_addr,
            summary: labels::summary(
                row.state,
                row.closed_reason,
                row.ineligible_reason.as_deref(),
                expired,
                voided,
                row.cryptograms_released > 0,
            ),
            unlocked: row.closed_reason == Some(ClosedReason::Unlocked),
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

async fn deliveries(
    conn: &mut Conn,
    user: &StaffUser,
    id: &HolderId,
) -> anyhow::Result<Vec<Delivery>> {
    let rows = db::profiles::deliveries(conn, id.as_str(), RECENT_DELIVERIES).await?;
    Ok(rows
        .into_iter()
        .map(|row| Delivery {
            recipient: shown(user, &row.recipient),
            kind: row.kind,
            state: row.state,
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            queued_at: row.created_at,
            finished_at: row.finished_at,
            last_error: row.last_error.map(|error| shown_in_text(user, &error)),
            receipt: row.delivery_state,
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
        for row in db::throttles::of_key(conn, key, &HOLDER_SCOPES).await? {
            let (scope, hits, locked_until) = (row.scope, row.hits, row.locked_until);
            let (target, label) = if key == holder_key {
                let on_device = row.key != holder_key;
                let what = match scope {
                    Scope::SubjectWrongCode => "Wrong codes typed today, for this holder",
                    Scope::SubjectWrongTotal => {
                        "Wrong codes typed in all, for this holder (a lock-out here lasts until released)"
                    }
                    _ => "Codes voided by wrong tries, for this holder",
                };
                let label = if on_device {
                    format!("{what}, from a browser they unlocked a card in before")
                } else {
                    what.to_owned()
                };
                (ThrottleTarget::Holder(id.clone()), label)
            } else {
                let what = if scope == Scope::ClientStart {
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
                scope: scope.as_str().to_owned(),
                label,
                target,
                hits: u64::try_from(hits).unwrap_or(0),
                locked_until: (locked_until > now).then_some(locked_until),
            });
        }
    }
    Ok(found)
}
