use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use winreg::RegKey;
use winreg::enums::{HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE};

use super::windows_layout::{manifest_path, registry_key};
use super::{
    Browser, InstallError, Location, Product, Registration, Scope, io_error, remove_manifest,
    write_manifest,
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
        let named = registered_file(scope, &key).map_err(io_error("read", place.clone(), scope))?;
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

pub fn registration(scope: Scope, product: Product) -> Result<Registration, InstallError> {
    let key = registry_key(product);
    let place = Location::RegistryKey {
        scope,
        key: key.clone(),
    };
    let manifest = registered_file(scope, &key).map_err(io_error("read", place.clone(), scope))?;
    Ok(Registration { place, manifest })
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
