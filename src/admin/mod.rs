//! Admin-only views and actions across domains: the outbox, reconciliation,
//! refunds, roles and suspensions, and the audit log of those actions.

pub mod api;
pub mod audit;
pub mod model;
pub mod repo;
