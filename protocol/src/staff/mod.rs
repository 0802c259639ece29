//! Bodies of the staff API (`/api/staff/...`): signing in with a password and an
//! authenticator code, the status view, holder look-up, and the Registration Authority's
//! actions. Times are milliseconds since the Unix epoch (UTC); screens show them in the
//! service's time zone ([`TimeZoneRules`]).

mod audit;
mod holders;
mod overview;
mod password;
mod role;
mod sign_in;
mod time_zone;
mod username;

pub use audit::{AuditEvent, AuditPage};
pub use holders::{
    AddDomain, AddEmail, AllowList, AllowedDomain, ApproveEmail, Delivery, HolderMatch,
    HolderProfile, HolderSearch, IssueUnlockCode, JourneyRecord, JourneyStep,
    MAX_VERIFICATION_NOTE, ProfileCard, ProfileEmail, ReleaseThrottle, Released, ThrottleState,
    ThrottleTarget, UnlockCodeIssued, VerificationMethod,
};
pub use overview::{
    DayCount, FailureCount, FlaggedUnlock, HolderUnderAttempts, OutboxHealth, Overview, Period,
    RepeatedReleases,
};
pub use password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, StaffPassword, StaffPasswordError};
pub use role::{Permission, Role};
pub use sign_in::{ChangePassword, Me, NewPassword, SecondFactor, SignIn, SignInStep};
pub use time_zone::{TimeZoneRules, ZonePeriod};
pub use username::{StaffUsername, StaffUsernameError};
