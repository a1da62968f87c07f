//! Payments: the provider interface (dev and Stripe), verified idempotent
//! webhooks driving the order state machine, the dev checkout pages.

pub mod api;
pub mod dev_checkout;
pub mod model;
pub mod provider;
pub mod refunds;
pub mod repo;
pub mod webhook;
