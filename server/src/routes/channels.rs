//! Will alerts reach people? A test message on request, each leader's reachability, and the safety-net
//! check of a planned visit.

use actix_web::{HttpResponse, web};
use homeward_shared::api::{
    AlertKind, PushPayload, ReachabilityReport, SafetyNetReport, TestMessageReport, TestMessageRequest, TestPushResult,
};
use homeward_shared::escalation::Channel;
use homeward_shared::{ErrorBody, Role};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::escalation::safety_net;
use crate::notify::{Address, Device, Message, SendOutcome};
use crate::routes::extract::Json;
use crate::routes::parse_path_id;
use crate::state::AppState;
use crate::store::sessions;

/// Send a test message to `user_id` on one channel now, and say what each destination's service said.
pub async fn send_test(state: &AppState, user_id: Uuid, kind: Channel) -> ApiResult<Vec<TestPushResult>> {
    // Not a fault of the server's: this deployment chose not to configure the channel.
    let channel = state.channels.get(kind).cloned().ok_or_else(|| {
        ApiError::conflict(
            "channel_not_set_up",
            format!("{} is not set up on this server; ask whoever runs Homeward to configure it", kind.as_str()),
        )
    })?;
    let destinations: Vec<(String, Address)> = match kind {
        Channel::Push => {
            let devices: Vec<(String, String, String)> = sqlx::query_as(
                "select endpoint, p256dh, auth from push_subscriptions where user_id = $1 order by created_at",
            )
            .bind(user_id.to_string())
            .fetch_all(&state.db.pool)
            .await?;
            devices
                .into_iter()
                .map(|(endpoint, p256dh, auth)| (endpoint.clone(), Address::Device(Device { endpoint, p256dh, auth })))
                .collect()
        }
        Channel::Email | Channel::Sms => {
            let (email, phone): (String, Option<String>) =
                sqlx::query_as("select email, phone from users where user_id = $1")
                    .bind(user_id.to_string())
                    .fetch_one(&state.db.pool)
                    .await?;
            match (kind, phone) {
                (Channel::Email, _) => vec![(email.clone(), Address::Email(email))],
                (_, Some(phone)) => vec![(phone.clone(), Address::Phone(phone))],
                (_, None) => {
                    return Err(ApiError::conflict(
                        "no_phone",
                        "you have no phone number for text messages; ask an admin to add one",
                    ));
                }
            }
        }
    };
    let message = Message {
        payload: PushPayload {
            alert_id: Uuid::nil(),
            kind: AlertKind::MissedStart,
            purpose: "test".into(),
            step: None,
            title: "Homeward test".into(),
            body: format!("Alerts will reach you by {}.", kind.as_str()),
            url: "/settings".into(),
        },
        urgent: false,
        ttl_seconds: 60,
        topic: "homeward-test".into(),
    };
    let mut results = Vec::with_capacity(destinations.len());
    for (endpoint, to) in destinations {
        let (delivered, detail) = match channel.send(&to, &message).await {
            SendOutcome::Delivered { status } => (true, format!("accepted ({status})")),
            SendOutcome::Gone { status } => {
                (false, format!("the device's subscription is gone ({status}): subscribe again"))
            }
            SendOutcome::Retry { error, .. } | SendOutcome::Failed { error, .. } => (false, error),
        };
        results.push(TestPushResult { endpoint, delivered, detail });
    }
    Ok(results)
}

/// Send me a test message on one channel (`push`, `email` or `sms`) and report what happened.
#[utoipa::path(post, path = "/api/v1/me/test-message", tag = "channels", security(("bearer" = [])),
    request_body = TestMessageRequest,
    responses((status = 200, body = TestMessageReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn test_message(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<TestMessageRequest>,
) -> ApiResult<HttpResponse> {
    let channel = body.channel;
    let results = send_test(&state, user.user_id, channel).await?;
    Ok(HttpResponse::Ok().json(TestMessageReport { channel, results }))
}

/// Can each leader and the DSL be reached, and on which channels (leaders, the DSL and admins)?
#[utoipa::path(get, path = "/api/v1/school/reachability", tag = "channels", security(("bearer" = [])),
    responses((status = 200, body = ReachabilityReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn reachability(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(
        &[Role::Leader, Role::Dsl, Role::Admin],
        "only leaders, the DSL and admins can see who can be reached",
    )?;
    let mut conn = state.db.pool.acquire().await?;
    let report =
        safety_net::reachability(&mut conn, user.school_id, state.channels.configured(), state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Will this visit's plan reach someone at every step, at the times the steps could fire? For the start
/// screen: the worker and anyone who oversees the visit.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/safety-net", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = SafetyNetReport), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn safety_net(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path)?;
    let mut conn = state.db.pool.acquire().await?;
    let session = sessions::get_visible(&mut *conn, &user, id).await?;
    let report = safety_net::check(&mut conn, &session, state.channels.configured(), state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(report))
}
