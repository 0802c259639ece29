use std::fmt;

use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes. The page maps each to guidance; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    InvalidBody,
    UnsupportedMediaType,
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed,
    EmailInvalid,
    EmailDomainNotAllowed,
    CodeInvalid,
    CodeWrong,
    CodeVoided,
    CodeExpired,
    NoJourney,
    JourneyClosed,
    ResendTooSoon,
    TooManyCodes,
    Throttled,
    NotVerified,
    JourneyExpired,
    CardNotOnProfile,
    CardNotUsable,
    CardNotAccepted,
    CertificateNotTrusted,
    PossessionFailed,
    ChallengeReused,
    TooManyAttempts,
    ReceiptWrong,
    SignInFailed,
    AuthenticatorCodeWrong,
    SignInExpired,
    NotSignedIn,
    SessionExpired,
    Forbidden,
    OwnProfile,
    HolderNotFound,
    EmailTaken,
    EmailNotOnProfile,
    PasswordRejected,
    DomainInvalid,
    QueryInvalid,
    Timeout,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order (a test checks it against serde's list), for
    /// look-ups by name without serde's generated code.
    pub const ALL: [Self; 43] = [
        Self::BadJson,
        Self::InvalidBody,
        Self::UnsupportedMediaType,
        Self::PayloadTooLarge,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::EmailInvalid,
        Self::EmailDomainNotAllowed,
        Self::CodeInvalid,
        Self::CodeWrong,
        Self::CodeVoided,
        Self::CodeExpired,
        Self::NoJourney,
        Self::JourneyClosed,
        Self::ResendTooSoon,
        Self::TooManyCodes,
        Self::Throttled,
        Self::NotVerified,
        Self::JourneyExpired,
        Self::CardNotOnProfile,
        Self::CardNotUsable,
        Self::CardNotAccepted,
        Self::CertificateNotTrusted,
        Self::PossessionFailed,
        Self::ChallengeReused,
        Self::TooManyAttempts,
        Self::ReceiptWrong,
        Self::SignInFailed,
        Self::AuthenticatorCodeWrong,
        Self::SignInExpired,
        Self::NotSignedIn,
        Self::SessionExpired,
        Self::Forbidden,
        Self::OwnProfile,
        Self::HolderNotFound,
        Self::EmailTaken,
        Self::EmailNotOnProfile,
        Self::PasswordRejected,
        Self::DomainInvalid,
        Self::QueryInvalid,
        Self::Timeout,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The code with this wire name, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == name)
    }

    /// The one HTTP status every answer with this code has (the server's only table of
    /// them, so rule code names the code and never a status).
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadJson => 400,
            Self::NotSignedIn | Self::SessionExpired | Self::SignInExpired | Self::SignInFailed => {
                401
            }
            Self::Forbidden | Self::OwnProfile => 403,
            Self::NotFound | Self::NoJourney | Self::HolderNotFound | Self::EmailNotOnProfile => {
                404
            }
            Self::MethodNotAllowed => 405,
            Self::JourneyClosed | Self::NotVerified | Self::CardNotAccepted | Self::EmailTaken => {
                409
            }
            Self::CodeExpired | Self::JourneyExpired => 410,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::InvalidBody
            | Self::EmailInvalid
            | Self::EmailDomainNotAllowed
            | Self::CodeInvalid
            | Self::CodeWrong
            | Self::CodeVoided
            | Self::CardNotOnProfile
            | Self::CardNotUsable
            | Self::CertificateNotTrusted
            | Self::PossessionFailed
            | Self::ChallengeReused
            | Self::ReceiptWrong
            | Self::AuthenticatorCodeWrong
            | Self::PasswordRejected
            | Self::DomainInvalid
            | Self::QueryInvalid => 422,
            Self::ResendTooSoon | Self::TooManyCodes | Self::Throttled | Self::TooManyAttempts => {
                429
            }
            Self::Internal => 500,
            Self::Timeout | Self::Unavailable => 503,
        }
    }

    /// The snake_case name, as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::InvalidBody => "invalid_body",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::EmailInvalid => "email_invalid",
            Self::EmailDomainNotAllowed => "email_domain_not_allowed",
            Self::CodeInvalid => "code_invalid",
            Self::CodeWrong => "code_wrong",
            Self::CodeVoided => "code_voided",
            Self::CodeExpired => "code_expired",
            Self::NoJourney => "no_journey",
            Self::JourneyClosed => "journey_closed",
            Self::ResendTooSoon => "resend_too_soon",
            Self::TooManyCodes => "too_many_codes",
            Self::Throttled => "throttled",
            Self::NotVerified => "not_verified",
            Self::JourneyExpired => "journey_expired",
            Self::CardNotOnProfile => "card_not_on_profile",
            Self::CardNotUsable => "card_not_usable",
            Self::CardNotAccepted => "card_not_accepted",
            Self::CertificateNotTrusted => "certificate_not_trusted",
            Self::PossessionFailed => "possession_failed",
            Self::ChallengeReused => "challenge_reused",
            Self::TooManyAttempts => "too_many_attempts",
            Self::ReceiptWrong => "receipt_wrong",
            Self::SignInFailed => "sign_in_failed",
            Self::AuthenticatorCodeWrong => "authenticator_code_wrong",
            Self::SignInExpired => "sign_in_expired",
            Self::NotSignedIn => "not_signed_in",
            Self::SessionExpired => "session_expired",
            Self::Forbidden => "forbidden",
            Self::OwnProfile => "own_profile",
            Self::HolderNotFound => "holder_not_found",
            Self::EmailTaken => "email_taken",
            Self::EmailNotOnProfile => "email_not_on_profile",
            Self::PasswordRejected => "password_rejected",
            Self::DomainInvalid => "domain_invalid",
            Self::QueryInvalid => "query_invalid",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The plain sentence shown when nothing more specific is known.
    pub fn default_message(self) -> &'static str {
        match self {
            Self::BadJson => "The request body is not valid JSON.",
            Self::InvalidBody => "The request is missing a field or a field has the wrong type.",
            Self::UnsupportedMediaType => "Send the request body as JSON.",
            Self::PayloadTooLarge => "The request is too large.",
            Self::NotFound => "There is nothing at this address.",
            Self::MethodNotAllowed => "This address does not accept that kind of request.",
            Self::EmailInvalid => {
                "Enter an email address in the correct format, like name@example.org."
            }
            Self::EmailDomainNotAllowed => {
                "This email domain can't be used. Use the email address on your smartcard \
                 profile, or contact your Registration Authority."
            }
            Self::CodeInvalid => "The security code must be 6 numbers.",
            Self::CodeWrong => "The security code is not right. Check the email and try again.",
            Self::CodeVoided => {
                "You entered the wrong code 3 times, so it no longer works. Ask for a new code."
            }
            Self::CodeExpired => {
                "Your security code has expired. Codes last 15 minutes. Start again to get a new one."
            }
            Self::NoJourney => {
                "We could not find your request. It may have timed out. Start again."
            }
            Self::JourneyClosed => "This request has already finished. Start again if you need to.",
            Self::ResendTooSoon => "Wait a few seconds before asking for another code.",
            Self::TooManyCodes => {
                "You have asked for too many codes. Wait an hour and try again, or contact your \
                 Registration Authority."
            }
            Self::Throttled => {
                "There have been too many attempts. Wait and try again later, or contact your \
                 Registration Authority."
            }
            Self::NotVerified => {
                "Enter the security code from your email first, then insert your smartcard."
            }
            Self::JourneyExpired => {
                "Your time to unlock your smartcard has run out. Start again to get a new \
                 security code."
            }
            Self::CardNotOnProfile => {
                "This card is not the one on your profile. Insert your own smartcard."
            }
            Self::CardNotUsable => {
                "This smartcard can't be unlocked here. Contact your Registration Authority."
            }
            Self::CertificateNotTrusted => {
                "The certificates on this smartcard are not ones this service trusts, or they \
                 have expired. Contact your Registration Authority."
            }
            Self::PossessionFailed => {
                "We could not confirm this is a genuine smartcard. Take it out, put it back in \
                 and try again. If it happens again, contact your Registration Authority."
            }
            Self::CardNotAccepted => {
                "Insert your smartcard so it can be checked before it is unlocked."
            }
            Self::ChallengeReused => {
                "Your smartcard's request was already used. Take your card out, put it back in \
                 and try again."
            }
            Self::TooManyAttempts => {
                "There have been too many attempts to unlock your smartcard. Start again, or \
                 contact your Registration Authority."
            }
            Self::ReceiptWrong => {
                "We could not confirm that your smartcard was unlocked. Leave it in the reader \
                 and try again. If this keeps happening, contact your Registration Authority."
            }
            Self::SignInFailed => "Enter a correct username and password.",
            Self::AuthenticatorCodeWrong => {
                "The code is not right. Enter the 6-digit code your authenticator app shows now."
            }
            Self::SignInExpired => "Signing in took too long. Start again.",
            Self::NotSignedIn => "Sign in to use the staff pages.",
            Self::SessionExpired => {
                "You have been signed out, because of time or because you signed out elsewhere. \
                 Sign in again."
            }
            Self::Forbidden => "Your role does not allow this.",
            Self::OwnProfile => {
                "You cannot change your own smartcard profile. Ask a colleague to do it."
            }
            Self::HolderNotFound => "There is no holder with this user id.",
            Self::EmailTaken => "This email address is already on a smartcard profile.",
            Self::EmailNotOnProfile => "This email address is not on this holder's profile.",
            Self::PasswordRejected => "Choose a different password.",
            Self::DomainInvalid => "Enter a domain name, like trust.example.org.",
            Self::QueryInvalid => "Check what you entered and try again.",
            Self::Timeout => "The service took too long to answer. Try again.",
            Self::Unavailable => "The service is not available at the moment. Try again later.",
            Self::Internal => "Something went wrong on our side. Try again later.",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error the HTTP API returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds until the same request may succeed, for cool-downs and throttles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// Code tries left, after a wrong code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<u8>,
}

