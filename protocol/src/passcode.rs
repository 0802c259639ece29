use std::fmt;

/// Shortest and longest passcode the card accepts.
const MIN_DIGITS: usize = 6;
const MAX_DIGITS: usize = 8;

/// Values people choose so often that an attacker tries them first.
const COMMON: &[&str] = &[
    "121212", "123123", "112233", "123321", "131313", "159753", "147258", "258369", "102030",
    "696969", "11223344", "12341234", "12121212", "11112222", "13579246",
];

/// A new card passcode chosen by the holder. It travels from the page to the bridge to the
/// card only (never to the server); it parses on the way in and its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Passcode(String);

impl TryFrom<String> for Passcode {
    type Error = PasscodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Passcode> for String {
    fn from(value: Passcode) -> Self {
        value.0
    }
}

/// Why a passcode is refused, in words the holder can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasscodeError {
    #[error("Enter a new passcode")]
    Empty,
    #[error("Your passcode must only include numbers 0 to 9")]
    NotDigits,
    #[error("Your passcode must be 6 to 8 numbers long")]
    Length,
    #[error("Your passcode must not be the same number repeated, like 111111")]
    Repeated,
    #[error("Your passcode must not be numbers in order, like 123456 or 654321")]
    Sequence,
    #[error("That passcode is too easy to guess. Choose one that is harder to guess")]
    Common,
}

impl Passcode {
    /// Checks a passcode against the card policy.
    pub fn parse(raw: &str) -> Result<Self, PasscodeError> {
        if raw.is_empty() {
            return Err(PasscodeError::Empty);
        }
        if !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PasscodeError::NotDigits);
        }
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&raw.len()) {
            return Err(PasscodeError::Length);
        }
        let digits = raw.as_bytes();
        let steps: Vec<i16> = digits
            .windows(2)
            .map(|w| i16::from(w[1]) - i16::from(w[0]))
            .collect();
        if steps.iter().all(|s| *s == 0) {
            return Err(PasscodeError::Repeated);
        }
        if steps.iter().all(|s| *s == 1 || *s == -9) || steps.iter().all(|s| *s == -1 || *s == 9) {
            return Err(PasscodeError::Sequence);
        }
        if COMMON.contains(&raw) {
            return Err(PasscodeError::Common);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The digits, for the card. Keep them out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passcode(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_reasonable_passcodes() {
        for raw in ["284759", "9031742", "50918263"] {
            assert_eq!(Passcode::parse(raw).unwrap().expose(), raw);
        }
    }

    #[test]
    fn refuses_common_and_patterned_values() {
        let cases = [
            ("", PasscodeError::Empty),
            ("12a456", PasscodeError::NotDigits),
            ("１２３４５６", PasscodeError::NotDigits),
            ("12345", PasscodeError::Length),
            ("123456789", PasscodeError::Length),
            ("000000", PasscodeError::Repeated),
            ("111111", PasscodeError::Repeated),
            ("99999999", PasscodeError::Repeated),
            ("123456", PasscodeError::Sequence),
            ("12345678", PasscodeError::Sequence),
            ("345678", PasscodeError::Sequence),
            ("654321", PasscodeError::Sequence),
            ("87654321", PasscodeError::Sequence),
            ("890123", PasscodeError::Sequence),
            ("121212", PasscodeError::Common),
            ("11223344", PasscodeError::Common),
        ];
        for (raw, error) in cases {
            assert_eq!(Passcode::parse(raw), Err(error), "{raw}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", Passcode::parse("284759").unwrap()),
            "Passcode(***)"
        );
    }
}
