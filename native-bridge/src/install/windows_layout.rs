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
