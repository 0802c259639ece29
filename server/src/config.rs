//! Configuration in layers: typed defaults, then a TOML file, then `UNLOCK_*` variables.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::db::DatabaseUrl;
use crate::time_zone::ServiceZone;

/// Everything the server reads at start-up. Nested keys map to variables with `__`,
/// for example `UNLOCK_MAIL__SMTP_URL`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Address of the Prometheus `/metrics` listener, apart from `listen` so that metrics are
    /// never public by accident (keep it on loopback or a monitoring network). Empty
    /// (`metrics_listen = ""`, `UNLOCK_METRICS_LISTEN=`) turns it off. If it cannot be bound
    /// the server runs without it and logs an error (Prometheus then sees `up == 0`).
    #[serde(with = "optional_addr")]
    pub metrics_listen: Option<SocketAddr>,
    /// The address holders use; `https://` makes the journey cookie `Secure`.
    pub public_url: String,
    /// The time zone every time in an email or on a staff screen is shown in, by its tz
    /// database name (`Europe/London`, `UTC`, ...); daylight saving is followed and the zone
    /// is named ("14:05 BST"). An unknown name stops the server at start-up.
    pub time_zone: ServiceZone,
    /// `sqlite://path` (created if missing), the embedded default for one instance, or
    /// `postgres://user:password@host:5432/database` for several instances sharing one
    /// database. The password never appears in logs or `Debug`.
    pub database_url: DatabaseUrl,
    /// Most connections one instance opens to PostgreSQL (SQLite uses one writer and four
    /// readers whatever this says).
    pub database_max_connections: u32,
    /// SQLite: most writes that may wait for the writer; one more answers 503 at once.
    pub database_write_queue: u32,
    /// Where the embedded default keeps its files (database, secret key, mail folder).
    pub data_dir: PathBuf,
    /// 32-byte hex secret that keys code hashes and seals queued email. When absent it is
    /// read from (or created in) `<data_dir>/secret.key`.
    pub secret_key: Option<Secret>,
    /// A file holding the 16-byte card master key as 32 hex digits (see `keys generate`).
    pub card_master_key_file: Option<PathBuf>,
    /// The card master key itself, 32 hex digits (for `UNLOCK_CARD_MASTER_KEY`). Without a
    /// key, or a key file, the card steps answer 503 and only the code steps work.
    pub card_master_key: Option<Secret>,
    /// The built single-page app (Trunk's `dist` folder), served at `/`.
    pub static_dir: PathBuf,
    /// The proxies (CIDR blocks or addresses) whose `Forwarded` / `X-Forwarded-For` headers
    /// are believed: the client is the first address, from the right, that is not one of
    /// them. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// With an `https` `public_url` the server expects a proxy in front of it and refuses to
    /// start without `trusted_proxies`; set this when holders really reach it directly.
    pub faces_holders_directly: bool,
    /// `text` or `json` log lines on stderr.
    pub log_format: LogFormat,
    pub mail: MailConfig,
    pub sms: SmsConfig,
    pub outbox: OutboxConfig,
    pub journey: JourneyConfig,
    pub throttle: ThrottleConfig,
    pub cards: CardConfig,
    pub keys: KeysConfig,
    pub staff: StaffConfig,
    pub http: HttpConfig,
    pub retention: RetentionConfig,
}

/// Bounds on the HTTP server, so overload answers 503 instead of queueing without end.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// A request not answered in this time gets 503 (a write it had begun commits whole or
    /// not at all, never half).
    pub request_timeout_ms: u64,
    /// Requests handled at once by one instance; one more gets 503 at once.
    pub max_concurrent_requests: u32,
}

/// How long what the service no longer needs is kept. The audit trail is kept whole: it is
/// append-only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Finished journeys (closed, ineligible or expired) and their codes, in days since they
    /// last changed; at least 31, as the status view counts 30 days of them.
    pub journeys_days: u32,
    /// Sent and failed emails and their delivery attempts, in days since they finished; at
    /// least 31.
    pub emails_days: u32,
    /// Card challenges a cryptogram was released for (replay protection), in days.
    pub card_challenges_days: u32,
    /// How often each instance purges, in minutes.
    pub interval_minutes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// `smtp://host:587?tls=required` (STARTTLS), `smtps://host:465` (TLS), or plain
    /// `smtp://127.0.0.1:port` for a loopback relay. Credentials may be in the URL.
    /// Unset: messages are written as `.eml` files into `mail_dir`.
    pub smtp_url: Option<Secret>,
    /// Folder for `.eml` files when no SMTP relay is configured.
    pub mail_dir: Option<PathBuf>,
    /// The From header.
    pub from: String,
    /// Outer limit on one SMTP send, connection included.
    pub send_timeout_seconds: u64,
    /// Signs every message with DKIM when set.
    pub dkim: Option<DkimConfig>,
}

