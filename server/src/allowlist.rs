//! The email domain allow list: only addresses in these domains qualify for self-service.
//! Changed by operators on the command line and by RA managers in the status view.

use std::collections::HashMap;

use anyhow::Context;
use sqlx::AnyPool;

use crate::db::{Conn, Engine};
use unlock_protocol::EmailAddress;
use unlock_protocol::staff::AllowedDomain;

use crate::clock::Millis;

/// A domain as someone typed it (`trust.example`, `@trust.example`), checked with the same
/// rules as an email address's domain; `None` if it is not one.
pub fn parse_domain(raw: &str) -> Option<String> {
    let domain = raw.trim().trim_start_matches('@');
    EmailAddress::parse(&format!("x@{domain}"))
        .ok()
        .map(|email| email.domain().to_owned())
}

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

/// The list, with how many addresses on profiles each domain covers (one pass over the
/// addresses, not one per domain).
pub async fn list(pool: &AnyPool) -> anyhow::Result<Vec<AllowedDomain>> {
    let domains: Vec<(String, Millis, String)> =
        sqlx::query_as("SELECT domain, added_at, added_by FROM allowed_domains ORDER BY domain")
            .fetch_all(pool)
            .await
            .context("read the allow list")?;
    let mut conn = pool.acquire().await.context("acquire a read connection")?;
    // The part after the '@': each dialect has its own string functions for it.
    let count = match Engine::of(&conn) {
        Engine::Sqlite => {
            "SELECT substr(email, instr(email, '@') + 1) AS domain, COUNT(*) FROM holder_emails
             GROUP BY domain"
        }
        Engine::Postgres => {
            "SELECT split_part(email, '@', 2) AS domain, COUNT(*) FROM holder_emails
             GROUP BY domain"
        }
    };
    let counts: HashMap<String, i64> = sqlx::query_as(count)
        .fetch_all(&mut *conn)
        .await
        .context("count the addresses per domain")?
        .into_iter()
        .collect();
    Ok(domains
        .into_iter()
        .map(|(domain, added_at, added_by)| AllowedDomain {
            addresses: u64::try_from(counts.get(&domain).copied().unwrap_or(0)).unwrap_or(0),
            domain,
            added_at,
            added_by,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::parse_domain;

    #[test]
    fn domains_parse_like_an_address_s() {
        assert_eq!(
            parse_domain(" @Trust.Example "),
            Some("trust.example".into())
        );
        assert_eq!(parse_domain("nhs.net"), Some("nhs.net".into()));
        for bad in [
            "",
            "trust",
            "trust..example",
            "tr ust.example",
            "trüst.example",
            "a@b.example",
        ] {
            assert_eq!(parse_domain(bad), None, "{bad:?}");
        }
    }
}
