//! The thresholds: the original's, ours (stricter targets) and smoke's loose
//! ones, each judged PASS or FAIL against the figures, and whether it decides
//! the run's verdict in this profile.

use serde::Serialize;

use crate::calibrate::Argon2Timing;
use crate::climb::AfterLoad;
use crate::figures::PhaseFigures;
use crate::flows::Flow;
use crate::profile::{Phase, Profile};

/// Ours: the most a non-login endpoint's p95 may be, in ms.
const ENDPOINT_P95_MS: f64 = 5.0;
/// Ours: login p95 at most this many Argon2id verifications.
const LOGIN_P95_VERIFICATIONS: f64 = 1.5;
/// Ours: the server's peak RSS, in MB (10^6 bytes).
const PEAK_RSS_MB: f64 = 150.0;
/// Ours, max: cached catalogue list at least this share of the /livez ceiling.
const CATALOGUE_SHARE_OF_CEILING: f64 = 0.5;
/// Ours, max: order drafts per second.
const ORDER_DRAFTS_PER_SECOND: f64 = 2000.0;
/// Ours, max: logins per second, as a share of cores x single-thread verifications.
const LOGIN_SHARE_OF_CORES: f64 = 0.8;
/// The original's: p95 of all requests, ms.
const ORIGINAL_P95_MS: f64 = 500.0;
/// The original's: failed requests, percent.
const ORIGINAL_ERROR_RATE: f64 = 0.5;
/// Smoke: failed requests, percent.
const SMOKE_ERROR_RATE: f64 = 5.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
    /// Not measured by this profile.
    #[serde(rename = "N/A")]
    NotMeasured,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::NotMeasured => "N/A",
        }
    }

    pub fn of(pass: bool) -> Status {
        if pass { Status::Pass } else { Status::Fail }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// "original", "ours" or "smoke".
    pub source: &'static str,
    /// What is required, in words.
    pub rule: String,
    /// The CSV metric name.
    pub metric: String,
    pub observed: Option<f64>,
    pub unit: &'static str,
    pub status: Status,
    /// Whether it decides BENCH PASS/FAIL in this profile.
    pub gating: bool,
    /// Why, when the number alone does not say.
    pub note: String,
}

/// Everything a verdict is judged on.
pub struct Inputs<'a> {
    pub profile: Profile,
    pub phases: &'a [Phase],
    pub figures: &'a [PhaseFigures],
    pub argon2: &'a Argon2Timing,
    pub cores: usize,
    pub peak_rss_bytes: Option<u64>,
    /// Whether every planned phase ran to its end.
    pub complete: bool,
    /// The climb: what the server said about itself after the load.
    pub after_load: Option<&'a AfterLoad>,
    /// Whether the climb's latency bounds decide the verdict (not in CI,
    /// where `LATENCY_GATES=off`: speed is judged by runs on a quiet machine).
    pub latency_gates: bool,
}

