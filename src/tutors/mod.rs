//! The tutor's side of the marketplace: the sales of their own offerings,
//! who is enrolled in each variant with the seats taken and left, and their
//! totals per period. A tutor sees only their own; of a student, only what
//! teaching needs (name and email).

pub mod api;
pub mod model;
pub mod repo;
