//! Mobile numbers on holders' profiles: parsed with libphonenumber's rules (the
//! `phonenumber` crate) and kept in E.164 form, like `+447400123456`.

use phonenumber::country::Id;
use phonenumber::{Mode, Type};

/// A mobile number in E.164 form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MobileNumber(String);

/// Why a typed number is not a mobile number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MobileError {
    #[error("Enter a mobile number in the correct format, like 07700 900 982, or an email address")]
    NotANumber,
    #[error("This number can't receive text messages. Enter a mobile number, or an email address")]
    NotMobile,
}

impl MobileNumber {
    /// Reads a number as a person types it (spaces, dashes, brackets, a leading 0 for
    /// `region`, or `+` and a country code), refusing anything that is not a valid number
    /// that can take text messages.
    pub fn parse(raw: &str, region: Option<Id>) -> Result<Self, MobileError> {
        let raw = raw.trim();
        if raw.is_empty()
            || raw.len() > 32
            || !raw
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        {
            return Err(MobileError::NotANumber);
        }
        let number = phonenumber::parse(region, raw).map_err(|_| MobileError::NotANumber)?;
        if !phonenumber::is_valid(&number) {
            return Err(MobileError::NotANumber);
        }
        match number.number_type(&phonenumber::metadata::DATABASE) {
            Type::Mobile | Type::FixedLineOrMobile => {}
            _ => return Err(MobileError::NotMobile),
        }
        Ok(Self(number.format().mode(Mode::E164).to_string()))
    }

    /// Reads back a number stored in E.164 form.
    pub fn from_stored(stored: &str) -> Option<Self> {
        stored
            .starts_with('+')
            .then(|| Self::parse(stored, None).ok())
            .flatten()
    }

    /// `+447400123456`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but its last three digits hidden, for screens and staff views.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let shown = digits.len().saturating_sub(3);
        format!("+{}{}", "•".repeat(shown), &digits[shown..])
    }
}

impl std::fmt::Display for MobileNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: Option<Id> = Some(Id::GB);

    #[test]
    fn numbers_are_read_as_people_type_them() {
        for typed in [
            "07400 123456",
            "07400123456",
            "+44 7400 123456",
            "+44 (0)7400 123-456",
            " 0 7400 123 456 ",
        ] {
            assert_eq!(
                MobileNumber::parse(typed, GB).unwrap().as_str(),
                "+447400123456",
                "{typed}"
            );
        }
        assert_eq!(
            MobileNumber::parse("+33 6 12 34 56 78", GB)
                .unwrap()
                .as_str(),
            "+33612345678"
        );
    }

    #[test]
    fn what_is_not_a_mobile_number_is_refused() {
        for typed in ["", "hello", "0740012345a", "12", "07400 12345678901234"] {
            assert_eq!(
                MobileNumber::parse(typed, GB),
                Err(MobileError::NotANumber),
                "{typed}"
            );
        }
        // A London landline is a number, but not one a text reaches.
        assert_eq!(
            MobileNumber::parse("020 7946 0123", GB),
            Err(MobileError::NotMobile)
        );
    }

    #[test]
    fn stored_numbers_read_back_and_mask() {
        let number = MobileNumber::from_stored("+447400123456").unwrap();
        assert_eq!(number.masked(), "+•••••••••456");
        assert_eq!(MobileNumber::from_stored("07400123456"), None);
        assert_eq!(MobileNumber::from_stored("jane@trust.example"), None);
    }
}
