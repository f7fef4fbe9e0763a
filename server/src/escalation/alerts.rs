//! Alerts and their ladder: raise, fire each step of the school's plan, repeat to every leader when the
//! plan runs out, pause while a leader owns the alert (and resume if they do not resolve it), stand
//! down when the worker turns up, resolve with an outcome. Whether an alert may change, and how, is
//! decided by the pure state machine in `homeward_shared::alert`; this module reads the alert, applies
//! the event and writes the new state.

use chrono::Duration;
use homeward_shared::alert::{AlertEffect, AlertError, AlertEvent, AlertState, AlertTransition, Resolution};
use homeward_shared::api::{AlertKind, AlertResolution, AlertStatus, EscalationPlanView, PushPayload};
use homeward_shared::escalation::{Channel, default_channels};
use homeward_shared::{Coordinates, Recipient, Role};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::parse_id;
use crate::clock::{from_millis, to_millis};
use crate::db::WriteTx;
use crate::error::ApiError;
use crate::escalation::recipients;
use crate::escalation::timers::{self, NewTimer, TimerKind};
use crate::notify::outbox::{self, Purpose};
use crate::store::sessions::SessionRow;
use crate::store::{audit, plans};

#[derive(Debug, Clone)]
pub struct Alert {
    pub id: Uuid,
    pub school_id: Uuid,
    pub session_id: Uuid,
    pub kind: AlertKind,
    pub status: AlertStatus,
    pub escalation_plan_id: Uuid,
    pub steps_fired: i64,
    pub instruction: Option<String>,
    pub trigger_at: Timestamp,
    pub raised_at: Timestamp,
    pub acknowledged_by: Option<Uuid>,
    pub acknowledged_at: Option<Timestamp>,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<Timestamp>,
    pub resolution: Option<AlertResolution>,
    pub resolution_notes: Option<String>,
    pub stood_down_at: Option<Timestamp>,
    pub last_location: Option<Coordinates>,
}

pub fn kind_str(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::MissedDeadline => "missed_deadline",
        AlertKind::Panic => "panic",
        AlertKind::Duress => "duress",
        AlertKind::LowBattery => "low_battery",
        AlertKind::SignalLost => "signal_lost",
        AlertKind::LeftGeofence => "left_geofence",
        AlertKind::MissedStart => "missed_start",
        AlertKind::SafetyNet => "safety_net",
    }
}

impl Alert {
    /// What the alert's lifecycle knows of it.
    pub fn state(&self) -> AlertState {
        AlertState {
            status: self.status,
            steps_fired: self.steps_fired,
            instruction: self.instruction.clone(),
            owner: self.acknowledged_by,
            owned_at: self.acknowledged_at,
            resolution: match (self.resolution, self.resolved_by, self.resolved_at) {
                (Some(outcome), Some(by), Some(at)) => {
                    Some(Resolution { outcome, notes: self.resolution_notes.clone().unwrap_or_default(), by, at })
                }
                _ => None,
            },
            stood_down_at: self.stood_down_at,
        }
    }

    fn set_state(&mut self, state: AlertState) {
        self.status = state.status;
        self.steps_fired = state.steps_fired;
        self.instruction = state.instruction;
        self.acknowledged_by = state.owner;
        self.acknowledged_at = state.owned_at;
        self.resolved_by = state.resolution.as_ref().map(|r| r.by);
        self.resolved_at = state.resolution.as_ref().map(|r| r.at);
        self.resolution = state.resolution.as_ref().map(|r| r.outcome);
        self.resolution_notes = state.resolution.map(|r| r.notes);
        self.stood_down_at = state.stood_down_at;
    }
}

/// A refused change a person asked for, as the API says it.
fn refused(error: AlertError) -> ApiError {
    match error {
        AlertError::AlreadyResolved | AlertError::AlreadyStoodDown => {
            ApiError::conflict("alert_closed", "this alert is already closed")
        }
        AlertError::OwnedByAnother => {
            ApiError::conflict("already_owned", "another leader has already taken ownership of this alert")
        }
        other => ApiError::conflict("alert_state", other.to_string()),
    }
}

