use actix_web::{HttpResponse, web};
use chrono::Duration;
use homeward_shared::api::{
    AlertKind, AlertView, MessageDirection, ResolveAlertRequest, SendMessageRequest, TrailPoint,
};
use homeward_shared::session::{Event, EventKind};
use homeward_shared::{ErrorBody, FieldError, Role};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::escalation::alerts::{self, Alert};
use crate::notify::outbox;
use crate::routes::extract::{Json, Query};
use crate::routes::parse_path_id;
use crate::state::AppState;
use crate::store::sessions::{self, NewEvent, SessionRow, Source};
use crate::store::{messages, plans};

const RESPONDERS: [Role; 3] = [Role::Leader, Role::Dsl, Role::Admin];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AlertQuery {
    /// `open` (default: escalating or owned) or `all`.
    pub status: Option<String>,
}

async fn view(state: &AppState, user: &AuthUser, alert: &Alert) -> ApiResult<AlertView> {
    let session = sessions::get(&state.db.pool, alert.session_id).await?.ok_or(ApiError::NotFound("session"))?;
    let plan = plans::get_in_school(&state.db.pool, alert.school_id, alert.escalation_plan_id).await?;
    let deliveries = outbox::for_alert(&state.db.pool, alert.id).await?;
    Ok(AlertView {
        id: alert.id,
        session_id: alert.session_id,
        worker_id: session.worker_id,
        worker_name: session.worker_name.clone(),
        worker_phone: if user.user_id == session.worker_id || user.has_any(&[Role::Leader, Role::Dsl, Role::Admin]) {
            crate::store::users::get(&state.db.pool, session.worker_id).await?.and_then(|worker| worker.phone)
        } else {
            None
        },
        kind: alert.kind,
        status: alert.status,
        steps_fired: alert.steps_fired,
        steps_total: plan.steps.len() as i64,
        instruction: alert.instruction.clone(),
        raised_at: alert.raised_at,
        acknowledged_by: alert.acknowledged_by,
        acknowledged_by_name: match alert.acknowledged_by {
            Some(owner) => crate::store::users::get(&state.db.pool, owner).await?.map(|u| u.name),
            None => None,
        },
        acknowledged_at: alert.acknowledged_at,
        resolved_by: alert.resolved_by,
        resolved_at: alert.resolved_at,
        resolution: alert.resolution,
        resolution_notes: alert.resolution_notes.clone(),
        stood_down_at: alert.stood_down_at,
        last_location: alert.last_location,
        session: session.view(user),
        delivery_summary: outbox::summarise(&deliveries),
        deliveries,
        messages: messages::for_alert(&state.db.pool, alert.id).await?,
        trail: trail(&state.db.pool, alert.session_id).await?,
    })
}

/// The visit's latest positions, newest first.
async fn trail(pool: &sqlx::AnyPool, session_id: Uuid) -> ApiResult<Vec<TrailPoint>> {
    let rows: Vec<(f64, f64, f64, i64)> = sqlx::query_as(
        "select latitude, longitude, accuracy_m, at from location_pings where session_id = $1 order by at desc limit 50",
    )
    .bind(session_id.to_string())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(latitude, longitude, accuracy_m, at)| TrailPoint {
            latitude,
            longitude,
            accuracy_m,
            at: crate::clock::from_millis(at),
        })
        .collect())
}

/// The alert if `user` may see it. A duress alarm does not exist as far as the person on that visit
/// can tell, whatever their role.
async fn find(state: &AppState, user: &AuthUser, raw: &str) -> ApiResult<(Alert, SessionRow)> {
    let id = parse_path_id(raw)?;
    let Some(alert) = alerts::get(&state.db.pool, id).await?.filter(|a| a.school_id == user.school_id) else {
        return Err(ApiError::NotFound("alert"));
    };
    let session = sessions::get(&state.db.pool, alert.session_id).await?.ok_or(ApiError::NotFound("session"))?;
    if alert.kind == AlertKind::Duress && session.is_worker_side(user.user_id) {
        return Err(ApiError::NotFound("alert"));
    }
    Ok((alert, session))
}

/// Nobody takes ownership of, or closes, an alert about their own visit.
fn not_own_visit(user: &AuthUser, session: &SessionRow) -> ApiResult<()> {
    if session.is_worker_side(user.user_id) {
        return Err(ApiError::Forbidden("an alert about your own visit must be handled by another leader"));
    }
    Ok(())
}

