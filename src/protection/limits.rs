//! What an address or a user is charged for, as token buckets (governor's
//! GCRA) kept in bounded moka caches: idle keys are forgotten once their
//! bucket would be full again anyway, and a flood of new keys cannot grow
//! memory past `rate_limit.max_keys` per kind.
//!
//! - Budgets: writes and admin views, per signed-in user (per address when
//!   anonymous), sized so a person or a scripted test never meets them;
//!   sign-ups per address, sized so a classroom behind one address never
//!   meets it.
//! - Failures: a client address is charged for failed sign-ins, refused
//!   sign-ups and bad tokens, never for successes; once its bucket is empty
//!   the address is refused on the credential routes until a token drips
//!   back (the "suspicious IP throttling" of hosted identity providers).
//!
//! Cheap reads are not rationed per address at all: many honest people can
//! share one address. Capacity is protected by the in-flight caps instead
//! (`admission.rs`).

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter, state::InMemoryState, state::NotKeyed};
use moka::sync::Cache;

use crate::config::{ClassLimit, RateLimitConfig};

/// Route classes with a per-user budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Changes: orders, offerings, checkout actions.
    Writes,
    /// Admin views.
    Admin,
    /// Sign-ups, per client address whoever is signed in.
    Signups,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Writes => "writes",
            Class::Admin => "admin",
            Class::Signups => "signups",
        }
    }
}

type Bucket<C> = RateLimiter<NotKeyed, InMemoryState, C, StateInformationMiddleware>;

