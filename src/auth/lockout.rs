//! Sign-in lockout, the way large identity providers do it ("smart
//! lockout"), kept in the database so a restart forgets nothing:
//!
//! - Failures are counted per account and client address. Past
//!   `login_free_failures` in a row, that address is locked out of that
//!   account for a time that doubles with each further failure, up to a
//!   cap. Other addresses are not affected.
//! - Failures from addresses the account never signed in from (unfamiliar
//!   ones) are also summed over all of them; past
//!   `login_unfamiliar_free_failures`, every unfamiliar address is locked
//!   out of the account the same way. Addresses the owner signed in from
//!   stay open, so an attacker cannot lock the owner out of them.
//!
//! While locked, a try is refused without checking the password and is not
//! counted. A successful sign-in clears its address's count and makes the
//! address familiar; a password reset or `wemaster user unlock` clears
//! every count of the account. Unknown emails are counted the same way (no
//! address is familiar to them), so no answer tells accounts apart.
//! Counts idle for an hour past the longest lockout are forgotten.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::clock::{Clock, parse};
use crate::config::RateLimitConfig;

/// The scope that sums failures from every unfamiliar address.
const UNFAMILIAR: &str = "*";
/// Familiar addresses kept per account, most recently used first.
const FAMILIAR_KEPT: i64 = 20;

/// The thresholds and lockout times, from `[rate_limit]`.
#[derive(Debug, Clone)]
pub struct LockoutPolicy {
    free_failures: u32,
    unfamiliar_free_failures: u32,
    base: Duration,
    max: Duration,
}

impl LockoutPolicy {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            free_failures: config.login_free_failures,
            unfamiliar_free_failures: config.login_unfamiliar_free_failures,
            base: Duration::from_millis(config.login_lockout_base_ms),
            max: Duration::from_secs(config.login_lockout_max_seconds),
        }
    }

    /// The lockout after `failures` in a row, when past `free`.
    fn lock(&self, failures: u32, free: u32) -> Option<Duration> {
        let past = failures.checked_sub(free)?.checked_sub(1)?;
        Some(self.base.saturating_mul(1u32 << past.min(30)).min(self.max))
    }

    /// Counts idle this long are forgotten.
    fn forget_after(&self) -> Duration {
        self.max + Duration::from_secs(3_600)
    }
}

/// Where a sign-in attempt stands before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The account has signed in from this address before.
    pub familiar: bool,
    /// Seconds until this address may try again, when locked out.
    pub locked_for: Option<u64>,
}

/// The standing of `account` (a normalised email) tried from `address`;
/// `user_id` is the account's, when one has that email.
pub fn standing(
    conn: &Connection,
    clock: &Clock,
    account: &str,
    address: &str,
    user_id: Option<&str>,
) -> rusqlite::Result<Standing> {
    let familiar = match user_id {
        Some(user_id) => conn
            .prepare_cached("SELECT 1 FROM familiar_addresses WHERE user_id = ?1 AND address = ?2")?
            .query_row(params![user_id, address], |_| Ok(()))
            .optional()?
            .is_some(),
        None => false,
    };
    let mut until: Option<String> = None;
    let scopes = if familiar {
        vec![address]
    } else {
        vec![address, UNFAMILIAR]
    };
    for scope in scopes {
        let locked: Option<String> = conn
            .prepare_cached(
                "SELECT locked_until FROM login_failures
                 WHERE account = ?1 AND scope = ?2 AND locked_until IS NOT NULL",
            )?
            .query_row(params![account, scope], |row| row.get(0))
            .optional()?;
        until = until.max(locked);
    }
    let now = clock.now();
    let locked_for = until
        .as_deref()
        .and_then(parse)
        .filter(|until| *until > now)
        .map(|until| {
            let ms = (until - now).whole_milliseconds().max(0) as u64;
            ms.div_ceil(1000).max(1)
        });
    Ok(Standing {
        familiar,
        locked_for,
    })
}

/// Counts a failed sign-in of `account` from `address`, locking past the
/// free failures, and forgets idle counts.
pub fn failed(
    conn: &Connection,
    clock: &Clock,
    policy: &LockoutPolicy,
    account: &str,
    address: &str,
    familiar: bool,
) -> rusqlite::Result<()> {
    let now = clock.stamp();
    let forget_before = crate::clock::format(clock.now() - policy.forget_after());
    conn.prepare_cached("DELETE FROM login_failures WHERE last_failure_at < ?1")?
        .execute([&forget_before])?;
    let mut scopes = vec![(address, policy.free_failures)];
    if !familiar {
        scopes.push((UNFAMILIAR, policy.unfamiliar_free_failures));
    }
    for (scope, free) in scopes {
        let failures: u32 = conn
            .prepare_cached(
                "SELECT failures FROM login_failures WHERE account = ?1 AND scope = ?2",
            )?
            .query_row(params![account, scope], |row| row.get(0))
            .optional()?
            .unwrap_or(0u32)
            .saturating_add(1);
        let locked_until = policy.lock(failures, free).map(|d| clock.stamp_in(d));
        conn.prepare_cached(
            "INSERT INTO login_failures (account, scope, failures, last_failure_at, locked_until)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (account, scope) DO UPDATE SET
                 failures = excluded.failures,
                 last_failure_at = excluded.last_failure_at,
                 locked_until = excluded.locked_until",
        )?
        .execute(params![account, scope, failures, now, locked_until])?;
    }
    Ok(())
}

/// A successful sign-in: clears the address's count and makes it familiar
/// (the account keeps its most recent few).
pub fn succeeded(
    conn: &Connection,
    clock: &Clock,
    account: &str,
    address: &str,
    user_id: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM login_failures WHERE account = ?1 AND scope = ?2")?
        .execute(params![account, address])?;
    conn.prepare_cached(
        "INSERT INTO familiar_addresses (user_id, address, last_seen_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id, address) DO UPDATE SET last_seen_at = excluded.last_seen_at",
    )?
    .execute(params![user_id, address, clock.stamp()])?;
    conn.prepare_cached(
        "DELETE FROM familiar_addresses WHERE user_id = ?1 AND address NOT IN (
             SELECT address FROM familiar_addresses WHERE user_id = ?1
             ORDER BY last_seen_at DESC LIMIT ?2)",
    )?
    .execute(params![user_id, FAMILIAR_KEPT])?;
    Ok(())
}

/// Clears every count and lock of `account` (a normalised email); returns
/// how many addresses were locked out.
pub fn clear(conn: &Connection, clock: &Clock, account: &str) -> rusqlite::Result<i64> {
    let locked: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM login_failures
             WHERE account = ?1 AND locked_until > ?2",
        )?
        .query_row(params![account, clock.stamp()], |row| row.get(0))?;
    conn.prepare_cached("DELETE FROM login_failures WHERE account = ?1")?
        .execute([account])?;
    Ok(locked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_double_past_the_free_failures_up_to_the_cap() {
        let policy = LockoutPolicy::new(&RateLimitConfig {
            login_free_failures: 3,
            login_lockout_base_ms: 1_000,
            login_lockout_max_seconds: 5,
            ..RateLimitConfig::default()
        });
        let locks: Vec<_> = (1..=8)
            .map(|n| policy.lock(n, 3).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            locks,
            [
                None,
                None,
                None,
                Some(1),
                Some(2),
                Some(4),
                Some(5),
                Some(5)
            ]
        );
        assert_eq!(policy.lock(u32::MAX, 0), Some(Duration::from_secs(5)));
    }
}
