//! Payment types (API.md, Payments).

use poem_openapi::types::Example;
use poem_openapi::{Enum, Object};

use crate::config::PaymentProvider;

/// What a webhook event did. Stored with the event; the unmatched ones and
/// amount mismatches surface in reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WebhookOutcome {
    /// The order moved (paid, failed, expired or refunded).
    Applied,
    /// The order was already where the event would take it, or this event
    /// id was processed before.
    AlreadyApplied,
    /// The order has moved on; the event changes nothing.
    IgnoredStale,
    /// Checkout completed but the money has not arrived yet (async methods).
    AwaitingPayment,
    /// The amount or currency differs from the order's; the order is unchanged.
    AmountMismatch,
    /// The event names an order this server does not have.
    UnknownOrder,
    /// The event names no order at all.
    NoOrderReference,
    /// Money arrived for an order that was cancelled, expired or failed.
    PaymentForClosedOrder,
    /// Part of the money went back; the order is unchanged.
    PartialRefund,
    /// A refund for an order whose payment has not arrived yet: kept, and
    /// applied when the payment does (the order then ends REFUNDED).
    RefundBeforePayment,
    /// An event type this server does not act on; recorded only.
    UnhandledType,
}

impl WebhookOutcome {
    pub const ALL: [WebhookOutcome; 11] = [
        WebhookOutcome::Applied,
        WebhookOutcome::AlreadyApplied,
        WebhookOutcome::IgnoredStale,
        WebhookOutcome::AwaitingPayment,
        WebhookOutcome::AmountMismatch,
        WebhookOutcome::UnknownOrder,
        WebhookOutcome::NoOrderReference,
        WebhookOutcome::PaymentForClosedOrder,
        WebhookOutcome::PartialRefund,
        WebhookOutcome::RefundBeforePayment,
        WebhookOutcome::UnhandledType,
    ];

    /// Outcomes that mean money or an event did not match an order.
    pub const UNMATCHED: [WebhookOutcome; 3] = [
        WebhookOutcome::UnknownOrder,
        WebhookOutcome::NoOrderReference,
        WebhookOutcome::PaymentForClosedOrder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Applied => "APPLIED",
            WebhookOutcome::AlreadyApplied => "ALREADY_APPLIED",
            WebhookOutcome::IgnoredStale => "IGNORED_STALE",
            WebhookOutcome::AwaitingPayment => "AWAITING_PAYMENT",
            WebhookOutcome::AmountMismatch => "AMOUNT_MISMATCH",
            WebhookOutcome::UnknownOrder => "UNKNOWN_ORDER",
            WebhookOutcome::NoOrderReference => "NO_ORDER_REFERENCE",
            WebhookOutcome::PaymentForClosedOrder => "PAYMENT_FOR_CLOSED_ORDER",
            WebhookOutcome::PartialRefund => "PARTIAL_REFUND",
            WebhookOutcome::RefundBeforePayment => "REFUND_BEFORE_PAYMENT",
            WebhookOutcome::UnhandledType => "UNHANDLED_TYPE",
        }
    }
}

impl rusqlite::types::ToSql for WebhookOutcome {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for WebhookOutcome {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        WebhookOutcome::ALL
            .into_iter()
            .find(|o| o.as_str() == text)
            .ok_or_else(|| {
                rusqlite::types::FromSqlError::Other(
                    format!("unknown webhook outcome {text:?}").into(),
                )
            })
    }
}

/// State of money received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Succeeded,
    Refunded,
}

/// Money received from the payment provider for an order.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct Payment {
    pub id: String,
    /// The order the provider said this pays for; may name no known order.
    #[oai(skip_serializing_if_is_none)]
    pub order_id: Option<String>,
    pub provider: PaymentProvider,
    /// The provider's id for the payment (payment intent or session).
    pub provider_ref: String,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    pub status: PaymentStatus,
    /// How much of it went back so far, minor units.
    pub refunded_amount: i64,
    pub created_at: String,
}

/// Answer to a webhook delivery.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct WebhookAck {
    /// Always true: the event was verified and recorded.
    pub received: bool,
    /// True when this event id was processed before; nothing happened again.
    #[oai(skip_serializing_if_is_none)]
    pub already_processed: Option<bool>,
    /// What the event did.
    pub outcome: WebhookOutcome,
}

impl Example for Payment {
    fn example() -> Self {
        Payment {
            id: "01938a6e-7c3b-7d2e-9f41-00000000000e".into(),
            order_id: Some("01938a6e-7c3b-7d2e-9f41-2b6c8e0a1d55".into()),
            provider: PaymentProvider::Dev,
            provider_ref: "cs_dev_01938a6e7c3b7d2e9f412b6c8e0a1d55".into(),
            amount: 4900,
            currency: "usd".into(),
            status: PaymentStatus::Succeeded,
            refunded_amount: 0,
            created_at: "2026-01-15T09:35:00.000Z".into(),
        }
    }
}

impl Example for WebhookAck {
    fn example() -> Self {
        WebhookAck {
            received: true,
            already_processed: None,
            outcome: WebhookOutcome::Applied,
        }
    }
}
