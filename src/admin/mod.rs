//! Admin-only views across domains.

pub mod api;
