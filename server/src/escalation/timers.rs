//! Timer rows: what must happen at a time. A timer fires once: it is claimed in a transaction
//! (`for update skip locked` on PostgreSQL, the single writer on SQLite) and marked fired in the same
//! transaction as its effects.

use uuid::Uuid;

use crate::Timestamp;
use crate::auth::parse_id;
use crate::clock::{from_millis, to_millis};
use crate::db::{Backend, Db, WriteTx};
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// The session's deadline: if it is still the deadline when this fires, the session is overdue.
    SessionDeadline,
    /// Step `step_index` of the alert's plan.
    EscalationStep,
    /// After the plan ran out: tell every leader again.
    Repeat,
    /// A leader took ownership but has not resolved the alert in time.
    OwnershipTimeout,
    /// No location ping since this was armed: the worker's phone may have lost signal.
    SignalCheck,
    /// The worker was prompted after leaving the geofence; if still not ended, tell the line manager.
    GeofenceFollowUp,
    /// A planned visit that has not started by now reminds its worker.
    MissedStart,
    /// Before a visit: can its plan reach someone at every step?
    SafetyNetCheck,
}

impl TimerKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TimerKind::SessionDeadline => "session_deadline",
            TimerKind::EscalationStep => "escalation_step",
            TimerKind::Repeat => "repeat",
            TimerKind::OwnershipTimeout => "ownership_timeout",
            TimerKind::SignalCheck => "signal_check",
            TimerKind::GeofenceFollowUp => "geofence_follow_up",
            TimerKind::MissedStart => "missed_start",
            TimerKind::SafetyNetCheck => "safety_net_check",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [
            TimerKind::SessionDeadline,
            TimerKind::EscalationStep,
            TimerKind::Repeat,
            TimerKind::OwnershipTimeout,
            TimerKind::SignalCheck,
            TimerKind::GeofenceFollowUp,
            TimerKind::MissedStart,
            TimerKind::SafetyNetCheck,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }
}

#[derive(Debug, Clone)]
pub struct Timer {
    pub id: Uuid,
    pub school_id: Uuid,
    pub kind: TimerKind,
    pub session_id: Option<Uuid>,
    pub alert_id: Option<Uuid>,
    pub step_index: Option<i64>,
    pub due_at: Timestamp,
}

pub struct NewTimer {
    pub school_id: Uuid,
    pub kind: TimerKind,
    pub session_id: Option<Uuid>,
    pub alert_id: Option<Uuid>,
    pub step_index: Option<i64>,
    pub due_at: Timestamp,
}

