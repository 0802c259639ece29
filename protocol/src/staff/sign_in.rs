//! Bodies of the sign-in steps and of `GET /api/staff/me`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Role, StaffUsername};
use crate::HolderId;

/// `POST /api/staff/sign-in`: the first factor.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(format = Password))]
    pub password: String,
}

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignIn { username: .., password: *** }")
    }
}

/// `POST /api/staff/sign-in/code`: the 6-digit code from the authenticator app.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecondFactor {
    pub code: String,
}

impl fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecondFactor { code: *** }")
    }
}

/// `POST /api/staff/sign-in/new-password`: the password chosen at first sign-in, in place
/// of the one-time password the account was created with.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    #[cfg_attr(feature = "openapi", schema(format = Password))]
    pub password: String,
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword { password: *** }")
    }
}

/// `POST /api/staff/password`: a signed-in staff member changes their own password.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    #[cfg_attr(feature = "openapi", schema(format = Password))]
    pub current_password: String,
    #[cfg_attr(feature = "openapi", schema(format = Password))]
    pub new_password: String,
}

impl fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChangePassword { current_password: ***, new_password: *** }")
    }
}

/// What comes next in signing in; the answer to each sign-in step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "next", rename_all = "snake_case")]
pub enum SignInStep {
    /// The password was right: now the code from the authenticator app.
    SecondFactor,
    /// First sign-in: the one-time password must be replaced.
    NewPassword,
    /// Signed in.
    SignedIn { me: Me },
}

/// `GET /api/staff/me`: who is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub username: StaffUsername,
    pub role: Role,
    /// The staff member's own smartcard profile, which they may not act on.
    pub holder_id: Option<HolderId>,
    /// The session ends after this long without a request.
    pub idle_timeout_seconds: u64,
    /// The session ends this long from now, whatever happens.
    pub session_ends_in_seconds: u64,
    /// The service's time zone, in which the screens show every time.
    pub time_zone: super::TimeZoneRules,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staff::ThrottleTarget;

    #[test]
    fn sign_in_bodies_hide_secrets_in_debug() {
        let sign_in = SignIn {
            username: "rita".into(),
            password: "hunter2hunter2".into(),
        };
        assert!(!format!("{sign_in:?}").contains("hunter2"));
        let code = SecondFactor {
            code: "424242".into(),
        };
        assert!(!format!("{code:?}").contains("4242"));
        let new = NewPassword {
            password: "hunter2hunter2".into(),
        };
        assert!(!format!("{new:?}").contains("hunter2"));
    }

    #[test]
    fn sign_in_steps_are_tagged() {
        assert_eq!(
            serde_json::to_string(&SignInStep::SecondFactor).unwrap(),
            r#"{"next":"second_factor"}"#
        );
        let target = ThrottleTarget::Client("192.0.2.1".into());
        assert_eq!(
            serde_json::to_string(&target).unwrap(),
            r#"{"client":"192.0.2.1"}"#
        );
    }
}
