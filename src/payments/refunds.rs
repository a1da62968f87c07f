//! Sending money back: an admin's refund of a paid order (whole or in
//! part), and the automatic refund of a payment that arrived for an order
//! already closed (its seats gone, say). The provider is asked first, with
//! an idempotency key, outside any transaction; then the order moves
//! through the lifecycle (REFUNDED when all went back: the enrollment
//! revoked, the seats given back) with the audit record in the same
//! transaction. The provider's own `charge.refunded` event, when it comes,
//! finds the refund already applied.

use serde_json::json;

use super::repo;
use crate::admin::audit::{self, Action};
use crate::auth::Principal;
use crate::error::Error;
use crate::orders::lifecycle::{OrderTx, Transition};
use crate::orders::model::{Order, OrderStatus};
use crate::orders::repo as orders;
use crate::state::AppState;

/// An admin's refund of `amount` (default: all that is left) of paid order
/// `order_id`, from `address`.
pub async fn refund_order(
    state: &AppState,
    admin: &Principal,
    address: String,
    order_id: String,
    amount: Option<i64>,
) -> Result<Order, Error> {
    let now = state.clock.stamp();
    let id = order_id.clone();
    let (order, payment) = state
        .db
        .read(move |conn| {
            let order = orders::order_by_id(conn, &id, &now)?
                .ok_or_else(|| Error::not_found("no such order"))?;
            Ok((order, repo::payment_of_order(conn, &id)?))
        })
        .await?;
    if order.status != OrderStatus::Paid {
        return Err(Error::conflict(
            "ORDER_NOT_REFUNDABLE",
            format!(
                "an order that is {} cannot be refunded",
                order.status.as_str()
            ),
        ));
    }
    let Some((payment_ref, paid, refunded_before)) = payment else {
        return Err(Error::conflict(
            "ORDER_NOT_REFUNDABLE",
            "the order has no payment on record; see reconciliation",
        ));
    };
    let left = paid - refunded_before;
    let amount = amount.unwrap_or(left);
    if !(1..=left).contains(&amount) {
        return Err(Error::validation(
            "amount",
            format!("amount must be between 1 and {left}, what is left of the payment"),
        ));
    }
    // The same refund asked twice (a retried request) is sent once.
    let key = format!("refund:{order_id}:{refunded_before}:{amount}");
    let refund_id = state
        .payments
        .refund(&payment_ref, amount, &order_id, &key)
        .await?;
    let clock = state.clock.clone();
    let cache = state.cache.clone();
    let actor = admin.user_id.clone();
    let refunded = state
        .db
        .write(move |conn| {
            let mut tx = OrderTx::begin(conn, &cache)?;
            let now = clock.stamp();
            let order = orders::order_by_id(&tx, &order_id, &now)?
                .ok_or_else(|| Error::not_found("no such order"))?;
            let total = refunded_before + amount;
            repo::set_refunded_amount(&tx, Some(&order_id), Some(&payment_ref), total, &now)?;
            if total >= paid {
                tx.apply(&order, Transition::Refund, &now)?;
            } else {
                crate::orders::mail::order_refunded(&tx, &order_id, Some(amount), &now)?;
            }
            audit::record(
                &tx,
                &Action {
                    actor_id: &actor,
                    address: &address,
                    action: "order.refund",
                    target: &order_id,
                    detail: json!({
                        "amount": amount,
                        "currency": order.currency,
                        "refundedInAll": total,
                        "full": total >= paid,
                        "refundId": refund_id,
                    }),
                    at: &now,
                },
            )?;
            let order = orders::order_by_id(&tx, &order_id, &now)?
                .ok_or_else(|| Error::internal(anyhow::anyhow!("order vanished")))?;
            tx.commit()?;
            Ok(order)
        })
        .await?;
    state.mail.wake();
    Ok(refunded)
}

/// Sends back a payment that arrived for order `order_id` after it closed
/// (cancelled, expired or failed: its seats may be someone else's), and
/// marks the payment refunded. A provider that cannot be reached leaves
/// the payment as it is, listed by reconciliation for a refund by hand.
pub async fn refund_late_payment(
    state: &AppState,
    order_id: &str,
    payment_ref: &str,
    amount: i64,
    event_id: &str,
) {
    let key = format!("late:{payment_ref}");
    match state
        .payments
        .refund(payment_ref, amount, order_id, &key)
        .await
    {
        Ok(refund_id) => {
            let (order, event) = (order_id.to_string(), event_id.to_string());
            let now = state.clock.stamp();
            let marked = state
                .db
                .write(move |conn| {
                    let tx = conn.transaction()?;
                    repo::mark_refunded(&tx, &order, &now)?;
                    repo::note_on_event(
                        &tx,
                        &event,
                        &format!("refunded automatically ({refund_id})"),
                    )?;
                    tx.commit()?;
                    Ok(())
                })
                .await;
            match marked {
                Ok(()) => tracing::info!(order_id, "payment for a closed order refunded"),
                Err(e) => tracing::error!(order_id, error = ?e, "refunded, but not marked so"),
            }
        }
        Err(e) => tracing::warn!(
            order_id,
            error = %e.detail(),
            "could not refund a payment for a closed order; see reconciliation"
        ),
    }
}
