use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use homeward_shared::api::{
    PushSubscriptionRequest, PushSubscriptionView, TestPushReport, UnsubscribeRequest, VapidPublicKey,
};
use homeward_shared::escalation::Channel;
use homeward_shared::{ErrorBody, FieldError};
use uuid::Uuid;

use crate::auth::{AuthUser, parse_id};
use crate::clock::{from_millis, to_millis};
use crate::error::{ApiError, ApiResult};
use crate::notify::endpoint_guard::{EndpointGuard, Refusal};
use crate::notify::outbox;
use crate::routes::extract::Json;
use crate::state::AppState;

/// The application server key to subscribe a browser with.
#[utoipa::path(get, path = "/api/v1/push/vapid-public-key", tag = "push", security(("bearer" = [])),
    responses((status = 200, body = VapidPublicKey), (status = 401, body = ErrorBody)))]
pub async fn vapid_public_key(state: web::Data<AppState>, _user: AuthUser) -> ApiResult<HttpResponse> {
    let key = state.vapid_public_key.clone().ok_or_else(|| ApiError::Unavailable("push is not configured".into()))?;
    Ok(HttpResponse::Ok().json(VapidPublicKey { public_key: key }))
}

/// My subscribed devices.
#[utoipa::path(get, path = "/api/v1/push/subscriptions", tag = "push", security(("bearer" = [])),
    responses((status = 200, body = Vec<PushSubscriptionView>), (status = 401, body = ErrorBody)))]
pub async fn list(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "select subscription_id, endpoint, created_at from push_subscriptions where user_id = $1 order by created_at",
    )
    .bind(user.user_id.to_string())
    .fetch_all(&state.db.pool)
    .await?;
    let views = rows
        .into_iter()
        .map(|(id, endpoint, created)| {
            Ok(PushSubscriptionView { id: parse_id(&id)?, endpoint, created_at: from_millis(created) })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(views))
}

fn check_key(field: &'static str, raw: &str, len: usize) -> Result<(), FieldError> {
    match URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')) {
        Ok(bytes) if bytes.len() == len => Ok(()),
        _ => Err(FieldError::new(field, format!("must be {len} bytes in base64url"))),
    }
}

/// Subscribe this browser to alerts (one user may have several devices). Subscribing the same
/// endpoint again updates its keys and owner. The endpoint must be an https URL whose host is a public
/// address (checked after resolving its name); anything else is refused (422, field `endpoint`).
#[utoipa::path(post, path = "/api/v1/push/subscriptions", tag = "push", security(("bearer" = [])),
    request_body = PushSubscriptionRequest,
    responses((status = 201, body = PushSubscriptionView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn subscribe(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<PushSubscriptionRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let endpoint = body.endpoint.trim().to_string();
    // Only a push service on a public https address (the server must not be a way into the school's
    // network); the hosts of HOMEWARD_PUSH_ALLOW_HOSTS are the exception, for tests.
    let guard = EndpointGuard::new(&state.settings.push_allow_hosts);
    if endpoint.len() > 2_000 {
        return Err(FieldError::new("endpoint", Refusal::NotAUrl.explain()).into());
    }
    guard.check_url(&endpoint).map_err(|refusal| FieldError::new("endpoint", refusal.explain()))?;
    check_key("keys.p256dh", &body.keys.p256dh, 65)?;
    check_key("keys.auth", &body.keys.auth, 16)?;
    // After the cheap checks: what the name resolves to now.
    guard.check_subscription(&endpoint).await.map_err(|refusal| FieldError::new("endpoint", refusal.explain()))?;
    let now = state.clock.now();
    let id = Uuid::new_v4();
    let mut tx = state.db.begin().await?;
    outbox::forget_devices(&mut tx, outbox::Devices::WithEndpoint(&endpoint), now).await?;
    sqlx::query(
        "insert into push_subscriptions (subscription_id, user_id, school_id, endpoint, p256dh, auth, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.to_string())
    .bind(user.user_id.to_string())
    .bind(user.school_id.to_string())
    .bind(&endpoint)
    .bind(body.keys.p256dh.trim_end_matches('='))
    .bind(body.keys.auth.trim_end_matches('='))
    .bind(to_millis(now))
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(PushSubscriptionView { id, endpoint, created_at: now }))
}

/// Unsubscribe a device.
#[utoipa::path(delete, path = "/api/v1/push/subscriptions", tag = "push", security(("bearer" = [])),
    request_body = UnsubscribeRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unsubscribe(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<UnsubscribeRequest>,
) -> ApiResult<HttpResponse> {
    let mut tx = state.db.begin().await?;
    let devices = outbox::Devices::OfUserWithEndpoint(user.user_id, body.endpoint.trim());
    let forgotten = outbox::forget_devices(&mut tx, devices, state.clock.now()).await?;
    tx.commit().await?;
    if forgotten == 0 {
        return Err(ApiError::NotFound("subscription"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Send a test notification to every one of my devices now, and say how each push service answered (the
/// class of answer and its HTTP status, never its text): the safety-net check that alerts will reach
/// this person.
#[utoipa::path(post, path = "/api/v1/push/test", tag = "push", security(("bearer" = [])),
    responses((status = 200, body = TestPushReport), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn test(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let devices = crate::routes::channels::send_test(&state, user.user_id, Channel::Push).await?;
    Ok(HttpResponse::Ok().json(TestPushReport { devices }))
}

/// Whether alerts can reach me: a leader or DSL with no subscribed device is told so on every screen.
#[utoipa::path(get, path = "/api/v1/push/status", tag = "push", security(("bearer" = [])),
    responses((status = 200, body = homeward_shared::api::PushStatus), (status = 401, body = ErrorBody)))]
pub async fn status(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let (devices,): (i64,) = sqlx::query_as("select count(*) from push_subscriptions where user_id = $1")
        .bind(user.user_id.to_string())
        .fetch_one(&state.db.pool)
        .await?;
    let responder = user.has_any(&[homeward_shared::Role::Leader, homeward_shared::Role::Dsl]);
    let needs_subscription = responder && devices == 0;
    let message = needs_subscription.then(|| {
        "No device of yours has notifications turned on. \
         Turn them on in Settings so overdue and panic alerts reach you."
            .to_string()
    });
    Ok(HttpResponse::Ok().json(homeward_shared::api::PushStatus { devices, needs_subscription, message }))
}
