//! SQL for orders, idempotency keys and enrollments. Reads compute the
//! effective status: a pending order past its expiry reads as EXPIRED even
//! before the sweeper persists it.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use super::model::{
    EnrolledOffering, Enrollment, EnrollmentStatus, NewItem, Order, OrderItem, OrderStatus,
};
use crate::config::PaymentProvider;
use crate::paging::{Page, like_pattern};

/// The status an order has now, given the time `?now` in the query.
pub const EFFECTIVE_STATUS: &str = "CASE WHEN o.status = 'PENDING_PAYMENT' AND o.expires_at <= :now
    THEN 'EXPIRED' ELSE o.status END";

fn order_columns() -> String {
    format!(
        "o.id, o.user_id, {EFFECTIVE_STATUS}, o.amount, o.currency, o.checkout_url,
         o.payment_provider, o.expires_at, o.created_at, o.updated_at, o.paid_at, o.failure_reason"
    )
}

fn order_from_row(row: &Row<'_>) -> rusqlite::Result<Order> {
    let id: String = row.get(0)?;
    let status: String = row.get(2)?;
    Ok(Order {
        order_id: id.clone(),
        id,
        user_id: row.get(1)?,
        status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Failed),
        amount: row.get(3)?,
        currency: row.get(4)?,
        items: Vec::new(),
        checkout_url: row.get(5)?,
        payment_provider: row.get(6)?,
        expires_at: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
        paid_at: row.get(10)?,
        failure_reason: row.get(11)?,
    })
}

/// A new order ready to insert.
pub struct NewOrder<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub provider: PaymentProvider,
    pub items: &'a [NewItem],
    pub now: &'a str,
    pub expires_at: &'a str,
}

/// Only the lifecycle calls this: a new order is a move too.
pub(super) fn insert_order(conn: &Connection, o: &NewOrder<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO orders (id, user_id, status, amount, currency, payment_provider, expires_at,
             created_at, updated_at)
         VALUES (?1, ?2, 'PENDING_PAYMENT', ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        o.id,
        o.user_id,
        o.amount,
        o.currency,
        o.provider,
        o.expires_at,
        o.now
    ])?;
    let mut item = conn.prepare_cached(
        "INSERT INTO order_items (id, order_id, position, offering_id, variant_id, title,
             unit_price, quantity, line_total)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (position, i) in o.items.iter().enumerate() {
        item.execute(params![
            crate::ids::new_id(),
            o.id,
            position as i64,
            i.offering_id,
            i.variant_id,
            i.title,
            i.unit_price,
            i.quantity,
            i.unit_price * i.quantity,
        ])?;
    }
    Ok(())
}

/// Records the payment session of an order.
pub fn set_session(
    conn: &Connection,
    id: &str,
    session_id: &str,
    url: &str,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE orders SET provider_session_id = ?2, checkout_url = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, session_id, url, now])?;
    Ok(())
}

/// Moves an order to `to`, with the reason of a failure; only the
/// lifecycle calls this, having checked the state machine.
pub(super) fn set_status(
    conn: &Connection,
    id: &str,
    to: OrderStatus,
    reason: Option<&str>,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE orders SET status = ?2, updated_at = ?3,
            paid_at = CASE WHEN ?2 = 'PAID' THEN ?3 ELSE paid_at END,
            failure_reason = COALESCE(?4, failure_reason)
         WHERE id = ?1",
    )?
    .execute(params![id, to.as_str(), now, reason])?;
    Ok(())
}

/// The order a provider session belongs to.
pub fn order_of_session(conn: &Connection, session_id: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT id FROM orders WHERE provider_session_id = ?1")?
        .query_row(params![session_id], |row| row.get(0))
        .optional()
}

/// The provider session id of an order.
pub fn session_of(conn: &Connection, id: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT provider_session_id FROM orders WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()
        .map(Option::flatten)
}

/// Whether the account proved its email address its own.
pub fn email_verified(conn: &Connection, user_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT email_verified_at IS NOT NULL FROM users WHERE id = ?1")?
        .query_row([user_id], |row| row.get(0))
        .optional()
        .map(|verified| verified.unwrap_or(false))
}

pub fn order_by_id(conn: &Connection, id: &str, now: &str) -> rusqlite::Result<Option<Order>> {
    let order = conn
        .prepare_cached(&format!(
            "SELECT {} FROM orders o WHERE o.id = :id",
            order_columns()
        ))?
        .query_row(
            rusqlite::named_params! {":id": id, ":now": now},
            order_from_row,
        )
        .optional()?;
    Ok(match order {
        Some(order) => attach_items(conn, vec![order])?.pop(),
        None => None,
    })
}

