//! Work held back until a write has committed. A write closure may run more than once
//! (SQLite's group commit, PostgreSQL's serialisation retries), and a run may be undone, so
//! anything it must not do twice or for nothing, such as counting a metric, is handed to
//! [`after_commit`] and done by [`super::Db::write`] once the run that counts has committed.

use std::cell::RefCell;
use std::fmt;

use super::{BoxFuture, Conn};

type Deferred = Box<dyn FnOnce() + Send>;

tokio::task_local! {
    /// What the run of a write being polled has deferred so far.
    static PENDING: RefCell<Vec<Deferred>>;
}

/// Runs `then` once the write running it has committed, and not at all if that run is undone.
/// Outside [`super::Db::write`] (the command line's own transactions) it runs at once.
pub fn after_commit(then: impl FnOnce() + Send + 'static) {
    let mut then = Some(Box::new(then) as Deferred);
    let _ = PENDING.try_with(|pending| {
        if let Some(then) = then.take() {
            pending.borrow_mut().push(then);
        }
    });
    if let Some(then) = then {
        then();
    }
}

/// What one committed run of a write deferred.
pub struct Pending(Vec<Deferred>);

impl Pending {
    pub fn run(self) {
        for then in self.0 {
            then();
        }
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pending({})", self.0.len())
    }
}

/// `work`, each of its runs collecting what it defers into a list of its own, handed back
/// with its result.
pub fn collecting<T, F>(
    work: F,
) -> impl for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, anyhow::Result<(T, Pending)>> + Send + 'static
where
    T: Send + 'static,
    F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, anyhow::Result<T>> + Send + 'static,
{
    move |conn| {
        let running = work(conn);
        Box::pin(PENDING.scope(RefCell::new(Vec::new()), async move {
            let value = running.await?;
            Ok((value, Pending(PENDING.with(RefCell::take))))
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use anyhow::bail;

    use super::super::scratch_sqlite_bare;
    use super::after_commit;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deferred_work_runs_once_per_committed_write_and_never_for_an_undone_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = scratch_sqlite_bare(dir.path()).await;
        sqlx::query("CREATE TABLE t (n INTEGER NOT NULL)")
            .execute(&db.write)
            .await
            .unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::new(AtomicUsize::new(0));
        // Failing writes roll their batch back, so the others in it run again.
        let jobs: Vec<_> = (0..200)
            .map(|n: i64| {
                let (db, runs, counted) = (db.clone(), runs.clone(), counted.clone());
                tokio::spawn(async move {
                    db.write(move |conn| {
                        let (runs, counted) = (runs.clone(), counted.clone());
                        Box::pin(async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            sqlx::query("INSERT INTO t (n) VALUES ($1)")
                                .bind(n)
                                .execute(&mut *conn)
                                .await?;
                            after_commit(move || {
                                counted.fetch_add(1, Ordering::SeqCst);
                            });
                            if n % 10 == 3 {
                                bail!("job {n} failed after deferring");
                            }
                            Ok(())
                        })
                    })
                    .await
                })
            })
            .collect();
        let mut committed = 0;
        for job in jobs {
            committed += usize::from(job.await.unwrap().is_ok());
        }
        assert_eq!(committed, 180);
        assert_eq!(counted.load(Ordering::SeqCst), 180);
        assert!(runs.load(Ordering::SeqCst) >= 200);

        // Outside a write there is nothing to wait for.
        let at_once = Arc::new(AtomicUsize::new(0));
        let done = at_once.clone();
        after_commit(move || {
            done.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(at_once.load(Ordering::SeqCst), 1);
    }
}
