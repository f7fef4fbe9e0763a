use actix_web::{HttpResponse, web};
use homeward_shared::api::{ApprovalRules, RetentionSettings};
use homeward_shared::{ErrorBody, FieldError, Role};

use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::routes::extract::Json;
use crate::state::AppState;
use crate::store::{audit, schools};

/// The school's approval rules.
#[utoipa::path(get, path = "/api/v1/school/rules", tag = "school", security(("bearer" = [])),
    responses((status = 200, body = ApprovalRules), (status = 401, body = ErrorBody)))]
pub async fn get_rules(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(schools::rules(&state.db.pool, user.school_id).await?))
}

/// Change the school's approval rules (admins).
#[utoipa::path(put, path = "/api/v1/school/rules", tag = "school", security(("bearer" = [])), request_body = ApprovalRules,
    responses((status = 200, body = ApprovalRules), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn put_rules(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<ApprovalRules>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin], "only admins can change the school's rules")?;
    let mut tx = state.db.begin().await?;
    schools::set_rules(&mut tx, user.school_id, &body).await?;
    audit::append(
        &mut tx,
        audit::Action {
            school_id: user.school_id,
            actor_id: Some(user.user_id),
            action: "school.rules_changed",
            subject: format!("school:{}", user.school_id),
            detail: serde_json::to_string(&*body).map_err(anyhow::Error::from)?,
            at: state.clock.now(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(body.into_inner()))
}

/// How long location pings are kept after a visit.
#[utoipa::path(get, path = "/api/v1/school/retention", tag = "school", security(("bearer" = [])),
    responses((status = 200, body = RetentionSettings), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_retention(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin, Role::Dsl], "only admins and the DSL see the retention period")?;
    let days = schools::retention_days(&state.db.pool, user.school_id).await?;
    Ok(HttpResponse::Ok().json(RetentionSettings { location_retention_days: days }))
}

/// Change how long location pings are kept (admins): 1 to 3650 days. Pings of a visit whose alert is
/// open or was an incident are kept regardless.
#[utoipa::path(put, path = "/api/v1/school/retention", tag = "school", security(("bearer" = [])),
    request_body = RetentionSettings,
    responses((status = 200, body = RetentionSettings), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_retention(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<RetentionSettings>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin], "only admins can change the retention period")?;
    let days = body.location_retention_days;
    if !(1..=3650).contains(&days) {
        return Err(FieldError::new("location_retention_days", "keep location for 1 to 3650 days").into());
    }
    let mut tx = state.db.begin().await?;
    schools::set_retention_days(&mut tx, user.school_id, days).await?;
    audit::append(
        &mut tx,
        audit::Action {
            school_id: user.school_id,
            actor_id: Some(user.user_id),
            action: "school.retention_changed",
            subject: format!("school:{}", user.school_id),
            detail: format!("location kept for {days} days"),
            at: state.clock.now(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(RetentionSettings { location_retention_days: days }))
}
