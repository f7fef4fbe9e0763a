//! The DSL's review queue.

use actix_web::{HttpResponse, web};
use homeward_shared::api::{MarkReviewedRequest, ReviewItem};
use homeward_shared::{ErrorBody, FieldError, Role};
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::routes::extract::{Json, Query};
use crate::routes::parse_path_id;
use crate::state::AppState;
use crate::store::audit;
use crate::store::reviews::{self, Filter};

const WHO: &str = "only the DSL reviews concerns, incidents and alarms";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReviewQuery {
    /// `pending` (default), `done` or `all`.
    pub status: Option<String>,
}

/// Visits whose outcome raised a concern, incidents and resolved alarms, oldest first (the DSL).
#[utoipa::path(get, path = "/api/v1/reviews", tag = "reviews", security(("bearer" = [])), params(ReviewQuery),
    responses((status = 200, body = Vec<ReviewItem>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(state: web::Data<AppState>, user: AuthUser, query: Query<ReviewQuery>) -> ApiResult<HttpResponse> {
    user.require(&[Role::Dsl], WHO)?;
    let filter = match query.status.as_deref().unwrap_or("pending") {
        "pending" => Filter::Pending,
        "done" => Filter::Done,
        "all" => Filter::All,
        other => {
            return Err(ApiError::bad_request(
                "invalid_status",
                format!("unknown status `{other}`; use pending, done or all"),
            ));
        }
    };
    Ok(HttpResponse::Ok().json(reviews::list(&state.db.pool, user.school_id, filter).await?))
}

/// Mark an item reviewed, with the action taken. `id` is the item's `subject_id`.
#[utoipa::path(post, path = "/api/v1/reviews/{id}", tag = "reviews", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's subject: a session or an alert")),
    request_body = MarkReviewedRequest,
    responses((status = 200, body = ReviewItem), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn mark(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: Json<MarkReviewedRequest>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Dsl], WHO)?;
    let id = parse_path_id(&path)?;
    let action = body.action_taken.trim();
    if action.is_empty() || action.chars().count() > 2_000 {
        return Err(FieldError::new("action_taken", "say what was done: 1 to 2000 characters").into());
    }
    let find = |items: Vec<ReviewItem>| items.into_iter().find(|i| i.subject_id == id);
    let item = find(reviews::list(&state.db.pool, user.school_id, Filter::All).await?)
        .ok_or(ApiError::NotFound("review item"))?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    reviews::mark(&mut tx, user.school_id, &item, user.user_id, action, now).await?;
    audit::append(
        &mut tx,
        audit::Action {
            school_id: user.school_id,
            actor_id: Some(user.user_id),
            action: "review.done",
            subject: format!("session:{}", item.session_id),
            detail: format!("{:?} {} reviewed: {action}", item.kind, item.subject_id),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    let item = find(reviews::list(&state.db.pool, user.school_id, Filter::All).await?)
        .ok_or(ApiError::NotFound("review item"))?;
    Ok(HttpResponse::Ok().json(item))
}
