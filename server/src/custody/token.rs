//! A PKCS#11 token (an HSM; SoftHSM2 in the tests) whose keys never leave it: it computes the
//! per-card key (AES-CMAC) and seals and opens escrowed PUKs (AES-GCM).
//!
//! Sessions are pooled: a call takes an idle session (or opens and logs in a new one) and
//! gives it back when the token answered. When the token fails other than over the data it
//! was given, the whole connection is dropped — sessions closed and the module finalised, as
//! modules (SoftHSM2 among them) only look for tokens again when initialised — and the next
//! call opens it again: a token that comes back is used again without a restart. Every call
//! blocks, so the custody runs them on tokio's blocking threads.
//!
//! PKCS#11 allows one initialisation of a module per process; a server process has one
//! custody, so one `Token`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::{CustodyError, TAG_BITS};
use crate::config::{Config, Secret};

/// How to reach the token: `keys.pkcs11_module`, `keys.pkcs11_token_label` and the user PIN
/// (`keys.pkcs11_pin_file` or `keys.pkcs11_pin`).
#[derive(Debug, Clone)]
pub struct Pkcs11Settings {
    pub module: PathBuf,
    pub token_label: String,
    pub pin: Secret,
}

impl Pkcs11Settings {
    /// The settings the configuration names, if it names a module.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Self>> {
        let keys = &config.keys;
        let Some(module) = keys.pkcs11_module.clone() else {
            return Ok(None);
        };
        let pin = match (&keys.pkcs11_pin, &keys.pkcs11_pin_file) {
            (Some(pin), None) => pin.clone(),
            (None, Some(path)) => {
                crate::secrets::private_only(path)?;
                let text = Zeroizing::new(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("read the token PIN file {}", path.display()))?,
                );
                Secret::new(text.trim())
            }
            _ => anyhow::bail!(
                "with keys.pkcs11_module set, set one of keys.pkcs11_pin_file and keys.pkcs11_pin"
            ),
        };
        Ok(Some(Self {
            module,
            token_label: keys.pkcs11_token_label.clone(),
            pin,
        }))
    }
}

/// One connection to the token: the loaded module, its slot, idle sessions, and the handles
/// of the keys found so far.
struct Open {
    context: Pkcs11,
    slot: Slot,
    idle: Mutex<Vec<Session>>,
    keys: Mutex<HashMap<String, ObjectHandle>>,
    /// Set once the connection is dropped.
    closed: AtomicBool,
}

/// A PKCS#11 token, opened on first use and again after it failed.
pub struct Token {
    settings: Pkcs11Settings,
    open: Mutex<Option<Arc<Open>>>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("module", &self.settings.module)
            .field("token_label", &self.settings.token_label)
            .finish_non_exhaustive()
    }
}

/// The attributes every key this service keeps on a token has: a secret AES key stored on
/// the token, usable only after login, that can't be read out or wrapped, for `uses`.
fn key_template(label: &str, len: usize, uses: &[Attribute]) -> anyhow::Result<Vec<Attribute>> {
    let mut template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(len.try_into().context("a key length")?),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Derive(false),
        Attribute::Wrap(false),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    template.extend_from_slice(uses);
    Ok(template)
}

/// What a key of each purpose may do on the token.
pub fn uses(purpose: crate::db::states::KeyPurpose) -> Vec<Attribute> {
    use crate::db::states::KeyPurpose;
    match purpose {
        KeyPurpose::CardMaster => vec![Attribute::Sign(true), Attribute::Verify(true)],
        KeyPurpose::PukEscrow => vec![Attribute::Encrypt(true), Attribute::Decrypt(true)],
    }
}

impl Token {
    pub fn new(settings: Pkcs11Settings) -> Self {
        Self {
            settings,
            open: Mutex::new(None),
        }
    }

    /// `AES-CMAC(key, data)` with the key labelled `label`.
    pub fn cmac(&self, label: &str, data: &[u8]) -> Result<Vec<u8>, CustodyError> {
        self.with_key(label, |session, key| {
            session.sign(&Mechanism::AesCMac, key, data)
        })
    }

