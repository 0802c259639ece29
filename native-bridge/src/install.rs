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
enum Product {
    Chrome,
    Edge,
    Chromium,
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

/// Where Linux and macOS browsers look for host manifests.
#[cfg_attr(
    windows,
    allow(dead_code, reason = "compiled everywhere so the Linux tests cover it")
)]
mod unix_layout {
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

    fn manifest_dir(
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
}

/// Where Windows browsers look: a registry key naming a manifest file beside the binary.
#[cfg_attr(
    not(windows),
    allow(dead_code, reason = "compiled everywhere so the Linux tests cover it")
)]
mod windows_layout {
    use std::path::{Path, PathBuf};

    use super::{HOST_NAME, Product, manifest_file_name};

    /// The key, under HKCU or HKLM, whose default value is the manifest file's full path.
    pub fn registry_key(product: Product) -> String {
        let vendor = match product {
            Product::Chrome => r"Software\Google\Chrome",
            Product::Edge => r"Software\Microsoft\Edge",
            Product::Chromium => r"Software\Chromium",
        };
        format!(r"{vendor}\NativeMessagingHosts\{HOST_NAME}")
    }

    pub fn manifest_path(host_path: &Path) -> PathBuf {
        host_path.with_file_name(manifest_file_name())
    }
}

#[cfg(not(windows))]
mod platform {
    use std::path::Path;

    use super::unix_layout::{Env, Os, manifest_paths};
    use super::{Browser, InstallError, Location, Scope, remove_manifest, write_manifest};

    pub fn install(
        scope: Scope,
        browsers: Browser,
        _host_path: &Path,
        manifest: &str,
        destdir: Option<&Path>,
    ) -> Result<Vec<Location>, InstallError> {
        install_with(&Env::from_process(), scope, browsers, manifest, destdir)
    }

    pub fn uninstall(
        scope: Scope,
        browsers: Browser,
        destdir: Option<&Path>,
    ) -> Result<Vec<Location>, InstallError> {
        uninstall_with(&Env::from_process(), scope, browsers, destdir)
    }

    pub(super) fn install_with(
        env: &Env,
        scope: Scope,
        browsers: Browser,
        manifest: &str,
        destdir: Option<&Path>,
    ) -> Result<Vec<Location>, InstallError> {
        let paths = manifest_paths(Os::CURRENT, scope, browsers, env, destdir)?;
        for path in &paths {
            write_manifest(path, manifest, scope)?;
        }
        Ok(paths.into_iter().map(Location::File).collect())
    }

    pub(super) fn uninstall_with(
        env: &Env,
        scope: Scope,
        browsers: Browser,
        destdir: Option<&Path>,
    ) -> Result<Vec<Location>, InstallError> {
        let mut removed = Vec::new();
        for path in manifest_paths(Os::CURRENT, scope, browsers, env, destdir)? {
            if remove_manifest(&path, scope)? {
                removed.push(Location::File(path));
            }
        }
        Ok(removed)
    }
}

#[cfg(windows)]
mod platform {
    use std::ffi::OsString;
    use std::io;
    use std::path::{Path, PathBuf};

    use winreg::RegKey;
    use winreg::enums::{HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE};

    use super::windows_layout::{manifest_path, registry_key};
    use super::{
        Browser, InstallError, Location, Scope, io_error, remove_manifest, write_manifest,
    };

    pub fn install(
        scope: Scope,
        browsers: Browser,
        host_path: &Path,
        manifest: &str,
        destdir: Option<&Path>,
    ) -> Result<Vec<Location>, InstallError> {
        if destdir.is_some() {
            return Err(InstallError::DestdirOnWindows);
        }
        let file = manifest_path(host_path);
        write_manifest(&file, manifest, scope)?;
        let mut written = vec![Location::File(file.clone())];
        for &product in browsers.products() {
            let key = registry_key(product);
            let place = Location::RegistryKey {
                scope,
                key: key.clone(),
            };
            hive(scope)
                .create_subkey(&key)
                .and_then(|(created, _)| created.set_value("", &file.as_os_str()))
                .map_err(io_error("write", place.clone(), scope))?;
            written.push(place);
        }
        Ok(written)
    }

