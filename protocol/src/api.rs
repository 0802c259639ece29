//! Bodies of the holder journey's HTTP API (`/api/journey...`).

use serde::{Deserialize, Serialize};

use crate::CardId;
use crate::card_steps::CardChallenge;

/// `POST /api/journeys`: start a journey with the email address or mobile number on the
/// holder's profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StartJourney {
    /// An email address, or a mobile number as the holder typed it (`07400 123456`,
    /// `+44 7400 123456`).
    pub email: String,
}

/// `POST /api/journey/code`: the one-time code the holder typed.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyCode {
    pub code: String,
}

impl std::fmt::Debug for VerifyCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyCode { code: *** }")
    }
}

/// `POST /api/journey/ra-code`: the one-time unlock code a Registration Authority read out
/// to the holder over the phone, typed instead of an emailed code. It names the holder by
/// itself, so it starts the journey too.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RedeemRaCode {
    pub code: String,
}

impl std::fmt::Debug for RedeemRaCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedeemRaCode { code: *** }")
    }
}

/// Where a journey stands; the body of every successful journey request.
///
/// Before the code is verified the view is the same whether or not the address belongs to
/// a holder, so it reveals nothing about who has a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum JourneyView {
    /// A code has been sent (if the address is on a profile); waiting for the holder to type it.
    AwaitingCode {
        /// The address the code went to, partly hidden.
        email_hint: String,
        /// Seconds until the code stops working.
        expires_in_seconds: u64,
        /// Wrong codes the holder may still type; 0 means ask for a new code.
        tries_left: u8,
        /// Seconds until a new code may be asked for; 0 means now.
        resend_in_seconds: u64,
    },
    /// The code was right and the holder may go on to insert their card.
    Verified {
        /// Seconds left to finish the journey.
        expires_in_seconds: u64,
    },
    /// The card read by the bridge belongs to the holder and can be unlocked: the page may
    /// now put the server's challenge to the card and send its proof for the release.
    CardAccepted {
        card: CardId,
        /// Seconds left to finish the journey.
        expires_in_seconds: u64,
        /// What to ask the card (in the answer to presenting it; a journey read back has
        /// none, and presenting the card again makes a new one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        challenge: Option<CardChallenge>,
    },
    /// The card's receipt checked out: the card is unlocked and the journey is over.
    Unlocked { card: CardId },
    /// The code was right but self-service can't help; the holder must contact their RA.
    ContactRa { reason: IneligibleReason },
    /// Time ran out before the code was verified.
    Expired,
}

/// Why a verified holder must contact their Registration Authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IneligibleReason {
    /// The profile has no smartcard.
    NoCard,
    /// Every card on the profile has been cancelled.
    CardCancelled,
    /// The holder's card is suspended.
    CardSuspended,
    /// The certificates on the holder's cards have expired.
    CertificatesExpired,
    /// The holder's card is a model this service cannot unlock.
    CardModelUnsupported,
    /// The card's PUK is blocked: only the RA can reset it.
    PukBlocked,
}

impl IneligibleReason {
    /// Every reason, for look-ups by name.
    pub const ALL: [Self; 6] = [
        Self::NoCard,
        Self::CardCancelled,
        Self::CardSuspended,
        Self::CertificatesExpired,
        Self::CardModelUnsupported,
        Self::PukBlocked,
    ];

    /// The snake_case name, as sent on the wire and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCard => "no_card",
            Self::CardCancelled => "card_cancelled",
            Self::CardSuspended => "card_suspended",
            Self::CertificatesExpired => "certificates_expired",
            Self::CardModelUnsupported => "card_model_unsupported",
            Self::PukBlocked => "puk_blocked",
        }
    }

    /// The reason with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == name)
    }

    /// The sentence shown to the holder.
    pub fn message(self) -> &'static str {
        match self {
            Self::NoCard => {
                "There is no smartcard on your profile. Contact your Registration Authority."
            }
            Self::CardCancelled => {
                "Your smartcard has been cancelled. Contact your Registration Authority for a new card."
            }
            Self::CardSuspended => {
                "Your smartcard has been suspended. Contact your Registration Authority."
            }
            Self::CertificatesExpired => {
                "The certificates on your smartcard have expired. Contact your Registration \
                 Authority to renew them."
            }
            Self::CardModelUnsupported => {
                "This service cannot unlock your type of smartcard yet. Contact your Registration \
                 Authority."
            }
            Self::PukBlocked => {
                "Your smartcard's unlock key is blocked, so it can't be unlocked online. Contact \
                 your Registration Authority."
            }
        }
    }
}

/// `GET /api/allowed-domains`: the email domains a holder's address may be on, so the page
/// can say which addresses qualify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllowedDomains {
    pub domains: Vec<String>,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub status: String,
    /// `/readyz` with a PKCS#11 token configured: `ok`, or `unavailable` while it does not
    /// answer (the card steps answer 503 then; the rest of the service works).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journey_view_is_tagged_by_stage() {
        let view = JourneyView::ContactRa {
            reason: IneligibleReason::CardCancelled,
        };
        assert_eq!(
            serde_json::to_string(&view).unwrap(),
            r#"{"stage":"contact_ra","reason":"card_cancelled"}"#
        );
    }

    #[test]
    fn reason_names_match_serde() {
        for reason in IneligibleReason::ALL {
            assert_eq!(
                serde_json::to_string(&reason).unwrap(),
                format!("\"{}\"", reason.as_str())
            );
            assert_eq!(IneligibleReason::from_name(reason.as_str()), Some(reason));
        }
    }

    #[test]
    fn verify_code_debug_hides_the_code() {
        let body = VerifyCode {
            code: "424242".into(),
        };
        assert!(!format!("{body:?}").contains("4242"));
    }
}
