//! What durability costs here: the SQLite settings actually in force, and a sync's price.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

/// `journal_mode=… synchronous=…` as SQLite reports them for a connection opened with
/// the server's own options.
pub async fn sqlite_settings(url: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let options = unlock_server::db::sqlite_baseline_options(url)?;
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .context("open the database")?;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .context("read journal_mode")?;
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut conn)
        .await
        .context("read synchronous")?;
    let synchronous = match synchronous {
        0 => "OFF",
        1 => "NORMAL",
        2 => "FULL",
        3 => "EXTRA",
        _ => "unknown",
    };
    conn.close().await.context("close the database")?;
    Ok(format!(
        "journal_mode={} synchronous={synchronous}",
        journal.to_uppercase()
    ))
}

/// Median cost of a durable small write in `dir`, two ways: `(overwrite, append)`.
///
/// Overwriting a page then `fdatasync` is what a reused WAL mostly costs; appending then
/// `fsync` also commits file-size metadata to the ext4 journal, so it is the dearer case.
pub fn sync_costs(dir: &Path, rounds: usize) -> anyhow::Result<(Duration, Duration)> {
    let path = dir.join("sync.probe");
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
    let page = [0u8; 4096];
    file.write_all(&page).context("write the probe")?;
    file.sync_all().context("fsync the probe")?;
    let overwrite = median(rounds, || {
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&page)?;
        file.sync_data()
    })?;
    let append = median(rounds, || {
        file.seek(SeekFrom::End(0))?;
        file.write_all(&page[..200])?;
        file.sync_all()
    })?;
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok((overwrite, append))
}

fn median(
    rounds: usize,
    mut step: impl FnMut() -> std::io::Result<()>,
) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let began = Instant::now();
        step().context("write and sync the probe")?;
        times.push(began.elapsed());
    }
    times.sort_unstable();
    Ok(times.get(times.len() / 2).copied().unwrap_or_default())
}
