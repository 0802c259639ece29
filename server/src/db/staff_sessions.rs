//! `staff_sessions`: a staff member's sign-in, found by the keyed hash of its cookie token,
//! from the right password through the authenticator code (and a new password) to active.

use anyhow::Context;

use super::Conn;
use super::staff_accounts::Account;
use super::states::SessionStage;
use crate::clock::Millis;

/// A session, with its account.
#[derive(Debug, sqlx::FromRow)]
pub struct Session {
    pub stage: SessionStage,
    pub last_seen_at: Millis,
    pub expires_at: Millis,
    #[sqlx(flatten)]
    pub account: Account,
}

/// The session whose token has this keyed hash.
pub async fn find(conn: &mut Conn, token_hash: &[u8]) -> anyhow::Result<Option<Session>> {
    sqlx::query_as(
        "SELECT s.stage, s.last_seen_at, s.expires_at,
                a.username, a.role, a.holder_id, a.password_hash, a.must_change_password,
                a.totp_secret, a.totp_last_step, a.disabled_at
         FROM staff_sessions s JOIN staff_accounts a ON a.username = s.username
         WHERE s.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
    .context("find the staff session")
}

/// A session to begin, after the right password.
pub struct NewSession<'a> {
    pub token_hash: &'a [u8],
    pub username: &'a str,
    pub client_addr: &'a str,
    pub expires_at: Millis,
}

impl std::fmt::Debug for NewSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("username", &self.username)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Begins a session awaiting the authenticator code.
pub async fn begin(conn: &mut Conn, session: &NewSession<'_>, now: Millis) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO staff_sessions (token_hash, username, stage, client_addr, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $5, $6)",
    )
    .bind(session.token_hash)
    .bind(session.username)
    .bind(SessionStage::SecondFactor)
    .bind(session.client_addr)
    .bind(now)
    .bind(session.expires_at)
    .execute(conn)
    .await
    .context("begin a staff session")?;
    Ok(())
}

/// Forgets sessions that ended by `now` or were idle for `idle_limit`.
pub async fn forget_ended(conn: &mut Conn, now: Millis, idle_limit: Millis) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM staff_sessions WHERE expires_at <= $1 OR last_seen_at <= $1 - $2")
        .bind(now)
        .bind(idle_limit)
        .execute(conn)
        .await
        .context("forget ended staff sessions")?;
    Ok(())
}

/// Moves a session to `stage` until `expires_at`; each step counts as activity.
/// Gives the session with token hash `old` the token hash `new` (a new token once the
/// second factor is done, so a token seen before then is worth nothing after).
pub async fn replace_token(conn: &mut Conn, old: &[u8], new: &[u8]) -> anyhow::Result<()> {
    sqlx::query("UPDATE staff_sessions SET token_hash = $1 WHERE token_hash = $2")
        .bind(new)
        .bind(old)
        .execute(conn)
        .await
        .context("renew the session's token")?;
    Ok(())
}

pub async fn set_stage(
    conn: &mut Conn,
    token_hash: &[u8],
    stage: SessionStage,
    now: Millis,
    expires_at: Millis,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE staff_sessions SET stage = $1, last_seen_at = $2, expires_at = $3 WHERE token_hash = $4",
    )
    .bind(stage)
    .bind(now)
    .bind(expires_at)
    .bind(token_hash)
    .execute(conn)
    .await
    .context("move the staff session on")?;
    Ok(())
}

/// Notes activity on the session.
pub async fn touch(conn: &mut Conn, token_hash: &[u8], now: Millis) -> anyhow::Result<()> {
    sqlx::query("UPDATE staff_sessions SET last_seen_at = $1 WHERE token_hash = $2")
        .bind(now)
        .bind(token_hash)
        .execute(conn)
        .await
        .context("note the session's activity")?;
    Ok(())
}

/// Ends the session; the username it was for, if there was one.
pub async fn end(conn: &mut Conn, token_hash: &[u8]) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("DELETE FROM staff_sessions WHERE token_hash = $1 RETURNING username")
        .bind(token_hash)
        .fetch_optional(conn)
        .await
        .context("end the staff session")
}

/// Ends every session of `username`.
pub async fn end_all_of(conn: &mut Conn, username: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM staff_sessions WHERE username = $1")
        .bind(username)
        .execute(conn)
        .await
        .context("end the account's sessions")?;
    Ok(())
}

/// Ends every session of `username` but the one whose token has the hash `keep`.
pub async fn end_others_of(conn: &mut Conn, username: &str, keep: &[u8]) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM staff_sessions WHERE username = $1 AND token_hash != $2")
        .bind(username)
        .bind(keep)
        .execute(conn)
        .await
        .context("end the account's other sessions")?;
    Ok(())
}