/// `[mail.dkim]`: DKIM signing (RFC 6376), so receiving systems can check that messages
/// really come from the sending domain. Publish the public key as a TXT record at
/// `<selector>._domainkey.<domain>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// The selector the public key is published under.
    pub selector: String,
    /// The signing domain (`d=`): the From address's domain or a parent of it, so that
    /// DMARC aligns. Default: the From address's domain.
    pub domain: Option<String>,
    /// A PEM file holding the private key: RSA (PKCS#1 or PKCS#8, 2048 bits or more) or
    /// Ed25519 (PKCS#8). Readable by the server's user only; never logged.
    pub private_key_file: PathBuf,
}

/// Codes by text message: SMPP 3.4 to the operator's SMS gateway or aggregator. Without a
/// gateway (`sms.host` unset) a mobile number is refused with the same answer whatever the
/// number, so holders are told at once to use their email address instead of waiting for a
/// text that never comes, and nobody learns which numbers are on profiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// The gateway's host name or address. Unset: no text messages.
    pub host: Option<String>,
    /// The gateway's SMPP port (2775 by convention).
    pub port: u16,
    /// The account (`system_id`) the gateway gave this service.
    pub system_id: String,
    /// Its password.
    pub password: Option<Secret>,
    /// `system_type`, if the gateway asks for one.
    pub system_type: String,
    /// Who the texts come from: an alphanumeric sender name (up to 11 characters) or a number.
    pub source_address: String,
    /// Where a number typed without its country code is taken to be (ISO 3166 code).
    pub default_region: String,
    /// Outer limit on one send, connecting and binding included.
    pub send_timeout_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Names this server among several sharing a database, in its outbox claims and attempts.
    /// Default: the host name and a random suffix drawn at start, so instances never share
    /// one by accident. A stable name per instance (a pod or host name) lets a restarted
    /// instance resume its own claims at once instead of after their lease.
    pub instance_id: String,
    /// First retry delay; each later one doubles, up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// Attempts before a message is marked failed for good.
    pub max_attempts: u32,
    /// How often the worker looks for due messages when nothing wakes it.
    pub poll_interval_ms: u64,
    /// How long a claimed message stays reserved for this instance.
    pub lease_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyConfig {
    /// How long a journey may take to verify its code, from its start.
    pub code_ttl_seconds: u64,
    /// How long a verified journey stays open for the card steps.
    pub verified_ttl_seconds: u64,
    pub max_code_tries: u8,
    pub resend_cooldown_seconds: u64,
    pub codes_per_hour: u32,
    /// Codes per holder (or unknown address) per day, so nobody can flood a mailbox.
    pub codes_per_day: u32,
    /// Cryptograms released per journey: enough for a few card pulls and retries; one more
    /// request closes the journey.
    pub cryptograms_per_journey: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Journeys one client address may start per hour before it is locked out.
    pub client_starts_per_hour: u32,
    /// Wrong codes one client address may send per hour before it is locked out.
    pub client_failures_per_hour: u32,
    /// Voided codes (3 wrong tries each) a holder may reach per day before lock-outs begin.
    pub holder_voided_codes_per_day: u32,
    /// Wrong codes a holder may type in a day, over all their journeys and resends; the last
    /// one starts a 24-hour lock-out.
    pub holder_wrong_codes_per_day: u32,
    /// Wrong codes a holder may type in all; the last one locks self-service until a
    /// Registration Authority releases the holder.
    pub holder_wrong_codes_in_all: u32,
    /// Wrong staff passwords or authenticator codes for one username in an hour before it is
    /// locked out (15 min, then 1 h, 4 h, 24 h).
    pub staff_failures_per_account: u32,
    /// Wrong staff passwords or codes from one client address in an hour before it is locked
    /// out (15 min, then 1 h, 24 h).
    pub staff_failures_per_client: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardConfig {
    /// Card models this service can unlock.
    pub supported_models: Vec<String>,
    /// A PEM file of the certificates PIV cards' certificates must chain to. Without it,
    /// `piv/1` cards can't be unlocked (their card steps answer 503).
    pub piv_trust_anchors_file: Option<PathBuf>,
}

/// Key custody: where versions of the card master key and the PUK escrow key after the
/// configured ones are kept (see the operations guide, "Key custody").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// Where `keys generate`, `keys rotate` and `keys import` put new key versions: `file` (a
    /// key file in `keys.dir`) or `pkcs11` (a non-extractable key on the token).
    pub custody: Custody,
    /// The folder of key files (`<label>.key`). Default: `<data_dir>/keys`.
    pub dir: Option<PathBuf>,
    /// The PKCS#11 module (the HSM vendor's library, SoftHSM2's
    /// `/usr/lib/softhsm/libsofthsm2.so`). Unset: no token is used.
    pub pkcs11_module: Option<PathBuf>,
    /// The label of the token holding the keys.
    pub pkcs11_token_label: String,
    /// A file holding the token's user PIN (readable by the server's user only).
    pub pkcs11_pin_file: Option<PathBuf>,
    /// The token's user PIN itself (for `UNLOCK_KEYS__PKCS11_PIN`).
    pub pkcs11_pin: Option<Secret>,
}

