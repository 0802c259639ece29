//! `cargo xtask package`: the bridge as an IT team deploys it.
//!
//! - A `.deb` (cargo-deb) with the binary in `/opt/unlock-bridge/`, the host manifest in the
//!   system-wide folder of Chrome, Edge and Chromium, and a managed policy that makes those
//!   browsers force-install the extension.
//! - A Windows `.msi` (wixl) with the bridge linked for `x86_64-pc-windows-gnu` by Debian's
//!   mingw-w64, writing the per-machine registry keys (the host for each browser, and the
//!   force-install policy as a feature that can be left out).
//! - A macOS archive of the same layout, to be completed with a binary built on a Mac.
//!
//! Every path, key and file content comes from `unlock_bridge::install::packaging`, the
//! tables `unlock-bridge install --system` uses, so the packages cannot drift from it.

pub mod check;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use unlock_bridge::config::{Config, DEFAULT_EXTENSION_ID};
use unlock_bridge::install::manifest_json;
use unlock_bridge::install::packaging::{self as layout, ForceInstall, UnixOs};

use crate::cmd;

/// cargo-deb, pinned; a debug build of it takes about 1 CPU-minute.
pub const CARGO_DEB_VERSION: &str = "3.8.0";
pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";
/// Debian packages the build needs: the Windows linker (and its `libwinscard.a`), the MSI
/// builder and reader, and dpkg-shlibdeps for the `.deb`'s dependencies.
pub const PACKAGES: [&str; 4] = ["gcc-mingw-w64-x86-64", "wixl", "msitools", "dpkg-dev"];
/// The installer's identity across versions: a newer `.msi` replaces an older one.
const UPGRADE_CODE: &str = "6F1B0D3C-4E7A-4C55-9A37-2B8E51C0D6A4";
/// Component ids must stay fixed across versions for Windows Installer's reference counting.
const COMPONENT_BRIDGE: &str = "0E8F2A51-6C1D-4B8E-A0C7-53D9E4B1F702";
const COMPONENT_SETTINGS: &str = "A4C3E9D8-7B21-4F6A-8E05-C1D2B3A49F60";
const COMPONENT_FORCE_INSTALL: &str = "5D2E7F10-9A3B-4C8D-B6E1-F0A2C4D6E813";

/// What to build the packages for.
#[derive(Debug, Clone, clap::Args)]
pub struct PackageArgs {
    /// The extension the browsers force-install; also the one allowed to start the bridge.
    /// The default is the development id of native-bridge/extension/, whose private key is
    /// not published: an organisation passes the id of its own signed build.
    #[arg(long, default_value = DEFAULT_EXTENSION_ID)]
    pub extension_id: String,
    /// Where the browsers fetch the extension and its updates: the organisation's update
    /// manifest URL, or a store's.
    #[arg(long, default_value = layout::WEB_STORE_UPDATE_URL)]
    pub update_url: String,
    /// A page allowed to use the card reader, put in the shipped settings file (repeat for
    /// several). Without any, the bridge refuses every page until the file is edited.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Then test them as `cargo xtask test` does: the .deb installed into a scratch root,
    /// the .msi read back, the Windows bridge and the .msi run under Wine (needs
    /// `--allowed-origin`, which the hello exchange uses).
    #[arg(long)]
    pub check: bool,
}

/// The files made, under `target/package/`.
#[derive(Debug)]
pub struct Packages {
    pub deb: PathBuf,
    pub msi: PathBuf,
    pub macos: PathBuf,
    /// The Windows binary inside the `.msi`.
    pub windows_exe: PathBuf,
    pub force: ForceInstall,
    pub allowed_origins: Vec<String>,
}

