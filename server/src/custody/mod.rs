//! Key custody: where the card master key (unlock-cr/1) and the PUK escrow key (piv/1) are
//! kept, and the only code that computes with them.
//!
//! A key has versions (`key_versions`); a card records the version it was issued under, and
//! new cards get the newest. Each version is kept in one of two custodies:
//!
//! - **file**: hex digits in a file the server reads (version 1 may instead be the configured
//!   `card_master_key`, and the escrow key's version 1 is derived from the server secret), for
//!   development and small sites;
//! - **pkcs11**: a non-extractable, sensitive AES key on a PKCS#11 token (an HSM), which
//!   computes with it: the per-card key is an AES-CMAC the token makes with the master key
//!   (SP 800-108 counter mode, one block), and escrowed PUKs are sealed and opened with
//!   AES-GCM on the token. Key bytes never reach this process.
//!
//! Either way a sealed PUK is `iv (12) ‖ ciphertext ‖ tag (16)` with `"puk:" ‖ card id` as
//! associated data, so a file key imported onto a token opens what it sealed, and a sealed
//! PUK copied to another card's row does not open. A per-card key in memory is zeroized when
//! dropped.

mod file;
mod token;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use anyhow::Context;
use subtle::ConstantTimeEq;
use unlock_protocol::card_profile::{self, cryptogram, receipt};
use unlock_protocol::piv::Puk;
use unlock_protocol::{CardId, CardSerial};
use zeroize::Zeroizing;

pub use file::{configured_master, generate_file, parse_hex_key, read_key};
pub use token::{Pkcs11Settings, Token, uses as token_uses};

use crate::config::Config;
use crate::db::Db;
use crate::db::key_versions::{self, KeyVersionRow};
use crate::db::states::{CustodyKind, KeyPurpose};
use crate::secrets::Keys;

/// A version of a key; cards record the one they were issued under.
pub type KeyVersion = i64;

/// Bytes in the card master key (AES-128, as the unlock-cr/1 profile fixes).
pub const MASTER_KEY_BYTES: usize = 16;
/// Bytes in the PUK escrow key (AES-256).
pub const ESCROW_KEY_BYTES: usize = 32;
/// AES-GCM's nonce and tag, around a sealed PUK.
const IV_BYTES: usize = 12;
const TAG_BITS: u64 = 128;

/// The longest a token may take to answer before the card step gives up on it.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    /// The key is not configured here, or its token does not answer: the card steps answer
    /// 503 and the holder is asked to try again later. Nothing is lost; the next request
    /// tries the token again.
    #[error("the key is not available: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else (a damaged sealed value): a fault.
    #[error(transparent)]
    Failed(anyhow::Error),
}

impl CustodyError {
    fn failed(error: impl Into<anyhow::Error>) -> Self {
        Self::Failed(error.into())
    }
}

/// What a key's name says of its version, for file names and token labels:
/// `unlock-card-master-v2`, `unlock-puk-escrow-v1`.
pub fn label(purpose: KeyPurpose, version: KeyVersion) -> String {
    let name = match purpose {
        KeyPurpose::CardMaster => "card-master",
        KeyPurpose::PukEscrow => "puk-escrow",
    };
    format!("unlock-{name}-v{version}")
}

/// Bytes in a key of `purpose`.
pub fn key_bytes(purpose: KeyPurpose) -> usize {
    match purpose {
        KeyPurpose::CardMaster => MASTER_KEY_BYTES,
        KeyPurpose::PukEscrow => ESCROW_KEY_BYTES,
    }
}

/// An unlock-cr/1 card's admin key, derived for one card step; zeroized when dropped.
pub struct CardKey(Zeroizing<[u8; 16]>);

impl std::fmt::Debug for CardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardKey(***)")
    }
}

impl CardKey {
    /// What the card with `serial` needs to accept an unblock after it gave `challenge`.
    pub fn cryptogram(&self, serial: &CardSerial, challenge: &[u8; 16]) -> [u8; 16] {
        cryptogram(&self.0, challenge, &serial.to_bytes())
    }

