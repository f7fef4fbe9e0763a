use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Duration;
use homeward_shared::api::{LoginRequest, LoginResponse, SetPinsRequest, UserView};
use homeward_shared::{Email, ErrorBody, FieldError};

use crate::auth::{AuthUser, password, token};
use crate::clock::to_millis;
use crate::error::{ApiError, ApiResult};
use crate::routes::extract::Json;
use crate::state::AppState;
use crate::store::{audit, users};

/// Sign in with e-mail and password; returns a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn login(state: web::Data<AppState>, req: HttpRequest, body: Json<LoginRequest>) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let email = Email::parse(&body.email)?;
    if body.password.is_empty() {
        return Err(FieldError::new("password", "the password is required").into());
    }
    if body.password.chars().count() > 128 {
        return Err(FieldError::new("password", "a password has at most 128 characters").into());
    }
    let address = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let now = state.clock.now();
    if let Err(wait) = state.login_limiter.check(email.as_ref(), &address, now) {
        let minutes = wait.div_ceil(60);
        return Err(ApiError::TooManyRequests {
            message: format!(
                "too many failed sign-ins: this account is locked for {minutes} more minute(s); try again then"
            ),
            retry_after_secs: wait,
        });
    }
    let credentials = users::credentials(&state.db.pool, email.as_ref()).await?;
    let (user_id, stored_hash, active) = match credentials {
        Some(found) => found,
        None => {
            // Spend the same time as a real check so the response does not reveal unknown accounts.
            let _ = password::verify(body.password, password::DUMMY_HASH.to_string()).await;
            state.login_limiter.record_failure(email.as_ref(), &address, now);
            return Err(ApiError::Unauthorized("the e-mail or password is wrong"));
        }
    };
    if !password::verify(body.password, stored_hash).await? {
        state.login_limiter.record_failure(email.as_ref(), &address, now);
        return Err(ApiError::Unauthorized("the e-mail or password is wrong"));
    }
    if !active {
        return Err(ApiError::Unauthorized("this account has been deactivated"));
    }
    state.login_limiter.record_success(email.as_ref());
    let token = token::generate();
    let expires_at = now + Duration::seconds(state.settings.access_token_ttl_secs);
    let mut tx = state.db.begin().await?;
    sqlx::query("insert into access_tokens (token_hash, user_id, created_at, expires_at) values ($1, $2, $3, $4)")
        .bind(token::hash(&token))
        .bind(user_id.to_string())
        .bind(to_millis(now))
        .bind(to_millis(expires_at))
        .execute(tx.conn())
        .await?;
    let user =
        users::get(tx.conn(), user_id).await?.ok_or(ApiError::Unauthorized("the e-mail or password is wrong"))?;
    tx.commit().await?;
    tracing::info!(user = %user.id, "signed in");
    Ok(HttpResponse::Ok().json(LoginResponse { token, expires_at, user }))
}

/// Sign out: the token stops working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let mut tx = state.db.begin().await?;
    sqlx::query("update access_tokens set revoked_at = $1 where token_hash = $2")
        .bind(to_millis(state.clock.now()))
        .bind(&user.token_hash)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
pub async fn me(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let view = users::get(&state.db.pool, user.user_id).await?.ok_or(ApiError::NotFound("user"))?;
    Ok(HttpResponse::Ok().json(view))
}

fn parse_pin(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let pin = raw.trim();
    if !(4..=8).contains(&pin.len()) || !pin.chars().all(|c| c.is_ascii_digit()) {
        return Err(FieldError::new(field, "a PIN is 4 to 8 digits"));
    }
    Ok(pin.to_string())
}

/// Set the end-of-visit PINs: the safe PIN ends a visit; the duress PIN ends it on screen but raises a
/// silent alarm.
#[utoipa::path(put, path = "/api/v1/me/pins", tag = "auth", security(("bearer" = [])), request_body = SetPinsRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_pins(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<SetPinsRequest>,
) -> ApiResult<HttpResponse> {
    let safe = parse_pin("safe_pin", &body.safe_pin)?;
    let duress = parse_pin("duress_pin", &body.duress_pin)?;
    if safe == duress {
        return Err(FieldError::new("duress_pin", "the duress PIN must differ from the safe PIN").into());
    }
    let (safe_hash, duress_hash) = (password::hash(safe).await?, password::hash(duress).await?);
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    users::set_pins(&mut tx, user.user_id, &safe_hash, &duress_hash).await?;
    audit::append(
        &mut tx,
        audit::Action {
            school_id: user.school_id,
            actor_id: Some(user.user_id),
            action: "user.pins_set",
            subject: format!("user:{}", user.user_id),
            detail: String::new(),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
