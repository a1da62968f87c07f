//! Reconciliation report (API.md, Admin and reconciliation).

use poem_openapi::Object;

use crate::orders::model::OrderStatus;
use crate::payments::model::{Payment, WebhookOutcome};

/// Orders of one status and currency in the period.
#[derive(Debug, Clone, Object)]
pub struct StatusTotal {
    pub status: OrderStatus,
    pub currency: String,
    pub count: u64,
    /// Sum of order amounts, minor units.
    pub amount: i64,
}

/// An order that needs a look.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct OrderRef {
    pub id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub amount: i64,
    pub currency: String,
    pub created_at: String,
}

/// A payment that does not belong to a paid order.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct PaymentIssue {
    pub payment: Payment,
    /// Status of the order it names, absent when no such order exists.
    #[oai(skip_serializing_if_is_none)]
    pub order_status: Option<OrderStatus>,
}

/// A recorded webhook event that did not apply cleanly.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct EventRef {
    pub event_id: String,
    #[oai(rename = "type")]
    pub kind: String,
    #[oai(skip_serializing_if_is_none)]
    pub order_id: Option<String>,
    pub outcome: WebhookOutcome,
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub amount: Option<i64>,
    #[oai(skip_serializing_if_is_none)]
    pub currency: Option<String>,
    pub received_at: String,
}

/// Money and orders that disagree, for one period.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct Reconciliation {
    /// Start of the period (inclusive).
    pub from: String,
    /// End of the period (exclusive).
    pub to: String,
    /// Orders created in the period, by status and currency.
    pub totals: Vec<StatusTotal>,
    /// PAID or REFUNDED orders with no payment recorded.
    pub paid_without_payment: Vec<OrderRef>,
    /// Payments for unknown orders, or for orders that are not paid.
    pub payments_without_order: Vec<PaymentIssue>,
    /// Payment events whose amount or currency differed from the order.
    pub amount_mismatches: Vec<EventRef>,
    /// Events naming no order, an unknown order, or a closed one.
    pub unmatched_events: Vec<EventRef>,
    /// Refunds delivered before their payment, not applied yet: each is
    /// applied when its payment arrives.
    pub refunds_awaiting_payment: Vec<EventRef>,
}