    /// Whether `presented` is the receipt the card gives once unblocked after `challenge`,
    /// compared in constant time.
    pub fn receipt_matches(&self, challenge: &[u8; 16], presented: &[u8; 16]) -> bool {
        let expected = Zeroizing::new(receipt(&self.0, challenge));
        expected.ct_eq(presented).into()
    }
}

/// Where one key version's key is, once looked up.
#[derive(Clone)]
enum Held {
    /// In this process (file custody): the bytes.
    Bytes(Arc<Zeroizing<Vec<u8>>>),
    /// On the token, under this label.
    Token(String),
}

/// The keys of one server instance.
pub struct Custody {
    db: Db,
    /// File custody: where key files after the configured ones are (`<label>.key`).
    dir: PathBuf,
    /// Version 1 of the card master key when none is on record: the configured key.
    configured_master: Option<Arc<Zeroizing<Vec<u8>>>>,
    /// Version 1 of the PUK escrow key when none is on record: derived from the server secret.
    derived_escrow: Arc<Zeroizing<Vec<u8>>>,
    token: Option<Arc<Token>>,
    /// Versions looked up so far (versions never change where they are kept except by
    /// `keys import`, after which instances are restarted, as the operations guide says).
    held: RwLock<HashMap<(KeyPurpose, KeyVersion), Held>>,
}

