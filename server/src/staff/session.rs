//! Staff sessions: who a session cookie names, whether the session is still good (idle and
//! absolute time limits, the account not disabled), sign-out, and the role check every staff
//! endpoint makes. Sessions live in the database, so every instance serves them; only a hash
//! of the cookie's token is stored.

use unlock_protocol::staff::{Me, Permission, Role, StaffUsername};
use unlock_protocol::{ErrorCode, HolderId};

use super::accounts::Account;
use crate::audit::{self, Action, Audited, Event, Outcome};
use crate::clock::{Millis, seconds_until};
use crate::db::states::SessionStage;
use crate::db::{self, Conn};
use crate::error::Failure;
use crate::secrets::token_hash;
use crate::state::AppState;

/// A signed-in staff member, as every staff endpoint sees them.
#[derive(Debug, Clone)]
pub struct StaffUser {
    pub username: StaffUsername,
    pub role: Role,
    /// Their own smartcard profile, which they may not act on.
    pub holder_id: Option<HolderId>,
    /// The address the request came from.
    pub client: String,
    session_ends_at: Millis,
}

impl StaffUser {
    /// How the audit trail names them.
    pub fn actor(&self) -> String {
        format!("staff:{}", self.username)
    }

    /// Them as the actor of an audited write from their client, on `holder`'s profile.
    pub fn audit_actor(&self, holder: Option<&HolderId>) -> audit::Actor {
        audit::Actor {
            name: self.actor(),
            client: Some(self.client.clone()),
            holder: holder.map(|id| id.as_str().to_owned()),
        }
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.role.may(permission)
    }

    /// Whether `holder` is their own profile.
    pub fn owns(&self, holder: &HolderId) -> bool {
        self.holder_id.as_ref() == Some(holder)
    }

    pub fn me(&self, state: &AppState) -> Me {
        Me {
            username: self.username.clone(),
            role: self.role,
            holder_id: self.holder_id.clone(),
            idle_timeout_seconds: state.config.staff.idle_timeout_minutes * 60,
            session_ends_in_seconds: seconds_until(state.clock.now(), self.session_ends_at),
            time_zone: screen_time_zone(state),
        }
    }
}

/// The service's zone over the years a staff screen may show: from 10 years back (older
/// records take the offset then) to 2 years ahead.
fn screen_time_zone(state: &AppState) -> unlock_protocol::staff::TimeZoneRules {
    const YEAR: i64 = 365 * 86_400_000;
    let now = state.clock.now();
    state
        .config
        .time_zone
        .rules(now.saturating_sub(10 * YEAR), now.saturating_add(2 * YEAR))
}

/// A session joined with its account.
pub(super) use crate::db::staff_sessions::Session;

/// The session a cookie token names.
pub(super) async fn find_session(conn: &mut Conn, token: &str) -> anyhow::Result<Option<Session>> {
    db::staff_sessions::find(conn, &token_hash(token)).await
}

fn session_expired() -> Failure {
    Failure::client(ErrorCode::SessionExpired)
}

pub(super) fn staff_event<'a>(
    actor: &'a str,
    action: Action,
    outcome: Outcome,
    client: &'a str,
) -> Event<'a> {
    Event {
        client_addr: Some(client),
        ..Event::new(actor, action, outcome)
    }
}

/// `POST /api/staff/sign-out`: ends the session, if there is one.
pub async fn sign_out(state: &AppState, token: Option<&str>, client: &str) -> Result<(), Failure> {
    let Some(token) = token.map(str::to_owned) else {
        return Ok(());
    };
    let (job_state, client) = (state.clone(), client.to_owned());
    state
        .db
        .write(move |conn| {
            let (state, token, client) = (job_state.clone(), token.clone(), client.clone());
            Box::pin(async move {
                let now = state.clock.now();
                let ended = db::staff_sessions::end(conn, &token_hash(&token)).await?;
                if let Some(username) = ended {
                    let actor = format!("staff:{username}");
                    let event = staff_event(&actor, Action::StaffSignOut, Outcome::Done, &client);
                    audit::record(conn, now, event).await?;
                }
                Ok(())
            })
        })
        .await?;
    Ok(())
}

