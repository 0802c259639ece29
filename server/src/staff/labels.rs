//! The audit trail's steps in words, for staff: why steps were refused (the overview's
//! failures by reason), each step of a journey, and where a journey ended.

use unlock_protocol::api::IneligibleReason;

use crate::audit::{Action, Outcome};
use crate::db::states::{ClosedReason, JourneyState};

/// A refused step the overview counts: the audited action and outcome, the stable reason
/// it counts under, and the reason in words.
pub struct Failure {
    pub action: Action,
    pub outcome: Outcome,
    pub reason: &'static str,
    pub label: &'static str,
}

const fn failure(
    action: Action,
    outcome: Outcome,
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
        Action::JourneyStart,
        Outcome::DomainNotAllowed,
        "domain_not_allowed",
        "Email domain not on the allow list",
    ),
    failure(
        Action::JourneyStart,
        Outcome::ThrottledClient,
        "throttled",
        THROTTLED,
    ),
    failure(
        Action::JourneyStart,
        Outcome::ThrottledHolder,
        "throttled",
        THROTTLED,
    ),
    failure(
        Action::JourneyVerifyCode,
        Outcome::Throttled,
        "throttled",
        THROTTLED,
    ),
    failure(
        Action::JourneyResendCode,
        Outcome::Throttled,
        "throttled",
        THROTTLED,
    ),
    failure(
        Action::JourneyStart,
        Outcome::TooManyCodes,
        "too_many_codes",
        TOO_MANY_CODES,
    ),
    failure(
        Action::JourneyResendCode,
        Outcome::TooManyCodes,
        "too_many_codes",
        TOO_MANY_CODES,
    ),
    failure(
        Action::JourneyVerifyCode,
        Outcome::WrongCodeVoided,
        "code_voided",
        "Code voided after 3 wrong tries",
    ),
    failure(
        Action::JourneyVerifyCode,
        Outcome::Expired,
        "code_expired",
        CODE_EXPIRED,
    ),
    failure(
        Action::JourneyResendCode,
        Outcome::Expired,
        "code_expired",
        CODE_EXPIRED,
    ),
    failure(
        Action::JourneyRaCode,
        Outcome::ThrottledClient,
        "throttled",
        THROTTLED,
    ),
    failure(
        Action::JourneyRaCode,
        Outcome::ThrottledHolder,
        "throttled",
        THROTTLED,
    ),
    failure(
        Action::JourneyRaCode,
        Outcome::WrongCode,
        "ra_code_wrong",
        "Wrong RA unlock code typed",
    ),
    failure(
        Action::JourneyRaCode,
        Outcome::Expired,
        "ra_code_expired",
        "RA unlock code expired before it was typed in",
    ),
    failure(
        Action::JourneyRaCode,
        Outcome::NoLiveCode,
        "ra_code_used",
        "RA unlock code typed after it was used or replaced",
    ),
    failure(
        Action::JourneyPresentCard,
        Outcome::CardNotOnProfile,
        "card_not_on_profile",
        "Card not on the holder's profile",
    ),
    failure(
        Action::JourneyPresentCard,
        Outcome::CardNotUsable,
        "card_not_usable",
        "Card can't be unlocked here (cancelled, suspended, certificates expired or model unsupported)",
    ),
    failure(
        Action::JourneyPresentCard,
        Outcome::CertificateNotTrusted,
        "certificate_not_trusted",
        "Card's certificates not trusted or expired",
    ),
    failure(
        Action::JourneyPresentCard,
        Outcome::PukBlocked,
        "puk_blocked",
        "Card's PUK blocked (the RA must reset it)",
    ),
    failure(
        Action::JourneyRelease,
        Outcome::PossessionFailed,
        "possession_failed",
        "The card failed to prove it holds its own key",
    ),
    failure(
        Action::JourneyPresentCard,
        Outcome::Expired,
        "journey_expired",
        OUT_OF_TIME,
    ),
    failure(
        Action::JourneyRelease,
        Outcome::Expired,
        "journey_expired",
        OUT_OF_TIME,
    ),
    failure(
        Action::JourneyRelease,
        Outcome::TooManyAttempts,
        "too_many_attempts",
        "Too many unlock attempts with the card",
    ),
    failure(
        Action::JourneyReceipt,
        Outcome::ReceiptWrong,
        "receipt_wrong",
        "The card's proof of unlocking was wrong",
    ),
];

/// Journeys of holders on a profile that ran out of time before the card was unlocked.
pub const TIMED_OUT: (&str, &str) = ("timed_out", "Stopped before finishing (timed out)");

/// Journeys that ran out of time after a card secret was released but before the card's
/// receipt: the card may or may not have been unlocked, and every address was told it began.
pub const RELEASED_NO_RECEIPT: (&str, &str) = (
    "released_no_receipt",
    "Unlock key released, but the card never confirmed the unlock",
);

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
        Some(IneligibleReason::PukBlocked) => "card's PUK blocked",
        None => "reason not recorded",
    };
    (format!("ineligible_{name}"), why)
}