impl SmsConfig {
    /// Whether a gateway is configured.
    pub fn enabled(&self) -> bool {
        self.host.is_some()
    }

    /// The region numbers without a country code are read in.
    pub fn region(&self) -> Option<phonenumber::country::Id> {
        self.default_region.parse().ok()
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.region().is_none() {
            bail!("sms.default_region must be a two-letter country code (ISO 3166), like \"GB\"");
        }
        if self.host.is_some() {
            // SMPP 3.4's field limits: system_id 16 octets, password 9, source_addr 21.
            if self.system_id.is_empty() || self.system_id.len() > 15 {
                bail!("sms.system_id must be 1 to 15 characters");
            }
            if self.password.as_ref().is_some_and(|p| p.expose().len() > 8) {
                bail!("sms.password must be at most 8 characters (SMPP 3.4)");
            }
            if self.source_address.is_empty() || self.source_address.len() > 20 {
                bail!("sms.source_address must be 1 to 20 characters");
            }
            if self.send_timeout_seconds == 0 {
                bail!("sms.send_timeout_seconds must be at least 1");
            }
        }
        Ok(())
    }
}

/// Where new key versions are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Custody {
    File,
    Pkcs11,
}

impl KeysConfig {
    /// The folder of key files.
    pub fn dir(&self, config: &Config) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("keys"))
    }
}