impl std::fmt::Debug for Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custody")
            .field("dir", &self.dir)
            .field("configured_master", &self.configured_master.is_some())
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Custody {
    /// The custody the configuration describes. A named key file that can't be read is an
    /// error, so a typo never quietly turns card unlocking off; a token is only opened when
    /// first used, so a token that is down at start-up does not stop the server.
    pub fn load(config: &Config, keys: &Keys, db: Db) -> anyhow::Result<Self> {
        let configured_master = file::configured_master(config)?.map(Arc::new);
        let token = Pkcs11Settings::from_config(config)?.map(|s| Arc::new(Token::new(s)));
        Ok(Self {
            db,
            dir: config.keys.dir(config),
            configured_master,
            derived_escrow: Arc::new(Zeroizing::new(keys.escrow_key_v1().to_vec())),
            token,
            held: RwLock::new(HashMap::new()),
        })
    }

    /// The token, if one is configured.
    pub fn token(&self) -> Option<&Arc<Token>> {
        self.token.as_ref()
    }

    /// Whether unlock-cr/1 cards can be unlocked here at all: a card master key is
    /// configured, or a token that may hold one.
    pub fn has_card_master(&self) -> bool {
        self.configured_master.is_some() || self.token.is_some()
    }

    /// The admin key of the unlock-cr/1 card `serial`, issued under `version`.
    pub async fn card_key(
        &self,
        version: KeyVersion,
        serial: &CardSerial,
    ) -> Result<CardKey, CustodyError> {
        let input = card_profile::card_key_input(&serial.to_bytes());
        let bytes = match self.held(KeyPurpose::CardMaster, version).await? {
            Held::Bytes(master) => {
                let master: &[u8; MASTER_KEY_BYTES] =
                    master.as_slice().try_into().map_err(|_| {
                        CustodyError::failed(anyhow::anyhow!(
                            "the card master key has the wrong length"
                        ))
                    })?;
                Zeroizing::new(card_profile::card_key(master, &serial.to_bytes()))
            }
            Held::Token(label) => {
                let token = self.token_or_unavailable()?;
                let mac = on_token(token, move |token| token.cmac(&label, &input)).await?;
                let bytes: [u8; 16] = mac.as_slice().try_into().map_err(|_| {
                    CustodyError::failed(anyhow::anyhow!("the token's CMAC has the wrong length"))
                })?;
                Zeroizing::new(bytes)
            }
        };
        Ok(CardKey(bytes))
    }

    /// Seals `puk` for the card `card` with version `version` of the escrow key.
    pub async fn seal_puk(
        &self,
        version: KeyVersion,
        card: &CardId,
        puk: &Puk,
    ) -> Result<Vec<u8>, CustodyError> {
        match self.held(KeyPurpose::PukEscrow, version).await? {
            Held::Bytes(key) => seal_in_memory(&key, card, puk).map_err(CustodyError::Failed),
            Held::Token(label) => {
                let token = self.token_or_unavailable()?;
                let iv = new_iv().map_err(CustodyError::Failed)?;
                let aad = puk_aad(card);
                let plain = Zeroizing::new(puk.as_bytes().to_vec());
                let sealed = on_token(token, move |token| {
                    token.gcm_encrypt(&label, iv, &aad, &plain)
                })
                .await?;
                Ok([iv.as_slice(), &sealed].concat())
            }
        }
    }

    /// Opens a PUK sealed for `card` with version `version` of the escrow key.
    pub async fn open_puk(
        &self,
        version: KeyVersion,
        card: &CardId,
        sealed: &[u8],
    ) -> Result<Puk, CustodyError> {
        match self.held(KeyPurpose::PukEscrow, version).await? {
            Held::Bytes(key) => open_in_memory(&key, card, sealed).map_err(CustodyError::Failed),
            Held::Token(label) => {
                let token = self.token_or_unavailable()?;
                let (iv, body) = split_sealed(sealed).map_err(CustodyError::Failed)?;
                let (aad, body) = (puk_aad(card), body.to_vec());
                let plain = Zeroizing::new(
                    on_token(token, move |token| {
                        token.gcm_decrypt(&label, iv, &aad, &body)
                    })
                    .await?,
                );
                parse_puk(&plain).map_err(CustodyError::Failed)
            }
        }
    }

    fn token_or_unavailable(&self) -> Result<Arc<Token>, CustodyError> {
        self.token.clone().ok_or_else(|| {
            CustodyError::Unavailable(anyhow::anyhow!(
                "the key is on a PKCS#11 token and none is configured (keys.pkcs11_module)"
            ))
        })
    }

    /// Where version `version` of `purpose` is, from what was looked up before or the
    /// database.
    async fn held(&self, purpose: KeyPurpose, version: KeyVersion) -> Result<Held, CustodyError> {
        if let Some(held) = self.cached(purpose, version) {
            return Ok(held);
        }
        let rows = {
            let mut conn = self.db.reader().await.map_err(CustodyError::failed)?;
            key_versions::all(&mut conn)
                .await
                .map_err(CustodyError::failed)?
        };
        let row = rows
            .into_iter()
            .find(|row| row.purpose == purpose && row.version == version);
        let held = self.locate(purpose, version, row.as_ref())?;
        if let Ok(mut held_map) = self.held.write() {
            held_map.insert((purpose, version), held.clone());
        }
        Ok(held)
    }

    fn cached(&self, purpose: KeyPurpose, version: KeyVersion) -> Option<Held> {
        self.held.read().ok()?.get(&(purpose, version)).cloned()
    }

    fn locate(
        &self,
        purpose: KeyPurpose,
        version: KeyVersion,
        row: Option<&KeyVersionRow>,
    ) -> Result<Held, CustodyError> {
        match (row, purpose) {
            (Some(row), _) if row.custody == CustodyKind::Pkcs11 => {
                Ok(Held::Token(row.label.clone()))
            }
            (Some(row), _) => {
                let path = self.dir.join(format!("{}.key", row.label));
                let bytes =
                    file::read_key(&path, key_bytes(purpose)).map_err(CustodyError::Unavailable)?;
                Ok(Held::Bytes(Arc::new(bytes)))
            }
            (None, KeyPurpose::CardMaster) if version == 1 => self
                .configured_master
                .clone()
                .map(Held::Bytes)
                .ok_or_else(|| {
                    CustodyError::Unavailable(anyhow::anyhow!(
                        "no card master key is configured (card_master_key_file or card_master_key)"
                    ))
                }),
            (None, KeyPurpose::PukEscrow) if version == 1 => {
                Ok(Held::Bytes(self.derived_escrow.clone()))
            }
            (None, _) => Err(CustodyError::Unavailable(anyhow::anyhow!(
                "version {version} of the {purpose} key is not on record"
            ))),
        }
    }

    /// What `/readyz` says of the token: `None` without one.
    pub async fn token_health(&self) -> Option<Result<(), String>> {
        let token = self.token.clone()?;
        Some(
            on_token(token, |token| token.check())
                .await
                .map_err(|error| format!("{error:#}")),
        )
    }
}

