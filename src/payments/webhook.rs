//! Stripe webhooks: signature verification against the raw body (HMAC-SHA256
//! of `"{t}.{body}"`, constant-time compare, 5-minute tolerance), then each
//! event recorded once and applied in the same transaction as its effects.
//! Events arrive out of order and are retried: an event is mapped to the
//! move it intends, the order lifecycle (`orders::lifecycle`) makes it if
//! the state machine allows, and anything else is recorded and
//! acknowledged.

use hmac::{Hmac, Mac};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::model::{WebhookAck, WebhookOutcome};
use super::repo::{self, EventRecord};
use crate::config::PaymentProvider;
use crate::error::Error;
use crate::orders::lifecycle::{OrderTx, Step, Transition};
use crate::orders::model::{Order, OrderStatus};
use crate::orders::repo as orders;
use crate::state::AppState;

type HmacSha256 = Hmac<Sha256>;

fn invalid(detail: &str) -> Error {
    Error::unauthorized("WEBHOOK_SIGNATURE_INVALID", detail)
}

/// Checks a `Stripe-Signature` header (`t=...,v1=...[,v1=...]`) for
/// `payload` at time `now` (Unix seconds).
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    payload: &[u8],
    now: i64,
    tolerance_seconds: u64,
) -> Result<(), Error> {
    let header = header.ok_or_else(|| invalid("the Stripe-Signature header is missing"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let t = timestamp.ok_or_else(|| invalid("the signature has no timestamp"))?;
    if now.abs_diff(t) > tolerance_seconds {
        return Err(invalid("the signature timestamp is outside the tolerance"));
    }
    for signature in signatures {
        let Ok(expected) = hex::decode(signature) else {
            continue;
        };
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
            .map_err(|e| Error::internal(anyhow::anyhow!("hmac key: {e}")))?;
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(invalid("no v1 signature matches"))
}

/// A `Stripe-Signature` header for `payload` at time `t`, as Stripe (and
/// the dev provider) would send it.
pub fn sign(secret: &str, payload: &[u8], t: i64) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: Option<i64>,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: Value,
}

/// What an event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Money received (`paid` false: a checkout completed with payment still
    /// pending, e.g. a bank debit).
    Pay {
        paid: bool,
    },
    Fail,
    Expire,
    Refund {
        full: bool,
    },
    Unhandled,
}

/// The parts of an event that matter here.
struct Parsed {
    id: String,
    kind: String,
    created: Option<i64>,
    action: Action,
    order_id: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    /// The provider's id for the money: payment intent, else the session.
    provider_ref: Option<String>,
    /// For a refund: how much has gone back so far (`amount_refunded`).
    refunded: Option<i64>,
}

fn parse(event: Event) -> Parsed {
    let o = &event.data.object;
    let text = |key: &str| o.get(key).and_then(Value::as_str).map(str::to_string);
    let int = |key: &str| o.get(key).and_then(Value::as_i64);
    let metadata_order = o
        .get("metadata")
        .and_then(|m| m.get("orderId"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let (action, order_id, amount, provider_ref) = match event.kind.as_str() {
        "checkout.session.completed" => {
            let paid = matches!(
                o.get("payment_status").and_then(Value::as_str),
                Some("paid" | "no_payment_required")
            );
            (
                Action::Pay { paid },
                metadata_order.or_else(|| text("client_reference_id")),
                int("amount_total"),
                text("payment_intent").or_else(|| text("id")),
            )
        }
        "checkout.session.async_payment_succeeded" => (
            Action::Pay { paid: true },
            metadata_order.or_else(|| text("client_reference_id")),
            int("amount_total"),
            text("payment_intent").or_else(|| text("id")),
        ),
        "checkout.session.async_payment_failed" => (
            Action::Fail,
            metadata_order.or_else(|| text("client_reference_id")),
            int("amount_total"),
            text("payment_intent").or_else(|| text("id")),
        ),
        "checkout.session.expired" => (
            Action::Expire,
            metadata_order.or_else(|| text("client_reference_id")),
            int("amount_total"),
            text("id"),
        ),
        "payment_intent.succeeded" => (
            Action::Pay { paid: true },
            metadata_order,
            int("amount_received")
                .filter(|a| *a > 0)
                .or_else(|| int("amount")),
            text("id"),
        ),
        "payment_intent.payment_failed" => {
            (Action::Fail, metadata_order, int("amount"), text("id"))
        }
        "charge.refunded" => {
            let refunded = int("amount_refunded").unwrap_or(0);
            let full = o.get("refunded").and_then(Value::as_bool).unwrap_or(false)
                || int("amount").is_some_and(|a| a > 0 && refunded >= a);
            (
                Action::Refund { full },
                metadata_order,
                int("amount"),
                text("payment_intent").or_else(|| text("id")),
            )
        }
        _ => (Action::Unhandled, metadata_order, None, None),
    };
    let refunded = matches!(action, Action::Refund { .. })
        .then(|| int("amount_refunded"))
        .flatten();
    Parsed {
        refunded,
        currency: text("currency").map(|c| c.to_lowercase()),
        id: event.id,
        kind: event.kind,
        created: event.created,
        action,
        order_id,
        amount,
        provider_ref,
    }
}

/// The event types [`parse`] acts on; any other is recorded and ignored.
const HANDLED_EVENTS: [&str; 7] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
];

/// The `type` label of an event's metric: a handled type, else `other`, so
/// the series stay bounded whatever types the provider sends.
fn event_label(kind: &str) -> &'static str {
    HANDLED_EVENTS
        .into_iter()
        .find(|handled| *handled == kind)
        .unwrap_or("other")
}

/// Verifies, records and applies one delivery. The route and the dev
/// checkout page both come through here.
pub async fn receive(
    state: &AppState,
    body: &[u8],
    signature: Option<&str>,
) -> Result<WebhookAck, Error> {
    let payments = &state.config.payments;
    verify_signature(
        payments.webhook_secret.expose(),
        signature,
        body,
        state.clock.unix(),
        payments.webhook_tolerance_seconds,
    )
    .inspect_err(|_| crate::metrics::webhook_rejected("signature"))?;
    let event: Event = serde_json::from_slice(body).map_err(|e| {
        crate::metrics::webhook_rejected("malformed");
        Error::bad_request(
            "VALIDATION_ERROR",
            format!("the event is not a Stripe event: {e}"),
        )
    })?;
    if event.id.is_empty() || event.id.len() > 255 {
        crate::metrics::webhook_rejected("malformed");
        return Err(Error::validation(
            "id",
            "the event id must be 1 to 255 characters",
        ));
    }
    let parsed = parse(event);
    let kind = event_label(&parsed.kind);
    let provider = state.payments.kind();
    let clock = state.clock.clone();
    let cache = state.cache.clone();
    let late = (
        parsed.id.clone(),
        parsed.provider_ref.clone(),
        parsed.amount,
    );
    let (already, outcome, order_id) = state
        .db
        .write(move |conn| {
            let mut tx = OrderTx::begin(conn, &cache)?;
            if repo::event_seen(&tx, &parsed.id)? {
                return Ok((true, WebhookOutcome::AlreadyApplied, None));
            }
            let now = clock.stamp();
            let applied = apply(&mut tx, &parsed, provider, &now)?;
            let outcome = applied.outcome;
            repo::record_event(
                &tx,
                &EventRecord {
                    id: &parsed.id,
                    provider,
                    kind: &parsed.kind,
                    // As matched: a refund may name only its payment intent.
                    order_id: applied.order_id.as_deref().or(parsed.order_id.as_deref()),
                    outcome,
                    detail: applied.detail.as_deref(),
                    // A refund's own amount: what went back, not the charge.
                    amount: parsed.refunded.or(parsed.amount),
                    currency: parsed.currency.as_deref(),
                    created: parsed.created,
                    received_at: &now,
                },
            )?;
            tx.commit()?;
            Ok((false, outcome, applied.order_id))
        })
        .await
        .inspect_err(|_| crate::metrics::webhook_rejected("error"))?;
    // A payment or refund may have queued a receipt or a notice.
    state.mail.wake();
    metrics::counter!(crate::metrics::WEBHOOK_EVENTS, "type" => kind, "outcome" => outcome.as_str())
        .increment(1);
    if already {
        return Ok(WebhookAck {
            received: true,
            already_processed: Some(true),
            outcome: WebhookOutcome::AlreadyApplied,
        });
    }
    // Money for an order that closed before it came (its hold expired, it
    // was cancelled or replaced): it goes back, never to an enrollment.
    if let (
        WebhookOutcome::PaymentForClosedOrder,
        Some(order_id),
        (event_id, Some(r), Some(amount)),
    ) = (outcome, order_id, late)
    {
        super::refunds::refund_late_payment(state, &order_id, &r, amount, &event_id).await;
    }
    Ok(WebhookAck {
        received: true,
        already_processed: None,
        outcome,
    })
}

/// What applying an event did.
struct Applied {
    outcome: WebhookOutcome,
    /// Why, for the unusual outcomes.
    detail: Option<String>,
    /// The order the event was matched to, also when only through its
    /// payment intent.
    order_id: Option<String>,
}

impl Applied {
    fn new(outcome: WebhookOutcome, detail: Option<String>, order_id: Option<&str>) -> Self {
        Self {
            outcome,
            detail,
            order_id: order_id.map(str::to_string),
        }
    }
}

/// Applies an event inside the caller's transaction: finds its order and
/// asks the lifecycle for the move the event intends.
fn apply(
    tx: &mut OrderTx<'_>,
    e: &Parsed,
    provider: PaymentProvider,
    now: &str,
) -> Result<Applied, Error> {
    if e.action == Action::Unhandled {
        return Ok(Applied::new(WebhookOutcome::UnhandledType, None, None));
    }
    let order_id = match (&e.order_id, e.action, &e.provider_ref) {
        (Some(id), _, _) => Some(id.clone()),
        // A refund may only name the payment intent.
        (None, Action::Refund { .. }, Some(r)) => repo::order_of_payment(tx, r)?,
        _ => None,
    };
    let Some(order_id) = order_id else {
        if let (Action::Refund { full }, Some(_)) = (e.action, &e.provider_ref) {
            return refund_early(tx, e, None, full, now);
        }
        record_money(tx, e, provider, None, now)?;
        return Ok(Applied::new(
            WebhookOutcome::NoOrderReference,
            Some("the event names no order".into()),
            None,
        ));
    };
    let Some(order) = orders::order_by_id(tx, &order_id, now)? else {
        record_money(tx, e, provider, Some(&order_id), now)?;
        return Ok(Applied::new(
            WebhookOutcome::UnknownOrder,
            Some(format!("no order {order_id}")),
            None,
        ));
    };
    match intended(tx, e, &order, now)? {
        Ok(transition) => move_order(tx, e, provider, &order, transition, now),
        Err(done) => Ok(done),
    }
}

/// The move an event intends for `order`; or, when it intends none, what
/// the event did instead.
fn intended<'e>(
    tx: &Connection,
    e: &'e Parsed,
    order: &Order,
    now: &str,
) -> Result<Result<Transition<'e>, Applied>, Error> {
    let matched = Some(order.id.as_str());
    let transition = match e.action {
        Action::Pay { paid: false } => {
            return Ok(Err(Applied::new(
                WebhookOutcome::AwaitingPayment,
                None,
                matched,
            )));
        }
        Action::Pay { paid: true } => {
            if e.amount != Some(order.amount)
                || e.currency.as_deref() != Some(order.currency.as_str())
            {
                return Ok(Err(Applied::new(
                    WebhookOutcome::AmountMismatch,
                    Some(format!(
                        "order {} {}, event {} {}",
                        order.amount,
                        order.currency,
                        e.amount.map_or("?".into(), |a| a.to_string()),
                        e.currency.as_deref().unwrap_or("?")
                    )),
                    matched,
                )));
            }
            Transition::Pay {
                provider_ref: e.provider_ref.as_deref(),
            }
        }
        Action::Fail => Transition::Fail { reason: None },
        Action::Expire => Transition::Expire,
        Action::Refund { full } if order.status == OrderStatus::PendingPayment => {
            return refund_early(tx, e, matched, full, now).map(Err);
        }
        Action::Refund { full: false } => {
            if let Some(refunded) = e.refunded {
                let more = repo::set_refunded_amount(
                    tx,
                    matched,
                    e.provider_ref.as_deref(),
                    refunded,
                    now,
                )?;
                // Money went back that this server had not sent (a refund
                // made in the provider's dashboard): the buyer is told.
                if more > 0 {
                    crate::orders::mail::order_refunded(tx, &order.id, Some(more), now)?;
                }
            }
            return Ok(Err(Applied::new(
                WebhookOutcome::PartialRefund,
                Some(format!(
                    "partial refund of {}; order unchanged",
                    e.refunded.map_or("?".into(), |a| a.to_string())
                )),
                matched,
            )));
        }
        Action::Refund { full: true } => Transition::Refund,
        Action::Unhandled => {
            return Ok(Err(Applied::new(WebhookOutcome::UnhandledType, None, None)));
        }
    };
    Ok(Ok(transition))
}

