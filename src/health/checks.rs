//! The latest results of the health checks that touch something (the
//! database, the cache's bookkeeping, Litestream, /proc), kept so a probe
//! only reads them. A background task refreshes them once a second; probes
//! cost the same at 10 or 10,000 open connections and never wait on the
//! database.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::model::{CacheCheck, DatabaseCheck, MailCheck, ReplicationCheck};

/// One round of checks.
#[derive(Debug, Clone)]
pub struct Checks {
    pub database: DatabaseCheck,
    pub cache: CacheCheck,
    pub replication: Option<ReplicationCheck>,
    pub mail: MailCheck,
    /// Resident memory in bytes, where the platform tells.
    pub rss_bytes: Option<u64>,
    /// When the round ended.
    pub made: Instant,
}

/// The latest round, shared by every probe.
#[derive(Debug, Default)]
pub struct LatestChecks(Mutex<Option<Arc<Checks>>>);

impl LatestChecks {
    pub fn get(&self) -> Option<Arc<Checks>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set(&self, checks: Checks) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(checks));
    }
}
