//! The in-process cache of ready-to-send responses (moka), and the response
//! type that serves them with an ETag, answering `If-None-Match` with 304.
//!
//! Entries are keyed by a generation number plus a normalized request. A
//! write bumps the generation after it commits and clears the cache, so the
//! next read misses and is rebuilt from the database; a reader that raced the
//! write stored its result under the old generation, where nobody looks.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use poem::http::{HeaderName, HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use sha2::{Digest, Sha256};

use crate::compression::{Precompressed, same_entity};
use crate::config::CacheConfig;

/// A response body kept ready to send, with the headers that belong to it.
#[derive(Clone)]
pub struct CachedResponse {
    /// The body, and its compressed forms once asked for.
    pub body: Precompressed,
    /// Strong ETag of the body, quoted.
    pub etag: HeaderValue,
    /// Headers that belong to the body, such as `X-Total-Count` and `Link`.
    pub headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl CachedResponse {
    /// Serializes `value` and computes its ETag.
    pub fn json<T: serde::Serialize>(
        value: &T,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Self, serde_json::Error> {
        let body = serde_json::to_vec(value)?;
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        Ok(Self {
            body: Precompressed::kept(body),
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
            headers: headers.into(),
        })
    }

    /// Whether an `If-None-Match` header value matches this body, in any
    /// of its codings.
    pub fn matches(&self, if_none_match: Option<&str>) -> bool {
        let (Some(value), Ok(ours)) = (if_none_match, self.etag.to_str()) else {
            return false;
        };
        value
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || same_entity(tag.strip_prefix("W/").unwrap_or(tag), ours))
    }
}

/// Size- and time-bounded cache of responses keyed by a normalized request.
#[derive(Clone)]
pub struct ResponseCache {
    inner: Cache<String, CachedResponse>,
    generation: Arc<AtomicU64>,
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
                let headers: usize = value
                    .headers
                    .iter()
                    .map(|(n, v)| n.as_str().len() + v.len())
                    .sum();
                // Bodies and keys, plus what moka and the allocator spend per entry,
                // so a flood of tiny distinct searches is bounded too. The
                // compressed forms, made later, are counted at half the body
                // (JSON compresses to a fifth or less per coding).
                let size = key.len() + value.body.plain.len() * 3 / 2 + headers + 1024;
                u32::try_from(size).unwrap_or(u32::MAX)
            })
            .time_to_live(Duration::from_secs(config.ttl_seconds))
            .build();
        Self {
            inner,
            generation: Arc::new(AtomicU64::new(0)),
            hits: Arc::new(AtomicU64::new(0)),
            misses: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The key for `request` in the current generation. Take it before
    /// reading the database, store the result under it afterwards.
    pub fn key(&self, request: &str) -> String {
        let generation = self.generation.load(Ordering::Acquire);
        let mut key = String::with_capacity(request.len() + 8);
        key.push_str(&generation.to_string());
        key.push('|');
        key.push_str(request);
        key
    }

    pub fn get(&self, key: &str) -> Option<CachedResponse> {
        let found = self.inner.get(key);
        let (counter, result) = if found.is_some() {
            (&self.hits, "hit")
        } else {
            (&self.misses, "miss")
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::CACHE_LOOKUPS, "cache" => "responses", "result" => result)
            .increment(1);
        found
    }

    pub fn insert(&self, key: String, value: CachedResponse) {
        self.inner.insert(key, value);
    }

    /// Call after a write commits: later reads miss and see the write.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.inner.invalidate_all();
    }

    /// Current figures; settles moka's pending bookkeeping first so the
    /// entry count is exact.
    pub fn stats(&self) -> CacheStats {
        self.inner.run_pending_tasks();
        CacheStats {
            entries: self.inner.entry_count(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

/// How long browsers and CDNs may keep a public read.
pub const PUBLIC_CACHE_CONTROL: &str = "public, max-age=10";
/// For answers only the caller may see (a tutor's own draft).
pub const PRIVATE_CACHE_CONTROL: &str = "private, no-cache";

/// A cached JSON answer of schema `T`, or 304 when the client's copy is
/// current. `PAGED` declares the `X-Total-Count` and `Link` headers.
pub struct CachedJson<T, const PAGED: bool> {
    entry: CachedResponse,
    not_modified: bool,
    cache_control: &'static str,
    _schema: PhantomData<fn() -> T>,
}

impl<T, const PAGED: bool> CachedJson<T, PAGED> {
    pub fn new(
        entry: CachedResponse,
        if_none_match: Option<&str>,
        cache_control: &'static str,
    ) -> Self {
        Self {
            not_modified: entry.matches(if_none_match),
            entry,
            cache_control,
            _schema: PhantomData,
        }
    }
}

impl<T: Send, const PAGED: bool> IntoResponse for CachedJson<T, PAGED> {
    fn into_response(self) -> Response {
        let mut resp = if self.not_modified {
            Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .finish()
        } else {
            Response::builder()
                .status(StatusCode::OK)
                .content_type("application/json; charset=utf-8")
                .body(self.entry.body.plain.clone())
        };
        resp.extensions_mut().insert(self.entry.body);
        let headers = resp.headers_mut();
        headers.insert(header::ETAG, self.entry.etag);
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(self.cache_control),
        );
        for (name, value) in self.entry.headers.iter() {
            headers.insert(name.clone(), value.clone());
        }
        resp
    }
}

fn header_meta<H: Type>(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.to_string(),
        description: Some(description.to_string()),
        required: true,
        deprecated: false,
        schema: H::schema_ref(),
    }
}

impl<T: Type + Send, const PAGED: bool> ApiResponse for CachedJson<T, PAGED> {
    fn meta() -> MetaResponses {
        let validators = || {
            vec![
                header_meta::<String>(
                    "ETag",
                    "Strong validator of the body; send it back in If-None-Match.",
                ),
                header_meta::<String>(
                    "Cache-Control",
                    "How long browsers and CDNs may keep the answer.",
                ),
            ]
        };
        let mut headers = validators();
        if PAGED {
            headers.push(header_meta::<u64>(
                "X-Total-Count",
                "Number of items matching the filters, on all pages.",
            ));
            headers.push(header_meta::<String>(
                "Link",
                "RFC 8288 links to the first, previous, next and last pages.",
            ));
        }
        MetaResponses {
            responses: vec![
                MetaResponse {
                    description: "The resource.",
                    status: Some(200),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: T::schema_ref(),
                    }],
                    headers,
                },
                MetaResponse {
                    description: "Not modified: the client's copy (If-None-Match) is current.",
                    status: Some(304),
                    status_range: None,
                    content: vec![],
                    headers: validators(),
                },
            ],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}