/// Asks the lifecycle to move `order` and says what came of it.
fn move_order(
    tx: &mut OrderTx<'_>,
    e: &Parsed,
    provider: PaymentProvider,
    order: &Order,
    transition: Transition<'_>,
    now: &str,
) -> Result<Applied, Error> {
    let matched = Some(order.id.as_str());
    // Money that arrives is kept, before the move so that a refund which
    // came before it finds it; for a closed order, so that reconciliation
    // shows it for a refund or a manual fix. A refunded order's payment is
    // on file already.
    let paying =
        matches!(transition, Transition::Pay { .. }) && order.status != OrderStatus::Refunded;
    if paying {
        record_money(tx, e, provider, matched, now)?;
    }
    let target = transition.target();
    match tx.apply(order, transition, now)? {
        Step::AlreadyThere => Ok(Applied::new(WebhookOutcome::AlreadyApplied, None, matched)),
        Step::NotAllowed if paying => Ok(Applied::new(
            WebhookOutcome::PaymentForClosedOrder,
            Some(format!("order is {}", order.status.as_str())),
            matched,
        )),
        Step::NotAllowed => Ok(Applied::new(
            WebhookOutcome::IgnoredStale,
            Some(format!(
                "order is {}, not moving to {}",
                order.status.as_str(),
                target.as_str()
            )),
            matched,
        )),
        Step::Moved { detail } => {
            tracing::info!(
                order_id = %order.id,
                from = order.status.as_str(),
                to = target.as_str(),
                event = %e.kind,
                "order status changed by webhook"
            );
            Ok(Applied::new(WebhookOutcome::Applied, detail, matched))
        }
    }
}

