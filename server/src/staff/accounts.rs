//! Staff accounts: created by an operator with a one-time password and an authenticator
//! enrolment, reset when a device is lost, disabled when someone leaves. Passwords are
//! hashed with Argon2id off the async runtime; authenticator secrets are sealed at rest.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;
use unlock_protocol::HolderId;
use unlock_protocol::staff::{Role, StaffUsername};

use crate::audit::{self, Action, Audited, Outcome};
use crate::clock::Clock;
use crate::config::{Config, StaffConfig};
use crate::db::{self, Conn, Db};
use crate::secrets::Keys;

/// What an authenticator secret is sealed for (the AES-GCM associated data).
const TOTP_PURPOSE: &[u8] = b"staff totp secret";
/// 160-bit authenticator secrets, as RFC 4226 recommends.
const TOTP_SECRET_BYTES: usize = 20;
/// One-time passwords: 4 groups of 5 from 31 unambiguous characters (about 99 bits).
const ONE_TIME_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Every Argon2 slot stayed busy: the caller is told to try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password check is busy")]
pub struct Busy;

/// Argon2id with the configured work factor, and a hash to check against when the username
/// is unknown, so an unknown name costs what a wrong password costs. At most
/// `staff.argon2_concurrency` checks run at once (one per core by default): each holds
/// `argon2_memory_kib`, so an unbounded burst could exhaust memory and starve every other
/// request.
#[derive(Debug, Clone)]
pub struct Passwords {
    params: Params,
    dummy: String,
    slots: Arc<Semaphore>,
    /// How long a check waits for a free slot before giving up with [`Busy`].
    slot_wait: Duration,
}

impl Passwords {
    /// Hashes the stand-in password once, at start-up.
    pub async fn new(config: &StaffConfig) -> anyhow::Result<Self> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|error| anyhow::anyhow!("staff.argon2_*: {error}"))?;
        let slots = config.argon2_concurrency.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            |n| usize::try_from(n).unwrap_or(1),
        );
        let mut passwords = Self {
            params,
            dummy: String::new(),
            slots: Arc::new(Semaphore::new(slots.max(1))),
            slot_wait: Duration::from_millis(config.argon2_wait_ms),
        };
        passwords.dummy = passwords
            .hash(random_text(20)?)
            .await
            .context("hash the stand-in password")?;
        Ok(passwords)
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// A free Argon2 slot, waiting up to `staff.argon2_wait_ms`.
    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Busy> {
        match tokio::time::timeout(self.slot_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Busy),
        }
    }

    /// The PHC string of a new hash of `password`, with a fresh salt.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let params = self.params.clone();
        let _slot = self.slot().await?;
        tokio::task::spawn_blocking(move || {
            Self::argon2(params)
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|error| anyhow::anyhow!("hash a password: {error}"))
        })
        .await
        .context("join the password hashing")?
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown or unusable
    /// account) the stand-in is checked instead and the answer is no.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, Busy> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy.clone());
        let padding = self.shortfall(&hash);
        let _slot = self.slot().await?;
        let matched = tokio::task::spawn_blocking(move || {
            // The hash's own parameters apply, not the configured ones.
            let matched = Self::argon2(Params::default())
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok();
            if let Some(padding) = padding {
                let mut out = [0u8; 32];
                let _ = Self::argon2(padding).hash_password_into(
                    b"padding",
                    b"unlock padding salt",
                    &mut out,
                );
            }
            matched
        })
        .await
        .unwrap_or(false);
        Ok(known && matched)
    }

    /// The work a hash made before the work factor was raised falls short of the configured
    /// one by, as the parameters of a padding run (Argon2's time grows with memory × passes):
    /// so a wrong password for an account not signed in since costs what one for an unknown
    /// name (checked against a stand-in at the configured factor) costs. `None` when short
    /// by less than half a pass.
    fn shortfall(&self, stored: &str) -> Option<Params> {
        let hash = PasswordHash::new(stored).ok()?;
        let old = Params::try_from(&hash).ok()?;
        let memory = u64::from(self.params.m_cost());
        let wanted = memory * u64::from(self.params.t_cost());
        let had = u64::from(old.m_cost()) * u64::from(old.t_cost());
        let passes = (wanted.checked_sub(had)? + memory / 2) / memory;
        let passes = u32::try_from(passes).ok().filter(|passes| *passes > 0)?;
        Params::new(self.params.m_cost(), passes, self.params.p_cost(), None).ok()
    }

    /// Whether `stored` was made with the configured work factor (else it is re-hashed at
    /// the next successful sign-in).
    pub fn is_current(&self, stored: &str) -> bool {
        PasswordHash::new(stored)
            .ok()
            .and_then(|hash| Params::try_from(&hash).ok())
            .is_some_and(|params| {
                params.m_cost() == self.params.m_cost()
                    && params.t_cost() == self.params.t_cost()
                    && params.p_cost() == self.params.p_cost()
            })
    }
}

pub use crate::db::staff_accounts::{Account, Listed, find};

