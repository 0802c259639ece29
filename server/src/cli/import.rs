//! `unlock-server import <csv>`: holders, their emails and cards, in one transaction.
//!
//! Columns: `holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model`,
//! and `card_puk` for PIV cards, and `mobiles` for holders' mobile numbers. `emails` holds
//! addresses separated by `;`, `mobiles` numbers (stored in E.164 form; one without a country
//! code is read as a number of `sms.default_region`); the card columns
//! may be empty for a holder without a card; `cert_expires` is a date (`YYYY-MM-DD`,
//! certificates valid through that day, UTC). A holder may span several rows (one per card).
//!
//! A `piv/1` card is named by its GUID (32 hex digits, or a UUID) in `card_serial`, and
//! `card_puk` is its PUK as the card management system set it (8 digits): it is sealed
//! before it is stored, kept only the first time the card is imported (the service rotates
//! it from then on), and never printed. Other models have no PUK.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use time::macros::format_description;
use unlock_protocol::piv::Puk;
use unlock_protocol::{CardGuid, CardId, CardSerial, CardStatus, EmailAddress, HolderId, piv};

use crate::audit::{self, Action, Audited, Outcome};
use crate::clock::{Clock, Millis};
use crate::custody::Custody;
use crate::db::cards::CardRecord;
use crate::db::holder_emails::Added;
use crate::db::key_versions;
use crate::db::states::KeyPurpose;
use crate::db::{self, Conn, Db, Savepoint};
use crate::mobile::MobileNumber;

/// A country, for numbers typed without their country code.
pub type Region = phonenumber::country::Id;

#[derive(Debug, Deserialize)]
struct Row {
    holder_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    emails: String,
    #[serde(default)]
    card_serial: String,
    #[serde(default)]
    card_status: String,
    #[serde(default)]
    cert_expires: String,
    #[serde(default)]
    card_model: String,
    #[serde(default)]
    card_puk: String,
    #[serde(default)]
    mobiles: String,
}

/// What an import changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows: usize,
    pub emails: usize,
    pub cards: usize,
    pub mobiles: usize,
    /// Addresses whose domain is not on the allow list (imported, but unusable until it is).
    pub emails_not_allowed: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {} rows: {} emails, {} cards",
            self.rows, self.emails, self.cards
        )?;
        if self.mobiles > 0 {
            write!(f, ", {} mobile numbers", self.mobiles)?;
        }
        if self.emails_not_allowed > 0 {
            write!(
                f,
                "; {} emails are on domains that are not allow-listed",
                self.emails_not_allowed
            )?;
        }
        Ok(())
    }
}

/// What an import does with the PUK of a PIV card already on record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Puks {
    /// Keep the escrowed PUK: the service has rotated it since the card management system
    /// set the one in the file.
    KeepEscrowed,
    /// Replace it (and forget any rotation not yet confirmed): the card management system
    /// has reset the card's PUK to the one in the file.
    Replace,
}

struct Card {
    id: CardId,
    record: CardRecord,
    /// A PIV card's escrowed PUK.
    puk: Option<Puk>,
}

/// Imports the file, all or nothing; every bad row is reported with its line number.
pub async fn import(
    db: &Db,
    clock: &Clock,
    custody: &Custody,
    path: &Path,
    puks: Puks,
    region: Option<Region>,
) -> anyhow::Result<Summary> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("open {}", path.display()))?;
    // Line numbers count the header as line 1.
    let rows: Arc<Vec<(usize, Result<Row, String>)>> = Arc::new(
        reader
            .deserialize::<Row>()
            .enumerate()
            .map(|(index, row)| (index + 2, row.map_err(|error| error.to_string())))
            .collect(),
    );
    let versions = Versions::current(db).await?;
    // PUKs are sealed before the write, so a key on a token is never asked while it is open.
    let mut sealed = HashMap::new();
    for (line, row) in rows.iter() {
        if let Ok(row) = row
            && let Ok(Some(Card {
                id, puk: Some(puk), ..
            })) = parse_card(row)
        {
            let puk = custody
                .seal_puk(versions.escrow, &id, &puk)
                .await
                .with_context(|| format!("line {line}: seal the card's PUK"))?;
            sealed.insert(*line, puk);
        }
    }
    let sealed = Arc::new(sealed);
    let action = Action::HoldersImport;
    audit::operator_write(db, clock, None, action, move |conn, now| {
        let (rows, sealed) = (rows.clone(), sealed.clone());
        Box::pin(async move {
            let options = Options {
                versions,
                puks,
                region,
            };
            let summary = import_rows(conn, &rows, &sealed, options, now).await?;
            Ok(Audited::done(
                Outcome::Done,
                Some(summary.to_string()),
                summary,
            ))
        })
    })
    .await
}

/// How rows are read and stored.
#[derive(Debug, Clone, Copy)]
struct Options {
    versions: Versions,
    puks: Puks,
    region: Option<Region>,
}

/// The key versions new cards are issued under.
#[derive(Debug, Clone, Copy)]
struct Versions {
    card_master: i64,
    escrow: i64,
}

impl Versions {
    async fn current(db: &Db) -> anyhow::Result<Self> {
        let mut conn = db.reader().await?;
        Ok(Self {
            card_master: key_versions::current(&mut conn, KeyPurpose::CardMaster).await?,
            escrow: key_versions::current(&mut conn, KeyPurpose::PukEscrow).await?,
        })
    }
}

