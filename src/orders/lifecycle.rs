//! The order lifecycle: the one place an order changes status.
//!
//! `PENDING_PAYMENT` -> `PAID` | `CANCELLED` | `EXPIRED` | `FAILED`, and
//! `PAID` -> `REFUNDED`. Every move goes through an [`OrderTx`], a write
//! transaction that checks the state machine, makes the effects of arriving
//! in the same transaction, and counts the move in the metrics once, and
//! only if, the transaction commits. Drafting, cancelling, expiry and the
//! webhook say which move they intend; none of them changes a status itself.
//!
//! The effects: a new order holds its seats (a variant with a capacity
//! sells no more); PAID enrolls the buyer, keeps the seats and applies a
//! refund that came before the payment; CANCELLED, EXPIRED and FAILED give
//! the seats back; REFUNDED marks the payment, revokes the enrollment and
//! gives the seats back. PAID mails the receipt and the tutors' sale
//! notices, REFUNDED the refund notice, queued in the same transaction.
//! When the seats left of a variant with a capacity
//! change, the cached catalogue answers are dropped at the commit.

use std::ops::Deref;

use rusqlite::{Connection, Transaction};

use super::model::{Order, OrderStatus};
use super::repo::{self, NewOrder};
use super::seats;
use crate::cache::ResponseCache;
use crate::error::Error;
use crate::payments::repo as payments;

/// A move an order is asked to make.
#[derive(Debug, Clone, Copy)]
pub enum Transition<'a> {
    /// The money arrived; `provider_ref` names it, to find refunds that
    /// came before it.
    Pay {
        provider_ref: Option<&'a str>,
    },
    /// The payment failed, or its session could not be opened (`reason`).
    Fail {
        reason: Option<&'a str>,
    },
    Cancel,
    Expire,
    /// The whole amount went back.
    Refund,
}

impl Transition<'_> {
    pub fn target(self) -> OrderStatus {
        match self {
            Transition::Pay { .. } => OrderStatus::Paid,
            Transition::Fail { .. } => OrderStatus::Failed,
            Transition::Cancel => OrderStatus::Cancelled,
            Transition::Expire => OrderStatus::Expired,
            Transition::Refund => OrderStatus::Refunded,
        }
    }
}

/// What asking for a move did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The order moved; `detail` says what else happened on the way (a
    /// refund that had come before the payment).
    Moved { detail: Option<String> },
    /// The order already had that status.
    AlreadyThere,
    /// The state machine does not allow the move from where the order is.
    NotAllowed,
}

/// A write transaction that may move orders. It derefs to the transaction,
/// so other writes of the same cause go into it too.
pub struct OrderTx<'c> {
    tx: Transaction<'c>,
    /// Moves made, counted in the metrics after the commit.
    moves: Vec<(&'static str, &'static str, u64)>,
    /// The catalogue answers, which show the seats left.
    cache: ResponseCache,
    /// Whether the seats left of a variant with a capacity changed.
    seats_changed: bool,
}

impl<'c> OrderTx<'c> {
    pub fn begin(conn: &'c mut Connection, cache: &ResponseCache) -> rusqlite::Result<Self> {
        Ok(Self {
            tx: conn.transaction()?,
            moves: Vec::new(),
            cache: cache.clone(),
            seats_changed: false,
        })
    }

    /// Commits, then counts the moves and drops the cached catalogue
    /// answers if seats left changed. Dropped without a commit, the
    /// transaction rolls back and nothing is counted.
    pub fn commit(self) -> rusqlite::Result<()> {
        self.tx.commit()?;
        for (from, to, count) in self.moves {
            crate::metrics::order_transition(from, to, count);
        }
        if self.seats_changed {
            self.cache.invalidate();
        }
        Ok(())
    }

    fn moved(&mut self, from: &'static str, to: OrderStatus, count: u64) {
        self.moves.push((from, to.as_str(), count));
    }

