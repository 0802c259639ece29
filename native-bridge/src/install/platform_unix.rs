use std::path::Path;

use super::unix_layout::{Env, Os, manifest_dir, manifest_paths};
use super::{
    Browser, InstallError, Location, Product, Registration, Scope, manifest_file_name,
    remove_manifest, write_manifest,
};

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

pub fn registration(scope: Scope, product: Product) -> Result<Registration, InstallError> {
    registration_with(&Env::from_process(), scope, product)
}

pub(super) fn registration_with(
    env: &Env,
    scope: Scope,
    product: Product,
) -> Result<Registration, InstallError> {
    let path = manifest_dir(Os::CURRENT, scope, product, env)?.join(manifest_file_name());
    Ok(Registration {
        place: Location::File(path.clone()),
        manifest: Some(path),
    })
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
