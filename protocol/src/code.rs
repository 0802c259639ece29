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

/// Characters of an unlock code an RA reads out: no 0/O, 1/I/L or U/V look-alikes, so
/// what is heard over the phone is what is typed.
pub const RA_CODE_ALPHABET: &[u8; 29] = b"ABCDEFGHJKMNPQRSTWXYZ23456789";
/// Characters in an RA's unlock code (29^12 is about 2^58).
pub const RA_CODE_LENGTH: usize = 12;

/// A one-time unlock code a Registration Authority issued and read out to the holder, as
/// typed: 12 characters of [`RA_CODE_ALPHABET`], in any case, with any spaces or dashes.
/// Never printed: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RaUnlockCode(String);

/// Why a string is not an RA's unlock code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RaUnlockCodeError {
    #[error("Enter the unlock code your Registration Authority gave you")]
    Empty,
    #[error("The unlock code must be 12 letters and numbers, like ABCD-EFGH-JKMN")]
    Format,
}

impl RaUnlockCode {
    /// Parses a code as typed: case, spaces and dashes don't matter.
    pub fn parse(raw: &str) -> Result<Self, RaUnlockCodeError> {
        let code: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '\t'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if code.is_empty() {
            return Err(RaUnlockCodeError::Empty);
        }
        if code.len() == RA_CODE_LENGTH && code.bytes().all(|b| RA_CODE_ALPHABET.contains(&b)) {
            Ok(Self(code))
        } else {
            Err(RaUnlockCodeError::Format)
        }
    }

    /// The 12 characters, for hashing. Keep them out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The code as it is shown and read out: `ABCD-EFGH-JKMN`.
    pub fn grouped(&self) -> String {
        let mut shown = String::with_capacity(RA_CODE_LENGTH + 2);
        for (n, c) in self.0.chars().enumerate() {
            if n > 0 && n % 4 == 0 {
                shown.push('-');
            }
            shown.push(c);
        }
        shown
    }
}

impl fmt::Debug for RaUnlockCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RaUnlockCode(***)")
    }
}

impl TryFrom<String> for RaUnlockCode {
    type Error = RaUnlockCodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ra_code_is_read_in_any_case_with_separators() {
        let code = RaUnlockCode::parse(" abcd-EFGH jkmn ").unwrap();
        assert_eq!(code.expose(), "ABCDEFGHJKMN");
        assert_eq!(code.grouped(), "ABCD-EFGH-JKMN");
        assert_eq!(RaUnlockCode::parse(""), Err(RaUnlockCodeError::Empty));
        // Look-alikes are not in the alphabet; nor are short or long codes.
        for raw in [
            "ABCD-EFGH-JKM0",
            "ABCD-EFGH-JKMI",
            "ABCDEFGHJKM",
            "ABCDEFGHJKMNP",
        ] {
            assert_eq!(
                RaUnlockCode::parse(raw),
                Err(RaUnlockCodeError::Format),
                "{raw}"
            );
        }
        assert_eq!(format!("{code:?}"), "RaUnlockCode(***)");
    }

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
