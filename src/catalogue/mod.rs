//! The catalogue: offerings and their variants.

pub mod model;
pub mod repo;