    pub fn uninstall(
        scope: Scope,
        browsers: Browser,
        destdir: Option<&Path>,
    ) -> Result<Vec<Location>, InstallError> {
        if destdir.is_some() {
            return Err(InstallError::DestdirOnWindows);
        }
        let mut removed = Vec::new();
        let mut files: Vec<PathBuf> = Vec::new();
        for &product in browsers.products() {
            let key = registry_key(product);
            let place = Location::RegistryKey {
                scope,
                key: key.clone(),
            };
            let named =
                registered_file(scope, &key).map_err(io_error("read", place.clone(), scope))?;
            if let Some(file) = named
                && !files.contains(&file)
            {
                files.push(file);
            }
            match hive(scope).delete_subkey_all(&key) {
                Ok(()) => removed.push(place),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(io_error("remove", place, scope)(error)),
            }
        }
        // Every browser's key names the one file beside the binary: keep it while any still does.
        for file in files {
            if !still_registered(&file) && remove_manifest(&file, scope)? {
                removed.push(Location::File(file));
            }
        }
        Ok(removed)
    }

    fn hive(scope: Scope) -> RegKey {
        RegKey::predef(match scope {
            Scope::User => HKEY_CURRENT_USER,
            Scope::System => HKEY_LOCAL_MACHINE,
        })
    }

