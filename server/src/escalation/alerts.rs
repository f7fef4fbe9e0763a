//! Alerts and their ladder: raise, fire each step of the school's plan, repeat to every leader when the
//! plan runs out, pause while a leader owns the alert (and resume if they do not resolve it), stand
//! down when the worker turns up, resolve with an outcome.

use chrono::Duration;
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

fn status_str(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Escalating => "escalating",
        AlertStatus::Acknowledged => "acknowledged",
        AlertStatus::Resolved => "resolved",
        AlertStatus::StoodDown => "stood_down",
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

async fn write(tx: &mut WriteTx, alert: &Alert, now: Timestamp) -> Result<(), ApiError> {
    tx.touch(alert.school_id);
    sqlx::query(
        "update alerts set status = $1, steps_fired = $2, instruction = $3, acknowledged_by = $4, acknowledged_at = $5, \
         resolved_by = $6, resolved_at = $7, resolution = $8, resolution_notes = $9, stood_down_at = $10, updated_at = $11 \
         where alert_id = $12",
    )
    .bind(status_str(alert.status))
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
    let alert = Alert {
        id: Uuid::new_v4(),
        school_id: session.school_id,
        session_id: session.id,
        kind,
        status: AlertStatus::Escalating,
        escalation_plan_id: session.escalation_plan_id,
        steps_fired: 0,
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
         raised_at, last_latitude, last_longitude, updated_at) values ($1, $2, $3, $4, 'escalating', $5, 0, $6, $7, {position}, $7)"
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
            superseded.status = AlertStatus::StoodDown;
            superseded.stood_down_at = Some(now);
            timers::cancel_for_alert(tx, superseded.id, now).await?;
            write(tx, &superseded, now).await?;
        }
    }
    let mut alert = insert(tx, session, kind, now, location, now).await?;
    let plan = plans::get_in_school(tx.conn(), alert.school_id, alert.escalation_plan_id).await?;
    let everyone: Vec<Recipient> = plan.steps.iter().flat_map(|s| s.recipients.clone()).collect();
    let people = recipients::resolve(tx, session, &everyone, true, now).await?;
    let channels = plan_channels(&plan.steps);
    let instruction = plan.steps.last().map(|s| s.instruction.clone()).unwrap_or_default();
    alert.steps_fired = plan.steps.len() as i64;
    alert.instruction = Some(instruction.clone());
    write(tx, &alert, now).await?;
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
    if alert.status != AlertStatus::Escalating || index < alert.steps_fired {
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
    if alert.status != AlertStatus::Escalating || index < alert.steps_fired {
        return Ok(());
    }
    let Some(step) = plan.steps.get(index as usize) else {
        return schedule_repeat(tx, &alert, session.id, now, now).await;
    };
    let people = recipients::resolve(tx, session, &step.recipients, false, now).await?;
    alert.steps_fired = index + 1;
    alert.instruction = Some(step.instruction.clone());
    write(tx, &alert, now).await?;
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
    if alert.status != AlertStatus::Escalating {
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
    if alert.status != AlertStatus::Acknowledged {
        return Ok(());
    }
    alert.status = AlertStatus::Escalating;
    write(tx, &alert, now).await?;
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
    let plan = plans::get_in_school(tx.conn(), alert.school_id, alert.escalation_plan_id).await?;
    if (alert.steps_fired as usize) < plan.steps.len() {
        let index = alert.steps_fired;
        fire_step(tx, alert, session, index, now).await
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
    match alert.status {
        AlertStatus::Escalating => {}
        AlertStatus::Acknowledged if alert.acknowledged_by == Some(user) => return Ok(alert),
        AlertStatus::Acknowledged => {
            return Err(ApiError::conflict(
                "already_owned",
                "another leader has already taken ownership of this alert",
            ));
        }
        AlertStatus::Resolved | AlertStatus::StoodDown => {
            return Err(ApiError::conflict("alert_closed", "this alert is already closed"));
        }
    }
    alert.status = AlertStatus::Acknowledged;
    alert.acknowledged_by = Some(user);
    alert.acknowledged_at = Some(now);
    timers::cancel_for_alert(tx, alert.id, now).await?;
    write(tx, &alert, now).await?;
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
    if matches!(alert.status, AlertStatus::Resolved | AlertStatus::StoodDown) {
        return Err(ApiError::conflict("alert_closed", "this alert is already closed"));
    }
    if alert.acknowledged_by.is_none() {
        // Resolving takes ownership.
        alert.acknowledged_by = Some(user);
        alert.acknowledged_at = Some(now);
    }
    alert.status = AlertStatus::Resolved;
    alert.resolved_by = Some(user);
    alert.resolved_at = Some(now);
    alert.resolution = Some(resolution);
    alert.resolution_notes = Some(notes.clone());
    timers::cancel_for_alert(tx, alert.id, now).await?;
    write(tx, &alert, now).await?;
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
        alert.status = AlertStatus::StoodDown;
        alert.stood_down_at = Some(now);
        timers::cancel_for_alert(tx, alert.id, now).await?;
        write(tx, &alert, now).await?;
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
    alert.instruction = Some(text.to_string());
    write(tx, &alert, now).await?;
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
        if alert.kind.is_informational() {
            alert.status = AlertStatus::StoodDown;
            alert.stood_down_at = Some(now);
            timers::cancel_for_alert(tx, alert.id, now).await?;
            write(tx, &alert, now).await?;
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
