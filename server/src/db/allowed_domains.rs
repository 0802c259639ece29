//! `allowed_domains`: the email domains whose addresses qualify for self-service.

use anyhow::Context;

use super::Conn;
use crate::clock::Millis;

/// Allows `domain`; `false` if it was allowed already.
pub async fn add(
    conn: &mut Conn,
    domain: &str,
    added_by: &str,
    now: Millis,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO allowed_domains (domain, added_at, added_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(domain)
    .bind(now)
    .bind(added_by)
    .execute(conn)
    .await
    .with_context(|| format!("allow {domain}"))?;
    Ok(done.rows_affected() > 0)
}

/// Stops allowing `domain`; `false` if it was not on the list.
pub async fn remove(conn: &mut Conn, domain: &str) -> anyhow::Result<bool> {
    let done = sqlx::query("DELETE FROM allowed_domains WHERE domain = $1")
        .bind(domain)
        .execute(conn)
        .await
        .with_context(|| format!("stop allowing {domain}"))?;
    Ok(done.rows_affected() > 0)
}

/// An allowed domain, and who allowed it when.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Allowed {
    pub domain: String,
    pub added_at: Millis,
    pub added_by: String,
}

/// The allow list, by domain.
pub async fn list(conn: &mut Conn) -> anyhow::Result<Vec<Allowed>> {
    sqlx::query_as("SELECT domain, added_at, added_by FROM allowed_domains ORDER BY domain")
        .fetch_all(conn)
        .await
        .context("read the allow list")
}

/// Whether `domain` is allowed.
pub async fn contains(conn: &mut Conn, domain: &str) -> anyhow::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM allowed_domains WHERE domain = $1")
        .bind(domain)
        .fetch_optional(conn)
        .await
        .context("check the allow list")?;
    Ok(found.is_some())
}

/// The allowed domains, in order.
pub async fn names(conn: &mut Conn) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar("SELECT domain FROM allowed_domains ORDER BY domain")
        .fetch_all(conn)
        .await
        .context("read the allow list")
}
