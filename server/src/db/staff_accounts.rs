//! `staff_accounts`: staff who sign in to the status view, with their Argon2id password
//! hash, sealed authenticator secret and the last authenticator step they used.

use anyhow::Context;
use unlock_protocol::staff::Role;

use super::{Conn, Flag};
use crate::clock::Millis;

/// A staff account as stored.
#[derive(Clone, sqlx::FromRow)]
pub struct Account {
    pub username: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub holder_id: Option<String>,
    pub password_hash: String,
    #[sqlx(try_from = "Flag")]
    pub must_change_password: bool,
    pub totp_secret: Vec<u8>,
    pub totp_last_step: i64,
    pub disabled_at: Option<Millis>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("holder_id", &self.holder_id)
            .field("must_change_password", &self.must_change_password)
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

/// The account named `username`, if there is one.
pub async fn find(conn: &mut Conn, username: &str) -> anyhow::Result<Option<Account>> {
    sqlx::query_as(
        "SELECT username, role, holder_id, password_hash, must_change_password, totp_secret,
                totp_last_step, disabled_at
         FROM staff_accounts WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(conn)
    .await
    .context("read the staff account")
}

/// New credentials: a password hash and a sealed authenticator secret.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub password_hash: &'a str,
    pub sealed_secret: &'a [u8],
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

/// Adds an account that must change its one-time password at first sign-in; `false` if
/// the username is taken (its primary key says so).
pub async fn add(
    conn: &mut Conn,
    username: &str,
    role: Role,
    holder_id: Option<&str>,
    credentials: Credentials<'_>,
    now: Millis,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO staff_accounts (username, role, holder_id, password_hash, must_change_password,
                                     totp_secret, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'operator')
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(username)
    .bind(role.as_str())
    .bind(holder_id)
    .bind(credentials.password_hash)
    .bind(1_i64)
    .bind(credentials.sealed_secret)
    .bind(now)
    .execute(conn)
    .await
    .context("add the staff account")?;
    Ok(done.rows_affected() == 1)
}

/// Gives an enabled account new credentials it must replace at its next sign-in; whether
/// there was such an account (a disabled one stays disabled and unchanged).
pub async fn reset(
    conn: &mut Conn,
    username: &str,
    credentials: Credentials<'_>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE staff_accounts SET password_hash = $1, must_change_password = $2, totp_secret = $3,
                totp_last_step = 0
         WHERE username = $4 AND disabled_at IS NULL",
    )
    .bind(credentials.password_hash)
    .bind(1_i64)
    .bind(credentials.sealed_secret)
    .bind(username)
    .execute(conn)
    .await
    .context("reset the staff account")?;
    Ok(done.rows_affected() == 1)
}

/// Disables an enabled account; whether there was one.
pub async fn disable(conn: &mut Conn, username: &str, now: Millis) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE staff_accounts SET disabled_at = $1 WHERE username = $2 AND disabled_at IS NULL",
    )
    .bind(now)
    .bind(username)
    .execute(conn)
    .await
    .context("disable the staff account")?;
    Ok(done.rows_affected() == 1)
}

/// Stores a new hash of the same password (the work factor changed).
pub async fn rehash(conn: &mut Conn, username: &str, hash: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE staff_accounts SET password_hash = $1 WHERE username = $2")
        .bind(hash)
        .bind(username)
        .execute(conn)
        .await
        .context("re-hash the password")?;
    Ok(())
}

/// Stores the password the account chose, which it need not change again.
pub async fn set_password(
    conn: &mut Conn,
    username: &str,
    hash: &str,
    now: Millis,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE staff_accounts SET password_hash = $1, must_change_password = $2,
                password_changed_at = $3
         WHERE username = $4",
    )
    .bind(hash)
    .bind(0_i64)
    .bind(now)
    .bind(username)
    .execute(conn)
    .await
    .context("store the new password")?;
    Ok(())
}

/// Spends authenticator step `step` if it is later than the last one the account used;
/// whether it was (a step is accepted once, even from two instances at once).
pub async fn spend_step(conn: &mut Conn, username: &str, step: i64) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE staff_accounts SET totp_last_step = $1 WHERE username = $2 AND totp_last_step < $1",
    )
    .bind(step)
    .bind(username)
    .execute(conn)
    .await
    .context("spend the authenticator code")?;
    Ok(done.rows_affected() == 1)
}

/// One line of `staff list`.
#[derive(Debug, sqlx::FromRow)]
pub struct Listed {
    pub username: String,
    pub role: String,
    pub holder_id: Option<String>,
    #[sqlx(try_from = "Flag")]
    pub must_change_password: bool,
    pub disabled_at: Option<Millis>,
    pub created_at: Millis,
}

/// Every account, by username.
pub async fn list(conn: &mut Conn) -> anyhow::Result<Vec<Listed>> {
    sqlx::query_as(
        "SELECT username, role, holder_id, must_change_password, disabled_at, created_at
         FROM staff_accounts ORDER BY username",
    )
    .fetch_all(conn)
    .await
    .context("list staff accounts")
}
