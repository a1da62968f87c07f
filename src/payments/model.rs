//! Payment types (API.md, Payments).

use poem_openapi::{Enum, Object};

/// State of money received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Succeeded,
    Refunded,
}

/// Money received from the payment provider for an order.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct Payment {
    pub id: String,
    /// The order the provider said this pays for; may name no known order.
    #[oai(skip_serializing_if_is_none)]
    pub order_id: Option<String>,
    /// `dev` or `stripe`.
    pub provider: String,
    /// The provider's id for the payment (payment intent or session).
    pub provider_ref: String,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub created_at: String,
}

/// Answer to a webhook delivery.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct WebhookAck {
    /// Always true: the event was verified and recorded.
    pub received: bool,
    /// True when this event id was processed before; nothing happened again.
    #[oai(skip_serializing_if_is_none)]
    pub already_processed: Option<bool>,
    /// What the event did, e.g. `APPLIED`, `UNKNOWN_ORDER`, `AMOUNT_MISMATCH`.
    pub outcome: String,
}
