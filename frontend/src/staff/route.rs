//! The staff app's pages and their paths, built in one place.

use unlock_protocol::HolderId;
use unlock_protocol::staff::Permission;

use super::api::encode;

/// A page of the staff app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffPage {
    Overview,
    SignIn,
    SignInCode,
    NewPassword,
    /// A signed-in staff member changes their password.
    ChangePassword,
    /// The holder search, with what was searched for.
    Holders,
    HolderSearch(String),
    Holder(HolderId),
    AllowList,
    Reports,
    Audit,
}

impl StaffPage {
    pub fn path(&self) -> String {
        match self {
            Self::Overview => "/status".into(),
            Self::SignIn => "/status/sign-in".into(),
            Self::SignInCode => "/status/sign-in/code".into(),
            Self::NewPassword => "/status/sign-in/new-password".into(),
            Self::ChangePassword => "/status/password".into(),
            Self::Holders => "/status/holders".into(),
            Self::HolderSearch(query) => format!("/status/holders?q={}", encode(query)),
            Self::Holder(id) => format!("/status/holders/{id}"),
            Self::AllowList => "/status/allowlist".into(),
            Self::Reports => "/status/reports".into(),
            Self::Audit => "/status/audit".into(),
        }
    }

    /// What the role needs to see the page in the menu (the server checks it anyway).
    pub fn permission(&self) -> Option<Permission> {
        match self {
            Self::Reports => Some(Permission::ExportReports),
            _ => None,
        }
    }

    /// Whether `path` is this page or one under it, for marking the menu.
    pub fn contains(&self, path: &str) -> bool {
        let own = match self {
            Self::HolderSearch(_) | Self::Holder(_) => "/status/holders".to_owned(),
            _ => self.path(),
        };
        let path = path.trim_end_matches('/');
        match self {
            Self::Overview => path == own,
            _ => path == own || path.starts_with(&format!("{own}/")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_menu_marks_the_page_and_the_pages_under_it() {
        assert!(StaffPage::Overview.contains("/status"));
        assert!(StaffPage::Overview.contains("/status/"));
        assert!(!StaffPage::Overview.contains("/status/holders"));
        assert!(StaffPage::Holders.contains("/status/holders/123456789012"));
        assert!(!StaffPage::Holders.contains("/status/holdersx"));
        assert_eq!(
            StaffPage::Holder(HolderId::parse("123456789012").unwrap()).path(),
            "/status/holders/123456789012"
        );
        assert_eq!(
            StaffPage::Reports.permission(),
            Some(Permission::ExportReports)
        );
    }
}
