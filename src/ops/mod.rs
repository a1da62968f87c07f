//! Operations: the request log with request ids, system
//! figures for health, and online backups.

pub mod backup;
pub mod http;
pub mod system;
