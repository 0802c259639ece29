//! What an IT team's package lays down: the system-wide host manifests and Windows registry
//! keys (from the same tables as `unlock-bridge install --system`, so a package and the
//! command cannot disagree), the settings file, and the browsers' managed policy that
//! force-installs the extension. `cargo xtask package` builds the `.deb`, the `.msi` and the
//! macOS archive from these.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::unix_layout::{Env, manifest_paths};
use super::{Browser, Product, Scope, windows_layout};
use crate::config::{FILE_NAME, is_extension_id};

pub use super::unix_layout::Os as UnixOs;

/// The bridge's version, which the packages carry.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Where the Debian package puts the binary (its settings file sits beside it).
pub const LINUX_HOST_PATH: &str = "/opt/unlock-bridge/unlock-bridge";
/// Where the macOS archive puts the binary.
pub const MACOS_HOST_PATH: &str = "/Library/Application Support/SmartcardUnlock/unlock-bridge";
/// The folder under `Program Files` the Windows installer uses.
pub const WINDOWS_FOLDER: &str = "SmartcardUnlock";
/// The binary's name on Windows.
pub const WINDOWS_BINARY: &str = "unlock-bridge.exe";
/// The managed-policy file the Linux package adds to each browser's policy folder.
pub const POLICY_FILE_NAME: &str = "smartcard-unlock.json";
/// The Chrome Web Store's update URL, for an extension published there.
pub const WEB_STORE_UPDATE_URL: &str = "https://clients2.google.com/service/update2/crx";

/// Why a package cannot be made as asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PackagingError {
    #[error("{0:?} is not an extension id (32 letters a to p)")]
    BadExtensionId(String),
    #[error(
        "{0:?} is not an update URL the browsers accept for a force-installed extension: use \
         https://… with no spaces or semicolons"
    )]
    BadUpdateUrl(String),
}

/// The extension the browsers are told to install and keep installed, and where they fetch
/// it and its updates from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForceInstall {
    extension_id: String,
    update_url: String,
}

impl ForceInstall {
    pub fn new(extension_id: &str, update_url: &str) -> Result<Self, PackagingError> {
        if !is_extension_id(extension_id) {
            return Err(PackagingError::BadExtensionId(extension_id.to_owned()));
        }
        let usable = update_url
            .strip_prefix("https://")
            .is_some_and(|rest| !rest.is_empty())
            && !update_url
                .chars()
                .any(|c| c == ';' || c == '"' || c.is_whitespace() || c.is_control());
        if !usable {
            return Err(PackagingError::BadUpdateUrl(update_url.to_owned()));
        }
        Ok(Self {
            extension_id: extension_id.to_owned(),
            update_url: update_url.to_owned(),
        })
    }

    pub fn extension_id(&self) -> &str {
        &self.extension_id
    }

    /// One `ExtensionInstallForcelist` entry: `<id>;<update URL>`.
    pub fn entry(&self) -> String {
        format!("{};{}", self.extension_id, self.update_url)
    }

    /// The managed-policy JSON file for Chrome, Edge and Chromium on Linux.
    pub fn linux_policy_json(&self) -> String {
        let policy = serde_json::json!({ "ExtensionInstallForcelist": [self.entry()] });
        serde_json::to_string_pretty(&policy).expect("a JSON value always serialises") + "\n"
    }
}

/// The system-wide manifest file of every browser on Linux or macOS.
pub fn system_manifest_files(os: UnixOs) -> Vec<PathBuf> {
    // System folders depend on no environment, so this cannot fail.
    manifest_paths(os, Scope::System, Browser::All, &Env::default(), None)
        .expect("system-wide folders need no home folder")
}

/// The managed-policy file of every browser on Linux.
pub fn linux_policy_files() -> Vec<PathBuf> {
    Browser::All
        .products()
        .iter()
        .map(|product| {
            Path::new(match product {
                Product::Chrome => "/etc/opt/chrome/policies/managed",
                Product::Edge => "/etc/opt/edge/policies/managed",
                Product::Chromium => "/etc/chromium/policies/managed",
            })
            .join(POLICY_FILE_NAME)
        })
        .collect()
}

/// The preference domain of every browser on macOS, for a configuration profile's payload.
pub fn macos_policy_domains() -> Vec<&'static str> {
    Browser::All
        .products()
        .iter()
        .map(|product| match product {
            Product::Chrome => "com.google.Chrome",
            Product::Edge => "com.microsoft.Edge",
            Product::Chromium => "org.chromium.Chromium",
        })
        .collect()
}

/// The key of every browser under HKLM whose default value names the manifest file.
pub fn windows_host_keys() -> Vec<String> {
    Browser::All
        .products()
        .iter()
        .map(|&product| windows_layout::registry_key(product))
        .collect()
}

