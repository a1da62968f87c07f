//! Payment types (API.md, Payments).

use poem_openapi::types::Example;
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
#[oai(rename_all = "camelCase", example)]
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
#[oai(rename_all = "camelCase", example)]
pub struct WebhookAck {
    /// Always true: the event was verified and recorded.
    pub received: bool,
    /// True when this event id was processed before; nothing happened again.
    #[oai(skip_serializing_if_is_none)]
    pub already_processed: Option<bool>,
    /// What the event did, e.g. `APPLIED`, `UNKNOWN_ORDER`, `AMOUNT_MISMATCH`.
    pub outcome: String,
}

impl Example for Payment {
    fn example() -> Self {
        Payment {
            id: "01938a6e-7c3b-7d2e-9f41-00000000000e".into(),
            order_id: Some("01938a6e-7c3b-7d2e-9f41-2b6c8e0a1d55".into()),
            provider: "dev".into(),
            provider_ref: "cs_dev_01938a6e7c3b7d2e9f412b6c8e0a1d55".into(),
            amount: 4900,
            currency: "usd".into(),
            status: PaymentStatus::Succeeded,
            created_at: "2026-01-15T09:35:00.000Z".into(),
        }
    }
}

impl Example for WebhookAck {
    fn example() -> Self {
        WebhookAck {
            received: true,
            already_processed: None,
            outcome: "APPLIED".into(),
        }
    }
}
