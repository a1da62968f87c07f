//! The run's outputs: the k6-style text summary, k6-summary.csv
//! (metric,value,unit,status) and summary.json with every figure.

use std::fmt::Write as _;

use serde::Serialize;

use crate::calibrate::{Argon2Timing, CatalogueProbe, LoginProbe};
use crate::climb::AfterLoad;
use crate::figures::{Latency, PhaseFigures, Requests};
use crate::server::Stopped;
use crate::verdict::{Check, Status};

/// Everything one invocation measured; summary.json is this, serialized.
#[derive(Debug, Serialize)]
pub struct Run {
    pub started_utc: String,
    pub command: String,
    pub profile: &'static str,
    pub rate_limits: bool,
    /// Where the virtual users connect from.
    pub client_addresses: String,
    pub cores: usize,
    pub closed_loop_users: usize,
    pub server_binary: String,
    pub server_ready_seconds: f64,
    /// The server's VmRSS once ready (migrations run, demo data seeded), bytes.
    pub server_rss_at_ready: Option<u64>,
    pub argon2: Argon2Timing,
    pub login_probe: LoginProbe,
    pub catalogue_probe: CatalogueProbe,
    pub phases: Vec<PhaseFigures>,
    pub peak_rss_bytes: Option<u64>,
    /// The climb: what the server said about itself after the load.
    pub after_load: Option<AfterLoad>,
    pub server_stop: Option<Stopped>,
    pub checks: Vec<Check>,
    pub passed: bool,
}

pub fn ms(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.2}s", value / 1000.0)
    } else if value >= 10.0 {
        format!("{value:.1}ms")
    } else {
        format!("{value:.2}ms")
    }
}

