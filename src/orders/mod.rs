//! Orders: drafts with price snapshots, the order state machine, expiry,
//! enrollments.

pub mod api;
pub mod draft;
pub mod expiry;
pub mod lifecycle;
pub mod mail;
pub mod model;
pub mod repo;
mod seats;
