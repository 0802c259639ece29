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
            let domain = parse_domain(&domain)?;
            let mut tx = db.begin().await?;
            let added = sqlx::query("INSERT OR IGNORE INTO allowed_domains (domain, added_at, added_by) VALUES (?, ?, 'operator')")
                .bind(&domain)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("add the domain")?
                .rows_affected();
            let outcome = if added > 0 {
                "added"
            } else {
                "already_allowed"
            };
            audit::record(
                &mut tx,
                now,
                Event {
                    actor: "operator",
                    action: "allowlist.add",
                    outcome,
                    detail: Some(&domain),
                    ..Event::default()
                },
            )
            .await?;
            tx.commit().await.context("commit")?;
            println!("{domain}: {}", outcome.replace('_', " "));
            Ok(())
        }
        AllowlistCommand::Remove { domain } => {
            let domain = parse_domain(&domain)?;
            let mut tx = db.begin().await?;
            let removed = sqlx::query("DELETE FROM allowed_domains WHERE domain = ?")
                .bind(&domain)
                .execute(&mut *tx)
                .await
                .context("remove the domain")?
                .rows_affected();
            let outcome = if removed > 0 {
                "removed"
            } else {
                "not_on_the_list"
            };
            audit::record(
                &mut tx,
                now,
                Event {
                    actor: "operator",
                    action: "allowlist.remove",
                    outcome,
                    detail: Some(&domain),
                    ..Event::default()
                },
            )
            .await?;
            tx.commit().await.context("commit")?;
            println!("{domain}: {}", outcome.replace('_', " "));
            Ok(())
        }
    }
}
