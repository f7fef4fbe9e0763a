use actix_web::{HttpResponse, web};
use chrono::Duration;
use homeward_shared::api::{PlanSessionRequest, RejectRequest, SessionView};
use homeward_shared::session::{Event, EventKind};
use homeward_shared::{
    CheckInInterval, Coordinates, ErrorBody, FieldError, GeofenceRadius, HomeVisitKind, PupilReference, RiskAssessment,
    RiskLevel, Role, SessionKind, VisitDuration,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::routes::extract::{Json, Query};
use crate::routes::parse_path_id;
use crate::state::AppState;
use crate::store::sessions::{self, NewEvent, NewSession, Scope, Source};
use crate::store::{plans, schools, users};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// `mine` (default): sessions I lead or accompany; `school`: every session in the school (leaders,
    /// the DSL, admins); `pending_approval`: visits waiting for a decision (leaders, the DSL).
    pub scope: Option<String>,
}

/// List sessions.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Vec<SessionView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(state: web::Data<AppState>, user: AuthUser, query: Query<ListQuery>) -> ApiResult<HttpResponse> {
    let scope = match query.scope.as_deref().unwrap_or("mine") {
        "mine" => Scope::Mine,
        "school" => {
            user.require(
                &[Role::Leader, Role::Dsl, Role::Admin],
                "only leaders, the DSL and admins see the whole school",
            )?;
            Scope::School
        }
        "pending_approval" => {
            user.require(&[Role::Leader, Role::Dsl], "only leaders and the DSL approve visits")?;
            Scope::PendingApproval
        }
        other => {
            return Err(ApiError::bad_request(
                "invalid_scope",
                format!("unknown scope `{other}`; use mine, school or pending_approval"),
            ));
        }
    };
    let rows = sessions::list(&state.db.pool, &user, scope, 500).await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(|s| s.view(&user)).collect::<Vec<_>>()))
}

/// One session.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(state: web::Data<AppState>, user: AuthUser, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path)?;
    let session = sessions::get_visible(&state.db.pool, &user, id).await?;
    Ok(HttpResponse::Ok().json(session.view(&user)))
}

