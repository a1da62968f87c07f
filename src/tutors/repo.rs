//! SQL for the tutor's views. Every statement is bounded by the tutor's
//! own offerings (`offerings.tutor_id`) and pages or periods.

use rusqlite::{Connection, Row, params};

use super::model::{Enrolled, Period, Sale, StudentRef, Total, VariantRoster};
use crate::orders::model::OrderStatus;
use crate::paging::Page;

/// The period sales are read for; `None` ends are open.
pub struct Span<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
}

const SALES_FROM: &str = "FROM order_items i
    JOIN offerings f ON f.id = i.offering_id
    JOIN orders o ON o.id = i.order_id
    JOIN users u ON u.id = o.user_id
    WHERE f.tutor_id = ?1 AND o.status IN ('PAID', 'REFUNDED')
      AND (?2 IS NULL OR o.paid_at >= ?2) AND (?3 IS NULL OR o.paid_at < ?3)
      AND (?4 IS NULL OR i.offering_id = ?4)";

fn sale(row: &Row<'_>) -> rusqlite::Result<Sale> {
    let status: String = row.get(1)?;
    Ok(Sale {
        order_id: row.get(0)?,
        order_status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Paid),
        offering_id: row.get(2)?,
        variant_id: row.get(3)?,
        title: row.get(4)?,
        quantity: row.get(5)?,
        line_total: row.get(6)?,
        currency: row.get(7)?,
        student: StudentRef {
            name: row.get(8)?,
            email: row.get(9)?,
        },
        paid_at: row.get(10)?,
    })
}

/// One page of a tutor's sales, newest first, and how many in all.
pub fn sales(
    conn: &Connection,
    tutor_id: &str,
    span: &Span<'_>,
    offering_id: Option<&str>,
    page: Page,
) -> rusqlite::Result<(Vec<Sale>, u64)> {
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) {SALES_FROM}"))?
        .query_row(params![tutor_id, span.from, span.to, offering_id], |row| {
            row.get(0)
        })?;
    let sales = conn
        .prepare_cached(&format!(
            "SELECT o.id, o.status, i.offering_id, i.variant_id, i.title, i.quantity,
                    i.line_total, o.currency, u.name, u.email, o.paid_at
             {SALES_FROM}
             ORDER BY o.paid_at DESC, o.id DESC, i.position LIMIT ?5 OFFSET ?6"
        ))?
        .query_map(
            params![
                tutor_id,
                span.from,
                span.to,
                offering_id,
                page.limit,
                page.offset()
            ],
            sale,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((sales, u64::try_from(total).unwrap_or(0)))
}

/// A tutor's takings per period and currency, newest period first.
pub fn totals(
    conn: &Connection,
    tutor_id: &str,
    span: &Span<'_>,
    period: Period,
) -> rusqlite::Result<Vec<Total>> {
    let bucket = period.bucket();
    conn.prepare_cached(&format!(
        "SELECT {bucket} AS p, o.currency, count(DISTINCT o.id), sum(i.line_total),
                sum(CASE WHEN o.status = 'REFUNDED' THEN i.line_total ELSE 0 END)
         {SALES_FROM}
         GROUP BY p, o.currency ORDER BY p DESC, o.currency"
    ))?
    .query_map(
        params![tutor_id, span.from, span.to, None::<String>],
        |row| {
            Ok(Total {
                period: row.get(0)?,
                currency: row.get(1)?,
                orders: row.get(2)?,
                amount: row.get(3)?,
                refunded: row.get(4)?,
            })
        },
    )?
    .collect()
}

/// The variants of an offering with their seats and enrolled students.
pub fn roster(
    conn: &Connection,
    offering_id: &str,
    now: &str,
) -> rusqlite::Result<Vec<VariantRoster>> {
    let mut variants = conn
        .prepare_cached(
            "SELECT v.id, v.name, v.capacity,
                    (SELECT COALESCE(SUM(quantity), 0) FROM seat_holds
                     WHERE variant_id = v.id AND expires_at > ?2)
             FROM variants v WHERE v.offering_id = ?1 ORDER BY v.position",
        )?
        .query_map(params![offering_id, now], |row| {
            Ok(VariantRoster {
                variant_id: row.get(0)?,
                name: row.get(1)?,
                capacity: row.get(2)?,
                seats_paid: 0,
                seats_held: row.get(3)?,
                seats_left: None,
                students: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut students = conn.prepare_cached(
        "SELECT u.name, u.email, i.quantity, o.id, o.paid_at
         FROM order_items i JOIN orders o ON o.id = i.order_id JOIN users u ON u.id = o.user_id
         WHERE i.offering_id = ?1 AND i.variant_id = ?2 AND o.status = 'PAID'
         ORDER BY o.paid_at, o.id",
    )?;
    for variant in &mut variants {
        variant.students = students
            .query_map(params![offering_id, variant.variant_id], |row| {
                Ok(Enrolled {
                    name: row.get(0)?,
                    email: row.get(1)?,
                    quantity: row.get(2)?,
                    order_id: row.get(3)?,
                    paid_at: row.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        variant.seats_paid = variant.students.iter().map(|s| s.quantity).sum();
        variant.seats_left = variant
            .capacity
            .map(|c| (c - variant.seats_paid - variant.seats_held).max(0));
    }
    Ok(variants)
}
