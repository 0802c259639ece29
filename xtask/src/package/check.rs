//! The packages' tests, a step of `cargo xtask test`: the `.deb` installed with dpkg into a
//! scratch root (files, manifests, policy, conffiles, the installed bridge answering `hello`,
//! then removal and purge); the `.msi` read back with msitools (tables, registry rows, the
//! files it carries); the macOS archive's listing; and, under Wine, the Windows bridge's
//! `install --user`, the key read back with `reg query`, a `hello` over stdio, and the
//! `.msi` installed and removed by Wine's msiexec.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use unlock_bridge::config::HOST_NAME;
use unlock_bridge::install::packaging::{self as layout, UnixOs};
use unlock_e2e::bridge::BridgeProcess;

use super::{Packages, fresh_dir, out_dir};
use crate::cmd;

/// Wine's 64-bit loader and its registry tool, from Debian's `wine64` and `wine`.
pub const WINE_PACKAGES: [&str; 2] = ["wine64", "wine"];
const WINE64: &str = "/usr/lib/wine/wine64";
const WINESERVER: &str = "/usr/lib/wine/wineserver64";
/// Rust's standard library (1.78 and later) takes random numbers from `ProcessPrng` in
/// `bcryptprimitives.dll`, which every supported Windows has but Debian's Wine 8.0 lacks (it
/// came in Wine 9), so no Rust program starts under it. The checks put this stand-in in the
/// private prefix's system32: the same call, answered by Wine's `RtlGenRandom`.
const PROCESS_PRNG_SHIM: &str = r#"#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
"#;

/// Runs every check; the first failure stops them.
pub fn run(packages: &Packages) -> anyhow::Result<()> {
    let scratch = out_dir().join("check");
    fresh_dir(&scratch)?;
    deb(packages, &scratch.join("deb")).context("the .deb")?;
    println!("    .deb: installed into a scratch root, checked, removed and purged");
    msi(packages, &scratch.join("msi")).context("the .msi")?;
    println!("    .msi: tables, registry rows and files checked");
    macos(packages).context("the macOS archive")?;
    println!("    macOS archive: layout checked");
    wine(packages, &scratch.join("wine")).context("the Windows bridge under Wine")?;
    println!(
        "    Wine: install --user and reg query, hello over stdio, msiexec install and remove"
    );
    // The Wine prefix alone is 700 MB; a failed run keeps everything to look at.
    fs::remove_dir_all(&scratch)?;
    Ok(())
}

fn caller(packages: &Packages) -> String {
    format!("chrome-extension://{}/", packages.force.extension_id())
}

/// The host manifest at `file` names `path` and allows only the packaged extension.
fn check_manifest(file: &Path, path: &str, packages: &Packages) -> anyhow::Result<()> {
    let manifest: Value = serde_json::from_str(
        &fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?,
    )?;
    let expected = json!({
        "name": HOST_NAME,
        "path": path,
        "type": "stdio",
        "allowed_origins": [caller(packages)],
    });
    for (key, value) in expected.as_object().expect("an object") {
        ensure!(
            &manifest[key] == value,
            "{}: {key} is {}, expected {value}",
            file.display(),
            manifest[key]
        );
    }
    Ok(())
}

/// The bridge answers `hello` for an allowed page and refuses another, as a browser drives
/// it; `program` is the installed bridge or a script starting it.
fn check_hello(program: &Path, packages: &Packages) -> anyhow::Result<()> {
    let allowed = packages
        .allowed_origins
        .first()
        .context("the test packages list an allowed origin")?;
    let no_pcscd = program.with_file_name("no-pcscd-here");
    let mut bridge = BridgeProcess::spawn(program, &caller(packages), &no_pcscd);
    let hello = bridge.request(json!({
        "type": "hello", "protocol_major": 1, "protocol_minor": 0, "origin": allowed,
    }));
    ensure!(
        hello["ok"]["type"] == "hello" && hello["ok"]["host_version"] == layout::VERSION,
        "hello from {}: {hello}; log: {}",
        program.display(),
        bridge.log_text()
    );
    let refused = bridge.request(json!({
        "type": "hello", "protocol_major": 1, "protocol_minor": 0,
        "origin": "https://elsewhere.example",
    }));
    ensure!(
        refused["err"]["code"] == "origin_refused",
        "an unlisted page got {refused}"
    );
    let status = bridge.close();
    ensure!(status.success(), "the bridge exited with {status}");
    Ok(())
}

