//! The DSL's review queue: visits whose outcome raised a safeguarding concern, alerts resolved as an
//! incident or a police call, and resolved alarms; each reviewed once, with the action taken.

use std::collections::BTreeMap;

use homeward_shared::api::{ReviewItem, ReviewKind};
use homeward_shared::session::Outcome;
use uuid::Uuid;

use crate::Timestamp;
use crate::clock::{from_millis, to_millis};
use crate::db::WriteTx;
use crate::db::parse_id;
use crate::error::ApiError;

/// The most items of each source one answer holds.
const MOST: i64 = 1_000;

type ConcernRow = (String, String, String, Option<String>, Option<i64>, i64, Option<String>);
type AlertRow = (String, String, String, String, Option<String>, String, Option<String>, Option<String>, i64);
type ReviewRow = (String, String, String, i64, String);

/// Which items to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Pending,
    Done,
    All,
}

fn resolution_words(resolution: &str) -> &str {
    match resolution {
        "worker_safe" => "the worker was safe",
        "false_alarm" => "a false alarm",
        "incident" => "an incident",
        "police_called" => "the police were called",
        other => other,
    }
}

fn alert_words(kind: &str) -> &str {
    match kind {
        "missed_deadline" => "Missed deadline",
        "panic" => "Panic alarm",
        "duress" => "Duress alarm",
        "low_battery" => "Low battery",
        "signal_lost" => "Signal lost",
        "left_geofence" => "Left the address",
        "missed_start" => "Visit not started",
        other => other,
    }
}

/// The school's queue, oldest first.
pub async fn list(pool: &sqlx::AnyPool, school_id: Uuid, filter: Filter) -> Result<Vec<ReviewItem>, ApiError> {
    let school = school_id.to_string();
    let reviews: Vec<ReviewRow> = sqlx::query_as(
        "select r.subject_id, r.reviewed_by, u.name, r.reviewed_at, r.action_taken from reviews r \
         join users u on u.user_id = r.reviewed_by where r.school_id = $1",
    )
    .bind(&school)
    .fetch_all(pool)
    .await?;
    let mut reviewed: BTreeMap<String, ReviewRow> = reviews.into_iter().map(|r| (r.0.clone(), r)).collect();

    let concerns: Vec<ConcernRow> = sqlx::query_as(&format!(
        "select s.session_id, u.name, s.kind, s.pupil_reference, s.ended_at, s.updated_at, s.outcome \
         from sessions s join users u on u.user_id = s.worker_id \
         where s.school_id = $1 and s.concern = 'safeguarding' order by s.ended_at limit {MOST}"
    ))
    .bind(&school)
    .fetch_all(pool)
    .await?;
    let alerts: Vec<AlertRow> = sqlx::query_as(&format!(
        "select a.alert_id, a.session_id, u.name, s.kind, s.pupil_reference, a.kind, a.resolution, \
         a.resolution_notes, a.resolved_at from alerts a join sessions s on s.session_id = a.session_id \
         join users u on u.user_id = s.worker_id \
         where a.school_id = $1 and a.status = 'resolved' and a.resolved_at is not null \
         and (a.kind in ('missed_deadline', 'panic', 'duress') or a.resolution in ('incident', 'police_called')) \
         order by a.resolved_at limit {MOST}"
    ))
    .bind(&school)
    .fetch_all(pool)
    .await?;

    let mut items = Vec::new();
    for (session_id, worker_name, kind, pupil_reference, ended_at, updated_at, outcome) in concerns {
        let outcome: Option<Outcome> = outcome.and_then(|o| serde_json::from_str(&o).ok());
        let review = reviewed.remove(&session_id);
        items.push(item(
            ReviewItem {
                subject_id: parse_id(&session_id)?,
                kind: ReviewKind::Concern,
                session_id: parse_id(&session_id)?,
                worker_name,
                session_kind: kind,
                pupil_reference,
                occurred_at: from_millis(ended_at.unwrap_or(updated_at)),
                summary: "The worker recorded a safeguarding concern after the visit".into(),
                notes: outcome.map(|o| o.notes).unwrap_or_default(),
                reviewed_by: None,
                reviewed_by_name: None,
                reviewed_at: None,
                action_taken: None,
            },
            review,
        )?);
    }
    for (alert_id, session_id, worker_name, kind, pupil_reference, alert_kind, resolution, notes, resolved_at) in alerts
    {
        let resolution = resolution.unwrap_or_default();
        let review_kind = if matches!(resolution.as_str(), "incident" | "police_called") {
            ReviewKind::Incident
        } else {
            ReviewKind::ResolvedAlarm
        };
        let review = reviewed.remove(&alert_id);
        items.push(item(
            ReviewItem {
                subject_id: parse_id(&alert_id)?,
                kind: review_kind,
                session_id: parse_id(&session_id)?,
                worker_name,
                session_kind: kind,
                pupil_reference,
                occurred_at: from_millis(resolved_at),
                summary: format!("{}, resolved: {}", alert_words(&alert_kind), resolution_words(&resolution)),
                notes: notes.unwrap_or_default(),
                reviewed_by: None,
                reviewed_by_name: None,
                reviewed_at: None,
                action_taken: None,
            },
            review,
        )?);
    }
    items.retain(|i| match filter {
        Filter::Pending => i.reviewed_at.is_none(),
        Filter::Done => i.reviewed_at.is_some(),
        Filter::All => true,
    });
    items.sort_by_key(|i| (i.occurred_at, i.subject_id));
    Ok(items)
}

fn item(mut item: ReviewItem, review: Option<ReviewRow>) -> Result<ReviewItem, ApiError> {
    if let Some((_, by, name, at, action)) = review {
        item.reviewed_by = Some(parse_id(&by)?);
        item.reviewed_by_name = Some(name);
        item.reviewed_at = Some(from_millis(at));
        item.action_taken = Some(action);
    }
    Ok(item)
}

/// Record the review of `item`; a second review of the same subject is refused.
pub async fn mark(
    tx: &mut WriteTx,
    school_id: Uuid,
    item: &ReviewItem,
    by: Uuid,
    action_taken: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    let kind = match item.kind {
        ReviewKind::Concern => "concern",
        ReviewKind::Incident => "incident",
        ReviewKind::ResolvedAlarm => "resolved_alarm",
    };
    // Two reviewers at once: the second finds the row there and is told so.
    let inserted = sqlx::query(
        "insert into reviews (subject_id, school_id, subject_kind, reviewed_by, reviewed_at, action_taken) \
         values ($1, $2, $3, $4, $5, $6) on conflict (subject_id) do nothing",
    )
    .bind(item.subject_id.to_string())
    .bind(school_id.to_string())
    .bind(kind)
    .bind(by.to_string())
    .bind(to_millis(now))
    .bind(action_taken)
    .execute(tx.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ApiError::conflict("already_reviewed", "this has already been reviewed"));
    }
    Ok(())
}