/// Filters of the orders list.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    /// Only this buyer's orders (always set for non-admins).
    pub user_id: Option<String>,
    pub statuses: Vec<OrderStatus>,
    pub offering_id: Option<String>,
    /// Created at or after.
    pub from: Option<String>,
    /// Created before.
    pub to: Option<String>,
    /// Matches the order id or an item title.
    pub q: Option<String>,
}

/// The WHERE clause and named parameters for `filter`, with only the
/// conditions in use, so SQLite can use `orders_user_id` for a buyer's list.
// `&String`, not `&str`: a `&dyn ToSql` needs a sized referent.
#[allow(clippy::ptr_arg)]
fn order_filter<'a>(
    filter: &'a OrderFilter,
    statuses: &'a Option<String>,
    pattern: &'a Option<String>,
    now: &'a String,
) -> (String, Vec<(&'static str, &'a dyn ToSql)>) {
    let mut clauses = vec!["1 = 1".to_string()];
    let mut params: Vec<(&'static str, &'a dyn ToSql)> = vec![(":now", now)];
    if let Some(user) = &filter.user_id {
        clauses.push("o.user_id = :user".into());
        params.push((":user", user));
    }
    if let Some(statuses) = statuses {
        clauses.push(format!(
            "({EFFECTIVE_STATUS}) IN (SELECT value FROM json_each(:statuses))"
        ));
        params.push((":statuses", statuses));
    }
    if let Some(offering) = &filter.offering_id {
        clauses.push(
            "EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id AND i.offering_id = :offering)"
                .into(),
        );
        params.push((":offering", offering));
    }
    if let Some(from) = &filter.from {
        clauses.push("o.created_at >= :from".into());
        params.push((":from", from));
    }
    if let Some(to) = &filter.to {
        clauses.push("o.created_at < :to".into());
        params.push((":to", to));
    }
    if let (Some(q), Some(pattern)) = (&filter.q, pattern) {
        clauses.push(
            "(o.id = :qexact OR EXISTS (SELECT 1 FROM order_items i
               WHERE i.order_id = o.id AND i.title LIKE :q ESCAPE '\\'))"
                .into(),
        );
        params.push((":qexact", q));
        params.push((":q", pattern));
    }
    (clauses.join(" AND "), params)
}

/// One page of orders (every order when `page` is `None`), newest first,
/// with items; and the total matching.
pub fn list_orders(
    conn: &Connection,
    filter: &OrderFilter,
    page: Option<Page>,
    now: &str,
) -> rusqlite::Result<(Vec<Order>, u64)> {
    let statuses = (!filter.statuses.is_empty()).then(|| {
        serde_json::to_string(
            &filter
                .statuses
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
        )
        .unwrap_or_else(|_| "[]".into())
    });
    let pattern = filter.q.as_deref().map(like_pattern);
    let (limit, offset) = page.map_or((-1, 0), |p| (i64::from(p.limit), p.offset()));
    let now = now.to_string();
    let (clause, mut params) = order_filter(filter, &statuses, &pattern, &now);
    // `:now` is only used by the status filter and the selected columns.
    let count_params: Vec<_> = params
        .iter()
        .filter(|(name, _)| *name != ":now" || statuses.is_some())
        .copied()
        .collect();
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM orders o WHERE {clause}"))?
        .query_row(&*count_params, |row| row.get(0))?;
    params.push((":limit", &limit));
    params.push((":offset", &offset));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM orders o WHERE {clause}
         ORDER BY o.created_at DESC, o.id DESC LIMIT :limit OFFSET :offset",
        order_columns()
    ))?;
    let orders = stmt
        .query_map(&*params, order_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((attach_items(conn, orders)?, total as u64))
}

/// Loads the items of many orders with one statement.
fn attach_items(conn: &Connection, mut orders: Vec<Order>) -> rusqlite::Result<Vec<Order>> {
    if orders.is_empty() {
        return Ok(orders);
    }
    let ids = serde_json::to_string(&orders.iter().map(|o| &o.id).collect::<Vec<_>>())
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let index: HashMap<String, usize> = orders
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.clone(), i))
        .collect();
    let mut stmt = conn.prepare_cached(
        "SELECT order_id, id, offering_id, variant_id, title, unit_price, quantity, line_total
         FROM order_items WHERE order_id IN (SELECT value FROM json_each(?1))
         ORDER BY order_id, position",
    )?;
    let mut rows = stmt.query([&ids])?;
    while let Some(row) = rows.next()? {
        let order_id: String = row.get(0)?;
        if let Some(&i) = index.get(&order_id) {
            orders[i].items.push(OrderItem {
                id: row.get(1)?,
                offering_id: row.get(2)?,
                variant_id: row.get(3)?,
                title: row.get(4)?,
                unit_price: row.get(5)?,
                quantity: row.get(6)?,
                line_total: row.get(7)?,
            });
        }
    }
    Ok(orders)
}

