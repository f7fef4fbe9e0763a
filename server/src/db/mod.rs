//! The database: SQLite (embedded default) or PostgreSQL, behind sqlx's `Any` driver so every query is
//! written once. Times are stored as unix milliseconds and ids as UUID text on both.

pub mod batch;
pub mod codec;
pub mod direct;
pub mod inline_read;
mod migrations;
pub mod planner_statistics;

pub use codec::parse_id;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    /// For reads (and the tests' own statements).
    pub pool: AnyPool,
    /// For write transactions: on SQLite its own single connection, the one writer, whose page cache
    /// no other writer invalidates; on PostgreSQL the same pool as `pool`.
    pub writer: AnyPool,
    /// For the alarm loops (the scheduler and the deliverer): on PostgreSQL connections of their own,
    /// so a due escalation never waits in line behind requests for the pool; on SQLite the writer, whose
    /// turn they already get before any ping ([`Db::write_slot_after_others`]).
    alarms: AnyPool,
    pub backend: Backend,
    /// SQLite has one writer: writes queue here instead of failing with "database is locked".
    write_gate: Option<Arc<WriteGate>>,
    /// Wakes this process's scheduler when a transaction that wrote a timer commits.
    pub timers_changed: Arc<Notify>,
    /// Wakes this process's deliverer when a transaction that wrote a delivery commits.
    pub deliveries_changed: Arc<Notify>,
    /// How the informational signals are tuned; travels with every write transaction.
    pub signals: crate::escalation::signals::SignalSettings,
    /// Which channels the outbox may queue for; travels with every write transaction.
    pub channels: crate::notify::Configured,
    /// Tells live boards that a school changed, once the transaction that changed it commits.
    pub live: crate::live::LiveChanges,
    /// Location pings waiting to be written together (group commit, `store::pings`).
    pub ping_queue: crate::store::pings::PingQueue,
    /// PostgreSQL: the turns of the few groups of pings written at once (`store::pings`).
    pub ping_writers: Arc<tokio::sync::Semaphore>,
    /// SQLite: a connection of its own for the group commit of pings (`store::ping_group`).
    pub direct: Option<Arc<direct::Direct>>,
    /// Keys the audit log's hashes; travels with every write transaction (`store::audit`).
    pub audit_key: crate::store::audit::AuditKey,
}

/// The alarm loops' own PostgreSQL connections: one for each of the scheduler's lanes, and two for the
/// deliverer's claim and record.
const ALARM_CONNECTIONS: u32 = crate::escalation::scheduler::POSTGRES_LANES as u32 + 2;

/// SQLite's single writer's turn, and how many writes other than pings are waiting for it.
#[derive(Default)]
struct WriteGate {
    turn: Arc<Mutex<()>>,
    waiting: AtomicUsize,
    /// Told when the last waiting write other than pings got its turn (or gave up waiting).
    none_waiting: Notify,
}

/// A write other than pings waiting for the writer's turn, counted until it has the turn or gives up.
struct Waiting<'a>(&'a WriteGate);

impl<'a> Waiting<'a> {
    fn count(gate: &'a WriteGate) -> Self {
        gate.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(gate)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.0.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none_waiting.notify_waiters();
        }
    }
}

