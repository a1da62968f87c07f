//! SQL for accounts, refresh tokens, password resets, email verifications
//! and settings.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{NewUser, Role, User};
use crate::mail::model::Locale;
use crate::paging::{Page, like_pattern};

const USER_COLUMNS: &str =
    "id, email, name, role, created_at, suspended_at, email_verified_at IS NOT NULL, locale";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(3)?;
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Student),
        created_at: row.get(4)?,
        suspended_at: row.get(5)?,
        email_verified: row.get(6)?,
        locale: Locale::parse(&row.get::<_, String>(7)?),
    })
}

/// Only `accounts::insert` calls this: every account is made there.
pub(super) fn insert_user(conn: &Connection, user: &NewUser) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at,
                            locale, email_verified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
    )?
    .execute(params![
        user.id,
        user.email,
        user.password_hash,
        user.name,
        user.role.as_str(),
        user.created_at,
        user.locale.as_str(),
        user.email_verified_at
    ])?;
    Ok(())
}

/// The id of the account with this email, compared case-insensitively.
pub fn id_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT id FROM users WHERE email = ?1 COLLATE NOCASE")?
        .query_row([email], |row| row.get(0))
        .optional()
}

/// An account and its password hash, for login.
pub fn credentials_by_email(
    conn: &Connection,
    email: &str,
) -> rusqlite::Result<Option<(User, String)>> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?1 COLLATE NOCASE"
    ))?
    .query_row([email], |row| Ok((user_from_row(row)?, row.get(8)?)))
    .optional()
}

pub fn user_by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([id], user_from_row)
        .optional()
}

/// Gives an account another role.
pub fn set_role(conn: &Connection, id: &str, role: Role, now: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached("UPDATE users SET role = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, role.as_str(), now])
}

/// Suspends an account (`Some(now)`) or reinstates it (`None`).
pub fn set_suspended(
    conn: &Connection,
    id: &str,
    suspended_at: Option<&str>,
    now: &str,
) -> rusqlite::Result<usize> {
    conn.prepare_cached("UPDATE users SET suspended_at = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, suspended_at, now])
}

pub fn count_users(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))
}

/// One page of accounts, newest first, and the total matching.
pub fn list_users(
    conn: &Connection,
    role: Option<Role>,
    q: Option<&str>,
    page: Page,
) -> rusqlite::Result<(Vec<User>, u64)> {
    let role = role.map(Role::as_str);
    let pattern = q.map(like_pattern);
    let filter = "(?1 IS NULL OR role = ?1)
         AND (?2 IS NULL OR email LIKE ?2 ESCAPE '\\' OR name LIKE ?2 ESCAPE '\\')";
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM users WHERE {filter}"))?
        .query_row(params![role, pattern], |row| row.get(0))?;
    let users = conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {filter}
             ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4"
        ))?
        .query_map(
            params![role, pattern, page.limit, page.offset()],
            user_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((users, total as u64))
}

pub fn set_password(
    conn: &Connection,
    user_id: &str,
    hash: &str,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![user_id, hash, now])?;
    Ok(())
}

/// A stored refresh token.
pub struct RefreshTokenRow {
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub expires_at: String,
    pub rotated_at: Option<String>,
    pub revoked_at: Option<String>,
}

pub fn insert_refresh_token(
    conn: &Connection,
    user_id: &str,
    family_id: &str,
    token_hash: &str,
    now: &str,
    expires_at: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        crate::ids::new_id(),
        user_id,
        family_id,
        token_hash,
        now,
        expires_at
    ])?;
    Ok(())
}

pub fn refresh_token_by_hash(
    conn: &Connection,
    token_hash: &str,
) -> rusqlite::Result<Option<RefreshTokenRow>> {
    conn.prepare_cached(
        "SELECT id, user_id, family_id, expires_at, rotated_at, revoked_at
         FROM refresh_tokens WHERE token_hash = ?1",
    )?
    .query_row([token_hash], |row| {
        Ok(RefreshTokenRow {
            id: row.get(0)?,
            user_id: row.get(1)?,
            family_id: row.get(2)?,
            expires_at: row.get(3)?,
            rotated_at: row.get(4)?,
            revoked_at: row.get(5)?,
        })
    })
    .optional()
}

