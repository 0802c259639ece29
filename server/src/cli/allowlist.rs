use anyhow::Context;
use unlock_protocol::EmailAddress;

use super::AllowlistCommand;
use crate::audit::{self, Event};
use crate::db::Db;

/// A domain as an operator typed it, checked with the same rules as an email address's.
fn parse_domain(raw: &str) -> anyhow::Result<String> {
    let domain = raw.trim().trim_start_matches('@');
    let email = EmailAddress::parse(&format!("x@{domain}"))
        .map_err(|_| anyhow::anyhow!("{raw:?} is not a domain name"))?;
    Ok(email.domain().to_owned())
}

pub async fn run(db: &Db, command: AllowlistCommand, now: i64) -> anyhow::Result<()> {
    match command {
        AllowlistCommand::List => {
            let domains: Vec<String> =
                sqlx::query_scalar("SELECT domain FROM allowed_domains ORDER BY domain")
                    .fetch_all(&db.read)
                    .await
                    .context("list allowed domains")?;
            for domain in domains {
                println!("{domain}");
            }
            Ok(())
        }
        AllowlistCommand::Add { domain } => {
            let sql = "INSERT OR IGNORE INTO allowed_domains (domain, added_at, added_by) VALUES (?1, ?2, 'operator')";
            change(
                db,
                now,
                "allowlist.add",
                sql,
                &domain,
                ("added", "already_allowed"),
            )
            .await
        }
        AllowlistCommand::Remove { domain } => {
            let sql = "DELETE FROM allowed_domains WHERE domain = ?1";
            change(
                db,
                now,
                "allowlist.remove",
                sql,
                &domain,
                ("removed", "not_on_the_list"),
            )
            .await
        }
    }
}

/// Runs one change to the allow list (`sql` takes the domain as ?1 and may use the time as
/// ?2; SQLite ignores a bound value the statement does not name), audits it with
/// the outcome for "a row changed" or "nothing changed", and reports it.
async fn change(
    db: &Db,
    now: i64,
    action: &str,
    sql: &'static str,
    raw_domain: &str,
    (changed, unchanged): (&str, &str),
) -> anyhow::Result<()> {
    let domain = parse_domain(raw_domain)?;
    let mut tx = db.begin().await?;
    let rows = sqlx::query(sql)
        .bind(&domain)
        .bind(now)
        .execute(&mut *tx)
        .await
        .with_context(|| format!("{action} {domain}"))?
        .rows_affected();
    let outcome = if rows > 0 { changed } else { unchanged };
    let event = Event {
        actor: "operator",
        action,
        outcome,
        detail: Some(&domain),
        ..Event::default()
    };
    audit::record(&mut tx, now, event).await?;
    tx.commit().await.context("commit")?;
    println!("{domain}: {}", outcome.replace('_', " "));
    Ok(())
}
