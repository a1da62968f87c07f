//! The climb profile's own parts: the students the users sign in as, what
//! the server says about itself after the load, and the table of levels.
//!
//! The climb runs the original mix at 100 to 5,000 users, every one from
//! 127.0.0.1 without a forwarding header, against the shipped wemaster.toml.
//! Each user signs in as its own account of a pool (user i as student i
//! modulo the pool), as the users of a school would: the original's k6
//! test shares eight demo accounts among all its users, so at 5,000 users
//! each account drafts about twenty orders a second and meets its own
//! `writes` budget (10 a second), which measures the budget rather than the
//! server. The pool is sized so no account comes near it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::figures::PhaseFigures;
use crate::report::ms;
use crate::verdict::{Check, Status};

/// p95 of all requests at every level, ms (issue 21's bound).
const P95_ALL_MS: f64 = 3_000.0;
/// p95 of every request but sign-ins at every level, ms.
const P95_NOT_SIGN_IN_MS: f64 = 1_000.0;
/// `/api/v1/healthz` p95 at most this many times `/livez`'s...
const HEALTHZ_OVER_LIVEZ: f64 = 3.0;
/// ...or at most this much above it, ms (both are sub-millisecond when idle).
const HEALTHZ_SLACK_MS: f64 = 5.0;

/// Students created for the climb. The mix drafts about 2/9 of its
/// iterations, so 5,000 users sleeping 2 s on average draft about 560
/// orders a second: 2.8 per account of 200, against a budget of 10.
const POOL: usize = 200;
/// `wemaster user create` processes at a time (each hashes one password).
const AT_ONCE: usize = 4;
const PASSWORD: &str = "climb-password-123";

/// Creates the pool's students with the server's own command against the
/// running server's database file, as an operator would, and returns their
/// credentials.
pub async fn create_accounts(
    binary: &Path,
    config: &Path,
    database: &Path,
) -> Result<Vec<(String, String)>> {
    let accounts: Vec<(String, String)> = (1..=POOL)
        .map(|i| (format!("climber{i}@test.com"), PASSWORD.to_owned()))
        .collect();
    let (binary, config, database) = (
        binary.to_path_buf(),
        config.to_path_buf(),
        database.to_path_buf(),
    );
    let emails: Vec<String> = accounts.iter().map(|(email, _)| email.clone()).collect();
    tokio::task::spawn_blocking(move || create_all(&binary, &config, &database, &emails))
        .await
        .context("creating the climb's accounts")??;
    println!(
        "bench: {POOL} students created with `wemaster user create`; user i signs in as student i mod {POOL}"
    );
    Ok(accounts)
}

