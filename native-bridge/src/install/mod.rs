//! `unlock-bridge install` and `uninstall`: the native-messaging host manifest, put where
//! Chrome, Edge and Chromium look for it (on Windows, beside the binary with a registry key
//! pointing at it).
//!
//! Where things go is worked out by pure functions compiled on every OS, so the Linux tests
//! cover the macOS and Windows locations too; only the writing picks the OS.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::HOST_NAME;

/// The browsers to register with, as `--browser` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Browser {
    Chrome,
    Edge,
    Chromium,
    /// Chrome, Edge and Chromium.
    All,
}

/// Whether the registration is for the current user or every user of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    User,
    System,
}

/// One place a registration lives; its `Display` is what to tell the person installing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A manifest file.
    File(PathBuf),
    /// A Windows registry key under HKCU (user) or HKLM (system) naming the manifest file.
    RegistryKey { scope: Scope, key: String },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::RegistryKey { scope, key } => {
                let hive = match scope {
                    Scope::User => "HKEY_CURRENT_USER",
                    Scope::System => "HKEY_LOCAL_MACHINE",
                };
                write!(f, r"{hive}\{key}")
            }
        }
    }
}

/// Why the host could not be registered or unregistered.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "the host path {} is relative; browsers need the absolute path of the unlock-bridge binary",
        .0.display()
    )]
    RelativeHostPath(PathBuf),
    #[error("the host path {} is not UTF-8 text, which the manifest cannot hold", .0.display())]
    NonUtf8HostPath(PathBuf),
    #[error("no extension id to allow: name at least one")]
    NoExtensionIds,
    #[error("{0:?} is not an extension id (32 letters a to p)")]
    BadExtensionId(String),
    #[error(
        "cannot find your home folder: HOME is not set to an absolute path \
         (set it, or use --system)"
    )]
    NoHome,
    #[error(
        "--destdir stages files for a package, but on Windows browsers find the host through \
         the registry; let the package's installer run `unlock-bridge install` instead"
    )]
    DestdirOnWindows,
    #[error("permission denied to {action} {place}; {}", permission_hint(*.scope))]
    PermissionDenied {
        action: &'static str,
        place: Location,
        scope: Scope,
    },
    #[error("could not {action} {place}: {source}")]
    Io {
        action: &'static str,
        place: Location,
        source: io::Error,
    },
}

fn permission_hint(scope: Scope) -> &'static str {
    match scope {
        Scope::System => {
            "run it with sudo (as administrator on Windows), or register for yourself only \
             with --user"
        }
        Scope::User => "check that you own that folder",
    }
}

/// The host manifest: pretty JSON naming the binary and the extensions allowed to start it.
pub fn manifest_json(host_path: &Path, extension_ids: &[String]) -> String {
    let origins: Vec<String> = extension_ids
        .iter()
        .map(|id| format!("chrome-extension://{id}/"))
        .collect();
    let manifest = serde_json::json!({
        "name": HOST_NAME,
        "description": env!("CARGO_PKG_DESCRIPTION"),
        "path": host_path.to_string_lossy(),
        "type": "stdio",
        "allowed_origins": origins,
    });
    serde_json::to_string_pretty(&manifest).expect("a JSON value always serialises") + "\n"
}

/// Registers `host_path` with `browsers` for `scope`, replacing any earlier registration.
/// With `destdir` (Linux and macOS) every file goes under that staging root instead of `/`.
/// Returns the places written.
pub fn install(
    scope: Scope,
    browsers: Browser,
    host_path: &Path,
    extension_ids: &[String],
    destdir: Option<&Path>,
) -> Result<Vec<Location>, InstallError> {
    check_host_path(host_path)?;
    check_extension_ids(extension_ids)?;
    let manifest = manifest_json(host_path, extension_ids);
    platform::install(scope, browsers, host_path, &manifest, destdir)
}

/// Removes the registration for `browsers` and `scope`. Returns the places removed, which is
/// none when there was nothing to remove.
pub fn uninstall(
    scope: Scope,
    browsers: Browser,
    destdir: Option<&Path>,
) -> Result<Vec<Location>, InstallError> {
    platform::uninstall(scope, browsers, destdir)
}

fn check_host_path(host_path: &Path) -> Result<(), InstallError> {
    if !host_path.is_absolute() {
        return Err(InstallError::RelativeHostPath(host_path.to_owned()));
    }
    if host_path.to_str().is_none() {
        return Err(InstallError::NonUtf8HostPath(host_path.to_owned()));
    }
    Ok(())
}

