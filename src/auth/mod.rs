//! Accounts and authentication: Argon2id passwords, JWT access tokens,
//! rotating refresh tokens, password reset, roles.

pub mod accounts;
pub mod api;
pub mod caller;
pub mod lockout;
pub mod mailings;
pub mod model;
pub mod password;
pub mod repo;
pub mod reset_page;
pub mod sessions;
pub mod token;
pub mod verify_page;

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::error::Error;
use crate::state::AppState;
pub use caller::Caller;
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

/// The holder of the bearer token, as the request's [`Caller`] verified it
/// (once per request, whoever asks first); 401 with the reason otherwise.
async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("application state missing")))?;
    let caller = Caller::of(req, state);
    // The same header through the same parser: the caller holds this token.
    debug_assert_eq!(caller.token(), Some(bearer.token.as_str()));
    match caller.holder(state).await? {
        Some(Ok(principal)) => Ok(principal),
        Some(Err(refusal)) => Err(refusal.error().into()),
        None => {
            Err(Error::unauthorized("AUTH_TOKEN_INVALID", "the access token is invalid").into())
        }
    }
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
