//! The catalogue: offerings and their variants.

pub mod api;
pub mod input;
pub mod model;
pub mod repo;
