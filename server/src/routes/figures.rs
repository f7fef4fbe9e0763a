//! The school's monthly figures and the CSV export of sessions, for the DSL and admins.

use actix_web::{HttpResponse, web};
use homeward_shared::api::MonthlyFigures;
use homeward_shared::{ErrorBody, Role};
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::routes::extract::Query;
use crate::state::AppState;
use crate::store::{audit, export, figures};

const WHO: &[Role] = &[Role::Dsl, Role::Admin];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FiguresQuery {
    /// `YYYY-MM` (UTC); default the current month.
    pub month: Option<String>,
}

/// Sessions by kind, alerts by kind, false alarms, time to take ownership and to resolve (median and
/// 95th percentile), late check-ins, for one month.
#[utoipa::path(get, path = "/api/v1/figures", tag = "records", security(("bearer" = [])), params(FiguresQuery),
    responses((status = 200, body = MonthlyFigures), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn monthly(
    state: web::Data<AppState>,
    user: AuthUser,
    query: Query<FiguresQuery>,
) -> ApiResult<HttpResponse> {
    user.require(WHO, "only the DSL and admins see the school's figures")?;
    let month = query.month.clone().unwrap_or_else(|| figures::month_of(state.clock.now()));
    Ok(HttpResponse::Ok().json(figures::monthly(&state.db.pool, user.school_id, &month).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExportQuery {
    /// First day, `YYYY-MM-DD` (UTC), of the sessions' planned start.
    pub from: Option<String>,
    /// Last day, inclusive; at most 366 days after `from`.
    pub to: Option<String>,
}

/// Sessions and outcomes planned in a date range, as CSV for the MIS and safeguarding records.
#[utoipa::path(get, path = "/api/v1/export/sessions", tag = "records", security(("bearer" = [])), params(ExportQuery),
    responses((status = 200, description = "CSV with a header row", content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn sessions_csv(
    state: web::Data<AppState>,
    user: AuthUser,
    query: Query<ExportQuery>,
) -> ApiResult<HttpResponse> {
    user.require(WHO, "only the DSL and admins export the school's records")?;
    let (from, to) = export::range(query.from.as_deref(), query.to.as_deref())?;
    let (csv, count) = export::sessions_csv(&state.db.pool, user.school_id, from, to).await?;
    // Taking the records out of the system is itself a record.
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    audit::append(
        &mut tx,
        audit::Action {
            school_id: user.school_id,
            actor_id: Some(user.user_id),
            action: "records.exported",
            subject: format!("school:{}", user.school_id),
            detail: format!("{count} session(s) planned from {} to {}", from.to_rfc3339(), to.to_rfc3339()),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    let name = format!(
        "homeward-sessions-{}-to-{}.csv",
        query.from.as_deref().unwrap_or_default(),
        query.to.as_deref().unwrap_or_default()
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{name}\"")))
        .insert_header(("Cache-Control", "no-store"))
        .body(csv))
}