/// The school's alerts, newest first (leaders, the DSL, admins).
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", security(("bearer" = [])), params(AlertQuery),
    responses((status = 200, body = Vec<AlertView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(state: web::Data<AppState>, user: AuthUser, query: Query<AlertQuery>) -> ApiResult<HttpResponse> {
    user.require(&RESPONDERS, "only leaders, the DSL and admins see alerts")?;
    let open_only = match query.status.as_deref().unwrap_or("open") {
        "open" => true,
        "all" => false,
        other => {
            return Err(ApiError::bad_request("invalid_status", format!("unknown status `{other}`; use open or all")));
        }
    };
    let mut views = Vec::new();
    for alert in alerts::list_for_school(&state.db.pool, user.school_id, open_only).await? {
        let view = view(&state, &user, &alert).await?;
        if alert.kind == AlertKind::Duress
            && (view.worker_id == user.user_id || view.session.companion_id == Some(user.user_id))
        {
            continue;
        }
        views.push(view);
    }
    Ok(HttpResponse::Ok().json(views))
}

/// One alert with the visit details a responder needs and every delivery attempt.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The alert")),
    responses((status = 200, body = AlertView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(state: web::Data<AppState>, user: AuthUser, path: web::Path<String>) -> ApiResult<HttpResponse> {
    user.require(&RESPONDERS, "only leaders, the DSL and admins see alerts")?;
    let (alert, _) = find(&state, &user, &path).await?;
    Ok(HttpResponse::Ok().json(view(&state, &user, &alert).await?))
}

/// Take ownership: further steps stop unless it is not resolved in time.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The alert")),
    responses((status = 200, body = AlertView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn acknowledge(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Leader, Role::Dsl], "only leaders and the DSL take ownership of alerts")?;
    let (found, session) = find(&state, &user, &path).await?;
    not_own_visit(&user, &session)?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let alert = alerts::lock(&mut tx, found.id).await?.ok_or(ApiError::NotFound("alert"))?;
    let timeout = Duration::seconds(state.settings.ownership_timeout_secs);
    let alert = alerts::acknowledge(&mut tx, alert, user.user_id, timeout, now).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view(&state, &user, &alert).await?))
}

/// Resolve with an outcome and notes. A red alert's visit leaves the alarm state.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The alert")), request_body = ResolveAlertRequest,
    responses((status = 200, body = AlertView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn resolve(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: Json<ResolveAlertRequest>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Leader, Role::Dsl], "only leaders and the DSL resolve alerts")?;
    let body = body.into_inner();
    if body.notes.chars().count() > 5_000 {
        return Err(FieldError::new("notes", "notes are at most 5000 characters").into());
    }
    let (found, session) = find(&state, &user, &path).await?;
    not_own_visit(&user, &session)?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let alert = alerts::lock(&mut tx, found.id).await?.ok_or(ApiError::NotFound("alert"))?;
    let kind = alert.kind;
    let alert =
        alerts::resolve(&mut tx, alert, &session, user.user_id, body.resolution, body.notes.trim().to_string(), now)
            .await?;
    if matches!(kind, AlertKind::Panic | AlertKind::Duress) {
        let event = Event { id: Uuid::new_v4(), at: now, kind: EventKind::AlarmResolved };
        let resolved = NewEvent { event, source: Source::Server, actor_id: Some(user.user_id) };
        match sessions::record(&mut tx, &session, vec![resolved], now).await {
            Ok(_) | Err(ApiError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view(&state, &user, &alert).await?))
}

/// Message the worker about an open alert ("Are you OK?"): pushed to their phone, where they answer in
/// one tap. Never for a duress alarm: someone may be watching the worker's screen.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/messages", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The alert")), request_body = SendMessageRequest,
    responses((status = 201, body = AlertView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn message(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: Json<SendMessageRequest>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Leader, Role::Dsl], "only leaders and the DSL message the worker about an alert")?;
    let text = messages::text(&body.text)?;
    let (found, session) = find(&state, &user, &path).await?;
    not_own_visit(&user, &session)?;
    if found.kind == AlertKind::Duress {
        return Err(ApiError::conflict(
            "duress_is_silent",
            "a duress alarm is silent: nothing may appear on the worker's phone; follow the plan's instruction",
        ));
    }
    if !found.status.is_open() {
        return Err(ApiError::conflict("alert_closed", "the alert is closed: the worker is no longer asked"));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let alert = alerts::lock(&mut tx, found.id).await?.ok_or(ApiError::NotFound("alert"))?;
    let worker: std::collections::BTreeSet<Uuid> = [session.worker_id].into();
    crate::routes::messages::send(
        &mut tx,
        crate::routes::messages::Outgoing {
            alert: &alert,
            sender: &user,
            direction: MessageDirection::ToWorker,
            text: &text,
            to: &worker,
            title: format!("{} asks", user.name),
            url: format!("/visit/{}", alert.session_id),
            action: "alert.message_sent",
            detail: format!("to the worker: {text}"),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(view(&state, &user, &alert).await?))
}