    /// AES-GCM encryption with the key labelled `label` (ciphertext ‖ tag).
    pub fn gcm_encrypt(
        &self,
        label: &str,
        mut iv: [u8; 12],
        aad: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, CustodyError> {
        self.with_key(label, |session, key| {
            let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
            session.encrypt(&Mechanism::AesGcm(params), key, plain)
        })
    }

    /// AES-GCM decryption with the key labelled `label`; a wrong tag is a fault, not an
    /// unavailable token.
    pub fn gcm_decrypt(
        &self,
        label: &str,
        mut iv: [u8; 12],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, CustodyError> {
        self.with_key(label, |session, key| {
            let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
            session.decrypt(&Mechanism::AesGcm(params), key, sealed)
        })
    }

    /// Whether the token answers and the PIN opens it (for `/readyz`).
    pub fn check(&self) -> Result<(), CustodyError> {
        self.with_session(|open, session| {
            open.context.get_token_info(open.slot)?;
            session.get_session_info().map(|_| ())
        })
    }

    /// Makes a new key labelled `label` on the token, `len` bytes, for `uses`. The token draws
    /// it and it never leaves.
    pub fn generate(&self, label: &str, len: usize, uses: &[Attribute]) -> anyhow::Result<()> {
        let template = key_template(label, len, uses)?;
        self.refuse_existing(label)?;
        self.with_session(|_, session| {
            session
                .generate_key(&Mechanism::AesKeyGen, &template)
                .map(|_| ())
        })
        .map_err(anyhow::Error::new)
        .with_context(|| format!("make the key {label} on the token"))
    }

    /// Puts the existing key `value` on the token labelled `label`, sensitive and
    /// non-extractable from then on.
    pub fn import(&self, label: &str, value: &[u8], uses: &[Attribute]) -> anyhow::Result<()> {
        let mut template = key_template(label, value.len(), uses)?;
        template.retain(|attribute| !matches!(attribute, Attribute::ValueLen(_)));
        template.push(Attribute::Value(value.to_vec()));
        self.refuse_existing(label)?;
        let result = self
            .with_session(|_, session| session.create_object(&template).map(|_| ()))
            .map_err(anyhow::Error::new);
        // The template held the key's bytes.
        for attribute in &mut template {
            if let Attribute::Value(bytes) = attribute {
                zeroize::Zeroize::zeroize(bytes);
            }
        }
        result.with_context(|| format!("put the key {label} on the token"))
    }

    fn refuse_existing(&self, label: &str) -> anyhow::Result<()> {
        let found = self
            .with_session(|_, session| session.find_objects(&label_template(label)))
            .map_err(anyhow::Error::new)?;
        if !found.is_empty() {
            anyhow::bail!(
                "the token already holds a key labelled {label}; refusing to add another"
            );
        }
        Ok(())
    }

    /// Runs `work` with the key labelled `label` and a logged-in session.
    fn with_key<T>(
        &self,
        label: &str,
        work: impl FnOnce(&Session, ObjectHandle) -> cryptoki::error::Result<T>,
    ) -> Result<T, CustodyError> {
        self.with_session(|open, session| {
            let key = open.key(session, label)?;
            work(session, key)
        })
    }

    /// Runs `work` with a logged-in session from the pool, opening the token if it is not
    /// open, and dropping the connection if the token failed.
    fn with_session<T>(
        &self,
        work: impl FnOnce(&Open, &Session) -> cryptoki::error::Result<T>,
    ) -> Result<T, CustodyError> {
        let open = self.opened()?;
        let session = open.session().map_err(|error| self.lost(&error))?;
        match work(&open, &session) {
            Ok(value) => {
                open.give_back(session);
                Ok(value)
            }
            Err(error) if is_data_error(&error) => {
                open.give_back(session);
                Err(CustodyError::Failed(
                    anyhow::Error::new(error).context("the token refused the data"),
                ))
            }
            Err(error) => {
                // Closed while the module is still initialised.
                drop(session);
                Err(self.lost(&error))
            }
        }
    }

    /// The token failed: drop the connection so the next call opens it again.
    fn lost(&self, error: &P11Error) -> CustodyError {
        tracing::error!(%error, token = %self.settings.token_label, "the PKCS#11 token failed; it will be opened again");
        let open = self.open.lock().ok().and_then(|mut open| open.take());
        if let Some(open) = open {
            open.close();
        }
        CustodyError::Unavailable(anyhow::anyhow!("the PKCS#11 token failed: {error}"))
    }

    fn opened(&self) -> Result<Arc<Open>, CustodyError> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| CustodyError::Failed(anyhow::anyhow!("the token's lock is poisoned")))?;
        if let Some(open) = open.as_ref() {
            return Ok(open.clone());
        }
        let opened = Arc::new(self.connect().map_err(CustodyError::Unavailable)?);
        *open = Some(opened.clone());
        Ok(opened)
    }

