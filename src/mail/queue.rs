//! SQL of the mail queue. A message is queued in the transaction of its
//! cause; the delivery worker takes due messages in order and records each
//! attempt. Only one server process serves a database (the serve lock), so
//! the worker needs no claim marks: it is the only reader of due messages.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{Locale, MailKind, MailStatus, NewMail, OutboxMessage, QueueFigures};
use crate::paging::Page;

/// Queues a message, due now. Returns its id, which is also its
/// Message-ID's left part.
pub fn enqueue(conn: &Connection, mail: &NewMail, now: &str) -> rusqlite::Result<String> {
    let id = crate::ids::new_id();
    conn.prepare_cached(
        "INSERT INTO mail (id, kind, recipient, locale, data, status, next_attempt_at,
                           created_at, queued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'QUEUED', ?6, ?6, ?6)",
    )?
    .execute(params![
        id,
        mail.kind.as_str(),
        mail.recipient,
        mail.locale.as_str(),
        mail.data.to_string(),
        now
    ])?;
    Ok(id)
}

/// Messages of `kind` queued for `recipient` since `since`: what bounds
/// the mail a request can cause to one address. Reads at most the bound's
/// worth of index entries past the first.
pub fn queued_since(
    conn: &Connection,
    recipient: &str,
    kind: MailKind,
    since: &str,
) -> rusqlite::Result<u32> {
    conn.prepare_cached(
        "SELECT count(*) FROM mail WHERE recipient = ?1 AND kind = ?2 AND created_at > ?3",
    )?
    .query_row(params![recipient, kind.as_str(), since], |row| row.get(0))
}

/// A message taken from the queue for an attempt.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: String,
    pub kind: String,
    pub recipient: String,
    pub locale: Locale,
    pub data: String,
    pub attempts: u32,
    /// When it entered the queue; a message unsent too long is given up.
    pub queued_at: String,
}

/// Up to `limit` queued messages whose next attempt is due, oldest due first.
pub fn due(conn: &Connection, now: &str, limit: usize) -> rusqlite::Result<Vec<Due>> {
    conn.prepare_cached(
        "SELECT id, kind, recipient, locale, data, attempts, queued_at FROM mail
         WHERE status = 'QUEUED' AND next_attempt_at <= ?1
         ORDER BY next_attempt_at, id LIMIT ?2",
    )?
    .query_map(params![now, limit as i64], |row| {
        let locale: String = row.get(3)?;
        Ok(Due {
            id: row.get(0)?,
            kind: row.get(1)?,
            recipient: row.get(2)?,
            locale: Locale::parse(&locale),
            data: row.get(4)?,
            attempts: row.get(5)?,
            queued_at: row.get(6)?,
        })
    })?
    .collect()
}

/// When the next queued message falls due, if any.
pub fn next_due(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT next_attempt_at FROM mail WHERE status = 'QUEUED'
         ORDER BY next_attempt_at LIMIT 1",
    )?
    .query_row([], |row| row.get(0))
    .optional()
}

/// What a finished message keeps.
pub struct Finished<'a> {
    pub status: MailStatus,
    pub subject: &'a str,
    pub body: &'a str,
    /// Drop the data it was rendered from (it holds a secret).
    pub forget_data: bool,
}

/// Records a message as done: SENT (accepted by the SMTP server) or KEPT
/// (in the outbox), with what was rendered. Only a QUEUED message moves,
/// so an admin's later re-send is never undone by a late answer.
pub fn finish(
    conn: &Connection,
    id: &str,
    done: &Finished<'_>,
    now: &str,
) -> rusqlite::Result<usize> {
    let sent = done.status == MailStatus::Sent;
    conn.prepare_cached(
        "UPDATE mail SET status = ?2, subject = ?3, body = ?4, sent_at = ?5,
                attempts = attempts + ?6, last_error = NULL,
                data = CASE WHEN ?7 THEN '{}' ELSE data END
         WHERE id = ?1 AND status = 'QUEUED'",
    )?
    .execute(params![
        id,
        done.status.as_str(),
        done.subject,
        done.body,
        sent.then_some(now),
        i64::from(sent),
        done.forget_data
    ])
}

