//! Staff roles and what each may do.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a staff account is for. Wire and command-line names: `support`, `ra`, `ra-manager`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Issue a one-time unlock code to a holder they verified over the phone.
    IssueUnlockCodes,
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
            Permission::SeeFullEmails
            | Permission::ChangeEmails
            | Permission::ReleaseThrottles
            | Permission::IssueUnlockCodes => {
                matches!(self, Self::Ra | Self::RaManager)
            }
            Permission::ManageAllowList | Permission::ExportReports => self == Self::RaManager,
        }
    }
}

impl TryFrom<String> for Role {
    type Error = crate::UnknownState;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::from_name(&name).ok_or(crate::UnknownState(name))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!Role::Support.may(Permission::IssueUnlockCodes));
        assert!(Role::Ra.may(Permission::IssueUnlockCodes));
        assert!(Role::Ra.may(Permission::ChangeEmails));
        assert!(Role::Ra.may(Permission::ReleaseThrottles));
        assert!(!Role::Ra.may(Permission::ManageAllowList));
        assert!(!Role::Ra.may(Permission::ExportReports));
        assert!(Role::RaManager.may(Permission::ManageAllowList));
        assert!(Role::RaManager.may(Permission::ExportReports));
        assert!(Role::RaManager.may(Permission::ChangeEmails));
        assert_eq!(Role::from_name("admin"), None);
    }
}