pub async fn insert(tx: &mut WriteTx, timer: NewTimer, now: Timestamp) -> Result<(), ApiError> {
    sqlx::query(
        "insert into timers (timer_id, school_id, kind, session_id, alert_id, step_index, due_at, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(timer.school_id.to_string())
    .bind(timer.kind.as_str())
    .bind(timer.session_id.map(|s| s.to_string()))
    .bind(timer.alert_id.map(|a| a.to_string()))
    .bind(timer.step_index)
    .bind(to_millis(timer.due_at))
    .bind(to_millis(now))
    .execute(tx.conn())
    .await?;
    tx.wrote_timers = true;
    Ok(())
}

pub async fn cancel_session_deadline(tx: &mut WriteTx, session_id: Uuid, now: Timestamp) -> Result<(), ApiError> {
    sqlx::query(
        "update timers set cancelled_at = $1 where session_id = $2 and kind = 'session_deadline' \
         and fired_at is null and cancelled_at is null",
    )
    .bind(to_millis(now))
    .bind(session_id.to_string())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Move a session's pending timer of one kind to `due_at`, if it has one due no later than that;
/// returns whether it did.
pub async fn postpone_for_session(
    tx: &mut WriteTx,
    session_id: Uuid,
    kind: TimerKind,
    due_at: Timestamp,
) -> Result<bool, ApiError> {
    let moved = sqlx::query(
        "update timers set due_at = $1 where session_id = $2 and kind = $3 and fired_at is null \
         and cancelled_at is null and due_at <= $1",
    )
    .bind(to_millis(due_at))
    .bind(session_id.to_string())
    .bind(kind.as_str())
    .execute(tx.conn())
    .await?;
    Ok(moved.rows_affected() > 0)
}

/// The earliest pending timer of one kind for each of these sessions that has one (unix ms).
pub async fn earliest_pending_for_sessions(
    tx: &mut WriteTx,
    kind: TimerKind,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, i64>, ApiError> {
    let mut earliest = std::collections::HashMap::with_capacity(ids.len());
    for piece in crate::db::batch::pieces(ids, 64) {
        let sql = format!(
            "select session_id, min(due_at) from timers where session_id in {} and kind = ${} \
             and fired_at is null and cancelled_at is null group by session_id",
            crate::db::batch::tuples(1, piece.len()),
            piece.len() + 1
        );
        let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
        for id in piece {
            query = query.bind(id.to_string());
        }
        for (session_id, due_at) in query.bind(kind.as_str()).fetch_all(tx.conn()).await? {
            earliest.insert(parse_id(&session_id)?, due_at);
        }
    }
    Ok(earliest)
}

/// [`postpone_for_session`] for many sessions at once; returns the sessions whose timer moved.
pub async fn postpone_for_sessions(
    tx: &mut WriteTx,
    kind: TimerKind,
    due: &[(Uuid, Timestamp)],
) -> Result<std::collections::HashSet<Uuid>, ApiError> {
    let mut moved = std::collections::HashSet::with_capacity(due.len());
    for piece in crate::db::batch::pieces(due, 64) {
        // `values` names its columns column1, column2 on both databases.
        let sql = format!(
            "update timers set due_at = v.column2 from (values {}) as v \
             where timers.session_id = v.column1 and timers.kind = ${} and timers.fired_at is null \
             and timers.cancelled_at is null and timers.due_at <= v.column2 returning timers.session_id",
            crate::db::batch::tuples(piece.len(), 2),
            piece.len() * 2 + 1
        );
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        for (session_id, due_at) in piece {
            query = query.bind(session_id.to_string()).bind(to_millis(*due_at));
        }
        for (session_id,) in query.bind(kind.as_str()).fetch_all(tx.conn()).await? {
            moved.insert(parse_id(&session_id)?);
        }
    }
    Ok(moved)
}

/// Cancel a session's pending timers of one kind.
pub async fn cancel_for_session(
    tx: &mut WriteTx,
    session_id: Uuid,
    kind: TimerKind,
    now: Timestamp,
) -> Result<(), ApiError> {
    sqlx::query(
        "update timers set cancelled_at = $1 where session_id = $2 and kind = $3 and fired_at is null and cancelled_at is null",
    )
    .bind(to_millis(now))
    .bind(session_id.to_string())
    .bind(kind.as_str())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Cancel the alert's pending steps, repeats and ownership timeout.
pub async fn cancel_for_alert(tx: &mut WriteTx, alert_id: Uuid, now: Timestamp) -> Result<(), ApiError> {
    sqlx::query(
        "update timers set cancelled_at = $1 where alert_id = $2 and fired_at is null and cancelled_at is null",
    )
    .bind(to_millis(now))
    .bind(alert_id.to_string())
    .execute(tx.conn())
    .await?;
    Ok(())
}

type Row = (String, String, String, Option<String>, Option<String>, Option<i64>, i64);

fn to_timer(row: Row) -> Result<Timer, ApiError> {
    let (id, school_id, kind, session_id, alert_id, step_index, due_at) = row;
    Ok(Timer {
        id: parse_id(&id)?,
        school_id: parse_id(&school_id)?,
        kind: TimerKind::parse(&kind)
            .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("unknown timer kind `{kind}`")))?,
        session_id: session_id.map(|s| parse_id(&s)).transpose()?,
        alert_id: alert_id.map(|a| parse_id(&a)).transpose()?,
        step_index,
        due_at: from_millis(due_at),
    })
}

/// Claim up to `limit` of the earliest due timers, locked for this transaction; other processes skip
/// them.
pub async fn claim_due(tx: &mut WriteTx, now: Timestamp, limit: i64) -> Result<Vec<Timer>, ApiError> {
    let lock = match tx.backend {
        Backend::Postgres => " for update skip locked",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "select timer_id, school_id, kind, session_id, alert_id, step_index, due_at from timers \
         where fired_at is null and cancelled_at is null and due_at <= $1 order by due_at limit {limit}{lock}"
    );
    let rows: Vec<Row> = sqlx::query_as(&sql).bind(to_millis(now)).fetch_all(tx.conn()).await?;
    rows.into_iter().map(to_timer).collect()
}

pub async fn still_pending(tx: &mut WriteTx, id: Uuid) -> Result<bool, ApiError> {
    let row: Option<(String,)> =
        sqlx::query_as("select timer_id from timers where timer_id = $1 and fired_at is null and cancelled_at is null")
            .bind(id.to_string())
            .fetch_optional(tx.conn())
            .await?;
    Ok(row.is_some())
}

pub async fn mark_fired(tx: &mut WriteTx, id: Uuid, now: Timestamp) -> Result<(), ApiError> {
    sqlx::query("update timers set fired_at = $1 where timer_id = $2")
        .bind(to_millis(now))
        .bind(id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Try a timer again later (its effects failed); it is never dropped.
pub async fn postpone(tx: &mut WriteTx, id: Uuid, to: Timestamp) -> Result<(), ApiError> {
    sqlx::query("update timers set due_at = $1 where timer_id = $2")
        .bind(to_millis(to))
        .bind(id.to_string())
        .execute(tx.conn())
        .await?;
    tx.wrote_timers = true;
    Ok(())
}

pub async fn next_due(db: &Db) -> Result<Option<Timestamp>, ApiError> {
    let row: (Option<i64>,) =
        sqlx::query_as("select min(due_at) from timers where fired_at is null and cancelled_at is null")
            .fetch_one(db.alarms_pool())
            .await?;
    Ok(row.0.map(from_millis))
}