/// Staff accounts, their sign-in and the status view.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffConfig {
    /// Argon2id work factor for staff passwords: memory in KiB, passes, lanes. Applies to
    /// passwords set from then on; a password hashed with other settings is re-hashed at its
    /// next successful sign-in.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Argon2 checks run at once, each holding `argon2_memory_kib`; a sign-in that finds
    /// them all busy for a second is told to try again (503). Unset: one per CPU core.
    pub argon2_concurrency: Option<u32>,
    /// How long a sign-in waits for a free Argon2 slot before it is told to try again.
    pub argon2_wait_ms: u64,
    /// A session ends after this many minutes without a request from the staff member.
    pub idle_timeout_minutes: u64,
    /// A session ends this many hours after signing in, whatever happens.
    pub session_hours: u64,
    /// The name authenticator apps show beside the account.
    pub totp_issuer: String,
    /// Staff time one self-service unlock saves (a visit to the RA), for "hours saved".
    pub minutes_saved_per_unlock: u32,
    /// Staff time one remote unlock with an RA's help saves (the visit, less the RA's phone
    /// call), for "hours saved".
    pub minutes_saved_per_ra_unlock: u32,
    /// Times an RA may release one holder's lock-outs in 7 days; after that only an RA
    /// manager may (every release past one is flagged in the overview).
    pub holder_releases_per_week: u32,
    /// The four-eyes rule: an address staff add starts no journey until a second RA (not
    /// the one who added it) approves it.
    pub four_eyes_for_added_addresses: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A configuration value that must never be printed.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; keep it out of logs and errors.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            public_url: "http://127.0.0.1:8080".into(),
            time_zone: ServiceZone::default(),
            database_url: DatabaseUrl::parse("sqlite://var/unlock.db")
                .expect("the default database URL parses"),
            database_max_connections: 16,
            database_write_queue: 4096,
            data_dir: PathBuf::from("var"),
            secret_key: None,
            card_master_key_file: None,
            card_master_key: None,
            static_dir: PathBuf::from("frontend/dist"),
            trusted_proxies: Vec::new(),
            faces_holders_directly: false,
            log_format: LogFormat::Text,
            mail: MailConfig {
                smtp_url: None,
                mail_dir: None,
                from: "Smartcard unlock <no-reply@unlock.invalid>".into(),
                send_timeout_seconds: 30,
                dkim: None,
            },
            sms: SmsConfig {
                host: None,
                port: 2775,
                system_id: String::new(),
                password: None,
                system_type: String::new(),
                source_address: "NHS Unlock".into(),
                default_region: "GB".into(),
                send_timeout_seconds: 30,
            },
            outbox: OutboxConfig {
                instance_id: default_instance_id(),
                retry_base_ms: 5_000,
                retry_max_ms: 15 * 60 * 1000,
                max_attempts: 8,
                poll_interval_ms: 1_000,
                lease_seconds: 120,
            },
            journey: JourneyConfig {
                code_ttl_seconds: 15 * 60,
                verified_ttl_seconds: 15 * 60,
                max_code_tries: 3,
                resend_cooldown_seconds: 30,
                codes_per_hour: 5,
                codes_per_day: 10,
                cryptograms_per_journey: 5,
            },
            throttle: ThrottleConfig {
                client_starts_per_hour: 30,
                client_failures_per_hour: 10,
                holder_voided_codes_per_day: 1,
                holder_wrong_codes_per_day: 10,
                holder_wrong_codes_in_all: 100,
                staff_failures_per_account: 5,
                staff_failures_per_client: 20,
            },
            cards: CardConfig {
                supported_models: vec!["unlock-cr/1".into(), "piv/1".into()],
                piv_trust_anchors_file: None,
            },
            keys: KeysConfig {
                custody: Custody::File,
                dir: None,
                pkcs11_module: None,
                pkcs11_token_label: "unlock".into(),
                pkcs11_pin_file: None,
                pkcs11_pin: None,
            },
            staff: StaffConfig {
                // OWASP's first recommendation for Argon2id: 19 MiB, 2 passes, 1 lane.
                argon2_memory_kib: 19 * 1024,
                argon2_iterations: 2,
                argon2_parallelism: 1,
                argon2_concurrency: None,
                argon2_wait_ms: 1000,
                idle_timeout_minutes: 15,
                session_hours: 8,
                totp_issuer: "Smartcard unlock".into(),
                minutes_saved_per_unlock: 20,
                minutes_saved_per_ra_unlock: 15,
                holder_releases_per_week: 3,
                four_eyes_for_added_addresses: false,
            },
            http: HttpConfig {
                request_timeout_ms: 30_000,
                max_concurrent_requests: 512,
            },
            retention: RetentionConfig {
                journeys_days: 90,
                emails_days: 90,
                card_challenges_days: 400,
                interval_minutes: 60,
            },
        }
    }
}

