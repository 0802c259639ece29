//! The database, on either engine the `database_url` names:
//!
//! - **SQLite** (`sqlite://path`), the embedded default: one file in WAL mode with
//!   `synchronous = FULL`; every write the server makes goes through one writer thread that
//!   group-commits them ([`writer`]), and reads use a read-only pool.
//! - **PostgreSQL** (`postgres://…`), for a fleet of instances on one database: each write
//!   is its own transaction at `READ COMMITTED`, with the rows a rule decides on locked (or
//!   changed in one statement on the row as it stands), so a rule's check and the write it
//!   guards can never interleave with another instance's ([`pg_write`] says how each rule
//!   holds).
//!
//! Either way a write is a closure that may run more than once and touches nothing but the
//! database; rule modules hand it to [`Db::write`] and never see which engine runs it. One
//! exception is named for what it is rather than the engine: a counter that many requests
//! update at once (a NAT address's starts) is counted apart on PostgreSQL, as statements
//! committed on their own ([`Db::hot_counters_apart`], [`Db::write_each_statement`]); and
//! the outbox worker's claim and record, each one statement there, commit on their own
//! ([`Db::write_statement`]). SQL
//! is written once, with `$1`-style placeholders that both engines take; where the dialects
//! differ, the statement asks [`Db::engine`] (or [`Engine::of`] on a connection).

use std::time::Duration;

mod after_commit;
pub mod allowed_domains;
pub mod audit;
pub mod card_challenges;
pub mod cards;
pub mod codes;
mod contacts;
pub mod figures;
pub mod holder_emails;
pub mod holder_mobiles;
pub mod holders;
pub mod journeys;
pub mod key_versions;
pub mod outbox;
pub mod outbox_health;
mod pg_write;
pub mod profiles;
pub mod ra_codes;
pub mod retention;
pub mod staff_accounts;
pub mod staff_sessions;
pub mod states;
pub mod throttles;
mod url;
mod writer;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Executor};

pub use after_commit::after_commit;
use pg_write::Commit;
pub use url::DatabaseUrl;
pub use writer::BoxFuture;
use writer::Writer;

/// A database connection, whichever engine is behind it.
pub type Conn = sqlx::AnyConnection;

/// A transaction begun by [`Db::begin`]; derefs to [`Conn`].
pub type Transaction = sqlx::Transaction<'static, Any>;

/// A connection borrowed from a pool; derefs to [`Conn`].
pub type Pooled = PoolConnection<Any>;

/// Which SQL engine a database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine behind a connection.
    pub fn of(conn: &Conn) -> Self {
        if conn.backend_name() == "PostgreSQL" {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }
}

/// The per-connection settings SQLite needs for durability and integrity (the benchmark's
/// baseline opens the same through [`sqlite_baseline_options`]). `journal_mode = WAL` is a
/// property of the file and sticks.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

/// How a server instance reaches its database.
#[derive(Debug, Clone)]
pub struct Db {
    engine: Engine,
    /// Look-ups that need no lock: SQLite's read-only pool, or the PostgreSQL pool.
    read: AnyPool,
    /// SQLite: the one write connection (the writer's and the command line's); PostgreSQL:
    /// the same pool as `read`.
    write: AnyPool,
    /// SQLite's group-committing writer; PostgreSQL writes need none.
    writer: Option<Writer>,
    url: DatabaseUrl,
}

/// How long a PostgreSQL connection may sit in the pool before it is tested again on its way
/// out (see [`Db::connect_with`]).
const RETEST_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Writes that may wait for SQLite's writer unless configured otherwise.
pub const DEFAULT_WRITE_QUEUE: usize = 4096;

/// The database can take no more work now: its write queue is full (SQLite) or no connection
/// came free in time (PostgreSQL). The request answers 503 rather than waiting without end.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the database is too busy to take this write now")]
pub struct Overloaded;

/// A write's value once it has committed, after what it deferred has run; a failed write
/// counted in the metrics.
fn committed<T>(written: anyhow::Result<(T, after_commit::Pending)>) -> anyhow::Result<T> {
    let (value, pending) = written.inspect_err(|_| crate::metrics::db_error())?;
    pending.run();
    Ok(value)
}

/// Whether `error` is the database being too busy ([`Overloaded`], or a pool that gave no
/// connection in time).
pub fn is_overloaded(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<Overloaded>()
            || matches!(
                cause.downcast_ref::<sqlx::Error>(),
                Some(sqlx::Error::PoolTimedOut)
            )
    })
}

/// Whether `error` is the database out of reach: the connection refused or lost, or the
/// server shutting down or starting up (SQLSTATE class 08, 57P01–57P03). Nothing was done;
/// the pool connects again once the database is back, without a restart.
pub fn is_unreachable(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Io(_) | sqlx::Error::PoolClosed) => true,
            Some(sqlx::Error::Database(database)) => database.code().is_some_and(|code| {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        })
}