/// Records a failed attempt: tried again at `retry_at`, or DEAD when
/// `retry_at` is `None`.
pub fn failed(
    conn: &Connection,
    id: &str,
    error: &str,
    retry_at: Option<&str>,
) -> rusqlite::Result<usize> {
    match retry_at {
        Some(at) => conn
            .prepare_cached(
                "UPDATE mail SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
                 WHERE id = ?1 AND status = 'QUEUED'",
            )?
            .execute(params![id, error, at]),
        None => conn
            .prepare_cached(
                "UPDATE mail SET attempts = attempts + 1, last_error = ?2, status = 'DEAD'
                 WHERE id = ?1 AND status = 'QUEUED'",
            )?
            .execute(params![id, error]),
    }
}

/// Queues a DEAD message again, due now, with its attempts counted afresh.
/// Returns whether it was DEAD.
pub fn resend(conn: &Connection, id: &str, now: &str) -> rusqlite::Result<bool> {
    let moved = conn
        .prepare_cached(
            "UPDATE mail SET status = 'QUEUED', attempts = 0, next_attempt_at = ?2,
                    queued_at = ?2
             WHERE id = ?1 AND status = 'DEAD'",
        )?
        .execute(params![id, now])?;
    Ok(moved == 1)
}

const COLUMNS: &str = "id, kind, recipient, locale, status, attempts, subject, body, last_error,
                       next_attempt_at, created_at, sent_at";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxMessage> {
    let locale: String = row.get(3)?;
    let status: String = row.get(4)?;
    let status = MailStatus::parse(&status).unwrap_or(MailStatus::Queued);
    let next_attempt_at: String = row.get(9)?;
    Ok(OutboxMessage {
        id: row.get(0)?,
        kind: row.get(1)?,
        recipient: row.get(2)?,
        locale: Locale::parse(&locale),
        status,
        attempts: row.get(5)?,
        subject: row.get(6)?,
        body: row.get(7)?,
        last_error: row.get(8)?,
        next_attempt_at: (status == MailStatus::Queued).then_some(next_attempt_at),
        created_at: row.get(10)?,
        sent_at: row.get(11)?,
    })
}

pub fn message(conn: &Connection, id: &str) -> rusqlite::Result<Option<OutboxMessage>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM mail WHERE id = ?1"))?
        .query_row([id], message_from_row)
        .optional()
}

/// Messages, newest first, optionally of one status.
pub fn list(
    conn: &Connection,
    status: Option<MailStatus>,
    page: Page,
) -> rusqlite::Result<(Vec<OutboxMessage>, u64)> {
    let status = status.map(MailStatus::as_str);
    let total: i64 = conn
        .prepare_cached("SELECT count(*) FROM mail WHERE ?1 IS NULL OR status = ?1")?
        .query_row([status], |row| row.get(0))?;
    let messages = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM mail WHERE ?1 IS NULL OR status = ?1
             ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"
        ))?
        .query_map(params![status, page.limit, page.offset()], message_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((messages, total as u64))
}

/// Deletes up to `limit` finished messages (SENT, KEPT, DEAD) created
/// before `before`, oldest first; returns how many. Batched, so the writer
/// is never held long.
pub fn prune(conn: &Connection, before: &str, limit: usize) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM mail WHERE id IN (
             SELECT id FROM mail
             WHERE created_at < ?1 AND status IN ('SENT', 'KEPT', 'DEAD')
             ORDER BY created_at LIMIT ?2)",
    )?
    .execute(params![before, limit as i64])
}

/// Waiting and dead messages, and when the oldest waiting one was queued.
/// Counts index entries of those two statuses only, so it costs what the
/// backlog is, not what the history is.
pub fn figures(conn: &Connection) -> rusqlite::Result<QueueFigures> {
    let count = |status: &str| -> rusqlite::Result<u64> {
        conn.prepare_cached("SELECT count(*) FROM mail WHERE status = ?1")?
            .query_row([status], |row| row.get::<_, i64>(0))
            .map(|n| n as u64)
    };
    let oldest_unsent = conn
        .prepare_cached("SELECT min(queued_at) FROM mail WHERE status = 'QUEUED'")?
        .query_row([], |row| row.get(0))?;
    Ok(QueueFigures {
        queued: count("QUEUED")?,
        dead: count("DEAD")?,
        oldest_unsent,
    })
}