/// Bytes as MB (10^6), or "unknown".
pub fn megabytes(bytes: Option<u64>) -> String {
    bytes.map_or("unknown".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

pub fn dotted(label: &str) -> String {
    format!("{label:.<34}:")
}

pub fn latency_line(latency: &Latency) -> String {
    format!(
        "avg={} min={} med={} p(90)={} p(95)={} p(99)={} max={}",
        ms(latency.avg),
        ms(latency.min),
        ms(latency.p50),
        ms(latency.p90),
        ms(latency.p95),
        ms(latency.p99),
        ms(latency.max)
    )
}

fn statuses(requests: &Requests) -> String {
    requests
        .status_codes
        .iter()
        .map(|(code, count)| format!("{code}x{count}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text summary, in k6's terms: http_req_duration, http_req_failed,
/// http_reqs and iterations, then per endpoint and per scenario, then the
/// thresholds.
pub fn text(run: &Run) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "WeMaster bench · profile {} · rate limits {} · {} cores · {}",
        run.profile,
        if run.rate_limits { "on" } else { "off" },
        run.cores,
        run.started_utc
    );
    let _ = writeln!(w, "command: {}", run.command);
    let _ = writeln!(w, "clients: {}", run.client_addresses);
    let _ = writeln!(
        w,
        "server: {} (ready in {:.1} s, RSS then {}), peak RSS {}",
        run.server_binary,
        run.server_ready_seconds,
        megabytes(run.server_rss_at_ready),
        megabytes(run.peak_rss_bytes)
    );
    let _ = writeln!(
        w,
        "argon2id m={} t={} p={}: one verification {} in-process, single thread (fastest of {}, median {}), {:.1}/s",
        run.argon2.params.memory_kib,
        run.argon2.params.iterations,
        run.argon2.params.parallelism,
        ms(run.argon2.verify_ms),
        run.argon2.samples_ms.len(),
        ms(run.argon2.median_ms),
        run.argon2.per_second_single_thread
    );
    let _ = writeln!(
        w,
        "idle server, sequential logins: median {} (statuses {:?})",
        ms(run.login_probe.median_ms),
        run.login_probe.statuses
    );
    let _ = writeln!(
        w,
        "catalogue before the load: GET /api/v1/offerings -> {}{}",
        run.catalogue_probe.status,
        run.catalogue_probe
            .offerings
            .map_or(String::new(), |n| format!(", {n} offerings"))
    );

    for phase in &run.phases {
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "█ {}: {} — {} (max {} users, {:.1} s measured)",
            phase.key, phase.title, phase.shape, phase.max_users, phase.seconds
        );
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "  {} {}",
            dotted("http_req_duration"),
            latency_line(&phase.all.latency)
        );
        let _ = writeln!(
            w,
            "  {} {:.2}% {} out of {}",
            dotted("http_req_failed"),
            phase.all.error_rate,
            phase.all.failed,
            phase.all.requests
        );
        let _ = writeln!(
            w,
            "  {} {} {:.1}/s (ok {:.1}/s)",
            dotted("http_reqs"),
            phase.all.requests,
            phase.all.rps,
            phase.all.ok_rps
        );
        let iterations: usize = phase
            .scenarios
            .iter()
            .filter(|s| s.name != "setup")
            .map(|s| s.iterations)
            .sum();
        let _ = writeln!(
            w,
            "  {} {} {:.1}/s",
            dotted("iterations"),
            iterations,
            if phase.seconds > 0.0 {
                iterations as f64 / phase.seconds
            } else {
                0.0
            }
        );
        let _ = writeln!(w, "  {} {}", dotted("status codes"), statuses(&phase.all));
        let _ = writeln!(
            w,
            "  {} {}{}",
            dotted("http_reqs_429 (RATE_LIMITED)"),
            phase.rate_limited,
            rate_limited_by_endpoint(phase)
        );
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "  {:<40} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  status codes",
            "endpoint", "reqs", "fail%", "req/s", "p50", "p90", "p95", "p99", "max"
        );
        for e in &phase.endpoints {
            let _ = writeln!(
                w,
                "  {:<40} {:>7} {:>6.2} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>8}  {}",
                e.name,
                e.requests,
                e.error_rate,
                e.rps,
                ms(e.latency.p50),
                ms(e.latency.p90),
                ms(e.latency.p95),
                ms(e.latency.p99),
                ms(e.latency.max),
                statuses(e)
            );
        }
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "  {:<40} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "scenario (run time)", "iters", "fail", "iter/s", "p50", "p90", "p95", "p99", "max"
        );
        for s in &phase.scenarios {
            let _ = writeln!(
                w,
                "  {:<40} {:>7} {:>6} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>8}",
                s.name,
                s.iterations,
                s.failed,
                s.per_second,
                ms(s.run_time.p50),
                ms(s.run_time.p90),
                ms(s.run_time.p95),
                ms(s.run_time.p99),
                ms(s.run_time.max)
            );
        }
        if !phase.errors.is_empty() {
            let _ = writeln!(w);
            let _ = writeln!(w, "  errors (most frequent first):");
            for e in phase.errors.iter().take(10) {
                let _ = writeln!(w, "  {:>7} x {}", e.occurrences, e.what);
            }
        }
        if let Some(probes) = &phase.probes {
            for probe in [&probes.healthz, &probes.livez] {
                let _ = writeln!(
                    w,
                    "  {} {} polls, {} failed; {}",
                    dotted(&format!("probe GET {}", probe.path)),
                    probe.polls,
                    probe.failed,
                    latency_line(&probe.latency)
                );
            }
        }
        let _ = writeln!(
            w,
            "  server after the phase: RSS {}, peak so far {}{}",
            megabytes(phase.server_rss_after),
            megabytes(phase.server_peak_rss_after),
            phase
                .server_cores
                .map_or(String::new(), |c| format!("; {c:.2} cores on average"))
        );
        let _ = writeln!(w, "  goose report: {}", phase.html_report);
    }

    if let Some(after) = &run.after_load {
        let _ = writeln!(w);
        let _ = writeln!(w, "the climb, level by level (figures over each hold):");
        let _ = writeln!(w);
        let _ = write!(w, "{}", crate::climb::table(&run.phases));
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "after the load: GET /readyz {}; 429 by class {:?}; 503 by lane {:?}; {}",
            after.readyz, after.rate_limited, after.shed, after.usage
        );
    }

    if let Some(ratio) = ceiling_ratios(&run.phases) {
        let _ = writeln!(w);
        let _ = writeln!(w, "as a share of the /livez ceiling (successful req/s):");
        let _ = write!(w, "{ratio}");
    }

    let _ = writeln!(w);
    out.push_str(&thresholds(&run.checks));
    out
}

/// The thresholds, one line each, under a heading: ✓/✗/- and PASS/FAIL/N/A,
/// the rule, the observed figure, whether it gates, and the note.
pub fn thresholds(checks: &[Check]) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "THRESHOLDS (gating ones decide BENCH PASS/FAIL)");
    for c in checks {
        let mark = match c.status {
            Status::Pass => "✓",
            Status::Fail => "✗",
            Status::NotMeasured => "-",
        };
        let observed = match (c.observed, c.unit) {
            (None, _) => "—".to_owned(),
            (Some(v), "count") => format!("{v:.0}"),
            (Some(v), unit) => format!("{v:.2} {unit}"),
        };
        let _ = writeln!(
            w,
            "  {mark} {:<4} {:<9} {:<78} {:>14}{}{}",
            c.status.label(),
            format!("[{}]", c.source),
            c.rule,
            observed,
            if c.gating { "" } else { "  (not gating)" },
            if c.note.is_empty() {
                String::new()
            } else {
                format!("  {}", c.note)
            }
        );
    }
    out
}

/// Where a phase's 429s came from: " (POST /api/v1/auth/login 12, ...)", or
/// nothing when there were none.
fn rate_limited_by_endpoint(phase: &PhaseFigures) -> String {
    let by: Vec<String> = phase
        .endpoints
        .iter()
        .filter(|e| e.rate_limited() > 0)
        .map(|e| format!("{} {}", e.name, e.rate_limited()))
        .collect();
    if by.is_empty() {
        String::new()
    } else {
        format!(" ({})", by.join(", "))
    }
}