/// Seals `puk` for the card `card` with an escrow key held in memory (file custody).
pub fn seal_in_memory(key: &[u8], card: &CardId, puk: &Puk) -> anyhow::Result<Vec<u8>> {
    let iv = new_iv()?;
    let sealed = aes_gcm(key)?
        .encrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: puk.as_bytes(),
                aad: &puk_aad(card),
            },
        )
        .map_err(|_| anyhow::anyhow!("seal a PUK"))?;
    Ok([iv.as_slice(), &sealed].concat())
}

/// Opens a PUK sealed for `card` with an escrow key held in memory (file custody).
pub fn open_in_memory(key: &[u8], card: &CardId, sealed: &[u8]) -> anyhow::Result<Puk> {
    let (iv, body) = split_sealed(sealed)?;
    let plain = Zeroizing::new(
        aes_gcm(key)?
            .decrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: body,
                    aad: &puk_aad(card),
                },
            )
            .map_err(|_| anyhow::anyhow!("open the escrowed PUK: wrong key or damaged row"))?,
    );
    parse_puk(&plain)
}

/// What a sealed PUK is bound to.
fn puk_aad(card: &CardId) -> Vec<u8> {
    [b"puk:".as_slice(), card.as_str().as_bytes()].concat()
}

fn new_iv() -> anyhow::Result<[u8; IV_BYTES]> {
    let mut iv = [0u8; IV_BYTES];
    getrandom::fill(&mut iv).context("draw an IV")?;
    Ok(iv)
}

fn split_sealed(sealed: &[u8]) -> anyhow::Result<([u8; IV_BYTES], &[u8])> {
    if sealed.len() < IV_BYTES + usize::try_from(TAG_BITS / 8).unwrap_or(16) {
        anyhow::bail!("the escrowed PUK is truncated");
    }
    let (iv, body) = sealed.split_at(IV_BYTES);
    Ok((iv.try_into().context("an IV")?, body))
}

fn parse_puk(plain: &[u8]) -> anyhow::Result<Puk> {
    std::str::from_utf8(plain)
        .ok()
        .and_then(|text| Puk::parse(text).ok())
        .ok_or_else(|| anyhow::anyhow!("the escrowed PUK is damaged"))
}

fn aes_gcm(key: &[u8]) -> anyhow::Result<Aes256Gcm> {
    Aes256Gcm::new_from_slice(key)
        .map_err(|_| anyhow::anyhow!("the PUK escrow key has the wrong length"))
}

/// Runs blocking token work off the async threads, giving up after [`TOKEN_TIMEOUT`].
async fn on_token<T, F>(token: Arc<Token>, work: F) -> Result<T, CustodyError>
where
    T: Send + 'static,
    F: FnOnce(&Token) -> Result<T, CustodyError> + Send + 'static,
{
    let task = tokio::task::spawn_blocking(move || work(&token));
    match tokio::time::timeout(TOKEN_TIMEOUT, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(joined)) => Err(CustodyError::failed(
            anyhow::Error::new(joined).context("a token call failed"),
        )),
        Err(_) => Err(CustodyError::Unavailable(anyhow::anyhow!(
            "the token did not answer within {} s",
            TOKEN_TIMEOUT.as_secs()
        ))),
    }
}

/// Records a new version of `purpose` kept in `custody`, as the newest; the version it got.
pub async fn record_version(
    conn: &mut crate::db::Conn,
    purpose: KeyPurpose,
    version: KeyVersion,
    custody: CustodyKind,
    now: crate::clock::Millis,
) -> anyhow::Result<bool> {
    key_versions::add(
        conn,
        &KeyVersionRow {
            purpose,
            version,
            custody,
            label: label(purpose, version),
            created_at: now,
        },
    )
    .await
    .context("record the key version")
}