pub fn judge(inputs: &Inputs<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    let find = |key: &str| inputs.figures.iter().find(|f| f.key == key);
    let paced = inputs.profile != Profile::Max;
    let smoke = inputs.profile == Profile::Smoke;

    if !inputs.complete {
        checks.push(Check {
            source: "ours",
            rule: "every phase ran to its end".into(),
            metric: "run.complete".into(),
            observed: Some(inputs.figures.len() as f64),
            unit: "phases",
            status: Status::Fail,
            gating: true,
            note: format!(
                "{} of {} phases ran",
                inputs.figures.len(),
                inputs.phases.len()
            ),
        });
    }

    if inputs.profile == Profile::Climb {
        checks.extend(crate::climb::checks(
            inputs.figures,
            inputs.after_load,
            inputs.latency_gates,
        ));
        return checks;
    }

    // The original's thresholds and our latency targets are about the paced
    // mix; in max the mix is a closed loop, where latency is queueing by design.
    let mix = find("mix").or_else(|| find("max-mix"));
    let latency_gating = paced && !smoke;
    if let Some(mix) = mix {
        let prefix = mix.key.as_str();
        checks.push(Check {
            source: "original",
            rule: format!("p95 of all requests < {ORIGINAL_P95_MS} ms"),
            metric: format!("{prefix}.http_req_duration.p95"),
            observed: Some(mix.all.latency.p95),
            unit: "ms",
            status: Status::of(mix.all.requests > 0 && mix.all.latency.p95 < ORIGINAL_P95_MS),
            gating: latency_gating,
            note: String::new(),
        });
        checks.push(Check {
            source: "original",
            rule: format!("failed requests < {ORIGINAL_ERROR_RATE} %"),
            metric: format!("{prefix}.http_req_failed"),
            observed: Some(mix.all.error_rate),
            unit: "%",
            status: Status::of(mix.all.requests > 0 && mix.all.error_rate < ORIGINAL_ERROR_RATE),
            gating: paced && !smoke,
            note: String::new(),
        });
        let endpoints = Flow::Mix { sleep: None }.endpoints();
        for &name in endpoints
            .iter()
            .filter(|&&n| n != "POST /api/v1/auth/login")
        {
            let (observed, status, note) = match mix.endpoint(name) {
                None => (None, Status::Fail, "never requested".to_owned()),
                Some(e) if e.requests == e.failed => (
                    Some(e.latency.p95),
                    Status::Fail,
                    "no request succeeded".to_owned(),
                ),
                Some(e) => (
                    Some(e.latency.p95),
                    Status::of(e.latency.p95 < ENDPOINT_P95_MS),
                    String::new(),
                ),
            };
            checks.push(Check {
                source: "ours",
                rule: format!("p95 < {ENDPOINT_P95_MS} ms: {name}"),
                metric: format!("{prefix}.http_req_duration.p95{{{name}}}"),
                observed,
                unit: "ms",
                status,
                gating: latency_gating,
                note,
            });
        }
        let limit = LOGIN_P95_VERIFICATIONS * inputs.argon2.verify_ms;
        let (observed, status, note) = match mix.endpoint("POST /api/v1/auth/login") {
            None => (None, Status::Fail, "never requested".to_owned()),
            Some(e) if e.requests == e.failed => (
                Some(e.latency.p95),
                Status::Fail,
                "no request succeeded".to_owned(),
            ),
            Some(e) => (
                Some(e.latency.p95),
                Status::of(e.latency.p95 <= limit),
                String::new(),
            ),
        };
        checks.push(Check {
            source: "ours",
            rule: format!(
                "login p95 <= {LOGIN_P95_VERIFICATIONS} x one Argon2id verification ({limit:.1} ms)"
            ),
            metric: format!("{prefix}.http_req_duration.p95{{POST /api/v1/auth/login}}"),
            observed,
            unit: "ms",
            status,
            gating: latency_gating,
            note,
        });
    }

    // Zero failed requests: over the mix when paced, over every load phase in max.
    let load: Vec<&PhaseFigures> = inputs
        .figures
        .iter()
        .filter(|f| f.key != "ceiling" && (!paced || f.key == "mix"))
        .collect();
    let failed: usize = load.iter().map(|f| f.all.failed).sum();
    let total: usize = load.iter().map(|f| f.all.requests).sum();
    checks.push(Check {
        source: "ours",
        rule: "zero failed requests".into(),
        metric: if paced {
            "mix.http_req_failed.count".into()
        } else {
            "max.http_req_failed.count".into()
        },
        observed: Some(failed as f64),
        unit: "count",
        status: Status::of(total > 0 && failed == 0),
        gating: !smoke,
        note: format!("{failed} of {total} requests failed"),
    });

    // Zero 429: implied by zero failed requests, but named, since a throttled
    // honest user is what failed the original platform. Over the same phases;
    // the ceiling's /livez loop is not a user.
    let rate_limited: usize = load.iter().map(|f| f.rate_limited).sum();
    checks.push(Check {
        source: "ours",
        rule: "zero 429 (RATE_LIMITED): honest users are never throttled".into(),
        metric: if paced {
            "mix.http_reqs_429".into()
        } else {
            "max.http_reqs_429".into()
        },
        observed: Some(rate_limited as f64),
        unit: "count",
        status: Status::of(total > 0 && rate_limited == 0),
        gating: paced && !smoke,
        note: format!("{rate_limited} of {total} requests answered 429"),
    });

    let rss_mb = inputs.peak_rss_bytes.map(|b| b as f64 / 1e6);
    checks.push(Check {
        source: "ours",
        rule: format!("server peak RSS < {PEAK_RSS_MB} MB"),
        metric: "server.peak_rss".into(),
        observed: rss_mb,
        unit: "MB",
        status: match rss_mb {
            Some(mb) => Status::of(mb < PEAK_RSS_MB),
            None => Status::Fail,
        },
        gating: !smoke,
        note: "VmHWM of the server process at the end of the run".into(),
    });

    // The max targets: successful requests per second of each closed loop.
    let ceiling = find("ceiling").map(|c| c.all.ok_rps);
    let ok_rps = |key: &str| find(key).map(|f| f.all.ok_rps);
    let throughput = |rule: String, metric: &str, observed: Option<f64>, limit: Option<f64>| {
        let (status, note) = match (observed, limit) {
            _ if paced => (Status::NotMeasured, "measured by --profile max".to_owned()),
            (Some(observed), Some(limit)) => (
                Status::of(observed >= limit),
                format!("needs >= {limit:.0}/s"),
            ),
            _ => (Status::Fail, "phase did not run".to_owned()),
        };
        Check {
            source: "ours",
            rule,
            metric: metric.into(),
            observed: if paced { None } else { observed },
            unit: "req/s",
            status,
            gating: !paced,
            note,
        }
    };
    checks.push(throughput(
        format!("max: cached catalogue list >= {CATALOGUE_SHARE_OF_CEILING} x the /livez ceiling"),
        "max-catalogue.ok_rps",
        ok_rps("max-catalogue"),
        ceiling.map(|c| c * CATALOGUE_SHARE_OF_CEILING),
    ));
    checks.push(throughput(
        format!("max: order drafts >= {ORDER_DRAFTS_PER_SECOND}/s"),
        "max-order.ok_rps",
        ok_rps("max-order"),
        Some(ORDER_DRAFTS_PER_SECOND),
    ));
    let login_limit =
        LOGIN_SHARE_OF_CORES * inputs.cores as f64 * inputs.argon2.per_second_single_thread;
    checks.push(throughput(
        format!(
            "max: logins >= {LOGIN_SHARE_OF_CORES} x {} cores x {:.1} single-thread verifications/s",
            inputs.cores, inputs.argon2.per_second_single_thread
        ),
        "max-login.ok_rps",
        ok_rps("max-login"),
        Some(login_limit),
    ));

    if smoke {
        smoke_checks(inputs, &mut checks);
    }
    checks
}