    fn connect(&self) -> anyhow::Result<Open> {
        let module = &self.settings.module;
        let context = Pkcs11::new(module)
            .with_context(|| format!("load the PKCS#11 module {}", module.display()))?;
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            // Another custody in this process (a second instance in a test) initialised it.
            Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(error) => return Err(error).context("initialise the PKCS#11 module"),
        }
        let wanted = self.settings.token_label.as_str();
        let slot = context
            .get_slots_with_token()
            .context("list the PKCS#11 slots")?
            .into_iter()
            .find(|slot| {
                context
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label().trim_end() == wanted)
            })
            .with_context(|| format!("no PKCS#11 token labelled {wanted} is present"));
        let slot = match slot {
            Ok(slot) => slot,
            Err(error) => {
                // Finalised, so the next try looks for the token afresh.
                let _ = context.finalize();
                return Err(error);
            }
        };
        let open = Open {
            context,
            slot,
            idle: Mutex::new(Vec::new()),
            keys: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        };
        match open.new_session(&self.settings.pin) {
            Ok(session) => {
                open.give_back(session);
                Ok(open)
            }
            Err(error) => {
                open.close();
                Err(error)
            }
        }
    }
}

impl Open {
    /// Closes the idle sessions and finalises the module (sessions still in use elsewhere
    /// die with it; they are never given back to a newer connection).
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
        let _ = self.context.clone().finalize();
    }

    fn session(&self) -> cryptoki::error::Result<Session> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(session) => Ok(session),
            // Logged in already: a token's login holds for all of an application's sessions.
            None => self.context.open_rw_session(self.slot),
        }
    }

    fn new_session(&self, pin: &Secret) -> anyhow::Result<Session> {
        let session = self
            .context
            .open_rw_session(self.slot)
            .context("open a session on the token")?;
        let pin = AuthPin::new(pin.expose().into());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(error) => Err(error).context("log in to the token (is the PIN right?)"),
        }
    }

    fn give_back(&self, session: Session) {
        if self.closed.load(Ordering::SeqCst) {
            // Its module was finalised: closing it now could close a newer connection's
            // session that reuses its handle.
            std::mem::forget(session);
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(session);
        }
    }

    /// The handle of the key labelled `label`.
    fn key(&self, session: &Session, label: &str) -> cryptoki::error::Result<ObjectHandle> {
        if let Some(handle) = self
            .keys
            .lock()
            .ok()
            .and_then(|keys| keys.get(label).copied())
        {
            return Ok(handle);
        }
        let handle = session
            .find_objects(&label_template(label))?
            .into_iter()
            .next()
            .ok_or(P11Error::Pkcs11(
                RvError::KeyHandleInvalid,
                cryptoki::context::Function::FindObjects,
            ))?;
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(label.to_owned(), handle);
        }
        Ok(handle)
    }
}

fn label_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// An error about the data given, after which the token and session are still fine.
fn is_data_error(error: &P11Error) -> bool {
    matches!(
        error,
        P11Error::Pkcs11(
            RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange
                | RvError::AttributeSensitive,
            _
        )
    )
}
