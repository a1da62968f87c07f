//! Order types (API.md, Orders).

use crate::config::PaymentProvider;
use crate::text::Text;
use poem_openapi::types::Example;
use poem_openapi::{Enum, Object, Union};

/// Where an order is in its life. `PENDING_PAYMENT` -> `PAID` -> `REFUNDED`;
/// `PENDING_PAYMENT` -> `CANCELLED` | `EXPIRED` | `FAILED`. Nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Refunded,
    Cancelled,
    Expired,
    Failed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Refunded,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "PENDING_PAYMENT",
            OrderStatus::Paid => "PAID",
            OrderStatus::Refunded => "REFUNDED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::Failed => "FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The state machine: whether `self` may move to `next`.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (PendingPayment, Paid | Cancelled | Expired | Failed) | (Paid, Refunded)
        )
    }
}

/// One line of an order, with the price it had when the order was drafted.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct OrderItem {
    pub id: String,
    pub offering_id: String,
    pub variant_id: String,
    /// Offering and variant title at draft time.
    pub title: String,
    /// Minor units.
    pub unit_price: i64,
    /// 1 to 10.
    pub quantity: i64,
    /// `unitPrice * quantity`, minor units.
    pub line_total: i64,
}

/// An order and its payment session.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct Order {
    pub id: String,
    /// The same as `id`, kept for clients of the first backend.
    pub order_id: String,
    pub user_id: String,
    pub status: OrderStatus,
    /// Sum of the line totals, minor units.
    pub amount: i64,
    /// ISO 4217 code, lower case.
    pub currency: String,
    pub items: Vec<OrderItem>,
    /// Where the buyer pays; absent once the order is closed without one.
    #[oai(skip_serializing_if_is_none)]
    pub checkout_url: Option<String>,
    pub payment_provider: PaymentProvider,
    /// When an unpaid order expires.
    pub expires_at: String,
    pub created_at: String,
    pub updated_at: String,
    #[oai(skip_serializing_if_is_none)]
    pub paid_at: Option<String>,
    /// Why a FAILED order failed.
    #[oai(skip_serializing_if_is_none)]
    pub failure_reason: Option<String>,
}

impl Example for Order {
    fn example() -> Self {
        let id = "01938a6e-7c3b-7d2e-9f41-2b6c8e0a1d55".to_string();
        Order {
            id: id.clone(),
            order_id: id.clone(),
            user_id: "01938a6e-7c3b-7d2e-9f41-000000000009".into(),
            status: OrderStatus::PendingPayment,
            amount: 4900,
            currency: "usd".into(),
            items: vec![OrderItem {
                id: "01938a6e-7c3b-7d2e-9f41-00000000000a".into(),
                // A demo offering, so the draft example works as shown.
                offering_id: crate::ids::demo_offering_id(crate::ids::EXAMPLE_OFFERING_SLUG),
                variant_id: crate::ids::demo_variant_id(crate::ids::EXAMPLE_OFFERING_SLUG, 0),
                title: "Python for Absolute Beginners - Lifetime access".into(),
                unit_price: 4900,
                quantity: 1,
                line_total: 4900,
            }],
            checkout_url: Some(
                "http://127.0.0.1:3002/checkout/dev/cs_dev_Hq3vXy8LkP2nR7sT0wZ4bC6dF9gJ1mN5qU8yA2eK4hM".into(),
            ),
            payment_provider: PaymentProvider::Dev,
            expires_at: "2026-01-15T10:00:00.000Z".into(),
            created_at: "2026-01-15T09:30:00.000Z".into(),
            updated_at: "2026-01-15T09:30:00.000Z".into(),
            paid_at: None,
            failure_reason: None,
        }
    }
}

/// One thing to buy.
#[derive(Debug, Clone, Object)]
#[oai(
    rename_all = "camelCase",
    example,
    skip_serializing_if_is_none,
    deny_unknown_fields
)]
pub struct DraftItem {
    /// The offering to buy; it must be PUBLISHED.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub offering_id: Text,
    /// Absent or null: the offering's default variant.
    #[oai(nullable, validator(max_length = 64))]
    pub variant_id: Option<Text>,
    /// 1 to 10, default 1.
    #[oai(validator(minimum(value = "1"), maximum(value = "10")))]
    pub quantity: Option<i64>,
}

/// Several things to buy, in one currency.
#[derive(Debug, Clone, Object)]
#[oai(example, deny_unknown_fields)]
pub struct DraftItems {
    /// 1 to 20 items.
    #[oai(validator(min_items = 1, max_items = 20))]
    pub items: Vec<DraftItem>,
}

/// A draft order: either `{items: [...]}` (1 to 20 items) or, for clients
/// of the first backend, one flat item `{offeringId, variantId?,
/// quantity?}` (quantity 1 to 10); no other fields.
#[derive(Debug, Clone, Union)]
pub enum DraftOrderRequest {
    Items(DraftItems),
    Single(DraftItem),
}

impl DraftOrderRequest {
    pub fn into_items(self) -> Vec<DraftItem> {
        match self {
            DraftOrderRequest::Items(d) => d.items,
            DraftOrderRequest::Single(item) => vec![item],
        }
    }
}

/// The offering an enrollment grants.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct EnrolledOffering {
    pub id: String,
    pub slug: String,
    pub title: String,
}

/// `ACTIVE` while the order is paid; `REVOKED` after a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnrollmentStatus {
    Active,
    Revoked,
}

/// Access to an offering, granted by a paid order.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct Enrollment {
    pub id: String,
    pub offering: EnrolledOffering,
    pub order_id: String,
    pub status: EnrollmentStatus,
    pub created_at: String,
}

/// A line of a new order, priced and checked.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub offering_id: String,
    pub variant_id: String,
    pub title: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub currency: String,
}

impl Example for OrderItem {
    fn example() -> Self {
        Order::example().items.remove(0)
    }
}

impl Example for DraftItem {
    fn example() -> Self {
        let item = OrderItem::example();
        DraftItem {
            offering_id: item.offering_id.into(),
            variant_id: Some(item.variant_id.into()),
            quantity: Some(1),
        }
    }
}

impl Example for DraftItems {
    fn example() -> Self {
        DraftItems {
            items: vec![DraftItem::example()],
        }
    }
}

impl Example for EnrolledOffering {
    fn example() -> Self {
        EnrolledOffering {
            id: OrderItem::example().offering_id,
            slug: crate::ids::EXAMPLE_OFFERING_SLUG.into(),
            title: "Python for Absolute Beginners".into(),
        }
    }
}

impl Example for Enrollment {
    fn example() -> Self {
        Enrollment {
            id: "01938a6e-7c3b-7d2e-9f41-00000000000d".into(),
            offering: EnrolledOffering::example(),
            order_id: Order::example().id,
            status: EnrollmentStatus::Active,
            created_at: "2026-01-15T09:35:00.000Z".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;

    #[test]
    fn only_forward_transitions_are_allowed() {
        assert!(PendingPayment.can_become(Paid));
        assert!(Paid.can_become(Refunded));
        for closed in [Cancelled, Expired, Failed, Refunded] {
            assert!(!closed.can_become(Paid), "{closed:?} -> PAID");
        }
        assert!(!Paid.can_become(PendingPayment));
        assert!(!PendingPayment.can_become(Refunded));
        assert!(!Refunded.can_become(Paid));
    }
}
