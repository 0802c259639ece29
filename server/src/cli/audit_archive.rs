//! `unlock-server audit archive | verify | list`: the audit trail's old events moved out to a
//! file, without any event ever being changed.
//!
//! `archive` writes every event recorded before a past date (and after the last archive) to a
//! new JSON Lines file, one event per line as stored, flushes it to disk, and then, in one
//! audited transaction, records the file's SHA-256 in `audit_archives` and deletes those
//! events. Both engines refuse to delete an event no archive holds, and the archive records
//! can never be changed or deleted, so the trail stays append-only: what leaves it is in a
//! file whose digest the database keeps. `verify` checks a file against that record.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use sha2::{Digest, Sha256};

use super::AuditCommand;
use crate::audit::{self, Action, Audited, Outcome};
use crate::clock::{Clock, Millis, date_time_utc};
use crate::db::{self, Db, audit::Archive};

const DAY: Millis = 86_400_000;
/// Events read and written at a time.
const PAGE: i64 = 5000;

pub async fn run(db: &Db, clock: &Clock, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Archive { before, out } => archive(db, clock, &before, &out).await,
        AuditCommand::Verify { file } => verify(db, &file).await,
        AuditCommand::List => {
            for archive in db::audit::archives(db.read_pool()).await? {
                println!("{}", describe(&archive));
            }
            Ok(())
        }
    }
}

async fn archive(db: &Db, clock: &Clock, before: &str, out: &Path) -> anyhow::Result<()> {
    let before_at = crate::staff::audit_log::parse_day(before)
        .with_context(|| format!("--before takes a date like 2026-01-01, not {before:?}"))?;
    let now = clock.now();
    // Only whole past days: no event before the date can still be on its way in.
    ensure!(
        before_at <= now - now.rem_euclid(DAY),
        "--before must be today or earlier: only whole past days are archived"
    );
    let pool = db.read_pool();
    let archived = db::audit::archives(pool)
        .await?
        .last()
        .map_or(0, |archive| archive.through_id);
    let through = match db::audit::last_id_before(pool, before_at).await? {
        Some(through) if through > archived => through,
        _ => {
            println!("no events before {before} are left to archive");
            return Ok(());
        }
    };
    let file = write_file(db, archived, through, out).await?;
    let archive = Archive {
        through_id: through,
        events: file.events,
        first_at: file.first_at,
        last_at: file.last_at,
        sha256: file.sha256,
        file_name: out.display().to_string(),
        archived_at: now,
    };
    let detail = describe(&archive);
    let record = archive.clone();
    let deleted = audit::operator_write(db, clock, None, Action::AuditArchive, move |conn, _| {
        let (record, detail) = (record.clone(), detail.clone());
        Box::pin(async move {
            let deleted = db::audit::archive(conn, &record).await?;
            if i64::try_from(deleted)? != record.events {
                bail!(
                    "{deleted} events were to be deleted but the file holds {}: the trail \
                     changed while it was written. Nothing was deleted",
                    record.events
                );
            }
            Ok(Audited::done(Outcome::Done, Some(detail), deleted))
        })
    })
    .await
    .with_context(|| {
        format!(
            "{} was written but not recorded; remove it before archiving again",
            out.display()
        )
    })?;
    println!("archived {deleted} events: {}", describe(&archive));
    Ok(())
}

/// What [`write_file`] wrote.
struct Written {
    events: i64,
    first_at: Option<Millis>,
    last_at: Option<Millis>,
    sha256: String,
}

/// Writes the events after id `after` through id `through` to a new file at `out`, one JSON
/// object a line, and flushes it to disk before it takes its name.
async fn write_file(db: &Db, after: i64, through: i64, out: &Path) -> anyhow::Result<Written> {
    ensure!(
        !out.exists(),
        "{} exists already: an archive is never overwritten",
        out.display()
    );
    let partial = out.with_extension("partial");
    let mut file = std::fs::File::create_new(&partial)
        .with_context(|| format!("create {}", partial.display()))?;
    let mut digest = Sha256::new();
    let mut written = Written {
        events: 0,
        first_at: None,
        last_at: None,
        sha256: String::new(),
    };
    let mut last_id = after;
    loop {
        let page = db::audit::page(db.read_pool(), last_id, through, PAGE).await?;
        let Some(last) = page.last() else { break };
        last_id = last.id;
        let mut lines = Vec::new();
        for event in &page {
            serde_json::to_writer(&mut lines, event)?;
            lines.push(b'\n');
            written.first_at.get_or_insert(event.at);
            written.last_at = Some(written.last_at.map_or(event.at, |at| at.max(event.at)));
        }
        written.events += i64::try_from(page.len())?;
        digest.update(&lines);
        file.write_all(&lines)
            .with_context(|| format!("write {}", partial.display()))?;
    }
    file.sync_all()
        .with_context(|| format!("flush {}", partial.display()))?;
    std::fs::rename(&partial, out).with_context(|| format!("name {}", out.display()))?;
    if let Some(folder) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(folder)?.sync_all()?;
    }
    written.sha256 = hex::encode(digest.finalize());
    Ok(written)
}

/// Checks that `file` is, byte for byte, an archive the database has a record of.
async fn verify(db: &Db, file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let lines = i64::try_from(bytes.iter().filter(|b| **b == b'\n').count())?;
    let archives = db::audit::archives(db.read_pool()).await?;
    let Some(archive) = archives.iter().find(|archive| archive.sha256 == sha256) else {
        bail!(
            "{} matches no archive on record (SHA-256 {sha256}): it is not one, or it was changed",
            file.display()
        );
    };
    ensure!(
        lines == archive.events,
        "{} has {lines} lines but its archive holds {} events",
        file.display(),
        archive.events
    );
    println!("{} is intact: {}", file.display(), describe(archive));
    Ok(())
}

fn describe(archive: &Archive) -> String {
    let span = match (archive.first_at, archive.last_at) {
        (Some(first), Some(last)) => {
            format!(" from {} to {}", date_time_utc(first), date_time_utc(last))
        }
        _ => String::new(),
    };
    format!(
        "{} events through id {}{span} in {} (SHA-256 {}), archived {}",
        archive.events,
        archive.through_id,
        archive.file_name,
        archive.sha256,
        date_time_utc(archive.archived_at)
    )
}
