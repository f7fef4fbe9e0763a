//! Sign-ins: devices, their refresh credentials and the access tokens they renew. Only hashes of
//! credentials are stored.

use uuid::Uuid;

use crate::Timestamp;
use crate::clock::{from_millis, to_millis};
use crate::db::WriteTx;
use crate::db::parse_id;
use crate::error::ApiError;

/// The access token's owner as every request sees it: user id, school id, name, roles, expiry,
/// revocation, active flag, device.
pub type TokenRow = (String, String, String, String, i64, Option<i64>, i64, Option<String>);

pub const TOKEN_ROW: &str = "select u.user_id, u.school_id, u.name, u.roles, t.expires_at, t.revoked_at, u.active, t.device_id \
     from access_tokens t join users u on u.user_id = t.user_id where t.token_hash = $1";

/// Whether a sign-in still holds for a stream that outlives its request: a device's sign-in lasts while
/// the device does (its access tokens are renewed meanwhile), a token without a device until it expires.
pub const STILL_SIGNED_IN: &str = "select 1 from access_tokens t join users u on u.user_id = t.user_id \
     left join devices d on d.device_id = t.device_id \
     where t.token_hash = $1 and t.revoked_at is null and u.active = 1 \
     and ((t.device_id is null and t.expires_at > $2) or (d.revoked_at is null and d.expires_at > $2))";