    /// The manifest file `key` names, if the key is there.
    fn registered_file(scope: Scope, key: &str) -> io::Result<Option<PathBuf>> {
        match hive(scope)
            .open_subkey(key)
            .and_then(|opened| opened.get_value::<OsString, _>(""))
        {
            Ok(file) => Ok(Some(PathBuf::from(file))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn still_registered(file: &Path) -> bool {
        [Scope::User, Scope::System].into_iter().any(|scope| {
            Browser::All.products().iter().any(|&product| {
                // A key we cannot read might name the file, so keep it.
                registered_file(scope, &registry_key(product))
                    .map_or(true, |named| named.as_deref() == Some(file))
            })
        })
    }
}

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
mod tests {
    use std::path::{Path, PathBuf};

    use super::unix_layout::{Env, Os, manifest_paths};
    use super::windows_layout::{manifest_path, registry_key};
    use super::*;
    use crate::config::DEFAULT_EXTENSION_ID;

    const HOST: &str = "/usr/lib/unlock-bridge/unlock-bridge";

    fn ids() -> Vec<String> {
        vec![DEFAULT_EXTENSION_ID.to_owned()]
    }

    fn env(home: &str) -> Env {
        Env {
            home: Some(home.into()),
            xdg_config_home: None,
        }
    }

    fn paths(os: Os, scope: Scope, browsers: Browser, env: &Env) -> Vec<PathBuf> {
        manifest_paths(os, scope, browsers, env, None).unwrap()
    }

    fn file(dir: &str) -> PathBuf {
        Path::new(dir).join("uk.nhs.smartcard_unlock.json")
    }

    #[test]
    fn the_manifest_names_the_host_and_allows_each_extension_by_origin() {
        let second = "abcdefghijklmnopabcdefghijklmnop".to_owned();
        let json = manifest_json(Path::new(HOST), &[DEFAULT_EXTENSION_ID.to_owned(), second]);

        let manifest: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(manifest["name"], HOST_NAME);
        assert_eq!(manifest["path"], HOST);
        assert_eq!(manifest["type"], "stdio");
        assert!(!manifest["description"].as_str().unwrap().is_empty());
        assert_eq!(
            manifest["allowed_origins"],
            serde_json::json!([
                "chrome-extension://ooiaefjbcbkkddillkmdbldfflinfgki/",
                "chrome-extension://abcdefghijklmnopabcdefghijklmnop/",
            ])
        );
        assert_eq!(manifest.as_object().unwrap().len(), 5);
    }

    #[test]
    fn linux_manifests_go_in_etc_for_everyone_and_the_config_home_for_one_user() {
        let home = env("/home/ann");
        assert_eq!(
            paths(Os::Linux, Scope::System, Browser::All, &home),
            [
                file("/etc/opt/chrome/native-messaging-hosts"),
                file("/etc/opt/edge/native-messaging-hosts"),
                file("/etc/chromium/native-messaging-hosts"),
            ]
        );
        assert_eq!(
            paths(Os::Linux, Scope::User, Browser::All, &home),
            [
                file("/home/ann/.config/google-chrome/NativeMessagingHosts"),
                file("/home/ann/.config/microsoft-edge/NativeMessagingHosts"),
                file("/home/ann/.config/chromium/NativeMessagingHosts"),
            ]
        );
        let xdg = Env {
            xdg_config_home: Some("/data/ann/config".into()),
            ..home
        };
        assert_eq!(
            paths(Os::Linux, Scope::User, Browser::Chromium, &xdg),
            [file("/data/ann/config/chromium/NativeMessagingHosts")]
        );
    }

    #[test]
    fn macos_manifests_go_in_library_for_everyone_and_the_home_library_for_one_user() {
        let home = env("/Users/ann");
        assert_eq!(
            paths(Os::MacOs, Scope::System, Browser::All, &home),
            [
                file("/Library/Google/Chrome/NativeMessagingHosts"),
                file("/Library/Microsoft/Edge/NativeMessagingHosts"),
                file("/Library/Application Support/Chromium/NativeMessagingHosts"),
            ]
        );
        assert_eq!(
            paths(Os::MacOs, Scope::User, Browser::All, &home),
            [
                file("/Users/ann/Library/Application Support/Google/Chrome/NativeMessagingHosts"),
                file("/Users/ann/Library/Application Support/Microsoft Edge/NativeMessagingHosts"),
                file("/Users/ann/Library/Application Support/Chromium/NativeMessagingHosts"),
            ]
        );
    }

    #[test]
    fn windows_keys_name_a_manifest_beside_the_binary() {
        let keys: Vec<String> = Browser::All
            .products()
            .iter()
            .map(|&product| registry_key(product))
            .collect();
        assert_eq!(
            keys,
            [
                r"Software\Google\Chrome\NativeMessagingHosts\uk.nhs.smartcard_unlock",
                r"Software\Microsoft\Edge\NativeMessagingHosts\uk.nhs.smartcard_unlock",
                r"Software\Chromium\NativeMessagingHosts\uk.nhs.smartcard_unlock",
            ]
        );
        assert_eq!(
            manifest_path(Path::new("/opt/bridge/unlock-bridge.exe")),
            file("/opt/bridge")
        );
        let key = |scope| Location::RegistryKey {
            scope,
            key: registry_key(Product::Edge),
        };
        assert_eq!(
            key(Scope::User).to_string(),
            r"HKEY_CURRENT_USER\Software\Microsoft\Edge\NativeMessagingHosts\uk.nhs.smartcard_unlock"
        );
        assert!(
            key(Scope::System)
                .to_string()
                .starts_with(r"HKEY_LOCAL_MACHINE\Software\")
        );
    }

    #[test]
    fn one_browser_means_one_manifest_and_destdir_prefixes_every_path() {
        let home = env("/home/ann");
        for (browser, dir) in [
            (Browser::Chrome, "/etc/opt/chrome/native-messaging-hosts"),
            (Browser::Edge, "/etc/opt/edge/native-messaging-hosts"),
            (Browser::Chromium, "/etc/chromium/native-messaging-hosts"),
        ] {
            assert_eq!(paths(Os::Linux, Scope::System, browser, &home), [file(dir)]);
        }
        let staged = |scope| {
            manifest_paths(
                Os::Linux,
                scope,
                Browser::Edge,
                &home,
                Some(Path::new("/tmp/pkg")),
            )
            .unwrap()
        };
        assert_eq!(
            staged(Scope::System),
            [file("/tmp/pkg/etc/opt/edge/native-messaging-hosts")]
        );
        assert_eq!(
            staged(Scope::User),
            [file(
                "/tmp/pkg/home/ann/.config/microsoft-edge/NativeMessagingHosts"
            )]
        );
    }

    #[test]
    fn a_user_install_needs_a_home_but_a_system_one_does_not() {
        let nowhere = Env::default();
        for os in [Os::Linux, Os::MacOs] {
            assert!(matches!(
                manifest_paths(os, Scope::User, Browser::All, &nowhere, None),
                Err(InstallError::NoHome)
            ));
            assert!(manifest_paths(os, Scope::System, Browser::All, &nowhere, None).is_ok());
        }
    }

    #[test]
    fn a_relative_host_path_or_a_bad_extension_id_is_refused_before_writing_anything() {
        let staging = tempfile::tempdir().unwrap();
        let refused = |host: &str, ids: &[String]| {
            install(
                Scope::System,
                Browser::All,
                Path::new(host),
                ids,
                Some(staging.path()),
            )
            .unwrap_err()
        };

        let error = refused("target/debug/unlock-bridge", &ids());
        assert!(matches!(error, InstallError::RelativeHostPath(_)));
        assert!(
            error.to_string().contains("target/debug/unlock-bridge"),
            "{error}"
        );
        assert!(error.to_string().contains("absolute"), "{error}");
        assert!(matches!(refused(HOST, &[]), InstallError::NoExtensionIds));
        assert!(matches!(
            refused(HOST, &["chrome-extension://x/".to_owned()]),
            InstallError::BadExtensionId(_)
        ));
        assert_eq!(std::fs::read_dir(staging.path()).unwrap().count(), 0);
    }

    #[test]
    fn permission_errors_name_the_path_and_say_what_to_do() {
        let place = Location::File(file("/etc/opt/chrome/native-messaging-hosts"));
        let denied = |scope| {
            io_error("write", place.clone(), scope)(io::ErrorKind::PermissionDenied.into())
                .to_string()
        };
        let system = denied(Scope::System);
        assert!(
            system.contains("/etc/opt/chrome/native-messaging-hosts/uk.nhs"),
            "{system}"
        );
        assert!(
            system.contains("sudo") && system.contains("--user"),
            "{system}"
        );
        assert!(!denied(Scope::User).contains("sudo"));
    }

    #[cfg(target_os = "linux")]
    mod on_linux {
        use std::fs;
        use std::os::unix::fs::PermissionsExt;

        use super::super::platform::{install_with, uninstall_with};
        use super::*;

        fn mode(path: &Path) -> u32 {
            fs::metadata(path).unwrap().permissions().mode() & 0o777
        }

        fn files(locations: &[Location]) -> Vec<PathBuf> {
            locations
                .iter()
                .map(|location| match location {
                    Location::File(path) => path.clone(),
                    Location::RegistryKey { .. } => panic!("no registry on Linux: {location}"),
                })
                .collect()
        }

        #[test]
        fn a_user_install_writes_each_browsers_manifest_and_uninstall_removes_them() {
            let config = tempfile::tempdir().unwrap();
            let env = Env {
                home: None,
                xdg_config_home: Some(config.path().to_owned()),
            };
            let manifest = manifest_json(Path::new(HOST), &ids());

            let written =
                files(&install_with(&env, Scope::User, Browser::All, &manifest, None).unwrap());

            assert_eq!(
                written,
                [
                    config.path().join("google-chrome/NativeMessagingHosts"),
                    config.path().join("microsoft-edge/NativeMessagingHosts"),
                    config.path().join("chromium/NativeMessagingHosts"),
                ]
                .map(|dir| dir.join("uk.nhs.smartcard_unlock.json"))
            );
            for path in &written {
                assert_eq!(fs::read_to_string(path).unwrap(), manifest);
                assert_eq!(mode(path), 0o644);
                assert_eq!(mode(path.parent().unwrap()), 0o700);
                assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
            }

            let removed = uninstall_with(&env, Scope::User, Browser::All, None).unwrap();
            assert_eq!(files(&removed), written);
            assert!(written.iter().all(|path| !path.exists()));
            let again = uninstall_with(&env, Scope::User, Browser::All, None).unwrap();
            assert!(again.is_empty());
        }

        #[test]
        fn a_system_install_into_a_destdir_stages_world_readable_manifests() {
            let staging = tempfile::tempdir().unwrap();
            let root = Some(staging.path());

            let written = files(
                &install(Scope::System, Browser::All, Path::new(HOST), &ids(), root).unwrap(),
            );

            let chrome = staging
                .path()
                .join("etc/opt/chrome/native-messaging-hosts/uk.nhs.smartcard_unlock.json");
            assert_eq!(written.len(), 3);
            assert_eq!(written[0], chrome);
            for path in &written {
                assert_eq!(
                    fs::read_to_string(path).unwrap(),
                    manifest_json(Path::new(HOST), &ids())
                );
                assert_eq!(mode(path), 0o644);
                assert_eq!(mode(path.parent().unwrap()), 0o755);
            }

            // Reinstalling replaces the manifest in place.
            let other = ["abcdefghijklmnopabcdefghijklmnop".to_owned()];
            install(
                Scope::System,
                Browser::Chrome,
                Path::new(HOST),
                &other,
                root,
            )
            .unwrap();
            assert!(fs::read_to_string(&chrome).unwrap().contains(&other[0]));

            let removed = uninstall(Scope::System, Browser::Edge, root).unwrap();
            assert_eq!(files(&removed), [written[1].clone()]);
            assert!(chrome.exists() && written[2].exists());
            assert_eq!(
                files(&uninstall(Scope::System, Browser::All, root).unwrap()).len(),
                2
            );
            assert!(written.iter().all(|path| !path.exists()));
        }

        #[test]
        fn uninstalling_what_was_never_installed_is_fine() {
            let staging = tempfile::tempdir().unwrap();
            let removed = uninstall(Scope::System, Browser::All, Some(staging.path())).unwrap();
            assert!(removed.is_empty());
        }
    }
}
