//! Bodies of the staff API (`/api/staff/...`): signing in with a password and an
//! authenticator code, the status view, holder look-up, and the Registration Authority's
//! actions. Times are milliseconds since the Unix epoch (UTC).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{CardSerial, HolderId};

/// What a staff account is for. Wire and command-line names: `support`, `ra`, `ra-manager`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Watches the status view and looks holders up (addresses masked).
    Support,
    /// Registration Authority staff: also adds and removes holders' addresses and releases
    /// throttles.
    Ra,
    /// Also manages the email domain allow list and exports reports.
    RaManager,
}

/// Something a role may or may not do; the server checks it on every request, and the page
/// uses the same table to decide what to offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// The overview, holder look-up and the audit log.
    ViewStatus,
    /// Holders' email addresses in full (others see them masked).
    SeeFullEmails,
    /// Add an address to a holder's profile, or remove one.
    ChangeEmails,
    /// Release a holder's or a client address's throttle.
    ReleaseThrottles,
    /// Add or remove email domains on the allow list.
    ManageAllowList,
    /// Download the CSV reports.
    ExportReports,
}

impl Role {
    pub const ALL: [Self; 3] = [Self::Support, Self::Ra, Self::RaManager];

    /// The name on the wire and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Support => "support",
            Self::Ra => "ra",
            Self::RaManager => "ra-manager",
        }
    }

    /// The role with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// How the role is called on screen.
    pub fn label(self) -> &'static str {
        match self {
            Self::Support => "Support",
            Self::Ra => "Registration Authority",
            Self::RaManager => "Registration Authority manager",
        }
    }

    /// Whether this role may do `permission`.
    pub fn may(self, permission: Permission) -> bool {
        match permission {
            Permission::ViewStatus => true,
            Permission::SeeFullEmails | Permission::ChangeEmails | Permission::ReleaseThrottles => {
                matches!(self, Self::Ra | Self::RaManager)
            }
            Permission::ManageAllowList | Permission::ExportReports => self == Self::RaManager,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff account's name: 2 to 64 of `a-z 0-9 . _ -`, lower-cased, starting with a letter
/// or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StaffUsername(String);

/// Why a string is not a staff username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StaffUsernameError {
    #[error("Enter your username")]
    Empty,
    #[error(
        "A username must be 2 to 64 letters a to z, numbers, dots, hyphens or underscores, \
         starting with a letter or a number"
    )]
    Format,
}

impl StaffUsername {
    pub fn parse(raw: &str) -> Result<Self, StaffUsernameError> {
        let name = raw.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(StaffUsernameError::Empty);
        }
        let well_formed = (2..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if well_formed {
            Ok(Self(name))
        } else {
            Err(StaffUsernameError::Format)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StaffUsername {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StaffUsername {
    type Error = StaffUsernameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<StaffUsername> for String {
    fn from(value: StaffUsername) -> Self {
        value.0
    }
}

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

/// `POST /api/staff/sign-in`: the first factor.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignIn { username: .., password: *** }")
    }
}

/// `POST /api/staff/sign-in/code`: the 6-digit code from the authenticator app.
#[derive(Clone, Serialize, Deserialize)]
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
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword { password: *** }")
    }
}

/// What comes next in signing in; the answer to each sign-in step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct Me {
    pub username: StaffUsername,
    pub role: Role,
    /// The staff member's own smartcard profile, which they may not act on.
    pub holder_id: Option<HolderId>,
    /// The session ends after this long without a request.
    pub idle_timeout_seconds: u64,
    /// The session ends this long from now, whatever happens.
    pub session_ends_in_seconds: u64,
}

/// `GET /api/staff/overview`: the status view's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub generated_at: i64,
    /// Since midnight UTC.
    pub today: Period,
    /// The last 30 days, today included.
    pub last_30_days: Period,
    /// Staff time one unlock saves (an RA visit), in minutes.
    pub minutes_saved_per_unlock: u32,
    pub outbox: OutboxHealth,
    /// Unlocks on each of the last 30 days (UTC), oldest first, today last.
    pub unlocks_per_day: Vec<DayCount>,
}

/// The figures of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Period {
    /// Journeys started with an allowed address (on a profile or not).
    pub journeys_started: u64,
    /// Code emails delivered.
    pub codes_sent: u64,
    /// Codes typed in correctly.
    pub codes_verified: u64,
    /// Cards unlocked.
    pub unlocks: u64,
    /// Steps refused or journeys that ran out of time, all reasons together.
    pub failed: u64,
    /// `failed` by reason, largest first; reasons with none are left out.
    pub failures: Vec<FailureCount>,
    /// `unlocks` × the minutes one saves, in hours.
    pub hours_saved: f64,
}

/// How many steps were refused for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCount {
    /// A stable name, such as `code_voided`.
    pub reason: String,
    /// The reason in words.
    pub label: String,
    pub count: u64,
}

/// The email outbox's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxHealth {
    /// Messages waiting to be sent.
    pub queued: u64,
    /// How long the oldest waiting message has waited, in seconds.
    pub oldest_queued_seconds: Option<u64>,
    /// Messages given up on today and in the last 30 days.
    pub failed_today: u64,
    pub failed_last_30_days: u64,
}

/// A day's count, for the chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// `2026-12-01`.
    pub day: String,
    pub count: u64,
}

/// `GET /api/staff/holders?q=...`: holders whose 12-digit id, email or name matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderSearch {
    pub matches: Vec<HolderMatch>,
    /// More holders matched than are listed: the search should be narrowed.
    pub more: bool,
}

