//! A new staff password and the policy it must follow.

use std::fmt;

use super::StaffUsername;

/// Shortest and longest staff password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Passwords long enough for the rule yet guessed first.
const COMMON_PASSWORDS: &[&str] = &[
    "password1234",
    "password12345",
    "password123456",
    "passwordpassword",
    "qwertyuiop123",
    "qwertyuiopasdf",
    "iloveyou1234",
    "letmein12345",
    "welcome12345",
    "changeme1234",
    "smartcard123",
    "smartcardunlock",
];

/// A new staff password: 12 to 128 characters, not one character repeated, not a run of
/// keys or digits, not a well-known one, and not containing the username. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct StaffPassword(String);

/// Why a new staff password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StaffPasswordError {
    #[error("Enter a new password")]
    Empty,
    #[error("Your password must be 12 characters or more")]
    TooShort,
    #[error("Your password must be 128 characters or fewer")]
    TooLong,
    #[error("Your password must not be one character repeated")]
    Repeated,
    #[error("Your password must not contain your username")]
    ContainsUsername,
    #[error("That password is too easy to guess. Choose a longer one, such as three random words")]
    Common,
}

impl StaffPassword {
    /// Checks a new password for the account `username`.
    pub fn parse(raw: &str, username: &StaffUsername) -> Result<Self, StaffPasswordError> {
        if raw.is_empty() {
            return Err(StaffPasswordError::Empty);
        }
        let chars = raw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(StaffPasswordError::TooShort);
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(StaffPasswordError::TooLong);
        }
        let mut distinct: Vec<char> = raw.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() == 1 {
            return Err(StaffPasswordError::Repeated);
        }
        let lower = raw.to_lowercase();
        if lower.contains(username.as_str()) {
            return Err(StaffPasswordError::ContainsUsername);
        }
        if COMMON_PASSWORDS.contains(&lower.as_str()) || is_run(&lower) || distinct.len() < 4 {
            return Err(StaffPasswordError::Common);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password itself, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Digits or letters in order (`123456789012`, `abcdefghijkl`), either way.
fn is_run(text: &str) -> bool {
    let bytes = text.as_bytes();
    let steps: Vec<i16> = bytes
        .windows(2)
        .map(|w| i16::from(w[1]) - i16::from(w[0]))
        .collect();
    let up = steps.iter().all(|s| *s == 1 || *s == -9);
    let down = steps.iter().all(|s| *s == -1 || *s == 9);
    text.is_ascii() && (up || down)
}

impl fmt::Debug for StaffPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaffPassword(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> StaffUsername {
        StaffUsername::parse("rita.ra").unwrap()
    }

    #[test]
    fn staff_passwords_follow_the_policy() {
        assert!(StaffPassword::parse("correct horse battery", &user()).is_ok());
        let refused = |raw: &str| StaffPassword::parse(raw, &user()).unwrap_err();
        assert_eq!(refused(""), StaffPasswordError::Empty);
        assert_eq!(refused("short pass"), StaffPasswordError::TooShort);
        assert_eq!(refused(&"x".repeat(129)), StaffPasswordError::TooLong);
        assert_eq!(refused("aaaaaaaaaaaaaa"), StaffPasswordError::Repeated);
        assert_eq!(
            refused("my Rita.RA password"),
            StaffPasswordError::ContainsUsername
        );
        assert_eq!(refused("Password1234"), StaffPasswordError::Common);
        assert_eq!(refused("123456789012"), StaffPasswordError::Common);
        assert_eq!(refused("abababababab"), StaffPasswordError::Common);
        assert!(
            !format!(
                "{:?}",
                StaffPassword::parse("correct horse battery", &user())
            )
            .contains("horse")
        );
    }
}
