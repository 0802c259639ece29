//! The `unlock-server` command line.

mod allowlist;
mod audit_archive;
mod import;
mod keys;
mod staff;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use unlock_protocol::{EmailAddress, HolderId};

use crate::audit::{self, Action, Audited, Outcome};
use crate::clock::Clock;
use crate::config::Config;
use crate::custody::{self, Custody};
use crate::db::{self, Db};
use crate::secrets::Keys;
use crate::{Server, demo, telemetry, throttle};

/// Self-service smartcard unlock server.
#[derive(Debug, Parser)]
#[command(name = "unlock-server", version)]
pub struct Cli {
    /// TOML configuration file; `UNLOCK_*` environment variables override it.
    #[arg(long, global = true, env = "UNLOCK_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the email outbox worker.
    Serve {
        /// Seed a demo holder into an empty database (for trying the service, never
        /// production). Without a configured card master key, use `<data_dir>/card-master.key`
        /// (./var/card-master.key by default), creating it if missing, so a demo virtual
        /// card can read the same key.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Import holders, their emails and cards from a CSV file (see the README for columns).
    Import {
        csv: PathBuf,
        /// Replace the escrowed PUK of PIV cards already on record with the file's (after the
        /// card management system has reset those cards' PUKs). Without it a card keeps the
        /// PUK the service holds, which it rotates with every unlock.
        #[arg(long)]
        replace_puks: bool,
    },
    /// Manage the email domain allow list.
    #[command(subcommand)]
    Allowlist(AllowlistCommand),
    /// Inspect and release throttles.
    #[command(subcommand)]
    Throttle(ThrottleCommand),
    /// Key versions of the card master key and the PUK escrow key: make, list, rotate, and
    /// move onto a PKCS#11 token.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage accounts for support and Registration Authority staff.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Move the audit trail's old events out to files, and check those files.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write every event recorded before a date (and not archived yet) to a new JSON Lines
    /// file, then delete them from the database, which keeps the file's SHA-256. Nothing is
    /// deleted unless the file was written whole.
    Archive {
        /// The first day kept, like 2026-01-01 (UTC); today or earlier.
        #[arg(long)]
        before: String,
        /// The file to write; it must not exist yet.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Check that a file is an archive on record, unchanged.
    Verify { file: PathBuf },
    /// Print the archives made.
    List,
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Create an account. Prints a one-time password and the authenticator enrolment (a QR
    /// code and an otpauth address) to hand over; at first sign-in they choose a password.
    Add {
        username: String,
        /// support (the status view, addresses masked), ra (also adds and removes holders'
        /// addresses and releases throttles) or ra-manager (also the allow list and reports).
        #[arg(long)]
        role: String,
        /// Their own 12-digit user id: they may not act on their own profile. Needed for ra
        /// and ra-manager.
        #[arg(long)]
        holder: Option<String>,
        /// Print the credentials as one line of JSON, for a script to pass on.
        #[arg(long)]
        json: bool,
    },
    /// New one-time password and authenticator for an account (lost phone, forgotten
    /// password); ends its sessions.
    Reset {
        username: String,
        /// Print the credentials as one line of JSON, for a script to pass on.
        #[arg(long)]
        json: bool,
    },
    /// Stop an account signing in; ends its sessions.
    Disable { username: String },
    /// Print the accounts.
    List,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// With `--out PATH`: write a fresh random key (card master: 16 bytes, escrow: 32, from
    /// the OS's random source) to a new file as hex digits, readable by its owner only (mode
    /// 0600) — point `card_master_key_file` at a card master key file.
    ///
    /// With `--purpose` alone: make version 1 of that key where `keys.custody` says (on the
    /// token, non-extractable, or in `keys.dir`), for a service that has no cards under the
    /// configured key. Whoever holds the card master key can unblock cards: keep it secret
    /// and backed up. An existing file or token key is never overwritten.
    Generate {
        /// Where to write a key file; the file must not exist yet.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        #[arg(long, value_enum)]
        purpose: Option<KeyPurposeArg>,
    },
    /// Make the next version of a key where `keys.custody` says; cards imported from then on
    /// are issued under it, and cards issued before keep theirs.
    Rotate {
        #[arg(long, value_enum)]
        purpose: KeyPurposeArg,
    },
    /// Put an existing file key (version 1: the configured one unless `--from` names its file)
    /// onto the PKCS#11 token, non-extractable; its cards then unlock through the token.
    Import {
        #[arg(long, value_enum)]
        purpose: KeyPurposeArg,
        #[arg(long, default_value_t = 1)]
        version: i64,
        /// The key file to import (hex digits).
        #[arg(long, value_name = "PATH")]
        from: Option<PathBuf>,
    },
    /// Print the key versions: where each is kept, which is current, and how many cards use
    /// each (never key bytes).
    List,
}

/// Which key.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KeyPurposeArg {
    /// The card master key (unlock-cr/1 cards).
    CardMaster,
    /// The PUK escrow key (piv/1 cards).
    PukEscrow,
}

#[derive(Debug, Subcommand)]
pub enum AllowlistCommand {
    /// Allow addresses in a domain (exact match: sub-domains need their own entry).
    Add { domain: String },
    /// Stop allowing a domain.
    Remove { domain: String },
    /// Print the allowed domains.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ThrottleCommand {
    /// Print the keys that are locked out now.
    List,
    /// Clear the counts and lock-outs of a holder, an email address, a client address, or
    /// a staff username's sign-in attempts.
    Release {
        #[arg(long, conflicts_with_all = ["email", "client", "staff"])]
        holder: Option<String>,
        #[arg(long, conflicts_with_all = ["client", "staff"])]
        email: Option<String>,
        #[arg(long, conflicts_with = "staff")]
        client: Option<std::net::IpAddr>,
        #[arg(long)]
        staff: Option<String>,
    },
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    telemetry::init(config.log_format);
    let clock = Clock::System;
    match cli.command {
        Command::Serve { demo } => {
            if demo {
                use_demo_card_key(&mut config)?;
            }
            serve(config, clock, demo).await
        }
        Command::Migrate => {
            let db = open(&config).await?;
            println!("database is up to date");
            db.close().await;
            Ok(())
        }
        Command::Import { csv, replace_puks } => {
            let db = open(&config).await?;
            let keys = Keys::load(&config)?;
            let custody = Custody::load(&config, &keys, db.clone())?;
            let puks = if replace_puks {
                import::Puks::Replace
            } else {
                import::Puks::KeepEscrowed
            };
            let summary =
                import::import(&db, &clock, &custody, &csv, puks, config.sms.region()).await?;
            println!("{summary}");
            db.close().await;
            Ok(())
        }
        Command::Allowlist(command) => {
            let db = open(&config).await?;
            let result = allowlist::run(&db, &clock, command).await;
            db.close().await;
            result
        }
        Command::Throttle(command) => {
            let db = open(&config).await?;
            let result = throttle_command(&db, &clock, &config, command).await;
            db.close().await;
            result
        }
        Command::Staff(command) => {
            let db = open(&config).await?;
            let result = staff::run(&db, &clock, &config, command).await;
            db.close().await;
            result
        }
        Command::Audit(command) => {
            let db = open(&config).await?;
            let result = audit_archive::run(&db, &clock, command).await;
            db.close().await;
            result
        }
        Command::Keys(KeysCommand::Generate {
            out: Some(out),
            purpose,
        }) => keys::write_file(&out, purpose),
        Command::Keys(command) => {
            let db = open(&config).await?;
            let result = keys::run(&db, &clock, &config, command).await;
            db.close().await;
            result
        }
    }
}

/// In demo mode without a configured key: the data folder's key file, created if missing.
fn use_demo_card_key(config: &mut Config) -> anyhow::Result<()> {
    if config.card_master_key.is_some() || config.card_master_key_file.is_some() {
        return Ok(());
    }
    let path = config.data_dir.join("card-master.key");
    if !path.exists() {
        custody::generate_file(&path, custody::MASTER_KEY_BYTES)?;
        tracing::warn!(path = %path.display(), "created a demo card master key (demo mode only)");
    }
    config.card_master_key_file = Some(path);
    Ok(())
}

async fn open(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(&config.database_url).await?;
    db.migrate().await?;
    Ok(db)
}

async fn serve(config: Config, clock: Clock, seed_demo: bool) -> anyhow::Result<()> {
    if seed_demo {
        let db = open(&config).await?;
        if demo::seed_if_empty(&db, &clock).await? {
            tracing::warn!(
                email = demo::DEMO_EMAIL,
                holder = demo::DEMO_HOLDER_ID,
                card = demo::DEMO_CARD_SERIAL,
                "seeded the demo holder (demo mode: never use --demo in production)"
            );
        }
        db.close().await;
    }
    let server = Server::start(config, clock).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.stop().await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn throttle_command(
    db: &Db,
    clock: &Clock,
    config: &Config,
    command: ThrottleCommand,
) -> anyhow::Result<()> {
    match command {
        ThrottleCommand::List => {
            let now = clock.now();
            for row in db::throttles::locked(&mut *db.reader().await?, now).await? {
                let minutes = (row.locked_until - now + 59_999) / 60_000;
                println!(
                    "{}\t{}\t{} hits\tlocked for {minutes} more min",
                    row.scope, row.key, row.hits
                );
            }
            Ok(())
        }
        ThrottleCommand::Release {
            holder,
            email,
            client,
            staff,
        } => {
            if let Some(username) = staff {
                let username = unlock_protocol::staff::StaffUsername::parse(&username)?;
                let key = Keys::load(config)?.staff_subject(username.as_str());
                return release(db, clock, key).await;
            }
            let key = match (holder, email, client) {
                (Some(holder), ..) => format!("holder:{}", HolderId::parse(&holder)?),
                (_, Some(email), _) => {
                    let email = EmailAddress::parse(&email)?;
                    let mut conn = db.reader().await?;
                    match db::holder_emails::owner_of(&mut conn, email.as_str()).await? {
                        Some(id) => format!("holder:{id}"),
                        None => Keys::load(config)?.email_subject(email.as_str()),
                    }
                }
                (_, _, Some(client)) => crate::http::client_addr::throttle_key(&client.to_string()),
                _ => anyhow::bail!("say which throttle to release: --holder, --email or --client"),
            };
            release(db, clock, key).await
        }
    }
}

/// Releases every throttle on `key`, audited, and says how many.
async fn release(db: &Db, clock: &Clock, key: String) -> anyhow::Result<()> {
    let holder_id = key.strip_prefix("holder:");
    let job_key = key.clone();
    let action = Action::ThrottleRelease;
    let released = audit::operator_write(db, clock, holder_id, action, move |conn, _| {
        let key = job_key.clone();
        Box::pin(async move {
            let released = throttle::release(conn, &key).await?;
            Ok(Audited::done(Outcome::Done, Some(key), released))
        })
    })
    .await?;
    println!("released {released} throttle(s) for {key}");
    Ok(())
}