/// The authenticator an account's codes are checked with: 6 digits, 30 s steps, one step
/// either side allowed, HMAC-SHA-1 (what every authenticator app supports).
pub fn authenticator(
    keys: &Keys,
    config: &StaffConfig,
    username: &str,
    sealed_secret: &[u8],
) -> anyhow::Result<totp_rs::Totp> {
    let secret = keys
        .open_as(TOTP_PURPOSE, sealed_secret)
        .context("open the authenticator secret")?;
    build_authenticator(config, username, secret)
}

fn build_authenticator(
    config: &StaffConfig,
    username: &str,
    secret: Vec<u8>,
) -> anyhow::Result<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name(username)
        .with_issuer(Some(config.totp_issuer.as_str()))
        .build()
        .map_err(|error| anyhow::anyhow!("set up the authenticator: {error}"))
}

/// What the operator hands to a new staff member, once: it is not stored in the clear.
pub struct Enrolment {
    pub username: StaffUsername,
    pub role: Role,
    pub one_time_password: String,
    /// `otpauth://totp/...`, which authenticator apps read from the QR code.
    pub otpauth_uri: String,
    /// The secret in base 32, for typing in by hand.
    pub key: String,
    /// The QR code of `otpauth_uri`, drawn with block characters for a terminal.
    pub qr_code: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Fresh credentials: a one-time password (hashed) and an authenticator secret (sealed).
struct Credentials {
    enrolment: Enrolment,
    password_hash: String,
    sealed_secret: Vec<u8>,
}

/// What is stored of new credentials, owned, for a write that may run more than once.
#[derive(Clone)]
struct Stored {
    password_hash: String,
    sealed_secret: Vec<u8>,
}

impl Credentials {
    fn stored(&self) -> Stored {
        Stored {
            password_hash: self.password_hash.clone(),
            sealed_secret: self.sealed_secret.clone(),
        }
    }
}

impl Stored {
    fn as_credentials(&self) -> db::staff_accounts::Credentials<'_> {
        db::staff_accounts::Credentials {
            password_hash: &self.password_hash,
            sealed_secret: &self.sealed_secret,
        }
    }
}

async fn new_credentials(
    config: &Config,
    keys: &Keys,
    passwords: &Passwords,
    username: &StaffUsername,
    role: Role,
) -> anyhow::Result<Credentials> {
    let one_time_password = one_time_password()?;
    let password_hash = passwords.hash(one_time_password.clone()).await?;
    let mut secret = vec![0u8; TOTP_SECRET_BYTES];
    getrandom::fill(&mut secret).context("draw an authenticator secret")?;
    let sealed_secret = keys.seal_as(TOTP_PURPOSE, &secret)?;
    let totp = build_authenticator(&config.staff, username.as_str(), secret)?;
    let otpauth_uri = totp
        .to_url()
        .map_err(|error| anyhow::anyhow!("write the authenticator address: {error}"))?;
    let qr_code = qrcode::QrCode::new(otpauth_uri.as_bytes())
        .context("draw the QR code")?
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    Ok(Credentials {
        enrolment: Enrolment {
            username: username.clone(),
            role,
            one_time_password,
            key: totp.secret().to_base32(),
            otpauth_uri,
            qr_code,
        },
        password_hash,
        sealed_secret,
    })
}

/// Creates an account that must change its one-time password at first sign-in. Staff who
/// act on profiles (`ra`, `ra-manager`) must name their own holder id, so they can't act on it.
pub async fn add(
    db: &Db,
    clock: &Clock,
    config: &Config,
    passwords: &Passwords,
    username: &StaffUsername,
    role: Role,
    holder: Option<&HolderId>,
) -> anyhow::Result<Enrolment> {
    if role != Role::Support && holder.is_none() {
        bail!(
            "give the staff member's own user id with --holder: {} staff may not act on their own \
             smartcard profile, so the account must know which one it is",
            role.label()
        );
    }
    let keys = Keys::load(config)?;
    let credentials = new_credentials(config, &keys, passwords, username, role).await?;
    let (name, stored) = (username.clone(), credentials.stored());
    let holder_id = holder.map(|id| id.as_str().to_owned());
    let action = Action::StaffAccountAdd;
    let concerning = holder.map(HolderId::as_str);
    audit::operator_write(db, clock, concerning, action, move |conn, now| {
        let (name, stored, holder_id) = (name.clone(), stored.clone(), holder_id.clone());
        Box::pin(async move {
            let credentials = stored.as_credentials();
            let holder_id = holder_id.as_deref();
            // The own-profile rule is only as good as the profile named: it must be one.
            if let Some(id) = holder_id
                && !db::holders::exists(conn, id).await?
            {
                bail!(
                    "there is no holder with user id {id}: --holder takes the staff member's own \
                     user id, from a profile already imported"
                );
            }
            if !db::staff_accounts::add(conn, name.as_str(), role, holder_id, credentials, now)
                .await?
            {
                bail!("there is already a staff account named {name}");
            }
            Ok(Audited::done(
                Outcome::Done,
                Some(format!("{name} as {role}")),
                (),
            ))
        })
    })
    .await?;
    Ok(credentials.enrolment)
}