pub fn resolution_str(r: AlertResolution) -> &'static str {
    match r {
        AlertResolution::WorkerSafe => "worker_safe",
        AlertResolution::FalseAlarm => "false_alarm",
        AlertResolution::Incident => "incident",
        AlertResolution::PoliceCalled => "police_called",
    }
}

fn parse_enum<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(raw.to_string()))
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored value `{raw}` is unreadable: {e}")))
}

const SELECT: &str = "select alert_id, school_id, session_id, kind, status, escalation_plan_id, steps_fired, instruction, \
    trigger_at, raised_at, acknowledged_by, acknowledged_at, resolved_by, resolved_at, resolution, resolution_notes, \
    stood_down_at, last_latitude, last_longitude from alerts";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Alert, ApiError> {
    use sqlx::Row;
    let opt_id = |i: usize| -> Result<Option<Uuid>, ApiError> {
        row.try_get::<Option<String>, _>(i)?.map(|s| parse_id(&s)).transpose()
    };
    let opt_time =
        |i: usize| -> Result<Option<Timestamp>, ApiError> { Ok(row.try_get::<Option<i64>, _>(i)?.map(from_millis)) };
    let latitude: Option<f64> = row.try_get(17)?;
    let longitude: Option<f64> = row.try_get(18)?;
    Ok(Alert {
        id: parse_id(&row.try_get::<String, _>(0)?)?,
        school_id: parse_id(&row.try_get::<String, _>(1)?)?,
        session_id: parse_id(&row.try_get::<String, _>(2)?)?,
        kind: parse_enum(&row.try_get::<String, _>(3)?)?,
        status: parse_enum(&row.try_get::<String, _>(4)?)?,
        escalation_plan_id: parse_id(&row.try_get::<String, _>(5)?)?,
        steps_fired: row.try_get(6)?,
        instruction: row.try_get(7)?,
        trigger_at: from_millis(row.try_get(8)?),
        raised_at: from_millis(row.try_get(9)?),
        acknowledged_by: opt_id(10)?,
        acknowledged_at: opt_time(11)?,
        resolved_by: opt_id(12)?,
        resolved_at: opt_time(13)?,
        resolution: row.try_get::<Option<String>, _>(14)?.map(|r| parse_enum(&r)).transpose()?,
        resolution_notes: row.try_get(15)?,
        stood_down_at: opt_time(16)?,
        last_location: latitude.zip(longitude).map(|(latitude, longitude)| Coordinates { latitude, longitude }),
    })
}

pub async fn get<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    id: Uuid,
) -> Result<Option<Alert>, ApiError> {
    let row = sqlx::query(&format!("{SELECT} where alert_id = $1")).bind(id.to_string()).fetch_optional(exec).await?;
    row.as_ref().map(from_row).transpose()
}