impl Config {
    /// Defaults, then the TOML file if given, then `UNLOCK_*` environment variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                bail!("the configuration file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        let config: Config = figment
            .merge(Env::prefixed("UNLOCK_").split("__").ignore(&["config"]))
            .extract()
            .context("read the configuration")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.database_url.check()?;
        if self.database_max_connections == 0 {
            bail!("database_max_connections must be at least 1");
        }
        if self.database_write_queue == 0
            || self.http.max_concurrent_requests == 0
            || self.http.request_timeout_ms == 0
        {
            bail!(
                "database_write_queue, http.max_concurrent_requests and http.request_timeout_ms \
                 must be at least 1"
            );
        }
        if !self.public_url.starts_with("http://") && !self.public_url.starts_with("https://") {
            bail!("public_url must start with http:// or https://");
        }
        if let Some(url) = &self.mail.smtp_url {
            check_smtp_url(url.expose())?;
        }
        let sending_domain = self.sending_domain()?;
        if let Some(dkim) = &self.mail.dkim {
            check_dkim(dkim, &sending_domain)?;
        }
        self.sms.check()?;
        let proxies = crate::http::client_addr::TrustedProxies::parse(&self.trusted_proxies)?;
        if self.serves_https() && proxies.is_empty() && !self.faces_holders_directly {
            bail!(
                "public_url is https but trusted_proxies is empty: behind a proxy every holder \
                 would share the proxy's address and its throttles. List the proxies in \
                 trusted_proxies, or set faces_holders_directly = true if holders reach this \
                 server with no proxy in between"
            );
        }
        if self.card_master_key.is_some() && self.card_master_key_file.is_some() {
            bail!("set card_master_key or card_master_key_file, not both");
        }
        let keys = &self.keys;
        if keys.pkcs11_pin.is_some() && keys.pkcs11_pin_file.is_some() {
            bail!("set keys.pkcs11_pin or keys.pkcs11_pin_file, not both");
        }
        if keys.custody == Custody::Pkcs11 && keys.pkcs11_module.is_none() {
            bail!("keys.custody = \"pkcs11\" needs keys.pkcs11_module");
        }
        let staff = &self.staff;
        argon2::Params::new(
            staff.argon2_memory_kib,
            staff.argon2_iterations,
            staff.argon2_parallelism,
            None,
        )
        .map_err(|error| anyhow::anyhow!("staff.argon2_*: {error}"))?;
        let retention = &self.retention;
        if retention.journeys_days < 31 || retention.emails_days < 31 {
            bail!(
                "retention.journeys_days and retention.emails_days must be at least 31: the \
                 status view counts the last 30 days of them"
            );
        }
        if retention.card_challenges_days < 1 || retention.interval_minutes < 1 {
            bail!(
                "retention.card_challenges_days and retention.interval_minutes must be at least 1"
            );
        }
        if staff.argon2_concurrency == Some(0) {
            bail!("staff.argon2_concurrency must be at least 1");
        }
        if staff.idle_timeout_minutes == 0 || staff.session_hours == 0 {
            bail!("staff.idle_timeout_minutes and staff.session_hours must be at least 1");
        }
        if staff.totp_issuer.contains(':') || staff.totp_issuer.trim().is_empty() {
            bail!("staff.totp_issuer must be a name without a colon");
        }
        Ok(())
    }

    /// Whether holders reach the service over TLS, so cookies must be `Secure`.
    pub fn serves_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The folder `.eml` files go to when there is no SMTP relay.
    pub fn mail_dir(&self) -> PathBuf {
        self.mail
            .mail_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("mail"))
    }

    /// The domain of the From address: messages' IDs are on it, and DKIM signs for it.
    pub fn sending_domain(&self) -> anyhow::Result<String> {
        let from: lettre::message::Mailbox = self.mail.from.parse().map_err(|_| {
            anyhow::anyhow!(
                "mail.from {:?} is not an address such as \"Smartcard unlock \
                 <no-reply@unlock.example.org>\"",
                self.mail.from
            )
        })?;
        Ok(from.email.domain().to_ascii_lowercase())
    }

    /// The DKIM signing domain: as configured, else the From address's domain.
    pub fn dkim_domain(&self, dkim: &DkimConfig) -> anyhow::Result<String> {
        match &dkim.domain {
            Some(domain) => Ok(domain.trim().to_ascii_lowercase()),
            None => self.sending_domain(),
        }
    }

    pub fn send_timeout(&self) -> Duration {
        Duration::from_secs(self.mail.send_timeout_seconds)
    }
}

/// The host's name and 8 random hex digits.
fn default_instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unlock".into());
    let mut suffix = [0u8; 4];
    let _ = getrandom::fill(&mut suffix);
    format!("{host}-{}", hex::encode(suffix))
}

/// An address that may be switched off: written as the address, or as an empty string.
mod optional_addr {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, out: S) -> Result<S::Ok, S::Error> {
        match addr {
            Some(addr) => out.collect_str(addr),
            None => out.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        input: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        match Option::<String>::deserialize(input)? {
            None => Ok(None),
            Some(text) if text.trim().is_empty() => Ok(None),
            Some(text) => text.trim().parse().map(Some).map_err(|_| {
                D::Error::custom(format!(
                    "{text:?} is not an address such as 127.0.0.1:9464 (or empty, for none)"
                ))
            }),
        }
    }
}