/// A write transaction; on SQLite it also holds the single-writer gate until it ends.
pub struct WriteTx {
    pub tx: Transaction<'static, Any>,
    pub backend: Backend,
    /// Set by code that writes timers or deliveries, so the loops look again once this commits.
    pub wrote_timers: bool,
    pub wrote_deliveries: bool,
    pub signals: crate::escalation::signals::SignalSettings,
    pub channels: crate::notify::Configured,
    timers_changed: Arc<Notify>,
    deliveries_changed: Arc<Notify>,
    live: crate::live::LiveChanges,
    /// Schools whose live boards must look again once this commits.
    touched: BTreeSet<uuid::Uuid>,
    /// Schools with new positions only: other processes hear of them a moment after the commit.
    positions: BTreeSet<uuid::Uuid>,
    /// Audit entries to chain in at commit (see [`crate::store::audit::append`]).
    pub(crate) audit: Vec<crate::store::audit::Pending>,
    audit_key: crate::store::audit::AuditKey,
    _gate: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// `for update` where the database has row locks (PostgreSQL); SQLite's single writer already
    /// serialises writers.
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " for update",
            Backend::Sqlite => "",
        }
    }

    /// A point to come back to: what [`WriteTx::rollback_to`] undoes on this side of the database.
    pub fn mark(&self) -> usize {
        self.audit.len()
    }

    /// Forget the audit entries noted since `mark` (the caller rolled back to a savepoint taken then).
    pub fn rollback_to(&mut self, mark: usize) {
        self.audit.truncate(mark);
    }

    /// Mark `school` as changed: its live boards refresh after the commit (never before, so they cannot
    /// read what is not yet there, and never for a rollback).
    pub fn touch(&mut self, school: uuid::Uuid) {
        self.touched.insert(school);
    }

    /// Mark `school` as having new positions (pings): its boards in this process refresh after the
    /// commit, as with [`WriteTx::touch`], but other processes hear of it a moment later, with others'
    /// ([`crate::live::tell_positions`]), not from inside this transaction.
    pub fn touch_position(&mut self, school: uuid::Uuid) {
        self.positions.insert(school);
    }

    /// Undo everything written, keeping SQLite's writer's turn for another attempt.
    pub async fn roll_back_keeping_turn(self) -> Result<Option<OwnedMutexGuard<()>>, sqlx::Error> {
        let WriteTx { tx, _gate, .. } = self;
        tx.rollback().await?;
        Ok(_gate)
    }

    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let audit = std::mem::take(&mut self.audit);
        if !audit.is_empty() {
            crate::store::audit::chain_pending(&mut self.tx, self.backend, &self.audit_key, audit).await?;
        }
        if self.backend == Backend::Postgres {
            // Other server processes' boards: sent inside the transaction, so PostgreSQL delivers it
            // only if the commit succeeds.
            for payload in self.live.notifications(&self.touched) {
                sqlx::query("select pg_notify($1, $2)")
                    .bind(crate::live::CHANNEL)
                    .bind(payload)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        self.tx.commit().await?;
        for school in self.touched.union(&self.positions) {
            self.live.publish(*school);
        }
        if self.backend == Backend::Postgres {
            for school in self.positions.difference(&self.touched) {
                self.live.position_changed(*school);
            }
        }
        if self.wrote_timers {
            self.timers_changed.notify_waiters();
        }
        if self.wrote_deliveries {
            self.deliveries_changed.notify_waiters();
        }
        Ok(())
    }
}

