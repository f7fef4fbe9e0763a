//! Lone-working sessions: planning, reading, and recording what happened to them. The stored events are
//! the truth; the session row is their replay through the shared state machine, kept for reading.

use homeward_shared::api::{ApprovalView, SessionView};
use homeward_shared::session::{
    AlarmKind, ApprovalStatus, Event, EventKind, Outcome, SessionError, SessionState, SessionStatus, SessionTerms,
    replay,
};
use homeward_shared::{CheckInInterval, Coordinates, RiskAssessment, VisitDuration};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::AuthUser;
use crate::clock::{from_millis, to_millis};
use crate::db::WriteTx;
use crate::db::parse_id;
use crate::error::ApiError;
use crate::store::audit;

/// A validated plan, ready to store.
pub struct NewSession {
    pub school_id: Uuid,
    pub worker_id: Uuid,
    pub companion_id: Option<Uuid>,
    pub kind: homeward_shared::SessionKind,
    pub address: String,
    pub location: Option<Coordinates>,
    pub geofence_radius_m: i64,
    pub pupil_reference: Option<String>,
    pub household_notes: String,
    pub planned_start: Timestamp,
    pub expected_duration: VisitDuration,
    pub check_in_interval: Option<CheckInInterval>,
    pub escalation_plan_id: Uuid,
    pub risk_assessment: RiskAssessment,
    pub approval_required: bool,
}

/// One session as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: Uuid,
    pub school_id: Uuid,
    pub worker_id: Uuid,
    pub worker_name: String,
    pub companion_id: Option<Uuid>,
    pub kind: String,
    pub sub_kind: Option<String>,
    pub address: String,
    pub location: Option<Coordinates>,
    pub geofence_radius_m: i64,
    pub pupil_reference: Option<String>,
    pub household_notes: String,
    pub planned_start: Timestamp,
    pub expected_duration_minutes: i64,
    pub check_in_interval_minutes: Option<i64>,
    pub escalation_plan_id: Uuid,
    pub risk_assessment: RiskAssessment,
    pub approval_required: bool,
    pub approval_status: ApprovalStatus,
    pub approval_reason: Option<String>,
    pub approval_decided_by: Option<Uuid>,
    pub approval_decided_at: Option<Timestamp>,
    pub status: SessionStatus,
    pub alarm: Option<AlarmKind>,
    pub deadline: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub last_check_in: Option<Timestamp>,
    pub late_check_ins: i64,
    pub outcome: Option<Outcome>,
    pub created_at: Timestamp,
    /// Whether any alert has been raised for this visit: household notes reach responders only then.
    pub has_alert: bool,
}

impl SessionRow {
    pub fn terms(&self) -> Result<SessionTerms, ApiError> {
        let corrupt =
            |e: homeward_shared::FieldError| ApiError::Unexpected(anyhow::anyhow!("stored session {}: {e}", self.id));
        Ok(SessionTerms {
            expected_duration: VisitDuration::parse(self.expected_duration_minutes).map_err(corrupt)?,
            check_in_interval: self
                .check_in_interval_minutes
                .map(CheckInInterval::parse)
                .transpose()
                .map_err(corrupt)?,
            approval_required: self.approval_required,
        })
    }

    /// Whether `user` may see this session at all: its worker and companion, and the school's leaders,
    /// DSL and admins. Anyone else gets a 404, as if it did not exist.
    pub fn visible_to(&self, user: &AuthUser) -> bool {
        may_see(user, self.school_id, self.worker_id, self.companion_id)
    }

    /// The person on the visit: its worker or companion.
    pub fn is_worker_side(&self, user_id: Uuid) -> bool {
        self.worker_id == user_id || self.companion_id == Some(user_id)
    }

