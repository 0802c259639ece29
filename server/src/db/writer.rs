//! Group commit: every write the server makes while answering goes through one thread that
//! owns the write connection. Writes that arrive while a commit is on its way to disk are
//! gathered into the next transaction and answered only after it has committed. Durability
//! is unchanged (`synchronous = FULL`: nobody hears "done" before their change is on disk);
//! what is shared is the `fsync`.
//!
//! A write that fails (or panics) must not take the others down with it, yet a savepoint
//! around each write would cost two more round trips to SQLite's thread per request. So a
//! batch runs without savepoints, and if one write fails the transaction is rolled back, the
//! failed write is answered, and the others run again in a fresh transaction. Writes are
//! therefore closures that may run more than once; they touch nothing but the database.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use futures_util::FutureExt;
use sqlx::{AnyPool, Executor};

use super::Conn;
use tokio::sync::{mpsc, oneshot};

/// A future borrowing the write connection.
pub type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// Most writes gathered into one transaction.
const MAX_BATCH: usize = 128;

/// Tries to begin a batch's transaction a few times: a command-line write may hold the lock
/// for longer than the busy timeout, and dropping the batch would fail every holder in it.
const BEGIN_ATTEMPTS: u32 = 3;

/// One queued write: runs on the connection (perhaps more than once), says whether it
/// succeeded, and hands back how to deliver its answer once the transaction's fate is known.
type Work = Box<dyn for<'c> FnMut(&'c mut Conn) -> BoxFuture<'c, Ran> + Send>;

struct Ran {
    ok: bool,
    deliver: Box<dyn FnOnce(Result<(), String>) + Send>,
}

/// The handle requests use to queue writes.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Work>,
}

impl Writer {
    /// Whether the writer thread is still taking work.
    pub fn is_running(&self) -> bool {
        !self.queue.is_closed()
    }

    /// Starts the writer on the single-connection write pool. It runs on a thread of its
    /// own: each statement is a round trip to SQLite's thread, and on the shared runtime every
    /// one of them would wait behind the HTTP tasks, holding the write lock meanwhile.
    ///
    /// At most `capacity` writes wait for it; one more is refused with [`super::Overloaded`]
    /// at once (the request answers 503) rather than queueing without end.
    pub fn start(pool: AnyPool, capacity: usize) -> anyhow::Result<Self> {
        let (queue, jobs) = mpsc::channel(capacity.max(1));
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
    /// `Err` from `work` undoes its changes; `work` may run again if another write in its
    /// batch fails, so it must do nothing but database work.
    pub async fn write<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, anyhow::Result<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let reply = Arc::new(Mutex::new(Some(reply)));
        let job: Work = Box::new(move |conn| {
            let running = work(conn);
            let reply = reply.clone();
            Box::pin(async move {
                let result = running.await;
                Ran {
                    ok: result.is_ok(),
                    deliver: Box::new(move |committed| {
                        let outcome = committed.map_err(anyhow::Error::msg).and(result);
                        let reply = reply.lock().ok().and_then(|mut reply| reply.take());
                        if let Some(reply) = reply {
                            let _ = reply.send(outcome);
                        }
                    }),
                }
            })
        });
        self.queue.try_send(job).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => anyhow::Error::new(super::Overloaded),
            mpsc::error::TrySendError::Closed(_) => {
                anyhow::anyhow!("the database writer has stopped")
            }
        })?;
        answer
            .await
            .context("the database writer dropped a write")?
    }
}

async fn run(pool: AnyPool, mut jobs: mpsc::Receiver<Work>) {
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

async fn commit_batch(conn: &mut Conn, mut batch: Vec<Work>) {
    while !batch.is_empty() {
        if !begin(conn).await {
            return;
        }
        let mut ran = Vec::with_capacity(batch.len());
        let mut failed = None;
        for (index, job) in batch.iter_mut().enumerate() {
            match AssertUnwindSafe(job(conn)).catch_unwind().await {
                Ok(result) if result.ok => ran.push(result),
                // A panic drops the job's answer: its caller sees "dropped a write".
                result => {
                    failed = Some((index, result.ok()));
                    break;
                }
            }
        }
        let Some((index, result)) = failed else {
            let committed = conn
                .execute("COMMIT")
                .await
                .map(drop)
                .map_err(|error| format!("commit a write transaction: {error}"));
            if committed.is_err() {
                let _ = conn.execute("ROLLBACK").await;
            }
            for result in ran {
                (result.deliver)(committed.clone());
            }
            return;
        };
        // Undo the whole batch, answer the failed write with its own error, run the rest again.
        let _ = conn.execute("ROLLBACK").await;
        if let Some(result) = result {
            (result.deliver)(Ok(()));
        }
        drop(batch.remove(index));
    }
}

async fn begin(conn: &mut Conn) -> bool {
    for attempt in 1..=BEGIN_ATTEMPTS {
        match conn.execute("BEGIN IMMEDIATE").await {
            Ok(_) => return true,
            Err(error) if attempt < BEGIN_ATTEMPTS => {
                tracing::warn!(%error, attempt, "could not begin a write transaction; trying again");
            }
            // Each job is dropped unrun; its caller sees "dropped a write".
            Err(error) => tracing::error!(%error, "could not begin a write transaction"),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use anyhow::bail;

    use super::super::{Db, scratch_sqlite_bare};

    async fn db() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = scratch_sqlite_bare(dir.path()).await;
        sqlx::query("CREATE TABLE t (n INTEGER NOT NULL)")
            .execute(&db.write)
            .await
            .unwrap();
        (db, dir)
    }

    async fn insert(db: &Db, n: i64, fail: bool) -> anyhow::Result<i64> {
        db.write(move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (n) VALUES ($1)")
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
        assert!(db.writer.as_ref().unwrap().is_running());
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
