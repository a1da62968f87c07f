//! The mail an account's holder asks for: a password-reset link, and the
//! link that verifies the address (at sign-up, and again on request). Each
//! is queued in the transaction that makes its token, so a link is mailed
//! exactly when its token exists, and each is bounded per address
//! (`mail.per_recipient_per_hour`) so nobody can mail-bomb an address
//! through this server.

use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;

use super::model::User;
use super::repo;
use super::token::token_hash;
use crate::error::Error;
use crate::ids::random_token;
use crate::mail::model::{MailKind, NewMail};
use crate::mail::queue;
use crate::state::AppState;

/// What asking for a mail did.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    /// The mail is queued.
    Queued,
    /// The address had its share of this kind of mail for the hour.
    OverBound,
    /// Nothing to mail (no such account, or already verified).
    Nothing,
}

/// A link to this server's page `path`, or to `template` (with `{token}`
/// replaced) when one is configured.
fn link(state: &AppState, template: &str, path: &str, token: &str) -> String {
    if template.is_empty() {
        format!("{}{path}?token={token}", state.public_url)
    } else {
        template.replace("{token}", token)
    }
}

/// Whether `recipient` may be sent one more mail of `kind` this hour.
fn within_bound(
    conn: &Connection,
    state: &AppState,
    recipient: &str,
    kind: MailKind,
) -> rusqlite::Result<bool> {
    let since = state.clock.stamp_ago(Duration::from_secs(3_600));
    let sent = queue::queued_since(conn, recipient, kind, &since)?;
    Ok(sent < state.config.mail.per_recipient_per_hour)
}

/// How the mail greets the holder: their name, else their address.
fn greeting(user: &User) -> String {
    user.name.clone().unwrap_or_else(|| user.email.clone())
}

/// Creates a reset token for the account with `email`, if there is one,
/// and queues the mail with its link. Runs after the 202 went out, so its
/// duration tells nothing.
pub async fn start_password_reset(state: &AppState, email: String) -> Result<Asked, Error> {
    let token = random_token();
    let hash = token_hash(&token);
    let ttl = state.config.auth.reset_token_ttl_seconds;
    let link = link(
        state,
        &state.config.auth.reset_link,
        "/reset-password",
        &token,
    );
    let context = state.clone();
    let asked = state
        .db
        .write(move |conn| {
            let state = context;
            let tx = conn.transaction()?;
            let Some(user) = repo::id_by_email(&tx, &email)?
                .map(|id| repo::user_by_id(&tx, &id))
                .transpose()?
                .flatten()
            else {
                return Ok(Asked::Nothing);
            };
            if !within_bound(&tx, &state, &user.email, MailKind::PasswordReset)? {
                return Ok(Asked::OverBound);
            }
            let now = state.clock.stamp();
            let expires = state.clock.stamp_in(Duration::from_secs(ttl));
            repo::insert_password_reset(&tx, &user.id, &hash, &now, &expires)?;
            let mail = NewMail {
                kind: MailKind::PasswordReset,
                recipient: user.email.clone(),
                locale: user.locale,
                data: json!({
                    "name": greeting(&user),
                    "link": link,
                    "minutes": ttl.div_ceil(60),
                }),
            };
            queue::enqueue(&tx, &mail, &now)?;
            tx.commit()?;
            Ok(Asked::Queued)
        })
        .await?;
    after(state, &asked, "password reset");
    Ok(asked)
}

/// Makes a verification token for `user` and queues the mail with its
/// link, in the caller's transaction (the sign-up's, or a re-send's).
pub fn queue_verification(
    conn: &Connection,
    state: &AppState,
    user: &User,
) -> Result<Asked, Error> {
    if user.email_verified {
        return Ok(Asked::Nothing);
    }
    if !within_bound(conn, state, &user.email, MailKind::VerifyEmail)? {
        return Ok(Asked::OverBound);
    }
    let token = random_token();
    let ttl = state.config.auth.verify_token_ttl_seconds;
    let now = state.clock.stamp();
    let expires = state.clock.stamp_in(Duration::from_secs(ttl));
    repo::insert_email_verification(conn, &user.id, &token_hash(&token), &now, &expires)?;
    let mail = NewMail {
        kind: MailKind::VerifyEmail,
        recipient: user.email.clone(),
        locale: user.locale,
        data: json!({
            "name": greeting(user),
            "link": link(state, &state.config.auth.verify_link, "/verify-email", &token),
            "hours": ttl.div_ceil(3_600),
        }),
    };
    queue::enqueue(conn, &mail, &now)?;
    Ok(Asked::Queued)
}

/// Sends the verification link again to the signed-in holder of `user_id`.
pub async fn resend_verification(state: &AppState, user_id: String) -> Result<Asked, Error> {
    let context = state.clone();
    let asked = state
        .db
        .write(move |conn| {
            let tx = conn.transaction()?;
            let Some(user) = repo::user_by_id(&tx, &user_id)? else {
                return Ok(Asked::Nothing);
            };
            let asked = queue_verification(&tx, &context, &user)?;
            tx.commit()?;
            Ok(asked)
        })
        .await?;
    after(state, &asked, "verification");
    Ok(asked)
}

/// Marks the address of the token's account verified; `None` when the
/// token is unknown, used or expired.
pub async fn verify_email(state: &AppState, token: &str) -> Result<Option<String>, Error> {
    let presented = token_hash(token);
    let clock = state.clock.clone();
    let verified = state
        .db
        .write(move |conn| {
            let tx = conn.transaction()?;
            let user_id = repo::consume_email_verification(&tx, &presented, &clock.stamp())?;
            tx.commit()?;
            Ok(user_id)
        })
        .await?;
    Ok(verified)
}

/// Wakes the delivery worker for a queued mail; notes a refused one.
pub fn after(state: &AppState, asked: &Asked, what: &str) {
    match asked {
        Asked::Queued => state.mail.wake(),
        Asked::OverBound => tracing::warn!(
            "{what} mail not queued: the address had {} of them this hour (mail.per_recipient_per_hour)",
            state.config.mail.per_recipient_per_hour
        ),
        Asked::Nothing => {}
    }
}
