//! The host's settings: a TOML file beside the binary (and, on Windows, registry values an
//! administrator can set by policy).

/// The native-messaging host's name, as the extension's `connectNative` and the browsers'
/// manifest files spell it.
pub const HOST_NAME: &str = "uk.nhs.smartcard_unlock";

/// The id of the extension in `native-bridge/extension/`, fixed by the public key in its
/// `manifest.json`. A deploying organisation that signs its own build lists its id in the
/// config file instead.
pub const DEFAULT_EXTENSION_ID: &str = "ooiaefjbcbkkddillkmdbldfflinfgki";

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The config file's name; it sits beside the `unlock-bridge` binary.
pub const FILE_NAME: &str = "unlock-bridge.toml";

/// What an administrator can set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Origins of the pages allowed to use the card reader, such as
    /// `https://unlock.example.nhs.uk`. Empty means every page is refused.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Ids of the extensions allowed to start the host.
    #[serde(default = "default_extension_ids")]
    pub extension_ids: Vec<String>,
    /// Where the log goes; standard error (which the browser keeps) when unset.
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// `error`, `warn`, `info` or `debug`.
    #[serde(default = "default_log_level")]
    pub log_level: String,
}

fn default_extension_ids() -> Vec<String> {
    vec![DEFAULT_EXTENSION_ID.to_owned()]
}

fn default_log_level() -> String {
    "info".to_owned()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            extension_ids: default_extension_ids(),
            log_file: None,
            log_level: default_log_level(),
        }
    }
}

/// Why the settings could not be used; the host then refuses every request.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error(
        "{0:?} is not an origin the bridge can allow: use https://host[:port] \
         (plain http only for 127.0.0.1, localhost or [::1]), with no path"
    )]
    BadOrigin(String),
    #[error("{0:?} is not an extension id (32 letters a to p)")]
    BadExtensionId(String),
}

impl Config {
    /// The settings beside `binary`, plus on Windows the administrator's policy values.
    /// A missing file means the defaults.
    pub fn load_beside(binary: &Path) -> Result<Self, ConfigError> {
        let path = binary.with_file_name(FILE_NAME);
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.clone(),
                source: Box::new(source),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        config.allowed_origins.extend(policy::allowed_origins());
        config.check()
    }

    fn check(mut self) -> Result<Self, ConfigError> {
        for origin in &mut self.allowed_origins {
            *origin = origin.trim_end_matches('/').to_ascii_lowercase();
            if !is_servable_origin(origin) {
                return Err(ConfigError::BadOrigin(origin.clone()));
            }
        }
        if let Some(bad) = self.extension_ids.iter().find(|id| !is_extension_id(id)) {
            return Err(ConfigError::BadExtensionId(bad.clone()));
        }
        Ok(self)
    }

    /// Whether the browser started the host for one of the known extensions; the browser
    /// passes `chrome-extension://<id>/` as the first argument.
    pub fn allows_extension(&self, caller: &str) -> bool {
        caller
            .strip_prefix("chrome-extension://")
            .map(|rest| rest.trim_end_matches('/'))
            .is_some_and(|id| self.extension_ids.iter().any(|known| known == id))
    }

    /// Whether a page at `origin` (as the browser reported it) may use the reader.
    pub fn allows_page(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        self.allowed_origins.contains(&origin)
    }
}

/// Whether `id` looks like a Chromium extension id: 32 letters from a to p.
pub fn is_extension_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|byte| (b'a'..=b'p').contains(&byte))
}

/// `https://host[:port]`, or plain http on the loopback interface for development.
fn is_servable_origin(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let host = match authority.rfind(':') {
        // A colon inside `[...]` belongs to an IPv6 address, not a port.
        Some(colon) if !authority[colon..].contains(']') => {
            if authority[colon + 1..].parse::<u16>().is_err() {
                return false;
            }
            &authority[..colon]
        }
        _ => authority,
    };
    let plain = !host.is_empty()
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b".-[]:".contains(&byte));
    match scheme {
        "https" => plain,
        "http" => plain && matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
        _ => false,
    }
}

#[cfg(windows)]
mod policy {
    use winreg::RegKey;
    use winreg::enums::HKEY_LOCAL_MACHINE;

    /// The policy key an administrator can set (a REG_MULTI_SZ value `AllowedOrigins`).
    pub const KEY: &str = r"SOFTWARE\Policies\SmartcardUnlock\Bridge";

    pub fn allowed_origins() -> Vec<String> {
        RegKey::predef(HKEY_LOCAL_MACHINE)
            .open_subkey(KEY)
            .and_then(|key| key.get_value::<Vec<String>, _>("AllowedOrigins"))
            .unwrap_or_default()
    }
}

#[cfg(not(windows))]
mod policy {
    pub fn allowed_origins() -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), text).unwrap();
        Config::load_beside(&dir.path().join("unlock-bridge"))
    }

    #[test]
    fn without_a_file_no_page_is_allowed_and_the_known_extension_is() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load_beside(&dir.path().join("unlock-bridge")).unwrap();
        assert!(!config.allows_page("https://unlock.example.nhs.uk"));
        assert!(config.allows_extension(&format!("chrome-extension://{DEFAULT_EXTENSION_ID}/")));
        assert!(!config.allows_extension("chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/"));
        assert!(!config.allows_extension(DEFAULT_EXTENSION_ID));
    }

    #[test]
    fn pages_are_matched_by_exact_origin() {
        let config = config(
            r#"allowed_origins = ["https://Unlock.example.nhs.uk/", "http://127.0.0.1:8080"]"#,
        )
        .unwrap();
        assert!(config.allows_page("https://unlock.example.nhs.uk"));
        assert!(config.allows_page("http://127.0.0.1:8080"));
        for refused in [
            "http://unlock.example.nhs.uk",
            "https://unlock.example.nhs.uk:8443",
            "https://evil.example.nhs.uk",
            "http://127.0.0.1:8081",
            "null",
            "",
        ] {
            assert!(!config.allows_page(refused), "{refused}");
        }
    }

    #[test]
    fn unsafe_or_malformed_settings_are_refused_with_the_reason() {
        for origin in [
            "http://unlock.example.nhs.uk",
            "https://unlock.example.nhs.uk/path",
            "https://user@unlock.example.nhs.uk",
            "ftp://unlock.example.nhs.uk",
            "https://unlock.example.nhs.uk:99999",
            "*",
        ] {
            let error = config(&format!("allowed_origins = [{origin:?}]")).unwrap_err();
            assert!(
                matches!(error, ConfigError::BadOrigin(_)),
                "{origin}: {error}"
            );
        }
        assert!(config(r#"allowed_origins = ["http://[::1]:9000"]"#).is_ok());
        assert!(matches!(
            config(r#"extension_ids = ["not-an-id"]"#),
            Err(ConfigError::BadExtensionId(_))
        ));
        let error = config("allowed_origin = []").unwrap_err();
        assert!(error.to_string().contains(FILE_NAME), "{error}");
    }
}