impl Db {
    /// Opens the database (for SQLite, creating the file and its folder if needed).
    pub async fn connect(url: &DatabaseUrl) -> anyhow::Result<Self> {
        Self::connect_with(url, 16, DEFAULT_WRITE_QUEUE).await
    }

    /// Opens the database with at most `max_connections` PostgreSQL connections, or (SQLite)
    /// at most `write_queue` writes waiting for the writer.
    pub async fn connect_with(
        url: &DatabaseUrl,
        max_connections: u32,
        write_queue: usize,
    ) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        match url.engine() {
            Engine::Sqlite => Self::connect_sqlite(url, write_queue).await,
            Engine::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(10))
                    // sqlx tests every connection on its way back to the pool, and by default
                    // again on its way out: a round trip each. Under load a connection is back
                    // out within moments, so only one idle long enough for the database to
                    // have restarted since is tested again.
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= RETEST_AFTER_IDLE {
                                conn.ping().await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(url.any_options()?)
                    .await
                    .with_context(|| format!("connect to the database at {url}"))?;
                Ok(Self {
                    engine: Engine::Postgres,
                    read: pool.clone(),
                    write: pool,
                    writer: None,
                    url: url.clone(),
                })
            }
        }
    }

    async fn connect_sqlite(url: &DatabaseUrl, write_queue: usize) -> anyhow::Result<Self> {
        if let Some(path) = url.sqlite_path()
            && let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create the database folder {}", parent.display()))?;
        }
        // Checkpoints run in the background (see `checkpoint_in_background`), not inside
        // whichever commit happens to fill the log.
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(SQLITE_PRAGMAS).await?;
                    conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                    Ok(())
                })
            })
            .connect_with(url.sqlite_options("rwc")?)
            .await
            .context("open the database for writing")?;
        // The file exists and is in WAL mode before the first reader opens it.
        write
            .acquire()
            .await
            .context("open the database for writing")?;
        let read = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(url.sqlite_options("ro")?)
            .await
            .context("open the database for reading")?;
        let writer = Writer::start(write.clone(), write_queue)?;
        Ok(Self {
            engine: Engine::Sqlite,
            read,
            write,
            writer: Some(writer),
            url: url.clone(),
        })
    }

    /// The engine this database runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Applies pending migrations for this engine (`server/migrations/<engine>/`).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.engine {
            Engine::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Engine::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&self.write)
            .await
            .context("apply database migrations")
    }

    /// Runs `work` in a write transaction and returns its result once committed. An `Err`
    /// from `work` undoes its own changes and nothing else; `work` may run more than once
    /// (SQLite: when another write in its group commit fails; PostgreSQL: after a
    /// serialisation failure), so it must do nothing but database work; what it hands to
    /// [`after_commit`] runs once, after the run that committed.
    pub async fn write<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, anyhow::Result<T>> + Send + 'static,
    {
        self.write_committing(work, Commit::Together).await
    }

    /// Whether a counter that many requests update at once (the starts of a hospital's one
    /// NAT address) is best counted apart, with [`Db::write_each_statement`], rather than
    /// inside the write that needs it: on PostgreSQL, where a row stays locked until the
    /// transaction that updated it commits; not on SQLite, whose one writer takes every write
    /// in turn, so a write apart would only add a commit to wait for.
    pub fn hot_counters_apart(&self) -> bool {
        self.engine == Engine::Postgres
    }

    /// Runs `work`, whose statements each stand on their own, with every statement committed
    /// as it runs: on PostgreSQL outside a transaction block, so a row a statement updates is
    /// locked while PostgreSQL runs that statement and not for a round trip to this server and
    /// back (a hot counter row, such as the starts of a hospital's one NAT address, which
    /// every start updates); on SQLite as any other write, in a group commit. Each commit is
    /// as durable as any other. A failure leaves the statements before it committed, so
    /// `work` must leave the database consistent after each one.
    pub async fn write_each_statement<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, anyhow::Result<T>> + Send + 'static,
    {
        self.write_committing(work, Commit::EachAlone).await
    }

    /// Runs `work`, one statement on PostgreSQL, committed on its own outside a transaction
    /// block (one round trip instead of three) and run again after a deadlock, as a
    /// statement that failed committed nothing; on SQLite as any other write, in a group
    /// commit (where `work` may be more than one statement).
    pub async fn write_statement<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, anyhow::Result<T>> + Send + 'static,
    {
        self.write_committing(work, Commit::Alone).await
    }

    /// Runs `work` as a write: SQLite's writer group-commits it; PostgreSQL commits it as
    /// `commit` says.
    async fn write_committing<T, F>(&self, work: F, commit: Commit) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, anyhow::Result<T>> + Send + 'static,
    {
        let work = after_commit::collecting(work);
        let written = match &self.writer {
            Some(writer) => writer.write(work).await,
            None => pg_write::write(&self.write, work, commit).await,
        };
        committed(written)
    }

    /// A connection for look-ups that need no lock.
    pub async fn reader(&self) -> anyhow::Result<Pooled> {
        self.read
            .acquire()
            .await
            .context("acquire a read connection")
    }

    /// The pool writes outside a request go through (SQLite: the one write connection, so
    /// use it briefly); for tools and tests that set up data directly.
    pub fn pool(&self) -> &AnyPool {
        &self.write
    }

    /// The pool look-ups that need no lock run on.
    pub fn read_pool(&self) -> &AnyPool {
        &self.read
    }

    /// Starts a write transaction of its own (for the command line). SQLite's `IMMEDIATE`
    /// takes the write lock up front, so a command-line process writing beside the server
    /// waits its turn instead of failing on a stale snapshot; on PostgreSQL it is `READ
    /// COMMITTED`, as the server's writes are (see [`pg_write`]).
    pub async fn begin(&self) -> anyhow::Result<Transaction> {
        let begin = match self.engine {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN ISOLATION LEVEL READ COMMITTED",
        };
        self.write
            .begin_with(begin)
            .await
            .context("begin a write transaction")
    }

    /// SQLite: copies the write-ahead log into the database file every `every`, on a
    /// connection of its own, until `shutdown` turns true. Durability does not depend on it:
    /// a commit is on disk once it is in the log. It keeps the log short without stalling a
    /// commit. PostgreSQL checkpoints by itself, so there the task only waits for shutdown.
    pub fn checkpoint_in_background(
        &self,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let options = (self.engine == Engine::Sqlite)
            .then(|| self.url.sqlite_options("rw"))
            .and_then(Result::ok);
        tokio::spawn(async move {
            let Some(options) = options else {
                let _ = shutdown.changed().await;
                return;
            };
            let mut conn: Option<Conn> = None;
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
                    && let Err(error) = open.execute("PRAGMA wal_checkpoint(PASSIVE)").await
                {
                    tracing::warn!(%error, "checkpoint failed; will retry");
                    conn = None;
                }
            }
            if let Some(mut open) = conn {
                let _ = open.execute("PRAGMA wal_checkpoint(TRUNCATE)").await;
                let _ = open.close().await;
            }
        })
    }

    /// Checks the database answers (and SQLite's writer is running), for `/readyz`.
    pub async fn ping(&self) -> anyhow::Result<()> {
        if let Some(writer) = &self.writer {
            anyhow::ensure!(writer.is_running(), "the database writer has stopped");
        }
        (&self.read)
            .execute("SELECT 1")
            .await
            .context("query the database")?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// A SQLite connection with the settings the server's own connections run with (WAL,
/// `synchronous = FULL`, foreign keys, busy timeout): for the benchmark's bare baseline,
/// which must pay exactly the server's durability.
pub fn sqlite_baseline_options(url: &str) -> anyhow::Result<sqlx::sqlite::SqliteConnectOptions> {
    use std::str::FromStr;
    Ok(sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .context("parse the SQLite URL")?
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10)))
}

