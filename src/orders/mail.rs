//! The mail an order's moves send, queued in the move's own transaction:
//! PAID sends the student a receipt and each tutor whose offering was
//! bought a sale notice; REFUNDED sends the student a refund notice. The
//! messages carry what was true at the move (titles, amounts), so a later
//! edit of the catalogue does not change a receipt.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::mail::model::{Locale, MailKind, NewMail};
use crate::mail::queue;

/// Someone the mail is for.
struct Party {
    email: String,
    name: String,
    locale: Locale,
}

/// One line of the order, with the offering's tutor.
struct Line {
    title: String,
    variant: String,
    quantity: i64,
    total: i64,
    tutor_id: String,
    tutor: Party,
}

/// The order's buyer, currency, lines and total.
struct Facts {
    buyer: Party,
    currency: String,
    amount: i64,
    lines: Vec<Line>,
}

fn party(email: String, name: Option<String>, locale: String) -> Party {
    Party {
        name: name.unwrap_or_else(|| email.clone()),
        email,
        locale: Locale::parse(&locale),
    }
}

fn facts(conn: &Connection, order_id: &str) -> rusqlite::Result<Facts> {
    let (buyer, currency, amount) = conn
        .prepare_cached(
            "SELECT u.email, u.name, u.locale, o.currency, o.amount
             FROM orders o JOIN users u ON u.id = o.user_id WHERE o.id = ?1",
        )?
        .query_row([order_id], |row| {
            Ok((
                party(row.get(0)?, row.get(1)?, row.get(2)?),
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })?;
    let lines = conn
        .prepare_cached(
            "SELECT f.title, v.name, i.quantity, i.line_total, t.id, t.email, t.name, t.locale
             FROM order_items i
             JOIN offerings f ON f.id = i.offering_id
             JOIN variants v ON v.id = i.variant_id
             JOIN users t ON t.id = f.tutor_id
             WHERE i.order_id = ?1 ORDER BY i.position",
        )?
        .query_map([order_id], |row| {
            Ok(Line {
                title: row.get(0)?,
                variant: row.get(1)?,
                quantity: row.get(2)?,
                total: row.get(3)?,
                tutor_id: row.get(4)?,
                tutor: party(row.get(5)?, row.get(6)?, row.get(7)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Facts {
        buyer,
        currency,
        amount,
        lines,
    })
}

/// An amount in minor units as people read it: `49.00 USD`, `5000 JPY`.
pub fn money(minor: i64, currency: &str) -> String {
    let exponent = iso_currency::Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .unwrap_or(2);
    if exponent == 0 {
        return format!("{minor} {currency}");
    }
    let scale = 10_i64.pow(u32::from(exponent));
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    let scale = scale.unsigned_abs();
    format!(
        "{sign}{}.{:0width$} {currency}",
        minor / scale,
        minor % scale,
        width = usize::from(exponent)
    )
}

fn items<'a>(lines: impl Iterator<Item = &'a Line>, currency: &str) -> Vec<Value> {
    lines
        .map(|line| {
            json!({
                "title": line.title,
                "variant": line.variant,
                "quantity": line.quantity,
                "amount": money(line.total, currency),
            })
        })
        .collect()
}

/// The day of `now` (an RFC 3339 stamp), as the mail shows it.
fn day(now: &str) -> &str {
    now.get(..10).unwrap_or(now)
}

/// A mail to the buyer about the whole order: what it held and `total`.
fn to_buyer(kind: MailKind, facts: &Facts, order_id: &str, total: i64, now: &str) -> NewMail {
    NewMail {
        kind,
        recipient: facts.buyer.email.clone(),
        locale: facts.buyer.locale,
        data: json!({
            "name": facts.buyer.name,
            "orderId": order_id,
            "date": day(now),
            "items": items(facts.lines.iter(), &facts.currency),
            "total": money(total, &facts.currency),
        }),
    }
}

/// Queues the receipt to the buyer and one sale notice to each tutor.
pub fn order_paid(conn: &Connection, order_id: &str, now: &str) -> rusqlite::Result<()> {
    let facts = facts(conn, order_id)?;
    let receipt = to_buyer(MailKind::Receipt, &facts, order_id, facts.amount, now);
    queue::enqueue(conn, &receipt, now)?;
    let mut by_tutor: BTreeMap<&str, Vec<&Line>> = BTreeMap::new();
    for line in &facts.lines {
        by_tutor.entry(&line.tutor_id).or_default().push(line);
    }
    for lines in by_tutor.values() {
        let tutor = &lines[0].tutor;
        let total: i64 = lines.iter().map(|l| l.total).sum();
        let notice = NewMail {
            kind: MailKind::SaleNotice,
            recipient: tutor.email.clone(),
            locale: tutor.locale,
            data: json!({
                "name": tutor.name,
                "buyer": facts.buyer.name,
                "orderId": order_id,
                "date": day(now),
                "items": items(lines.iter().copied(), &facts.currency),
                "total": money(total, &facts.currency),
            }),
        };
        queue::enqueue(conn, &notice, now)?;
    }
    Ok(())
}

/// Queues the refund notice to the buyer: `amount` minor units went back
/// (`None`: the whole order).
pub fn order_refunded(
    conn: &Connection,
    order_id: &str,
    amount: Option<i64>,
    now: &str,
) -> rusqlite::Result<()> {
    let facts = facts(conn, order_id)?;
    let total = amount.unwrap_or(facts.amount);
    let notice = to_buyer(MailKind::RefundNotice, &facts, order_id, total, now);
    queue::enqueue(conn, &notice, now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::money;

    #[test]
    fn amounts_read_in_the_currency_s_own_minor_units() {
        assert_eq!(money(4_900, "USD"), "49.00 USD");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(5_000, "JPY"), "5000 JPY");
        assert_eq!(money(1_234, "KWD"), "1.234 KWD");
    }
}