/// Each closed-loop phase's successful req/s over the ceiling's. Only closed
/// loops: the paced mix's rate is set by its sleeps, not by the server.
fn ceiling_ratios(phases: &[PhaseFigures]) -> Option<String> {
    let ceiling = phases.iter().find(|p| p.key == "ceiling")?.all.ok_rps;
    let closed: Vec<&PhaseFigures> = phases
        .iter()
        .filter(|p| p.key != "mix" && p.key != "ceiling")
        .collect();
    if ceiling <= 0.0 || closed.is_empty() {
        return None;
    }
    let mut out = String::new();
    for phase in closed {
        let _ = writeln!(
            out,
            "  {:<16} {:>9.1}/s  {:>6.3} x ceiling",
            phase.key,
            phase.all.ok_rps,
            phase.all.ok_rps / ceiling
        );
    }
    Some(out)
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// k6-summary.csv: metric,value,unit,status. Plain figures carry status INFO;
/// thresholds carry PASS, FAIL or N/A.
pub fn csv(run: &Run) -> String {
    let mut rows: Vec<(String, String, &str, &str)> = Vec::new();
    let mut figure = |metric: String, value: f64, unit: &'static str| {
        rows.push((metric, format!("{value:.3}"), unit, "INFO"));
    };
    figure("argon2.verify".into(), run.argon2.verify_ms, "ms");
    figure(
        "argon2.verifications_per_second_single_thread".into(),
        run.argon2.per_second_single_thread,
        "1/s",
    );
    figure(
        "login.sequential_idle.median".into(),
        run.login_probe.median_ms,
        "ms",
    );
    let ceiling = run
        .phases
        .iter()
        .find(|p| p.key == "ceiling")
        .map(|c| c.all.ok_rps);
    for phase in &run.phases {
        let p = &phase.key;
        figure(format!("{p}.duration"), phase.seconds, "s");
        figure(format!("{p}.vus_max"), phase.max_users as f64, "count");
        if let Some(ceiling) = ceiling.filter(|&c| c > 0.0 && p != "mix") {
            figure(
                format!("{p}.ok_rps_share_of_ceiling"),
                phase.all.ok_rps / ceiling,
                "ratio",
            );
        }
        let mut requests = |scope: String, r: &Requests| {
            figure(format!("{p}.http_reqs{scope}"), r.requests as f64, "count");
            figure(
                format!("{p}.http_reqs_429{scope}"),
                r.rate_limited() as f64,
                "count",
            );
            figure(format!("{p}.http_reqs_rate{scope}"), r.rps, "req/s");
            figure(format!("{p}.http_reqs_ok_rate{scope}"), r.ok_rps, "req/s");
            figure(format!("{p}.http_req_failed{scope}"), r.error_rate, "%");
            for (name, value) in [
                ("avg", r.latency.avg),
                ("min", r.latency.min),
                ("p50", r.latency.p50),
                ("p90", r.latency.p90),
                ("p95", r.latency.p95),
                ("p99", r.latency.p99),
                ("max", r.latency.max),
            ] {
                figure(format!("{p}.http_req_duration.{name}{scope}"), value, "ms");
            }
        };
        requests(String::new(), &phase.all);
        for e in &phase.endpoints {
            requests(format!("{{{}}}", e.name), e);
        }
        for s in &phase.scenarios {
            let scope = format!("{{{}}}", s.name);
            figure(
                format!("{p}.iterations{scope}"),
                s.iterations as f64,
                "count",
            );
            figure(
                format!("{p}.iterations_failed{scope}"),
                s.failed as f64,
                "count",
            );
            figure(
                format!("{p}.iteration_duration.p95{scope}"),
                s.run_time.p95,
                "ms",
            );
        }
    }
    let mut out = String::from("metric,value,unit,status\n");
    for (metric, value, unit, status) in rows {
        let _ = writeln!(out, "{},{value},{unit},{status}", csv_field(&metric));
    }
    for c in &run.checks {
        let _ = writeln!(
            out,
            "{},{},{},{}",
            csv_field(&format!("{}:{}", c.source, c.metric)),
            c.observed.map_or(String::new(), |v| format!("{v:.3}")),
            c.unit,
            c.status.label()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        assert_eq!(
            csv_field("mix.http_reqs{GET /livez}"),
            "mix.http_reqs{GET /livez}"
        );
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\", ok"), "\"say \"\"hi\"\", ok\"");
    }

    #[test]
    fn milliseconds_keep_their_precision_where_it_matters() {
        assert_eq!(ms(0.456), "0.46ms");
        assert_eq!(ms(42.34), "42.3ms");
        assert_eq!(ms(1500.0), "1.50s");
    }
}
