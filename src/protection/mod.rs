//! Protection: token-bucket rate limits per route class, brute-force
//! defence on login, the client address behind trusted proxies, request
//! size and time limits, CORS and security headers.

pub mod client_ip;
pub mod layers;
pub mod limits;
pub mod login_guard;
