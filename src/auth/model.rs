//! Account types.

use crate::error::Error;
use crate::mail::model::Locale;
use crate::text::Text;
use poem_openapi::types::Example;
use poem_openapi::{Enum, Object};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Student,
    Tutor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "STUDENT",
            Role::Tutor => "TUTOR",
            Role::Admin => "ADMIN",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "STUDENT" => Some(Role::Student),
            "TUTOR" => Some(Role::Tutor),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A new account, its password already hashed.
pub struct NewUser {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub name: Option<String>,
    pub role: Role,
    pub created_at: String,
    /// The language of the account's mail.
    pub locale: Locale,
    /// When the address was proven the holder's; `None` until then.
    pub email_verified_at: Option<String>,
}

impl NewUser {
    /// Marks the address verified from the start: for accounts an operator
    /// vouches for (`user create`, the demo seed).
    pub fn verified(mut self) -> Self {
        self.email_verified_at = Some(self.created_at.clone());
        self
    }
}

/// An account as the API shows it.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct User {
    /// Account id (UUIDv7).
    pub id: String,
    /// Login email, stored trimmed and lower-cased.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    pub role: Role,
    /// When the account was created (RFC 3339, UTC).
    pub created_at: String,
    /// Whether the holder proved the address theirs, through the link
    /// mailed at sign-up (`POST /auth/verify-email`).
    pub email_verified: bool,
    /// The language of the account's mail: `en` or `zh-CN`.
    pub locale: Locale,
    /// When an admin suspended the account, while it is suspended: it
    /// cannot sign in and its sessions have ended.
    #[oai(skip_serializing_if_is_none)]
    pub suspended_at: Option<String>,
}

impl Example for User {
    fn example() -> Self {
        User {
            id: "01938a6e-7c3b-7d2e-9f41-2b6c8e0a1d55".into(),
            email: "student@test.com".into(),
            name: Some("Sam Student".into()),
            role: Role::Student,
            created_at: "2026-01-15T09:30:00.000Z".into(),
            email_verified: true,
            locale: Locale::En,
            suspended_at: None,
        }
    }
}

/// The roles an account may register itself with; ADMIN is never
/// self-registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegisterRole {
    Student,
    Tutor,
}

impl From<RegisterRole> for Role {
    fn from(role: RegisterRole) -> Self {
        match role {
            RegisterRole::Student => Role::Student,
            RegisterRole::Tutor => Role::Tutor,
        }
    }
}

/// A new account.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct RegisterRequest {
    /// Email address; trimmed and compared case-insensitively.
    #[oai(validator(max_length = 254))]
    pub email: Text,
    /// 8 to 128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: Text,
    /// Display name, up to 100 characters.
    #[oai(validator(max_length = 100))]
    pub name: Option<Text>,
    /// STUDENT (default) or TUTOR.
    pub role: Option<RegisterRole>,
    /// Language of the account's mail; default: from `Accept-Language`
    /// (Chinese when it names Chinese first), else `en`.
    pub locale: Option<Locale>,
}

impl Example for RegisterRequest {
    fn example() -> Self {
        RegisterRequest {
            email: "new.student@example.com".into(),
            password: "correct horse battery".into(),
            name: Some("New Student".into()),
            role: Some(RegisterRole::Student),
            locale: Some(Locale::En),
        }
    }
}

/// Credentials.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct LoginRequest {
    #[oai(validator(max_length = 254))]
    pub email: Text,
    #[oai(validator(max_length = 1024))]
    pub password: Text,
}

impl Example for LoginRequest {
    fn example() -> Self {
        LoginRequest {
            email: "student@test.com".into(),
            password: "password123".into(),
        }
    }
}

/// A refresh token to rotate or revoke.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct RefreshRequest {
    /// The refresh token from the last AuthResponse.
    #[oai(validator(max_length = 512))]
    pub refresh_token: Text,
}

/// A signed-in session.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct AuthResponse {
    /// JWT to send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// Opaque token for `POST /auth/refresh`; single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: User,
}

/// How to send the access token: always `Bearer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum TokenType {
    Bearer,
}

/// Start a password reset.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct ForgotPasswordRequest {
    #[oai(validator(max_length = 254))]
    pub email: Text,
}

/// Verify an email address.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct VerifyEmailRequest {
    /// The token from the verification link.
    #[oai(validator(max_length = 512))]
    pub token: Text,
}

impl Example for VerifyEmailRequest {
    fn example() -> Self {
        Self {
            token: "Zx3mQ8rT1vN6pL0aK5sW9yB2cD7eF4gH".into(),
        }
    }
}

/// Finish a password reset.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct ResetPasswordRequest {
    /// The token from the reset link.
    #[oai(validator(max_length = 512))]
    pub token: Text,
    /// 8 to 128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub new_password: Text,
}

/// Normalizes and checks an email address: trimmed, lower-cased, a plausible
/// `local@domain` shape.
pub fn normalize_email(raw: &str) -> Result<String, crate::error::Error> {
    let email = raw.trim().to_lowercase();
    if email.len() > 254 || !email_address::EmailAddress::is_valid(&email) {
        return Err(crate::error::Error::validation(
            "email",
            "email must be a valid address such as name@example.com",
        ));
    }
    Ok(email)
}

/// A display name as given at sign-up: absent when blank, NFC-normalized and
/// trimmed otherwise, and refused when it holds nothing visible (only
/// zero-width or bidi control characters, say).
pub fn display_name(raw: Option<Text>) -> Result<Option<String>, crate::error::Error> {
    let Some(raw) = raw.filter(|n| !n.trim().is_empty()) else {
        return Ok(None);
    };
    crate::text::display_text("name", &raw).map(Some)
}

/// Checks the password policy for new passwords: 8 to 128 characters.
pub fn check_new_password(field: &str, password: &str) -> Result<(), crate::error::Error> {
    let n = password.chars().count();
    if !(8..=128).contains(&n) {
        return Err(crate::error::Error::validation(
            field,
            format!("{field} must be 8 to 128 characters"),
        ));
    }
    Ok(())
}

impl Example for RefreshRequest {
    fn example() -> Self {
        RefreshRequest {
            refresh_token: "ov04MhnQE0gzMiV74DB8zHTqBrf4xYb1kq9TzW3cJ6s".into(),
        }
    }
}

impl Example for AuthResponse {
    fn example() -> Self {
        AuthResponse {
            access_token:
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwMTkzOGE2ZSJ9.c2lnbmF0dXJl".into(),
            refresh_token: RefreshRequest::example().refresh_token.into_inner(),
            token_type: TokenType::Bearer,
            expires_in: 900,
            user: User::example(),
        }
    }
}

impl Example for ForgotPasswordRequest {
    fn example() -> Self {
        ForgotPasswordRequest {
            email: "student@test.com".into(),
        }
    }
}

impl Example for ResetPasswordRequest {
    fn example() -> Self {
        ResetPasswordRequest {
            token: "Zx3mQ8rT1vN6pL0aK5sW9yB2cD7eF4gH".into(),
            new_password: "a new long passphrase".into(),
        }
    }
}

/// Who is calling, from a verified access token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub role: Role,
}

impl Principal {
    /// 403 unless the caller has one of `roles`.
    pub fn require_role(&self, roles: &[Role]) -> Result<(), Error> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::forbidden("your role may not do this"))
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this caller may act on what `owner_id` owns: it is that
    /// account, or an admin.
    pub fn acts_for(&self, owner_id: &str) -> bool {
        self.is_admin() || self.user_id == owner_id
    }
}
