//! The limits the abuse parts expect: `[rate_limit]` of the shipped
//! wemaster.toml (which lists every built-in default), with whatever
//! bench/wemaster.bench.toml sets over it, as the server itself layers them.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use toml::Table;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Limits {
    /// Failed logins of one account from one address that cost nothing; the
    /// next one locks that address out of the account.
    pub login_free_failures: u32,
    /// Failed logins of one account from all the addresses it never signed
    /// in from, summed, that cost nothing; the next one locks all of those
    /// out (not the addresses it signed in from).
    pub login_unfamiliar_free_failures: u32,
    /// The first lockout, in ms; each further failure doubles it.
    pub login_lockout_base_ms: u64,
    /// The longest lockout, in seconds.
    pub login_lockout_max_seconds: u64,
    /// The per-address failure budget.
    pub failures: Bucket,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Bucket {
    pub per_minute: u32,
    pub burst: u32,
}

impl Limits {
    /// Reads `[rate_limit]` of `shipped`, then of `bench` over it.
    pub fn read(shipped: &Path, bench: &Path) -> Result<Limits> {
        let text = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        Limits::layered(&text(shipped)?, &text(bench)?)
            .with_context(|| format!("the rate limits of {}", shipped.display()))
    }

    fn layered(shipped: &str, bench: &str) -> Result<Limits> {
        let section = |text: &str| -> Result<Table> {
            let mut file: Table = toml::from_str(text)?;
            Ok(match file.remove("rate_limit") {
                Some(toml::Value::Table(table)) => table,
                _ => Table::new(),
            })
        };
        let mut limits = section(shipped)?;
        overlay(&mut limits, section(bench)?);
        Ok(limits.try_into()?)
    }

    /// The `nth` lockout (from 1) of an account failing on and on: the base,
    /// doubled for each lockout before it, at most the cap.
    pub fn lockout(&self, nth: u32) -> Duration {
        let doublings = nth.saturating_sub(1).min(30);
        Duration::from_millis(self.login_lockout_base_ms)
            .saturating_mul(1 << doublings)
            .min(Duration::from_secs(self.login_lockout_max_seconds))
    }
}

/// Sets every key of `over` in `base`, merging tables key by key.
fn overlay(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over)) => overlay(inner, over),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = r#"
        [server]
        addr = "127.0.0.1:3002"
        [rate_limit]
        enabled = true
        login_free_failures = 5
        login_unfamiliar_free_failures = 20
        login_lockout_base_ms = 1000
        login_lockout_max_seconds = 900
        [rate_limit.failures]
        per_minute = 10
        burst = 30
    "#;

    #[test]
    fn the_bench_config_overrides_the_shipped_defaults_key_by_key() {
        let bench = "[rate_limit]\nenabled = true\n[rate_limit.failures]\nburst = 12\n";
        let limits = Limits::layered(SHIPPED, bench).unwrap();
        assert_eq!(limits.login_free_failures, 5);
        assert_eq!(
            limits.failures,
            Bucket {
                per_minute: 10,
                burst: 12
            }
        );
    }

    #[test]
    fn a_bench_config_without_limits_keeps_the_shipped_ones() {
        let limits = Limits::layered(SHIPPED, "[log]\nlevel = \"warn\"\n").unwrap();
        assert_eq!(limits.failures.burst, 30);
        assert_eq!(limits.login_lockout_base_ms, 1000);
    }

    #[test]
    fn lockouts_double_up_to_the_cap() {
        let limits = Limits {
            login_lockout_max_seconds: 5,
            ..Limits::layered(SHIPPED, "").unwrap()
        };
        assert_eq!(limits.lockout(1), Duration::from_secs(1));
        assert_eq!(limits.lockout(2), Duration::from_secs(2));
        assert_eq!(limits.lockout(3), Duration::from_secs(4));
        assert_eq!(limits.lockout(4), Duration::from_secs(5));
        assert_eq!(limits.lockout(200), Duration::from_secs(5));
    }
}
