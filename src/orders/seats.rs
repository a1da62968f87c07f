//! SQL for seats: how many a variant has taken (`variants.seats_taken`: its
//! paid orders' and its pending orders' holds) and the holds themselves.
//! Only the lifecycle calls these, in the transaction that moves the order.
//! Each statement touches the rows of one order or one variant, or the
//! holds past their expiry: nothing here grows with the number of orders.
//! The functions that change what a variant has taken say whether a variant
//! with a capacity was among them (its seats left are shown).

use rusqlite::{Connection, params};

/// Takes `quantity` seats of `variant_id` for `order_id`, held until
/// `expires_at`. `Ok(None)` when they do not fit; else whether the variant
/// has a capacity.
pub(super) fn hold(
    conn: &Connection,
    order_id: &str,
    user_id: &str,
    variant_id: &str,
    quantity: i64,
    expires_at: &str,
) -> rusqlite::Result<Option<bool>> {
    let limited: Option<bool> = conn
        .prepare_cached(
            "UPDATE variants SET seats_taken = seats_taken + ?2
             WHERE id = ?1 AND (capacity IS NULL OR seats_taken + ?2 <= capacity)
             RETURNING capacity IS NOT NULL",
        )?
        .query_map(params![variant_id, quantity], |row| row.get(0))?
        .next()
        .transpose()?;
    if limited.is_some() {
        conn.prepare_cached(
            "INSERT INTO seat_holds (order_id, variant_id, user_id, quantity, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (order_id, variant_id) DO UPDATE SET quantity = quantity + excluded.quantity",
        )?
        .execute(params![order_id, variant_id, user_id, quantity, expires_at])?;
    }
    Ok(limited)
}

/// The seats still free on `variant_id` (0 for one without a capacity).
pub(super) fn left(conn: &Connection, variant_id: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT MAX(COALESCE(capacity, 0) - seats_taken, 0) FROM variants WHERE id = ?1",
    )?
    .query_row([variant_id], |row| row.get(0))
}

/// Whether any of the updated rows (`RETURNING capacity IS NOT NULL`) was
/// a variant with a capacity.
fn any_limited(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<bool> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut limited = false;
    while let Some(row) = rows.next()? {
        limited |= row.get::<_, bool>(0)?;
    }
    Ok(limited)
}

/// Gives back the seats `order_id` holds (it was cancelled, failed or
/// expired).
pub(super) fn release(conn: &Connection, order_id: &str) -> rusqlite::Result<bool> {
    let limited = any_limited(
        conn,
        "UPDATE variants SET seats_taken = seats_taken
             - (SELECT quantity FROM seat_holds WHERE order_id = ?1 AND variant_id = variants.id)
         WHERE id IN (SELECT variant_id FROM seat_holds WHERE order_id = ?1)
         RETURNING capacity IS NOT NULL",
        [order_id],
    )?;
    conn.prepare_cached("DELETE FROM seat_holds WHERE order_id = ?1")?
        .execute([order_id])?;
    Ok(limited)
}

/// `order_id` was paid: its seats stay taken and are no longer held.
pub(super) fn keep(conn: &Connection, order_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM seat_holds WHERE order_id = ?1")?
        .execute([order_id])?;
    Ok(())
}

/// Gives back the seats of a paid order that was refunded.
pub(super) fn give_back(conn: &Connection, order_id: &str) -> rusqlite::Result<bool> {
    any_limited(
        conn,
        "UPDATE variants SET seats_taken = MAX(seats_taken
             - (SELECT SUM(quantity) FROM order_items WHERE order_id = ?1 AND variant_id = variants.id), 0)
         WHERE id IN (SELECT variant_id FROM order_items WHERE order_id = ?1)
         RETURNING capacity IS NOT NULL",
        [order_id],
    )
}

/// Gives back the seats of `variant_id` held past their expiry (the orders
/// read as EXPIRED already; the sweeper persists their status).
pub(super) fn release_overdue_of(
    conn: &Connection,
    variant_id: &str,
    now: &str,
) -> rusqlite::Result<bool> {
    let limited = any_limited(
        conn,
        "UPDATE variants SET seats_taken = seats_taken
             - (SELECT SUM(quantity) FROM seat_holds WHERE variant_id = ?1 AND expires_at <= ?2)
         WHERE id = ?1
             AND EXISTS (SELECT 1 FROM seat_holds WHERE variant_id = ?1 AND expires_at <= ?2)
         RETURNING capacity IS NOT NULL",
        params![variant_id, now],
    )?;
    conn.prepare_cached("DELETE FROM seat_holds WHERE variant_id = ?1 AND expires_at <= ?2")?
        .execute(params![variant_id, now])?;
    Ok(limited)
}

/// Gives back every seat held past its expiry.
pub(super) fn release_overdue(conn: &Connection, now: &str) -> rusqlite::Result<bool> {
    let limited = any_limited(
        conn,
        "UPDATE variants SET seats_taken = seats_taken
             - (SELECT SUM(quantity) FROM seat_holds WHERE variant_id = variants.id AND expires_at <= ?1)
         WHERE id IN (SELECT variant_id FROM seat_holds WHERE expires_at <= ?1)
         RETURNING capacity IS NOT NULL",
        [now],
    )?;
    conn.prepare_cached("DELETE FROM seat_holds WHERE expires_at <= ?1")?
        .execute([now])?;
    Ok(limited)
}

/// The pending orders of `user_id` holding seats of `variant_id`, when that
/// variant has a capacity (a newer draft of the same buyer replaces them).
pub(super) fn held_by(
    conn: &Connection,
    user_id: &str,
    variant_id: &str,
) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT h.order_id FROM seat_holds h JOIN variants v ON v.id = h.variant_id
         WHERE h.user_id = ?1 AND h.variant_id = ?2 AND v.capacity IS NOT NULL",
    )?
    .query_map(params![user_id, variant_id], |row| row.get(0))?
    .collect()
}
