use std::fmt;

use serde::{Deserialize, Serialize};

/// RFC 5321 caps a forward path at 256 octets including the angle brackets.
pub const MAX_EMAIL_LENGTH: usize = 254;
const MAX_LOCAL_LENGTH: usize = 64;
const MAX_LABEL_LENGTH: usize = 63;

/// An email address as a holder would type it, normalised: trimmed, lower-cased, ASCII only.
///
/// Only plain `local@domain.tld` addresses are accepted. Non-ASCII characters are refused
/// outright, which rules out look-alike letters, zero-width and bidirectional control
/// characters: allow-listed organisation domains are ASCII.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress {
    address: String,
    at: usize,
}

/// Why a string is not an acceptable email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("Enter your email address")]
    Empty,
    #[error("Email address must be 254 characters or fewer")]
    TooLong,
    #[error("Email address can only contain letters a to z, numbers and the symbols . _ - + '")]
    InvalidCharacter,
    #[error("Enter an email address in the correct format, like name@example.org")]
    Format,
}

impl EmailAddress {
    /// Parses and normalises what a holder typed.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r' || c == '\n');
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.len() > MAX_EMAIL_LENGTH {
            return Err(EmailError::TooLong);
        }
        if !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EmailError::InvalidCharacter);
        }
        let address = trimmed.to_ascii_lowercase();
        let at = address.find('@').ok_or(EmailError::Format)?;
        let (local, domain) = (&address[..at], &address[at + 1..]);
        if !valid_local(local)? || !valid_domain(domain)? {
            return Err(EmailError::Format);
        }
        Ok(Self { address, at })
    }

    /// The whole normalised address.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The part after `@`, which the allow list is checked against.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }

    /// The address with most of the local part hidden, for screens and staff views.
    pub fn masked(&self) -> String {
        let local = &self.address[..self.at];
        let first = &local[..1];
        format!(
            "{first}{}@{}",
            "*".repeat(local.len().clamp(3, 8) - 1),
            self.domain()
        )
    }
}

fn valid_local(local: &str) -> Result<bool, EmailError> {
    if local.is_empty() || local.len() > MAX_LOCAL_LENGTH {
        return Ok(false);
    }
    if !local
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-+'".contains(&b))
    {
        return Err(EmailError::InvalidCharacter);
    }
    Ok(!local.starts_with('.') && !local.ends_with('.') && !local.contains(".."))
}

fn valid_domain(domain: &str) -> Result<bool, EmailError> {
    if domain.contains('@') {
        return Ok(false);
    }
    if !domain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(EmailError::InvalidCharacter);
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let well_formed = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_LENGTH
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_alphabetic()));
    Ok(well_formed)
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

/// Addresses are personal data: `Debug` shows the masked form so they stay out of logs.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.address
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_surrounding_space() {
        let email = EmailAddress::parse("  Jane.Doe@Example.NHS.uk \n").unwrap();
        assert_eq!(email.as_str(), "jane.doe@example.nhs.uk");
        assert_eq!(email.domain(), "example.nhs.uk");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for raw in [
            "plainaddress",
            "@example.org",
            "jane@",
            "jane@@example.org",
            "jane@example",
            "jane@example.",
            "jane@.example.org",
            "jane@-example.org",
            "jane@example-.org",
            "jane@exa..mple.org",
            ".jane@example.org",
            "jane.@example.org",
            "ja..ne@example.org",
            "jane@example.o1",
            "jane@a@example.org",
        ] {
            assert_eq!(EmailAddress::parse(raw), Err(EmailError::Format), "{raw}");
        }
    }

    #[test]
    fn refuses_unicode_tricks_and_odd_characters() {
        for raw in [
            "jane@exаmple.org",            // Cyrillic a
            "jane\u{200b}@example.org",    // zero-width space
            "jane@example.org\u{202e}gro", // right-to-left override
            "ｊane@example.org",           // full-width j
            "jane doe@example.org",
            "jane\"@example.org",
            "jane@exa_mple.org",
            "jane\0@example.org",
        ] {
            assert_eq!(
                EmailAddress::parse(raw),
                Err(EmailError::InvalidCharacter),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn refuses_empty_and_overlong() {
        assert_eq!(EmailAddress::parse("   "), Err(EmailError::Empty));
        let long = format!("{}@example.org", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long), Err(EmailError::TooLong));
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert_eq!(EmailAddress::parse(&long_local), Err(EmailError::Format));
    }

    #[test]
    fn masks_and_keeps_the_address_out_of_debug() {
        let email = EmailAddress::parse("jane.doe@example.org").unwrap();
        assert_eq!(email.masked(), "j*******@example.org");
        assert_eq!(
            EmailAddress::parse("jo@example.org").unwrap().masked(),
            "j**@example.org"
        );
        assert!(!format!("{email:?}").contains("jane"));
    }

    #[test]
    fn serde_round_trip_validates() {
        let email: EmailAddress = serde_json::from_str("\"A@B.org\"").unwrap();
        assert_eq!(serde_json::to_string(&email).unwrap(), "\"a@b.org\"");
        assert!(serde_json::from_str::<EmailAddress>("\"nope\"").is_err());
    }
}
