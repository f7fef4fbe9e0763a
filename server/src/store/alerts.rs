//! Alerts as stored: one row each, with the state its lifecycle (`homeward_shared::alert`) decides.

use homeward_shared::Coordinates;
use homeward_shared::alert::{AlertState, Resolution};
use homeward_shared::api::{AlertKind, AlertResolution, AlertStatus};
use uuid::Uuid;

use crate::Timestamp;
use crate::clock::{from_millis, to_millis};
use crate::db::{WriteTx, parse_id};
use crate::error::ApiError;

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

    pub fn set_state(&mut self, state: AlertState) {
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
    let id = |column: &str| -> Result<Uuid, ApiError> { parse_id(&row.try_get::<String, _>(column)?) };
    let opt_id = |column: &str| -> Result<Option<Uuid>, ApiError> {
        row.try_get::<Option<String>, _>(column)?.map(|s| parse_id(&s)).transpose()
    };
    let opt_time = |column: &str| -> Result<Option<Timestamp>, ApiError> {
        Ok(row.try_get::<Option<i64>, _>(column)?.map(from_millis))
    };
    let latitude: Option<f64> = row.try_get("last_latitude")?;
    let longitude: Option<f64> = row.try_get("last_longitude")?;
    Ok(Alert {
        id: id("alert_id")?,
        school_id: id("school_id")?,
        session_id: id("session_id")?,
        kind: parse_enum(&row.try_get::<String, _>("kind")?)?,
        status: parse_enum(&row.try_get::<String, _>("status")?)?,
        escalation_plan_id: id("escalation_plan_id")?,
        steps_fired: row.try_get("steps_fired")?,
        instruction: row.try_get("instruction")?,
        trigger_at: from_millis(row.try_get("trigger_at")?),
        raised_at: from_millis(row.try_get("raised_at")?),
        acknowledged_by: opt_id("acknowledged_by")?,
        acknowledged_at: opt_time("acknowledged_at")?,
        resolved_by: opt_id("resolved_by")?,
        resolved_at: opt_time("resolved_at")?,
        resolution: row.try_get::<Option<String>, _>("resolution")?.map(|r| parse_enum(&r)).transpose()?,
        resolution_notes: row.try_get("resolution_notes")?,
        stood_down_at: opt_time("stood_down_at")?,
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

pub async fn open_for_session(tx: &mut WriteTx, session_id: Uuid) -> Result<Vec<Alert>, ApiError> {
    let rows = sqlx::query(&format!(
        "{SELECT} where session_id = $1 and status in ('escalating', 'acknowledged') order by raised_at"
    ))
    .bind(session_id.to_string())
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn write(tx: &mut WriteTx, alert: &Alert, now: Timestamp) -> Result<(), ApiError> {
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

/// Write a new alert (its state as [`AlertState::raised`] makes it).
pub async fn insert(tx: &mut WriteTx, alert: &Alert) -> Result<(), ApiError> {
    // sqlx 0.8's Any driver binds a NULL f64 with the wrong type on PostgreSQL, which breaks the cached
    // statement for later positions (launchbadge/sqlx#4284): a missing position is written as SQL null.
    let position = if alert.last_location.is_some() { "$8, $9" } else { "null, null" };
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
        .bind(kind_str(alert.kind))
        .bind(alert.escalation_plan_id.to_string())
        .bind(to_millis(alert.trigger_at))
        .bind(to_millis(alert.raised_at));
    if let Some(l) = alert.last_location {
        query = query.bind(l.latitude).bind(l.longitude);
    }
    query.execute(tx.conn()).await?;
    Ok(())
}

/// The visit's last known position: the latest ping, or the position sent with the panic.
pub async fn last_position(tx: &mut WriteTx, session_id: Uuid) -> Result<Option<Coordinates>, ApiError> {
    let row: Option<(f64, f64)> =
        sqlx::query_as("select latitude, longitude from location_pings where session_id = $1 order by at desc limit 1")
            .bind(session_id.to_string())
            .fetch_optional(tx.conn())
            .await?;
    Ok(row.map(|(latitude, longitude)| Coordinates { latitude, longitude }))
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

pub async fn find_for_session(tx: &mut WriteTx, session_id: Uuid, kind: AlertKind) -> Result<Option<Alert>, ApiError> {
    let row = sqlx::query(&format!("{SELECT} where session_id = $1 and kind = $2 order by raised_at desc limit 1"))
        .bind(session_id.to_string())
        .bind(kind_str(kind))
        .fetch_optional(tx.conn())
        .await?;
    row.as_ref().map(from_row).transpose()
}
