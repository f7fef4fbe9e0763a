//! The worker's side of the messages about an alert on their visit: read them, and answer.

use std::collections::BTreeSet;

use actix_web::{HttpResponse, web};
use homeward_shared::ErrorBody;
use homeward_shared::api::{AlertKind, AlertMessage, MessageDirection, PushPayload, SendMessageRequest};
use homeward_shared::escalation::default_channels;
use uuid::Uuid;

use crate::Timestamp;
use crate::auth::AuthUser;
use crate::db::WriteTx;
use crate::error::{ApiError, ApiResult};
use crate::escalation::alerts::{self, Alert};
use crate::notify::outbox;
use crate::routes::extract::Json;
use crate::routes::parse_path_id;
use crate::state::AppState;
use crate::store::{audit, messages, sessions};

/// The messages about the visit's alerts, oldest first: to its worker and companion, and to the school's
/// leaders, DSL and admins.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/messages", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = Vec<AlertMessage>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(state: web::Data<AppState>, user: AuthUser, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path)?;
    let session = sessions::get_visible(&state.db.pool, &user, id).await?;
    let all = messages::for_session(&state.db.pool, session.id).await?;
    Ok(HttpResponse::Ok().json(all))
}

/// The worker answers the latest message about an open alert on their visit ("I'm OK", "Call me"); the
/// answer is pushed to everyone who wrote to them.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/messages", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")), request_body = SendMessageRequest,
    responses((status = 201, body = AlertMessage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn reply(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    body: Json<SendMessageRequest>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path)?;
    let text = messages::text(&body.text)?;
    let session = sessions::get_visible(&state.db.pool, &user, id).await?;
    if !session.is_worker_side(user.user_id) {
        return Err(ApiError::Forbidden("only the people on the visit answer messages about it"));
    }
    // The alert the latest message to the worker was about.
    let asked = messages::for_session(&state.db.pool, session.id)
        .await?
        .into_iter()
        .rev()
        .find(|m| m.direction == MessageDirection::ToWorker)
        .ok_or_else(|| ApiError::conflict("nothing_to_answer", "nobody has asked you anything about this visit"))?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let alert = alerts::lock(&mut tx, asked.alert_id).await?.ok_or(ApiError::NotFound("alert"))?;
    if alert.kind == AlertKind::Duress {
        return Err(ApiError::NotFound("alert"));
    }
    let askers: BTreeSet<Uuid> = messages::senders_to_worker(&mut tx, alert.id).await?.into_iter().collect();
    let message_id = send(
        &mut tx,
        Outgoing {
            alert: &alert,
            sender: &user,
            direction: MessageDirection::FromWorker,
            text: &text,
            to: &askers,
            title: format!("{} answered", user.name),
            url: format!("/alerts/{}", alert.id),
            action: "alert.message_answered",
            detail: format!("from the worker: {text}"),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    let sent = messages::for_alert(&state.db.pool, alert.id)
        .await?
        .into_iter()
        .find(|m| m.id == message_id)
        .ok_or(ApiError::NotFound("message"))?;
    Ok(HttpResponse::Created().json(sent))
}

/// A message about an alert, on its way: stored, pushed to `to`, and written to the audit log.
pub(crate) struct Outgoing<'a> {
    pub alert: &'a Alert,
    pub sender: &'a AuthUser,
    pub direction: MessageDirection,
    pub text: &'a str,
    pub to: &'a BTreeSet<Uuid>,
    pub title: String,
    /// Where the app opens when the notification is tapped.
    pub url: String,
    pub action: &'static str,
    pub detail: String,
}

/// Store, push and audit one message in the caller's transaction; the stored message's id.
pub(crate) async fn send(tx: &mut WriteTx, message: Outgoing<'_>, now: Timestamp) -> Result<Uuid, ApiError> {
    let alert = message.alert;
    let id = messages::insert(
        tx,
        messages::NewMessage {
            school_id: alert.school_id,
            alert_id: alert.id,
            session_id: alert.session_id,
            sender_id: message.sender.user_id,
            direction: message.direction,
            text: message.text,
        },
        now,
    )
    .await?;
    let payload = PushPayload {
        alert_id: alert.id,
        kind: alert.kind,
        purpose: "message".into(),
        step: None,
        title: message.title,
        body: message.text.to_owned(),
        url: message.url,
    };
    outbox::enqueue(tx, alert, message.to, outbox::Purpose::Notice, None, &default_channels(), &payload, now).await?;
    audit::append(
        tx,
        audit::Action {
            school_id: alert.school_id,
            actor_id: Some(message.sender.user_id),
            action: message.action,
            subject: format!("alert:{}", alert.id),
            detail: message.detail,
            at: now,
        },
    )
    .await?;
    Ok(id)
}
