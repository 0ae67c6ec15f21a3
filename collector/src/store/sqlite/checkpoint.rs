//! A file database's WAL checkpoints, on a thread and connection of their own: copying the
//! WAL's pages into the database file (and its `fsync`) took about a tenth of the single
//! writer's time when the writer's commit did it (SQLite's automatic checkpoint). A passive
//! checkpoint runs beside the writer: it never blocks a commit, nor a commit it.

use super::open_file;
#[cfg(doc)]
use super::WAL_CHECKPOINT_PAGES;
use rusqlite::hooks::Wal;
use rusqlite::Connection;
use std::cell::Cell;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

thread_local! {
    /// Pages in the WAL after the last commit on this thread (SQLite's WAL hook runs in the
    /// committing thread, inside its COMMIT).
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

fn record_wal_pages(_wal: &Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

#[derive(Default)]
struct Requests {
    pending: bool,
    stopping: bool,
}

pub(super) struct Checkpointer {
    /// WAL pages that call for a checkpoint.
    pages: i64,
    requests: Arc<(Mutex<Requests>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Takes the checkpoints of `writer` (a connection to the file at `path`) over: one each
    /// time the WAL holds `pages` ([`WAL_CHECKPOINT_PAGES`] but in tests).
    pub fn start(writer: &Connection, path: &Path, pages: i64) -> rusqlite::Result<Checkpointer> {
        let checkpoints = open_file(path)?;
        // In this order: setting the pragma replaces the WAL hook.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.wal_hook(Some(record_wal_pages));
        let requests: Arc<(Mutex<Requests>, Condvar)> = Arc::default();
        let thread = {
            let requests = Arc::clone(&requests);
            std::thread::Builder::new()
                .name("stint-checkpoint".into())
                .spawn(move || run(&checkpoints, &requests))
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
        };
        Ok(Checkpointer {
            pages,
            requests,
            thread: Some(thread),
        })
    }

    /// After a commit on the writer's connection, on the thread that committed: asks for a
    /// checkpoint once the WAL holds its pages (as SQLite's automatic one would).
    pub fn after_commit(&self) {
        if i64::from(WAL_PAGES.replace(0)) >= self.pages {
            let (requests, wake) = &*self.requests;
            lock(requests).pending = true;
            wake.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (requests, wake) = &*self.requests;
        lock(requests).stopping = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(requests: &Mutex<Requests>) -> std::sync::MutexGuard<'_, Requests> {
    requests
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run(checkpoints: &Connection, requests: &(Mutex<Requests>, Condvar)) {
    let (requests, wake) = requests;
    loop {
        {
            let mut state = wake
                .wait_while(lock(requests), |r| !r.pending && !r.stopping)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if state.stopping {
                return;
            }
            state.pending = false;
        }
        // A failed or partial checkpoint is taken up again at the next request: the WAL keeps
        // every page until one completes.
        let _ = checkpoints.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_is_copied_into_the_database_file_beside_the_writer() {
        let dir = std::env::temp_dir().join(format!("stint-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wal.db");
        let _ = std::fs::remove_file(&path);
        let writer = open_file(&path).unwrap();
        let checkpointer = Checkpointer::start(&writer, &path, 64).unwrap();
        writer.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        checkpointer.after_commit();
        let file_pages = || std::fs::metadata(&path).map_or(0, |m| m.len()) / 4096;
        // Below the threshold everything stays in the WAL: the writer itself never checkpoints.
        for _ in 0..4 {
            writer
                .execute("INSERT INTO t VALUES (zeroblob(40000))", [])
                .unwrap();
            checkpointer.after_commit();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(file_pages() < 10, "{} pages", file_pages());
        // Past it, the checkpointer's thread copies the WAL's pages into the file.
        for _ in 0..8 {
            writer
                .execute("INSERT INTO t VALUES (zeroblob(40000))", [])
                .unwrap();
            checkpointer.after_commit();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while file_pages() < 100 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(file_pages() >= 100, "{} pages", file_pages());
        drop(checkpointer);
        let rows: i64 = writer
            .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 12);
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
