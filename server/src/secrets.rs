//! The server secret and what is derived from it: the key for one-time-code hashes, the
//! key for subject names of unknown addresses, and the key that seals queued email.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::config::Config;

type HmacSha256 = Hmac<Sha256>;

pub(crate) const SECRET_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

/// Keys derived from the server secret. `Debug` shows nothing.
#[derive(Clone)]
pub struct Keys {
    code_key: [u8; 32],
    subject_key: [u8; 32],
    /// Signs device cookies: which holders finished a journey in a browser.
    device_key: [u8; 32],
    /// Version 1 of the PUK escrow key in file custody, when no other is on record.
    escrow_key: [u8; 32],
    /// Seals values at rest: queued email, staff authenticator secrets.
    outbox: Aes256Gcm,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(***)")
    }
}

impl Keys {
    /// Keys from the configured secret, or from the data folder's key file (created on first use).
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        let secret = match &config.secret_key {
            Some(secret) => decode_secret(secret.expose()).context("read secret_key")?,
            None => load_or_create_key_file(&config.data_dir.join("secret.key"))?,
        };
        Ok(Self::from_secret(&secret))
    }

    /// The PUK escrow key derived from the secret: the escrow key's version 1 in file custody.
    pub fn escrow_key_v1(&self) -> &[u8; 32] {
        &self.escrow_key
    }

    pub fn from_secret(secret: &[u8; SECRET_BYTES]) -> Self {
        let outbox_key = derive(secret, b"unlock outbox seal v1");
        Self {
            code_key: derive(secret, b"unlock one-time code v1"),
            subject_key: derive(secret, b"unlock subject v1"),
            device_key: derive(secret, b"unlock device cookie v1"),
            escrow_key: derive(secret, b"unlock puk escrow v1"),
            outbox: Aes256Gcm::new(&outbox_key.into()),
        }
    }

    /// The keyed hash stored for a code; binding the journey stops a code working elsewhere.
    pub fn code_mac(&self, journey_id: i64, code: &str) -> Vec<u8> {
        self.code_hmac(journey_id, code)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Compares a typed code with a stored hash in constant time.
    pub fn code_matches(&self, journey_id: i64, code: &str, stored: &[u8]) -> bool {
        self.code_hmac(journey_id, code)
            .verify_slice(stored)
            .is_ok()
    }

    fn code_hmac(&self, journey_id: i64, code: &str) -> HmacSha256 {
        let mut mac = keyed(&self.code_key);
        mac.update(&journey_id.to_be_bytes());
        mac.update(code.as_bytes());
        mac
    }

    /// The keyed hash an RA's unlock code is stored and looked up by (under a label of its
    /// own, so it can never equal a one-time code's).
    pub fn ra_code_mac(&self, code: &str) -> Vec<u8> {
        self.ra_code_hmac(code).finalize().into_bytes().to_vec()
    }

    /// Compares a typed RA unlock code with a stored hash in constant time.
    pub fn ra_code_matches(&self, code: &str, stored: &[u8]) -> bool {
        self.ra_code_hmac(code).verify_slice(stored).is_ok()
    }

    fn ra_code_hmac(&self, code: &str) -> HmacSha256 {
        let mut mac = keyed(&self.code_key);
        mac.update(b"ra unlock code\0");
        mac.update(code.as_bytes());
        mac
    }

    /// A stable pseudonym for an address that is on no profile, so it is throttled and
    /// capped exactly like a holder without its address being stored as a key.
    pub fn email_subject(&self, email: &str) -> String {
        let mut mac = keyed(&self.subject_key);
        mac.update(email.as_bytes());
        format!("email:{}", hex::encode(&mac.finalize().into_bytes()[..16]))
    }

    /// The tag a device cookie carries for a holder who finished a journey in that browser:
    /// a keyed hash of the device's id and the holder's, cut to 12 bytes.
    pub fn device_tag(&self, device: &[u8; 16], holder_id: &str) -> [u8; 12] {
        let mut mac = keyed(&self.device_key);
        mac.update(device);
        mac.update(holder_id.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 12];
        tag.copy_from_slice(&full[..12]);
        tag
    }

    /// A stable pseudonym for a staff username, for counting sign-in failures without
    /// storing what was typed (it may be a password typed into the wrong field).
    pub fn staff_subject(&self, username: &str) -> String {
        let mut mac = keyed(&self.subject_key);
        mac.update(b"staff\0");
        mac.update(username.as_bytes());
        format!("staff:{}", hex::encode(&mac.finalize().into_bytes()[..16]))
    }

    /// Encrypts a message for the outbox table.
    pub fn seal(&self, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.seal_as(b"outbox", plaintext)
    }

    /// Decrypts what [`Keys::seal`] produced.
    pub fn open(&self, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.open_as(b"outbox", sealed)
    }

    /// Encrypts `plaintext` for storage; `purpose` must be given again to open it, so a value
    /// sealed for one column can't be passed off as another's.
    pub fn seal_as(&self, purpose: &[u8], plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).context("draw a nonce")?;
        let payload = Payload {
            msg: plaintext,
            aad: purpose,
        };
        let sealed = self
            .outbox
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| anyhow::anyhow!("seal a value"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Decrypts what [`Keys::seal_as`] produced for the same `purpose`.
    pub fn open_as(&self, purpose: &[u8], sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        if sealed.len() < NONCE_BYTES {
            bail!("sealed value is truncated");
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        self.outbox
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: purpose,
                },
            )
            .map_err(|_| anyhow::anyhow!("open a sealed value: wrong secret key or damaged row"))
    }
}

