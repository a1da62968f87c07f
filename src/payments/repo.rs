//! SQL for payments and webhook events.

use rusqlite::{Connection, OptionalExtension, params};

use super::model::{Payment, PaymentStatus, WebhookOutcome};
use crate::config::PaymentProvider;
use crate::paging::Page;

/// A verified event as recorded.
pub struct EventRecord<'a> {
    pub id: &'a str,
    pub provider: PaymentProvider,
    pub kind: &'a str,
    pub order_id: Option<&'a str>,
    pub outcome: WebhookOutcome,
    pub detail: Option<&'a str>,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
    pub created: Option<i64>,
    pub received_at: &'a str,
}

pub fn event_seen(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM webhook_events WHERE id = ?1)")?
        .query_row([id], |row| row.get(0))
}

pub fn record_event(conn: &Connection, e: &EventRecord<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_events (id, provider, type, order_id, outcome, detail, amount, currency,
             created, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        e.id,
        e.provider,
        e.kind,
        e.order_id,
        e.outcome,
        e.detail,
        e.amount,
        e.currency,
        e.created,
        e.received_at
    ])?;
    Ok(())
}

/// Records money received; a second record of the same provider payment is
/// ignored. Returns whether a row was added.
#[allow(clippy::too_many_arguments)]
pub fn record_payment(
    conn: &Connection,
    order_id: Option<&str>,
    provider: PaymentProvider,
    provider_ref: &str,
    amount: i64,
    currency: &str,
    now: &str,
) -> rusqlite::Result<bool> {
    let added = conn
        .prepare_cached(
            "INSERT INTO payments (id, order_id, provider, provider_ref, amount, currency, status,
                 created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'SUCCEEDED', ?7, ?7)
             ON CONFLICT (provider, provider_ref) DO NOTHING",
        )?
        .execute(params![
            crate::ids::new_id(),
            order_id,
            provider,
            provider_ref,
            amount,
            currency,
            now
        ])?;
    Ok(added == 1)
}

pub fn mark_refunded(conn: &Connection, order_id: &str, now: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE payments SET status = 'REFUNDED', refunded_amount = amount, updated_at = ?2
         WHERE order_id = ?1",
    )?
    .execute(params![order_id, now])?;
    Ok(())
}

/// Adds `note` to what an event's record says.
pub fn note_on_event(conn: &Connection, event_id: &str, note: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhook_events SET detail = COALESCE(detail || '; ', '') || ?2 WHERE id = ?1",
    )?
    .execute(params![event_id, note])?;
    Ok(())
}

/// The payment of an order: its provider id, amount and how much of it
/// went back so far.
pub fn payment_of_order(
    conn: &Connection,
    order_id: &str,
) -> rusqlite::Result<Option<(String, i64, i64)>> {
    conn.prepare_cached(
        "SELECT provider_ref, amount, refunded_amount FROM payments
         WHERE order_id = ?1 ORDER BY created_at LIMIT 1",
    )?
    .query_row([order_id], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })
    .optional()
}

/// Records how much of a payment went back in all (a partial refund);
/// returns how much more that is than was on file (0 when it was known:
/// the provider's event for a refund this server made, or a redelivery).
pub fn set_refunded_amount(
    conn: &Connection,
    order_id: Option<&str>,
    provider_ref: Option<&str>,
    refunded: i64,
    now: &str,
) -> rusqlite::Result<i64> {
    let before: Option<i64> = conn
        .prepare_cached(
            "SELECT MAX(refunded_amount) FROM payments WHERE order_id = ?1 OR provider_ref = ?2",
        )?
        .query_row(params![order_id, provider_ref], |row| row.get(0))?;
    conn.prepare_cached(
        "UPDATE payments SET refunded_amount = MAX(refunded_amount, ?3), updated_at = ?4
         WHERE order_id = ?1 OR provider_ref = ?2",
    )?
    .execute(params![order_id, provider_ref, refunded, now])?;
    Ok(before.map_or(0, |before| (refunded - before).max(0)))
}

