//! The audit log: every admin action on money or accounts, written in the
//! transaction of the action itself, so there is no action without its
//! record and no record without its action.

use poem_openapi::Object;
use rusqlite::{Connection, Row, params};

use crate::paging::Page;

/// One admin action.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The admin's account id.
    pub actor_id: String,
    /// The client address the action came from.
    pub address: String,
    /// `order.refund`, `user.role`, `user.suspend`, `user.reinstate` or
    /// `mail.resend`.
    pub action: String,
    /// The order or account acted on.
    pub target: String,
    /// The particulars (amounts, roles), as JSON.
    pub detail: serde_json::Value,
}

/// An action to record.
pub struct Action<'a> {
    pub actor_id: &'a str,
    pub address: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: serde_json::Value,
    pub at: &'a str,
}

pub fn record(conn: &Connection, a: &Action<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit_log (id, at, actor_id, address, action, target, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        crate::ids::new_id(),
        a.at,
        a.actor_id,
        a.address,
        a.action,
        a.target,
        a.detail.to_string()
    ])?;
    Ok(())
}

fn entry(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let detail: String = row.get(6)?;
    Ok(AuditEntry {
        id: row.get(0)?,
        at: row.get(1)?,
        actor_id: row.get(2)?,
        address: row.get(3)?,
        action: row.get(4)?,
        target: row.get(5)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
    })
}

/// One page of the log, newest first, of one target when given.
pub fn list(
    conn: &Connection,
    target: Option<&str>,
    page: Page,
) -> rusqlite::Result<(Vec<AuditEntry>, u64)> {
    let total: i64 = conn
        .prepare_cached("SELECT count(*) FROM audit_log WHERE ?1 IS NULL OR target = ?1")?
        .query_row([target], |row| row.get(0))?;
    let entries = conn
        .prepare_cached(
            "SELECT id, at, actor_id, address, action, target, detail FROM audit_log
             WHERE ?1 IS NULL OR target = ?1
             ORDER BY at DESC, id DESC LIMIT ?2 OFFSET ?3",
        )?
        .query_map(params![target, page.limit, page.offset()], entry)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((entries, u64::try_from(total).unwrap_or(0)))
}