/// The hash under which a journey cookie's token is stored: a database copy can't be replayed.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A fresh random token for a journey cookie (256 bits, hex).
pub fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).context("draw a journey token")?;
    Ok(hex::encode(bytes))
}

/// A uniformly drawn 6-digit code from the OS CSPRNG.
pub fn new_code() -> anyhow::Result<String> {
    random_digits(6).context("draw a one-time code")
}

/// A one-time unlock code for an RA to read out: [`unlock_protocol::RA_CODE_LENGTH`]
/// characters, each uniformly drawn from [`unlock_protocol::RA_CODE_ALPHABET`] by the OS
/// CSPRNG.
pub fn new_ra_code() -> anyhow::Result<unlock_protocol::RaUnlockCode> {
    let alphabet = unlock_protocol::RA_CODE_ALPHABET;
    // Rejection sampling keeps every character equally likely.
    let limit = u8::try_from(256 / alphabet.len() * alphabet.len()).unwrap_or(u8::MAX);
    let mut code = String::with_capacity(unlock_protocol::RA_CODE_LENGTH);
    while code.len() < unlock_protocol::RA_CODE_LENGTH {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).context("draw an unlock code")?;
        if byte[0] < limit {
            code.push(char::from(alphabet[usize::from(byte[0]) % alphabet.len()]));
        }
    }
    unlock_protocol::RaUnlockCode::parse(&code).context("a drawn unlock code does not parse")
}

/// `count` decimal digits, each uniformly drawn from the OS CSPRNG.
pub fn random_digits(count: usize) -> anyhow::Result<String> {
    // Rejection sampling keeps every digit equally likely.
    let mut digits = String::with_capacity(count);
    while digits.len() < count {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).context("draw random digits")?;
        if byte[0] < 250 {
            digits.push(char::from(b'0' + byte[0] % 10));
        }
    }
    Ok(digits)
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = keyed(secret);
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn decode_secret(hex_text: &str) -> anyhow::Result<[u8; SECRET_BYTES]> {
    let bytes =
        hex::decode(hex_text.trim()).map_err(|_| anyhow::anyhow!("the secret key is not hex"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the secret key must be {SECRET_BYTES} bytes (64 hex digits)"))
}

/// Refuses a file of secrets that users other than its owner can read (or write): whoever
/// can read it holds the secret. On systems without Unix modes it is not checked.
pub fn private_only(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("read the permissions of {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} can be read by users other than its owner, so it is not used: make it \
                 private (chmod 600 {})",
                path.display(),
                path.display()
            );
        }
    }
    Ok(())
}

fn load_or_create_key_file(path: &Path) -> anyhow::Result<[u8; SECRET_BYTES]> {
    if path.exists() {
        private_only(path)?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the secret key file {}", path.display()))?;
        return decode_secret(&text).with_context(|| format!("read {}", path.display()));
    }
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).context("draw a secret key")?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    write_private(path, hex::encode(secret).as_bytes())
        .with_context(|| format!("write the secret key file {}", path.display()))?;
    tracing::warn!(path = %path.display(), "created a new secret key file; set secret_key in production");
    Ok(secret)
}

/// Creates `path` readable and writable by its owner only; fails if it already exists.
#[cfg(unix)]
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(contents)
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_secret(&[7; 32])
    }

    #[test]
    fn code_mac_binds_journey_and_code() {
        let keys = keys();
        let stored = keys.code_mac(1, "123456");
        assert!(keys.code_matches(1, "123456", &stored));
        assert!(!keys.code_matches(2, "123456", &stored));
        assert!(!keys.code_matches(1, "123457", &stored));
        assert!(!Keys::from_secret(&[8; 32]).code_matches(1, "123456", &stored));
    }

    #[test]
    fn seal_round_trips_and_detects_tampering() {
        let keys = keys();
        let mut sealed = keys.seal(b"hello").unwrap();
        assert_eq!(keys.open(&sealed).unwrap(), b"hello");
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(keys.open(&sealed).is_err());
    }

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> =
            (0..50).map(|_| new_code().unwrap()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(codes.len() > 45);
    }

    #[test]
    fn email_subject_is_stable_and_keyed() {
        let keys = keys();
        assert_eq!(keys.email_subject("a@b.org"), keys.email_subject("a@b.org"));
        assert_ne!(
            keys.email_subject("a@b.org"),
            Keys::from_secret(&[9; 32]).email_subject("a@b.org")
        );
        assert!(!keys.email_subject("a@b.org").contains("b.org"));
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let first = load_or_create_key_file(&path).unwrap();
        assert_eq!(load_or_create_key_file(&path).unwrap(), first);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = format!("{:#}", load_or_create_key_file(&path).unwrap_err());
        assert!(error.contains("chmod 600"), "{error}");
    }
}
