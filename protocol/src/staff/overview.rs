//! The status view's figures.

use serde::{Deserialize, Serialize};

use crate::HolderId;

/// `GET /api/staff/overview`: the status view's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overview {
    pub generated_at: i64,
    /// Since midnight UTC.
    pub today: Period,
    /// The last 30 days, today included.
    pub last_30_days: Period,
    /// Staff time one unlock saves (an RA visit), in minutes.
    pub minutes_saved_per_unlock: u32,
    /// Staff time one remote unlock with an RA's help saves (the visit, less the RA's
    /// phone call), in minutes.
    #[serde(default)]
    pub minutes_saved_per_ra_unlock: u32,
    pub outbox: OutboxHealth,
    /// Unlocks on each of the last 30 days (UTC), oldest first, today last.
    pub unlocks_per_day: Vec<DayCount>,
    /// Holders whose codes keep being guessed wrong, most wrong codes first (at most 20).
    pub holders_under_attempts: Vec<HolderUnderAttempts>,
    /// Unlocks in the last 30 days through an address staff had added to the profile in the
    /// 7 days before: an RA could add an address they control and unlock the card. Newest
    /// first, at most 20.
    pub unlocks_via_new_addresses: Vec<FlaggedUnlock>,
    /// Holders whose lock-outs staff released more than once in the last 7 days, most first.
    pub repeated_releases: Vec<RepeatedReleases>,
}

/// An unlock through an address staff added lately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlaggedUnlock {
    pub holder_id: HolderId,
    /// The card unlocked.
    pub card: String,
    pub unlocked_at: i64,
    /// Who added the address (`staff:<username>`), and when.
    pub added_by: String,
    pub added_at: i64,
}

/// A holder whose lock-outs were released again and again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepeatedReleases {
    pub holder_id: HolderId,
    /// Releases in the last 7 days.
    pub releases: u64,
    pub last_released_at: i64,
}

/// A holder under sustained failed attempts: half or more of a day's (or their whole)
/// wrong-code allowance spent, or locked out of self-service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HolderUnderAttempts {
    pub holder_id: HolderId,
    /// Wrong codes in the holder's current day (the most from any one browser's count).
    pub wrong_codes_today: u64,
    /// Wrong codes in all since staff last released them.
    pub wrong_codes_in_all: u64,
    /// When their latest lock-out ends, if one is in force.
    pub locked_until: Option<i64>,
    /// Whether that lock-out lasts until staff release it.
    pub locked_until_released: bool,
}

/// The figures of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Period {
    /// Journeys started with an allowed address (on a profile or not).
    pub journeys_started: u64,
    /// Code emails delivered.
    pub codes_sent: u64,
    /// Codes typed in correctly.
    pub codes_verified: u64,
    /// Cards unlocked (remote unlocks with an RA's help included).
    pub unlocks: u64,
    /// Cards unlocked with a one-time code an RA read out over the phone.
    #[serde(default)]
    pub remote_unlocks_with_ra_help: u64,
    /// Steps refused or journeys that ran out of time, all reasons together.
    pub failed: u64,
    /// `failed` by reason, largest first; reasons with none are left out.
    pub failures: Vec<FailureCount>,
    /// Self-service `unlocks` × the minutes one saves, plus the remote unlocks with an RA's
    /// help × the minutes one of those saves, in hours.
    pub hours_saved: f64,
}

/// How many steps were refused for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailureCount {
    /// A stable name, such as `code_voided`.
    pub reason: String,
    /// The reason in words.
    pub label: String,
    pub count: u64,
}

/// The email outbox's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayCount {
    /// `2026-12-01`.
    pub day: String,
    pub count: u64,
}
