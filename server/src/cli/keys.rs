//! `unlock-server keys`: key versions of the card master key and the PUK escrow key — make
//! them (in a file or on the token), list them, rotate to a new one, and move a file key onto
//! a token. Key bytes are never printed or audited: only versions, custodies and labels.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

use super::{KeyPurposeArg, KeysCommand};
use crate::audit::{self, Action, Audited, Outcome};
use crate::clock::Clock;
use crate::config::{Config, Custody as NewKeysIn};
use crate::custody::{self, Pkcs11Settings, Token, key_bytes, label};
use crate::db::Db;
use crate::db::key_versions;
use crate::db::states::{CustodyKind, KeyPurpose};
use crate::secrets::Keys;

/// `keys generate --out PATH`: a fresh key in a new file (the card master key unless
/// `purpose` says otherwise); no database is needed.
pub fn write_file(out: &Path, purpose: Option<KeyPurposeArg>) -> anyhow::Result<()> {
    let purpose = purpose.map_or(KeyPurpose::CardMaster, KeyPurpose::from);
    custody::generate_file(out, key_bytes(purpose))?;
    println!("wrote a new {} key to {}", purpose.human(), out.display());
    Ok(())
}

pub async fn run(
    db: &Db,
    clock: &Clock,
    config: &Config,
    command: KeysCommand,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate {
            out: Some(out),
            purpose,
        } => write_file(&out, purpose),
        KeysCommand::Generate { out: None, purpose } => {
            let Some(purpose) = purpose else {
                bail!(
                    "say which key: --purpose card-master or --purpose puk-escrow (or --out PATH for a key file)"
                );
            };
            let purpose = KeyPurpose::from(purpose);
            let (current, on_record) = versions_of(db, purpose).await?;
            let in_use = cards_under(db, purpose, current).await?;
            if on_record || in_use > 0 {
                bail!(
                    "the {purpose} key has version {current} in use already; `keys rotate` makes \
                     the next version (and `keys import` moves a file key onto the token)"
                );
            }
            make_version(db, clock, config, purpose, 1, Action::KeysGenerate).await
        }
        KeysCommand::Rotate { purpose } => {
            let purpose = KeyPurpose::from(purpose);
            let (current, _) = versions_of(db, purpose).await?;
            make_version(db, clock, config, purpose, current + 1, Action::KeysRotate).await
        }
        KeysCommand::Import {
            purpose,
            version,
            from,
        } => {
            import(
                db,
                clock,
                config,
                KeyPurpose::from(purpose),
                version,
                from.as_deref(),
            )
            .await
        }
        KeysCommand::List => list(db).await,
    }
}

/// The current version of `purpose`, and whether any version of it is on record.
async fn versions_of(db: &Db, purpose: KeyPurpose) -> anyhow::Result<(i64, bool)> {
    let mut conn = db.reader().await?;
    let current = key_versions::current(&mut conn, purpose).await?;
    let on_record = key_versions::all(&mut conn)
        .await?
        .iter()
        .any(|row| row.purpose == purpose);
    Ok((current, on_record))
}

/// The card model whose cards a key of `purpose` serves.
fn model_of(purpose: KeyPurpose) -> &'static str {
    match purpose {
        KeyPurpose::CardMaster => unlock_protocol::card_profile::PROFILE,
        KeyPurpose::PukEscrow => unlock_protocol::piv::PROFILE,
    }
}

async fn cards_under(db: &Db, purpose: KeyPurpose, version: i64) -> anyhow::Result<i64> {
    let mut conn = db.reader().await?;
    let counts = key_versions::cards_per_version(&mut conn, model_of(purpose)).await?;
    Ok(counts
        .into_iter()
        .find(|(v, _)| *v == version)
        .map_or(0, |(_, count)| count))
}

fn token(config: &Config) -> anyhow::Result<Token> {
    let settings = Pkcs11Settings::from_config(config)?.context(
        "no token is configured: set keys.pkcs11_module, keys.pkcs11_token_label and the PIN",
    )?;
    Ok(Token::new(settings))
}

/// Makes version `version` of `purpose` where `keys.custody` says, then records it.
async fn make_version(
    db: &Db,
    clock: &Clock,
    config: &Config,
    purpose: KeyPurpose,
    version: i64,
    action: Action,
) -> anyhow::Result<()> {
    let name = label(purpose, version);
    let custody = match config.keys.custody {
        NewKeysIn::Pkcs11 => {
            let token = token(config)?;
            let uses = custody::token_uses(purpose);
            let job_name = name.clone();
            tokio::task::spawn_blocking(move || {
                token.generate(&job_name, key_bytes(purpose), &uses)
            })
            .await
            .context("make the key on the token")??;
            CustodyKind::Pkcs11
        }
        NewKeysIn::File => {
            let path = key_file(config, &name);
            custody::generate_file(&path, key_bytes(purpose))?;
            CustodyKind::File
        }
    };
    record(db, clock, purpose, version, custody, action).await?;
    println!(
        "{} key version {version} made ({}, {name}); it is the current version: cards \
         imported from now on are issued under it",
        purpose.human(),
        where_kept(custody)
    );
    if custody == CustodyKind::File {
        println!(
            "copy {} to every server instance's keys folder, and back it up safely",
            key_file(config, &name).display()
        );
    }
    Ok(())
}

