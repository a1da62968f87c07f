//! Protection: fairness per client address and load shedding, budgets per
//! user, the failure throttle per address, brute-force defence on login,
//! the client address behind trusted proxies, request size and time limits,
//! CORS and security headers.

pub mod admission;
pub mod client_ip;
pub mod fair_queue;
pub mod layers;
pub mod limits;
pub mod policy;
