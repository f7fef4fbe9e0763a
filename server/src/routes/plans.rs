use actix_web::{HttpResponse, web};
use homeward_shared::api::{EscalationPlanRequest, EscalationPlanView};
use homeward_shared::{ErrorBody, EscalationPlan, FieldError, Recipient, Role};

use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::routes::extract::Json;
use crate::routes::parse_path_id;
use crate::state::AppState;
use crate::store::{plans, users};

/// The school's escalation plans, default first.
#[utoipa::path(get, path = "/api/v1/escalation-plans", tag = "escalation", security(("bearer" = [])),
    responses((status = 200, body = Vec<EscalationPlanView>), (status = 401, body = ErrorBody)))]
pub async fn list(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(plans::list(&state.db.pool, user.school_id).await?))
}

async fn validate(state: &AppState, user: &AuthUser, body: EscalationPlanRequest) -> ApiResult<(EscalationPlan, bool)> {
    let plan = EscalationPlan::parse(
        &body.name,
        body.steps,
        body.repeat_every_seconds.unwrap_or(EscalationPlan::DEFAULT_REPEAT_SECONDS),
    )?;
    for (n, step) in plan.steps.iter().enumerate() {
        for recipient in &step.recipients {
            if let Recipient::User { user_id } = recipient
                && users::get_in_school(&state.db.pool, user.school_id, *user_id).await.is_err()
            {
                return Err(FieldError::new(
                    "steps",
                    format!("step {}: user {user_id} is not a member of this school", n + 1),
                )
                .into());
            }
        }
    }
    Ok((plan, body.is_default))
}

/// Add a plan (admins).
#[utoipa::path(post, path = "/api/v1/escalation-plans", tag = "escalation", security(("bearer" = [])),
    request_body = EscalationPlanRequest,
    responses((status = 201, body = EscalationPlanView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<EscalationPlanRequest>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin], "only admins can create escalation plans")?;
    let (plan, is_default) = validate(&state, &user, body.into_inner()).await?;
    let mut tx = state.db.begin().await?;
    let id = plans::insert(&mut tx, user.school_id, Some(user.user_id), &plan, is_default, state.clock.now()).await?;
    let view = plans::get_in_school(tx.conn(), user.school_id, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(view))
}

/// Change a plan (admins). Sessions already planned keep using it, with the new steps.
#[utoipa::path(put, path = "/api/v1/escalation-plans/{id}", tag = "escalation", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The plan")), request_body = EscalationPlanRequest,
    responses((status = 200, body = EscalationPlanView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: Json<EscalationPlanRequest>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin], "only admins can edit escalation plans")?;
    let id = parse_path_id(&path)?;
    let (plan, is_default) = validate(&state, &user, body.into_inner()).await?;
    let mut tx = state.db.begin().await?;
    plans::update(&mut tx, user.school_id, user.user_id, id, &plan, is_default, state.clock.now()).await?;
    let view = plans::get_in_school(tx.conn(), user.school_id, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}
