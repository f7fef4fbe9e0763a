//! One scheduler loop per server process: sleep until the next due timer (or until a transaction that
//! wrote one commits), claim due timers in small batches and fire each exactly once.

use std::sync::Arc;
use std::time::Duration;

use homeward_shared::session::{Event, EventKind};
use uuid::Uuid;

use super::timers::{self, Timer, TimerKind};
use super::{alerts, safety_net, signals};
use crate::Timestamp;
use crate::db::{Backend, WriteTx};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::sessions::{self, NewEvent, Source};

/// Location older than the retention period is purged this often.
const PURGE_EVERY: chrono::Duration = chrono::Duration::hours(1);
/// How often the scheduler looks for schools whose daily check of leaders' channels is due.
const REACH_CHECK_EVERY: chrono::Duration = chrono::Duration::hours(1);
/// How often the scheduler looks for schools whose audit log's daily signed head is due.
const AUDIT_HEAD_CHECK_EVERY: chrono::Duration = chrono::Duration::hours(1);
/// The first look, this long after start: a server restarting over and over does not sign (and e-mail)
/// a head at every start, nor while a school is still being set up.
const AUDIT_HEAD_FIRST_AFTER: chrono::Duration = chrono::Duration::minutes(10);

pub async fn run(state: Arc<AppState>, poll: Duration) {
    let mut last_purge: Option<Timestamp> = None;
    let mut last_reach_check: Option<Timestamp> = None;
    let mut last_audit_head_check = state.clock.now() - AUDIT_HEAD_CHECK_EVERY + AUDIT_HEAD_FIRST_AFTER;
    loop {
        let now = state.clock.now();
        if state.db.signals.safety_net && last_reach_check.is_none_or(|at| now - at >= REACH_CHECK_EVERY) {
            match safety_net::daily_check(&state.db, now).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(leaders = n, "some leaders cannot be reached on any channel"),
                Err(e) => tracing::error!(error = %e, "checking leaders' channels failed; will try again"),
            }
            last_reach_check = Some(now);
        }
        if now - last_audit_head_check >= AUDIT_HEAD_CHECK_EVERY {
            match crate::store::audit::record_heads(&state, now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(schools = n, "signed the audit log's daily heads"),
                Err(e) => tracing::error!(error = %e, "signing the audit log's daily heads failed; will try again"),
            }
            last_audit_head_check = now;
        }
        if last_purge.is_none_or(|at| now - at >= PURGE_EVERY) {
            match crate::store::pings::purge_expired(&state.db, now).await {
                Ok(n) if n > 0 => tracing::info!(pings = n, "purged location past its retention period"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "purging old location failed; will try again"),
            }
            last_purge = Some(now);
        }
        let wake = state.db.timers_changed.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        if let Err(e) = fire_due_in_lanes(&state).await {
            tracing::error!(error = %e, "the scheduler failed; retrying");
        }
        let now = state.clock.now();
        let sleep = match timers::next_due(&state.db).await {
            Ok(Some(due)) => (due - now).to_std().unwrap_or(Duration::ZERO).min(poll),
            _ => poll,
        };
        tokio::select! {
            _ = &mut wake => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// At most this many timers fire in one transaction. One commit (one fsync on SQLite) per batch
/// instead of per timer is what lets a burst of deadlines drain at thousands per second; the batch is
/// small enough that the first timer in it is not held back noticeably by the last.
const SQLITE_BATCH: i64 = 64;
/// PostgreSQL fires smaller batches in several lanes at once: its row locks (`skip locked`) keep the
/// lanes' batches apart, and a burst is drained by waiting on several round trips at a time instead of
/// one after another. (SQLite has one writer, so one lane.)
const POSTGRES_BATCH: i64 = 8;
pub(crate) const POSTGRES_LANES: usize = 4;

/// Fire every timer due by now, in as many lanes as the database lets write side by side.
async fn fire_due_in_lanes(state: &AppState) -> Result<usize, ApiError> {
    let (lanes, batch) = match state.db.backend {
        Backend::Postgres => (POSTGRES_LANES, POSTGRES_BATCH),
        Backend::Sqlite => (1, SQLITE_BATCH),
    };
    let results = futures::future::join_all((0..lanes).map(|_| fire_due_in_batches(state, batch))).await;
    results.into_iter().sum()
}

/// Fire every timer due by now; returns how many fired. Safe to call from several places and
/// processes at once: each timer fires once.
pub async fn fire_due(state: &AppState) -> Result<usize, ApiError> {
    let batch = match state.db.backend {
        Backend::Postgres => POSTGRES_BATCH,
        Backend::Sqlite => SQLITE_BATCH,
    };
    fire_due_in_batches(state, batch).await
}

async fn fire_due_in_batches(state: &AppState, batch_size: i64) -> Result<usize, ApiError> {
    let mut fired = 0;
    loop {
        let now = state.clock.now();
        let mut tx = state.db.begin_for_alarms().await?;
        let batch = timers::claim_due(&mut tx, now, batch_size).await?;
        if batch.is_empty() {
            tx.commit().await?;
            return Ok(fired);
        }
        for timer in &batch {
            // An earlier timer in this batch may have cancelled this one (a step after ownership).
            if !timers::still_pending(&mut tx, timer.id).await? {
                continue;
            }
            // Each timer's effects sit behind a savepoint: one that fails is undone and postponed
            // without undoing the others in the batch.
            execute(&mut tx, "savepoint timer").await?;
            let mark = tx.mark();
            match fire(&mut tx, timer, now).await {
                Ok(()) => {
                    timers::mark_fired(&mut tx, timer.id, now).await?;
                    execute(&mut tx, "release savepoint timer").await?;
                    fired += 1;
                }
                Err(e) => {
                    execute(&mut tx, "rollback to savepoint timer").await?;
                    tx.rollback_to(mark);
                    tracing::error!(error = %e, timer = %timer.id, "a timer could not fire; it will be tried again");
                    timers::postpone(&mut tx, timer.id, now + chrono::Duration::seconds(5)).await?;
                }
            }
        }
        tx.commit().await?;
    }
}

async fn execute(tx: &mut WriteTx, sql: &'static str) -> Result<(), ApiError> {
    sqlx::query(sql).execute(tx.conn()).await?;
    Ok(())
}

async fn fire(tx: &mut WriteTx, timer: &Timer, now: Timestamp) -> Result<(), ApiError> {
    let Some(session_id) = timer.session_id else { return Ok(()) };
    let Some(session) = lock_session(tx, session_id).await? else { return Ok(()) };
    match timer.kind {
        TimerKind::SessionDeadline => {
            // The deadline is the session's own, not the timer's `due_at` (a retried timer's is later).
            // A deadline still ahead has a timer of its own: nothing to do yet.
            let Some(deadline) = session.deadline.filter(|d| *d <= now) else { return Ok(()) };
            // The event is dated when the deadline passed, so a check-in queued before it still wins.
            let event = Event { id: Uuid::new_v4(), at: deadline, kind: EventKind::DeadlineMissed { deadline } };
            match sessions::record(tx, &session, vec![NewEvent { event, source: Source::Server, actor_id: None }], now)
                .await
            {
                // The deadline moved or the visit ended in the meantime: nothing to do.
                Err(ApiError::Conflict { .. }) => Ok(()),
                other => other.map(|_| ()),
            }
        }
        TimerKind::SignalCheck => signals::fire_signal_check(tx, &session, now).await,
        TimerKind::GeofenceFollowUp => signals::fire_geofence_follow_up(tx, &session, now).await,
        TimerKind::MissedStart => signals::fire_missed_start(tx, &session, now).await,
        TimerKind::SafetyNetCheck => safety_net::fire_check(tx, &session, now).await,
        TimerKind::EscalationStep | TimerKind::Repeat | TimerKind::OwnershipTimeout => {
            let Some(alert) = (match timer.alert_id {
                Some(id) => alerts::lock(tx, id).await?,
                None => None,
            }) else {
                return Ok(());
            };
            match timer.kind {
                TimerKind::EscalationStep => {
                    alerts::fire_step(tx, alert, &session, timer.step_index.unwrap_or(0), now).await
                }
                TimerKind::Repeat => alerts::fire_repeat(tx, alert, &session, now).await,
                _ => alerts::ownership_timed_out(tx, alert, &session, now).await,
            }
        }
    }
}

async fn lock_session(tx: &mut WriteTx, id: Uuid) -> Result<Option<sessions::SessionRow>, ApiError> {
    if tx.backend == Backend::Postgres {
        sqlx::query("select session_id from sessions where session_id = $1 for update")
            .bind(id.to_string())
            .execute(tx.conn())
            .await?;
    }
    sessions::get(tx.conn(), id).await
}