/// Lock the alert row for this transaction (PostgreSQL) and read it.
pub async fn lock(tx: &mut WriteTx, id: Uuid) -> Result<Option<Alert>, ApiError> {
    let sql = format!("{SELECT} where alert_id = $1{}", tx.for_update());
    let row = sqlx::query(&sql).bind(id.to_string()).fetch_optional(tx.conn()).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list_for_school(pool: &sqlx::AnyPool, school_id: Uuid, open_only: bool) -> Result<Vec<Alert>, ApiError> {
    let filter = if open_only { " and status in ('escalating', 'acknowledged')" } else { "" };
    let rows = sqlx::query(&format!("{SELECT} where school_id = $1{filter} order by raised_at desc limit 500"))
        .bind(school_id.to_string())
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}

async fn open_for_session(tx: &mut WriteTx, session_id: Uuid) -> Result<Vec<Alert>, ApiError> {
    let rows = sqlx::query(&format!(
        "{SELECT} where session_id = $1 and status in ('escalating', 'acknowledged') order by raised_at"
    ))
    .bind(session_id.to_string())
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Make an applied transition real: cancel the alert's timers if it says so, then write the new state
/// (nothing is written if nothing changed). Returns the effects left for the caller.
async fn settle(
    tx: &mut WriteTx,
    alert: &mut Alert,
    transition: AlertTransition,
    now: Timestamp,
) -> Result<Vec<AlertEffect>, ApiError> {
    let AlertTransition { state, mut effects } = transition;
    if effects.contains(&AlertEffect::TimersCancelled) {
        timers::cancel_for_alert(tx, alert.id, now).await?;
        effects.retain(|e| *e != AlertEffect::TimersCancelled);
    }
    if state != alert.state() {
        alert.set_state(state);
        write(tx, alert, now).await?;
    }
    Ok(effects)
}

async fn write(tx: &mut WriteTx, alert: &Alert, now: Timestamp) -> Result<(), ApiError> {
    tx.touch(alert.school_id);
    sqlx::query(
        "update alerts set status = $1, steps_fired = $2, instruction = $3, acknowledged_by = $4, acknowledged_at = $5, \
         resolved_by = $6, resolved_at = $7, resolution = $8, resolution_notes = $9, stood_down_at = $10, updated_at = $11 \
         where alert_id = $12",
    )
    .bind(alert.status.as_str())
    .bind(alert.steps_fired)
    .bind(alert.instruction.as_deref())
    .bind(alert.acknowledged_by.map(|u| u.to_string()))
    .bind(alert.acknowledged_at.map(to_millis))
    .bind(alert.resolved_by.map(|u| u.to_string()))
    .bind(alert.resolved_at.map(to_millis))
    .bind(alert.resolution.map(resolution_str))
    .bind(alert.resolution_notes.as_deref())
    .bind(alert.stood_down_at.map(to_millis))
    .bind(to_millis(now))
    .bind(alert.id.to_string())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The last known position: the latest ping, or the position sent with the panic.
async fn last_location(tx: &mut WriteTx, session_id: Uuid) -> Result<Option<Coordinates>, ApiError> {
    let row: Option<(f64, f64)> =
        sqlx::query_as("select latitude, longitude from location_pings where session_id = $1 order by at desc limit 1")
            .bind(session_id.to_string())
            .fetch_optional(tx.conn())
            .await?;
    Ok(row.map(|(latitude, longitude)| Coordinates { latitude, longitude }))
}

async fn insert(
    tx: &mut WriteTx,
    session: &SessionRow,
    kind: AlertKind,
    trigger_at: Timestamp,
    location: Option<Coordinates>,
    now: Timestamp,
) -> Result<Alert, ApiError> {
    let location = match location {
        Some(l) => Some(l),
        None => last_location(tx, session.id).await?,
    };
    let raised = AlertState::raised();
    let alert = Alert {
        id: Uuid::new_v4(),
        school_id: session.school_id,
        session_id: session.id,
        kind,
        status: raised.status,
        escalation_plan_id: session.escalation_plan_id,
        steps_fired: raised.steps_fired,
        instruction: None,
        trigger_at,
        raised_at: now,
        acknowledged_by: None,
        acknowledged_at: None,
        resolved_by: None,
        resolved_at: None,
        resolution: None,
        resolution_notes: None,
        stood_down_at: None,
        last_location: location,
    };
    // sqlx 0.8's Any driver binds a NULL f64 with the wrong type on PostgreSQL, which breaks the cached
    // statement for later positions (launchbadge/sqlx#4284): a missing position is written as SQL null.
    let position = if location.is_some() { "$8, $9" } else { "null, null" };
    let sql = format!(
        "insert into alerts (alert_id, school_id, session_id, kind, status, escalation_plan_id, steps_fired, trigger_at, \
         raised_at, last_latitude, last_longitude, updated_at) values ($1, $2, $3, $4, '{status}', $5, {steps}, $6, $7, {position}, $7)",
        status = alert.status.as_str(),
        steps = alert.steps_fired,
    );
    let mut query = sqlx::query(&sql)
        .bind(alert.id.to_string())
        .bind(alert.school_id.to_string())
        .bind(alert.session_id.to_string())
        .bind(kind_str(kind))
        .bind(alert.escalation_plan_id.to_string())
        .bind(to_millis(trigger_at))
        .bind(to_millis(now));
    if let Some(l) = location {
        query = query.bind(l.latitude).bind(l.longitude);
    }
    query.execute(tx.conn()).await?;
    sqlx::query("update sessions set has_alert = 1 where session_id = $1")
        .bind(session.id.to_string())
        .execute(tx.conn())
        .await?;
    audit::append(
        tx,
        audit::Action {
            school_id: alert.school_id,
            actor_id: None,
            action: "alert.raised",
            subject: format!("alert:{}", alert.id),
            detail: format!("{} for session {}", kind_str(kind), session.id),
            at: now,
        },
    )
    .await?;
    Ok(alert)
}

/// A deadline passed: open an amber alert and arm its first step.
pub async fn raise_missed_deadline(
    tx: &mut WriteTx,
    session: &SessionRow,
    deadline: Timestamp,
    now: Timestamp,
) -> Result<(), ApiError> {
    let alert = insert(tx, session, AlertKind::MissedDeadline, deadline, None, now).await?;
    let plan = plans::get_in_school(tx.conn(), alert.school_id, alert.escalation_plan_id).await?;
    let first = plan.steps.first().map_or(0, |s| s.delay_seconds);
    let due_at = deadline + Duration::seconds(first);
    if due_at <= now {
        // Usually the first step is "at once": fire it in this transaction rather than through a
        // timer, so the first message leaves with the commit that opened the alert.
        return fire_step_of(tx, alert, session, &plan, 0, now).await;
    }
    timers::insert(
        tx,
        NewTimer {
            school_id: alert.school_id,
            kind: TimerKind::EscalationStep,
            session_id: Some(session.id),
            alert_id: Some(alert.id),
            step_index: Some(0),
            due_at,
        },
        now,
    )
    .await
}

/// Panic or duress: a red alert that goes at once to the top of the plan (everyone any step names),
/// with the last known position. Nothing goes to the worker's own devices.
pub async fn raise_alarm(
    tx: &mut WriteTx,
    session: &SessionRow,
    kind: AlertKind,
    location: Option<Coordinates>,
    now: Timestamp,
) -> Result<(), ApiError> {
    // The red alert supersedes any amber one for this visit.
    for open in open_for_session(tx, session.id).await? {
        if open.kind == AlertKind::MissedDeadline {
            let mut superseded = open;
            let Ok(stood_down) = superseded.state().apply(&AlertEvent::StoodDown { at: now }) else { continue };
            settle(tx, &mut superseded, stood_down, now).await?;
        }
    }
    let mut alert = insert(tx, session, kind, now, location, now).await?;
    let plan = plans::get_in_school(tx.conn(), alert.school_id, alert.escalation_plan_id).await?;
    let everyone: Vec<Recipient> = plan.steps.iter().flat_map(|s| s.recipients.clone()).collect();
    let people = recipients::resolve(tx, session, &everyone, true, now).await?;
    let channels = plan_channels(&plan.steps);
    let instruction = plan.steps.last().map(|s| s.instruction.clone()).unwrap_or_default();
    let fired = AlertEvent::FiredAtOnce { steps: plan.steps.len() as i64, instruction: instruction.clone() };
    let fired = alert.state().apply(&fired).map_err(refused)?;
    settle(tx, &mut alert, fired, now).await?;
    let payload = payload(&alert, session, Purpose::Step, None, &instruction);
    outbox::enqueue(tx, &alert, &people, Purpose::Step, None, &channels, &payload, now).await?;
    schedule_repeat(tx, &alert, session.id, now + Duration::seconds(plan.repeat_every_seconds), now).await
}

async fn schedule_repeat(
    tx: &mut WriteTx,
    alert: &Alert,
    session_id: Uuid,
    due_at: Timestamp,
    now: Timestamp,
) -> Result<(), ApiError> {
    timers::insert(
        tx,
        NewTimer {
            school_id: alert.school_id,
            kind: TimerKind::Repeat,
            session_id: Some(session_id),
            alert_id: Some(alert.id),
            step_index: None,
            due_at,
        },
        now,
    )
    .await
}

/// Fire step `index` of the plan, then arm the next step, or the repeat once the plan has run out.
pub async fn fire_step(
    tx: &mut WriteTx,
    alert: Alert,
    session: &SessionRow,
    index: i64,
    now: Timestamp,
) -> Result<(), ApiError> {
    // A stale timer (the step fired already, or the alert is owned or closed) does nothing.
    if alert.state().step_is_due(index).is_err() {
        return Ok(());
    }
    let plan = plans::get_in_school(tx.conn(), alert.school_id, alert.escalation_plan_id).await?;
    fire_step_of(tx, alert, session, &plan, index, now).await
}

/// [`fire_step`] with the alert's plan already in hand.
async fn fire_step_of(
    tx: &mut WriteTx,
    mut alert: Alert,
    session: &SessionRow,
    plan: &EscalationPlanView,
    index: i64,
    now: Timestamp,
) -> Result<(), ApiError> {
    let Some(step) = plan.steps.get(index as usize) else {
        if alert.state().apply(&AlertEvent::PlanRanOut { index }).is_err() {
            return Ok(());
        }
        return schedule_repeat(tx, &alert, session.id, now, now).await;
    };
    let Ok(fired) = alert.state().apply(&AlertEvent::StepFired { index, instruction: step.instruction.clone() }) else {
        return Ok(());
    };
    let people = recipients::resolve(tx, session, &step.recipients, false, now).await?;
    settle(tx, &mut alert, fired, now).await?;
    // A step that named the on-call leader when nobody is on call, and so reaches nobody, must not leave
    // the alert waiting for its next step's delay: the next step fires now.
    let mut fall_through = false;
    if step.recipients.contains(&Recipient::OnCallLeader) {
        let on_call = recipients::on_call(tx, alert.school_id, now).await?;
        let reason = match on_call.leader() {
            None => Some(on_call.reason()),
            // Named by the rota but deactivated since: nobody is really on call.
            Some(leader) if !people.contains(&leader) => Some("the on-call leader's account is deactivated"),
            Some(_) => None,
        };
        if let Some(reason) = reason {
            fall_through = people.is_empty();
            outbox::record_nobody_on_call(tx, &alert, index, reason, now).await?;
            audit::append(
                tx,
                audit::Action {
                    school_id: alert.school_id,
                    actor_id: None,
                    action: "alert.nobody_on_call",
                    subject: format!("alert:{}", alert.id),
                    detail: format!(
                        "step {}: {}{}",
                        index + 1,
                        reason,
                        if fall_through { "; moving straight to the next step" } else { "" }
                    ),
                    at: now,
                },
            )
            .await?;
        }
    }
    let payload = payload(&alert, session, Purpose::Step, Some(index), &step.instruction);
    outbox::enqueue(tx, &alert, &people, Purpose::Step, Some(index), &step.channels, &payload, now).await?;
    audit::append(
        tx,
        audit::Action {
            school_id: alert.school_id,
            actor_id: None,
            action: "alert.step_fired",
            subject: format!("alert:{}", alert.id),
            detail: format!("step {} to {} people: {}", index + 1, people.len(), step.instruction),
            at: now,
        },
    )
    .await?;
    if fall_through {
        // Straight on: the next step, or the repeat to every leader once the plan has run out.
        return match plan.steps.get(index as usize + 1) {
            Some(_) => Box::pin(fire_step(tx, alert, session, index + 1, now)).await,
            None => schedule_repeat(tx, &alert, session.id, now, now).await,
        };
    }
    match plan.steps.get(index as usize + 1) {
        Some(next) => {
            // Steps are timed from the trigger; one resumed after an ownership timeout fires at once.
            let due_at = (alert.trigger_at + Duration::seconds(next.delay_seconds)).max(now);
            timers::insert(
                tx,
                NewTimer {
                    school_id: alert.school_id,
                    kind: TimerKind::EscalationStep,
                    session_id: Some(session.id),
                    alert_id: Some(alert.id),
                    step_index: Some(index + 1),
                    due_at,
                },
                now,
            )
            .await
        }
        None => schedule_repeat(tx, &alert, session.id, now + Duration::seconds(plan.repeat_every_seconds), now).await,
    }
}

/// The plan ran out and nobody has taken ownership: tell every leader again. It never ends silently.
pub async fn fire_repeat(tx: &mut WriteTx, alert: Alert, session: &SessionRow, now: Timestamp) -> Result<(), ApiError> {
    // Owned or closed since the repeat was armed: nothing to do.
    if alert.state().apply(&AlertEvent::Repeated).is_err() {
        return Ok(());
    }
    let plan = plans::get_in_school(tx.conn(), alert.school_id, alert.escalation_plan_id).await?;
    // Every leader, and whoever is on call (who may hold another role).
    let leaders = recipients::resolve(
        tx,
        session,
        &[Recipient::Role { role: Role::Leader }, Recipient::OnCallLeader],
        alert.kind != AlertKind::MissedDeadline,
        now,
    )
    .await?;
    let instruction = alert.instruction.clone().unwrap_or_else(|| "Take ownership of this alert now.".into());
    let payload = payload(&alert, session, Purpose::Repeat, None, &instruction);
    outbox::enqueue(tx, &alert, &leaders, Purpose::Repeat, None, &plan_channels(&plan.steps), &payload, now).await?;
    schedule_repeat(tx, &alert, session.id, now + Duration::seconds(plan.repeat_every_seconds), now).await
}

/// Ownership was taken but the alert is still not resolved: escalation resumes where it stopped.
pub async fn ownership_timed_out(
    tx: &mut WriteTx,
    mut alert: Alert,
    session: &SessionRow,
    now: Timestamp,
) -> Result<(), ApiError> {
    // Resolved, stood down or already resumed in the meantime: nothing to do.
    let Ok(lapsed) = alert.state().apply(&AlertEvent::OwnershipLapsed) else { return Ok(()) };
    let effects = settle(tx, &mut alert, lapsed, now).await?;
    audit::append(
        tx,
        audit::Action {
            school_id: alert.school_id,
            actor_id: None,
            action: "alert.ownership_timed_out",
            subject: format!("alert:{}", alert.id),
            detail: "not resolved in time: escalation resumes".into(),
            at: now,
        },
    )
    .await?;
    let Some(&AlertEffect::EscalationResumed { next_step }) = effects.first() else { return Ok(()) };
    let plan = plans::get_in_school(tx.conn(), alert.school_id, alert.escalation_plan_id).await?;
    if (next_step as usize) < plan.steps.len() {
        fire_step(tx, alert, session, next_step, now).await
    } else {
        fire_repeat(tx, alert, session, now).await
    }
}

pub async fn acknowledge(
    tx: &mut WriteTx,
    mut alert: Alert,
    user: Uuid,
    ownership_timeout: Duration,
    now: Timestamp,
) -> Result<Alert, ApiError> {
    let taken = alert.state().apply(&AlertEvent::TakenOwnership { by: user, at: now }).map_err(refused)?;
    let effects = settle(tx, &mut alert, taken, now).await?;
    if !effects.contains(&AlertEffect::OwnershipTimeoutArmed) {
        // The owner took it again: nothing changed.
        return Ok(alert);
    }
    timers::insert(
        tx,
        NewTimer {
            school_id: alert.school_id,
            kind: TimerKind::OwnershipTimeout,
            session_id: Some(alert.session_id),
            alert_id: Some(alert.id),
            step_index: None,
            due_at: now + ownership_timeout,
        },
        now,
    )
    .await?;
    audit::append(
        tx,
        audit::Action {
            school_id: alert.school_id,
            actor_id: Some(user),
            action: "alert.acknowledged",
            subject: format!("alert:{}", alert.id),
            detail: "took ownership".into(),
            at: now,
        },
    )
    .await?;
    Ok(alert)
}

pub async fn resolve(
    tx: &mut WriteTx,
    mut alert: Alert,
    session: &SessionRow,
    user: Uuid,
    resolution: AlertResolution,
    notes: String,
    now: Timestamp,
) -> Result<Alert, ApiError> {
    let resolved = AlertEvent::Resolved { outcome: resolution, notes: notes.clone(), by: user, at: now };
    let resolved = alert.state().apply(&resolved).map_err(refused)?;
    settle(tx, &mut alert, resolved, now).await?;
    audit::append(
        tx,
        audit::Action {
            school_id: alert.school_id,
            actor_id: Some(user),
            action: "alert.resolved",
            subject: format!("alert:{}", alert.id),
            detail: format!("{}: {notes}", resolution_str(resolution)),
            at: now,
        },
    )
    .await?;
    let told = outbox::recipients_alerted(tx, alert.id).await?;
    let text = format!("Resolved ({}). No further action needed.", resolution_str(resolution).replace('_', " "));
    let payload = payload(&alert, session, Purpose::Resolved, None, &text);
    let channels = alert_channels(tx, &alert).await?;
    outbox::enqueue(tx, &alert, &told, Purpose::Resolved, None, &channels, &payload, now).await?;
    Ok(alert)
}

/// The worker checked in or ended while overdue: close the amber alert and tell everyone already alerted.
pub async fn stand_down(
    tx: &mut WriteTx,
    session: &SessionRow,
    late_by: Duration,
    now: Timestamp,
) -> Result<(), ApiError> {
    for mut alert in open_for_session(tx, session.id).await? {
        if alert.kind != AlertKind::MissedDeadline {
            continue;
        }
        let Ok(stood_down) = alert.state().apply(&AlertEvent::StoodDown { at: now }) else { continue };
        settle(tx, &mut alert, stood_down, now).await?;
        audit::append(
            tx,
            audit::Action {
                school_id: alert.school_id,
                actor_id: None,
                action: "alert.stood_down",
                subject: format!("alert:{}", alert.id),
                detail: format!("the worker reported in {} min late", late_by.num_minutes()),
                at: now,
            },
        )
        .await?;
        let told = outbox::recipients_alerted(tx, alert.id).await?;
        let text = format!("{} has reported in and is safe. Stand down: no action needed.", session.worker_name);
        let payload = payload(&alert, session, Purpose::StandDown, None, &text);
        let channels = alert_channels(tx, &alert).await?;
        outbox::enqueue(tx, &alert, &told, Purpose::StandDown, None, &channels, &payload, now).await?;
    }
    Ok(())
}

/// Has this session already had an alert of this kind? Informational alerts fire once per session.
pub async fn exists_for_session(tx: &mut WriteTx, session_id: Uuid, kind: AlertKind) -> Result<bool, ApiError> {
    let row: Option<(String,)> =
        sqlx::query_as("select alert_id from alerts where session_id = $1 and kind = $2 limit 1")
            .bind(session_id.to_string())
            .bind(kind_str(kind))
            .fetch_optional(tx.conn())
            .await?;
    Ok(row.is_some())
}

/// Raise an informational alert once per session and kind, telling `people` with `text`. Returns the
/// alert, or `None` if this session already had one of this kind.
pub async fn raise_notice(
    tx: &mut WriteTx,
    session: &SessionRow,
    kind: AlertKind,
    people: &[Recipient],
    text: &str,
    location: Option<Coordinates>,
    now: Timestamp,
) -> Result<Option<Alert>, ApiError> {
    if exists_for_session(tx, session.id, kind).await? {
        return Ok(None);
    }
    let mut alert = insert(tx, session, kind, now, location, now).await?;
    let noticed = alert.state().apply(&AlertEvent::NoticeSent { text: text.to_string() }).map_err(refused)?;
    settle(tx, &mut alert, noticed, now).await?;
    notify(tx, &alert, session, people, text, now).await?;
    Ok(Some(alert))
}

/// Tell `people` about an informational alert (again).
pub async fn notify(
    tx: &mut WriteTx,
    alert: &Alert,
    session: &SessionRow,
    people: &[Recipient],
    text: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    let people = recipients::resolve(tx, session, people, false, now).await?;
    let payload = payload(alert, session, Purpose::Notice, None, text);
    outbox::enqueue(tx, alert, &people, Purpose::Notice, None, &default_channels(), &payload, now).await
}

/// The visit is over: its informational alerts close with it.
pub async fn close_notices(tx: &mut WriteTx, session_id: Uuid, now: Timestamp) -> Result<(), ApiError> {
    for mut alert in open_for_session(tx, session_id).await? {
        if alert.kind.is_informational()
            && let Ok(stood_down) = alert.state().apply(&AlertEvent::StoodDown { at: now })
        {
            settle(tx, &mut alert, stood_down, now).await?;
        }
    }
    Ok(())
}

pub async fn find_for_session(tx: &mut WriteTx, session_id: Uuid, kind: AlertKind) -> Result<Option<Alert>, ApiError> {
    let row = sqlx::query(&format!("{SELECT} where session_id = $1 and kind = $2 order by raised_at desc limit 1"))
        .bind(session_id.to_string())
        .bind(kind_str(kind))
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every channel any step of the plan uses, in the order first used: a panic, a repeat, a stand-down
/// or a resolution reach people the way the plan would.
fn plan_channels(steps: &[homeward_shared::EscalationStep]) -> Vec<Channel> {
    let mut channels = Vec::new();
    for channel in steps.iter().flat_map(|s| s.channels.iter()) {
        if !channels.contains(channel) {
            channels.push(*channel);
        }
    }
    channels
}

async fn alert_channels(tx: &mut WriteTx, alert: &Alert) -> Result<Vec<Channel>, ApiError> {
    let plan = plans::get_in_school(tx.conn(), alert.school_id, alert.escalation_plan_id).await?;
    Ok(plan_channels(&plan.steps))
}

/// What the notification says: who, what kind of alert and what to do. Never the address.
fn payload(alert: &Alert, session: &SessionRow, purpose: Purpose, step: Option<i64>, text: &str) -> PushPayload {
    let who = &session.worker_name;
    let title = match (purpose, alert.kind) {
        (Purpose::StandDown, _) => format!("Stand down: {who} is safe"),
        (Purpose::Resolved, _) => format!("Alert resolved: {who}"),
        (Purpose::Repeat, _) => format!("Still unanswered: {who}"),
        (Purpose::Step, AlertKind::MissedDeadline) => format!("Missed check-in: {who}"),
        (Purpose::Step, AlertKind::Panic) => format!("PANIC: {who} needs help"),
        (Purpose::Step, AlertKind::Duress) => format!("SILENT ALARM: {who} may be under duress"),
        (_, AlertKind::LowBattery) => format!("Low battery: {who}"),
        (_, AlertKind::SignalLost) => format!("Signal lost: {who}"),
        (_, AlertKind::LeftGeofence) => format!("Left the visit: {who}"),
        (_, AlertKind::MissedStart) => format!("Visit not started: {who}"),
        (_, AlertKind::SafetyNet) => format!("Safety net: {who}'s visit may reach nobody"),
        (Purpose::Notice, _) => format!("Notice: {who}"),
    };
    PushPayload {
        alert_id: alert.id,
        kind: alert.kind,
        purpose: purpose.as_str().into(),
        step: step.map(|s| s + 1),
        title,
        body: text.to_string(),
        url: format!("/alerts/{}", alert.id),
    }
}
