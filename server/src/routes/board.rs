//! The leaders' live board: a snapshot, and the same pushed as Server-Sent Events whenever the school
//! changes (a visit starts, checks in, goes overdue, an alert is taken or resolved, a ping arrives).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use futures::stream;
use homeward_shared::api::BoardView;
use homeward_shared::{ErrorBody, Role};
use tokio::sync::broadcast::error::RecvError;

use crate::auth::AuthUser;
use crate::clock::to_millis;
use crate::error::{ApiError, ApiResult};
use crate::live;
use crate::state::AppState;
use crate::store::board;

const WATCHERS: [Role; 3] = [Role::Leader, Role::Dsl, Role::Admin];
const WHO: &str = "only leaders, the DSL and admins see the live board";

/// Changes this close together are sent as one board.
const SETTLE: Duration = Duration::from_millis(150);

/// Every live visit of the school, alarms first, then overdue, then by deadline.
#[utoipa::path(get, path = "/api/v1/board", tag = "board", security(("bearer" = [])),
    responses((status = 200, body = BoardView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&WATCHERS, WHO)?;
    let view = board::build(&state.db.pool, &user, &state.settings.map_tile_url, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The board as Server-Sent Events: an `event: board` with the whole board at once, again after every
/// change in the school and at least every `board_refresh_secs` (15 s by default), and nothing once the sign-in ends.
#[utoipa::path(get, path = "/api/v1/board/events", tag = "board", security(("bearer" = [])),
    responses((status = 200, description = "`text/event-stream` of `event: board` with a BoardView as `data`",
        content_type = "text/event-stream", body = BoardView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn events(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&WATCHERS, WHO)?;
    // Subscribe before the first board is built, so no change between the two is missed.
    let changes = state.db.live.subscribe();
    let first = frame(&state, &user).await?;
    let watch = Watch { state, user, changes, first: Some(first) };
    let body = stream::unfold(watch, |mut watch| async move {
        let chunk = watch.next().await?;
        Some((Ok::<_, actix_web::Error>(web::Bytes::from(chunk)), watch))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache, no-store"))
        // Proxies must pass each event on at once.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

struct Watch {
    state: web::Data<AppState>,
    user: AuthUser,
    changes: tokio::sync::broadcast::Receiver<uuid::Uuid>,
    first: Option<String>,
}

impl Watch {
    /// The next chunk to send, or `None` to end the stream.
    async fn next(&mut self) -> Option<String> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        let school = self.user.school_id;
        // Sent again after a while even when nothing was heard: ages on the board move on.
        let refresh = Duration::from_secs(self.state.settings.board_refresh_secs.max(1));
        let deadline = tokio::time::Instant::now() + refresh;
        loop {
            match tokio::time::timeout_at(deadline, self.changes.recv()).await {
                Ok(Ok(changed)) if changed != school && changed != live::EVERY_SCHOOL => continue,
                Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => {
                    tokio::time::sleep(SETTLE).await;
                    // Whatever else came meanwhile is in the board about to be built.
                    while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
                        self.changes.try_recv()
                    {}
                    break;
                }
                Ok(Err(RecvError::Closed)) => return None,
                Err(_) => break,
            }
        }
        if !still_signed_in(&self.state, &self.user).await {
            return None;
        }
        match frame(&self.state, &self.user).await {
            Ok(chunk) => Some(chunk),
            Err(e) => {
                // The database may be back by the next refresh; a comment keeps the connection open.
                tracing::warn!(error = %e, "the live board could not be built");
                Some(format!(": the board could not be built: {}\n\n", e.body().code))
            }
        }
    }
}

async fn frame(state: &AppState, user: &AuthUser) -> ApiResult<String> {
    let view = board::build(&state.db.pool, user, &state.settings.map_tile_url, state.clock.now()).await?;
    let json = serde_json::to_string(&view).map_err(|e| ApiError::Unexpected(e.into()))?;
    Ok(format!("event: board\ndata: {json}\n\n"))
}

/// A stream outlives the request that opened it: stop when the token is signed out, expires, or the
/// account is deactivated.
async fn still_signed_in(state: &AppState, user: &AuthUser) -> bool {
    let row: Result<Option<(i64,)>, sqlx::Error> = sqlx::query_as(
        "select 1 from access_tokens t join users u on u.user_id = t.user_id \
         where t.token_hash = $1 and t.revoked_at is null and t.expires_at > $2 and u.active = 1",
    )
    .bind(&user.token_hash)
    .bind(to_millis(state.clock.now()))
    .fetch_optional(&state.db.pool)
    .await;
    // An unreachable database is not a sign-out: keep the stream, it reports the problem itself.
    !matches!(row, Ok(None))
}
