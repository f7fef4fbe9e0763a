//! The escalation engine: the database is the timer. A session's deadline is a timer row; when it
//! fires and still stands, the school's plan is put into operation, step by step, until someone takes
//! ownership; it never ends silently.

pub mod alerts;
pub mod recipients;
pub mod safety_net;
pub mod scheduler;
pub mod signals;
pub mod timers;

use homeward_shared::api::AlertKind;
use homeward_shared::session::{AlarmKind, SessionState, SessionStatus};

use crate::Timestamp;
use crate::db::WriteTx;
use crate::error::ApiError;
use crate::store::sessions::SessionRow;
use timers::{NewTimer, TimerKind};

/// Keep timers and alerts in step with a session's change of state, in the same transaction.
pub async fn on_transition(
    tx: &mut WriteTx,
    session: &SessionRow,
    before: &SessionState,
    after: &SessionState,
    now: Timestamp,
) -> Result<(), ApiError> {
    if before.deadline != after.deadline || before.status != after.status {
        timers::cancel_session_deadline(tx, session.id, now).await?;
        if after.status == SessionStatus::Active
            && let Some(deadline) = after.deadline
        {
            timers::insert(
                tx,
                NewTimer {
                    school_id: session.school_id,
                    kind: TimerKind::SessionDeadline,
                    session_id: Some(session.id),
                    alert_id: None,
                    step_index: None,
                    due_at: deadline,
                },
                now,
            )
            .await?;
        }
    }
    if before.started_at.is_none() && after.started_at.is_some() {
        // No ping at all is a lost signal too.
        let check_at = after.started_at.unwrap_or(now).max(now) + tx.signals.signal_lost_after;
        signals::arm_signal_check(tx, session, check_at, now).await?;
    }
    if after.ended_at.is_some() && before.ended_at.is_none() {
        timers::cancel_for_session(tx, session.id, TimerKind::SignalCheck, now).await?;
        alerts::close_notices(tx, session.id, now).await?;
    }
    if before.alarm.is_none()
        && let Some(alarm) = after.alarm
    {
        let kind = match alarm {
            AlarmKind::Panic => AlertKind::Panic,
            AlarmKind::Duress => AlertKind::Duress,
        };
        return alerts::raise_alarm(tx, session, kind, after.alarm_location, now).await;
    }
    if before.status != SessionStatus::Overdue && after.status == SessionStatus::Overdue {
        let deadline = after.overdue_since.unwrap_or(now);
        alerts::raise_missed_deadline(tx, session, deadline, now).await?;
    } else if before.status == SessionStatus::Overdue && after.status != SessionStatus::Overdue && after.alarm.is_none()
    {
        let late_by = before.overdue_since.map_or(chrono::Duration::zero(), |missed| now - missed);
        alerts::stand_down(tx, session, late_by, now).await?;
    }
    Ok(())
}
