//! Device sign-in: a phone or browser that signs in gets a short-lived access token and a refresh
//! credential that renews it, so a worker stays signed in through any visit without typing a password,
//! and a stolen access token is worth minutes. Each refresh credential is used once; its successor is
//! made by the device and saved before it asks, so a renewal whose answer was lost can be asked again,
//! while an old credential presented by anyone else ends the device's sign-in (it was copied).

use chrono::Duration;
use uuid::Uuid;

use super::token;
use crate::Timestamp;
use crate::configuration::Settings;
use crate::db::WriteTx;
use crate::error::ApiError;
use crate::store::{audit, sign_ins};
use homeward_shared::FieldError;

/// Shortest refresh credential a device may choose: as hard to guess as the server's own (32 bytes).
const MIN_REFRESH_TOKEN_CHARS: usize = 43;
const MAX_REFRESH_TOKEN_CHARS: usize = 256;

/// What a sign-in or a renewal hands the device.
pub struct Issued {
    pub device_id: Uuid,
    pub access_token: String,
    pub access_expires_at: Timestamp,
    pub refresh_token: String,
    pub refresh_expires_at: Timestamp,
}

fn access_lifetime(settings: &Settings) -> Duration {
    Duration::seconds(settings.access_token_ttl_secs.max(1))
}

fn device_lifetime(settings: &Settings) -> Duration {
    Duration::days(settings.device_sign_in_days.max(1))
}

/// A new device sign-in for `user_id` (after the password or single sign-on was checked).
pub async fn sign_in(tx: &mut WriteTx, settings: &Settings, user_id: Uuid, now: Timestamp) -> Result<Issued, ApiError> {
    let device_id = Uuid::new_v4();
    let refresh_expires_at = now + device_lifetime(settings);
    sign_ins::insert_device(tx, device_id, user_id, now, refresh_expires_at).await?;
    let refresh_token = token::generate();
    sign_ins::insert_refresh_token(tx, &token::hash(&refresh_token), device_id, now).await?;
    let (access_token, access_expires_at) = new_access_token(tx, settings, user_id, device_id, now).await?;
    Ok(Issued { device_id, access_token, access_expires_at, refresh_token, refresh_expires_at })
}

async fn new_access_token(
    tx: &mut WriteTx,
    settings: &Settings,
    user_id: Uuid,
    device_id: Uuid,
    now: Timestamp,
) -> Result<(String, Timestamp), ApiError> {
    let access_token = token::generate();
    let expires_at = now + access_lifetime(settings);
    sign_ins::insert_access_token(tx, &token::hash(&access_token), user_id, device_id, now, expires_at).await?;
    Ok((access_token, expires_at))
}

/// The next refresh credential a device proposes: long, random-looking, printable.
pub fn parse_next_refresh_token(raw: &str, current: &str) -> Result<(), FieldError> {
    let length = raw.chars().count();
    if !(MIN_REFRESH_TOKEN_CHARS..=MAX_REFRESH_TOKEN_CHARS).contains(&length) {
        return Err(FieldError::new(
            "next_refresh_token",
            format!("the next refresh token must be {MIN_REFRESH_TOKEN_CHARS} to {MAX_REFRESH_TOKEN_CHARS} characters"),
        ));
    }
    if !raw.chars().all(|c| c.is_ascii_graphic()) {
        return Err(FieldError::new("next_refresh_token", "the next refresh token must be printable ASCII"));
    }
    if raw == current {
        return Err(FieldError::new("next_refresh_token", "the next refresh token must differ from the current one"));
    }
    Ok(())
}

/// What came of a renewal.
pub enum Renewal {
    /// A fresh access token; the device now holds `next` as its refresh credential.
    Renewed { issued: Issued, user_id: Uuid },
    /// Refused. The transaction holds what must be recorded anyway (a copied credential ends the
    /// device), so the caller commits it before answering 401 with `why`.
    Refused { why: &'static str },
}

/// Exchange `presented` for `next`, or refuse.
pub async fn renew(
    tx: &mut WriteTx,
    settings: &Settings,
    presented: &str,
    next: &str,
    now: Timestamp,
) -> Result<Renewal, ApiError> {
    let presented_hash = token::hash(presented);
    let next_hash = token::hash(next);
    let Some(credential) = sign_ins::refresh_token(tx, &presented_hash).await? else {
        return Ok(Renewal::Refused { why: "this sign-in is not known; sign in again" });
    };
    if credential.device_revoked {
        return Ok(Renewal::Refused { why: "this device has been signed out; sign in again" });
    }
    if credential.device_expires_at <= now {
        return Ok(Renewal::Refused { why: "this device's sign-in has expired; sign in again" });
    }
    if !credential.user_active {
        return Ok(Renewal::Refused { why: "this account has been deactivated" });
    }
    let first_use =
        credential.used_at.is_none() && sign_ins::mark_refresh_token_used(tx, &presented_hash, &next_hash, now).await?;
    if first_use {
        sign_ins::insert_refresh_token(tx, &next_hash, credential.device_id, now).await?;
    } else {
        // Used before. The same device asking again for the same successor (its answer was lost) is
        // answered again; anything else means someone else holds a copy of the credential.
        let repeated = credential.successor_hash.as_deref() == Some(next_hash.as_str()) && !credential.successor_used;
        // The racing request that used it may have committed after this one read it: read again.
        let repeated = repeated
            || (credential.used_at.is_none()
                && sign_ins::refresh_token(tx, &presented_hash).await?.is_some_and(|again| {
                    again.successor_hash.as_deref() == Some(next_hash.as_str()) && !again.successor_used
                }));
        if !repeated {
            sign_ins::revoke(tx, sign_ins::SignIns::Device(credential.device_id), now, "refresh credential reused")
                .await?;
            audit::append(
                tx,
                audit::Action {
                    school_id: credential.school_id,
                    actor_id: Some(credential.user_id),
                    action: "auth.refresh_reused",
                    subject: format!("device:{}", credential.device_id),
                    detail: "a refresh credential was used again after it had been replaced: the device is signed \
                             out in case it was copied"
                        .into(),
                    at: now,
                },
            )
            .await?;
            return Ok(Renewal::Refused {
                why: "this sign-in was used from somewhere else, so the device has been signed out; sign in again",
            });
        }
    }
    let refresh_expires_at = now + device_lifetime(settings);
    sign_ins::renew_device(tx, credential.device_id, now, refresh_expires_at).await?;
    let (access_token, access_expires_at) =
        new_access_token(tx, settings, credential.user_id, credential.device_id, now).await?;
    Ok(Renewal::Renewed {
        issued: Issued {
            device_id: credential.device_id,
            access_token,
            access_expires_at,
            refresh_token: next.to_string(),
            refresh_expires_at,
        },
        user_id: credential.user_id,
    })
}