    /// A new order, waiting for payment and holding its seats; 409
    /// `SOLD_OUT` (with the seats left) when an item does not fit. First,
    /// the same buyer's pending orders for a variant with a capacity in this
    /// one are cancelled (a newer draft replaces an older one, so nobody
    /// holds seats by drafting again and again), and seats held past their
    /// expiry come back. Returns the payment sessions of the orders
    /// replaced, to close once this commits.
    pub fn open(&mut self, order: &NewOrder<'_>) -> Result<Vec<String>, Error> {
        let mut replaced = Vec::new();
        for item in order.items {
            for earlier in seats::held_by(&self.tx, order.user_id, &item.variant_id)? {
                let Some(earlier) = repo::order_by_id(&self.tx, &earlier, order.now)? else {
                    continue;
                };
                if matches!(
                    self.apply(&earlier, Transition::Cancel, order.now)?,
                    Step::Moved { .. }
                ) && let Some(session) = repo::session_of(&self.tx, &earlier.id)?
                {
                    replaced.push(session);
                }
            }
            self.seats_changed |= seats::release_overdue_of(&self.tx, &item.variant_id, order.now)?;
        }
        repo::insert_order(&self.tx, order)?;
        for (index, item) in order.items.iter().enumerate() {
            let held = seats::hold(
                &self.tx,
                order.id,
                order.user_id,
                &item.variant_id,
                item.quantity,
                order.expires_at,
            )?;
            match held {
                Some(limited) => self.seats_changed |= limited,
                None => {
                    let left = seats::left(&self.tx, &item.variant_id)?;
                    return Err(Error::sold_out(
                        format!("items[{index}].quantity"),
                        item.quantity,
                        left,
                    ));
                }
            }
        }
        self.moved("NEW", OrderStatus::PendingPayment, 1);
        Ok(replaced)
    }

    /// Moves `order` (as read in this transaction) if the state machine
    /// allows it, with the effects of arriving.
    pub fn apply(&mut self, order: &Order, t: Transition<'_>, now: &str) -> Result<Step, Error> {
        let target = t.target();
        if order.status == target {
            return Ok(Step::AlreadyThere);
        }
        if !order.status.can_become(target) {
            return Ok(Step::NotAllowed);
        }
        let reason = match t {
            Transition::Fail { reason } => reason,
            _ => None,
        };
        repo::set_status(&self.tx, &order.id, target, reason, now)?;
        self.moved(order.status.as_str(), target, 1);
        let detail = match t {
            Transition::Pay { provider_ref } => self.arrive_paid(&order.id, provider_ref, now)?,
            Transition::Refund => {
                self.arrive_refunded(&order.id, now)?;
                None
            }
            Transition::Fail { .. } | Transition::Cancel | Transition::Expire => {
                self.seats_changed |= seats::release(&self.tx, &order.id)?;
                None
            }
        };
        Ok(Step::Moved { detail })
    }

    /// Enrolls the buyer, then applies any refund that came before the
    /// payment (Stripe does not deliver in order).
    fn arrive_paid(
        &mut self,
        order_id: &str,
        provider_ref: Option<&str>,
        now: &str,
    ) -> Result<Option<String>, Error> {
        seats::keep(&self.tx, order_id)?;
        repo::enroll(&self.tx, order_id, now)?;
        super::mail::order_paid(&self.tx, order_id, now)?;
        let Some((full, refunded)) =
            payments::take_early_refunds(&self.tx, order_id, provider_ref, now)?
        else {
            return Ok(None);
        };
        if full {
            repo::set_status(&self.tx, order_id, OrderStatus::Refunded, None, now)?;
            self.moved("PAID", OrderStatus::Refunded, 1);
            self.arrive_refunded(order_id, now)?;
            return Ok(Some(
                "a refund delivered before this payment was applied: the order is REFUNDED".into(),
            ));
        }
        let more =
            payments::set_refunded_amount(&self.tx, Some(order_id), provider_ref, refunded, now)?;
        if more > 0 {
            super::mail::order_refunded(&self.tx, order_id, Some(more), now)?;
        }
        Ok(Some(format!(
            "a partial refund of {refunded} delivered before this payment was recorded"
        )))
    }