/// One audited step in words. Stored names this server does not know (from a newer
/// version, say) are shown as they are.
pub fn step(action: &str, outcome: &str, detail: Option<&str>) -> String {
    let (Some(known_action), Some(known_outcome)) =
        (Action::from_name(action), Outcome::from_name(outcome))
    else {
        return format!("{action}: {}", outcome.replace('_', " "));
    };
    use Action as A;
    use Outcome as O;
    let known = match (known_action, known_outcome) {
        (A::JourneyStart, O::CodeIssued) => "Started; a code was sent",
        (A::JourneyResendCode, O::CodeIssued) => "Asked for a new code; it was sent",
        (A::JourneyResendCode, O::TooSoon) => "Asked for a new code too soon",
        (A::JourneyVerifyCode, O::Verified) => "Typed the right code",
        (A::JourneyRaCode, O::Verified) => "Typed the unlock code an RA gave them",
        (A::JourneyVerifyCode, O::WrongCode) => "Typed a wrong code",
        (A::JourneyVerifyCode, O::NoLiveCode) => "Typed a code after it stopped working",
        (A::JourneyVerifyCode, O::NotAwaitingCode) => "Typed a code after that step was done",
        (A::JourneyPresentCard, O::Accepted) => "Card inserted and accepted",
        (A::JourneyRelease, O::Released) => "Unlock key released for the card",
        (A::JourneyRelease, O::ChallengeReused) => "The card's challenge was used already",
        (A::JourneyReceipt, O::Unlocked) => "Card unlocked",
        (A::JourneyReceipt, O::NoChallenge) => "Card's receipt came without a challenge",
        (A::OutboxUnlockNotice, O::Queued) => "Unlock notice queued to every address",
        (A::OutboxReleaseNotice, O::Queued) => "Unlock-started notice queued to every address",
        (_, O::NotVerified) => "A card step before the code was typed",
        (_, O::JourneyClosed) => "A step after the journey had ended",
        (_, O::NoCard) => "A card step before a card was accepted",
        (A::JourneyVerifyCode | A::JourneyRaCode, O::VerifiedIneligible) => {
            return format!(
                "Typed the right code, but self-service can't help: {}",
                ineligible(detail).1
            );
        }
        (action, outcome) => match FAILURES
            .iter()
            .find(|f| f.action == action && f.outcome == outcome)
        {
            Some(failure) => failure.label,
            None => return format!("{action}: {}", outcome.as_str().replace('_', " ")),
        },
    };
    known.to_owned()
}

/// Where a journey ended, or stands.
pub fn summary(
    state: JourneyState,
    closed_reason: Option<ClosedReason>,
    ineligible: Option<&str>,
    expired: bool,
    code_voided: bool,
    released: bool,
) -> String {
    use JourneyState as S;
    match (state, closed_reason) {
        (S::Closed, Some(ClosedReason::Unlocked)) => "Unlocked".into(),
        (S::Closed, Some(ClosedReason::TooManyAttempts)) => {
            "Stopped: too many unlock attempts".into()
        }
        (S::Closed, None) => "Closed".into(),
        (S::Ineligible, _) => format!(
            "Stopped: told to contact their RA ({})",
            self::ineligible(ineligible).1
        ),
        (_, _) if expired && code_voided => {
            "Stopped: code voided after 3 wrong tries, then ran out of time".into()
        }
        (S::AwaitingCode, _) if expired => "Stopped: the code was never typed in".into(),
        (S::Verified, _) if expired && released => {
            "Stopped: an unlock key was released, but the card never confirmed the unlock".into()
        }
        (_, _) if expired => "Stopped: ran out of time during the card steps".into(),
        (S::AwaitingCode, _) if code_voided => {
            "Waiting: code voided after 3 wrong tries (a new one can be asked for)".into()
        }
        (S::AwaitingCode, _) => "In progress: waiting for the code".into(),
        (S::Verified, _) => "In progress: card steps".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_reads_as_a_step() {
        for failure in FAILURES {
            assert_eq!(
                step(failure.action.as_str(), failure.outcome.as_str(), None),
                failure.label
            );
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
            summary(
                JourneyState::Closed,
                Some(ClosedReason::Unlocked),
                None,
                false,
                false,
                true
            ),
            "Unlocked"
        );
        assert_eq!(
            summary(
                JourneyState::Ineligible,
                None,
                Some("certificates_expired"),
                false,
                false,
                false
            ),
            "Stopped: told to contact their RA (certificates expired)"
        );
        assert_eq!(
            summary(JourneyState::AwaitingCode, None, None, true, false, false),
            "Stopped: the code was never typed in"
        );
        assert_eq!(
            summary(JourneyState::Verified, None, None, false, false, false),
            "In progress: card steps"
        );
        assert_eq!(
            summary(JourneyState::Verified, None, None, true, false, false),
            "Stopped: ran out of time during the card steps"
        );
        assert_eq!(
            summary(JourneyState::Verified, None, None, true, false, true),
            "Stopped: an unlock key was released, but the card never confirmed the unlock"
        );
    }
}