fn create_all(binary: &Path, config: &Path, database: &Path, emails: &[String]) -> Result<()> {
    for batch in emails.chunks(AT_ONCE) {
        let children = batch
            .iter()
            .map(|email| {
                Command::new(binary)
                    .arg("--config")
                    .arg(config)
                    .args(["user", "create", "--email", email])
                    .env("WEMASTER_DATABASE__PATH", database)
                    .env("WEMASTER_NEW_PASSWORD", PASSWORD)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .with_context(|| format!("starting {} user create", binary.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        for (child, email) in children.into_iter().zip(batch) {
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!(
                    "wemaster user create --email {email}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    }
    Ok(())
}

/// What the server said about itself once the load had stopped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AfterLoad {
    /// `GET /readyz` right after the last phase (0: no answer).
    pub readyz: u16,
    /// `wemaster_rate_limited_total` by class, over the whole run.
    pub rate_limited: BTreeMap<String, u64>,
    /// `wemaster_shed_total` by lane, over the whole run.
    pub shed: BTreeMap<String, u64>,
    /// The server's CPU and memory over the run, in words.
    pub usage: String,
}

/// Asks the server for `/readyz` and its `/metrics` (kept as metrics.txt in
/// the run's folder) once the load is over.
pub async fn after_load(
    client: &reqwest::Client,
    base_url: &str,
    metrics_port: u16,
    out_dir: &Path,
    usage: String,
) -> AfterLoad {
    let readyz = match client.get(format!("{base_url}/readyz")).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    };
    let metrics = match client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
    {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let _ = std::fs::write(out_dir.join("metrics.txt"), &metrics);
    AfterLoad {
        readyz,
        rate_limited: by_label(&metrics, "wemaster_rate_limited_total", "class"),
        shed: by_label(&metrics, "wemaster_shed_total", "lane"),
        usage,
    }
}

/// The values of counter `name` by its one `label`, from an exposition.
fn by_label(exposition: &str, name: &str, label: &str) -> BTreeMap<String, u64> {
    let prefix = format!("{name}{{{label}=\"");
    exposition
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (value_of_label, rest) = rest.split_once('"')?;
            let count = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
            Some((value_of_label.to_owned(), count as u64))
        })
        .collect()
}

/// The climb's table: one row per level of users.
pub fn table(phases: &[PhaseFigures]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| users | requests | req/s | p95 all | p95 not sign-in | p95 sign-in | /healthz p95 | /livez p95 | probes failed | shed sign-ins (503) | 429 | other 5xx | server cores |"
    );
    let _ = writeln!(out, "|{}", " --- |".repeat(13));
    for phase in phases.iter().filter(|p| p.probes.is_some()) {
        let probes = phase.probes.as_ref();
        let sign_in = phase
            .endpoint(&format!("POST {}", crate::flows::LOGIN))
            .map_or(0.0, |e| e.latency.p95);
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            phase.max_users,
            phase.all.requests,
            phase.all.rps,
            ms(phase.all.latency.p95),
            ms(phase.outside_sign_in.p95),
            ms(sign_in),
            probes.map_or("-".into(), |p| ms(p.healthz.latency.p95)),
            probes.map_or("-".into(), |p| ms(p.livez.latency.p95)),
            probes.map_or(0, |p| p.healthz.failed + p.livez.failed),
            phase.shed_sign_ins,
            phase.rate_limited,
            other_5xx(phase),
            phase.server_cores.map_or("-".into(), |c| format!("{c:.2}")),
        );
    }
    out
}

/// 5xx answers other than shed sign-ins.
pub fn other_5xx(phase: &PhaseFigures) -> usize {
    let all_5xx: usize = phase
        .all
        .status_codes
        .range(500..600)
        .map(|(_, &n)| n)
        .sum();
    all_5xx.saturating_sub(phase.shed_sign_ins)
}

/// The climb's thresholds at every level; all gate, the latency bounds only
/// with `latency_gates`.
pub fn checks(
    figures: &[PhaseFigures],
    after: Option<&AfterLoad>,
    latency_gates: bool,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut check = |rule: String, metric: String, observed: f64, unit, pass: bool, note| {
        let gating = latency_gates || unit != "ms";
        checks.push(Check {
            source: "ours",
            rule,
            metric,
            observed: Some(observed),
            unit,
            status: Status::of(pass),
            gating,
            note,
        });
    };
    for phase in figures.iter().filter(|p| p.probes.is_some()) {
        let users = phase.max_users;
        let key = &phase.key;
        let other = other_5xx(phase);
        let failed = phase.all.failed;
        check(
            format!("{users} users: no failed request (shed sign-ins apart)"),
            format!("{key}.http_req_failed.count"),
            failed as f64,
            "count",
            phase.all.requests > 0 && failed == 0,
            format!("{failed} of {} requests", phase.all.requests),
        );
        check(
            format!("{users} users: no 5xx but shed sign-ins"),
            format!("{key}.http_reqs_5xx"),
            other as f64,
            "count",
            other == 0,
            String::new(),
        );
        check(
            format!("{users} users: no 429"),
            format!("{key}.http_reqs_429"),
            phase.rate_limited as f64,
            "count",
            phase.rate_limited == 0,
            String::new(),
        );
        check(
            format!("{users} users: p95 of all requests < {P95_ALL_MS} ms"),
            format!("{key}.http_req_duration.p95"),
            phase.all.latency.p95,
            "ms",
            phase.all.latency.p95 < P95_ALL_MS,
            String::new(),
        );
        check(
            format!("{users} users: p95 of every request but sign-in < {P95_NOT_SIGN_IN_MS} ms"),
            format!("{key}.http_req_duration.p95{{not sign-in}}"),
            phase.outside_sign_in.p95,
            "ms",
            phase.outside_sign_in.p95 < P95_NOT_SIGN_IN_MS,
            String::new(),
        );
        if let Some(probes) = &phase.probes {
            let (health, live) = (probes.healthz.latency.p95, probes.livez.latency.p95);
            check(
                format!(
                    "{users} users: /healthz p95 <= {HEALTHZ_OVER_LIVEZ} x /livez p95 (or within {HEALTHZ_SLACK_MS} ms)"
                ),
                format!("{key}.probe.healthz.p95"),
                health,
                "ms",
                health <= live * HEALTHZ_OVER_LIVEZ || health <= live + HEALTHZ_SLACK_MS,
                format!("/livez p95 {}", ms(live)),
            );
            let failed = probes.healthz.failed + probes.livez.failed;
            check(
                format!("{users} users: every probe answered 200"),
                format!("{key}.probe.failed"),
                failed as f64,
                "count",
                probes.healthz.polls > 0 && failed == 0,
                format!("{} + {} polls", probes.healthz.polls, probes.livez.polls),
            );
        }
    }
    let readyz = after.map_or(0, |a| a.readyz);
    check(
        "the server is ready after the climb".into(),
        "after.readyz".into(),
        f64::from(readyz),
        "status",
        readyz == 200,
        String::new(),
    );
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_their_label() {
        let exposition = "# TYPE wemaster_rate_limited_total counter\n\
            wemaster_rate_limited_total{class=\"writes\"} 32115\n\
            wemaster_rate_limited_total{class=\"share\"} 0\n\
            wemaster_shed_total{lane=\"hashing\"} 79460\n";
        let classes = by_label(exposition, "wemaster_rate_limited_total", "class");
        assert_eq!(classes.get("writes"), Some(&32_115));
        assert_eq!(classes.get("share"), Some(&0));
        assert_eq!(classes.len(), 2);
        let lanes = by_label(exposition, "wemaster_shed_total", "lane");
        assert_eq!(lanes.get("hashing"), Some(&79_460));
    }
}
