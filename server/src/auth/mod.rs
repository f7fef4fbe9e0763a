//! Who is calling: passwords, bearer tokens, the signed-in user extractor, and the login rate limit.

pub mod client_address;
pub mod device;
pub mod password;
pub mod rate_limit;
pub mod token;

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, web};
use homeward_shared::Role;
use uuid::Uuid;

use crate::clock::to_millis;
use crate::error::ApiError;
use crate::state::AppState;

pub use crate::db::parse_id;
use crate::store::sign_ins::{TOKEN_ROW, TokenRow};

/// On SQLite the token is looked up on the calling thread ([`crate::db::inline_read`]): every request
/// does this, and a hand-off to the pool's thread costs more than the read. `None`: ask the pool.
fn token_row_inline(state: &AppState, token_hash: &str) -> Option<Option<TokenRow>> {
    use rusqlite::OptionalExtension;
    let direct = state.db.direct.as_ref()?;
    crate::db::inline_read::read(direct.path(), |conn| {
        conn.prepare_cached(TOKEN_ROW)?
            .query_row([token_hash], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
            })
            .optional()
    })
}

/// The signed-in user, taken from `Authorization: Bearer <token>`. Every handler that needs a user
/// takes this, so no endpoint can forget to check.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub school_id: Uuid,
    pub name: String,
    pub roles: Vec<Role>,
    pub token_hash: String,
    /// The device sign-in this request's token belongs to (none for tokens made before devices).
    pub device_id: Option<Uuid>,
}

impl AuthUser {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    /// Refuse unless the user holds one of `roles`.
    pub fn require(&self, roles: &[Role], what: &'static str) -> Result<(), ApiError> {
        if self.has_any(roles) { Ok(()) } else { Err(ApiError::Forbidden(what)) }
    }

    /// Leaders, the DSL and admins see the whole school's sessions.
    pub fn oversees_school(&self) -> bool {
        self.has_any(&[Role::Leader, Role::Dsl, Role::Admin])
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req.headers().get("authorization").and_then(|h| h.to_str().ok()).map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("app state missing")))?;
            let header = header.ok_or(ApiError::Unauthorized("no bearer token was sent"))?;
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .ok_or(ApiError::Unauthorized("the Authorization header must be `Bearer <token>`"))?;
            let token_hash = token::hash(token.trim());
            let row = match token_row_inline(&state, &token_hash) {
                Some(row) => row,
                None => sqlx::query_as(TOKEN_ROW).bind(&token_hash).fetch_optional(&state.db.pool).await?,
            };
            let Some((user_id, school_id, name, roles, expires_at, revoked_at, active, device_id)) = row else {
                return Err(ApiError::Unauthorized("the token is not valid"));
            };
            if revoked_at.is_some() {
                return Err(ApiError::Unauthorized("you have signed out; sign in again"));
            }
            if expires_at <= to_millis(state.clock.now()) {
                return Err(ApiError::Unauthorized(if device_id.is_some() {
                    "the access token has expired; renew it with the device's refresh token"
                } else {
                    "your sign-in has expired; sign in again"
                }));
            }
            if active == 0 {
                return Err(ApiError::Unauthorized("this account has been deactivated"));
            }
            Ok(AuthUser {
                user_id: parse_id(&user_id)?,
                school_id: parse_id(&school_id)?,
                name,
                roles: crate::store::users::decode_roles(&roles),
                token_hash,
                device_id: device_id.as_deref().map(parse_id).transpose()?,
            })
        })
    }
}