/// Builds the three packages and says where they are.
pub fn run(args: &PackageArgs) -> anyhow::Result<()> {
    crate::test::ensure_debian_packages(&PACKAGES)?;
    crate::test::ensure_rust_target(WINDOWS_TARGET)?;
    if args.check {
        crate::test::ensure_debian_packages(&check::WINE_PACKAGES)?;
    }
    let packages = build(args)?;
    if args.check {
        check::run(&packages)?;
    }
    println!("==> packages in {}", out_dir().display());
    for file in [&packages.deb, &packages.msi, &packages.macos] {
        println!("    {}", file.display());
    }
    Ok(())
}

/// Where everything goes; cargo-deb's asset list in native-bridge/Cargo.toml names the
/// staging folder relative to the workspace, so this is not moved by `CARGO_TARGET_DIR`.
pub fn out_dir() -> PathBuf {
    cmd::root().join("target").join("package")
}

/// Builds the `.deb`, the `.msi` and the macOS archive.
pub fn build(args: &PackageArgs) -> anyhow::Result<Packages> {
    let force = ForceInstall::new(&args.extension_id, &args.update_url)?;
    let ids = vec![force.extension_id().to_owned()];
    let config = layout::config_file(&args.allowed_origins, &ids);
    check_config(&config)?;
    let out = out_dir();
    fs::create_dir_all(&out)?;

    let deb = build_deb(&out, &force, &ids, &config)?;
    let (msi, windows_exe) = build_msi(&out, &force, &ids, &config)?;
    let macos = build_macos(&out, &force, &ids, &config)?;
    Ok(Packages {
        deb,
        msi,
        macos,
        windows_exe,
        force,
        allowed_origins: args.allowed_origins.clone(),
    })
}

/// Refuses settings the bridge itself would refuse, by reading them as it does.
fn check_config(config: &str) -> anyhow::Result<()> {
    let dir = out_dir().join("config-check");
    fresh_dir(&dir)?;
    fs::write(dir.join(layout::config_file_name()), config)?;
    Config::load_beside(&dir.join("unlock-bridge")).context("the settings to ship")?;
    fs::remove_dir_all(&dir)?;
    Ok(())
}

fn build_deb(
    out: &Path,
    force: &ForceInstall,
    ids: &[String],
    config: &str,
) -> anyhow::Result<PathBuf> {
    cmd::ensure_cargo_tool("cargo-deb", "cargo-deb", CARGO_DEB_VERSION, true)?;
    let root = out.join("deb-root");
    fresh_dir(&root)?;
    let host = Path::new(layout::LINUX_HOST_PATH);
    let manifest = manifest_json(host, ids);
    for file in layout::system_manifest_files(UnixOs::Linux) {
        write_under(&root, &file, &manifest)?;
    }
    for file in layout::linux_policy_files() {
        write_under(&root, &file, &force.linux_policy_json())?;
    }
    write_under(
        &root,
        &host.with_file_name(layout::config_file_name()),
        config,
    )?;
    let debs = out.join("deb");
    fresh_dir(&debs)?;
    cmd::run(cmd::cargo().args([
        "deb",
        "-p",
        "unlock-bridge",
        "--locked",
        "--output",
        &debs.to_string_lossy(),
    ]))?;
    single_file(&debs, "deb")
}

fn build_msi(
    out: &Path,
    force: &ForceInstall,
    ids: &[String],
    config: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    cmd::run(cmd::cargo().args([
        "build",
        "-p",
        "unlock-bridge",
        "--bin",
        "unlock-bridge",
        "--release",
        "--target",
        WINDOWS_TARGET,
        "--locked",
    ]))?;
    let exe = cmd::target_dir()
        .join(WINDOWS_TARGET)
        .join("release")
        .join(layout::WINDOWS_BINARY);
    let stage = out.join("msi");
    fresh_dir(&stage)?;
    fs::copy(&exe, stage.join(layout::WINDOWS_BINARY))?;
    // Chrome and Edge read a relative `path` on Windows as relative to the manifest, which
    // sits beside the binary: the manifest holds wherever the administrator installs to.
    fs::write(
        stage.join(layout::manifest_file_name()),
        manifest_json(Path::new(layout::WINDOWS_BINARY), ids),
    )?;
    fs::write(stage.join(layout::config_file_name()), config)?;
    fs::write(stage.join("unlock-bridge.wxs"), wxs(force)?)?;
    let msi = out.join("unlock-bridge-x64.msi");
    cmd::run(
        Command::new("wixl")
            .current_dir(&stage)
            .args(["--arch", "x64", "--output"])
            .arg(&msi)
            .arg("unlock-bridge.wxs"),
    )?;
    Ok((msi, exe))
}