impl Db {
    /// Connect and bring the schema up to date. A SQLite file is created on first start. `audit_key`
    /// keys the audit log's hashes (kept outside the database: [`crate::store::audit::AuditKey`]).
    pub async fn connect(url: &str, audit_key: crate::store::audit::AuditKey) -> anyhow::Result<Db> {
        install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres://, got `{}`", redact(url));
        };
        let options = || AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let (pool, writer, alarms) = match backend {
            Backend::Sqlite => {
                // An embedded file cannot drop a connection: checking each one before use would only
                // cost a round trip to its thread.
                let readers = options().max_connections(8).test_before_acquire(false);
                let pool = readers.after_connect(|conn, _| Box::pin(sqlite_pragmas(conn))).connect(url).await;
                let writer = options()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .after_connect(|conn, _| Box::pin(sqlite_pragmas(conn)))
                    .after_release(|conn, _| {
                        Box::pin(async move {
                            // A write that failed for lack of disk space (or another I/O error) can
                            // leave SQLite inside a transaction that sqlx believes has ended. Kept in
                            // the pool, such a connection reads an old snapshot and turns the next
                            // write transaction into a savepoint of the stale one: acknowledged,
                            // never committed. A connection must come back outside any transaction;
                            // `rollback` succeeds only if one was still open, and then it is closed.
                            match conn.execute("rollback").await {
                                Ok(_) => {
                                    tracing::warn!("a database connection came back inside a transaction; closed it");
                                    Ok(false)
                                }
                                Err(_) => Ok(true),
                            }
                        })
                    })
                    .connect(url)
                    .await;
                pool.and_then(|pool| {
                    let writer = writer?;
                    Ok((pool, writer.clone(), writer))
                })
            }
            Backend::Postgres => {
                let pool = options().max_connections(16).connect(url).await;
                // Connected on first use: a process whose loops are idle holds none of these.
                let alarms = options().max_connections(ALARM_CONNECTIONS).connect_lazy(url);
                pool.and_then(|pool| Ok((pool.clone(), pool, alarms?)))
            }
        }
        .with_context(|| format!("could not open the database at {}", redact(url)))?;
        let write_gate = (backend == Backend::Sqlite).then(Arc::default);
        let db = Db {
            pool,
            writer,
            alarms,
            backend,
            write_gate,
            timers_changed: Arc::new(Notify::new()),
            deliveries_changed: Arc::new(Notify::new()),
            signals: crate::escalation::signals::SignalSettings::default(),
            channels: crate::notify::Configured::default(),
            live: crate::live::LiveChanges::new(),
            ping_queue: Default::default(),
            ping_writers: Arc::new(tokio::sync::Semaphore::new(crate::store::pings::POSTGRES_PING_WRITERS)),
            direct: (backend == Backend::Sqlite).then(|| direct::Direct::for_url(url)).flatten(),
            audit_key,
        };
        migrations::run(&db).await.context("could not migrate the database")?;
        Ok(db)
    }

    pub async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        let slot = self.write_slot().await;
        self.begin_in(slot).await
    }

    /// A write transaction for the alarm loops, on their own connections ([`Db::alarms`]).
    pub async fn begin_for_alarms(&self) -> Result<WriteTx, sqlx::Error> {
        let slot = self.write_slot().await;
        self.begin_on(&self.alarms, slot).await
    }

    /// For the alarm loops' reads (when the next timer or message is due).
    pub fn alarms_pool(&self) -> &AnyPool {
        match self.backend {
            Backend::Postgres => &self.alarms,
            Backend::Sqlite => &self.pool,
        }
    }

    /// SQLite's single writer's turn (wait for it); `None` on PostgreSQL, which has no such turn.
    pub async fn write_slot(&self) -> Option<OwnedMutexGuard<()>> {
        let gate = self.write_gate.as_ref()?;
        let _waiting = Waiting::count(gate);
        Some(gate.turn.clone().lock_owned().await)
    }

    /// How many writes other than pings are waiting for SQLite's writer now (0 on PostgreSQL).
    pub fn other_writes_waiting(&self) -> usize {
        self.write_gate.as_ref().map_or(0, |gate| gate.waiting.load(Ordering::SeqCst))
    }

    /// The writer's turn for location pings, which give way: a turn goes first to every other write
    /// (a missed deadline's escalation, a panic, a check-in) waiting by then. Under more pings than the
    /// writer can take, the pings wait (the phones keep them) and the alarms do not.
    pub async fn write_slot_after_others(&self) -> Option<OwnedMutexGuard<()>> {
        let gate = self.write_gate.as_ref()?;
        loop {
            let none_waiting = gate.none_waiting.notified();
            if gate.waiting.load(Ordering::SeqCst) > 0 {
                none_waiting.await;
                continue;
            }
            let turn = gate.turn.clone().lock_owned().await;
            // Another write may have queued while this waited in line: it goes first.
            if gate.waiting.load(Ordering::SeqCst) == 0 {
                return Some(turn);
            }
        }
    }

    /// A write transaction in the writer's turn already taken with [`Db::write_slot`].
    pub async fn begin_in(&self, gate: Option<OwnedMutexGuard<()>>) -> Result<WriteTx, sqlx::Error> {
        self.begin_on(&self.writer, gate).await
    }

    async fn begin_on(&self, pool: &AnyPool, gate: Option<OwnedMutexGuard<()>>) -> Result<WriteTx, sqlx::Error> {
        let tx = pool.begin().await?;
        Ok(WriteTx {
            tx,
            backend: self.backend,
            wrote_timers: false,
            wrote_deliveries: false,
            signals: self.signals,
            channels: self.channels,
            timers_changed: self.timers_changed.clone(),
            deliveries_changed: self.deliveries_changed.clone(),
            live: self.live.clone(),
            touched: BTreeSet::new(),
            positions: BTreeSet::new(),
            audit: Vec::new(),
            audit_key: self.audit_key.clone(),
            _gate: gate,
        })
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("select 1").execute(&self.pool).await.map(|_| ())
    }
}

/// Every SQLite connection's settings: write-ahead log, an fsync at every commit, foreign keys, and a
/// wait instead of an error when another connection holds the write lock.
pub async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    for pragma in [
        "pragma journal_mode = wal",
        "pragma synchronous = full",
        "pragma foreign_keys = on",
        "pragma busy_timeout = 10000",
    ] {
        conn.execute(pragma).await?;
    }
    Ok(())
}

/// The URL without its password (in the user part or a `password=` parameter), for messages and logs.
pub fn redact(url: &str) -> String {
    // The user part runs to the last `@`, whatever a password written raw holds: better to cut too
    // much than to leave a piece of the password.
    let (user, rest) = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = url[scheme + 3..at].split(':').next().unwrap_or("");
            (format!("{}{user}@", &url[..scheme + 3]), &url[at + 1..])
        }
        _ => (String::new(), url),
    };
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let parameters: Vec<&str> = query
                .split('&')
                .map(|p| if p.to_ascii_lowercase().starts_with("password=") { "password=***" } else { p })
                .collect();
            format!("{path}?{}", parameters.join("&"))
        }
        None => rest.to_string(),
    };
    user + &rest
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u@h:5432/db");
        assert_eq!(redact("sqlite://data/homeward.db?mode=rwc"), "sqlite://data/homeward.db?mode=rwc");
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u@h/db", "an @ in the password");
        assert_eq!(redact("postgres://h/db?user=u&password=secret&x=1"), "postgres://h/db?user=u&password=***&x=1");
        assert_eq!(redact("postgres://u:pa?ss/w@h/db"), "postgres://u@h/db", "a raw ? or / in the password");
    }
}
