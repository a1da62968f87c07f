//! SQL for accounts.

use rusqlite::{Connection, OptionalExtension, params};

use super::model::NewUser;

pub fn insert_user(conn: &Connection, user: &NewUser) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(params![
        user.id,
        user.email,
        user.password_hash,
        user.name,
        user.role.as_str(),
        user.created_at
    ])?;
    Ok(())
}

/// The id of the account with this email, compared case-insensitively.
pub fn id_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT id FROM users WHERE email = ?1 COLLATE NOCASE")?
        .query_row([email], |row| row.get(0))
        .optional()
}

pub fn count_users(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))
}