pub async fn insert_device(
    tx: &mut WriteTx,
    device_id: Uuid,
    user_id: Uuid,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), ApiError> {
    sqlx::query(
        "insert into devices (device_id, user_id, created_at, last_renewed_at, expires_at) values ($1, $2, $3, $3, $4)",
    )
    .bind(device_id.to_string())
    .bind(user_id.to_string())
    .bind(to_millis(now))
    .bind(to_millis(expires_at))
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn insert_refresh_token(
    tx: &mut WriteTx,
    token_hash: &str,
    device_id: Uuid,
    now: Timestamp,
) -> Result<(), ApiError> {
    sqlx::query("insert into refresh_tokens (token_hash, device_id, created_at) values ($1, $2, $3)")
        .bind(token_hash)
        .bind(device_id.to_string())
        .bind(to_millis(now))
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn insert_access_token(
    tx: &mut WriteTx,
    token_hash: &str,
    user_id: Uuid,
    device_id: Uuid,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), ApiError> {
    sqlx::query(
        "insert into access_tokens (token_hash, user_id, created_at, expires_at, device_id) values ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user_id.to_string())
    .bind(to_millis(now))
    .bind(to_millis(expires_at))
    .bind(device_id.to_string())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A refresh credential with its device and person.
pub struct RefreshToken {
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub school_id: Uuid,
    pub used_at: Option<Timestamp>,
    pub successor_hash: Option<String>,
    /// Whether the successor has itself been exchanged (so this one is at least two renewals old).
    pub successor_used: bool,
    pub device_revoked: bool,
    pub device_expires_at: Timestamp,
    pub user_active: bool,
}

type RefreshRow = (String, String, String, Option<i64>, Option<String>, Option<i64>, Option<i64>, i64, i64);

pub async fn refresh_token(tx: &mut WriteTx, token_hash: &str) -> Result<Option<RefreshToken>, ApiError> {
    let row: Option<RefreshRow> = sqlx::query_as(
        "select r.device_id, d.user_id, u.school_id, r.used_at, r.successor_hash, s.used_at, d.revoked_at, \
         d.expires_at, u.active \
         from refresh_tokens r join devices d on d.device_id = r.device_id join users u on u.user_id = d.user_id \
         left join refresh_tokens s on s.token_hash = r.successor_hash \
         where r.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(tx.conn())
    .await?;
    let Some((device, user, school, used_at, successor_hash, successor_used_at, revoked_at, expires_at, active)) = row
    else {
        return Ok(None);
    };
    Ok(Some(RefreshToken {
        device_id: parse_id(&device)?,
        user_id: parse_id(&user)?,
        school_id: parse_id(&school)?,
        used_at: used_at.map(from_millis),
        successor_hash,
        successor_used: successor_used_at.is_some(),
        device_revoked: revoked_at.is_some(),
        device_expires_at: from_millis(expires_at),
        user_active: active != 0,
    }))
}

/// Exchange a refresh credential for its successor. `false` when it was already exchanged (by a
/// request that committed first).
pub async fn mark_refresh_token_used(
    tx: &mut WriteTx,
    token_hash: &str,
    successor_hash: &str,
    now: Timestamp,
) -> Result<bool, ApiError> {
    let result = sqlx::query(
        "update refresh_tokens set used_at = $1, successor_hash = $2 where token_hash = $3 and used_at is null",
    )
    .bind(to_millis(now))
    .bind(successor_hash)
    .bind(token_hash)
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A renewal moves the device's sign-in on (it lasts a while from its last use).
pub async fn renew_device(
    tx: &mut WriteTx,
    device_id: Uuid,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), ApiError> {
    sqlx::query("update devices set last_renewed_at = $1, expires_at = $2 where device_id = $3")
        .bind(to_millis(now))
        .bind(to_millis(expires_at))
        .bind(device_id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Whose sign-ins to end.
#[derive(Debug, Clone, Copy)]
pub enum SignIns {
    /// One device and the access tokens it holds.
    Device(Uuid),
    /// Every device of a person, and all their access tokens (also any made before devices).
    OfUser(Uuid),
}

impl SignIns {
    /// The column both `devices` and `access_tokens` name it by, and its value.
    fn filter(self) -> (&'static str, String) {
        match self {
            SignIns::Device(id) => ("device_id", id.to_string()),
            SignIns::OfUser(id) => ("user_id", id.to_string()),
        }
    }
}

/// End sign-ins at once; returns how many devices were signed out (0 when they had already ended).
pub async fn revoke(tx: &mut WriteTx, which: SignIns, now: Timestamp, reason: &str) -> Result<u64, ApiError> {
    let (column, id) = which.filter();
    let result = sqlx::query(&format!(
        "update devices set revoked_at = $1, revoked_reason = $2 where {column} = $3 and revoked_at is null"
    ))
    .bind(to_millis(now))
    .bind(reason)
    .bind(&id)
    .execute(tx.conn())
    .await?;
    sqlx::query(&format!("update access_tokens set revoked_at = $1 where {column} = $2 and revoked_at is null"))
        .bind(to_millis(now))
        .bind(&id)
        .execute(tx.conn())
        .await?;
    Ok(result.rows_affected())
}

/// End one access token (a sign-in from before devices).
pub async fn revoke_access_token(tx: &mut WriteTx, token_hash: &str, now: Timestamp) -> Result<(), ApiError> {
    sqlx::query("update access_tokens set revoked_at = $1 where token_hash = $2")
        .bind(to_millis(now))
        .bind(token_hash)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A device that is signed in.
pub struct Device {
    pub id: Uuid,
    pub created_at: Timestamp,
    pub last_renewed_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A person's devices that are still signed in, newest first.
pub async fn live_devices<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    user_id: Uuid,
    now: Timestamp,
) -> Result<Vec<Device>, ApiError> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "select device_id, created_at, last_renewed_at, expires_at from devices \
         where user_id = $1 and revoked_at is null and expires_at > $2 order by created_at desc",
    )
    .bind(user_id.to_string())
    .bind(to_millis(now))
    .fetch_all(exec)
    .await?;
    rows.into_iter()
        .map(|(id, created, renewed, expires)| {
            Ok(Device {
                id: parse_id(&id)?,
                created_at: from_millis(created),
                last_renewed_at: from_millis(renewed),
                expires_at: from_millis(expires),
            })
        })
        .collect()
}
