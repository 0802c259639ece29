use anyhow::Context;

use super::AllowlistCommand;
use crate::allowlist;
use crate::audit::{self, Action, Event, Outcome};
use crate::db::Db;

pub async fn run(db: &Db, command: AllowlistCommand, now: i64) -> anyhow::Result<()> {
    let (action, raw_domain) = match command {
        AllowlistCommand::List => {
            for domain in allowlist::list(db).await? {
                println!("{}", domain.domain);
            }
            return Ok(());
        }
        AllowlistCommand::Add { domain } => (Action::AllowlistAdd, domain),
        AllowlistCommand::Remove { domain } => (Action::AllowlistRemove, domain),
    };
    let domain = allowlist::parse_domain(&raw_domain)
        .with_context(|| format!("{raw_domain:?} is not a domain name"))?;
    let mut tx = db.begin().await?;
    let outcome = if action == Action::AllowlistAdd {
        let added = allowlist::add(&mut tx, &domain, "operator", now).await?;
        if added {
            Outcome::Added
        } else {
            Outcome::AlreadyAllowed
        }
    } else {
        let removed = allowlist::remove(&mut tx, &domain).await?;
        if removed {
            Outcome::Removed
        } else {
            Outcome::NotOnTheList
        }
    };
    let event = Event {
        detail: Some(&domain),
        ..Event::new("operator", action, outcome)
    };
    audit::record(&mut tx, now, event).await?;
    tx.commit().await.context("commit")?;
    println!("{domain}: {}", outcome.as_str().replace('_', " "));
    Ok(())
}
