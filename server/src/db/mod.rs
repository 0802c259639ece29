//! The database: one SQLite file in WAL mode with `synchronous = FULL`, so every committed
//! transaction is on disk before the holder hears about it.

use std::str::FromStr;
use std::time::Duration;

mod writer;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Sqlite, SqliteConnection, SqlitePool, Transaction};

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
    options: SqliteConnectOptions,
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
        // Checkpoints run in the background (see `checkpoint_in_background`), not inside
        // whichever commit happens to fill the log.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await
            .context("open the database for writing")?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().read_only(true))
            .await
            .context("open the database for reading")?;
        let writer = Writer::start(write.clone())?;
        Ok(Self {
            read,
            write,
            writer,
            options,
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
    /// on disk. An `Err` from `work` undoes its own changes and nothing else; `work` may run
    /// more than once (see [`writer`]), so it must do nothing but database work.
    pub async fn write<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, anyhow::Result<T>>
            + Send
            + 'static,
    {
        self.writer.write(work).await
    }

    /// A connection of the read-only pool, for look-ups that need no lock.
    pub async fn reader(&self) -> anyhow::Result<sqlx::pool::PoolConnection<Sqlite>> {
        self.read
            .acquire()
            .await
            .context("acquire a read connection")
    }

    /// Starts a write transaction of its own (for the command line). `IMMEDIATE` takes the write lock up front, so a command-line
    /// process writing beside the server waits its turn instead of failing on a stale snapshot.
    pub async fn begin(&self) -> anyhow::Result<Transaction<'static, Sqlite>> {
        self.write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("begin a write transaction")
    }

    /// Copies the write-ahead log into the database file every `every`, on a connection of its
    /// own, until `shutdown` turns true. Durability does not depend on it: a commit is on disk
    /// once it is in the log. It keeps the log short without stalling a commit.
    pub fn checkpoint_in_background(
        &self,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let options = self.options.clone();
        tokio::spawn(async move {
            let mut conn: Option<SqliteConnection> = None;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => break,
                }
                if conn.is_none() {
                    match options.connect().await {
                        Ok(opened) => conn = Some(opened),
                        Err(error) => {
                            tracing::error!(%error, "could not open the checkpoint connection; will retry");
                            continue;
                        }
                    }
                }
                if let Some(open) = conn.as_mut()
                    && let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                        .execute(open)
                        .await
                {
                    tracing::warn!(%error, "checkpoint failed; will retry");
                    conn = None;
                }
            }
            if let Some(mut open) = conn {
                let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut open)
                    .await;
                let _ = open.close().await;
            }
        })
    }

    /// Checks the database answers and the writer is running, for `/readyz`.
    pub async fn ping(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.writer.is_running(), "the database writer has stopped");
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
