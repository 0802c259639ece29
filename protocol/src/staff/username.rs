//! A staff account's name.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A staff account's name: 2 to 64 of `a-z 0-9 . _ -`, lower-cased, starting with a letter
/// or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, example = "rita.ra")
)]
#[serde(try_from = "String", into = "String")]
pub struct StaffUsername(String);

/// Why a string is not a staff username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StaffUsernameError {
    #[error("Enter your username")]
    Empty,
    #[error(
        "A username must be 2 to 64 letters a to z, numbers, dots, hyphens or underscores, \
         starting with a letter or a number"
    )]
    Format,
}

impl StaffUsername {
    pub fn parse(raw: &str) -> Result<Self, StaffUsernameError> {
        let name = raw.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(StaffUsernameError::Empty);
        }
        let well_formed = (2..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if well_formed {
            Ok(Self(name))
        } else {
            Err(StaffUsernameError::Format)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StaffUsername {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StaffUsername {
    type Error = StaffUsernameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<StaffUsername> for String {
    fn from(value: StaffUsername) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased_and_plain() {
        assert_eq!(
            StaffUsername::parse(" Rita.RA ").unwrap().as_str(),
            "rita.ra"
        );
        for bad in ["", "a", ".rita", "rita ra", "rité", &"r".repeat(65)] {
            assert!(StaffUsername::parse(bad).is_err(), "{bad:?}");
        }
    }
}
