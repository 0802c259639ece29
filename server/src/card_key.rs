//! The card master key: every `unlock-cr/1` card's admin key is derived from it, so it is
//! the one secret that can unblock cards. It is read once at start-up, never printed, and
//! used only through [`CardMasterKey::cryptogram`] and [`CardMasterKey::receipt_matches`].

use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use subtle::ConstantTimeEq;
use unlock_protocol::CardSerial;
use unlock_protocol::card_profile::{card_key, cryptogram, receipt};

use crate::config::Config;
use crate::secrets::write_private;

/// Bytes in the master key (AES-128).
pub const MASTER_KEY_BYTES: usize = 16;

/// The card master key. `Debug` shows nothing.
#[derive(Clone)]
pub struct CardMasterKey([u8; MASTER_KEY_BYTES]);

impl fmt::Debug for CardMasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardMasterKey(***)")
    }
}

impl CardMasterKey {
    /// The key the configuration names: `card_master_key`, or the file `card_master_key_file`.
    /// `None` when neither is set; a named key that can't be read is an error, so a typo
    /// never quietly turns card unlocking off.
    pub fn load(config: &Config) -> anyhow::Result<Option<Self>> {
        if let Some(hex_key) = &config.card_master_key {
            return Self::parse(hex_key.expose())
                .context("read card_master_key")
                .map(Some);
        }
        let Some(path) = &config.card_master_key_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the card master key file {}", path.display()))?;
        warn_if_readable_by_others(path);
        Self::parse(&text)
            .with_context(|| format!("read the card master key file {}", path.display()))
            .map(Some)
    }

    /// A key from 32 hex digits (surrounding white space ignored). Errors never echo the text.
    pub fn parse(hex_text: &str) -> anyhow::Result<Self> {
        let bytes = hex::decode(hex_text.trim())
            .map_err(|_| anyhow::anyhow!("the card master key is not hex"))?;
        let bytes: [u8; MASTER_KEY_BYTES] = bytes.try_into().map_err(|_| {
            anyhow::anyhow!("the card master key must be {MASTER_KEY_BYTES} bytes (32 hex digits)")
        })?;
        Ok(Self(bytes))
    }

    /// What the card with `serial` needs to accept an unblock after it gave `challenge`.
    pub fn cryptogram(&self, serial: &CardSerial, challenge: &[u8; 16]) -> [u8; 16] {
        let serial = serial.to_bytes();
        cryptogram(&card_key(&self.0, &serial), challenge, &serial)
    }

    /// Whether `presented` is the receipt the card with `serial` gives once unblocked after
    /// `challenge`, compared in constant time.
    pub fn receipt_matches(
        &self,
        serial: &CardSerial,
        challenge: &[u8; 16],
        presented: &[u8; 16],
    ) -> bool {
        let expected = receipt(&card_key(&self.0, &serial.to_bytes()), challenge);
        expected.ct_eq(presented).into()
    }
}

/// Writes a fresh random key to `path` as 32 hex digits and a newline, readable by its owner
/// only (0600). An existing file is never overwritten: it may be the key cards depend on.
pub fn generate_file(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{} already exists; refusing to overwrite a card master key",
            path.display()
        );
    }
    let mut key = [0u8; MASTER_KEY_BYTES];
    getrandom::fill(&mut key).context("draw a card master key from the OS")?;
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("create the folder {}", parent.display()))?;
    }
    write_private(path, format!("{}\n", hex::encode(key)).as_bytes())
        .with_context(|| format!("write the card master key file {}", path.display()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the card master key file can be read by other users; make it mode 0600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first vector of `shared/test-vectors/unlock-cr-1.json`.
    const MASTER: &str = "35a47d45d75853e026695fffa198b79d";
    const SERIAL: &str = "2d6bddb8ad096c2d";
    const CHALLENGE: &str = "e2f9c4a79e98c221a0561065e0626dfa";
    const CRYPTOGRAM: &str = "d206290d1935d00cc7a1d6d9754a930f";
    const RECEIPT: &str = "05c81625313a68973efa8058c4eace12";

    fn block(hex_text: &str) -> [u8; 16] {
        hex::decode(hex_text).unwrap().try_into().unwrap()
    }

    #[test]
    fn computes_the_vector_cryptogram_and_checks_its_receipt() {
        let key = CardMasterKey::parse(&format!("  {}\n", MASTER.to_uppercase())).unwrap();
        let serial = CardSerial::parse(SERIAL).unwrap();
        let challenge = block(CHALLENGE);
        assert_eq!(hex::encode(key.cryptogram(&serial, &challenge)), CRYPTOGRAM);
        assert!(key.receipt_matches(&serial, &challenge, &block(RECEIPT)));
        let mut wrong = block(RECEIPT);
        wrong[15] ^= 1;
        assert!(!key.receipt_matches(&serial, &challenge, &wrong));
        let other = CardSerial::parse("ac4d0ed99f033e05").unwrap();
        assert!(!key.receipt_matches(&other, &challenge, &block(RECEIPT)));
    }

    #[test]
    fn refuses_bad_keys_without_echoing_them() {
        for bad in ["35a47d45", "zz", &format!("{MASTER}00")] {
            let error = format!("{:#}", CardMasterKey::parse(bad).unwrap_err());
            assert!(!error.contains(bad), "{error}");
        }
        let key = CardMasterKey::parse(MASTER).unwrap();
        assert_eq!(format!("{key:?}"), "CardMasterKey(***)");
    }

    #[test]
    fn generated_files_are_private_fresh_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/card-master.key");
        generate_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 33);
        assert!(text.ends_with('\n'));
        CardMasterKey::parse(&text).unwrap();
        assert!(generate_file(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
