//! Alerts and their ladder: raise, fire each step of the school's plan, repeat to every leader when the
//! plan runs out, pause while a leader owns the alert (and resume if they do not resolve it), stand
//! down when the worker turns up, resolve with an outcome. Whether an alert may change, and how, is
//! decided by the pure state machine in `homeward_shared::alert`; this module reads the alert, applies
//! the event and writes the new state.

use chrono::Duration;
use homeward_shared::alert::{AlertEffect, AlertError, AlertEvent, AlertState, AlertTransition};
use homeward_shared::api::{AlertKind, AlertResolution, EscalationPlanView, PushPayload};
use homeward_shared::escalation::{Channel, default_channels};
use homeward_shared::{Coordinates, Recipient, Role};
use uuid::Uuid;

use crate::Timestamp;
use crate::db::WriteTx;
use crate::error::ApiError;
use crate::escalation::recipients;
use crate::escalation::timers::{self, NewTimer, TimerKind};
use crate::notify::outbox::{self, Purpose};
use crate::store::alerts::{self, open_for_session, write};
pub use crate::store::alerts::{
    Alert, exists_for_session, find_for_session, get, kind_str, list_for_school, lock, resolution_str,
};
use crate::store::sessions::{self, SessionRow};
use crate::store::{audit, plans};

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
        None => alerts::last_position(tx, session.id).await?,
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
    alerts::insert(tx, &alert).await?;
    sessions::mark_alerted(tx, session.id).await?;
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