/// The account holding a live session (a refresh-token family with a
/// current token: not rotated, not revoked, not expired) and its role now.
pub fn session_holder(
    conn: &Connection,
    family_id: &str,
    now: &str,
) -> rusqlite::Result<Option<(String, Role)>> {
    conn.prepare_cached(
        "SELECT u.id, u.role FROM refresh_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.family_id = ?1 AND t.rotated_at IS NULL AND t.revoked_at IS NULL
           AND t.expires_at > ?2 AND u.suspended_at IS NULL
         LIMIT 1",
    )?
    .query_row(params![family_id, now], |row| {
        let role: String = row.get(1)?;
        Ok((row.get(0)?, Role::parse(&role).unwrap_or(Role::Student)))
    })
    .optional()
}

pub fn mark_rotated(conn: &Connection, id: &str, now: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE refresh_tokens SET rotated_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

pub fn revoke_family(conn: &Connection, family_id: &str, now: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![family_id, now])
}

pub fn revoke_token(conn: &Connection, token_hash: &str, now: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![token_hash, now])
}

pub fn revoke_all_for_user(conn: &Connection, user_id: &str, now: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![user_id, now])
}

pub fn insert_password_reset(
    conn: &Connection,
    user_id: &str,
    token_hash: &str,
    now: &str,
    expires_at: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO password_resets (id, user_id, token_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        crate::ids::new_id(),
        user_id,
        token_hash,
        now,
        expires_at
    ])?;
    Ok(())
}

/// Marks a reset token used if it is unused and unexpired; returns its user.
pub fn consume_password_reset(
    conn: &Connection,
    token_hash: &str,
    now: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "UPDATE password_resets SET used_at = ?2
         WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
         RETURNING user_id",
    )?
    .query_row(params![token_hash, now], |row| row.get(0))
    .optional()
}

/// Voids every other outstanding reset token of a user.
pub fn void_password_resets(conn: &Connection, user_id: &str, now: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE password_resets SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL",
    )?
    .execute(params![user_id, now])?;
    Ok(())
}

pub fn insert_email_verification(
    conn: &Connection,
    user_id: &str,
    token_hash: &str,
    now: &str,
    expires_at: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO email_verifications (token_hash, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![token_hash, user_id, now, expires_at])?;
    Ok(())
}

/// Uses a verification token if it is unused and unexpired, and marks its
/// account's address verified (keeping the first verification's time).
/// Returns the account's id.
pub fn consume_email_verification(
    conn: &Connection,
    token_hash: &str,
    now: &str,
) -> rusqlite::Result<Option<String>> {
    let user_id: Option<String> = conn
        .prepare_cached(
            "UPDATE email_verifications SET used_at = ?2
             WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
             RETURNING user_id",
        )?
        .query_row(params![token_hash, now], |row| row.get(0))
        .optional()?;
    if let Some(id) = &user_id {
        conn.prepare_cached(
            "UPDATE users SET email_verified_at = coalesce(email_verified_at, ?2), updated_at = ?2
             WHERE id = ?1",
        )?
        .execute(params![id, now])?;
    }
    Ok(user_id)
}

pub fn setting(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()
}

/// Stores a setting unless one exists; returns the value that is stored.
pub fn setting_or_insert(
    conn: &Connection,
    key: &str,
    value: &str,
    now: &str,
) -> rusqlite::Result<String> {
    conn.prepare_cached(
        "INSERT INTO settings (key, value, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO NOTHING",
    )?
    .execute(params![key, value, now])?;
    setting(conn, key).map(|v| v.unwrap_or_else(|| value.to_string()))
}
