//! How guessable a staff password is, by a maintained estimator (zxcvbn). The protocol's
//! policy catches the obvious (length, runs, common passwords, the username); this catches
//! what only a dictionary and pattern search finds: names, dates, keyboard walks, l33t.

/// Words a guesser would try first for this service, beside the username.
const SERVICE_WORDS: [&str; 5] = ["smartcard", "unlock", "passcode", "nhs", "registration"];

/// Refuses a password an attacker would guess within about 10⁸ tries (zxcvbn's score below
/// 3), in a plain sentence with the estimator's advice.
pub fn refuse_guessable(password: &str, username: &str) -> Result<(), String> {
    let mut inputs = vec![username];
    inputs.extend(SERVICE_WORDS);
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    if estimate.score() >= zxcvbn::Score::Three {
        return Ok(());
    }
    let advice = estimate
        .feedback()
        .and_then(|feedback| feedback.warning())
        .map(|warning| format!(" {warning}."))
        .unwrap_or_default();
    Err(format!(
        "This password would be too easy to guess.{advice} Use three or four unrelated words."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessable_passwords_are_refused_and_passphrases_pass() {
        for weak in [
            "rita.rita.rita.1",
            "Password123456",
            "qwertyuiopasdf",
            "jennifer19841984",
        ] {
            assert!(refuse_guessable(weak, "rita").is_err(), "{weak}");
        }
        for strong in [
            "a long staff passphrase",
            "another long passphrase",
            "purple tractor river lamp",
        ] {
            assert_eq!(refuse_guessable(strong, "rita"), Ok(()), "{strong}");
        }
    }
}
