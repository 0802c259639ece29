use std::fmt;

use serde::Deserialize;

/// Digits in a one-time security code.
pub const CODE_LENGTH: usize = 6;

/// A one-time security code as the holder typed it. Never printed: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct OneTimeCode(String);

/// Why a string is not a one-time code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OneTimeCodeError {
    #[error("Enter the security code")]
    Empty,
    #[error("The security code must be 6 numbers")]
    Format,
}

impl OneTimeCode {
    /// Parses a code, allowing the spaces or dashes people type or paste between digits.
    pub fn parse(raw: &str) -> Result<Self, OneTimeCodeError> {
        let digits: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '\t'))
            .collect();
        if digits.is_empty() {
            return Err(OneTimeCodeError::Empty);
        }
        if digits.len() == CODE_LENGTH && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(OneTimeCodeError::Format)
        }
    }

    /// The digits, for hashing. Keep them out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeCode(***)")
    }
}

impl TryFrom<String> for OneTimeCode {
    type Error = OneTimeCodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_six_digits_with_separators() {
        assert_eq!(OneTimeCode::parse(" 123 456 ").unwrap().expose(), "123456");
        assert_eq!(OneTimeCode::parse("123-456").unwrap().expose(), "123456");
    }

    #[test]
    fn refuses_other_input() {
        assert_eq!(OneTimeCode::parse(""), Err(OneTimeCodeError::Empty));
        for raw in ["12345", "1234567", "12345a", "١٢٣٤٥٦"] {
            assert_eq!(
                OneTimeCode::parse(raw),
                Err(OneTimeCodeError::Format),
                "{raw}"
            );
        }
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", OneTimeCode::parse("424242").unwrap()),
            "OneTimeCode(***)"
        );
    }
}
