//! Accounts and authentication.

pub mod model;
pub mod password;
pub mod repo;
