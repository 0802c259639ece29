//! `unlock-server import <csv>`: holders, their emails and cards, in one transaction.
//!
//! Columns: `holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model`.
//! `emails` holds addresses separated by `;`; the card columns may be empty for a holder
//! without a card; `cert_expires` is a date (`YYYY-MM-DD`, certificates valid through that
//! day, UTC). A holder may span several rows (one per card).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use time::macros::format_description;
use unlock_protocol::{CardSerial, CardStatus, EmailAddress, HolderId};

use crate::audit::{self, Action, Audited, Outcome};
use crate::clock::{Clock, Millis};
use crate::db::cards::CardRecord;
use crate::db::holder_emails::Added;
use crate::db::{self, Conn, Db, Savepoint};

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
}

/// What an import changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows: usize,
    pub emails: usize,
    pub cards: usize,
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

struct Card {
    serial: CardSerial,
    record: CardRecord,
}

/// Imports the file, all or nothing; every bad row is reported with its line number.
pub async fn import(db: &Db, clock: &Clock, path: &Path) -> anyhow::Result<Summary> {
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
    let action = Action::HoldersImport;
    audit::operator_write(db, clock, None, action, move |conn, now| {
        let rows = rows.clone();
        Box::pin(async move {
            let summary = import_rows(conn, &rows, now).await?;
            Ok(Audited::done(
                Outcome::Done,
                Some(summary.to_string()),
                summary,
            ))
        })
    })
    .await
}

/// Imports every row inside the caller's transaction, or fails naming each bad row.
async fn import_rows(
    conn: &mut Conn,
    rows: &[(usize, Result<Row, String>)],
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
        match import_row(conn, row, now, &mut summary).await {
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
    now: Millis,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let holder = HolderId::parse(&row.holder_id).map_err(|e| anyhow::anyhow!("holder_id: {e}"))?;
    let emails = row
        .emails
        .split(';')
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            EmailAddress::parse(e).map_err(|error| anyhow::anyhow!("email {:?}: {error}", e.trim()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let card = parse_card(row)?;

    db::holders::save(conn, holder.as_str(), &row.name, &row.organisation, now).await?;

    for email in &emails {
        let added =
            db::holder_emails::add(conn, email.as_str(), holder.as_str(), now, "import").await?;
        if let Added::Taken { owner } = added
            && owner != holder.as_str()
        {
            bail!("email {email} already belongs to another holder");
        }
        let allowed = db::allowed_domains::contains(conn, email.domain()).await?;
        summary.emails += 1;
        summary.emails_not_allowed += usize::from(!allowed);
    }

    if let Some(card) = card {
        let owner = db::cards::save(
            conn,
            card.serial.as_str(),
            holder.as_str(),
            &card.record,
            now,
        )
        .await?;
        if owner != holder.as_str() {
            bail!("card {} already belongs to another holder", card.serial);
        }
        summary.cards += 1;
    }
    Ok(())
}

fn parse_card(row: &Row) -> anyhow::Result<Option<Card>> {
    if row.card_serial.is_empty() {
        if !(row.card_status.is_empty() && row.cert_expires.is_empty() && row.card_model.is_empty())
        {
            bail!("card_serial is empty but other card columns are filled in");
        }
        return Ok(None);
    }
    let serial =
        CardSerial::parse(&row.card_serial).map_err(|e| anyhow::anyhow!("card_serial: {e}"))?;
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
        serial,
        record: CardRecord {
            status,
            cert_expires_at: expires_at,
            model: row.card_model.clone(),
        },
    }))
}
