//! The audit trail's steps in words, for staff: why steps were refused (the overview's
//! failures by reason), each step of a journey, and where a journey ended.

use unlock_protocol::api::IneligibleReason;

/// A refused step the overview counts: the audited action and outcome, the stable reason
/// it counts under, and the reason in words.
pub struct Failure {
    pub action: &'static str,
    pub outcome: &'static str,
    pub reason: &'static str,
    pub label: &'static str,
}

const fn failure(
    action: &'static str,
    outcome: &'static str,
    reason: &'static str,
    label: &'static str,
) -> Failure {
    Failure {
        action,
        outcome,
        reason,
        label,
    }
}

const THROTTLED: &str = "Refused: too many attempts (throttled)";
const TOO_MANY_CODES: &str = "Refused: too many codes asked for in an hour";
const CODE_EXPIRED: &str = "Code expired before it was typed in";
const OUT_OF_TIME: &str = "Ran out of time during the card steps";

/// Every refusal the overview counts. Verified holders who can't self-serve are counted by
/// their [`IneligibleReason`] ([`ineligible`]), and journeys that simply ran out of
/// time as [`TIMED_OUT`].
pub const FAILURES: &[Failure] = &[
    failure(
        "journey.start",
        "domain_not_allowed",
        "domain_not_allowed",
        "Email domain not on the allow list",
    ),
    failure("journey.start", "throttled_client", "throttled", THROTTLED),
    failure("journey.start", "throttled_holder", "throttled", THROTTLED),
    failure("journey.verify_code", "throttled", "throttled", THROTTLED),
    failure("journey.resend_code", "throttled", "throttled", THROTTLED),
    failure(
        "journey.start",
        "too_many_codes",
        "too_many_codes",
        TOO_MANY_CODES,
    ),
    failure(
        "journey.resend_code",
        "too_many_codes",
        "too_many_codes",
        TOO_MANY_CODES,
    ),
    failure(
        "journey.verify_code",
        "wrong_code_voided",
        "code_voided",
        "Code voided after 3 wrong tries",
    ),
    failure(
        "journey.verify_code",
        "expired",
        "code_expired",
        CODE_EXPIRED,
    ),
    failure(
        "journey.resend_code",
        "expired",
        "code_expired",
        CODE_EXPIRED,
    ),
    failure(
        "journey.present_card",
        "card_not_on_profile",
        "card_not_on_profile",
        "Card not on the holder's profile",
    ),
    failure(
        "journey.present_card",
        "card_not_usable",
        "card_not_usable",
        "Card can't be unlocked here (cancelled, suspended, certificates expired or model unsupported)",
    ),
    failure(
        "journey.present_card",
        "expired",
        "journey_expired",
        OUT_OF_TIME,
    ),
    failure(
        "journey.cryptogram",
        "expired",
        "journey_expired",
        OUT_OF_TIME,
    ),
    failure(
        "journey.cryptogram",
        "too_many_attempts",
        "too_many_attempts",
        "Too many unlock attempts with the card",
    ),
    failure(
        "journey.receipt",
        "receipt_wrong",
        "receipt_wrong",
        "The card's proof of unlocking was wrong",
    ),
];

/// Journeys of holders on a profile that ran out of time before the card was unlocked.
pub const TIMED_OUT: (&str, &str) = ("timed_out", "Stopped before finishing (timed out)");

/// A verified holder who can't self-serve: the overview's stable reason name, and why in words.
pub fn ineligible(reason: Option<&str>) -> (String, &'static str) {
    let reason = reason.and_then(IneligibleReason::from_name);
    let name = reason.map_or("unknown", IneligibleReason::as_str);
    let why = match reason {
        Some(IneligibleReason::NoCard) => "no card on the profile",
        Some(IneligibleReason::CardCancelled) => "card cancelled",
        Some(IneligibleReason::CardSuspended) => "card suspended",
        Some(IneligibleReason::CertificatesExpired) => "certificates expired",
        Some(IneligibleReason::CardModelUnsupported) => "card model not supported",
        None => "reason not recorded",
    };
    (format!("ineligible_{name}"), why)
}

