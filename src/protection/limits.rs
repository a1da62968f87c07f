//! Token-bucket rate limits (governor's GCRA) per route class. Each class
//! keeps one bucket per key (a user id, or a client address for anonymous
//! calls) in a bounded moka cache: idle keys are evicted once their bucket
//! would be full again anyway, and a flood of new keys cannot grow memory
//! past `rate_limit.max_keys` per class.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter, clock::DefaultClock, state::InMemoryState, state::NotKeyed};
use moka::sync::Cache;

use crate::config::{ClassLimit, RateLimitConfig};

/// Route classes with their own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Login, register, refresh, logout, password reset.
    Auth,
    /// Reads anyone may make.
    Public,
    /// Changes: orders, offerings, checkout actions.
    Writes,
    /// Admin views.
    Admin,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Auth => "auth",
            Class::Public => "public",
            Class::Writes => "writes",
            Class::Admin => "admin",
        }
    }
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

struct ClassLimiter {
    quota: Quota,
    buckets: Cache<String, Arc<Bucket>>,
}

impl ClassLimiter {
    fn new(limit: &ClassLimit, max_keys: u64) -> Self {
        let burst = NonZeroU32::new(limit.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let per_minute = limit.per_minute.max(1);
        let period = Duration::from_nanos(60_000_000_000 / u64::from(per_minute));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        // A bucket idle this long is full again; forgetting it changes nothing.
        let idle = quota.burst_size_replenished_in() + Duration::from_secs(1);
        Self {
            quota,
            buckets: Cache::builder()
                .max_capacity(max_keys)
                .time_to_idle(idle)
                .build(),
        }
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    /// Bucket size (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests left right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Seconds until the bucket is full again (`RateLimit-Reset`).
    pub reset_seconds: u64,
    /// Seconds until the next request may pass (`Retry-After`), when refused.
    pub retry_after_seconds: u64,
}

/// Every class's limiter.
pub struct RateLimits {
    enabled: bool,
    auth: ClassLimiter,
    public: ClassLimiter,
    writes: ClassLimiter,
    admin: ClassLimiter,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            enabled: config.enabled,
            auth: ClassLimiter::new(&config.auth, config.max_keys),
            public: ClassLimiter::new(&config.public, config.max_keys),
            writes: ClassLimiter::new(&config.writes, config.max_keys),
            admin: ClassLimiter::new(&config.admin, config.max_keys),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn class(&self, class: Class) -> &ClassLimiter {
        match class {
            Class::Auth => &self.auth,
            Class::Public => &self.public,
            Class::Writes => &self.writes,
            Class::Admin => &self.admin,
        }
    }

    /// Takes one token from `key`'s bucket in `class`.
    pub fn check(&self, class: Class, key: &str) -> Decision {
        let limiter = self.class(class);
        let bucket = limiter.buckets.get_with_by_ref(key, || {
            Arc::new(
                RateLimiter::direct(limiter.quota).with_middleware::<StateInformationMiddleware>(),
            )
        });
        let limit = limiter.quota.burst_size().get();
        let interval = limiter.quota.replenish_interval();
        match bucket.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit,
                    remaining,
                    reset_seconds: ceil_seconds(interval * (limit - remaining)),
                    retry_after_seconds: 0,
                }
            }
            Err(not_until) => {
                let wait =
                    not_until.wait_time_from(governor::clock::Clock::now(&DefaultClock::default()));
                Decision {
                    allowed: false,
                    limit,
                    remaining: 0,
                    reset_seconds: ceil_seconds(interval * limit),
                    retry_after_seconds: ceil_seconds(wait).max(1),
                }
            }
        }
    }

    /// Keys held for `class` (after pending evictions ran).
    pub fn keys(&self, class: Class) -> u64 {
        let buckets = &self.class(class).buckets;
        buckets.run_pending_tasks();
        buckets.entry_count()
    }
}

fn ceil_seconds(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimitConfig;

    fn config(per_minute: u32, burst: u32, max_keys: u64) -> RateLimitConfig {
        let limit = ClassLimit { per_minute, burst };
        RateLimitConfig {
            max_keys,
            auth: limit.clone(),
            public: limit.clone(),
            writes: limit.clone(),
            admin: limit,
            ..RateLimitConfig::default()
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_then_refills() {
        // 1200 per minute: one token every 50 ms.
        let limits = RateLimits::new(&config(1_200, 3, 100));
        for left in [2, 1, 0] {
            let d = limits.check(Class::Auth, "k");
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
            assert_eq!(d.limit, 3);
        }
        let refused = limits.check(Class::Auth, "k");
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_seconds, 1);
        // Other keys and other classes are separate.
        assert!(limits.check(Class::Auth, "other").allowed);
        assert!(limits.check(Class::Public, "k").allowed);
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            limits.check(Class::Auth, "k").allowed,
            "one token back after 50 ms"
        );
        assert!(!limits.check(Class::Auth, "k").allowed);
    }

    #[test]
    fn memory_stays_bounded_under_many_distinct_keys() {
        let limits = RateLimits::new(&config(60, 5, 1_000));
        for i in 0..20_000 {
            limits.check(
                Class::Public,
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            );
        }
        let held = limits.keys(Class::Public);
        assert!(held <= 1_000, "{held} keys held");
    }
}