/// The WiX source of the installer: a per-machine install into Program Files, with the
/// host's key for each browser naming the manifest beside the binary, and the force-install
/// policy as its own feature (`ADDLOCAL=Bridge` leaves it out). wixl ignores
/// `NeverOverwrite`, so an upgrade replaces the settings file: origins an administrator sets
/// by policy (`AllowedOrigins` under `HKLM\SOFTWARE\Policies\SmartcardUnlock\Bridge`) stay.
fn wxs(force: &ForceInstall) -> anyhow::Result<String> {
    let version = layout::VERSION;
    let manifest = layout::manifest_file_name();
    let mut host_keys = String::new();
    for key in layout::windows_host_keys() {
        writeln!(
            host_keys,
            r#"            <RegistryValue Root="HKLM" Key="{}" Type="string" Value="[INSTALLDIR]{}"/>"#,
            xml(&key),
            xml(&manifest)
        )?;
    }
    let mut forcelist = String::new();
    for key in layout::windows_forcelist_keys() {
        writeln!(
            forcelist,
            r#"          <RegistryValue Root="HKLM" Key="{}" Name="1" Type="string" Value="{}"/>"#,
            xml(&key),
            xml(&force.entry())
        )?;
    }
    Ok(format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<!-- Generated by `cargo xtask package` from unlock_bridge::install::packaging. -->
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="Smartcard unlock bridge" Language="1033" Version="{version}"
           Manufacturer="Smartcard unlock service" UpgradeCode="{UPGRADE_CODE}">
    <Package InstallerVersion="500" Compressed="yes" InstallScope="perMachine"
             Description="Lets the smartcard unlock page reach the card reader (Chrome, Edge, Chromium)"/>
    <MajorUpgrade DowngradeErrorMessage="A newer version of the smartcard unlock bridge is already installed."/>
    <Media Id="1" Cabinet="bridge.cab" EmbedCab="yes"/>
    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="ProgramFiles64Folder">
        <Directory Id="INSTALLDIR" Name="{folder}">
          <Component Id="Bridge" Guid="{COMPONENT_BRIDGE}" Win64="yes">
            <File Id="BridgeExe" Name="{binary}" Source="{binary}" KeyPath="yes"/>
            <File Id="HostManifest" Name="{manifest}" Source="{manifest}"/>
{host_keys}          </Component>
          <Component Id="Settings" Guid="{COMPONENT_SETTINGS}" Win64="yes">
            <File Id="Settings" Name="{settings}" Source="{settings}" KeyPath="yes"/>
          </Component>
        </Directory>
      </Directory>
      <Component Id="ForceInstall" Guid="{COMPONENT_FORCE_INSTALL}" Win64="yes">
{forcelist}      </Component>
    </Directory>
    <Feature Id="Bridge" Title="Smartcard unlock bridge" Level="1">
      <ComponentRef Id="Bridge"/>
      <ComponentRef Id="Settings"/>
    </Feature>
    <Feature Id="ForceInstallExtension" Title="Force-install the browser extension" Level="1">
      <ComponentRef Id="ForceInstall"/>
    </Feature>
  </Product>
</Wix>
"#,
        folder = xml(layout::WINDOWS_FOLDER),
        binary = xml(layout::WINDOWS_BINARY),
        manifest = xml(&manifest),
        settings = xml(layout::config_file_name()),
    ))
}