fn check_extension_ids(extension_ids: &[String]) -> Result<(), InstallError> {
    if extension_ids.is_empty() {
        return Err(InstallError::NoExtensionIds);
    }
    match extension_ids
        .iter()
        .find(|id| !crate::config::is_extension_id(id))
    {
        Some(bad) => Err(InstallError::BadExtensionId(bad.clone())),
        None => Ok(()),
    }
}

/// One browser; [`Browser::All`] stands for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    Chrome,
    Edge,
    Chromium,
}

impl Product {
    /// Every browser the host registers with.
    pub const ALL: [Self; 3] = [Self::Chrome, Self::Edge, Self::Chromium];

    /// The browser's name as people know it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Chrome => "Google Chrome",
            Self::Edge => "Microsoft Edge",
            Self::Chromium => "Chromium",
        }
    }

    /// The browser as `--browser` names it.
    pub fn flag(self) -> &'static str {
        match self {
            Self::Chrome => "chrome",
            Self::Edge => "edge",
            Self::Chromium => "chromium",
        }
    }
}

/// Where a browser looks for the host's registration for one scope, and the manifest file
/// that registration leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The manifest file (Linux, macOS) or the registry key naming one (Windows).
    pub place: Location,
    /// The manifest the browser would read, if the place names one; it may not exist.
    pub manifest: Option<PathBuf>,
}

/// Where `product` looks for the host for `scope`: the same places `install` writes to.
pub fn registration(scope: Scope, product: Product) -> Result<Registration, InstallError> {
    platform::registration(scope, product)
}

impl Browser {
    fn products(self) -> &'static [Product] {
        match self {
            Self::Chrome => &[Product::Chrome],
            Self::Edge => &[Product::Edge],
            Self::Chromium => &[Product::Chromium],
            Self::All => &[Product::Chrome, Product::Edge, Product::Chromium],
        }
    }
}

fn manifest_file_name() -> String {
    format!("{HOST_NAME}.json")
}

pub mod packaging;

/// Where Linux and macOS browsers look for host manifests.
#[cfg_attr(
    windows,
    allow(dead_code, reason = "compiled everywhere so the Linux tests cover it")
)]
mod unix_layout;

/// Where Windows browsers look: a registry key naming a manifest file beside the binary.
#[cfg_attr(
    not(windows),
    allow(dead_code, reason = "compiled everywhere so the Linux tests cover it")
)]
mod windows_layout;

#[cfg(not(windows))]
#[path = "platform_unix.rs"]
mod platform;

#[cfg(windows)]
#[path = "platform_windows.rs"]
mod platform;

/// Writes the manifest through a temporary file and a rename, so a browser never reads half
/// of one.
fn write_manifest(path: &Path, manifest: &str, scope: Scope) -> Result<(), InstallError> {
    let failed = || io_error("write", Location::File(path.to_owned()), scope);
    if let Some(dir) = path.parent() {
        create_dirs(dir, scope).map_err(failed())?;
    }
    let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let written = fs::write(&temporary, manifest)
        .and_then(|()| readable_by_all(&temporary))
        .and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        // Best effort: the write's own error is the one worth reporting.
        let _ = fs::remove_file(&temporary);
    }
    written.map_err(failed())
}

/// Removes a manifest; `false` if there was none.
fn remove_manifest(path: &Path, scope: Scope) -> Result<bool, InstallError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => {
            let place = Location::File(path.to_owned());
            Err(io_error("remove", place, scope)(error))
        }
    }
}

fn io_error(
    action: &'static str,
    place: Location,
    scope: Scope,
) -> impl FnOnce(io::Error) -> InstallError {
    move |source| {
        if source.kind() == io::ErrorKind::PermissionDenied {
            InstallError::PermissionDenied {
                action,
                place,
                scope,
            }
        } else {
            InstallError::Io {
                action,
                place,
                source,
            }
        }
    }
}

/// Creates `dir` and its missing parents. Browsers run as every user, so folders made for a
/// system install are world-readable whatever the umask; a user's stay private to them.
#[cfg(unix)]
fn create_dirs(dir: &Path, scope: Scope) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let mode = match scope {
        Scope::System => 0o755,
        Scope::User => 0o700,
    };
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|ancestor| !ancestor.as_os_str().is_empty() && !ancestor.exists())
        .collect();
    for folder in missing.into_iter().rev() {
        match fs::create_dir(folder) {
            Ok(()) => fs::set_permissions(folder, fs::Permissions::from_mode(mode))?,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_dirs(dir: &Path, _scope: Scope) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn readable_by_all(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn readable_by_all(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests;
