use std::fmt;

use serde::{Deserialize, Serialize};

/// The 12-digit user id on a holder's identity profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, example = "123456789012")
)]
#[serde(try_from = "String", into = "String")]
pub struct HolderId(String);

/// Why a string is not a holder id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HolderIdError {
    #[error("A user id must be 12 digits, like 1234 5678 9012")]
    Format,
}

impl HolderId {
    /// Parses a user id, allowing the spaces people type between groups of digits.
    pub fn parse(raw: &str) -> Result<Self, HolderIdError> {
        let digits: String = raw.chars().filter(|c| *c != ' ').collect();
        if digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(HolderIdError::Format)
        }
    }

    /// The 12 digits without spaces.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HolderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for HolderId {
    type Error = HolderIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<HolderId> for String {
    fn from(value: HolderId) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_twelve_digits_with_optional_spaces() {
        assert_eq!(
            HolderId::parse("1234 5678 9012").unwrap().as_str(),
            "123456789012"
        );
        assert_eq!(
            HolderId::parse("123456789012").unwrap().to_string(),
            "123456789012"
        );
    }

    #[test]
    fn refuses_anything_else() {
        for raw in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "١٢٣٤٥٦٧٨٩٠١٢",
        ] {
            assert_eq!(HolderId::parse(raw), Err(HolderIdError::Format), "{raw}");
        }
    }
}
