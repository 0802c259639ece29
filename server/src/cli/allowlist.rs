use anyhow::Context;

use super::AllowlistCommand;
use crate::allowlist;
use crate::audit::{self, Action, Audited, Outcome};
use crate::clock::Clock;
use crate::db::Db;

pub async fn run(db: &Db, clock: &Clock, command: AllowlistCommand) -> anyhow::Result<()> {
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
    let job_domain = domain.clone();
    let outcome = audit::operator_write(db, clock, None, action, move |conn, now| {
        let domain = job_domain.clone();
        Box::pin(async move {
            let outcome = if action == Action::AllowlistAdd {
                if allowlist::add(conn, &domain, "operator", now).await? {
                    Outcome::Added
                } else {
                    Outcome::AlreadyAllowed
                }
            } else if allowlist::remove(conn, &domain).await? {
                Outcome::Removed
            } else {
                Outcome::NotOnTheList
            };
            Ok(Audited::done(outcome, Some(domain), outcome))
        })
    })
    .await?;
    println!("{domain}: {}", outcome.as_str().replace('_', " "));
    Ok(())
}
