//! Holder look-up, the Registration Authority's actions on a holder (addresses and
//! throttles), and the email domain allow list.

use serde::{Deserialize, Serialize};

use crate::{CardId, CardStatus, DeliveryState, HolderId};

/// `GET /api/staff/holders?q=...`: holders whose 12-digit id, email or name matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HolderSearch {
    pub matches: Vec<HolderMatch>,
    /// More holders matched than are listed: the search should be narrowed.
    pub more: bool,
}

/// One holder found by a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HolderMatch {
    pub id: HolderId,
    pub name: String,
    pub organisation: String,
    /// Masked unless the role may see addresses in full.
    pub emails: Vec<String>,
}

/// `GET /api/staff/holders/{id}`: everything staff may see of one holder. Never a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HolderProfile {
    pub id: HolderId,
    pub name: String,
    pub organisation: String,
    /// Whether this is the signed-in staff member's own profile (no actions allowed).
    pub own_profile: bool,
    /// Its email addresses, then its mobile numbers (E.164, like `+447400123456`): staff add,
    /// approve and remove both through the same endpoints.
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileEmail {
    /// Masked unless the role may see addresses in full.
    pub address: String,
    /// Whether its domain is on the allow list (so the holder can use it for self-service);
    /// for a mobile number, whether text messages are configured.
    pub domain_allowed: bool,
    pub added_at: i64,
    pub added_by: String,
    /// The four-eyes rule: the address waits for a second RA's approval and can't be used
    /// until then.
    #[serde(default)]
    pub awaiting_approval: bool,
}

/// `POST /api/staff/holders/{id}/emails/approve`: a second RA lets an added address be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApproveEmail {
    pub email: String,
}

/// A card on a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileCard {
    /// The card's serial (unlock-cr/1) or GUID (piv/1).
    pub serial: CardId,
    pub status: CardStatus,
    pub model: String,
    /// The last moment the card's certificates are valid.
    pub cert_expires_at: i64,
    /// Whether this service could unlock it now.
    pub unlockable: bool,
}

/// One journey, step by step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JourneyStep {
    pub at: i64,
    pub action: String,
    pub outcome: String,
    /// The step in words.
    pub label: String,
}

/// One email and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// `one_time_code`, `card_unlocked`, `email_added`, `email_removed`.
    pub kind: String,
    /// Masked unless the role may see addresses in full.
    pub recipient: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub queued_at: i64,
    pub finished_at: Option<i64>,
    /// Why the last attempt failed, as the mail relay (or SMS gateway) said.
    pub last_error: Option<String>,
    /// For a text message: what the SMS gateway's delivery receipt said (`delivered`,
    /// `undeliverable`, `expired`, ...), once one came.
    #[serde(default)]
    pub receipt: Option<String>,
}

/// A throttle's count and lock-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThrottleState {
    /// `subject_voided`, `subject_wrong_code`, `subject_wrong_total`, `client_start` or
    /// `client_failure`.
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ThrottleTarget {
    Holder(HolderId),
    Client(String),
}

/// `POST /api/staff/holders/{id}/emails`: an address to add to the profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddEmail {
    pub email: String,
}

/// `POST /api/staff/throttles/release`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReleaseThrottle {
    pub target: ThrottleTarget,
}

/// The answer to a release: how many counts and lock-outs were cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Released {
    pub released: u64,
}

/// `GET /api/staff/allowlist`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllowList {
    pub domains: Vec<AllowedDomain>,
}

/// A domain on the allow list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllowedDomain {
    pub domain: String,
    pub added_at: i64,
    pub added_by: String,
    /// Addresses on profiles in this domain.
    pub addresses: u64,
}

/// `POST /api/staff/allowlist`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    pub domain: String,
}

/// How an RA verified a holder who phoned them, before issuing an unlock code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VerificationMethod {
    /// The RA knows the holder and recognised them.
    KnownToRa,
    /// The RA called the holder back on a number from the organisation's directory.
    CalledBackOnDirectoryNumber,
    /// The holder's line manager vouched for them to the RA.
    ConfirmedByLineManager,
    /// Seen on a video call against the photo on their profile.
    VideoCallAgainstPhoto,
}

impl VerificationMethod {
    pub const ALL: [Self; 4] = [
        Self::KnownToRa,
        Self::CalledBackOnDirectoryNumber,
        Self::ConfirmedByLineManager,
        Self::VideoCallAgainstPhoto,
    ];

    /// The stable name, as on the wire and in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KnownToRa => "known_to_ra",
            Self::CalledBackOnDirectoryNumber => "called_back_on_directory_number",
            Self::ConfirmedByLineManager => "confirmed_by_line_manager",
            Self::VideoCallAgainstPhoto => "video_call_against_photo",
        }
    }

    /// The choice in words.
    pub fn label(self) -> &'static str {
        match self {
            Self::KnownToRa => "I know the holder and recognised them",
            Self::CalledBackOnDirectoryNumber => {
                "I called them back on a number from the staff directory"
            }
            Self::ConfirmedByLineManager => "Their line manager confirmed who they are",
            Self::VideoCallAgainstPhoto => "I saw them on a video call against their card photo",
        }
    }
}

/// The longest note an RA may record with an unlock code.
pub const MAX_VERIFICATION_NOTE: usize = 500;

/// `POST /api/staff/holders/{id}/unlock-code`: how the RA verified the holder who phoned.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IssueUnlockCode {
    pub verified_how: VerificationMethod,
    /// What the RA checked, in their words (at most 500 characters).
    pub note: String,
}

/// The unlock code just issued, shown to the RA this once to read out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockCodeIssued {
    /// `ABCD-EFGH-JKMN`: 12 characters with no look-alikes.
    pub code: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for UnlockCodeIssued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockCodeIssued")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