    /// The session as `viewer` may see it. The worker's own view of a duress alarm is an ordinary end.
    pub fn view(&self, viewer: &AuthUser) -> SessionView {
        // Whatever their role, the worker's (and companion's) own phone never learns of a duress alarm:
        // someone may be watching the screen.
        let hide_duress = self.is_worker_side(viewer.user_id) && self.alarm == Some(AlarmKind::Duress);
        // The household notes are for the people on the visit; responders see them once an alert exists.
        let household_notes = if self.is_worker_side(viewer.user_id) || self.has_alert {
            self.household_notes.clone()
        } else {
            String::new()
        };
        let (status, alarm) = if hide_duress {
            (if self.outcome.is_some() { SessionStatus::OutcomeRecorded } else { SessionStatus::Ended }, None)
        } else {
            (self.status, self.alarm)
        };
        SessionView {
            id: self.id,
            school_id: self.school_id,
            worker_id: self.worker_id,
            worker_name: self.worker_name.clone(),
            companion_id: self.companion_id,
            kind: self.kind.clone(),
            sub_kind: self.sub_kind.clone(),
            address: self.address.clone(),
            location: self.location,
            geofence_radius_m: self.geofence_radius_m,
            pupil_reference: self.pupil_reference.clone(),
            household_notes,
            planned_start: self.planned_start,
            expected_duration_minutes: self.expected_duration_minutes,
            check_in_interval_minutes: self.check_in_interval_minutes,
            escalation_plan_id: self.escalation_plan_id,
            risk_assessment: self.risk_assessment.clone(),
            approval: ApprovalView {
                status: self.approval_status,
                reason: self.approval_reason.clone(),
                decided_by: self.approval_decided_by,
                decided_at: self.approval_decided_at,
            },
            status,
            alarm,
            deadline: self.deadline,
            started_at: self.started_at,
            ended_at: self.ended_at,
            last_check_in: self.last_check_in,
            late_check_ins: self.late_check_ins,
            outcome: self.outcome.clone(),
            created_at: self.created_at,
        }
    }
}

const SELECT: &str = "select s.session_id, s.school_id, s.worker_id, u.name, s.companion_id, s.kind, s.sub_kind, s.address, \
    s.latitude, s.longitude, s.geofence_radius_m, s.pupil_reference, s.household_notes, s.planned_start, \
    s.expected_duration_minutes, s.check_in_interval_minutes, s.escalation_plan_id, s.risk_assessment, \
    s.approval_required, s.approval_status, s.approval_reason, s.approval_decided_by, s.approval_decided_at, s.status, \
    s.alarm, s.deadline, s.started_at, s.ended_at, s.last_check_in, s.late_check_ins, s.outcome, s.created_at, \
    s.has_alert \
    from sessions s join users u on u.user_id = s.worker_id";

fn decode<T: serde::de::DeserializeOwned>(what: &str, raw: &str) -> Result<T, ApiError> {
    serde_json::from_str(raw).map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored {what} is unreadable: {e}")))
}

/// Whether `user` may see a session of this school with this worker and companion: the people on the
/// visit, and those who oversee the school.
pub fn may_see(user: &AuthUser, school_id: Uuid, worker_id: Uuid, companion_id: Option<Uuid>) -> bool {
    user.school_id == school_id
        && (worker_id == user.user_id || companion_id == Some(user.user_id) || user.oversees_school())
}

pub(crate) fn enum_from<T: serde::de::DeserializeOwned>(what: &str, raw: &str) -> Result<T, ApiError> {
    decode(what, &serde_json::Value::String(raw.to_string()).to_string())
}