fn deb(packages: &Packages, scratch: &Path) -> anyhow::Result<()> {
    let fields = cmd::output(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(&packages.deb)
            .args(["Package", "Version", "Depends", "Recommends"]),
    )?;
    for wanted in [
        "Package: unlock-bridge",
        &format!("Version: {}", layout::VERSION),
        "libpcsclite1",
        "Recommends: pcscd",
    ] {
        ensure!(
            fields.contains(wanted),
            "no {wanted:?} in the control fields:\n{fields}"
        );
    }

    // A real dpkg install, into a root and a package database of its own.
    let root = scratch.join("root");
    let admin = root.join("var/lib/dpkg");
    fs::create_dir_all(admin.join("info"))?;
    fs::create_dir_all(admin.join("updates"))?;
    fs::write(admin.join("status"), "")?;
    let dpkg = |args: &[&str]| {
        let mut command = Command::new("dpkg");
        command
            .arg(format!("--root={}", root.display()))
            .arg(format!("--admindir={}", admin.display()))
            .args(["--force-depends", "--force-not-root", "--log=/dev/null"])
            .args(args);
        command
    };
    cmd::output(&mut dpkg(&["--install", &packages.deb.to_string_lossy()]))?;

    let host = Path::new(layout::LINUX_HOST_PATH);
    let under = |path: &Path| root.join(path.strip_prefix("/").unwrap_or(path));
    let binary = under(host);
    let mode = fs::metadata(&binary)
        .with_context(|| format!("no bridge at {}", host.display()))?
        .permissions()
        .mode();
    ensure!(mode & 0o777 == 0o755, "the bridge's mode is {mode:o}");
    let manifests = layout::system_manifest_files(UnixOs::Linux);
    for file in &manifests {
        check_manifest(&under(file), layout::LINUX_HOST_PATH, packages)?;
    }
    let policies = layout::linux_policy_files();
    for file in &policies {
        let policy: Value = serde_json::from_str(&fs::read_to_string(under(file))?)?;
        ensure!(
            policy == json!({"ExtensionInstallForcelist": [packages.force.entry()]}),
            "{}: {policy}",
            file.display()
        );
    }
    let settings = host.with_file_name(layout::config_file_name());
    let conffiles = cmd::output(&mut dpkg(&["--status", "unlock-bridge"]))?;
    for file in manifests.iter().chain(&policies).chain([&settings]) {
        ensure!(
            conffiles.contains(&format!(" {} ", file.display())),
            "{} is not a conffile:\n{conffiles}",
            file.display()
        );
    }

    // The installed bridge, started as the browser starts it.
    check_hello(&binary, packages)?;
    fs::remove_file(binary.with_file_name("bridge.log"))?;

    // Removal keeps the edited settings and policy (conffiles); purge takes everything.
    cmd::output(&mut dpkg(&["--remove", "unlock-bridge"]))?;
    ensure!(!binary.exists(), "the bridge is still there after removal");
    ensure!(under(&settings).exists(), "removal took the settings file");
    cmd::output(&mut dpkg(&["--purge", "unlock-bridge"]))?;
    for file in manifests.iter().chain(&policies).chain([&settings]) {
        ensure!(
            !under(file).exists(),
            "{} survived the purge",
            file.display()
        );
    }
    Ok(())
}

/// `msiinfo export`'s rows of `table`, as columns; the first three lines are its header.
fn msi_rows(msi: &Path, table: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let text = cmd::output(Command::new("msiinfo").arg("export").arg(msi).arg(table))?;
    Ok(text
        .lines()
        .skip(3)
        .map(|line| {
            line.trim_end_matches('\r')
                .split('\t')
                .map(String::from)
                .collect()
        })
        .collect())
}