/// A refund that came before its payment.
pub struct EarlyRefund<'a> {
    pub event_id: &'a str,
    pub order_id: Option<&'a str>,
    pub provider_ref: Option<&'a str>,
    /// Refunded so far, minor units.
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
    pub full: bool,
    pub received_at: &'a str,
}

pub fn insert_early_refund(conn: &Connection, r: &EarlyRefund<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO early_refunds (event_id, order_id, provider_ref, amount, currency, full, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        r.event_id,
        r.order_id,
        r.provider_ref,
        r.amount,
        r.currency,
        r.full,
        r.received_at
    ])?;
    Ok(())
}

/// Takes the refunds that came before this order's payment (matched by
/// order or by the payment's provider id), marking them applied: whether
/// any was full, and the most refunded. `None` when there were none.
pub fn take_early_refunds(
    conn: &Connection,
    order_id: &str,
    provider_ref: Option<&str>,
    now: &str,
) -> rusqlite::Result<Option<(bool, i64)>> {
    let found: (i64, Option<bool>, Option<i64>) = conn
        .prepare_cached(
            "SELECT COUNT(*), MAX(full), MAX(amount) FROM early_refunds
             WHERE applied_at IS NULL AND (order_id = ?1 OR provider_ref = ?2)",
        )?
        .query_row(params![order_id, provider_ref], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    if found.0 == 0 {
        return Ok(None);
    }
    // Events matched only through a payment intent learn their order now.
    conn.prepare_cached(
        "UPDATE webhook_events SET order_id = ?1
         WHERE order_id IS NULL AND id IN (SELECT event_id FROM early_refunds
             WHERE applied_at IS NULL AND (order_id = ?1 OR provider_ref = ?2))",
    )?
    .execute(params![order_id, provider_ref])?;
    conn.prepare_cached(
        "UPDATE early_refunds SET applied_at = ?3, order_id = COALESCE(order_id, ?1)
         WHERE applied_at IS NULL AND (order_id = ?1 OR provider_ref = ?2)",
    )?
    .execute(params![order_id, provider_ref, now])?;
    Ok(Some((found.1.unwrap_or(false), found.2.unwrap_or(0))))
}

/// The order a provider payment was recorded for.
pub fn order_of_payment(conn: &Connection, provider_ref: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT order_id FROM payments WHERE provider_ref = ?1")?
        .query_row([provider_ref], |row| row.get(0))
        .optional()
        .map(Option::flatten)
}

/// A payment from the columns id, order_id, provider, provider_ref, amount,
/// currency, status, created_at (in that order, first in the row).
/// A payment from `id, order_id, provider, provider_ref, amount, currency,
/// status, created_at, refunded_amount`.
pub fn payment_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Payment> {
    let status: String = row.get(6)?;
    Ok(Payment {
        id: row.get(0)?,
        order_id: row.get(1)?,
        provider: row.get(2)?,
        provider_ref: row.get(3)?,
        amount: row.get(4)?,
        currency: row.get(5)?,
        status: if status == "REFUNDED" {
            PaymentStatus::Refunded
        } else {
            PaymentStatus::Succeeded
        },
        created_at: row.get(7)?,
        refunded_amount: row.get(8)?,
    })
}

/// One page of payments, newest first.
pub fn list_payments(
    conn: &Connection,
    order_id: Option<&str>,
    page: Page,
) -> rusqlite::Result<(Vec<Payment>, u64)> {
    let total: i64 = conn
        .prepare_cached("SELECT count(*) FROM payments WHERE ?1 IS NULL OR order_id = ?1")?
        .query_row([order_id], |row| row.get(0))?;
    let items = conn
        .prepare_cached(
            "SELECT id, order_id, provider, provider_ref, amount, currency, status, created_at,
                    refunded_amount
             FROM payments WHERE ?1 IS NULL OR order_id = ?1
             ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
        )?
        .query_map(
            params![order_id, page.limit, page.offset()],
            payment_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((items, total as u64))
}