fn enum_str<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<SessionRow, ApiError> {
    use sqlx::Row;
    let id = |i: usize| -> Result<Uuid, ApiError> { parse_id(&row.try_get::<String, _>(i)?) };
    let opt_id = |i: usize| -> Result<Option<Uuid>, ApiError> {
        row.try_get::<Option<String>, _>(i)?.map(|s| parse_id(&s)).transpose()
    };
    let opt_time =
        |i: usize| -> Result<Option<Timestamp>, ApiError> { Ok(row.try_get::<Option<i64>, _>(i)?.map(from_millis)) };
    let latitude: Option<f64> = row.try_get(8)?;
    let longitude: Option<f64> = row.try_get(9)?;
    Ok(SessionRow {
        id: id(0)?,
        school_id: id(1)?,
        worker_id: id(2)?,
        worker_name: row.try_get(3)?,
        companion_id: opt_id(4)?,
        kind: row.try_get(5)?,
        sub_kind: row.try_get(6)?,
        address: row.try_get(7)?,
        location: latitude.zip(longitude).map(|(latitude, longitude)| Coordinates { latitude, longitude }),
        geofence_radius_m: row.try_get(10)?,
        pupil_reference: row.try_get(11)?,
        household_notes: row.try_get(12)?,
        planned_start: from_millis(row.try_get(13)?),
        expected_duration_minutes: row.try_get(14)?,
        check_in_interval_minutes: row.try_get(15)?,
        escalation_plan_id: id(16)?,
        risk_assessment: decode("risk assessment", &row.try_get::<String, _>(17)?)?,
        approval_required: row.try_get::<i64, _>(18)? != 0,
        approval_status: enum_from("approval status", &row.try_get::<String, _>(19)?)?,
        approval_reason: row.try_get(20)?,
        approval_decided_by: opt_id(21)?,
        approval_decided_at: opt_time(22)?,
        status: enum_from("status", &row.try_get::<String, _>(23)?)?,
        alarm: row.try_get::<Option<String>, _>(24)?.map(|a| enum_from("alarm", &a)).transpose()?,
        deadline: opt_time(25)?,
        started_at: opt_time(26)?,
        ended_at: opt_time(27)?,
        last_check_in: opt_time(28)?,
        late_check_ins: row.try_get(29)?,
        outcome: row.try_get::<Option<String>, _>(30)?.map(|o| decode("outcome", &o)).transpose()?,
        created_at: from_millis(row.try_get(31)?),
        has_alert: row.try_get::<i64, _>(32)? > 0,
    })
}

#[tracing::instrument(skip_all)]
pub async fn insert(tx: &mut WriteTx, new: &NewSession, actor: Uuid, now: Timestamp) -> Result<Uuid, ApiError> {
    let id = Uuid::new_v4();
    let approval = if new.approval_required { ApprovalStatus::Required } else { ApprovalStatus::NotRequired };
    sqlx::query(
        "insert into sessions (session_id, school_id, worker_id, companion_id, kind, sub_kind, address, latitude, longitude, \
         geofence_radius_m, pupil_reference, household_notes, planned_start, expected_duration_minutes, check_in_interval_minutes, \
         escalation_plan_id, risk_assessment, risk_level, approval_required, approval_status, status, late_check_ins, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, case when $22 = 1 then $8 else null end, case when $22 = 1 then $9 else null end, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, 'planned', 0, $21, $21)",
    )
    .bind(id.to_string())
    .bind(new.school_id.to_string())
    .bind(new.worker_id.to_string())
    .bind(new.companion_id.map(|c| c.to_string()))
    .bind(new.kind.kind_str())
    .bind(new.kind.sub_kind_str())
    .bind(&new.address)
    // Always a real f64: sqlx 0.8's Any driver binds a NULL f64 with the wrong type on PostgreSQL
    // (launchbadge/sqlx#4284); $22 says whether the visit has a position.
    .bind(new.location.map_or(0.0, |l| l.latitude))
    .bind(new.location.map_or(0.0, |l| l.longitude))
    .bind(new.geofence_radius_m)
    .bind(new.pupil_reference.as_deref())
    .bind(&new.household_notes)
    .bind(to_millis(new.planned_start))
    .bind(new.expected_duration.minutes())
    .bind(new.check_in_interval.map(|i| i.minutes()))
    .bind(new.escalation_plan_id.to_string())
    .bind(serde_json::to_string(&new.risk_assessment).map_err(anyhow::Error::from)?)
    .bind(new.risk_assessment.overall.as_str())
    .bind(i64::from(new.approval_required))
    .bind(approval.as_str())
    .bind(to_millis(now))
    .bind(i64::from(new.location.is_some()))
    .execute(tx.conn())
    .await?;
    audit::append(
        tx,
        audit::Action {
            school_id: new.school_id,
            actor_id: Some(actor),
            action: "session.planned",
            subject: format!("session:{id}"),
            detail: format!(
                "{} {} at {}, risk {}, approval {}",
                new.kind.kind_str(),
                new.kind.sub_kind_str().unwrap_or(""),
                new.planned_start.to_rfc3339(),
                new.risk_assessment.overall.as_str(),
                approval.as_str()
            ),
            at: now,
        },
    )
    .await?;
    Ok(id)
}