fn build_macos(
    out: &Path,
    force: &ForceInstall,
    ids: &[String],
    config: &str,
) -> anyhow::Result<PathBuf> {
    let name = "unlock-bridge-macos";
    let stage = out.join("macos");
    fresh_dir(&stage)?;
    let top = stage.join(name);
    let root = top.join("root");
    let host = Path::new(layout::MACOS_HOST_PATH);
    let manifest = manifest_json(host, ids);
    for file in layout::system_manifest_files(UnixOs::MacOs) {
        write_under(&root, &file, &manifest)?;
    }
    write_under(
        &root,
        &host.with_file_name(layout::config_file_name()),
        config,
    )?;
    for domain in layout::macos_policy_domains() {
        let plist = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>ExtensionInstallForcelist</key>
  <array>
    <string>{}</string>
  </array>
</dict>
</plist>
"#,
            xml(&force.entry())
        );
        fs::create_dir_all(top.join("policies"))?;
        fs::write(top.join("policies").join(format!("{domain}.plist")), plist)?;
    }
    fs::write(top.join("README.txt"), macos_readme())?;
    let archive = out.join(format!("{name}.tar.gz"));
    cmd::run(
        Command::new("tar")
            .current_dir(&stage)
            .args(["--owner=0", "--group=0", "--sort=name", "-czf"])
            .arg(&archive)
            .arg(name),
    )?;
    Ok(archive)
}

fn macos_readme() -> String {
    let host = layout::MACOS_HOST_PATH;
    let manifests = layout::system_manifest_files(UnixOs::MacOs)
        .iter()
        .map(|file| format!("  {}", file.display()))
        .collect::<Vec<_>>()
        .join("\n");
    let domains = layout::macos_policy_domains().join(", ");
    let settings = layout::config_file_name();
    let version = layout::VERSION;
    format!(
        "Smartcard unlock bridge for macOS: the system-wide layout\n\
         \n\
         root/ holds every file as it goes on the Mac, from /:\n\
         \n\
         - The host manifest for Chrome, Edge and Chromium, naming the bridge at\n  {host}:\n\
         {manifests}\n\
         - The settings file {settings} beside the bridge (list the service's page origin\n  in allowed_origins).\n\
         \n\
         The bridge itself is not in this archive: it must be built on a Mac (Linux has no\n\
         Apple linker), signed with the organisation's Developer ID and notarised:\n\
         \n\
         \x20 cargo build --release -p unlock-bridge --target aarch64-apple-darwin\n\
         \x20 cargo build --release -p unlock-bridge --target x86_64-apple-darwin\n\
         \x20 lipo -create -output unlock-bridge target/*-apple-darwin/release/unlock-bridge\n\
         \x20 codesign --timestamp --options runtime --sign \"Developer ID Application: …\" unlock-bridge\n\
         \n\
         Put it at root{host} (mode 755), then either\n\
         \x20 sudo ditto root /\n\
         or build an installer package that a device-management tool deploys:\n\
         \x20 pkgbuild --root root --identifier uk.nhs.smartcard-unlock.bridge --version {version} unlock-bridge.pkg\n\
         \n\
         The bridge can also place the manifests itself: `unlock-bridge install --system`.\n\
         \n\
         Force-installing the extension: policies/ holds one property list per browser\n\
         preference domain ({domains}) with ExtensionInstallForcelist. Upload them to the\n\
         device-management tool as custom settings for those domains (a configuration profile);\n\
         macOS browsers take this policy only from a profile, not from a file copied by hand.\n"
    )
}

/// Writes `contents` at the absolute `path` re-rooted under `root`, readable by all.
fn write_under(root: &Path, path: &Path, contents: &str) -> anyhow::Result<()> {
    let target = root.join(path.strip_prefix("/").unwrap_or(path));
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&target, contents).with_context(|| format!("write {}", target.display()))
}

fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))
}

/// The one file with `extension` in `dir`.
fn single_file(dir: &Path, extension: &str) -> anyhow::Result<PathBuf> {
    let found: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|found| found == extension))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one .{extension} in {}, found {found:?}",
            dir.display()
        ),
    }
}

/// Escapes text for an XML attribute or element.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