/// A DKIM selector and domain a TXT record can be published under, aligned with From.
fn check_dkim(dkim: &DkimConfig, sending_domain: &str) -> anyhow::Result<()> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !dkim.selector.split('.').all(label_ok) {
        bail!(
            "mail.dkim.selector {:?} must be a DNS name such as \"unlock2026\"",
            dkim.selector
        );
    }
    if let Some(domain) = &dkim.domain {
        let domain = domain.trim().to_ascii_lowercase();
        if !domain.split('.').all(label_ok) {
            bail!("mail.dkim.domain {domain:?} must be a domain name");
        }
        let aligned = sending_domain == domain
            || sending_domain
                .strip_suffix(&domain)
                .is_some_and(|rest| rest.ends_with('.'));
        if !aligned {
            bail!(
                "mail.dkim.domain {domain:?} must be the From address's domain \
                 ({sending_domain:?}) or a parent of it, or receivers' DMARC checks fail"
            );
        }
    }
    Ok(())
}

/// Plain SMTP sends codes in clear text, so it is allowed only to a relay on this machine.
fn check_smtp_url(raw: &str) -> anyhow::Result<()> {
    // The URL may carry a password: never echo it back.
    let url =
        url::Url::parse(raw).map_err(|_| anyhow::anyhow!("mail.smtp_url is not a valid URL"))?;
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    match (url.scheme(), tls.as_deref()) {
        ("smtps", _) | ("smtp", Some("required")) => Ok(()),
        ("smtp", None | Some("opportunistic")) => {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                // Non-special schemes such as smtp:// keep IPv4 hosts as opaque names.
                Some(url::Host::Domain(name)) => {
                    name == "localhost"
                        || name
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                }
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                bail!(
                    "mail.smtp_url must use TLS (smtps://host:465 or smtp://host:587?tls=required) \
                     unless the relay is on this machine"
                )
            }
        }
        _ => bail!("mail.smtp_url must start with smtp:// or smtps://"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_url_must_use_tls_unless_loopback() {
        assert!(check_smtp_url("smtp://127.0.0.1:2525").is_ok());
        assert!(check_smtp_url("smtp://localhost:2525").is_ok());
        assert!(check_smtp_url("smtps://user:pw@relay.example.org").is_ok());
        assert!(check_smtp_url("smtp://relay.example.org:587?tls=required").is_ok());
        assert!(check_smtp_url("smtp://relay.example.org:25").is_err());
        assert!(check_smtp_url("smtp://relay.example.org:25?tls=opportunistic").is_err());
        assert!(check_smtp_url("http://relay.example.org").is_err());
    }

    #[test]
    fn smtp_url_errors_never_echo_credentials() {
        let error = check_smtp_url("smtp://user:hunter2@relay.example.org").unwrap_err();
        assert!(!format!("{error:#}").contains("hunter2"));
    }

    #[test]
    fn an_https_service_needs_its_proxies_named_or_to_say_it_has_none() {
        let behind = Config {
            public_url: "https://unlock.example.org".into(),
            ..Config::default()
        };
        let error = format!("{:#}", behind.validate().unwrap_err());
        assert!(error.contains("trusted_proxies"), "{error}");
        let named = Config {
            trusted_proxies: vec!["10.0.0.0/8".into()],
            ..behind.clone()
        };
        named.validate().unwrap();
        let direct = Config {
            faces_holders_directly: true,
            ..behind.clone()
        };
        direct.validate().unwrap();
        let bad = Config {
            trusted_proxies: vec!["10.0.0.0/33".into()],
            ..behind
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_card_master_key_comes_from_one_place_only() {
        let both = Config {
            card_master_key: Some(Secret::new("35a47d45d75853e026695fffa198b79d")),
            card_master_key_file: Some(PathBuf::from("card-master.key")),
            ..Config::default()
        };
        let error = both.validate().unwrap_err().to_string();
        assert!(error.contains("not both"), "{error}");
        assert!(!error.contains("35a47d45"));
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn an_sms_gateway_is_checked_and_its_password_never_printed() {
        let mut config = Config::default();
        config.sms.host = Some("smsc.example.org".into());
        config.sms.system_id = "unlock".into();
        config.sms.password = Some(Secret::new("hunter2"));
        config.validate().unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(config.sms.enabled());

        let mut long = config.clone();
        long.sms.password = Some(Secret::new("hunter2hunter2"));
        let error = long.validate().unwrap_err().to_string();
        assert!(
            error.contains("sms.password") && !error.contains("hunter2"),
            "{error}"
        );
        let mut nameless = config.clone();
        nameless.sms.system_id = String::new();
        assert!(nameless.validate().is_err());
        let mut nowhere = config;
        nowhere.sms.default_region = "Narnia".into();
        assert!(nowhere.validate().is_err());
        assert!(!Config::default().sms.enabled());
    }

    #[test]
    fn each_instance_gets_its_own_id_by_default() {
        let (one, two) = (Config::default(), Config::default());
        assert_ne!(one.outbox.instance_id, two.outbox.instance_id);
        assert!(!one.outbox.instance_id.is_empty());
    }

    #[test]
    fn the_metrics_listener_is_on_loopback_by_default_and_can_be_turned_off() {
        let load = |toml: &str| {
            Figment::from(Serialized::defaults(Config::default()))
                .merge(Toml::string(toml))
                .extract::<Config>()
                .map_err(|error| error.to_string())
        };
        assert_eq!(
            load("").unwrap().metrics_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        assert_eq!(load("metrics_listen = \"\"").unwrap().metrics_listen, None);
        assert_eq!(
            load("metrics_listen = \"0.0.0.0:9100\"")
                .unwrap()
                .metrics_listen,
            Some(SocketAddr::from(([0, 0, 0, 0], 9100)))
        );
        let error = load("metrics_listen = \"loopback\"").unwrap_err();
        assert!(error.contains("is not an address"), "{error}");
    }

    #[test]
    fn the_time_zone_defaults_to_london_and_an_unknown_one_stops_the_start() {
        let load = |toml: &str| {
            Figment::from(Serialized::defaults(Config::default()))
                .merge(Toml::string(toml))
                .extract::<Config>()
                .map_err(|error| error.to_string())
        };
        assert_eq!(load("").unwrap().time_zone.name(), "Europe/London");
        assert_eq!(
            load("time_zone = \"America/New_York\"")
                .unwrap()
                .time_zone
                .name(),
            "America/New_York"
        );
        let error = load("time_zone = \"Mars/Olympus\"").unwrap_err();
        assert!(
            error.contains("\"Mars/Olympus\" is not a time zone") && error.contains("time_zone"),
            "{error}"
        );
    }

    #[test]
    fn dkim_signs_for_the_from_domain_or_a_parent_of_it() {
        let with = |domain: Option<&str>, selector: &str| Config {
            mail: MailConfig {
                from: "Unlock <no-reply@mail.trust.example>".into(),
                dkim: Some(DkimConfig {
                    selector: selector.into(),
                    domain: domain.map(str::to_owned),
                    private_key_file: PathBuf::from("dkim.pem"),
                }),
                ..Config::default().mail
            },
            ..Config::default()
        };
        with(None, "unlock2026").validate().unwrap();
        with(Some("trust.example"), "unlock2026")
            .validate()
            .unwrap();
        with(Some("mail.trust.example"), "s1.unlock")
            .validate()
            .unwrap();
        let error = with(Some("other.example"), "s1").validate().unwrap_err();
        assert!(format!("{error:#}").contains("DMARC"), "{error:#}");
        let error = with(Some("ust.example"), "s1").validate().unwrap_err();
        assert!(format!("{error:#}").contains("parent"), "{error:#}");
        assert!(with(None, "bad selector").validate().is_err());
        let unreadable_from = Config {
            mail: MailConfig {
                from: "nobody".into(),
                ..Config::default().mail
            },
            ..Config::default()
        };
        let error = format!("{:#}", unreadable_from.validate().unwrap_err());
        assert!(error.contains("mail.from"), "{error}");
    }

    #[test]
    fn secrets_print_as_stars() {
        let config = Config {
            secret_key: Some(Secret::new("00ff")),
            card_master_key: Some(Secret::new("35a47d45d75853e026695fffa198b79d")),
            ..Config::default()
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("00ff"));
        assert!(!printed.contains("35a47d45"));
    }
}