pub async fn get<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    id: Uuid,
) -> Result<Option<SessionRow>, ApiError> {
    let row =
        sqlx::query(&format!("{SELECT} where s.session_id = $1")).bind(id.to_string()).fetch_optional(exec).await?;
    row.as_ref().map(from_row).transpose()
}

/// Sessions by id, 64 to a statement, each statement ending with `suffix` (a row lock, or nothing).
async fn read_many(
    conn: &mut sqlx::AnyConnection,
    ids: &[Uuid],
    suffix: &str,
) -> Result<std::collections::HashMap<Uuid, SessionRow>, ApiError> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for piece in crate::db::batch::pieces(ids, 64) {
        let sql = format!("{SELECT} where s.session_id in {}{suffix}", crate::db::batch::tuples(1, piece.len()));
        let mut query = sqlx::query(&sql);
        for id in piece {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let session = from_row(&row)?;
            found.insert(session.id, session);
        }
    }
    Ok(found)
}

/// Read sessions to write to in a group of pings: on PostgreSQL each row is also locked for the rest of
/// the transaction, unless another transaction holds it (`skip locked`): a group never waits for a row
/// lock, so it cannot deadlock with anything, and a session left out is written alone afterwards. On
/// SQLite, whose single writer already serialises writers, every session found is returned.
pub async fn lock_available(
    tx: &mut WriteTx,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, SessionRow>, ApiError> {
    let lock = match tx.backend {
        crate::db::Backend::Postgres => " for update of s skip locked",
        crate::db::Backend::Sqlite => "",
    };
    read_many(tx.conn(), ids, lock).await
}

/// The session if `user` may see it; 404 otherwise (including another school's sessions).
pub async fn get_visible<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    user: &AuthUser,
    id: Uuid,
) -> Result<SessionRow, ApiError> {
    match get(exec, id).await? {
        Some(s) if s.visible_to(user) => Ok(s),
        _ => Err(ApiError::NotFound("session")),
    }
}

/// Lock the session row for the rest of the transaction (PostgreSQL) and read it, in one statement.
pub async fn lock(tx: &mut WriteTx, user: &AuthUser, id: Uuid) -> Result<SessionRow, ApiError> {
    // Only the session's row: the worker's stays free for their other visits.
    let lock = if tx.backend == crate::db::Backend::Postgres { " for update of s" } else { "" };
    let row = sqlx::query(&format!("{SELECT} where s.session_id = $1{lock}"))
        .bind(id.to_string())
        .fetch_optional(tx.conn())
        .await?;
    match row.as_ref().map(from_row).transpose()? {
        Some(s) if s.visible_to(user) => Ok(s),
        _ => Err(ApiError::NotFound("session")),
    }
}

pub enum Scope {
    Mine,
    School,
    PendingApproval,
}

