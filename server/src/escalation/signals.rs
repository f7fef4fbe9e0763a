//! Informational alerts from what the phone reports, or fails to: low battery, lost signal, leaving the
//! visit without ending it, and a visit that never started. Each fires once per session.

use chrono::Duration;
use homeward_shared::api::{AlertKind, LocationPing};
use homeward_shared::{Coordinates, Recipient, geometry};

use crate::Timestamp;
use crate::clock::to_millis;
use crate::db::WriteTx;
use crate::error::ApiError;
use crate::escalation::alerts;
use crate::escalation::timers::{self, NewTimer, TimerKind};
use crate::store::sessions::SessionRow;

/// Below this the phone may die before the visit ends.
pub const LOW_BATTERY_PERCENT: i64 = 15;
/// A planned visit not started this long after its planned start reminds the worker.
pub const MISSED_START_AFTER_MINUTES: i64 = 15;

/// How the signals are tuned (from the server's settings).
#[derive(Debug, Clone, Copy)]
pub struct SignalSettings {
    pub signal_lost_after: Duration,
    pub geofence_follow_up_after: Duration,
    /// Check, before a visit, that its plan can reach someone at every step (and tell people if not).
    pub safety_net: bool,
}

impl Default for SignalSettings {
    fn default() -> Self {
        Self {
            signal_lost_after: Duration::minutes(10),
            geofence_follow_up_after: Duration::minutes(2),
            safety_net: true,
        }
    }
}

/// Look at a batch of pings just stored for a live session.
pub async fn on_pings(
    tx: &mut WriteTx,
    session: &SessionRow,
    pings: &[LocationPing],
    settings: SignalSettings,
    now: Timestamp,
) -> Result<(), ApiError> {
    if let Some(due_at) = signal_check_due(session, pings, settings, now) {
        keep_signal_check_behind(tx, session, due_at, settings, now).await?;
    }
    on_ping_positions(tx, session, pings, settings, now).await
}

/// Whether a pending lost-signal check due at `earliest` (unix ms) has fallen far enough behind a
/// ping that would have it at `due_at` to be moved. Only by more than half a period: a check that
/// comes due while the phone still reports arms itself again ([`fire_signal_check`]), so a phone
/// reporting every few seconds moves its timer row a few times an hour rather than with every report
/// (each move is a row written and, on PostgreSQL, an entry in each of the timer's indexes).
fn signal_check_is_behind(earliest: i64, due_at: Timestamp, settings: SignalSettings) -> bool {
    earliest < to_millis(due_at - settings.signal_lost_after / 2)
}

/// A pending check due within this of now is left to fire rather than moved. On PostgreSQL the
/// scheduler may already have claimed (locked) its row and be waiting for the session's lock, which the
/// ping's transaction holds: moving it would wait for the scheduler in turn, a deadlock. Left alone, it
/// fires after the ping commits, sees the ping and arms itself again ([`fire_signal_check`]).
const LEFT_TO_FIRE: chrono::Duration = chrono::Duration::seconds(5);

/// Whether a ping at `now` that would have the pending check (due at `earliest`, unix ms) at `due_at`
/// moves it: only once it is well behind, and never when it is about to fire.
pub fn signal_check_to_move(earliest: i64, due_at: Timestamp, settings: SignalSettings, now: Timestamp) -> bool {
    signal_check_is_behind(earliest, due_at, settings) && earliest > to_millis(now + LEFT_TO_FIRE)
}

/// After a ping: move the session's pending lost-signal check on to `due_at` once it has fallen
/// behind ([`signal_check_to_move`]), or arm one if there is none.
async fn keep_signal_check_behind(
    tx: &mut WriteTx,
    session: &SessionRow,
    due_at: Timestamp,
    settings: SignalSettings,
    now: Timestamp,
) -> Result<(), ApiError> {
    let (earliest,): (Option<i64>,) = sqlx::query_as(
        "select min(due_at) from timers where session_id = $1 and kind = $2 and fired_at is null \
         and cancelled_at is null",
    )
    .bind(session.id.to_string())
    .bind(TimerKind::SignalCheck.as_str())
    .fetch_one(tx.conn())
    .await?;
    match earliest {
        Some(earliest) if !signal_check_to_move(earliest, due_at, settings, now) => Ok(()),
        Some(_) => arm_signal_check(tx, session, due_at, now).await,
        None => replace_signal_check(tx, session, due_at, now).await,
    }
}

