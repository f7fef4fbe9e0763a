//! What the worker's phone sends during a session: events, location pings, and the outcome form.

use std::collections::HashSet;

use actix_web::{HttpResponse, web};
use chrono::Duration;
use homeward_shared::api::{
    ClientEvent, ClientEventKind, EventBatch, EventBatchResponse, OutcomeRequest, PingBatch, PingBatchResponse,
    SessionView,
};
use homeward_shared::session::{Event, EventKind, Outcome, PinCheck};
use homeward_shared::{Coordinates, ErrorBody, ExtendMinutes, FieldError};
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::{AuthUser, password};
use crate::clock::CLOCK_SKEW_MINUTES;
use crate::error::{ApiError, ApiResult};
use crate::routes::extract::Json;
use crate::routes::parse_path_id;
use crate::state::AppState;
use crate::store::sessions::{self, NewEvent, SessionRow, Source};
use crate::store::{pings, users};

pub const MAX_EVENTS: usize = 200;
pub const MAX_PINGS: usize = 500;

fn require_worker(user: &AuthUser, session: &SessionRow) -> ApiResult<()> {
    if session.worker_id == user.user_id || session.companion_id == Some(user.user_id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only the visit's worker and companion report its events"))
    }
}

fn check_time(field: &'static str, at: Timestamp, session: &SessionRow, now: Timestamp) -> Result<(), FieldError> {
    if at > now + Duration::minutes(CLOCK_SKEW_MINUTES) {
        return Err(FieldError::new(field, format!("{at} is in the future; check the phone's clock")));
    }
    if at < session.created_at - Duration::minutes(CLOCK_SKEW_MINUTES) {
        return Err(FieldError::new(field, format!("{at} is before the visit was planned")));
    }
    Ok(())
}

fn check_outcome(outcome: &Outcome) -> Result<(), FieldError> {
    if outcome.notes.chars().count() > Outcome::MAX_NOTES {
        return Err(FieldError::new("outcome.notes", format!("notes are at most {} characters", Outcome::MAX_NOTES)));
    }
    Ok(())
}

/// Turn what the phone sent into state-machine events; the PIN is checked here and never stored.
async fn to_event(
    state: &AppState,
    user: &AuthUser,
    session: &SessionRow,
    e: ClientEvent,
    now: Timestamp,
) -> ApiResult<Event> {
    check_time("events.at", e.at, session, now)?;
    let kind = match e.kind {
        ClientEventKind::Start { location } => {
            EventKind::Start { location: location.map(|l| Coordinates::parse(l.latitude, l.longitude)).transpose()? }
        }
        ClientEventKind::CheckIn => EventKind::CheckIn,
        ClientEventKind::Extend { minutes } => {
            EventKind::Extend { minutes: ExtendMinutes::parse(minutes)?.minutes() as u32 }
        }
        ClientEventKind::End => EventKind::End,
        ClientEventKind::EndWithPin { pin } => EventKind::EndWithPin { pin: check_pin(state, user, pin).await? },
        ClientEventKind::Panic { location } => {
            EventKind::Panic { location: location.map(|l| Coordinates::parse(l.latitude, l.longitude)).transpose()? }
        }
        ClientEventKind::Outcome { outcome } => {
            check_outcome(&outcome)?;
            EventKind::RecordOutcome { outcome }
        }
    };
    Ok(Event { id: e.id, at: e.at, kind })
}

async fn check_pin(state: &AppState, user: &AuthUser, pin: String) -> ApiResult<PinCheck> {
    let mut tx = state.db.begin().await?;
    let (safe, duress) = users::pins(&mut tx, user.user_id).await?;
    tx.commit().await?;
    let (Some(safe), Some(duress)) = (safe, duress) else {
        return Err(ApiError::conflict(
            "no_pin_set",
            "you have not set an end-of-visit PIN; end the visit without one",
        ));
    };
    // A PIN is 4 to 8 digits (as set): anything else cannot match, and is refused without the cost of
    // two argon2 verifications on whatever was sent.
    let pin = pin.trim().to_string();
    if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::new("pin", "that PIN is not right: a PIN is 4 to 8 digits").into());
    }
    if password::verify(pin.clone(), duress).await? {
        return Ok(PinCheck::Duress);
    }
    if password::verify(pin, safe).await? {
        return Ok(PinCheck::Safe);
    }
    Err(FieldError::new("pin", "that PIN is not right; try again").into())
}