fn quota(limit: &ClassLimit) -> Quota {
    let burst = NonZeroU32::new(limit.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let per_minute = limit.per_minute.max(1);
    let period = Duration::from_nanos(60_000_000_000 / u64::from(per_minute));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// A cache of per-key entries forgotten once idle for `idle`.
fn keyed<V: Clone + Send + Sync + 'static>(max_keys: u64, idle: Duration) -> Cache<String, V> {
    Cache::builder()
        .max_capacity(max_keys)
        .time_to_idle(idle)
        .build()
}

struct ClassLimiter {
    quota: Quota,
    buckets: Cache<String, Arc<Bucket<DefaultClock>>>,
}

impl ClassLimiter {
    fn new(limit: &ClassLimit, max_keys: u64) -> Self {
        let quota = quota(limit);
        // A bucket idle this long is full again; forgetting it changes nothing.
        let idle = quota.burst_size_replenished_in() + Duration::from_secs(1);
        Self {
            quota,
            buckets: keyed(max_keys, idle),
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

/// The budgets and the failure throttle.
pub struct RateLimits {
    enabled: bool,
    writes: ClassLimiter,
    admin: ClassLimiter,
    signups: ClassLimiter,
    /// Failures per client address.
    pub failures: FailureThrottle,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            enabled: config.enabled,
            writes: ClassLimiter::new(&config.writes, config.max_keys),
            admin: ClassLimiter::new(&config.admin, config.max_keys),
            signups: ClassLimiter::new(&config.signups, config.max_keys),
            failures: FailureThrottle::new(
                &config.failures,
                config.max_keys,
                DefaultClock::default(),
            ),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn class(&self, class: Class) -> &ClassLimiter {
        match class {
            Class::Writes => &self.writes,
            Class::Admin => &self.admin,
            Class::Signups => &self.signups,
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
                let wait = not_until.wait_time_from(DefaultClock::default().now());
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

/// One address's failures: its bucket, and until when it is refused.
struct Failures<C: Clock> {
    bucket: Bucket<C>,
    refused_until: Mutex<Option<C::Instant>>,
}

/// Failures charged per client address. Charging never refuses the request
/// that failed (it was answered already); it decides whether the address's
/// next credential attempts are refused. Time comes from `C`, so tests move
/// a fake clock instead of sleeping.
pub struct FailureThrottle<C: Clock = DefaultClock> {
    quota: Quota,
    clock: C,
    entries: Cache<String, Arc<Failures<C>>>,
}

impl<C> FailureThrottle<C>
where
    C: Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    pub fn new(limit: &ClassLimit, max_keys: u64, clock: C) -> Self {
        let quota = quota(limit);
        let idle = quota.burst_size_replenished_in() + Duration::from_secs(1);
        Self {
            quota,
            clock,
            entries: keyed(max_keys, idle),
        }
    }

    /// Counts one failure from `address`. When that spends its last token
    /// (or there was none), the address is refused until the next one.
    pub fn charge(&self, address: &str) {
        let entry = self.entries.get_with_by_ref(address, || {
            Arc::new(Failures {
                bucket: RateLimiter::direct_with_clock(self.quota, self.clock.clone())
                    .with_middleware::<StateInformationMiddleware>(),
                refused_until: Mutex::new(None),
            })
        });
        let now = self.clock.now();
        let until = match entry.bucket.check() {
            Ok(snapshot) if snapshot.remaining_burst_capacity() > 0 => return,
            // The last token: the next one drips back within one interval.
            Ok(_) => now + self.quota.replenish_interval().into(),
            Err(not_until) => now + not_until.wait_time_from(now).into(),
        };
        if let Ok(mut refused) = entry.refused_until.lock() {
            *refused = Some(until);
        }
    }

    /// `Some(seconds to wait)` while `address` is refused.
    pub fn retry_after(&self, address: &str) -> Option<u64> {
        let entry = self.entries.get(address)?;
        let until = (*entry.refused_until.lock().ok()?)?;
        let now = self.clock.now();
        (until > now).then(|| ceil_seconds(until.duration_since(now).into()).max(1))
    }
}

fn ceil_seconds(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimitConfig;
    use governor::clock::FakeRelativeClock;

    fn config(per_minute: u32, burst: u32, max_keys: u64) -> RateLimitConfig {
        let limit = ClassLimit { per_minute, burst };
        RateLimitConfig {
            max_keys,
            failures: limit.clone(),
            writes: limit.clone(),
            admin: limit,
            ..RateLimitConfig::default()
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        // One token a minute: nothing drips back during the test.
        let limits = RateLimits::new(&config(1, 3, 100));
        for left in [2, 1, 0] {
            let d = limits.check(Class::Writes, "k");
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
            assert_eq!(d.limit, 3);
        }
        let refused = limits.check(Class::Writes, "k");
        assert!(!refused.allowed);
        assert!((59..=60).contains(&refused.retry_after_seconds));
        // Other keys and other classes are separate.
        assert!(limits.check(Class::Writes, "other").allowed);
        assert!(limits.check(Class::Admin, "k").allowed);
    }

    #[test]
    fn failures_refuse_an_address_once_spent_and_drip_back() {
        let clock = FakeRelativeClock::default();
        // Three failures at once, then one every 6 s.
        let throttle = FailureThrottle::new(
            &ClassLimit {
                per_minute: 10,
                burst: 3,
            },
            100,
            clock.clone(),
        );
        throttle.charge("ip:a");
        throttle.charge("ip:a");
        assert_eq!(throttle.retry_after("ip:a"), None, "two of three spent");
        throttle.charge("ip:a");
        assert_eq!(throttle.retry_after("ip:a"), Some(6), "the last one spent");
        assert_eq!(
            throttle.retry_after("ip:b"),
            None,
            "other addresses untouched"
        );
        clock.advance(Duration::from_secs(5));
        assert_eq!(throttle.retry_after("ip:a"), Some(1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(throttle.retry_after("ip:a"), None, "one token back");
        throttle.charge("ip:a");
        assert_eq!(throttle.retry_after("ip:a"), Some(6), "and spent again");
        // A failure while refused (a race) pushes the refusal no further
        // than the next token.
        throttle.charge("ip:a");
        assert_eq!(throttle.retry_after("ip:a"), Some(6));
        clock.advance(Duration::from_secs(60));
        assert_eq!(throttle.retry_after("ip:a"), None);
    }

    #[test]
    fn memory_stays_bounded_under_many_distinct_keys() {
        let limits = RateLimits::new(&config(60, 5, 1_000));
        for i in 0..20_000 {
            limits.check(
                Class::Writes,
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            );
        }
        let held = limits.keys(Class::Writes);
        assert!(held <= 1_000, "{held} keys held");
    }
}