/// When the lost-signal check is due once these pings are in: every report re-arms it from the newest
/// ping. `None` when the session is no longer live (or there are no pings).
pub fn signal_check_due(
    session: &SessionRow,
    pings: &[LocationPing],
    settings: SignalSettings,
    now: Timestamp,
) -> Option<Timestamp> {
    if !session.status.is_live() || session.ended_at.is_some() {
        return None;
    }
    next_signal_check(pings, settings, now)
}

/// When a live session's lost-signal check is due once these pings are in (`None` for no pings).
pub fn next_signal_check(pings: &[LocationPing], settings: SignalSettings, now: Timestamp) -> Option<Timestamp> {
    let latest = pings.iter().max_by_key(|p| p.at)?;
    Some(latest.at.max(now - settings.signal_lost_after) + settings.signal_lost_after)
}

/// What a batch of pings says, before anything is read or written.
pub struct PingNotices {
    /// The newest fix.
    pub position: Coordinates,
    /// A battery level below [`LOW_BATTERY_PERCENT`] among the pings.
    pub low_battery: Option<i64>,
    /// The newest fix is clearly outside the visit's geofence.
    pub left_geofence: bool,
}

impl PingNotices {
    pub fn any(&self) -> bool {
        self.low_battery.is_some() || self.left_geofence
    }
}

/// What these pings say about the phone and where it is (`None` for no pings).
pub fn ping_notices(visit: Option<Coordinates>, geofence_radius_m: i64, pings: &[LocationPing]) -> Option<PingNotices> {
    let latest = pings.iter().max_by_key(|p| p.at)?;
    let position = Coordinates { latitude: latest.latitude, longitude: latest.longitude };
    let low_battery = pings.iter().filter_map(|p| p.battery_percent).find(|b| *b < LOW_BATTERY_PERCENT);
    // The fix's accuracy is given the benefit of the doubt: only a clear exit counts.
    let left_geofence = visit
        .is_some_and(|visit| !geometry::within(position, visit, geofence_radius_m as f64 + latest.accuracy_m.max(0.0)));
    Some(PingNotices { position, low_battery, left_geofence })
}

/// What the pings themselves say: a low battery, or the worker outside the visit's geofence. Reads and
/// writes nothing unless one of them is so.
pub async fn on_ping_positions(
    tx: &mut WriteTx,
    session: &SessionRow,
    pings: &[LocationPing],
    settings: SignalSettings,
    now: Timestamp,
) -> Result<(), ApiError> {
    let Some(notices) = ping_notices(session.location, session.geofence_radius_m, pings) else { return Ok(()) };
    let position = notices.position;
    if !session.status.is_live() || session.ended_at.is_some() {
        return Ok(());
    }

    if let Some(low) = notices.low_battery {
        let text = format!("{}'s phone battery is at {low}%. Charge it or end the visit soon.", session.worker_name);
        alerts::raise_notice(
            tx,
            session,
            AlertKind::LowBattery,
            &[Recipient::Worker, Recipient::LineManager],
            &text,
            Some(position),
            now,
        )
        .await?;
    }

    if notices.left_geofence {
        let text = "You seem to have left the visit address. If you have left, end the visit now so the school knows you are safe.";
        if let Some(alert) =
            alerts::raise_notice(tx, session, AlertKind::LeftGeofence, &[Recipient::Worker], text, Some(position), now)
                .await?
        {
            timers::insert(
                tx,
                NewTimer {
                    school_id: session.school_id,
                    kind: TimerKind::GeofenceFollowUp,
                    session_id: Some(session.id),
                    alert_id: Some(alert.id),
                    step_index: None,
                    due_at: now + settings.geofence_follow_up_after,
                },
                now,
            )
            .await?;
        }
    }
    Ok(())
}

pub async fn arm_signal_check(
    tx: &mut WriteTx,
    session: &SessionRow,
    due_at: Timestamp,
    now: Timestamp,
) -> Result<(), ApiError> {
    // Every ping re-arms this timer: move the pending one later in place (one write, no new row, and
    // no need to wake the scheduler, which will find it later than it thought); only when there is
    // none, or it would have to move earlier, replace it.
    if timers::postpone_for_session(tx, session.id, TimerKind::SignalCheck, due_at).await? {
        return Ok(());
    }
    replace_signal_check(tx, session, due_at, now).await
}

