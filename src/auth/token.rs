//! Access tokens (JWT, HS256) and the opaque random tokens used for refresh
//! and password reset, which are stored only as SHA-256 hashes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::Role;
use crate::clock::Clock;
use crate::config::AuthConfig;
use crate::error::Error;

/// Claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
    /// The session: the refresh-token family of the login (see
    /// `sessions.rs`). Empty in tokens from before sessions were checked,
    /// which are refused.
    #[serde(default)]
    pub sid: String,
}

/// Signs and checks access tokens.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_seconds: u64,
    clock: Clock,
}

impl AccessTokens {
    pub fn new(config: &AuthConfig, secret: &[u8], clock: Clock) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // Expiry is judged by the application's clock in `check`, exactly: a
        // token is dead at `exp`, not a minute later.
        validation.validate_exp = false;
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            ttl_seconds: config.access_token_ttl_seconds,
            clock,
        }
    }

    /// A signed token for this account's session `sid` and its lifetime in
    /// seconds.
    pub fn issue(&self, user_id: &str, role: Role, sid: &str) -> Result<(String, u64), Error> {
        let now = u64::try_from(self.clock.unix()).unwrap_or(0);
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            iat: now,
            exp: now + self.ttl_seconds,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: crate::ids::new_id(),
            sid: sid.to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::internal(anyhow::anyhow!("signing a token failed: {e}")))?;
        Ok((token, self.ttl_seconds))
    }

    /// The claims of a valid token; refused when expired, tampered, signed
    /// with another key or meant for another issuer or audience.
    pub fn check(&self, token: &str) -> Result<Claims, Rejection> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| Rejection::Invalid)?;
        let now = u64::try_from(self.clock.unix()).unwrap_or(0);
        if claims.exp <= now {
            return Err(Rejection::Expired);
        }
        Ok(claims)
    }
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Signed here, but past its `exp`.
    Expired,
    /// Malformed, tampered, signed with another key, or for another audience.
    Invalid,
}

impl Rejection {
    /// The 401 the caller gets.
    pub fn error(self) -> Error {
        match self {
            Rejection::Expired => Error::unauthorized(
                "AUTH_TOKEN_EXPIRED",
                format!(
                    "the access token has expired; get a new one with POST {}",
                    crate::api_base::api_path("/auth/refresh")
                ),
            ),
            Rejection::Invalid => {
                Error::unauthorized("AUTH_TOKEN_INVALID", "the access token is invalid")
            }
        }
    }
}

/// What is stored for an opaque token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh signing secret for when none is configured: 64 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
