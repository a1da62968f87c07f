//! Operations: Prometheus metrics, the request log with request ids, system
//! figures for health, and online backups.

pub mod backup;
pub mod http;
pub mod metrics;
pub mod system;
