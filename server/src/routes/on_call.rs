//! The school's on-call rota: who responds out of hours and in the holidays.

use actix_web::{HttpResponse, web};
use homeward_shared::{ErrorBody, OnCallRota, Role};

use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::routes::extract::Json;
use crate::state::AppState;
use crate::store::{audit, rota};

/// The on-call rota (leaders, the DSL and admins). A school without one has nobody on call.
#[utoipa::path(get, path = "/api/v1/school/on-call-rota", tag = "school", security(("bearer" = [])),
    responses((status = 200, body = OnCallRota), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::Leader, Role::Dsl, Role::Admin], "only leaders, the DSL and admins can see the on-call rota")?;
    Ok(HttpResponse::Ok().json(rota::get(&state.db.pool, user.school_id).await?))
}

/// Replace the on-call rota whole (admins): weekly shifts, dated overrides, term dates, school hours and
/// the time zone. A rota with any mistake is refused and the stored one stays as it was.
#[utoipa::path(put, path = "/api/v1/school/on-call-rota", tag = "school", security(("bearer" = [])),
    request_body = OnCallRota,
    responses((status = 200, body = OnCallRota), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put(state: web::Data<AppState>, user: AuthUser, body: Json<OnCallRota>) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin], "only admins can change the on-call rota")?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let rota = rota::validate(&mut tx, user.school_id, body.into_inner()).await?;
    rota::put(&mut tx, user.school_id, &rota, user.user_id, now).await?;
    audit::append(
        &mut tx,
        audit::Action {
            school_id: user.school_id,
            actor_id: Some(user.user_id),
            action: "school.on_call_rota_changed",
            subject: format!("school:{}", user.school_id),
            detail: format!(
                "{} weekly shifts, {} overrides, {} terms ({})",
                rota.weekly.len(),
                rota.overrides.len(),
                rota.terms.len(),
                rota.timezone
            ),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(rota))
}
