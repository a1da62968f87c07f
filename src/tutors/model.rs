//! What a tutor sees of their sales and students.

use poem_openapi::{Enum, Object};

use crate::orders::model::OrderStatus;

/// A student as their tutor sees them.
#[derive(Debug, Clone, Object)]
pub struct StudentRef {
    pub name: Option<String>,
    pub email: String,
}

/// One line of a paid (or since refunded) order for one of the tutor's
/// offerings.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct Sale {
    pub order_id: String,
    /// PAID, or REFUNDED when the money went back.
    pub order_status: OrderStatus,
    pub offering_id: String,
    pub variant_id: String,
    /// Offering and variant title at the time of the order.
    pub title: String,
    pub quantity: i64,
    /// What this line cost, minor units.
    pub line_total: i64,
    pub currency: String,
    pub student: StudentRef,
    /// When the order was paid (RFC 3339, UTC).
    pub paid_at: Option<String>,
}

/// A student enrolled through a paid order.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct Enrolled {
    pub name: Option<String>,
    pub email: String,
    /// Seats of this variant the order bought.
    pub quantity: i64,
    pub order_id: String,
    pub paid_at: Option<String>,
}

/// One variant of an offering: its seats and who holds them.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct VariantRoster {
    pub variant_id: String,
    pub name: String,
    /// Absent: unlimited.
    #[oai(skip_serializing_if_is_none)]
    pub capacity: Option<i64>,
    /// Seats bought by paid orders.
    pub seats_paid: i64,
    /// Seats held by orders still waiting for payment.
    pub seats_held: i64,
    /// With a capacity: the seats neither paid nor held.
    #[oai(skip_serializing_if_is_none)]
    pub seats_left: Option<i64>,
    /// Students of paid orders, earliest first.
    pub students: Vec<Enrolled>,
}

/// How totals are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    /// The SQLite expression that names a `paid_at`'s period.
    pub fn bucket(self) -> &'static str {
        match self {
            Period::Day => "substr(o.paid_at, 1, 10)",
            Period::Week => "strftime('%Y-W%W', o.paid_at)",
            Period::Month => "substr(o.paid_at, 1, 7)",
        }
    }
}

/// A tutor's takings in one period and currency.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct Total {
    /// `2026-12`, `2026-W48` or `2026-12-04`.
    pub period: String,
    pub currency: String,
    /// Orders with a line for the tutor's offerings, paid in the period.
    pub orders: i64,
    /// Their lines' sum, minor units.
    pub amount: i64,
    /// Of that, the lines of orders since refunded in full.
    pub refunded: i64,
}