/// The signed-in staff member a cookie names. A request the page makes by itself
/// (`background`, such as the overview's refresh) does not count as activity, so a screen
/// left open still signs out when idle.
pub async fn authenticate(
    state: &AppState,
    token: Option<&str>,
    client: &str,
    background: bool,
) -> Result<StaffUser, Failure> {
    let token = token
        .ok_or_else(|| Failure::client(ErrorCode::NotSignedIn))?
        .to_owned();
    let now = state.clock.now();
    let session = find_session(&mut *state.db.reader().await?, &token).await?;
    let Some(session) = session else {
        return Err(session_expired());
    };
    if session.stage != SessionStage::Active {
        return Err(Failure::client(ErrorCode::NotSignedIn));
    }
    let idle_limit = idle_limit(state);
    let ending = if session.account.disabled_at.is_some() {
        Some(Outcome::Disabled)
    } else if now >= session.expires_at {
        Some(Outcome::Expired)
    } else if now - session.last_seen_at >= idle_limit {
        Some(Outcome::Idle)
    } else {
        None
    };
    let client = client.to_owned();
    if let Some(why) = ending {
        let username = session.account.username.clone();
        state
            .db
            .write(move |conn| {
                let (token, username, client) = (token.clone(), username.clone(), client.clone());
                Box::pin(async move {
                    db::staff_sessions::end(conn, &token_hash(&token)).await?;
                    let actor = format!("staff:{username}");
                    let event = staff_event(&actor, Action::StaffSessionEnd, why, &client);
                    audit::record(conn, now, event).await
                })
            })
            .await?;
        return Err(session_expired());
    }
    if !background {
        state
            .db
            .write(move |conn| {
                let token = token.clone();
                Box::pin(
                    async move { db::staff_sessions::touch(conn, &token_hash(&token), now).await },
                )
            })
            .await?;
    }
    signed_in(&session.account, &client, session.expires_at).map_err(Failure::from)
}

/// Refuses, and audits, a request the staff member's role does not allow.
pub async fn require(
    state: &AppState,
    user: &StaffUser,
    permission: Permission,
    action: Action,
) -> Result<(), Failure> {
    if user.may(permission) {
        return Ok(());
    }
    let actor = user.audit_actor(None);
    audit::write(&state.db, &state.clock, actor, action, |_, _| {
        Box::pin(async {
            let forbidden = Failure::client(ErrorCode::Forbidden);
            Ok(Audited::<()>::refused(Outcome::Forbidden, None, forbidden))
        })
    })
    .await
}

/// How long a session may go without a request.
pub(super) fn idle_limit(state: &AppState) -> Millis {
    i64::try_from(state.config.staff.idle_timeout_minutes * 60_000).unwrap_or(i64::MAX)
}

pub(super) fn session_end(state: &AppState, now: Millis) -> Millis {
    now + i64::try_from(state.config.staff.session_hours * 3_600_000).unwrap_or(i64::MAX)
}

/// Moves a session to its next stage; each step counts as activity.
pub(super) async fn set_stage(
    conn: &mut Conn,
    token: &str,
    stage: SessionStage,
    now: Millis,
    expires_at: Millis,
) -> anyhow::Result<()> {
    db::staff_sessions::set_stage(conn, &token_hash(token), stage, now, expires_at).await
}

pub(super) fn signed_in(
    account: &Account,
    client: &str,
    session_ends_at: Millis,
) -> anyhow::Result<StaffUser> {
    Ok(StaffUser {
        username: StaffUsername::parse(&account.username)
            .map_err(|_| anyhow::anyhow!("a stored staff username does not parse"))?,
        role: account.role,
        holder_id: account
            .holder_id
            .as_deref()
            .map(HolderId::parse)
            .transpose()
            .map_err(|_| anyhow::anyhow!("a staff account's holder id does not parse"))?,
        client: client.to_owned(),
        session_ends_at,
    })
}