/// Record a batch of the phone's events: each exactly once (by its id), applied in the order they
/// happened, late ones included. The batch is all or nothing.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/events", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")), request_body = EventBatch,
    responses((status = 200, body = EventBatchResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn record_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: Json<EventBatch>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path)?;
    let batch = body.into_inner().events;
    if batch.is_empty() {
        return Err(FieldError::new("events", "the batch has no events").into());
    }
    if batch.len() > MAX_EVENTS {
        return Err(FieldError::new("events", format!("send at most {MAX_EVENTS} events at a time")).into());
    }
    let mut ids = HashSet::new();
    if let Some(repeated) = batch.iter().find(|e| !ids.insert(e.id)) {
        return Err(FieldError::new("events", format!("event id {} appears twice in the batch", repeated.id)).into());
    }
    // A visit ends once; each PIN costs two argon2 verifications, so a batch cannot ask for hundreds.
    if batch.iter().filter(|e| matches!(e.kind, ClientEventKind::EndWithPin { .. })).count() > 1 {
        return Err(
            FieldError::new("events", "a visit ends once: send at most one end_with_pin event in a batch").into()
        );
    }
    let now = state.clock.now();
    let session = sessions::get_visible(&state.db.pool, &user, id).await?;
    require_worker(&user, &session)?;
    let mut events = Vec::with_capacity(batch.len());
    for e in batch {
        let event = to_event(&state, &user, &session, e, now).await?;
        events.push(NewEvent { event, source: Source::Client, actor_id: Some(user.user_id) });
    }
    let mut tx = state.db.begin().await?;
    let session = sessions::lock(&mut tx, &user, id).await?;
    let recorded = sessions::record(&mut tx, &session, events, now).await?;
    let session = sessions::lock(&mut tx, &user, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(EventBatchResponse {
        applied: recorded.applied,
        duplicates: recorded.duplicates,
        session: session.view(&user),
    }))
}

/// Record location pings (position, accuracy, battery) while the session is live; each once by its id.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/pings", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")), request_body = PingBatch,
    responses((status = 200, body = PingBatchResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn record_pings(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: Json<PingBatch>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path)?;
    let batch = body.into_inner().pings;
    if batch.is_empty() {
        return Err(FieldError::new("pings", "the batch has no pings").into());
    }
    if batch.len() > MAX_PINGS {
        return Err(FieldError::new("pings", format!("send at most {MAX_PINGS} pings at a time")).into());
    }
    let now = state.clock.now();
    // What needs no visit is checked here; the visit itself is read, and the pings checked against it
    // (`pings::check_visit`), where they are written: one read of it, under the writer's turn.
    for ping in &batch {
        Coordinates::parse(ping.latitude, ping.longitude)?;
        if !ping.accuracy_m.is_finite() || !(0.0..=100_000.0).contains(&ping.accuracy_m) {
            return Err(FieldError::new("pings.accuracy_m", "accuracy must be 0 to 100000 metres").into());
        }
        if ping.battery_percent.is_some_and(|b| !(0..=100).contains(&b)) {
            return Err(FieldError::new("pings.battery_percent", "battery must be 0 to 100 percent").into());
        }
        if ping.at > now + Duration::minutes(CLOCK_SKEW_MINUTES) {
            let why = format!("{} is in the future; check the phone's clock", ping.at);
            return Err(FieldError::new("pings.at", why).into());
        }
    }
    let (stored, duplicates) = pings::record(&state.db, &user, id, batch, now).await?;
    Ok(HttpResponse::Ok().json(PingBatchResponse { stored, duplicates }))
}

/// Record the outcome form after the visit; a resent form with the same id is recorded once.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/outcome", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")), request_body = OutcomeRequest,
    responses((status = 200, body = SessionView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn record_outcome(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: Json<OutcomeRequest>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path)?;
    let body = body.into_inner();
    check_outcome(&body.outcome)?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let session = sessions::lock(&mut tx, &user, id).await?;
    require_worker(&user, &session)?;
    // The form is filled in after the end, even when the phone's clock ran a little ahead of ours.
    let at = session.ended_at.map_or(now, |ended| now.max(ended + Duration::milliseconds(1)));
    let event = Event {
        id: body.id.unwrap_or_else(Uuid::new_v4),
        at,
        kind: EventKind::RecordOutcome { outcome: body.outcome },
    };
    sessions::record(
        &mut tx,
        &session,
        vec![NewEvent { event, source: Source::Client, actor_id: Some(user.user_id) }],
        now,
    )
    .await?;
    let session: SessionView = sessions::lock(&mut tx, &user, id).await?.view(&user);
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(session))
}