fn msi(packages: &Packages, scratch: &Path) -> anyhow::Result<()> {
    let msi = &packages.msi;
    let tables = cmd::output(Command::new("msiinfo").arg("tables").arg(msi))?;
    for table in ["File", "Component", "Registry", "Feature", "Upgrade"] {
        ensure!(
            tables.lines().any(|line| line.trim() == table),
            "no {table} table: {tables}"
        );
    }
    let summary = cmd::output(Command::new("msiinfo").arg("suminfo").arg(msi))?;
    ensure!(
        summary.contains("x64;1033"),
        "not an x64 package:\n{summary}"
    );

    // Registry: Registry, Root (2 = HKLM), Key, Name, Value, Component_.
    let rows = msi_rows(msi, "Registry")?;
    let has = |key: &str, name: &str, value: &str, component: &str| {
        rows.iter().any(|row| {
            row.get(1..6)
                == Some(&[
                    "2".to_owned(),
                    key.to_owned(),
                    name.to_owned(),
                    value.to_owned(),
                    component.to_owned(),
                ])
        })
    };
    let manifest = layout::manifest_file_name();
    for key in layout::windows_host_keys() {
        let value = format!("[INSTALLDIR]{manifest}");
        ensure!(
            has(&key, "", &value, "Bridge"),
            "no host row {key}: {rows:?}"
        );
    }
    for key in layout::windows_forcelist_keys() {
        ensure!(
            has(&key, "1", &packages.force.entry(), "ForceInstall"),
            "no force-install row {key}: {rows:?}"
        );
    }
    let expected_rows = layout::windows_host_keys().len() + layout::windows_forcelist_keys().len();
    ensure!(
        rows.len() == expected_rows,
        "unexpected registry rows: {rows:?}"
    );

    // File: File, Component_, FileName (short|long), ...
    let files = msi_rows(msi, "File")?;
    for name in [
        layout::WINDOWS_BINARY,
        &manifest,
        layout::config_file_name(),
    ] {
        ensure!(
            files.iter().any(|row| row
                .get(2)
                .is_some_and(|names| names.rsplit('|').next() == Some(name))),
            "no {name} in the File table: {files:?}"
        );
    }

    let extracted = scratch.join("extracted");
    fresh_dir(&extracted)?;
    let listed = cmd::output(
        Command::new("msiextract")
            .arg("-C")
            .arg(&extracted)
            .arg(msi),
    )?;
    let folder = find_file(&extracted, layout::WINDOWS_BINARY)
        .with_context(|| format!("msiextract gave no {}: {listed}", layout::WINDOWS_BINARY))?
        .parent()
        .expect("a file is in a folder")
        .to_owned();
    ensure!(
        folder.ends_with(layout::WINDOWS_FOLDER),
        "installed into {}",
        folder.display()
    );
    ensure!(
        fs::read(folder.join(layout::WINDOWS_BINARY))? == fs::read(&packages.windows_exe)?,
        "the .msi's bridge is not the one built"
    );
    ensure!(
        fs::read(folder.join(layout::WINDOWS_BINARY))?.starts_with(b"MZ"),
        "the bridge is not a Windows program"
    );
    check_manifest(&folder.join(&manifest), layout::WINDOWS_BINARY, packages)?;
    let settings = fs::read_to_string(folder.join(layout::config_file_name()))?;
    for origin in &packages.allowed_origins {
        ensure!(
            settings.contains(origin),
            "settings without {origin}:\n{settings}"
        );
    }
    Ok(())
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|found| found == name) {
            return Some(path);
        }
    }
    None
}

fn macos(packages: &Packages) -> anyhow::Result<()> {
    let listing = cmd::output(Command::new("tar").arg("-tzf").arg(&packages.macos))?;
    let listed = |path: &str| listing.lines().any(|line| line == path);
    let top = "unlock-bridge-macos";
    let host = Path::new(layout::MACOS_HOST_PATH);
    for file in layout::system_manifest_files(UnixOs::MacOs)
        .into_iter()
        .chain([host.with_file_name(layout::config_file_name())])
    {
        let entry = format!("{top}/root{}", file.display());
        ensure!(listed(&entry), "no {entry} in:\n{listing}");
    }
    for domain in layout::macos_policy_domains() {
        let entry = format!("{top}/policies/{domain}.plist");
        ensure!(listed(&entry), "no {entry} in:\n{listing}");
    }
    ensure!(listed(&format!("{top}/README.txt")), "no README.txt");
    Ok(())
}

/// A private Wine prefix, its server stopped when dropped.
struct Wine {
    prefix: PathBuf,
}

impl Wine {
    fn start(prefix: &Path) -> anyhow::Result<Self> {
        fresh_dir(prefix)?;
        let wine = Self {
            prefix: prefix.to_owned(),
        };
        wine.output(&["wineboot", "--init"])?;
        let system32 = wine.prefix.join("drive_c/windows/system32");
        if !system32.join("bcryptprimitives.dll").exists() {
            let source = prefix.with_file_name("process-prng.c");
            fs::write(&source, PROCESS_PRNG_SHIM)?;
            cmd::output(
                Command::new("x86_64-w64-mingw32-gcc")
                    .args(["-shared", "-O2", "-s", "-o"])
                    .arg(system32.join("bcryptprimitives.dll"))
                    .arg(&source)
                    .arg("-ladvapi32"),
            )?;
        }
        Ok(wine)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(WINE64);
        command
            .args(args)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            // No Gecko or Mono to offer, and no display.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
            .stdin(Stdio::null());
        command
    }

