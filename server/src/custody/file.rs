//! File custody: keys as hex digits in files readable by their owner only.

use std::path::Path;

use anyhow::{Context, bail};
use zeroize::Zeroizing;

use super::MASTER_KEY_BYTES;
use crate::config::Config;
use crate::secrets::{private_only, write_private};

/// The configured card master key, version 1: `card_master_key`, or the file
/// `card_master_key_file`. `None` when neither is set.
pub fn configured_master(config: &Config) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
    if let Some(hex_key) = &config.card_master_key {
        return parse_hex_key(hex_key.expose(), MASTER_KEY_BYTES)
            .context("read the card master key (card_master_key)")
            .map(Some);
    }
    let Some(path) = &config.card_master_key_file else {
        return Ok(None);
    };
    read_key(path, MASTER_KEY_BYTES)
        .with_context(|| format!("read the card master key file {}", path.display()))
        .map(Some)
}

/// The key in the file `path`, `len` bytes as hex digits.
pub fn read_key(path: &Path, len: usize) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("read the key file {}", path.display()))?,
    );
    private_only(path)?;
    parse_hex_key(&text, len).with_context(|| format!("read the key file {}", path.display()))
}

/// A key of `len` bytes from hex digits (surrounding white space ignored). Errors never
/// echo the text.
pub fn parse_hex_key(hex_text: &str, len: usize) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let bytes = Zeroizing::new(
        hex::decode(hex_text.trim()).map_err(|_| anyhow::anyhow!("the key is not hex"))?,
    );
    if bytes.len() != len {
        bail!("the key must be {len} bytes ({} hex digits)", len * 2);
    }
    Ok(bytes)
}

/// Writes a fresh random key of `len` bytes to `path` as hex digits and a newline, readable
/// by its owner only (0600). An existing file is never overwritten: it may be the key cards
/// depend on.
pub fn generate_file(path: &Path, len: usize) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{} already exists; refusing to overwrite a key",
            path.display()
        );
    }
    let mut key = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut key).context("draw a key from the OS")?;
    write_key(path, &key)
}

/// Writes `key` to the new file `path` as hex digits, readable by its owner only.
pub fn write_key(path: &Path, key: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("create the folder {}", parent.display()))?;
    }
    let text = Zeroizing::new(format!("{}\n", hex::encode(key)));
    write_private(path, text.as_bytes())
        .with_context(|| format!("write the key file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for bad in ["not hex at all", "35a47d45d75853e0", ""] {
            let error = format!("{:#}", parse_hex_key(bad, MASTER_KEY_BYTES).unwrap_err());
            assert!(bad.is_empty() || !error.contains(bad), "{error}");
        }
        let key = parse_hex_key("  35A47D45D75853E026695FFFA198B79D\n", 16).unwrap();
        assert_eq!(hex::encode(&*key), "35a47d45d75853e026695fffa198b79d");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        std::fs::write(&path, "35a47d45d75853e026695fffa198b79d\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = format!("{:#}", read_key(&path, 16).unwrap_err());
        assert!(error.contains("chmod 600"), "{error}");
        assert!(!error.contains("35a47d45"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        read_key(&path, 16).unwrap();
    }

    #[test]
    fn a_generated_key_file_is_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/k.key");
        generate_file(&path, 32).unwrap();
        assert_eq!(read_key(&path, 32).unwrap().len(), 32);
        assert!(generate_file(&path, 32).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
