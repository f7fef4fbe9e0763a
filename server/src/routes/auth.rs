use actix_web::{HttpRequest, HttpResponse, web};
use homeward_shared::api::{DeviceView, LoginRequest, LoginResponse, RefreshRequest, SetPinsRequest, UserView};
use homeward_shared::{Email, ErrorBody, FieldError};

use crate::auth::client_address::client_address;
use crate::auth::device::{self, Issued, Renewal};
use crate::auth::{AuthUser, password};
use crate::error::{ApiError, ApiResult};
use crate::routes::extract::Json;
use crate::routes::parse_path_id;
use crate::state::AppState;
use crate::store::sign_ins::SignIns;
use crate::store::{audit, sign_ins, users};

fn login_response(issued: Issued, user: UserView) -> LoginResponse {
    LoginResponse {
        token: issued.access_token,
        expires_at: issued.access_expires_at,
        user,
        device_id: issued.device_id,
        refresh_token: issued.refresh_token,
        refresh_expires_at: issued.refresh_expires_at,
    }
}

/// Sign in with e-mail and password: a new device sign-in (an access token and its refresh token).
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
    let address = client_address(&req, &state.settings.trusted_proxies).map(|a| a.to_string()).unwrap_or_default();
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
    let mut tx = state.db.begin().await?;
    let issued = device::sign_in(&mut tx, &state.settings, user_id, now).await?;
    let user =
        users::get(tx.conn(), user_id).await?.ok_or(ApiError::Unauthorized("the e-mail or password is wrong"))?;
    tx.commit().await?;
    tracing::info!(user = %user.id, device = %issued.device_id, "signed in");
    Ok(HttpResponse::Ok().json(login_response(issued, user)))
}

/// Renew a device sign-in: a new access token, and the device's next refresh token takes over from the
/// one sent. Presenting a refresh token that was already replaced (other than the same request sent
/// again) signs the device out, since someone else may hold a copy.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn refresh(state: web::Data<AppState>, body: Json<RefreshRequest>) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    if body.refresh_token.is_empty() {
        return Err(FieldError::new("refresh_token", "the refresh token is required").into());
    }
    device::parse_next_refresh_token(&body.next_refresh_token, &body.refresh_token)?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    match device::renew(&mut tx, &state.settings, &body.refresh_token, &body.next_refresh_token, now).await? {
        Renewal::Renewed { issued, user_id } => {
            let user = users::get(tx.conn(), user_id).await?.ok_or(ApiError::Unauthorized("this account is gone"))?;
            tx.commit().await?;
            Ok(HttpResponse::Ok().json(login_response(issued, user)))
        }
        Renewal::Refused { why } => {
            tx.commit().await?;
            Err(ApiError::Unauthorized(why))
        }
    }
}

/// Sign out this device: its access and refresh tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    match user.device_id {
        Some(device_id) => {
            sign_ins::revoke(&mut tx, SignIns::Device(device_id), now, "signed out").await?;
        }
        None => sign_ins::revoke_access_token(&mut tx, &user.token_hash, now).await?,
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sign out every device of mine (a lost or stolen phone), this one too.
#[utoipa::path(post, path = "/api/v1/auth/logout-everywhere", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout_everywhere(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let devices = sign_ins::revoke(&mut tx, SignIns::OfUser(user.user_id), now, "signed out everywhere").await?;
    audit::append(
        &mut tx,
        audit::Action {
            school_id: user.school_id,
            actor_id: Some(user.user_id),
            action: "auth.signed_out_everywhere",
            subject: format!("user:{}", user.user_id),
            detail: format!("{devices} device(s) signed out"),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// My signed-in devices.
#[utoipa::path(get, path = "/api/v1/me/devices", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [DeviceView]), (status = 401, body = ErrorBody)))]
pub async fn devices(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let devices = sign_ins::live_devices(&state.db.pool, user.user_id, state.clock.now()).await?;
    let views: Vec<DeviceView> = devices
        .into_iter()
        .map(|d| DeviceView {
            id: d.id,
            signed_in_at: d.created_at,
            last_renewed_at: d.last_renewed_at,
            expires_at: d.expires_at,
            current: user.device_id == Some(d.id),
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Sign out one of my devices.
#[utoipa::path(delete, path = "/api/v1/me/devices/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn sign_out_device(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let device_id = parse_path_id(&path)?;
    let now = state.clock.now();
    let mine = sign_ins::live_devices(&state.db.pool, user.user_id, now).await?.iter().any(|d| d.id == device_id);
    if !mine {
        return Err(ApiError::NotFound("device"));
    }
    let mut tx = state.db.begin().await?;
    sign_ins::revoke(&mut tx, SignIns::Device(device_id), now, "signed out from another device").await?;
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
