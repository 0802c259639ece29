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
        io_error("write", place.clone(), scope)(io::ErrorKind::PermissionDenied.into()).to_string()
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

        let written =
            files(&install(Scope::System, Browser::All, Path::new(HOST), &ids(), root).unwrap());

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
