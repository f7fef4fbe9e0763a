//! SQLite reads made on the calling thread, on a read-only connection of that thread's own.
//!
//! A read through the pool is handed to the connection's own thread and its rows handed back: two
//! thread switches, which on a busy two-core machine cost more than a small read itself (the two reads
//! a ping request made through the pool, its token and its visit, took about 40% of the server's time;
//! BENCHMARKS.md). A read of one row by its key, from pages in memory, takes microseconds here instead.
//!
//! Such a read never waits: the connection's busy timeout is zero, and a read that fails for any
//! reason (the file busy, an I/O error) gives `None`, and the caller reads through the pool as before,
//! where waits and errors are handled as for every other query. The connection is then closed, and
//! opened afresh on the next read.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

thread_local! {
    /// This thread's connection to each SQLite file it has read (tests run several servers at once).
    static READERS: RefCell<HashMap<PathBuf, Connection>> = RefCell::new(HashMap::new());
}

/// Reads made here, in this process (for the tests and the figures).
static SERVED: AtomicU64 = AtomicU64::new(0);

pub fn served() -> u64 {
    SERVED.load(Ordering::Relaxed)
}

/// Run `read` on this thread's connection to the file at `path`; `None` if it could not be done here.
pub fn read<T>(path: &Path, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
    READERS.with(|readers| {
        let mut readers = readers.borrow_mut();
        if !readers.contains_key(path) {
            match open(path) {
                Ok(conn) => readers.insert(path.to_path_buf(), conn),
                Err(e) => {
                    tracing::debug!(error = %e, "no inline SQLite reader; reading through the pool");
                    return None;
                }
            };
        }
        let conn = readers.get(path)?;
        match read(conn) {
            Ok(value) => {
                SERVED.fetch_add(1, Ordering::Relaxed);
                Some(value)
            }
            Err(e) => {
                tracing::debug!(error = %e, "an inline SQLite read failed; reading through the pool");
                readers.remove(path);
                None
            }
        }
    })
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    // Read-write flags, so the write-ahead log's shared memory is used as by every other connection;
    // `query_only` keeps it from writing.
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::ZERO)?;
    conn.execute_batch("pragma query_only = on;")?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_another_connection_committed_and_gives_way_when_the_file_is_gone() {
        let dir = std::env::temp_dir().join(format!("homeward-inline-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.db");
        let writer = Connection::open(&path).unwrap();
        writer.execute_batch("pragma journal_mode = wal; create table t (k integer primary key, v text);").unwrap();
        writer.execute("insert into t values (1, 'one')", []).unwrap();
        let value =
            |k: i64| read(&path, |c| c.query_row("select v from t where k = ?1", [k], |r| r.get::<_, String>(0)));
        assert_eq!(value(1).as_deref(), Some("one"));
        writer.execute("update t set v = 'uno' where k = 1", []).unwrap();
        assert_eq!(value(1).as_deref(), Some("uno"), "a later commit is seen");
        assert_eq!(value(2), None, "no row is a failed read here: the caller asks the pool");
        assert!(
            read(&path, |c| c.execute("insert into t values (3, 'three')", [])).is_none(),
            "the connection never writes"
        );
        let count: i64 = writer.query_row("select count(*) from t", [], |r| r.get(0)).unwrap();
        assert_eq!(count, 1);
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(value(1), None, "the file is gone: nothing read here");
    }
}
