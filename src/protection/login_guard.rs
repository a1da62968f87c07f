//! Brute-force defence on login, per account and independent of the
//! caller's address: after a few consecutive failures an account is locked
//! for a time that doubles with each further failure, up to a cap. Only
//! failures count, so honest logins are never slowed; a success clears the
//! record. Unknown emails are tracked the same way, so the answer reveals
//! nothing about which accounts exist.

use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::config::RateLimitConfig;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    locked_until: Option<Instant>,
}

pub struct LoginGuard {
    free_failures: u32,
    base: Duration,
    max: Duration,
    records: Cache<String, Record>,
}

impl LoginGuard {
    pub fn new(config: &RateLimitConfig) -> Self {
        let max = Duration::from_secs(config.login_lockout_max_seconds);
        Self {
            free_failures: config.login_free_failures,
            base: Duration::from_millis(config.login_lockout_base_ms),
            max,
            // A record outlives the longest lockout, then is forgotten.
            records: Cache::builder()
                .max_capacity(config.max_keys)
                .time_to_idle(max + Duration::from_secs(3_600))
                .build(),
        }
    }

    /// `Some(seconds to wait)` while the account is locked at `now`.
    pub fn locked_for(&self, account: &str, now: Instant) -> Option<u64> {
        let until = self.records.get(account)?.locked_until?;
        (until > now).then(|| until.duration_since(now).as_millis().div_ceil(1000) as u64)
    }

    /// Counts a failed login at `now`, locking the account past the free
    /// failures.
    pub fn failed(&self, account: &str, now: Instant) {
        let mut record = self.records.get(account).unwrap_or(Record {
            failures: 0,
            locked_until: None,
        });
        record.failures = record.failures.saturating_add(1);
        if record.failures > self.free_failures {
            let doublings = (record.failures - self.free_failures - 1).min(30);
            let lock = self.base.saturating_mul(1u32 << doublings).min(self.max);
            record.locked_until = Some(now + lock);
        }
        self.records.insert(account.to_string(), record);
    }

    /// A successful login clears the record.
    pub fn succeeded(&self, account: &str) {
        self.records.invalidate(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> LoginGuard {
        LoginGuard::new(&RateLimitConfig {
            login_free_failures: 3,
            login_lockout_base_ms: 1_000,
            login_lockout_max_seconds: 5,
            ..RateLimitConfig::default()
        })
    }

    #[test]
    fn locks_after_free_failures_with_doubling_up_to_the_cap() {
        let g = guard();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(g.locked_for("a@x", t0), None);
            g.failed("a@x", t0);
        }
        assert_eq!(g.locked_for("a@x", t0), None, "three free failures");
        g.failed("a@x", t0);
        assert_eq!(g.locked_for("a@x", t0), Some(1));
        let t1 = t0 + Duration::from_millis(1_001);
        assert_eq!(g.locked_for("a@x", t1), None, "lock over");
        g.failed("a@x", t1);
        assert_eq!(g.locked_for("a@x", t1), Some(2), "doubled");
        g.failed("a@x", t1);
        g.failed("a@x", t1);
        g.failed("a@x", t1);
        assert_eq!(g.locked_for("a@x", t1), Some(5), "capped");
        assert_eq!(g.locked_for("b@x", t1), None, "other accounts untouched");
        g.succeeded("a@x");
        assert_eq!(g.locked_for("a@x", t1), None);
    }
}
