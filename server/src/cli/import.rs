//! `unlock-server import <csv>`: holders, their emails and cards, in one transaction.
//!
//! Columns: `holder_id,name,organisation,emails,card_serial,card_status,cert_expires,card_model`.
//! `emails` holds addresses separated by `;`; the card columns may be empty for a holder
//! without a card; `cert_expires` is a date (`YYYY-MM-DD`, certificates valid through that
//! day, UTC). A holder may span several rows (one per card).

use std::fmt;
use std::path::Path;

use crate::db::Conn;
use anyhow::{Context, bail};
use serde::Deserialize;
use sqlx::Executor;
use time::macros::format_description;
use unlock_protocol::{CardSerial, EmailAddress, HolderId};

use crate::audit::{self, Event};
use crate::clock::Millis;
use crate::db::Db;

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
    status: String,
    expires_at: Millis,
    model: String,
}

/// Imports the file, all or nothing; every bad row is reported with its line number.
pub async fn import(db: &Db, path: &Path, now: Millis) -> anyhow::Result<Summary> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("open {}", path.display()))?;
    let mut tx = db.begin().await?;
    let mut summary = Summary::default();
    let mut problems = Vec::new();
    for (index, record) in reader.deserialize::<Row>().enumerate() {
        let line = index + 2;
        let row = match record {
            Ok(row) => row,
            Err(error) => {
                problems.push(format!("line {line}: {error}"));
                continue;
            }
        };
        // A row that fails is undone alone, so the rows after it are still checked (on
        // PostgreSQL a failed statement would otherwise void the rest of the transaction).
        (&mut *tx)
            .execute("SAVEPOINT import_row")
            .await
            .context("mark a row")?;
        match import_row(&mut tx, &row, now, &mut summary).await {
            Ok(()) => {
                summary.rows += 1;
                (&mut *tx)
                    .execute("RELEASE SAVEPOINT import_row")
                    .await
                    .context("keep a row")?;
            }
            Err(error) => {
                problems.push(format!("line {line}: {error:#}"));
                (&mut *tx)
                    .execute("ROLLBACK TO SAVEPOINT import_row")
                    .await
                    .context("undo a row")?;
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "nothing was imported; fix these rows and try again:\n{}",
            problems.join("\n")
        );
    }
    let detail = summary.to_string();
    audit::record(
        &mut tx,
        now,
        Event {
            actor: "operator",
            action: "holders.import",
            outcome: "done",
            detail: Some(&detail),
            ..Event::default()
        },
    )
    .await?;
    tx.commit().await.context("commit the import")?;
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

    sqlx::query(
        "INSERT INTO holders (id, display_name, organisation, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET
             display_name = CASE WHEN $2 = '' THEN holders.display_name ELSE $2 END,
             organisation = CASE WHEN $3 = '' THEN holders.organisation ELSE $3 END",
    )
    .bind(holder.as_str())
    .bind(&row.name)
    .bind(&row.organisation)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("save the holder")?;

    for email in &emails {
        let owner: Option<String> = sqlx::query_scalar(
            "INSERT INTO holder_emails (email, holder_id, added_at, added_by) VALUES ($1, $2, $3, 'import')
             ON CONFLICT (email) DO UPDATE SET email = holder_emails.email RETURNING holder_id",
        )
        .bind(email.as_str())
        .bind(holder.as_str())
        .bind(now)
        .fetch_optional(&mut *conn)
        .await
        .context("save an email")?;
        if owner
            .as_deref()
            .is_some_and(|owner| owner != holder.as_str())
        {
            bail!("email {email} already belongs to another holder");
        }
        let allowed: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM allowed_domains WHERE domain = $1")
                .bind(email.domain())
                .fetch_optional(&mut *conn)
                .await
                .context("check the allow list")?;
        summary.emails += 1;
        summary.emails_not_allowed += usize::from(allowed.is_none());
    }

    if let Some(card) = card {
        let owner: String = sqlx::query_scalar(
            "INSERT INTO cards (serial, holder_id, status, cert_expires_at, model, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (serial) DO UPDATE SET status = $3, cert_expires_at = $4, model = $5, updated_at = $6
             RETURNING holder_id",
        )
        .bind(card.serial.as_str())
        .bind(holder.as_str())
        .bind(&card.status)
        .bind(card.expires_at)
        .bind(&card.model)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .context("save the card")?;
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
    let status = row.card_status.to_ascii_lowercase();
    if !matches!(status.as_str(), "active" | "suspended" | "cancelled") {
        bail!(
            "card_status must be active, suspended or cancelled, not {:?}",
            row.card_status
        );
    }
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
        status,
        expires_at,
        model: row.card_model.clone(),
    }))
}
