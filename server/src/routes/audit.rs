use actix_web::{HttpResponse, web};
use homeward_shared::api::{AuditChainReport, AuditEntry};
use homeward_shared::{ErrorBody, Role};
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::routes::extract::Query;
use crate::state::AppState;
use crate::store::audit;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Entries after this sequence number (default 0: from the start).
    pub after_seq: Option<i64>,
    /// At most this many (1 to 1000, default 200).
    pub limit: Option<i64>,
}

/// The school's audit log, oldest first (the DSL and admins).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(state: web::Data<AppState>, user: AuthUser, query: Query<AuditQuery>) -> ApiResult<HttpResponse> {
    user.require(&[Role::Dsl, Role::Admin], "only the DSL and admins can read the audit log")?;
    let limit = query.limit.unwrap_or(200).clamp(1, 1000);
    let after = query.after_seq.unwrap_or(0).max(0);
    Ok(HttpResponse::Ok().json(audit::list(&state.db.pool, user.school_id, after, limit).await?))
}

/// Check the keyed hash chain against the signed daily heads: says plainly whether the log is intact,
/// or altered (an entry changed or removed), rewritten (its hashes recomputed without the server's key)
/// or truncated (entries deleted from its end since a head was signed).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditChainReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn verify(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::Dsl, Role::Admin], "only the DSL and admins can check the audit log")?;
    let heads = audit::heads_path(&state.settings);
    Ok(HttpResponse::Ok().json(audit::verify(&state.db, &heads, user.school_id).await?))
}
