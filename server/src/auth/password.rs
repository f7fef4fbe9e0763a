//! argon2id password and PIN hashing, run on the blocking pool so sign-ins never stall the async workers.

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use homeward_shared::FieldError;

fn argon2() -> Argon2<'static> {
    // OWASP's recommended argon2id settings (19 MiB, 2 passes).
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19 * 1024, 2, 1, None).expect("valid argon2 params"))
}

/// The password rules: long enough to resist guessing, short enough to hash quickly.
pub fn check_rules(password: &str) -> Result<(), FieldError> {
    let length = password.chars().count();
    if length < 10 {
        return Err(FieldError::new("password", "a password needs at least 10 characters"));
    }
    if length > 128 {
        return Err(FieldError::new("password", "a password has at most 128 characters"));
    }
    if password.trim().is_empty() {
        return Err(FieldError::new("password", "a password cannot be only spaces"));
    }
    Ok(())
}

pub async fn hash(secret: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2().hash_password(secret.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await
    .context("the hashing task failed")?
}

pub async fn verify(secret: String, stored: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash is malformed: {e}"))?;
        Ok(argon2().verify_password(secret.as_bytes(), &parsed).is_ok())
    })
    .await
    .context("the verification task failed")?
}

/// A hash to verify against when the account does not exist, so timing does not reveal which e-mails are
/// registered.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9cH0ll4k9HoTUDnl1jDtk6HhB4fwRPxCS+lIkdfgfmA";
