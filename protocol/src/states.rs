//! States that cross the wire, each mirroring a `CHECK` constraint of the server's schema, so
//! the server, the staff page and the database agree on one closed list.

use serde::{Deserialize, Serialize};

/// A card's standing in the card management system (`cards.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    Active,
    Suspended,
    Cancelled,
}

impl CardStatus {
    pub const ALL: [Self; 3] = [Self::Active, Self::Suspended, Self::Cancelled];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status with this name, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

/// Where an email stands in the outbox (`outbox.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Queued,
    Sent,
    /// Given up for good (or withdrawn).
    Failed,
}

impl DeliveryState {
    pub const ALL: [Self; 3] = [Self::Queued, Self::Sent, Self::Failed];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// The state with this name, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

/// A stored name that is not one of the states (the schema's CHECK prevents it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState(pub String);

impl std::fmt::Display for UnknownState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown state {:?}", self.0)
    }
}

impl std::error::Error for UnknownState {}

impl TryFrom<String> for CardStatus {
    type Error = UnknownState;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::from_name(&name).ok_or(UnknownState(name))
    }
}

impl TryFrom<String> for DeliveryState {
    type Error = UnknownState;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::from_name(&name).ok_or(UnknownState(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for status in CardStatus::ALL {
            assert_eq!(CardStatus::from_name(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status.as_str())
            );
        }
        for state in DeliveryState::ALL {
            assert_eq!(DeliveryState::from_name(state.as_str()), Some(state));
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{}\"", state.as_str())
            );
        }
        assert_eq!(CardStatus::from_name("lost"), None);
    }
}