/// Records the money of a paying event, matched to `order` or not.
fn record_money(
    tx: &Connection,
    e: &Parsed,
    provider: PaymentProvider,
    order: Option<&str>,
    now: &str,
) -> rusqlite::Result<()> {
    if let (Action::Pay { paid: true }, Some(r), Some(amount), Some(currency)) =
        (e.action, &e.provider_ref, e.amount, &e.currency)
    {
        repo::record_payment(tx, order, provider, r, amount, currency, now)?;
    }
    Ok(())
}

/// Keeps a refund whose payment has not arrived (Stripe does not deliver
/// in order); the lifecycle applies it when the payment comes.
fn refund_early(
    tx: &Connection,
    e: &Parsed,
    order: Option<&str>,
    full: bool,
    now: &str,
) -> Result<Applied, Error> {
    repo::insert_early_refund(
        tx,
        &repo::EarlyRefund {
            event_id: &e.id,
            order_id: order,
            provider_ref: e.provider_ref.as_deref(),
            amount: e.refunded,
            currency: e.currency.as_deref(),
            full,
            received_at: now,
        },
    )?;
    Ok(Applied::new(
        WebhookOutcome::RefundBeforePayment,
        Some("the payment has not arrived; the refund is applied when it does".into()),
        order,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_fail_as_they_should() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign("whsec_x", body, 1_000);
        assert!(verify_signature("whsec_x", Some(&header), body, 1_100, 300).is_ok());
        assert!(verify_signature("whsec_y", Some(&header), body, 1_100, 300).is_err());
        assert!(verify_signature("whsec_x", Some(&header), b"{}", 1_100, 300).is_err());
        assert!(verify_signature("whsec_x", Some(&header), body, 1_301, 300).is_err());
        assert!(verify_signature("whsec_x", None, body, 1_000, 300).is_err());
        assert!(verify_signature("whsec_x", Some("t=1000,v1=zz"), body, 1_000, 300).is_err());
        // A rotated secret: any matching v1 is enough.
        let other = sign("whsec_x", body, 1_000).replace("t=1000,", "");
        let both = format!("t=1000,v1=00ff,{other}");
        assert!(verify_signature("whsec_x", Some(&both), body, 1_000, 300).is_ok());
    }
}
