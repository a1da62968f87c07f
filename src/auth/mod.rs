//! Accounts and authentication: Argon2id passwords, JWT access tokens,
//! rotating refresh tokens, password reset, roles.

pub mod accounts;
pub mod api;
pub mod lockout;
pub mod model;
pub mod password;
pub mod repo;
pub mod reset_page;
pub mod sessions;
pub mod token;

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::error::Error;
use crate::state::AppState;
pub use model::Principal;

// As a handler argument this marks the operation as protected in the spec
// and rejects missing, expired or tampered tokens with 401 before the
// handler runs. Its doc comment is the text of Swagger UI's Authorize
// dialog, so it speaks to the person trying the API.

/// Sign in with `POST /api/v1/auth/login` (the demo accounts:
/// `student@test.com` or `tutor@test.com` with `password123`,
/// `admin@test.com` with `admin123`), copy `accessToken` from the answer and
/// paste it here without the word `Bearer`. A token lasts 15 minutes unless
/// the server is configured otherwise; sign in again, or use
/// `POST /api/v1/auth/refresh`, for a new one.
#[derive(SecurityScheme)]
#[oai(
    rename = "bearerAuth",
    ty = "bearer",
    bearer_format = "JWT",
    checker = "check_bearer"
)]
pub struct BearerAuth(pub Principal);

/// A bearer token an outer layer (the rate limiter) already verified in
/// this request, so the operation's check does not verify it twice.
#[derive(Clone)]
pub struct VerifiedBearer {
    pub token: String,
    pub principal: Principal,
}

/// Verifies an access token and names its holder, with the role the
/// account has now; 401 once its session has ended.
pub async fn principal_of(state: &AppState, token: &str) -> Result<Principal, Error> {
    let claims = state.tokens.verify(token)?;
    state.sessions.holder(&state.db, &claims).await
}

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    if let Some(verified) = req.data::<VerifiedBearer>()
        && verified.token == bearer.token
    {
        return Ok(verified.principal.clone());
    }
    let state = req
        .data::<AppState>()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("application state missing")))?;
    Ok(principal_of(state, &bearer.token).await?)
}

/// The HS256 secret: the configured one, else the one generated on first
/// start and kept in the database so tokens survive restarts. Blocking.
pub fn signing_secret(
    db: &crate::db::Db,
    config: &crate::config::AuthConfig,
) -> Result<String, Error> {
    if !config.jwt_secret.is_empty() {
        return Ok(config.jwt_secret.expose().to_string());
    }
    db.write_blocking(|conn| {
        Ok(repo::setting_or_insert(
            conn,
            "jwt_secret",
            &token::generate_secret(),
            &crate::clock::Clock::system().stamp(),
        )?)
    })
}
