//! SQL of the reconciliation report. Each list is capped; a period with more
//! problems than that needs a narrower period.

use rusqlite::{Connection, Row, params};

use super::model::{EventRef, OrderRef, PaymentIssue, Reconciliation, StatusTotal};
use crate::orders::model::OrderStatus;
use crate::orders::repo::EFFECTIVE_STATUS;
use crate::payments::model::WebhookOutcome;
use crate::payments::repo::payment_from_row;

/// Most rows of each problem list.
const CAP: i64 = 500;

fn status(text: &str) -> OrderStatus {
    OrderStatus::parse(text).unwrap_or(OrderStatus::Failed)
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventRef> {
    Ok(EventRef {
        event_id: row.get(0)?,
        kind: row.get(1)?,
        order_id: row.get(2)?,
        outcome: row.get(3)?,
        detail: row.get(4)?,
        amount: row.get(5)?,
        currency: row.get(6)?,
        received_at: row.get(7)?,
    })
}

pub fn reconcile(
    conn: &Connection,
    from: &str,
    to: &str,
    now: &str,
) -> rusqlite::Result<Reconciliation> {
    let totals = conn
        .prepare_cached(&format!(
            "SELECT {EFFECTIVE_STATUS} AS s, o.currency, count(*), sum(o.amount)
             FROM orders o WHERE o.created_at >= :from AND o.created_at < :to
             GROUP BY s, o.currency ORDER BY s, o.currency"
        ))?
        .query_map(
            rusqlite::named_params! {":from": from, ":to": to, ":now": now},
            |row| {
                let s: String = row.get(0)?;
                Ok(StatusTotal {
                    status: status(&s),
                    currency: row.get(1)?,
                    count: row.get::<_, i64>(2)? as u64,
                    amount: row.get(3)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;

    let paid_without_payment = conn
        .prepare_cached(
            "SELECT o.id, o.user_id, o.status, o.amount, o.currency, o.created_at FROM orders o
             WHERE o.status IN ('PAID', 'REFUNDED') AND o.created_at >= ?1 AND o.created_at < ?2
               AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id)
             ORDER BY o.created_at LIMIT ?3",
        )?
        .query_map(params![from, to, CAP], |row| {
            let s: String = row.get(2)?;
            Ok(OrderRef {
                id: row.get(0)?,
                user_id: row.get(1)?,
                status: status(&s),
                amount: row.get(3)?,
                currency: row.get(4)?,
                created_at: row.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;

    let payments_without_order = conn
        .prepare_cached(
            "SELECT p.id, p.order_id, p.provider, p.provider_ref, p.amount, p.currency, p.status,
                    p.created_at, p.refunded_amount, o.status
             FROM payments p LEFT JOIN orders o ON o.id = p.order_id
             WHERE p.created_at >= ?1 AND p.created_at < ?2
               AND (o.id IS NULL OR o.status NOT IN ('PAID', 'REFUNDED'))
             ORDER BY p.created_at LIMIT ?3",
        )?
        .query_map(params![from, to, CAP], |row| {
            let order_status: Option<String> = row.get(9)?;
            Ok(PaymentIssue {
                payment: payment_from_row(row)?,
                order_status: order_status.as_deref().map(status),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;

    let events = |outcomes: &[WebhookOutcome]| -> rusqlite::Result<Vec<EventRef>> {
        let names: Vec<&str> = outcomes.iter().map(|o| o.as_str()).collect();
        let list = serde_json::to_string(&names)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        conn.prepare_cached(
            "SELECT id, type, order_id, outcome, detail, amount, currency, received_at
             FROM webhook_events
             WHERE outcome IN (SELECT value FROM json_each(?1))
               AND received_at >= ?2 AND received_at < ?3
             ORDER BY received_at LIMIT ?4",
        )?
        .query_map(params![list, from, to, CAP], event_from_row)?
        .collect()
    };
    Ok(Reconciliation {
        from: from.to_string(),
        to: to.to_string(),
        totals,
        paid_without_payment,
        payments_without_order,
        amount_mismatches: events(&[WebhookOutcome::AmountMismatch])?,
        unmatched_events: events(&WebhookOutcome::UNMATCHED)?,
        refunds_awaiting_payment: conn
            .prepare_cached(
                "SELECT e.id, e.type, e.order_id, e.outcome, e.detail, e.amount, e.currency,
                        e.received_at
                 FROM early_refunds r JOIN webhook_events e ON e.id = r.event_id
                 WHERE r.applied_at IS NULL AND e.received_at >= ?1 AND e.received_at < ?2
                 ORDER BY e.received_at LIMIT ?3",
            )?
            .query_map(params![from, to, CAP], event_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    })
}
