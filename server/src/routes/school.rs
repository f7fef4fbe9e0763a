use actix_web::{HttpResponse, web};
use homeward_shared::api::ApprovalRules;
use homeward_shared::{ErrorBody, Role};

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