/// Smoke's loose thresholds: the server started (or there would be no
/// figures), every scenario and endpoint succeeded at least once, and fewer
/// than 5 % of requests failed.
fn smoke_checks(inputs: &Inputs<'_>, checks: &mut Vec<Check>) {
    let Some((phase, mix)) = inputs
        .phases
        .iter()
        .zip(inputs.figures)
        .find(|(p, _)| p.key == "mix")
    else {
        checks.push(Check {
            source: "smoke",
            rule: "the mix ran".into(),
            metric: "mix.ran".into(),
            observed: None,
            unit: "",
            status: Status::Fail,
            gating: true,
            note: String::new(),
        });
        return;
    };
    checks.push(Check {
        source: "smoke",
        rule: "server started and answered /readyz".into(),
        metric: "server.ready".into(),
        observed: Some(1.0),
        unit: "",
        status: Status::Pass,
        gating: true,
        note: String::new(),
    });
    for &name in phase.flow.scenario_names() {
        let ok = mix.scenario(name).map_or(0, |s| s.iterations - s.failed);
        checks.push(Check {
            source: "smoke",
            rule: format!("scenario succeeded at least once: {name}"),
            metric: format!("mix.iterations_ok{{{name}}}"),
            observed: Some(ok as f64),
            unit: "count",
            status: Status::of(ok > 0),
            gating: true,
            note: String::new(),
        });
    }
    for &name in phase.flow.endpoints() {
        let ok = mix.endpoint(name).map_or(0, |e| e.requests - e.failed);
        checks.push(Check {
            source: "smoke",
            rule: format!("request succeeded at least once: {name}"),
            metric: format!("mix.http_reqs_ok{{{name}}}"),
            observed: Some(ok as f64),
            unit: "count",
            status: Status::of(ok > 0),
            gating: true,
            note: String::new(),
        });
    }
    checks.push(Check {
        source: "smoke",
        rule: format!("failed requests < {SMOKE_ERROR_RATE} %"),
        metric: "mix.http_req_failed".into(),
        observed: Some(mix.all.error_rate),
        unit: "%",
        status: Status::of(mix.all.requests > 0 && mix.all.error_rate < SMOKE_ERROR_RATE),
        gating: true,
        note: String::new(),
    });
}

/// BENCH PASS when every gating check passed.
pub fn passed(checks: &[Check]) -> bool {
    checks
        .iter()
        .filter(|c| c.gating)
        .all(|c| c.status == Status::Pass)
}
