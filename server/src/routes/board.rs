//! The leaders' live board: a snapshot, and the same pushed as Server-Sent Events whenever the school
//! changes (a visit starts, checks in, goes overdue, an alert is taken or resolved, a ping arrives). The
//! streams of a school share one board, built once per change (`shared_boards`).

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use futures::stream;
use homeward_shared::api::BoardView;
use homeward_shared::{ErrorBody, Role};

use crate::auth::AuthUser;
use crate::clock::to_millis;
use crate::error::ApiResult;
use crate::shared_boards::{self, Watching};
use crate::state::AppState;
use crate::store::board;

const WATCHERS: [Role; 3] = [Role::Leader, Role::Dsl, Role::Admin];
const WHO: &str = "only leaders, the DSL and admins see the live board";

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
    // Watch the school's shared board before building the first one, so no change between the two is missed.
    let watching = state.boards.watch(&state, user.school_id);
    let first = shared_boards::frame(&state.boards.build(&state, user.school_id).await?.view(&user))?;
    let watch = Watch { state, user, watching, first: Some(first) };
    let body = stream::unfold(watch, |mut watch| async move {
        let chunk = watch.next().await?;
        Some((Ok::<_, actix_web::Error>(chunk), watch))
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
    watching: Watching,
    first: Option<Bytes>,
}

impl Watch {
    /// The next chunk to send, or `None` to end the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        let built = self.watching.next().await?;
        if !still_signed_in(&self.state, &self.user).await {
            return None;
        }
        Some(built.frame_for(&self.user))
    }
}
/// A stream outlives the request that opened it: stop when the device is signed out or its sign-in
/// lapses (its access tokens are renewed meanwhile), or the account is deactivated.
async fn still_signed_in(state: &AppState, user: &AuthUser) -> bool {
    let row: Result<Option<(i64,)>, sqlx::Error> = sqlx::query_as(crate::store::sign_ins::STILL_SIGNED_IN)
        .bind(&user.token_hash)
        .bind(to_millis(state.clock.now()))
        .fetch_optional(&state.db.pool)
        .await;
    // An unreachable database is not a sign-out: keep the stream, it reports the problem itself.
    !matches!(row, Ok(None))
}
