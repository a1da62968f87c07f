//! HTTP side of accounts: register, login, refresh, logout, me, password
//! reset, and the admin's list of users.

use std::time::Duration;

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::accounts::{self, NewAccount};
use super::mailings::{self, Asked};
use super::model::{
    AuthResponse, ForgotPasswordRequest, LoginRequest, RefreshRequest, RegisterRequest,
    ResetPasswordRequest, Role, TokenType, User, VerifyEmailRequest, check_new_password,
    normalize_email,
};
use super::token::token_hash;
use super::{BearerAuth, Caller, lockout, repo};
use crate::error::declared::*;
use crate::error::{ApiResult, Error};
use crate::ids::random_token;
use crate::mail::model::Locale;
use crate::paging::{Page, Paged};
use crate::state::AppState;
use crate::tags::ApiTags;

pub struct AuthApi;

/// A new account and its first session.
#[derive(ApiResponse)]
pub enum Registered {
    /// The account was created and signed in.
    #[oai(status = 201)]
    Created(Json<AuthResponse>),
}

/// Answer with no body.
#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

/// Accepted for processing.
#[derive(ApiResponse)]
pub enum Accepted {
    /// Accepted; if the account exists, a reset link is on its way.
    #[oai(status = 202)]
    Accepted,
}

/// A verification link queued.
#[derive(ApiResponse)]
pub enum LinkQueued {
    /// Accepted; a new verification link is on its way.
    #[oai(status = 202)]
    Queued,
}