/// New one-time password and authenticator for an account (a lost phone, a forgotten
/// password): it must go through first sign-in again, and its sessions end.
pub async fn reset(
    db: &Db,
    clock: &Clock,
    config: &Config,
    passwords: &Passwords,
    username: &StaffUsername,
) -> anyhow::Result<Enrolment> {
    let keys = Keys::load(config)?;
    let account = find(&mut *db.reader().await?, username.as_str())
        .await?
        .with_context(|| format!("there is no staff account named {username}"))?;
    if account.disabled_at.is_some() {
        bail!(
            "{username} is disabled, and a reset does not enable an account: add a new account \
             for them (`staff add`) if they should sign in again"
        );
    }
    let credentials = new_credentials(config, &keys, passwords, username, account.role).await?;
    let (name, stored) = (username.clone(), credentials.stored());
    let action = Action::StaffAccountReset;
    audit::operator_write(db, clock, None, action, move |conn, _| {
        let (name, stored) = (name.clone(), stored.clone());
        Box::pin(async move {
            if !db::staff_accounts::reset(conn, name.as_str(), stored.as_credentials()).await? {
                bail!("there is no enabled staff account named {name}");
            }
            end_sessions(conn, name.as_str()).await?;
            Ok(Audited::done(Outcome::Done, Some(name.to_string()), ()))
        })
    })
    .await?;
    Ok(credentials.enrolment)
}

/// Stops an account signing in and ends its sessions.
pub async fn disable(db: &Db, clock: &Clock, username: &StaffUsername) -> anyhow::Result<()> {
    let name = username.clone();
    let action = Action::StaffAccountDisable;
    audit::operator_write(db, clock, None, action, move |conn, now| {
        let name = name.clone();
        Box::pin(async move {
            if !db::staff_accounts::disable(conn, name.as_str(), now).await? {
                bail!("there is no enabled staff account named {name}");
            }
            end_sessions(conn, name.as_str()).await?;
            Ok(Audited::done(Outcome::Done, Some(name.to_string()), ()))
        })
    })
    .await
}

/// Ends every session of an account.
pub async fn end_sessions(conn: &mut Conn, username: &str) -> anyhow::Result<()> {
    db::staff_sessions::end_all_of(conn, username).await
}

/// Every account, for `staff list`.
pub async fn list(db: &Db) -> anyhow::Result<Vec<Listed>> {
    db::staff_accounts::list(&mut *db.reader().await?).await
}

fn one_time_password() -> anyhow::Result<String> {
    let groups: Vec<String> = (0..4)
        .map(|_| random_text(5))
        .collect::<anyhow::Result<_>>()?;
    Ok(groups.join("-"))
}

/// `length` characters drawn uniformly from [`ONE_TIME_ALPHABET`].
fn random_text(length: usize) -> anyhow::Result<String> {
    let alphabet = ONE_TIME_ALPHABET.len();
    // Rejection sampling keeps every character equally likely.
    let limit = u8::MAX as usize - (u8::MAX as usize + 1) % alphabet;
    let mut text = String::with_capacity(length);
    while text.len() < length {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).context("draw a random character")?;
        if usize::from(byte[0]) <= limit {
            text.push(char::from(
                ONE_TIME_ALPHABET[usize::from(byte[0]) % alphabet],
            ));
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> StaffConfig {
        StaffConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            ..Config::default().staff
        }
    }

    #[tokio::test]
    async fn passwords_verify_and_the_stand_in_never_matches() {
        let passwords = Passwords::new(&quick()).await.unwrap();
        let hash = passwords
            .hash("correct horse battery".into())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(
            passwords
                .verify("correct horse battery".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("wrong horse battery".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("anything".into(), None).await.unwrap());
        assert!(passwords.is_current(&hash));
        let stronger = Passwords::new(&StaffConfig {
            argon2_memory_kib: 128,
            ..quick()
        })
        .await
        .unwrap();
        assert!(!stronger.is_current(&hash));
        // A hash made with other settings still verifies.
        assert!(
            stronger
                .verify("correct horse battery".into(), Some(hash))
                .await
                .unwrap()
        );
    }

    #[test]
    fn one_time_passwords_are_long_and_plain() {
        let password = one_time_password().unwrap();
        assert_eq!(password.len(), 23, "{password}");
        assert!(
            password
                .bytes()
                .all(|b| b == b'-' || ONE_TIME_ALPHABET.contains(&b))
        );
        assert_ne!(password, one_time_password().unwrap());
    }

    #[test]
    fn the_authenticator_is_rfc_6238_with_sha1_and_30_second_steps() {
        // RFC 6238 appendix B: the SHA-1 secret "12345678901234567890" at 59 s gives 94287082,
        // whose last 6 digits an authenticator shows.
        let totp = build_authenticator(&quick(), "rita", b"12345678901234567890".to_vec()).unwrap();
        assert_eq!(totp.generate(59).to_string(), "287082");
        assert_eq!(totp.check("287082", 59 + 30), Some(1));
        assert_eq!(totp.check("287082", 59 + 60), None);
        let uri = totp.to_url().unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Smartcard%20unlock:rita?secret="),
            "{uri}"
        );
    }
}