/// One audited step in words.
pub fn step(action: &str, outcome: &str, detail: Option<&str>) -> String {
    let known = match (action, outcome) {
        ("journey.start", "code_issued") => "Started; a code was sent",
        ("journey.resend_code", "code_issued") => "Asked for a new code; it was sent",
        ("journey.resend_code", "too_soon") => "Asked for a new code too soon",
        ("journey.verify_code", "verified") => "Typed the right code",
        ("journey.verify_code", "wrong_code") => "Typed a wrong code",
        ("journey.verify_code", "no_live_code") => "Typed a code after it stopped working",
        ("journey.verify_code", "not_awaiting_code") => "Typed a code after that step was done",
        ("journey.present_card", "accepted") => "Card inserted and accepted",
        ("journey.cryptogram", "released") => "Unlock key released for the card",
        ("journey.cryptogram", "challenge_reused") => "The card's challenge was used already",
        ("journey.receipt", "unlocked") => "Card unlocked",
        ("journey.receipt", "no_challenge") => "Card's receipt came without a challenge",
        ("outbox.unlock_notice", "queued") => "Unlock notice queued to every address",
        (_, "not_verified") => "A card step before the code was typed",
        (_, "journey_closed") => "A step after the journey had ended",
        (_, "no_card") => "A card step before a card was accepted",
        ("journey.verify_code", "verified_ineligible") => {
            return format!(
                "Typed the right code, but self-service can't help: {}",
                ineligible(detail).1
            );
        }
        _ => {
            if let Some(failure) = FAILURES
                .iter()
                .find(|f| f.action == action && f.outcome == outcome)
            {
                failure.label
            } else {
                return format!("{action}: {}", outcome.replace('_', " "));
            }
        }
    };
    known.to_owned()
}

/// Where a journey ended, or stands.
pub fn summary(
    state: &str,
    closed_reason: Option<&str>,
    ineligible: Option<&str>,
    expired: bool,
    code_voided: bool,
) -> String {
    match (state, closed_reason) {
        ("closed", Some("unlocked")) => "Unlocked".into(),
        ("closed", Some("too_many_attempts")) => "Stopped: too many unlock attempts".into(),
        ("closed", _) => "Closed".into(),
        ("ineligible", _) => format!(
            "Stopped: told to contact their RA ({})",
            self::ineligible(ineligible).1
        ),
        (_, _) if expired && code_voided => {
            "Stopped: code voided after 3 wrong tries, then ran out of time".into()
        }
        ("awaiting_code", _) if expired => "Stopped: the code was never typed in".into(),
        (_, _) if expired => "Stopped: ran out of time during the card steps".into(),
        ("awaiting_code", _) if code_voided => {
            "Waiting: code voided after 3 wrong tries (a new one can be asked for)".into()
        }
        ("awaiting_code", _) => "In progress: waiting for the code".into(),
        _ => "In progress: card steps".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_reads_as_a_step() {
        for failure in FAILURES {
            assert_eq!(step(failure.action, failure.outcome, None), failure.label);
        }
        assert_eq!(step("journey.receipt", "unlocked", None), "Card unlocked");
        assert_eq!(
            step("journey.new_thing", "went_well", None),
            "journey.new_thing: went well"
        );
        assert_eq!(
            step(
                "journey.verify_code",
                "verified_ineligible",
                Some("card_cancelled")
            ),
            "Typed the right code, but self-service can't help: card cancelled"
        );
    }

    #[test]
    fn journeys_say_where_they_ended() {
        assert_eq!(
            summary("closed", Some("unlocked"), None, false, false),
            "Unlocked"
        );
        assert_eq!(
            summary(
                "ineligible",
                None,
                Some("certificates_expired"),
                false,
                false
            ),
            "Stopped: told to contact their RA (certificates expired)"
        );
        assert_eq!(
            summary("awaiting_code", None, None, true, false),
            "Stopped: the code was never typed in"
        );
        assert_eq!(
            summary("verified", None, None, false, false),
            "In progress: card steps"
        );
    }
}