impl ApiError {
    /// An error with the code's default sentence.
    pub fn new(code: ErrorCode) -> Self {
        Self::with_message(code, code.default_message())
    }

    /// An error with a more specific sentence.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_seconds: None,
            tries_left: None,
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_code_has_one_error_status() {
        for code in ErrorCode::ALL {
            let status = code.http_status();
            assert!((400..600).contains(&status), "{code:?}: {status}");
        }
        assert_eq!(ErrorCode::Internal.http_status(), 500);
        assert_eq!(ErrorCode::EmailTaken.http_status(), 409);
    }

    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in [
            ErrorCode::BadJson,
            ErrorCode::EmailDomainNotAllowed,
            ErrorCode::TooManyCodes,
            ErrorCode::CardNotOnProfile,
            ErrorCode::ChallengeReused,
            ErrorCode::ReceiptWrong,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }

    #[test]
    fn all_lists_every_code_once_in_order() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, U32Deserializer};
        let by_index = |i: usize| {
            let de: U32Deserializer<Error> = u32::try_from(i).unwrap().into_deserializer();
            ErrorCode::deserialize(de).ok()
        };
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(by_index(i), Some(code), "ALL[{i}]");
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{code}\""));
        }
        // serde knows no variant past the end of ALL.
        assert_eq!(by_index(ErrorCode::ALL.len()), None);
        assert_eq!(ErrorCode::from_name("no_such_code"), None);
    }

    #[test]
    fn optional_fields_are_omitted() {
        let json = serde_json::to_string(&ApiError::new(ErrorCode::NotFound)).unwrap();
        assert_eq!(
            json,
            r#"{"code":"not_found","message":"There is nothing at this address."}"#
        );
    }
}
