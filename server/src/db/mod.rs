//! The database: one SQLite file in WAL mode with `synchronous = FULL`, so every committed
//! transaction is on disk before the holder hears about it.

use std::str::FromStr;
use std::time::Duration;

mod writer;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};

pub use writer::BoxFuture;
use writer::Writer;

/// Connections that read may run side by side; all writes go through one connection, so
/// writers queue instead of spinning on SQLite's busy lock, and the server's own writes are
/// group-committed by [`Db::write`].
#[derive(Debug, Clone)]
pub struct Db {
    pub read: SqlitePool,
    pub write: SqlitePool,
    writer: Writer,
}

/// The durability settings every connection uses (also used by the benchmark baseline).
pub fn connect_options(url: &str) -> anyhow::Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)
        .with_context(|| "parse database_url")?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        .statement_cache_capacity(256))
}

impl Db {
    /// Opens the database, creating the file and its folder if needed.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = connect_options(url)?;
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create the database folder {}", parent.display()))?;
        }
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .context("open the database for writing")?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .context("open the database for reading")?;
        let writer = Writer::start(write.clone());
        Ok(Self {
            read,
            write,
            writer,
        })
    }

    /// Applies pending migrations from `server/migrations/`.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate!("./migrations")
            .run(&self.write)
            .await
            .context("apply database migrations")
    }

    /// Runs `work` in a group-committed write transaction and returns its result once it is
    /// on disk. An `Err` from `work` undoes its own changes and nothing else.
    pub async fn write<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, anyhow::Result<T>>
            + Send
            + 'static,
    {
        self.writer.write(work).await
    }

    /// Starts a write transaction of its own (for the command line). `IMMEDIATE` takes the write lock up front, so a command-line
    /// process writing beside the server waits its turn instead of failing on a stale snapshot.
    pub async fn begin(&self) -> anyhow::Result<Transaction<'static, Sqlite>> {
        self.write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("begin a write transaction")
    }

    /// Checks the database answers, for `/readyz`.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .context("query the database")?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}