pub async fn list(
    pool: &sqlx::AnyPool,
    user: &AuthUser,
    scope: Scope,
    limit: i64,
) -> Result<Vec<SessionRow>, ApiError> {
    let (filter, bind_user) = match scope {
        Scope::Mine => ("s.school_id = $1 and (s.worker_id = $2 or s.companion_id = $2)", true),
        Scope::School => ("s.school_id = $1", false),
        Scope::PendingApproval => ("s.school_id = $1 and s.approval_status = 'pending'", false),
    };
    let sql = format!("{SELECT} where {filter} order by s.planned_start desc limit {limit}");
    let mut query = sqlx::query(&sql).bind(user.school_id.to_string());
    if bind_user {
        query = query.bind(user.user_id.to_string());
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

/// The school's sessions out there now: active, overdue or in alarm (the live board).
pub async fn live(pool: &sqlx::AnyPool, school_id: Uuid, limit: i64) -> Result<Vec<SessionRow>, ApiError> {
    let sql = format!(
        "{SELECT} where s.school_id = $1 and s.status in ('active', 'overdue', 'alarm') \
         order by s.planned_start desc limit {limit}"
    );
    let rows = sqlx::query(&sql).bind(school_id.to_string()).fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Client,
    Server,
}

pub struct NewEvent {
    pub event: Event,
    pub source: Source,
    pub actor_id: Option<Uuid>,
}

pub struct Recorded {
    pub before: SessionState,
    pub after: SessionState,
    pub applied: Vec<Uuid>,
    pub duplicates: Vec<Uuid>,
}

pub fn session_error(e: &SessionError) -> ApiError {
    let code = match e {
        SessionError::ApprovalRequired => "approval_required",
        SessionError::ApprovalRejected => "approval_rejected",
        SessionError::ApprovalNotRequestable => "approval_not_requestable",
        SessionError::NoPendingApproval => "no_pending_approval",
        SessionError::NotStarted => "not_started",
        SessionError::AlreadyStarted => "already_started",
        SessionError::AlreadyEnded => "already_ended",
        SessionError::NotEnded => "not_ended",
        SessionError::OutcomeAlreadyRecorded => "outcome_already_recorded",
        SessionError::TooLong => "too_long",
        SessionError::BadExtension => "invalid_minutes",
        SessionError::StaleDeadline => "stale_deadline",
        SessionError::NoAlarm => "no_alarm",
    };
    ApiError::conflict(code, e.to_string())
}

async fn history(tx: &mut WriteTx, session_id: Uuid) -> Result<Vec<Event>, ApiError> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("select event_id, body, occurred_at from session_events where session_id = $1")
            .bind(session_id.to_string())
            .fetch_all(tx.conn())
            .await?;
    rows.into_iter()
        .map(|(id, body, at)| Ok(Event { id: parse_id(&id)?, at: from_millis(at), kind: decode("event", &body)? }))
        .collect()
}

/// Record events against a session exactly once, in the order they happened. Ids already stored for
/// this session are duplicates and change nothing; an id used by another session is refused. If any
/// new event cannot happen where it falls in time, the whole batch is refused and nothing is written.
#[tracing::instrument(skip_all, fields(session = %session.id, events = new.len()))]
pub async fn record(
    tx: &mut WriteTx,
    session: &SessionRow,
    mut new: Vec<NewEvent>,
    now: Timestamp,
) -> Result<Recorded, ApiError> {
    // Instants are stored to the millisecond: replay what will be stored, not what arrived.
    for item in &mut new {
        item.event.at = from_millis(to_millis(item.event.at));
    }
    let terms = session.terms()?;
    let existing = history(tx, session.id).await?;
    let before = replay(&terms, &existing).state;

    let mut duplicates = Vec::new();
    let mut fresh = Vec::new();
    for item in new {
        if existing.iter().any(|e| e.id == item.event.id) {
            duplicates.push(item.event.id);
            continue;
        }
        // The server's own events get fresh random ids; only a phone's ids can have been used before.
        let elsewhere: Option<(String,)> = match item.source {
            Source::Server => None,
            Source::Client => {
                sqlx::query_as("select session_id from session_events where event_id = $1")
                    .bind(item.event.id.to_string())
                    .fetch_optional(tx.conn())
                    .await?
            }
        };
        if elsewhere.is_some() {
            return Err(ApiError::conflict(
                "event_id_reused",
                format!(
                    "event {} was already recorded for a different session; every event needs a new id",
                    item.event.id
                ),
            ));
        }
        fresh.push(item);
    }
    if fresh.is_empty() {
        return Ok(Recorded { after: before.clone(), before, applied: vec![], duplicates });
    }

    let mut all = existing;
    all.extend(fresh.iter().map(|n| n.event.clone()));
    let outcome = replay(&terms, &all);
    for item in &fresh {
        if let Some((_, error)) = outcome.skipped.iter().find(|(id, _)| *id == item.event.id) {
            let ApiError::Conflict { code, message } = session_error(error) else { unreachable!() };
            return Err(ApiError::conflict(
                code,
                format!("event {} ({}): {message}", item.event.id, item.event.kind.name()),
            ));
        }
    }

    for item in &fresh {
        let source = match item.source {
            Source::Client => "client",
            Source::Server => "server",
        };
        sqlx::query(
            "insert into session_events (event_id, session_id, school_id, actor_id, source, kind, body, occurred_at, received_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(item.event.id.to_string())
        .bind(session.id.to_string())
        .bind(session.school_id.to_string())
        .bind(item.actor_id.map(|a| a.to_string()))
        .bind(source)
        .bind(item.event.kind.name())
        .bind(serde_json::to_string(&item.event.kind).map_err(anyhow::Error::from)?)
        .bind(to_millis(item.event.at))
        .bind(to_millis(now))
        .execute(tx.conn())
        .await?;
        audit::append(
            tx,
            audit::Action {
                school_id: session.school_id,
                actor_id: item.actor_id,
                action: audit_action(&item.event.kind),
                subject: format!("session:{}", session.id),
                detail: audit_detail(&item.event, now),
                at: now,
            },
        )
        .await?;
    }
    write_state(tx, session.id, &outcome.state, now).await?;
    crate::escalation::on_transition(tx, session, &before, &outcome.state, now).await?;
    Ok(Recorded { before, after: outcome.state, applied: fresh.iter().map(|n| n.event.id).collect(), duplicates })
}

fn audit_action(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Start { .. } => "session.started",
        EventKind::CheckIn => "session.checked_in",
        EventKind::Extend { .. } => "session.extended",
        EventKind::End | EventKind::EndWithPin { .. } => "session.ended",
        EventKind::Panic { .. } => "session.panic",
        EventKind::RecordOutcome { .. } => "session.outcome_recorded",
        EventKind::ApprovalRequested => "session.approval_requested",
        EventKind::Approved => "session.approved",
        EventKind::Rejected { .. } => "session.rejected",
        EventKind::DeadlineMissed { .. } => "session.deadline_missed",
        EventKind::AlarmResolved => "session.alarm_resolved",
    }
}

/// What the audit entry says. A duress end is named as such: only the DSL and admins read the log.
fn audit_detail(event: &Event, received: Timestamp) -> String {
    let when = format!("happened {}, received {}", event.at.to_rfc3339(), received.to_rfc3339());
    match &event.kind {
        EventKind::Extend { minutes } => format!("extended by {minutes} min; {when}"),
        EventKind::EndWithPin { pin } => format!(
            "ended with the {} PIN; {when}",
            if *pin == homeward_shared::session::PinCheck::Duress { "duress" } else { "safe" }
        ),
        EventKind::Rejected { reason } => format!("rejected: {reason}; {when}"),
        EventKind::DeadlineMissed { deadline } => format!("deadline {} missed; {when}", deadline.to_rfc3339()),
        EventKind::RecordOutcome { outcome } => format!("concern: {}; {when}", enum_str(&outcome.concern)),
        _ => when,
    }
}

async fn write_state(tx: &mut WriteTx, id: Uuid, state: &SessionState, now: Timestamp) -> Result<(), ApiError> {
    sqlx::query(
        "update sessions set approval_status = $1, approval_reason = $2, status = $3, alarm = $4, deadline = $5, started_at = $6, \
         ended_at = $7, last_check_in = $8, late_check_ins = $9, outcome = $10, concern = $11, updated_at = $12 where session_id = $13",
    )
    .bind(state.approval.as_str())
    .bind(state.rejection_reason.as_deref())
    .bind(state.status.as_str())
    .bind(state.alarm.map(|a| enum_str(&a)))
    .bind(state.deadline.map(to_millis))
    .bind(state.started_at.map(to_millis))
    .bind(state.ended_at.map(to_millis))
    .bind(state.last_check_in.map(to_millis))
    .bind(i64::from(state.late_check_ins))
    .bind(state.outcome.as_ref().map(serde_json::to_string).transpose().map_err(anyhow::Error::from)?)
    .bind(state.outcome.as_ref().map(|o| enum_str(&o.concern)))
    .bind(to_millis(now))
    .bind(id.to_string())
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn set_approval_decider(tx: &mut WriteTx, id: Uuid, decider: Uuid, at: Timestamp) -> Result<(), ApiError> {
    sqlx::query("update sessions set approval_decided_by = $1, approval_decided_at = $2 where session_id = $3")
        .bind(decider.to_string())
        .bind(to_millis(at))
        .bind(id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The visit has had an alert (it is then kept in the review queue and the figures).
pub async fn mark_alerted(tx: &mut WriteTx, session_id: Uuid) -> Result<(), ApiError> {
    sqlx::query("update sessions set has_alert = 1 where session_id = $1")
        .bind(session_id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}