/// What to do with the one savepoint a bulk change keeps per item (the import's rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Savepoint {
    /// Sets it, before an item.
    Mark,
    /// Keeps the item's changes.
    Keep,
    /// Undoes the item's changes, leaving the transaction usable (on PostgreSQL a failed
    /// statement would otherwise void the rest of it).
    Undo,
}

/// Sets, keeps or undoes to the savepoint inside the caller's transaction.
pub async fn savepoint(conn: &mut Conn, what: Savepoint) -> anyhow::Result<()> {
    let (sql, doing) = match what {
        Savepoint::Mark => ("SAVEPOINT item", "mark an item"),
        Savepoint::Keep => ("RELEASE SAVEPOINT item", "keep an item"),
        Savepoint::Undo => ("ROLLBACK TO SAVEPOINT item", "undo an item"),
    };
    conn.execute(sql).await.context(doing)?;
    Ok(())
}

/// A yes/no column or expression as either engine returns it: PostgreSQL's `boolean`, or
/// SQLite's integer 0/1 (which sqlx's `Any` driver will not decode as `bool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(flag: Flag) -> Self {
        flag.0
    }
}

impl sqlx::Type<Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <bool as sqlx::Type<Any>>::compatible(ty) || <i64 as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        match <bool as sqlx::Decode<Any>>::decode(value.clone()) {
            Ok(flag) => Ok(Self(flag)),
            Err(_) => <i64 as sqlx::Decode<Any>>::decode(value).map(|n| Self(n != 0)),
        }
    }
}

/// A migrated SQLite database in `dir`, for this module's unit tests.
#[cfg(test)]
async fn scratch_sqlite(dir: &std::path::Path) -> Db {
    let db = scratch_sqlite_bare(dir).await;
    db.migrate().await.unwrap();
    db
}

/// An SQLite database in `dir` with no tables yet, for unit tests of the write path itself.
#[cfg(test)]
async fn scratch_sqlite_bare(dir: &std::path::Path) -> Db {
    let url = format!("sqlite://{}", dir.join("t.db").display());
    Db::connect(&DatabaseUrl::parse(&url).unwrap())
        .await
        .unwrap()
}
