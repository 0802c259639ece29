//! Group commit: every write the server makes while answering goes through one task that
//! owns the write connection. Writes that arrive while a commit is on its way to disk are
//! gathered into the next transaction, each inside its own savepoint, and answered only
//! after that transaction has committed. Durability is unchanged (`synchronous = FULL`:
//! nobody hears "done" before their change is on disk); what is shared is the `fsync`.

use std::future::Future;
use std::pin::Pin;

use std::panic::AssertUnwindSafe;

use anyhow::Context;
use futures_util::FutureExt;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// A future borrowing the write connection.
pub type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// Most writes gathered into one transaction.
const MAX_BATCH: usize = 128;

/// One queued write: runs on the connection, says whether to keep its changes, and hands
/// back how to deliver its answer once the transaction's fate is known.
type Work = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Done> + Send>;

struct Done {
    keep: bool,
    deliver: Box<dyn FnOnce(Result<(), String>) + Send>,
}

/// The handle requests use to queue writes.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Work>,
}

impl Writer {
    /// Whether the writer thread is still taking work.
    pub fn is_running(&self) -> bool {
        !self.queue.is_closed()
    }

    /// Starts the writer on the single-connection write pool. It runs on a thread of its
    /// own: each statement is a round trip to SQLite's thread, and on the shared runtime every
    /// one of them would wait behind the HTTP tasks, holding the write lock meanwhile.
    pub fn start(pool: SqlitePool) -> anyhow::Result<Self> {
        let (queue, jobs) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("build the database writer's runtime")?;
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || runtime.block_on(run(pool, jobs)))
            .context("start the database writer thread")?;
        Ok(Self { queue })
    }

    /// Runs `work` inside a write transaction and returns its result once committed. An
    /// `Err` from `work` rolls back its own changes only.
    pub async fn write<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, anyhow::Result<T>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Work = Box::new(move |conn| {
            Box::pin(async move {
                let result = work(conn).await;
                Done {
                    keep: result.is_ok(),
                    deliver: Box::new(move |committed| {
                        let outcome = committed.map_err(anyhow::Error::msg).and_then(|()| result);
                        let _ = reply.send(outcome);
                    }),
                }
            })
        });
        self.queue
            .send(job)
            .map_err(|_| anyhow::anyhow!("the database writer has stopped"))?;
        answer
            .await
            .context("the database writer dropped a write")?
    }
}

async fn run(pool: SqlitePool, mut jobs: mpsc::UnboundedReceiver<Work>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match pool.acquire().await {
            Ok(mut conn) => commit_batch(&mut conn, batch).await,
            // Dropping the batch unrun tells each caller its write was dropped.
            Err(error) => tracing::error!(%error, "could not open the write connection"),
        }
    }
}

/// Tries to begin a batch's transaction a few times: a command-line write may hold the lock
/// for longer than the busy timeout, and dropping the batch would fail every holder in it.
const BEGIN_ATTEMPTS: u32 = 3;

async fn commit_batch(conn: &mut SqliteConnection, batch: Vec<Work>) {
    let mut attempt = 1;
    while let Err(error) = sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await {
        if attempt == BEGIN_ATTEMPTS {
            // Each job is dropped unrun; its caller sees "dropped a write".
            tracing::error!(%error, "could not begin a write transaction");
            return;
        }
        tracing::warn!(%error, attempt, "could not begin a write transaction; trying again");
        attempt += 1;
    }
    let mut done = Vec::with_capacity(batch.len());
    for job in batch {
        if let Err(error) = sqlx::raw_sql("SAVEPOINT job").execute(&mut *conn).await {
            tracing::error!(%error, "could not open a savepoint");
            return abandon(conn, done).await;
        }
        // A panicking job loses only its own changes; its caller sees "dropped a write".
        let result = AssertUnwindSafe(job(conn)).catch_unwind().await.ok();
        let keep = result.as_ref().is_some_and(|result| result.keep);
        let end = if keep {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(error) = sqlx::raw_sql(end).execute(&mut *conn).await {
            // SQLite may have rolled back the whole transaction (a full disk, an I/O error):
            // nothing in this batch can be vouched for.
            tracing::error!(%error, "could not close a savepoint");
            if let Some(result) = result {
                (result.deliver)(Err(format!("close a savepoint: {error}")));
            }
            return abandon(conn, done).await;
        }
        done.extend(result);
    }
    let committed = sqlx::raw_sql("COMMIT")
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|error| format!("commit a write transaction: {error}"));
    if committed.is_err() {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    }
    for job in done {
        (job.deliver)(committed.clone());
    }
}

/// Rolls the batch back and tells the jobs that ran so far; the rest are dropped unrun.
async fn abandon(conn: &mut SqliteConnection, done: Vec<Done>) {
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    for job in done {
        (job.deliver)(Err("the write transaction was rolled back".into()));
    }
}

#[cfg(test)]
mod tests {
    use anyhow::bail;

    use super::super::Db;

    async fn db() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER NOT NULL)")
            .execute(&db.write)
            .await
            .unwrap();
        (db, dir)
    }

    async fn insert(db: &Db, n: i64, fail: bool) -> anyhow::Result<i64> {
        db.write(move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (n) VALUES (?)")
                    .bind(n)
                    .execute(&mut *conn)
                    .await?;
                if fail {
                    bail!("job {n} failed after writing");
                }
                Ok(n)
            })
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_and_a_failing_one_undoes_only_itself() {
        let (db, _dir) = db().await;
        let jobs: Vec<_> = (0..200)
            .map(|n| {
                let db = db.clone();
                tokio::spawn(async move { insert(&db, n, n % 10 == 3).await })
            })
            .collect();
        let mut failed = 0;
        for (n, job) in jobs.into_iter().enumerate() {
            match job.await.unwrap() {
                Ok(value) => assert_eq!(value, i64::try_from(n).unwrap()),
                Err(error) => {
                    assert!(error.to_string().contains("failed after writing"));
                    failed += 1;
                }
            }
        }
        assert_eq!(failed, 20);
        let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(&db.read)
            .await
            .unwrap();
        assert_eq!(rows.len(), 180);
        assert!(rows.iter().all(|n| n % 10 != 3));
    }

    #[tokio::test]
    async fn a_panicking_write_fails_alone_and_the_writer_carries_on() {
        let (db, _dir) = db().await;
        let panicked = db
            .write(|conn| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (n) VALUES (99)")
                        .execute(&mut *conn)
                        .await?;
                    panic!("a bug in a write");
                    #[allow(unreachable_code)]
                    Ok(())
                })
            })
            .await;
        assert!(panicked.is_err());
        assert_eq!(insert(&db, 5, false).await.unwrap(), 5);
        assert!(db.writer.is_running());
        let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM t")
            .fetch_all(&db.read)
            .await
            .unwrap();
        assert_eq!(rows, [5]);
    }

    #[tokio::test]
    async fn a_write_answers_only_after_commit() {
        let (db, _dir) = db().await;
        insert(&db, 7, false).await.unwrap();
        // A separate read connection sees it at once: the answer came after the commit.
        let seen: i64 = sqlx::query_scalar("SELECT n FROM t")
            .fetch_one(&db.read)
            .await
            .unwrap();
        assert_eq!(seen, 7);
    }

    #[tokio::test]
    async fn writes_fail_plainly_once_the_database_is_closed() {
        let (db, _dir) = db().await;
        db.close().await;
        let error = insert(&db, 1, false).await.unwrap_err();
        assert!(error.to_string().contains("dropped a write"), "{error:#}");
    }
}
