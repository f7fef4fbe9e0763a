//! The signal-loss map, and staff marking "no signal here".

use actix_web::{HttpResponse, web};
use chrono::Duration;
use homeward_shared::api::{NoSignalMark, NoSignalMarkRequest, SignalMap};
use homeward_shared::{Coordinates, ErrorBody, FieldError, Role};
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::routes::extract::{Json, Query};
use crate::state::AppState;
use crate::store::{audit, signal_map};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SignalMapQuery {
    /// Look back this many days (1 to 365, default 90).
    pub days: Option<i64>,
}

/// Where phones lost signal during visits, and where staff marked no signal, in cells of about 200 m,
/// most first (leaders, the DSL and admins).
#[utoipa::path(get, path = "/api/v1/signal-map", tag = "board", security(("bearer" = [])), params(SignalMapQuery),
    responses((status = 200, body = SignalMap), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn get(state: web::Data<AppState>, user: AuthUser, query: Query<SignalMapQuery>) -> ApiResult<HttpResponse> {
    user.require(&[Role::Leader, Role::Dsl, Role::Admin], "only leaders, the DSL and admins see the signal map")?;
    let days = query.days.unwrap_or(90);
    if !(1..=365).contains(&days) {
        return Err(FieldError::new("days", "days must be between 1 and 365").into());
    }
    let since = state.clock.now() - Duration::days(days);
    Ok(HttpResponse::Ok().json(signal_map::build(&state.db.pool, user.school_id, since).await?))
}

/// My "no signal here" marks, newest first.
#[utoipa::path(get, path = "/api/v1/signal-marks", tag = "board", security(("bearer" = [])),
    responses((status = 200, body = Vec<NoSignalMark>), (status = 401, body = ErrorBody)))]
pub async fn mine(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(signal_map::marks_of(&state.db.pool, user.user_id).await?))
}

/// Mark "no signal here" (anyone signed in).
#[utoipa::path(post, path = "/api/v1/signal-marks", tag = "board", security(("bearer" = [])),
    request_body = NoSignalMarkRequest,
    responses((status = 201, body = NoSignalMark), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn mark(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<NoSignalMarkRequest>,
) -> ApiResult<HttpResponse> {
    let at = Coordinates::parse(body.latitude, body.longitude)?;
    let note = signal_map::note(&body.note)?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let mark = signal_map::mark(&mut tx, user.school_id, user.user_id, at, &note, now).await?;
    audit::append(
        &mut tx,
        audit::Action {
            school_id: user.school_id,
            actor_id: Some(user.user_id),
            action: "signal.no_signal_marked",
            subject: format!("mark:{}", mark.id),
            detail: format!("{:.5}, {:.5} {note}", at.latitude, at.longitude),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(mark))
}