/// The remembered request of an Idempotency-Key: its body hash and order.
pub fn idempotency_key(
    conn: &Connection,
    user_id: &str,
    key: &str,
    now: &str,
) -> rusqlite::Result<Option<(String, String)>> {
    conn.prepare_cached(
        "SELECT request_hash, order_id FROM idempotency_keys
         WHERE user_id = ?1 AND key = ?2 AND expires_at > ?3",
    )?
    .query_row(params![user_id, key, now], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
    .optional()
}

pub fn remember_idempotency_key(
    conn: &Connection,
    user_id: &str,
    key: &str,
    request_hash: &str,
    order_id: &str,
    now: &str,
    expires_at: &str,
) -> rusqlite::Result<()> {
    // An expired row for the same key is replaced.
    conn.prepare_cached(
        "INSERT OR REPLACE INTO idempotency_keys
             (user_id, key, request_hash, order_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        user_id,
        key,
        request_hash,
        order_id,
        now,
        expires_at
    ])?;
    Ok(())
}

pub fn forget_idempotency_key(conn: &Connection, user_id: &str, key: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2")?
        .execute(params![user_id, key])?;
    Ok(())
}

/// Persists EXPIRED on overdue pending orders; only the lifecycle calls
/// this. Returns the number of orders expired.
pub(super) fn expire_overdue(conn: &Connection, now: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE orders SET status = 'EXPIRED', updated_at = ?1
         WHERE status = 'PENDING_PAYMENT' AND expires_at <= ?1",
    )?
    .execute([now])
}

/// Drops idempotency keys past their expiry.
pub fn drop_expired_keys(conn: &Connection, now: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM idempotency_keys WHERE expires_at <= ?1")?
        .execute([now])
}

/// Grants one enrollment per offering of a paid order (the lifecycle's
/// effect of PAID).
pub(super) fn enroll(conn: &Connection, order_id: &str, now: &str) -> rusqlite::Result<usize> {
    let offerings = conn
        .prepare_cached("SELECT DISTINCT offering_id FROM order_items WHERE order_id = ?1")?
        .query_map([order_id], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO enrollments (id, user_id, offering_id, order_id, status, created_at)
         SELECT ?1, user_id, ?2, id, 'ACTIVE', ?4 FROM orders WHERE id = ?3",
    )?;
    let mut granted = 0;
    for offering_id in offerings {
        granted += insert.execute(params![crate::ids::new_id(), offering_id, order_id, now])?;
    }
    Ok(granted)
}

/// Revokes the enrollments of a refunded order (the lifecycle's effect of
/// REFUNDED).
pub(super) fn revoke_enrollments(
    conn: &Connection,
    order_id: &str,
    now: &str,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE enrollments SET status = 'REVOKED', revoked_at = ?2
         WHERE order_id = ?1 AND status = 'ACTIVE'",
    )?
    .execute(params![order_id, now])
}

/// One page of a user's enrollments, newest first.
pub fn enrollments_of(
    conn: &Connection,
    user_id: &str,
    page: Page,
) -> rusqlite::Result<(Vec<Enrollment>, u64)> {
    let total: i64 = conn
        .prepare_cached("SELECT count(*) FROM enrollments WHERE user_id = ?1")?
        .query_row([user_id], |row| row.get(0))?;
    let items = conn
        .prepare_cached(
            "SELECT e.id, e.offering_id, coalesce(f.slug, ''), coalesce(f.title, ''), e.order_id,
                    e.status, e.created_at
             FROM enrollments e LEFT JOIN offerings f ON f.id = e.offering_id
             WHERE e.user_id = ?1
             ORDER BY e.created_at DESC, e.id DESC LIMIT ?2 OFFSET ?3",
        )?
        .query_map(params![user_id, page.limit, page.offset()], |row| {
            let status: String = row.get(5)?;
            Ok(Enrollment {
                id: row.get(0)?,
                offering: EnrolledOffering {
                    id: row.get(1)?,
                    slug: row.get(2)?,
                    title: row.get(3)?,
                },
                order_id: row.get(4)?,
                status: if status == "ACTIVE" {
                    EnrollmentStatus::Active
                } else {
                    EnrollmentStatus::Revoked
                },
                created_at: row.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((items, total as u64))
}
