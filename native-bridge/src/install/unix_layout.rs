use std::path::{Path, PathBuf};

use super::{Browser, InstallError, Product, Scope, manifest_file_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    MacOs,
}

impl Os {
    /// Other unix-likes get the Linux layout, which their Chromium ports follow.
    pub const CURRENT: Self = if cfg!(target_os = "macos") {
        Self::MacOs
    } else {
        Self::Linux
    };
}

/// What the per-user folders depend on: the process environment, or a test's own.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
}

impl Env {
    pub fn from_process() -> Self {
        // The XDG spec says to ignore a relative XDG_CONFIG_HOME; a relative HOME is as useless.
        let absolute = |name| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|path| path.is_absolute())
        };
        Self {
            home: absolute("HOME"),
            xdg_config_home: absolute("XDG_CONFIG_HOME"),
        }
    }

    fn home(&self) -> Result<&Path, InstallError> {
        self.home.as_deref().ok_or(InstallError::NoHome)
    }

    /// `$XDG_CONFIG_HOME`, else `~/.config`: where Chrome on Linux keeps its settings.
    fn config_home(&self) -> Result<PathBuf, InstallError> {
        match &self.xdg_config_home {
            Some(dir) => Ok(dir.clone()),
            None => Ok(self.home()?.join(".config")),
        }
    }
}

/// The manifest file for each of `browsers`, under `destdir` when staging a package.
pub fn manifest_paths(
    os: Os,
    scope: Scope,
    browsers: Browser,
    env: &Env,
    destdir: Option<&Path>,
) -> Result<Vec<PathBuf>, InstallError> {
    browsers
        .products()
        .iter()
        .map(|&product| {
            let path = manifest_dir(os, scope, product, env)?.join(manifest_file_name());
            Ok(match destdir {
                // `join` would replace the root with an absolute path, so drop the `/` first.
                Some(root) => root.join(path.strip_prefix("/").unwrap_or(&path)),
                None => path,
            })
        })
        .collect()
}

pub fn manifest_dir(
    os: Os,
    scope: Scope,
    product: Product,
    env: &Env,
) -> Result<PathBuf, InstallError> {
    Ok(match (os, scope) {
        (Os::Linux, Scope::System) => PathBuf::from(match product {
            Product::Chrome => "/etc/opt/chrome/native-messaging-hosts",
            Product::Edge => "/etc/opt/edge/native-messaging-hosts",
            Product::Chromium => "/etc/chromium/native-messaging-hosts",
        }),
        (Os::Linux, Scope::User) => env
            .config_home()?
            .join(match product {
                Product::Chrome => "google-chrome",
                Product::Edge => "microsoft-edge",
                Product::Chromium => "chromium",
            })
            .join("NativeMessagingHosts"),
        (Os::MacOs, Scope::System) => PathBuf::from(match product {
            Product::Chrome => "/Library/Google/Chrome/NativeMessagingHosts",
            Product::Edge => "/Library/Microsoft/Edge/NativeMessagingHosts",
            Product::Chromium => "/Library/Application Support/Chromium/NativeMessagingHosts",
        }),
        (Os::MacOs, Scope::User) => env
            .home()?
            .join("Library/Application Support")
            .join(match product {
                Product::Chrome => "Google/Chrome",
                Product::Edge => "Microsoft Edge",
                Product::Chromium => "Chromium",
            })
            .join("NativeMessagingHosts"),
    })
}
