//! The email domain allow list: only addresses in these domains qualify for self-service.
//! Changed by operators on the command line and by RA managers in the status view.

use unlock_protocol::EmailAddress;
use unlock_protocol::staff::AllowedDomain;

use crate::db::{self, Db};

/// A domain as someone typed it (`trust.example`, `@trust.example`), checked with the same
/// rules as an email address's domain; `None` if it is not one.
pub fn parse_domain(raw: &str) -> Option<String> {
    let domain = raw.trim().trim_start_matches('@');
    EmailAddress::parse(&format!("x@{domain}"))
        .ok()
        .map(|email| email.domain().to_owned())
}

pub use crate::db::allowed_domains::{add, remove};

/// The list, with how many addresses on profiles each domain covers.
pub async fn list(db: &Db) -> anyhow::Result<Vec<AllowedDomain>> {
    let mut conn = db.reader().await?;
    let domains = db::allowed_domains::list(&mut conn).await?;
    let counts = db::holder_emails::count_by_domain(&mut conn).await?;
    Ok(domains
        .into_iter()
        .map(|domain| AllowedDomain {
            addresses: u64::try_from(counts.get(&domain.domain).copied().unwrap_or(0)).unwrap_or(0),
            domain: domain.domain,
            added_at: domain.added_at,
            added_by: domain.added_by,
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
