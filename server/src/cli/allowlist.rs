use anyhow::Context;

use super::AllowlistCommand;
use crate::allowlist;
use crate::audit::{self, Event};
use crate::db::Db;

pub async fn run(db: &Db, command: AllowlistCommand, now: i64) -> anyhow::Result<()> {
    let (action, raw_domain) = match command {
        AllowlistCommand::List => {
            for domain in allowlist::list(db.read_pool()).await? {
                println!("{}", domain.domain);
            }
            return Ok(());
        }
        AllowlistCommand::Add { domain } => ("allowlist.add", domain),
        AllowlistCommand::Remove { domain } => ("allowlist.remove", domain),
    };
    let domain = allowlist::parse_domain(&raw_domain)
        .with_context(|| format!("{raw_domain:?} is not a domain name"))?;
    let mut tx = db.begin().await?;
    let outcome = if action == "allowlist.add" {
        let added = allowlist::add(&mut tx, &domain, "operator", now).await?;
        if added { "added" } else { "already_allowed" }
    } else {
        let removed = allowlist::remove(&mut tx, &domain).await?;
        if removed {
            "removed"
        } else {
            "not_on_the_list"
        }
    };
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
