//! A SQLite connection of its own, used directly rather than through sqlx, for writes that must be
//! few round trips: sqlx runs each statement on its connection's thread and hands every statement and
//! row across threads, which on a busy two-core machine costs a thread wake-up each (milliseconds
//! under load). Work given to [`Direct::run`] runs whole on one blocking thread: one hand-off.
//!
//! It writes to the same file as sqlx's writer, and only in the writer's turn
//! ([`crate::db::Db::write_slot_after_others`]), so the two never contend for SQLite's lock.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;

pub struct Direct {
    path: PathBuf,
    /// Opened on first use (after the migrations); dropped after an error it could not undo.
    conn: Mutex<Option<rusqlite::Connection>>,
    /// Transactions committed here (for the tests and the figures).
    pub commits: AtomicU64,
}

impl Direct {
    /// For a SQLite file; `None` for an in-memory database, which another connection would not see.
    pub fn for_url(url: &str) -> Option<Arc<Direct>> {
        let options = SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename();
        if url.contains("mode=memory") || path.as_os_str().to_string_lossy().starts_with("file:") {
            return None;
        }
        Some(Arc::new(Direct { path: path.to_path_buf(), conn: Mutex::new(None), commits: AtomicU64::new(0) }))
    }

    /// The SQLite file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Run `work` on the connection on a blocking thread. Whatever happens, the connection comes back
    /// outside any transaction (rolled back, or closed and opened afresh next time): the same guarantee
    /// as the sqlx writer's release check in [`crate::db::Db::connect`].
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut rusqlite::Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let direct = self.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<T> {
            let mut slot = direct.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut conn = match slot.take() {
                Some(conn) => conn,
                None => direct.open()?,
            };
            let result = work(&mut conn);
            if conn.is_autocommit() || conn.execute_batch("rollback").is_ok() {
                *slot = Some(conn);
            } else {
                tracing::warn!("the direct SQLite connection could not roll back; it is closed");
            }
            result
        })
        .await?
    }

    /// The server's settings for every SQLite connection ([`crate::db::sqlite_pragmas`]).
    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // The write-ahead log is a setting of the file, set by the first sqlx connection.
        conn.execute_batch("pragma synchronous = full; pragma foreign_keys = on;")?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }
}
