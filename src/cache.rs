//! The in-process cache of ready-to-send responses (moka), with hit and miss
//! counters for `/healthz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use moka::sync::Cache;

use crate::config::CacheConfig;

/// A response body kept ready to send, with its validator.
#[derive(Clone)]
pub struct CachedResponse {
    pub body: Bytes,
    /// Strong ETag of the body, quoted.
    pub etag: Arc<str>,
    /// Extra headers that belong to the body (e.g. `X-Total-Count`, `Link`).
    pub headers: Arc<[(&'static str, String)]>,
}

/// Size- and time-bounded cache of responses keyed by a normalized request.
#[derive(Clone)]
pub struct ResponseCache {
    inner: Cache<String, CachedResponse>,
    hits: Arc<AtomicU64>,
    misses: Arc<AtomicU64>,
}

/// A point-in-time view of the cache for health and metrics.
#[derive(Debug, Clone, Copy)]
pub struct CacheStats {
    pub entries: u64,
    pub hits: u64,
    pub misses: u64,
}

impl CacheStats {
    /// Hits over lookups, 0 when nothing was looked up yet.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

impl ResponseCache {
    pub fn new(config: &CacheConfig) -> Self {
        let inner = Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|key: &String, value: &CachedResponse| {
                let size = key.len() + value.body.len() + value.etag.len() + 64;
                u32::try_from(size).unwrap_or(u32::MAX)
            })
            .time_to_live(Duration::from_secs(config.ttl_seconds))
            .support_invalidation_closures()
            .build();
        Self {
            inner,
            hits: Arc::new(AtomicU64::new(0)),
            misses: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn get(&self, key: &str) -> Option<CachedResponse> {
        let found = self.inner.get(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub fn insert(&self, key: String, value: CachedResponse) {
        self.inner.insert(key, value);
    }

    /// Drops every entry whose key starts with `prefix`.
    pub fn invalidate_prefix(&self, prefix: &str) {
        let prefix = prefix.to_string();
        // moka only fails here when invalidation closures are disabled.
        let _ = self
            .inner
            .invalidate_entries_if(move |key, _| key.starts_with(&prefix));
    }

    pub fn invalidate(&self, key: &str) {
        self.inner.invalidate(key);
    }

    pub fn invalidate_all(&self) {
        self.inner.invalidate_all();
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.inner.entry_count(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}
