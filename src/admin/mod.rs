//! Admin-only views across domains: the outbox and reconciliation.

pub mod api;
pub mod model;
pub mod repo;
