//! argon2id password and PIN hashing, run on the blocking pool so sign-ins never stall the async workers.

use std::sync::{Mutex, PoisonError};

use anyhow::Context;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use homeward_shared::FieldError;
use tokio::sync::Semaphore;

fn params() -> Params {
    // OWASP's recommended argon2id settings (19 MiB, 2 passes).
    Params::new(19 * 1024, 2, 1, None).expect("valid argon2 params")
}

/// Hashes run at once; more only queue (two cores' worth, and each holds 19 MiB).
const AT_ONCE: usize = 2;
static TURNS: Semaphore = Semaphore::const_new(AT_ONCE);
/// argon2's working memory, kept for the next hash. Allocated afresh for every hash, glibc kept each
/// freed 19 MiB block in the arena of the blocking-pool thread that had used it: the server's resident
/// memory grew by about 19 MiB for every thread that ever hashed (196 MB after 30 sign-ins one after
/// another). With at most `AT_ONCE` hashes at a time, at most `AT_ONCE` blocks ever exist.
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Run `work` on the blocking pool with argon2 memory of `blocks` blocks, in one of the `AT_ONCE` turns.
async fn with_memory<T: Send + 'static>(
    blocks: usize,
    work: impl FnOnce(&mut [Block]) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let _turn = TURNS.acquire().await.context("the hashing turns are closed")?;
    tokio::task::spawn_blocking(move || {
        let kept = MEMORY.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut memory = match kept {
            Some(memory) if memory.len() == blocks => memory,
            // Another cost (a hash made with other settings): its own memory, freed afterwards.
            _ => vec![Block::default(); blocks],
        };
        let result = work(&mut memory);
        if blocks == params().block_count() {
            MEMORY.lock().unwrap_or_else(PoisonError::into_inner).push(memory);
        }
        result
    })
    .await
    .context("the hashing task failed")?
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

/// An argon2id hash of `secret` in the PHC string format (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub async fn hash(secret: String) -> anyhow::Result<String> {
    let params = params();
    with_memory(params.block_count(), move |memory| {
        let salt = SaltString::generate(&mut OsRng);
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
            Ok(argon2.hash_password_into_with_memory(secret.as_bytes(), salt_bytes, out, &mut *memory)?)
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("{e}"))?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(hash.to_string())
    })
    .await
}

/// Does `secret` match the PHC string `stored`? (With the settings written in it.)
pub async fn verify(secret: String, stored: String) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash is malformed: {e}"))?;
    let params = Params::try_from(&parsed).map_err(|e| anyhow::anyhow!("stored hash has bad parameters: {e}"))?;
    with_memory(params.block_count(), move |memory| {
        let parsed = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash is malformed: {e}"))?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return Ok(false) };
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| anyhow::anyhow!("{e}"))?;
        let version =
            parsed.version.map(Version::try_from).transpose().map_err(|e| anyhow::anyhow!("{e}"))?.unwrap_or_default();
        let argon2 = Argon2::new(algorithm, version, params);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let computed = Output::init_with(expected.len(), |out| {
            Ok(argon2.hash_password_into_with_memory(secret.as_bytes(), salt_bytes, out, &mut *memory)?)
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        // `Output`'s equality is constant-time.
        Ok(computed == expected)
    })
    .await
}

/// A hash to verify against when the account does not exist, so timing does not reveal which e-mails are
/// registered.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9cH0ll4k9HoTUDnl1jDtk6HhB4fwRPxCS+lIkdfgfmA";

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
    use argon2::{Algorithm, Argon2, PasswordHash, Version};

    use super::{DUMMY_HASH, hash, params, verify};

    #[tokio::test]
    async fn a_hash_verifies_its_secret_only() {
        let stored = hash("correct horse battery".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify("correct horse battery".into(), stored.clone()).await.unwrap());
        assert!(!verify("correct horse batterx".into(), stored.clone()).await.unwrap());
        // The argon2 crate's own verifier agrees: the format is standard.
        let parsed = PasswordHash::new(&stored).unwrap();
        let standard = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        assert!(standard.verify_password(b"correct horse battery", &parsed).is_ok());
    }

    #[tokio::test]
    async fn hashes_made_before_still_verify() {
        // As the server hashed passwords before its memory was reused, and with other costs.
        for (m, t) in [(19 * 1024, 2), (8 * 1024, 3)] {
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2::Params::new(m, t, 1, None).unwrap());
            let salt = SaltString::generate(&mut OsRng);
            let stored = argon2.hash_password(b"an older password", &salt).unwrap().to_string();
            assert!(verify("an older password".into(), stored.clone()).await.unwrap());
            assert!(!verify("another password".into(), stored).await.unwrap());
        }
        assert!(!verify("anything at all".into(), DUMMY_HASH.into()).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_at_once_all_verify() {
        let stored = hash("at once at once".into()).await.unwrap();
        let checks = (0..6).map(|k| {
            let stored = stored.clone();
            tokio::spawn(async move {
                verify(if k % 2 == 0 { "at once at once" } else { "not at once" }.into(), stored).await
            })
        });
        for (k, check) in checks.enumerate() {
            assert_eq!(check.await.unwrap().unwrap(), k % 2 == 0);
        }
    }
}
