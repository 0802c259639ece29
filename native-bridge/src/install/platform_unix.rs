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