/// The key of every browser under HKLM holding the `ExtensionInstallForcelist` policy; its
/// entries are `REG_SZ` values named `1`, `2`, ….
pub fn windows_forcelist_keys() -> Vec<String> {
    Browser::All
        .products()
        .iter()
        .map(|product| {
            let vendor = match product {
                Product::Chrome => r"Google\Chrome",
                Product::Edge => r"Microsoft\Edge",
                Product::Chromium => "Chromium",
            };
            format!(r"Software\Policies\{vendor}\ExtensionInstallForcelist")
        })
        .collect()
}

/// The manifest's file name, beside the binary on Windows and in each folder elsewhere.
pub fn manifest_file_name() -> String {
    super::manifest_file_name()
}

/// The settings file's name, beside the binary.
pub fn config_file_name() -> &'static str {
    FILE_NAME
}

/// The settings file a package installs: the pages and extensions given, and the other
/// settings as comments.
pub fn config_file(allowed_origins: &[String], extension_ids: &[String]) -> String {
    #[derive(Serialize)]
    struct Shipped<'a> {
        allowed_origins: &'a [String],
        extension_ids: &'a [String],
    }
    let settings = toml::to_string(&Shipped {
        allowed_origins,
        extension_ids,
    })
    .expect("a list of strings always serialises");
    format!(
        "# Settings of the smartcard unlock bridge (the program beside this file).\n\
         # allowed_origins: the pages that may use the card reader, https://host[:port].\n\
         # With none, every page is refused.\n\
         # extension_ids: the extensions allowed to start the bridge.\n\
         {settings}\
         # log_file = \"/var/log/unlock-bridge.log\"   # default: standard error, kept by the browser\n\
         # log_level = \"info\"                        # error | warn | info | debug\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, DEFAULT_EXTENSION_ID};

    #[test]
    fn the_forcelist_entry_is_the_id_and_the_update_url() {
        let force = ForceInstall::new(DEFAULT_EXTENSION_ID, WEB_STORE_UPDATE_URL).unwrap();
        assert_eq!(
            force.entry(),
            "ooiaefjbcbkkddillkmdbldfflinfgki;https://clients2.google.com/service/update2/crx"
        );
        let policy: serde_json::Value = serde_json::from_str(&force.linux_policy_json()).unwrap();
        assert_eq!(
            policy,
            serde_json::json!({"ExtensionInstallForcelist": [force.entry()]})
        );
    }

    #[test]
    fn bad_ids_and_update_urls_are_refused() {
        assert_eq!(
            ForceInstall::new("not-an-id", WEB_STORE_UPDATE_URL),
            Err(PackagingError::BadExtensionId("not-an-id".into()))
        );
        for url in [
            "http://updates.example/crx",
            "https://",
            "https://a.example/x;y",
            "https://a.example/ x",
            "updates.example",
        ] {
            assert_eq!(
                ForceInstall::new(DEFAULT_EXTENSION_ID, url),
                Err(PackagingError::BadUpdateUrl(url.into())),
                "{url}"
            );
        }
    }

    #[test]
    fn the_policy_and_manifest_places_cover_every_browser() {
        assert_eq!(
            linux_policy_files(),
            [
                "/etc/opt/chrome/policies/managed/smartcard-unlock.json",
                "/etc/opt/edge/policies/managed/smartcard-unlock.json",
                "/etc/chromium/policies/managed/smartcard-unlock.json",
            ]
            .map(PathBuf::from)
        );
        assert_eq!(system_manifest_files(UnixOs::Linux).len(), 3);
        assert_eq!(
            system_manifest_files(UnixOs::MacOs)[0],
            Path::new("/Library/Google/Chrome/NativeMessagingHosts/uk.nhs.smartcard_unlock.json")
        );
        assert_eq!(
            windows_host_keys()[1],
            r"Software\Microsoft\Edge\NativeMessagingHosts\uk.nhs.smartcard_unlock"
        );
        assert_eq!(
            windows_forcelist_keys(),
            [
                r"Software\Policies\Google\Chrome\ExtensionInstallForcelist",
                r"Software\Policies\Microsoft\Edge\ExtensionInstallForcelist",
                r"Software\Policies\Chromium\ExtensionInstallForcelist",
            ]
        );
        assert_eq!(macos_policy_domains().len(), 3);
    }

    #[test]
    fn the_shipped_settings_file_is_what_the_bridge_reads() {
        let dir = tempfile::tempdir().unwrap();
        let origins = vec!["https://unlock.example.nhs.uk".to_owned()];
        let ids = vec![DEFAULT_EXTENSION_ID.to_owned()];
        std::fs::write(dir.path().join(FILE_NAME), config_file(&origins, &ids)).unwrap();
        let config = Config::load_beside(&dir.path().join("unlock-bridge")).unwrap();
        assert!(config.allows_page("https://unlock.example.nhs.uk"));
        assert_eq!(config.extension_ids, ids);

        std::fs::write(dir.path().join(FILE_NAME), config_file(&[], &ids)).unwrap();
        let config = Config::load_beside(&dir.path().join("unlock-bridge")).unwrap();
        assert!(config.allowed_origins.is_empty());
    }
}