/// Imports every row inside the caller's transaction, or fails naming each bad row.
/// `sealed` has each line's PUK, sealed.
async fn import_rows(
    conn: &mut Conn,
    rows: &[(usize, Result<Row, String>)],
    sealed: &HashMap<usize, Vec<u8>>,
    options: Options,
    now: Millis,
) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let mut problems = Vec::new();
    for (line, row) in rows {
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                problems.push(format!("line {line}: {error}"));
                continue;
            }
        };
        // A row that fails is undone alone, so the rows after it are still checked (on
        // PostgreSQL a failed statement would otherwise void the rest of the transaction).
        db::savepoint(conn, Savepoint::Mark).await?;
        let sealed = sealed.get(line).map(Vec::as_slice);
        match import_row(conn, row, sealed, options, now, &mut summary).await {
            Ok(()) => {
                summary.rows += 1;
                db::savepoint(conn, Savepoint::Keep).await?;
            }
            Err(error) => {
                problems.push(format!("line {line}: {error:#}"));
                db::savepoint(conn, Savepoint::Undo).await?;
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "nothing was imported; fix these rows and try again:\n{}",
            problems.join("\n")
        );
    }
    Ok(summary)
}

async fn import_row(
    conn: &mut Conn,
    row: &Row,
    sealed: Option<&[u8]>,
    options: Options,
    now: Millis,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let Options {
        versions,
        puks,
        region,
    } = options;
    let holder = HolderId::parse(&row.holder_id).map_err(|e| anyhow::anyhow!("holder_id: {e}"))?;
    let emails = row
        .emails
        .split(';')
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            EmailAddress::parse(e).map_err(|error| anyhow::anyhow!("email {:?}: {error}", e.trim()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mobiles = row
        .mobiles
        .split(';')
        .filter(|m| !m.trim().is_empty())
        .map(|m| {
            MobileNumber::parse(m, region)
                .map_err(|error| anyhow::anyhow!("mobile {:?}: {error}", m.trim()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let card = parse_card(row)?;

    db::holders::save(conn, holder.as_str(), &row.name, &row.organisation, now).await?;

    for email in &emails {
        let added =
            db::holder_emails::add(conn, email.as_str(), holder.as_str(), now, "import", false)
                .await?;
        if let Added::Taken { owner } = added
            && owner != holder.as_str()
        {
            bail!("email {email} already belongs to another holder");
        }
        let allowed = db::allowed_domains::contains(conn, email.domain()).await?;
        summary.emails += 1;
        summary.emails_not_allowed += usize::from(!allowed);
    }

    for number in &mobiles {
        let added =
            db::holder_mobiles::add(conn, number.as_str(), holder.as_str(), now, "import", false)
                .await?;
        if let Added::Taken { owner } = added
            && owner != holder.as_str()
        {
            bail!("mobile {number} already belongs to another holder");
        }
        summary.mobiles += 1;
    }

    if let Some(card) = card {
        let sealed = card.puk.as_ref().and(sealed);
        // A PIV card's key is the escrow key sealing its PUK; others derive theirs from the
        // card master key.
        let version = if card.record.model == piv::PROFILE {
            versions.escrow
        } else {
            versions.card_master
        };
        let owner = db::cards::save(
            conn,
            card.id.as_str(),
            holder.as_str(),
            &card.record,
            sealed,
            version,
            now,
        )
        .await?;
        if owner != holder.as_str() {
            bail!("card {} already belongs to another holder", card.id);
        }
        if let (Some(sealed), Puks::Replace) = (sealed, puks) {
            db::cards::replace_puk(conn, card.id.as_str(), sealed, versions.escrow, now).await?;
        }
        summary.cards += 1;
    }
    Ok(())
}

fn parse_card(row: &Row) -> anyhow::Result<Option<Card>> {
    if row.card_serial.is_empty() {
        if !(row.card_status.is_empty()
            && row.cert_expires.is_empty()
            && row.card_model.is_empty()
            && row.card_puk.is_empty())
        {
            bail!("card_serial is empty but other card columns are filled in");
        }
        return Ok(None);
    }
    // A PIV card is named by its GUID and escrows its PUK; other models have neither.
    let (id, puk) = if row.card_model == piv::PROFILE {
        let guid = CardGuid::parse(&row.card_serial)
            .map_err(|e| anyhow::anyhow!("card_serial of a {} card: {e}", piv::PROFILE))?;
        // The error names the column only: the value is a secret.
        let puk = Puk::parse(&row.card_puk)
            .map_err(|e| anyhow::anyhow!("card_puk of a {} card: {e}", piv::PROFILE))?;
        (CardId::from(guid), Some(puk))
    } else {
        if !row.card_puk.is_empty() {
            bail!("card_puk is only for {} cards", piv::PROFILE);
        }
        let serial =
            CardSerial::parse(&row.card_serial).map_err(|e| anyhow::anyhow!("card_serial: {e}"))?;
        (CardId::from(serial), None)
    };
    let Some(status) = CardStatus::from_name(&row.card_status.to_ascii_lowercase()) else {
        bail!(
            "card_status must be active, suspended or cancelled, not {:?}",
            row.card_status
        );
    };
    let date = time::Date::parse(
        &row.cert_expires,
        format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        anyhow::anyhow!(
            "cert_expires must be a date like 2027-03-31, not {:?}",
            row.cert_expires
        )
    })?;
    // Valid through the whole day: they expire at the next midnight, UTC.
    let expires_at = (date.midnight().assume_utc().unix_timestamp() + 86_400) * 1000;
    if row.card_model.is_empty() {
        bail!("card_model is empty");
    }
    Ok(Some(Card {
        id,
        puk,
        record: CardRecord {
            status,
            cert_expires_at: expires_at,
            model: row.card_model.clone(),
        },
    }))
}