/// Puts an existing file key onto the token as version `version` of `purpose`: the cards
/// issued under it keep working, now through the token.
async fn import(
    db: &Db,
    clock: &Clock,
    config: &Config,
    purpose: KeyPurpose,
    version: i64,
    from: Option<&Path>,
) -> anyhow::Result<()> {
    let token = token(config)?;
    let on_record = {
        let mut conn = db.reader().await?;
        key_versions::all(&mut conn)
            .await?
            .into_iter()
            .find(|row| row.purpose == purpose && row.version == version)
    };
    if on_record
        .as_ref()
        .is_some_and(|row| row.custody == CustodyKind::Pkcs11)
    {
        bail!("{purpose} key version {version} is on the token already");
    }
    if on_record.is_none() && version != 1 {
        bail!("{purpose} key version {version} is not on record (see `keys list`)");
    }
    let bytes = source_key(config, purpose, on_record.as_ref(), from)?;
    let name = label(purpose, version);
    let uses = custody::token_uses(purpose);
    let job_name = name.clone();
    tokio::task::spawn_blocking(move || token.import(&job_name, &bytes, &uses))
        .await
        .context("put the key on the token")??;
    let job_name = name.clone();
    audit::operator_write(db, clock, None, Action::KeysImport, move |conn, now| {
        let name = job_name.clone();
        Box::pin(async move {
            let moved =
                key_versions::move_custody(conn, purpose, version, CustodyKind::Pkcs11, &name)
                    .await?
                    || custody::record_version(conn, purpose, version, CustodyKind::Pkcs11, now)
                        .await?;
            if !moved {
                bail!("{purpose} key version {version} changed while it was imported");
            }
            let detail = format!("{purpose} v{version} moved onto the token as {name}");
            Ok(Audited::done(Outcome::Done, Some(detail), ()))
        })
    })
    .await?;
    println!(
        "{purpose} key version {version} is on the token as {name}; restart every server \
         instance, then remove the key file from the servers (keep only the offline backup)"
    );
    Ok(())
}

/// The bytes of an existing file-custody key: `--from`, else where the version is kept.
fn source_key(
    config: &Config,
    purpose: KeyPurpose,
    on_record: Option<&key_versions::KeyVersionRow>,
    from: Option<&Path>,
) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if let Some(from) = from {
        return custody::read_key(from, key_bytes(purpose));
    }
    if let Some(row) = on_record {
        return custody::read_key(&key_file(config, &row.label), key_bytes(purpose));
    }
    match purpose {
        KeyPurpose::CardMaster => custody::configured_master(config)?
            .context("no card master key is configured; name its file with --from"),
        KeyPurpose::PukEscrow => {
            let keys = Keys::load(config)?;
            Ok(Zeroizing::new(keys.escrow_key_v1().to_vec()))
        }
    }
}

async fn record(
    db: &Db,
    clock: &Clock,
    purpose: KeyPurpose,
    version: i64,
    custody_kind: CustodyKind,
    action: Action,
) -> anyhow::Result<()> {
    audit::operator_write(db, clock, None, action, move |conn, now| {
        Box::pin(async move {
            if !custody::record_version(conn, purpose, version, custody_kind, now).await? {
                bail!(
                    "{purpose} key version {version} was made by someone else at the same time; \
                     the key {} just made is unused",
                    label(purpose, version)
                );
            }
            let detail = format!("{purpose} v{version} in {}", custody_kind.as_str());
            Ok(Audited::done(Outcome::Done, Some(detail), ()))
        })
    })
    .await
}

async fn list(db: &Db) -> anyhow::Result<()> {
    let mut conn = db.reader().await?;
    let rows = key_versions::all(&mut conn).await?;
    println!(
        "{:<12} {:>7}  {:<8} {:<24} {:>6}  current",
        "purpose", "version", "custody", "label", "cards"
    );
    for purpose in KeyPurpose::ALL.iter().copied() {
        let counts = key_versions::cards_per_version(&mut conn, model_of(purpose)).await?;
        let cards = |version: i64| {
            counts
                .iter()
                .find(|(v, _)| *v == version)
                .map_or(0, |(_, n)| *n)
        };
        let current = key_versions::current(&mut conn, purpose).await?;
        let mine: Vec<_> = rows.iter().filter(|row| row.purpose == purpose).collect();
        if !mine.iter().any(|row| row.version == 1) {
            let configured = match purpose {
                KeyPurpose::CardMaster => "(configured key)",
                KeyPurpose::PukEscrow => "(from the secret)",
            };
            print_row(purpose, 1, "file", configured, cards(1), current == 1);
        }
        for row in mine {
            print_row(
                purpose,
                row.version,
                row.custody.as_str(),
                &row.label,
                cards(row.version),
                current == row.version,
            );
        }
    }
    Ok(())
}

fn print_row(
    purpose: KeyPurpose,
    version: i64,
    custody: &str,
    label: &str,
    cards: i64,
    current: bool,
) {
    let mark = if current { "yes" } else { "" };
    println!(
        "{:<12} {version:>7}  {custody:<8} {label:<24} {cards:>6}  {mark}",
        purpose.as_str()
    );
}

fn where_kept(custody: CustodyKind) -> &'static str {
    match custody {
        CustodyKind::File => "in a key file",
        CustodyKind::Pkcs11 => "on the token, non-extractable",
    }
}

fn key_file(config: &Config, name: &str) -> PathBuf {
    config.keys.dir(config).join(format!("{name}.key"))
}

impl From<KeyPurposeArg> for KeyPurpose {
    fn from(arg: KeyPurposeArg) -> Self {
        match arg {
            KeyPurposeArg::CardMaster => Self::CardMaster,
            KeyPurposeArg::PukEscrow => Self::PukEscrow,
        }
    }
}
