//! Making an account: sign-up (`POST /auth/register`), `wemaster user
//! create` and the demo seed all check and insert an account here, so the
//! rules (email normalized, password length, display name) and the answer
//! to a taken email are the same whichever way an account is made.

use rusqlite::Connection;

use super::model::{NewUser, Role, check_new_password, display_name, normalize_email};
use super::repo;
use crate::clock::Clock;
use crate::error::Error;
use crate::mail::model::Locale;
use crate::text::Text;

/// A new account as asked for, checked; its password still to be hashed.
pub struct NewAccount {
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    /// The language of the account's mail.
    pub locale: Locale,
    password: String,
}

impl NewAccount {
    /// Checks the email (trimmed, lower-cased, a valid address), the
    /// password (8 to 128 characters) and the display name.
    pub fn check(
        email: &str,
        password: String,
        name: Option<Text>,
        role: Role,
    ) -> Result<Self, Error> {
        let email = normalize_email(email)?;
        check_new_password("password", &password)?;
        let name = display_name(name)?;
        Ok(Self {
            email,
            name,
            role,
            locale: Locale::En,
            password,
        })
    }

    /// The password, for the hasher.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The account to insert, with its password's hash; the password
    /// itself goes no further.
    pub fn hashed(self, password_hash: String, clock: &Clock) -> NewUser {
        NewUser {
            id: crate::ids::new_id(),
            email: self.email,
            password_hash,
            name: self.name,
            role: self.role,
            created_at: clock.stamp(),
            locale: self.locale,
            email_verified_at: None,
        }
    }
}

/// Inserts an account; an email that is taken is a 409 naming `email`.
pub fn insert(conn: &Connection, user: &NewUser) -> Result<(), Error> {
    repo::insert_user(conn, user).map_err(|e| {
        Error::from_unique_violation(e, "an account with this email already exists")
            .with_field("email")
    })
}