const INVALID_CREDENTIALS: &str = "AUTH_INVALID_CREDENTIALS";

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Register an account
    ///
    /// Creates a STUDENT (default) or TUTOR account and signs it in. ADMIN
    /// accounts are created with `wemaster user create`, never here. The
    /// email is trimmed and compared case-insensitively.
    #[oai(path = "/auth/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        req: &poem::Request,
        state: Data<&AppState>,
        body: Json<RegisterRequest>,
    ) -> ApiResult<Registered, { TOO_MANY_REQUESTS | JSON_BODY | CONFLICT | SERVER }> {
        let body = body.0;
        let role: Role = body.role.map_or(Role::Student, Into::into);
        let mut account =
            NewAccount::check(&body.email, body.password.into_inner(), body.name, role)?;
        account.locale = body.locale.unwrap_or_else(|| {
            req.header(poem::http::header::ACCEPT_LANGUAGE)
                .map_or(Locale::En, Locale::from_accept_language)
        });
        let password_hash = state.hasher.hash(account.password().to_string()).await?;
        let user = account.hashed(password_hash, &state.clock);
        let refresh = random_token();
        let refresh_hash = token_hash(&refresh);
        let ttl = state.config.auth.refresh_token_ttl_seconds;
        let family = crate::ids::new_id();
        let sid = family.clone();
        let clock = state.clock.clone();
        let address = Caller::of(req, &state).address();
        let context = state.clone();
        let (user, asked) = state
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                accounts::insert(&tx, &user)?;
                repo::insert_refresh_token(
                    &tx,
                    &user.id,
                    &family,
                    &refresh_hash,
                    &user.created_at,
                    &clock.stamp_in(Duration::from_secs(ttl)),
                )?;
                // The address that created the account is the owner's.
                lockout::succeeded(&tx, &clock, &user.email, &address, &user.id)?;
                let created = repo::user_by_id(&tx, &user.id)?
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("user vanished")))?;
                let asked = mailings::queue_verification(&tx, &context, &created)?;
                tx.commit()?;
                Ok((created, asked))
            })
            .await?;
        mailings::after(&state, &asked, "verification");
        Ok(Registered::Created(Json(session(
            &state, user, refresh, &sid,
        )?)))
    }

    /// Sign in
    ///
    /// Exchanges email and password for an access token and a refresh token.
    /// A wrong password and an unknown email get the same 401 in about the
    /// same time. A suspended account gets 403 `ACCOUNT_SUSPENDED`, told
    /// only to whoever gave its right password.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &poem::Request,
        state: Data<&AppState>,
        body: Json<LoginRequest>,
    ) -> ApiResult<
        Json<AuthResponse>,
        { TOO_MANY_REQUESTS | JSON_BODY | UNAUTHORIZED | FORBIDDEN | SERVER },
    > {
        let body = body.0;
        let email = normalize_email(&body.email)?;
        let address = Caller::of(req, &state).address();
        let guard_on = state.limits.enabled();
        let (account, from) = (email.clone(), address.clone());
        let clock = state.clock.clone();
        let (found, standing) = state
            .db
            .read(move |conn| {
                let found = repo::credentials_by_email(conn, &account)?;
                let user_id = found.as_ref().map(|(user, _)| user.id.as_str());
                let standing = lockout::standing(conn, &clock, &account, &from, user_id)?;
                Ok((found, standing))
            })
            .await?;
        if guard_on && let Some(wait) = standing.locked_for {
            metrics::counter!(crate::metrics::LOGIN_LOCKOUTS).increment(1);
            return Err(Error::too_many_requests(
                format!("too many failed sign-ins for this account; retry in {wait} s"),
                wait,
            )
            .into());
        }
        let (user, phc) = match found {
            Some((user, phc)) => (Some(user), Some(phc)),
            None => (None, None),
        };
        let valid = state.hasher.verify(phc, body.password.into_inner()).await?;
        let Some(user) = user.filter(|_| valid) else {
            if guard_on {
                let (clock, policy) = (state.clock.clone(), state.lockout.clone());
                state
                    .db
                    .write(move |conn| {
                        let tx = conn.transaction()?;
                        let familiar = standing.familiar;
                        lockout::failed(&tx, &clock, &policy, &email, &address, familiar)?;
                        tx.commit()?;
                        Ok(())
                    })
                    .await?;
            }
            return Err(Error::unauthorized(
                INVALID_CREDENTIALS,
                "the email or password is incorrect",
            )
            .into());
        };
        // Said only to whoever knows the password.
        if user.suspended_at.is_some() {
            return Err(Error::forbidden_code(
                "ACCOUNT_SUSPENDED",
                "this account is suspended; ask the platform's administrators",
            )
            .into());
        }
        let refresh = random_token();
        let refresh_hash = token_hash(&refresh);
        let ttl = state.config.auth.refresh_token_ttl_seconds;
        let user_id = user.id.clone();
        // The session: this login's refresh-token family.
        let family = crate::ids::new_id();
        let sid = family.clone();
        let clock = state.clock.clone();
        state
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let now = clock.stamp();
                repo::insert_refresh_token(
                    &tx,
                    &user_id,
                    &family,
                    &refresh_hash,
                    &now,
                    &clock.stamp_in(Duration::from_secs(ttl)),
                )?;
                lockout::succeeded(&tx, &clock, &email, &address, &user_id)?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(Json(session(&state, user, refresh, &sid)?))
    }

    /// Rotate a refresh token
    ///
    /// Returns a new session; the presented refresh token stops working.
    /// Presenting a token that was already rotated revokes its whole family
    /// (every token descended from the same login): a sign of theft.
    #[oai(path = "/auth/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        body: Json<RefreshRequest>,
    ) -> ApiResult<Json<AuthResponse>, { TOO_MANY_REQUESTS | JSON_BODY | UNAUTHORIZED | SERVER }>
    {
        let presented = token_hash(&body.0.refresh_token);
        let next = random_token();
        let next_hash = token_hash(&next);
        let ttl = state.config.auth.refresh_token_ttl_seconds;
        let clock = state.clock.clone();
        let outcome = state
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let now = clock.stamp();
                let Some(row) = repo::refresh_token_by_hash(&tx, &presented)? else {
                    return Ok(Rotation::Rejected);
                };
                if row.revoked_at.is_some() || row.expires_at <= now {
                    return Ok(Rotation::Rejected);
                }
                if row.rotated_at.is_some() {
                    let revoked = repo::revoke_family(&tx, &row.family_id, &now)?;
                    tx.commit()?;
                    tracing::warn!(
                        user_id = %row.user_id,
                        revoked,
                        "rotated refresh token presented again; token family revoked"
                    );
                    return Ok(Rotation::Revoked(row.family_id));
                }
                let Some(user) = repo::user_by_id(&tx, &row.user_id)? else {
                    return Ok(Rotation::Rejected);
                };
                repo::mark_rotated(&tx, &row.id, &now)?;
                repo::insert_refresh_token(
                    &tx,
                    &row.user_id,
                    &row.family_id,
                    &next_hash,
                    &now,
                    &clock.stamp_in(Duration::from_secs(ttl)),
                )?;
                tx.commit()?;
                Ok(Rotation::Rotated(user, row.family_id))
            })
            .await?;
        match outcome {
            Rotation::Rotated(user, sid) => Ok(Json(session(&state, user, next, &sid)?)),
            Rotation::Revoked(sid) => {
                // The family's access tokens end with it.
                state.sessions.forget(&sid);
                Err(invalid_refresh().into())
            }
            Rotation::Rejected => Err(invalid_refresh().into()),
        }
    }

    /// Sign out
    ///
    /// Revokes the given refresh token. Answers 204 whether or not the token
    /// was valid, so it can be called safely more than once.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&AppState>,
        body: Json<RefreshRequest>,
    ) -> ApiResult<NoContent, { TOO_MANY_REQUESTS | JSON_BODY | SERVER }> {
        let hash = token_hash(&body.0.refresh_token);
        let now = state.clock.stamp();
        let family = state
            .db
            .write(move |conn| {
                let family = repo::refresh_token_by_hash(conn, &hash)?.map(|row| row.family_id);
                repo::revoke_token(conn, &hash, &now)?;
                Ok(family)
            })
            .await?;
        // The session's access tokens end now, not at their expiry.
        if let Some(family) = family {
            state.sessions.forget(&family);
        }
        Ok(NoContent::Done)
    }

    /// The signed-in account
    ///
    /// Returns the account the access token belongs to. Also at
    /// `/users/profile`.
    #[oai(path = "/auth/me", method = "get", operation_id = "getMe")]
    async fn me(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> ApiResult<Json<User>, { TOO_MANY_REQUESTS | UNAUTHORIZED | SERVER }> {
        Ok(Json(current_user(&state, &auth).await?))
    }

    /// Ask for a password reset
    ///
    /// Answers 202 whether or not an account has this email, so the answer
    /// reveals nothing. When it has, a single-use reset link is mailed (at
    /// most `mail.per_recipient_per_hour` an hour); with the `outbox` mail
    /// transport it is kept in the outbox (`GET /admin/outbox`).
    #[oai(
        path = "/auth/forgot-password",
        method = "post",
        operation_id = "forgotPassword"
    )]
    async fn forgot_password(
        &self,
        state: Data<&AppState>,
        body: Json<ForgotPasswordRequest>,
    ) -> ApiResult<Accepted, { TOO_MANY_REQUESTS | JSON_BODY | SERVER }> {
        let email = normalize_email(&body.0.email)?;
        // The work happens after the answer, so its duration does not tell
        // whether the account exists.
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = mailings::start_password_reset(&state, email).await {
                tracing::error!(error = ?e, "password reset could not be started");
            }
        });
        Ok(Accepted::Accepted)
    }

    /// Reset a password
    ///
    /// Sets a new password with the token from a reset link. The token works
    /// once and expires; every refresh token of the account is revoked, so
    /// all other sessions end.
    #[oai(
        path = "/auth/reset-password",
        method = "post",
        operation_id = "resetPassword"
    )]
    async fn reset_password(
        &self,
        state: Data<&AppState>,
        body: Json<ResetPasswordRequest>,
    ) -> ApiResult<NoContent, { TOO_MANY_REQUESTS | JSON_BODY | SERVER }> {
        let body = body.0;
        check_new_password("newPassword", &body.new_password)?;
        let presented = token_hash(&body.token);
        let new_hash = state.hasher.hash(body.new_password.into_inner()).await?;
        let clock = state.clock.clone();
        let done = state
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let now = clock.stamp();
                let Some(user_id) = repo::consume_password_reset(&tx, &presented, &now)? else {
                    return Ok(None);
                };
                repo::set_password(&tx, &user_id, &new_hash, &now)?;
                if let Some(user) = repo::user_by_id(&tx, &user_id)? {
                    lockout::clear(&tx, &clock, &user.email.to_lowercase())?;
                }
                repo::revoke_all_for_user(&tx, &user_id, &now)?;
                repo::void_password_resets(&tx, &user_id, &now)?;
                tx.commit()?;
                Ok(Some(user_id))
            })
            .await?;
        if let Some(user_id) = done {
            // Every session of the account ends now, access tokens included.
            state.sessions.forget_account(&user_id);
            Ok(NoContent::Done)
        } else {
            Err(Error::bad_request(
                "RESET_TOKEN_INVALID",
                "the reset token is invalid, expired or already used",
            )
            .with_field("token")
            .into())
        }
    }

    /// Verify an email address
    ///
    /// Proves the account's address is its holder's, with the token from
    /// the link mailed at sign-up; `emailVerified` becomes true. The token
    /// works once and expires (`auth.verify_token_ttl_seconds`).
    #[oai(
        path = "/auth/verify-email",
        method = "post",
        operation_id = "verifyEmail"
    )]
    async fn verify_email(
        &self,
        state: Data<&AppState>,
        body: Json<VerifyEmailRequest>,
    ) -> ApiResult<NoContent, { TOO_MANY_REQUESTS | JSON_BODY | SERVER }> {
        match mailings::verify_email(&state, &body.0.token).await? {
            Some(_) => Ok(NoContent::Done),
            None => Err(Error::bad_request(
                "VERIFY_TOKEN_INVALID",
                "the verification token is invalid, expired or already used",
            )
            .with_field("token")
            .into()),
        }
    }

    /// Mail the verification link again
    ///
    /// Sends the signed-in account a new verification link (the earlier
    /// ones keep working until they expire). 409 `EMAIL_ALREADY_VERIFIED`
    /// when there is nothing to verify; 429 past
    /// `mail.per_recipient_per_hour` links in an hour.
    #[oai(
        path = "/auth/resend-verification",
        method = "post",
        operation_id = "resendVerification"
    )]
    async fn resend_verification(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> ApiResult<LinkQueued, { TOO_MANY_REQUESTS | UNAUTHORIZED | CONFLICT | SERVER }> {
        match mailings::resend_verification(&state, auth.0.user_id.clone()).await? {
            Asked::Queued => Ok(LinkQueued::Queued),
            Asked::OverBound => Err(Error::too_many_requests(
                format!(
                    "at most {} verification mails an hour; try again later",
                    state.config.mail.per_recipient_per_hour
                ),
                3_600,
            )
            .into()),
            Asked::Nothing => Err(Error::conflict(
                "EMAIL_ALREADY_VERIFIED",
                "this account's email address is already verified",
            )
            .into()),
        }
    }
}