    fn arrive_refunded(&mut self, order_id: &str, now: &str) -> Result<(), Error> {
        payments::mark_refunded(&self.tx, order_id, now)?;
        super::mail::order_refunded(&self.tx, order_id, None, now)?;
        repo::revoke_enrollments(&self.tx, order_id, now)?;
        self.seats_changed |= seats::give_back(&self.tx, order_id)?;
        Ok(())
    }

    /// Persists EXPIRED on every pending order past its expiry (reads
    /// already show them so). Returns how many.
    pub fn expire_overdue(&mut self, now: &str) -> rusqlite::Result<usize> {
        self.seats_changed |= seats::release_overdue(&self.tx, now)?;
        let expired = repo::expire_overdue(&self.tx, now)?;
        if expired > 0 {
            self.moved("PENDING_PAYMENT", OrderStatus::Expired, expired as u64);
        }
        Ok(expired)
    }
}

impl<'c> Deref for OrderTx<'c> {
    type Target = Transaction<'c>;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

    use super::*;
    use crate::config::PaymentProvider;

    const NOW: &str = "2026-12-04T10:00:00Z";

    fn cache() -> ResponseCache {
        ResponseCache::new(&crate::config::CacheConfig::default())
    }

    fn with_order(conn: &Connection) -> NewOrder<'static> {
        conn.execute(
            "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
             VALUES ('u1', 'a@b.c', 'x', 'STUDENT', ?1, ?1)",
            [NOW],
        )
        .unwrap();
        NewOrder {
            id: "o1",
            user_id: "u1",
            amount: 100,
            currency: "usd",
            provider: PaymentProvider::Dev,
            items: &[],
            now: NOW,
            expires_at: "2026-12-04T11:00:00Z",
        }
    }

    fn moves(handle: &PrometheusHandle) -> Vec<String> {
        handle
            .render()
            .lines()
            .filter(|l| l.starts_with("wemaster_order_transitions_total{"))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_move_is_counted_only_once_its_transaction_commits() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let mut conn = crate::db::in_memory();
            let new = with_order(&conn);
            let mut tx = OrderTx::begin(&mut conn, &cache()).unwrap();
            tx.open(&new).unwrap();
            drop(tx);
            assert_eq!(moves(&handle), Vec::<String>::new(), "rolled back");

            let mut tx = OrderTx::begin(&mut conn, &cache()).unwrap();
            tx.open(&new).unwrap();
            let order = repo::order_by_id(&tx, "o1", NOW).unwrap().unwrap();
            assert_eq!(
                tx.apply(&order, Transition::Cancel, NOW).unwrap(),
                Step::Moved { detail: None }
            );
            assert_eq!(moves(&handle), Vec::<String>::new(), "not committed yet");
            tx.commit().unwrap();
            let mut counted = moves(&handle);
            counted.sort();
            assert_eq!(
                counted,
                [
                    r#"wemaster_order_transitions_total{from="NEW",to="PENDING_PAYMENT"} 1"#,
                    r#"wemaster_order_transitions_total{from="PENDING_PAYMENT",to="CANCELLED"} 1"#,
                ]
            );
        });
    }

    #[test]
    fn the_state_machine_guards_every_move() {
        let mut conn = crate::db::in_memory();
        let new = with_order(&conn);
        let mut tx = OrderTx::begin(&mut conn, &cache()).unwrap();
        tx.open(&new).unwrap();
        let pending = repo::order_by_id(&tx, "o1", NOW).unwrap().unwrap();
        let pay = Transition::Pay { provider_ref: None };
        assert_eq!(
            tx.apply(&pending, Transition::Refund, NOW).unwrap(),
            Step::NotAllowed
        );
        assert!(matches!(
            tx.apply(&pending, pay, NOW).unwrap(),
            Step::Moved { .. }
        ));
        let paid = repo::order_by_id(&tx, "o1", NOW).unwrap().unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
        assert_eq!(tx.apply(&paid, pay, NOW).unwrap(), Step::AlreadyThere);
        assert_eq!(
            tx.apply(&paid, Transition::Cancel, NOW).unwrap(),
            Step::NotAllowed
        );
        let fail = Transition::Fail { reason: Some("no") };
        assert_eq!(tx.apply(&paid, fail, NOW).unwrap(), Step::NotAllowed);
    }
}