/// One holder found by a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderMatch {
    pub id: HolderId,
    pub name: String,
    pub organisation: String,
    /// Masked unless the role may see addresses in full.
    pub emails: Vec<String>,
}

/// `GET /api/staff/holders/{id}`: everything staff may see of one holder. Never a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderProfile {
    pub id: HolderId,
    pub name: String,
    pub organisation: String,
    /// Whether this is the signed-in staff member's own profile (no actions allowed).
    pub own_profile: bool,
    pub emails: Vec<ProfileEmail>,
    pub cards: Vec<ProfileCard>,
    /// Newest first.
    pub journeys: Vec<JourneyRecord>,
    /// Emails to this holder, newest first.
    pub deliveries: Vec<Delivery>,
    /// Throttles on the holder or on the client addresses of their recent journeys.
    pub throttles: Vec<ThrottleState>,
}

/// An address on a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileEmail {
    /// Masked unless the role may see addresses in full.
    pub address: String,
    /// Whether its domain is on the allow list (so the holder can use it for self-service).
    pub domain_allowed: bool,
    pub added_at: i64,
    pub added_by: String,
}

/// A card on a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileCard {
    pub serial: CardSerial,
    /// `active`, `suspended` or `cancelled`.
    pub status: String,
    pub model: String,
    /// The last moment the card's certificates are valid.
    pub cert_expires_at: i64,
    /// Whether this service could unlock it now.
    pub unlockable: bool,
}

/// One journey, step by step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyRecord {
    pub id: i64,
    pub started_at: i64,
    /// The address the journey was started with (masked unless allowed in full).
    pub email: String,
    pub client_addr: String,
    /// Where it ended, or stands, in words: "Unlocked", "Stopped: ...", "In progress".
    pub summary: String,
    /// Whether it ended with the card unlocked.
    pub unlocked: bool,
    /// Oldest first.
    pub steps: Vec<JourneyStep>,
}

/// One audited step of a journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyStep {
    pub at: i64,
    pub action: String,
    pub outcome: String,
    /// The step in words.
    pub label: String,
}

/// One email and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `one_time_code`, `card_unlocked`, `email_added`, `email_removed`.
    pub kind: String,
    /// Masked unless the role may see addresses in full.
    pub recipient: String,
    /// `queued`, `sent` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub queued_at: i64,
    pub finished_at: Option<i64>,
    /// Why the last attempt failed, as the mail relay said.
    pub last_error: Option<String>,
}

/// A throttle's count and lock-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleState {
    /// `subject_voided`, `client_start` or `client_failure`.
    pub scope: String,
    /// What is throttled, in words.
    pub label: String,
    /// The holder's id or the client address, as [`ReleaseThrottle`] takes it.
    pub target: ThrottleTarget,
    pub hits: u64,
    /// When the lock-out ends, if one is in force.
    pub locked_until: Option<i64>,
}

/// What a throttle counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleTarget {
    Holder(HolderId),
    Client(String),
}

/// `POST /api/staff/holders/{id}/emails`: an address to add to the profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddEmail {
    pub email: String,
}

/// `POST /api/staff/throttles/release`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseThrottle {
    pub target: ThrottleTarget,
}

/// The answer to a release: how many counts and lock-outs were cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    pub released: u64,
}

/// `GET /api/staff/allowlist`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowList {
    pub domains: Vec<AllowedDomain>,
}

/// A domain on the allow list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedDomain {
    pub domain: String,
    pub added_at: i64,
    pub added_by: String,
    /// Addresses on profiles in this domain.
    pub addresses: u64,
}

/// `POST /api/staff/allowlist`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    pub domain: String,
}

/// `GET /api/staff/audit`: a page of audit events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub holder_id: Option<String>,
    pub journey_id: Option<i64>,
    pub client_addr: Option<String>,
    /// Addresses in it are masked unless the role may see them in full.
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> StaffUsername {
        StaffUsername::parse("rita.ra").unwrap()
    }

    #[test]
    fn roles_have_stable_names_and_a_permission_table() {
        for role in Role::ALL {
            assert_eq!(
                serde_json::to_string(&role).unwrap(),
                format!("\"{}\"", role.as_str())
            );
            assert_eq!(Role::from_name(role.as_str()), Some(role));
            assert!(role.may(Permission::ViewStatus));
        }
        assert!(!Role::Support.may(Permission::SeeFullEmails));
        assert!(!Role::Support.may(Permission::ChangeEmails));
        assert!(Role::Ra.may(Permission::ChangeEmails));
        assert!(Role::Ra.may(Permission::ReleaseThrottles));
        assert!(!Role::Ra.may(Permission::ManageAllowList));
        assert!(!Role::Ra.may(Permission::ExportReports));
        assert!(Role::RaManager.may(Permission::ManageAllowList));
        assert!(Role::RaManager.may(Permission::ExportReports));
        assert!(Role::RaManager.may(Permission::ChangeEmails));
        assert_eq!(Role::from_name("admin"), None);
    }

    #[test]
    fn usernames_are_lower_cased_and_plain() {
        assert_eq!(
            StaffUsername::parse(" Rita.RA ").unwrap().as_str(),
            "rita.ra"
        );
        for bad in ["", "a", ".rita", "rita ra", "rité", &"r".repeat(65)] {
            assert!(StaffUsername::parse(bad).is_err(), "{bad:?}");
        }
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