pub struct UsersApi;

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// The signed-in account (alias)
    ///
    /// The same as `GET /auth/me`, kept for clients of the first backend.
    #[oai(path = "/users/profile", method = "get", operation_id = "getProfile")]
    async fn profile(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> ApiResult<Json<User>, { TOO_MANY_REQUESTS | UNAUTHORIZED | SERVER }> {
        Ok(Json(current_user(&state, &auth).await?))
    }

    /// List accounts (ADMIN)
    ///
    /// Newest first, paged, optionally filtered by role and by a substring of
    /// email or name.
    #[oai(path = "/users", method = "get", operation_id = "listUsers")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only accounts with this role.
        role: Query<Option<Role>>,
        /// Substring of the email or name, case-insensitive.
        #[oai(validator(max_length = 200))]
        q: Query<Option<String>>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<i64>>,
        /// Items per page, 1 to 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<i64>>,
    ) -> ApiResult<
        Paged<User>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | SERVER },
    > {
        auth.0.require_role(&[Role::Admin])?;
        let page = Page::new(page.0, limit.0)?;
        let role = role.0;
        let q = q.0.map(|q| q.trim().to_string()).filter(|q| !q.is_empty());
        let filter_q = q.clone();
        let (users, total) = state
            .db
            .read(move |conn| Ok(repo::list_users(conn, role, filter_q.as_deref(), page)?))
            .await?;
        let mut query = Vec::new();
        if let Some(role) = role {
            query.push(("role", role.as_str().to_string()));
        }
        if let Some(q) = q {
            query.push(("q", q));
        }
        Ok(Paged::new(
            users,
            total,
            page,
            &crate::api_base::api_path("/users"),
            &query,
        ))
    }
}

enum Rotation {
    /// Rotated: the account and its session (the family).
    Rotated(User, String),
    /// A rotated token presented again: this family (session) is revoked.
    Revoked(String),
    Rejected,
}

fn invalid_refresh() -> Error {
    Error::unauthorized(
        "AUTH_TOKEN_INVALID",
        "the refresh token is invalid, expired or already used",
    )
}

/// Builds the session answer: a fresh access token of session `sid` plus
/// the refresh token.
fn session(
    state: &AppState,
    user: User,
    refresh_token: String,
    sid: &str,
) -> Result<AuthResponse, Error> {
    let (access_token, expires_in) = state.tokens.issue(&user.id, user.role, sid)?;
    Ok(AuthResponse {
        access_token,
        refresh_token,
        token_type: TokenType::Bearer,
        expires_in,
        user,
    })
}

async fn current_user(state: &AppState, auth: &BearerAuth) -> Result<User, Error> {
    let id = auth.0.user_id.clone();
    state
        .db
        .read(move |conn| Ok(repo::user_by_id(conn, &id)?))
        .await?
        .ok_or_else(|| Error::unauthorized("AUTH_TOKEN_INVALID", "the account no longer exists"))
}