    fn output(&self, args: &[&str]) -> anyhow::Result<String> {
        cmd::output(&mut self.command(args))
    }

    /// The default value of `key`, as `reg query` prints it, if the key is there.
    fn registry_default(&self, key: &str) -> anyhow::Result<Option<String>> {
        let output = self.command(&["reg", "query", key, "/ve"]).output()?;
        if !output.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(text
            .lines()
            .find_map(|line| line.split_once("REG_SZ"))
            .map(|(_, value)| value.trim().to_owned()))
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        let _ = Command::new(WINESERVER)
            .arg("--kill")
            .env("WINEPREFIX", &self.prefix)
            .status();
    }
}

fn wine(packages: &Packages, scratch: &Path) -> anyhow::Result<()> {
    fresh_dir(scratch)?;
    let wine = Wine::start(&scratch.join("prefix"))?;

    // The bridge laid out as the .msi does, registered by itself for the current user.
    let folder = scratch.join("bridge");
    fs::create_dir_all(&folder)?;
    let exe = folder.join(layout::WINDOWS_BINARY);
    fs::copy(&packages.windows_exe, &exe)?;
    fs::write(
        folder.join(layout::config_file_name()),
        layout::config_file(
            &packages.allowed_origins,
            &[packages.force.extension_id().to_owned()],
        ),
    )?;
    let registered = wine.output(&[&exe.to_string_lossy(), "install", "--user"])?;
    let windows_manifest =
        format!(r"Z:{}", folder.join(layout::manifest_file_name()).display()).replace('/', r"\");
    for key in layout::windows_host_keys() {
        let full = format!(r"HKEY_CURRENT_USER\{key}");
        ensure!(
            registered.contains(&full),
            "install did not report {full}: {registered}"
        );
        let value = wine.registry_default(&full)?;
        ensure!(
            value.as_deref() == Some(windows_manifest.as_str()),
            "reg query {full} gave {value:?}, expected {windows_manifest}"
        );
    }
    check_manifest(
        &folder.join(layout::manifest_file_name()),
        &format!(r"Z:{}", exe.display()).replace('/', r"\"),
        packages,
    )?;

    // The Windows bridge over stdio, started through Wine as a browser starts it.
    let script = folder.join("unlock-bridge-under-wine");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nexport WINEPREFIX='{}' WINEDEBUG=-all WINEDLLOVERRIDES='mscoree,mshtml='\n\
             unset DISPLAY\nexec '{WINE64}' '{}' \"$@\"\n",
            wine.prefix.display(),
            exe.display()
        ),
    )?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    check_hello(&script, packages)?;

    wine.output(&[&exe.to_string_lossy(), "uninstall", "--user"])?;
    for key in layout::windows_host_keys() {
        let full = format!(r"HKEY_CURRENT_USER\{key}");
        ensure!(
            wine.registry_default(&full)?.is_none(),
            "{full} survived uninstall"
        );
    }

    // The .msi itself, installed and removed by Wine's Windows Installer.
    let msi = packages.msi.to_string_lossy().into_owned();
    wine.output(&["msiexec", "/i", &msi, "/qn"])?;
    let installed = wine
        .prefix
        .join("drive_c/Program Files")
        .join(layout::WINDOWS_FOLDER);
    ensure!(
        installed.join(layout::WINDOWS_BINARY).exists(),
        "msiexec put no bridge in {}",
        installed.display()
    );
    let expected = format!(
        r"C:\Program Files\{}\{}",
        layout::WINDOWS_FOLDER,
        layout::manifest_file_name()
    );
    for key in layout::windows_host_keys() {
        let full = format!(r"HKEY_LOCAL_MACHINE\{key}");
        let value = wine.registry_default(&full)?;
        ensure!(
            value.as_deref() == Some(expected.as_str()),
            "after msiexec, {full} holds {value:?}"
        );
    }
    for key in layout::windows_forcelist_keys() {
        let full = format!(r"HKEY_LOCAL_MACHINE\{key}");
        let listed = wine.output(&["reg", "query", &full, "/v", "1"])?;
        ensure!(
            listed.contains(&packages.force.entry()),
            "after msiexec, {full}: {listed}"
        );
    }
    wine.output(&["msiexec", "/x", &msi, "/qn"])?;
    ensure!(
        !installed.join(layout::WINDOWS_BINARY).exists(),
        "msiexec /x left the bridge"
    );
    for key in layout::windows_host_keys() {
        let full = format!(r"HKEY_LOCAL_MACHINE\{key}");
        if wine.registry_default(&full)?.is_some() {
            bail!("msiexec /x left {full}");
        }
    }
    Ok(())
}
