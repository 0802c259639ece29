//! Staff sessions: who a session cookie names, whether the session is still good (idle and
//! absolute time limits, the account not disabled), sign-out, and the role check every staff
//! endpoint makes. Sessions live in the database, so every instance serves them; only a hash
//! of the cookie's token is stored.

use crate::db::Conn;
use anyhow::Context;
use unlock_protocol::staff::{Me, Permission, Role, StaffUsername};
use unlock_protocol::{ErrorCode, HolderId};

use super::accounts::Account;
use crate::audit::{self, Event};
use crate::clock::{Millis, seconds_until};
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
        }
    }
}

/// A session joined with its account.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct Session {
    pub(super) stage: String,
    pub(super) last_seen_at: Millis,
    pub(super) expires_at: Millis,
    #[sqlx(flatten)]
    pub(super) account: Account,
}

/// The session a cookie token names, read in a write transaction or straight from the pool.
pub(super) async fn find_session<'e>(
    conn: impl sqlx::Executor<'e, Database = sqlx::Any>,
    token: &str,
) -> anyhow::Result<Option<Session>> {
    sqlx::query_as(
        "SELECT s.stage, s.last_seen_at, s.expires_at,
                a.username, a.role, a.holder_id, a.password_hash, a.must_change_password,
                a.totp_secret, a.totp_last_step, a.disabled_at
         FROM staff_sessions s JOIN staff_accounts a ON a.username = s.username
         WHERE s.token_hash = $1",
    )
    .bind(token_hash(token))
    .fetch_optional(conn)
    .await
    .context("find the staff session")
}

fn session_expired() -> Failure {
    Failure::client(ErrorCode::SessionExpired)
}

pub(super) fn staff_event<'a>(
    actor: &'a str,
    action: &'a str,
    outcome: &'a str,
    client: &'a str,
) -> Event<'a> {
    Event {
        actor,
        action,
        outcome,
        client_addr: Some(client),
        ..Event::default()
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
                let ended: Option<String> = sqlx::query_scalar(
                    "DELETE FROM staff_sessions WHERE token_hash = $1 RETURNING username",
                )
                .bind(token_hash(&token))
                .fetch_optional(&mut *conn)
                .await
                .context("end the staff session")?;
                if let Some(username) = ended {
                    let actor = format!("staff:{username}");
                    let event = staff_event(&actor, "staff.sign_out", "done", &client);
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
    let session = find_session(state.db.read_pool(), &token).await?;
    let Some(session) = session else {
        return Err(session_expired());
    };
    if session.stage != "active" {
        return Err(Failure::client(ErrorCode::NotSignedIn));
    }
    let idle_limit = idle_limit(state);
    let ending = if session.account.disabled_at.is_some() {
        Some("disabled")
    } else if now >= session.expires_at {
        Some("expired")
    } else if now - session.last_seen_at >= idle_limit {
        Some("idle")
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
                    sqlx::query("DELETE FROM staff_sessions WHERE token_hash = $1")
                        .bind(token_hash(&token))
                        .execute(&mut *conn)
                        .await
                        .context("end the staff session")?;
                    let actor = format!("staff:{username}");
                    let event = staff_event(&actor, "staff.session_end", why, &client);
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
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE staff_sessions SET last_seen_at = $1 WHERE token_hash = $2",
                    )
                    .bind(now)
                    .bind(token_hash(&token))
                    .execute(conn)
                    .await
                    .context("note the session's activity")?;
                    Ok(())
                })
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
    action: &'static str,
) -> Result<(), Failure> {
    if user.may(permission) {
        return Ok(());
    }
    let (actor, client) = (user.actor(), user.client.clone());
    let now = state.clock.now();
    state
        .db
        .write(move |conn| {
            let (actor, client) = (actor.clone(), client.clone());
            Box::pin(async move {
                audit::record(conn, now, staff_event(&actor, action, "forbidden", &client)).await
            })
        })
        .await?;
    Err(Failure::client(ErrorCode::Forbidden))
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
    stage: &str,
    now: Millis,
    expires_at: Millis,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE staff_sessions SET stage = $1, last_seen_at = $2, expires_at = $3 WHERE token_hash = $4",
    )
    .bind(stage)
    .bind(now)
    .bind(expires_at)
        .bind(token_hash(token))
        .execute(conn)
        .await
        .context("move the staff session on")?;
    Ok(())
}

pub(super) fn signed_in(
    account: &Account,
    client: &str,
    session_ends_at: Millis,
) -> anyhow::Result<StaffUser> {
    Ok(StaffUser {
        username: StaffUsername::parse(&account.username)
            .map_err(|_| anyhow::anyhow!("a stored staff username does not parse"))?,
        role: account.role()?,
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
