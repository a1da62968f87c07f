//! Argon2id password hashing, stored as PHC strings.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::AuthConfig;
use crate::error::Error;

/// The Argon2id instance for the configured parameters.
pub fn argon2(config: &AuthConfig) -> Argon2<'static> {
    // Config::validate already checked these parameters.
    let params = Params::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        None,
    )
    .unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string. Blocking: call off the runtime.
pub fn hash(argon: &Argon2<'_>, password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(anyhow::anyhow!("argon2 hash failed: {e}")))
}

/// Checks a password against a stored PHC string, with the parameters
/// recorded in that string. Blocking: call off the runtime.
pub fn verify(argon: &Argon2<'_>, phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}