/// Plan a session with its risk assessment. Where the school's rules require approval, it is asked for
/// at once unless `submit_for_approval` is false.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", security(("bearer" = [])), request_body = PlanSessionRequest,
    responses((status = 201, body = SessionView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn plan(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<PlanSessionRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let now = state.clock.now();
    let kind = SessionKind::parse(&body.kind, body.sub_kind.as_deref())?;
    let address = body.address.trim().to_string();
    if address.is_empty() || address.chars().count() > 300 {
        return Err(FieldError::new("address", "the address must be 1 to 300 characters").into());
    }
    let location = body.location.map(|l| Coordinates::parse(l.latitude, l.longitude)).transpose()?;
    let geofence = body.geofence_radius_m.map(GeofenceRadius::parse).transpose()?.unwrap_or_default();
    let pupil_reference =
        body.pupil_reference.as_deref().filter(|p| !p.trim().is_empty()).map(PupilReference::parse).transpose()?;
    if body.household_notes.chars().count() > 2_000 {
        return Err(FieldError::new("household_notes", "household notes are at most 2000 characters").into());
    }
    if body.planned_start < now - Duration::days(1) || body.planned_start > now + Duration::days(366) {
        return Err(FieldError::new(
            "planned_start",
            "the planned start must be between yesterday and a year from now",
        )
        .into());
    }
    let expected_duration = VisitDuration::parse(body.expected_duration_minutes)?;
    let check_in_interval = body.check_in_interval_minutes.map(CheckInInterval::parse).transpose()?;
    let risk = RiskAssessment::parse(body.risk_assessment.factors, body.risk_assessment.overall)?;
    let plan_id = match body.escalation_plan_id {
        Some(id) => {
            plans::get_in_school(&state.db.pool, user.school_id, id)
                .await
                .map_err(|_| FieldError::new("escalation_plan_id", "no such escalation plan in this school"))?;
            id
        }
        None => plans::default_for(&state.db.pool, user.school_id).await?,
    };
    if let Some(companion) = body.companion_id {
        if companion == user.user_id {
            return Err(FieldError::new("companion_id", "the companion must be someone other than the worker").into());
        }
        let found = users::get_in_school(&state.db.pool, user.school_id, companion)
            .await
            .map_err(|_| FieldError::new("companion_id", "the companion is not a member of this school"))?;
        if !found.active {
            return Err(FieldError::new("companion_id", "the companion's account is deactivated").into());
        }
    }
    let rules = schools::rules(&state.db.pool, user.school_id).await?;
    if rules.high_risk_needs_companion && risk.overall == RiskLevel::High && body.companion_id.is_none() {
        return Err(FieldError::new("companion_id", "a high-risk visit needs a companion: nobody goes alone").into());
    }
    let approval_required = (rules.safe_and_well_needs_approval
        && kind == SessionKind::HomeVisit(HomeVisitKind::SafeAndWell))
        || rules.approval_from_risk.is_some_and(|from| risk.overall >= from);

    let new = NewSession {
        school_id: user.school_id,
        worker_id: user.user_id,
        companion_id: body.companion_id,
        kind,
        address,
        location,
        geofence_radius_m: i64::from(geofence.metres()),
        pupil_reference: pupil_reference.map(|p| p.as_ref().to_string()),
        household_notes: body.household_notes.trim().to_string(),
        planned_start: body.planned_start,
        expected_duration,
        check_in_interval,
        escalation_plan_id: plan_id,
        risk_assessment: risk,
        approval_required,
    };
    let mut tx = state.db.begin().await?;
    let id = sessions::insert(&mut tx, &new, user.user_id, now).await?;
    let planned = sessions::lock(&mut tx, &user, id).await?;
    crate::escalation::signals::arm_missed_start(&mut tx, &planned, now).await?;
    crate::escalation::safety_net::arm(&mut tx, &planned, now).await?;
    if approval_required && body.submit_for_approval {
        let session = sessions::lock(&mut tx, &user, id).await?;
        sessions::record(&mut tx, &session, vec![server_event(EventKind::ApprovalRequested, now, user.user_id)], now)
            .await?;
    }
    let session = sessions::lock(&mut tx, &user, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(session.view(&user)))
}

fn server_event(kind: EventKind, at: crate::Timestamp, actor: Uuid) -> NewEvent {
    NewEvent { event: Event { id: Uuid::new_v4(), at, kind }, source: Source::Server, actor_id: Some(actor) }
}

enum Decision {
    Request,
    Approve,
    Reject(String),
}

async fn decide(state: &AppState, user: &AuthUser, id: Uuid, decision: Decision) -> ApiResult<HttpResponse> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let session = sessions::lock(&mut tx, user, id).await?;
    let is_worker = session.worker_id == user.user_id || session.companion_id == Some(user.user_id);
    let kind = match decision {
        Decision::Request => {
            if !is_worker {
                return Err(ApiError::Forbidden("only the visit's worker can ask for its approval"));
            }
            EventKind::ApprovalRequested
        }
        Decision::Approve | Decision::Reject(_) => {
            user.require(&[Role::Leader, Role::Dsl], "only leaders and the DSL can approve or reject visits")?;
            if is_worker {
                return Err(ApiError::Forbidden("you cannot decide on your own visit; another leader must"));
            }
            match decision {
                Decision::Reject(reason) => EventKind::Rejected { reason },
                _ => EventKind::Approved,
            }
        }
    };
    let deciding = !matches!(kind, EventKind::ApprovalRequested);
    sessions::record(&mut tx, &session, vec![server_event(kind, now, user.user_id)], now).await?;
    if deciding {
        sessions::set_approval_decider(&mut tx, id, user.user_id, now).await?;
    }
    let session = sessions::lock(&mut tx, user, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(session.view(user)))
}

/// Ask for approval (the worker).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/approval/request", tag = "approval", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn request_approval(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    decide(&state, &user, parse_path_id(&path)?, Decision::Request).await
}

/// Approve a visit (leaders and the DSL, not for their own visit).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/approval/approve", tag = "approval", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(state: web::Data<AppState>, user: AuthUser, path: web::Path<String>) -> ApiResult<HttpResponse> {
    decide(&state, &user, parse_path_id(&path)?, Decision::Approve).await
}

/// Reject a visit with a reason (leaders and the DSL).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/approval/reject", tag = "approval", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")), request_body = RejectRequest,
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reject(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: Json<RejectRequest>,
) -> ApiResult<HttpResponse> {
    let reason = body.into_inner().reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(FieldError::new("reason", "give a reason of 1 to 500 characters").into());
    }
    decide(&state, &user, parse_path_id(&path)?, Decision::Reject(reason)).await
}