/// A new lost-signal check due at `due_at` in place of any pending one (which could not be moved to it).
pub async fn replace_signal_check(
    tx: &mut WriteTx,
    session: &SessionRow,
    due_at: Timestamp,
    now: Timestamp,
) -> Result<(), ApiError> {
    timers::cancel_for_session(tx, session.id, TimerKind::SignalCheck, now).await?;
    timers::insert(
        tx,
        NewTimer {
            school_id: session.school_id,
            kind: TimerKind::SignalCheck,
            session_id: Some(session.id),
            alert_id: None,
            step_index: None,
            due_at,
        },
        now,
    )
    .await
}

pub async fn arm_missed_start(tx: &mut WriteTx, session: &SessionRow, now: Timestamp) -> Result<(), ApiError> {
    timers::insert(
        tx,
        NewTimer {
            school_id: session.school_id,
            kind: TimerKind::MissedStart,
            session_id: Some(session.id),
            alert_id: None,
            step_index: None,
            due_at: session.planned_start + Duration::minutes(MISSED_START_AFTER_MINUTES),
        },
        now,
    )
    .await
}

/// No ping for a full period and the visit is still live: tell the line manager where the phone was
/// last seen. A ping within the period arms the check again instead.
pub async fn fire_signal_check(tx: &mut WriteTx, session: &SessionRow, now: Timestamp) -> Result<(), ApiError> {
    if !session.status.is_live() || session.ended_at.is_some() {
        return Ok(());
    }
    let last: Option<(i64, f64, f64)> = sqlx::query_as(
        "select at, latitude, longitude from location_pings where session_id = $1 order by at desc limit 1",
    )
    .bind(session.id.to_string())
    .fetch_optional(tx.conn())
    .await?;
    // Pings move the check only when it has fallen well behind them (see `store::ping_group`), so it
    // can come due while the phone still reports: then it looks again a full period after the newest.
    if let Some((at, ..)) = last {
        let again = crate::clock::from_millis(at) + tx.signals.signal_lost_after;
        if again > now {
            return replace_signal_check(tx, session, again, now).await;
        }
    }
    let position = last.map(|(_, latitude, longitude)| Coordinates { latitude, longitude });
    let seen = match last {
        Some((at, ..)) => format!("last located at {}", crate::clock::from_millis(at).format("%H:%M")),
        None => "no location received since the visit started".to_string(),
    };
    let text = format!("{}'s phone has stopped reporting ({seen}). Try phoning them.", session.worker_name);
    alerts::raise_notice(tx, session, AlertKind::SignalLost, &[Recipient::LineManager], &text, position, now)
        .await
        .map(|_| ())
}

/// Prompted after leaving the geofence and still not ended: tell the line manager.
pub async fn fire_geofence_follow_up(tx: &mut WriteTx, session: &SessionRow, now: Timestamp) -> Result<(), ApiError> {
    if !session.status.is_live() || session.ended_at.is_some() {
        return Ok(());
    }
    let Some(alert) = alerts::find_for_session(tx, session.id, AlertKind::LeftGeofence).await? else { return Ok(()) };
    let text = format!(
        "{} left the visit address and has not ended the visit. Phone them to check they are safe.",
        session.worker_name
    );
    alerts::notify(tx, &alert, session, &[Recipient::LineManager], &text, now).await
}

/// Still planned long after its start: remind the worker.
pub async fn fire_missed_start(tx: &mut WriteTx, session: &SessionRow, now: Timestamp) -> Result<(), ApiError> {
    use homeward_shared::session::{ApprovalStatus, SessionStatus};
    if session.status != SessionStatus::Planned || session.approval_status == ApprovalStatus::Rejected {
        return Ok(());
    }
    let text = format!(
        "Your visit planned for {} has not started. Start it in Homeward when you arrive, or tell your line manager it is off.",
        session.planned_start.format("%H:%M")
    );
    alerts::raise_notice(tx, session, AlertKind::MissedStart, &[Recipient::Worker], &text, None, now).await.map(|_| ())
}
