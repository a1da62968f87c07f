//! Performance baselines: a run's `summary.json` against one stored earlier
//! on the same machine (`--baseline FILE`). For goose profiles, throughput
//! and latency are compared as ratios to each run's own `/livez` ceiling,
//! so a shared machine that is a quarter slower today does not read as a
//! regression of the server, and a regression of the server shows even on
//! a fast day. A k6 run (`--k6 scale`, `full`, ...) has no ceiling: its
//! request rate, p95 and failures are compared as they are, which is only
//! fair between runs at quiet moments.

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// One measure of one phase, then and now.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub phase: String,
    pub measure: &'static str,
    pub baseline: f64,
    pub now: f64,
    /// Whether `now` is worse than `baseline` by more than the tolerance.
    pub worse: bool,
}

/// A phase's figures as the comparison reads them.
struct Phase {
    key: String,
    ok_rps: f64,
    p95_ms: f64,
    error_rate: f64,
}

fn phases(summary: &Value) -> Result<(Vec<Phase>, f64)> {
    let list = summary["phases"]
        .as_array()
        .context("not a bench summary.json: no phases")?;
    let read = |phase: &Value| -> Option<Phase> {
        Some(Phase {
            key: phase["key"].as_str()?.to_string(),
            ok_rps: phase["all"]["ok_rps"].as_f64()?,
            p95_ms: phase["all"]["latency"]["p95"].as_f64()?,
            error_rate: phase["all"]["error_rate"].as_f64()?,
        })
    };
    let phases: Vec<Phase> = list.iter().filter_map(read).collect();
    let ceiling = phases
        .iter()
        .find(|p| p.key == "ceiling")
        .map(|p| p.ok_rps)
        .filter(|rps| *rps > 0.0)
        .context("the summary has no /livez ceiling to scale by")?;
    Ok((phases, ceiling))
}

/// Compares every phase the two runs share. Throughput is the phase's
/// successful requests per second over the ceiling's; latency is the p95
/// times the ceiling's rate (both stay put when the whole machine is
/// slower); errors are compared in percentage points. `tolerance` is the
/// share (0.2 = 20 %) by which a ratio may worsen before it is flagged.
pub fn compare(baseline: &Value, now: &Value, tolerance: f64) -> Result<Vec<Finding>> {
    if baseline["profile"] != now["profile"] {
        bail!(
            "the baseline is of profile {} and this run of {}: compare runs of one profile",
            baseline["profile"],
            now["profile"]
        );
    }
    if baseline.get("metrics").is_some() {
        return compare_k6(baseline, now, tolerance);
    }
    let (before, before_ceiling) = phases(baseline)?;
    let (after, after_ceiling) = phases(now)?;
    let mut findings = Vec::new();
    for then in before.iter().filter(|p| p.key != "ceiling") {
        let Some(now) = after.iter().find(|p| p.key == then.key) else {
            continue;
        };
        let throughput = (then.ok_rps / before_ceiling, now.ok_rps / after_ceiling);
        let latency = (then.p95_ms * before_ceiling, now.p95_ms * after_ceiling);
        findings.push(Finding {
            phase: then.key.clone(),
            measure: "throughput / ceiling",
            baseline: throughput.0,
            now: throughput.1,
            worse: throughput.1 < throughput.0 * (1.0 - tolerance),
        });
        findings.push(Finding {
            phase: then.key.clone(),
            measure: "p95 x ceiling",
            baseline: latency.0,
            now: latency.1,
            worse: latency.1 > latency.0 * (1.0 + tolerance),
        });
        findings.push(Finding {
            phase: then.key.clone(),
            measure: "failed %",
            baseline: then.error_rate,
            now: now.error_rate,
            worse: now.error_rate > then.error_rate + 1.0,
        });
    }
    findings.push(Finding {
        phase: "ceiling".into(),
        measure: "/livez req/s (the machine)",
        baseline: before_ceiling,
        now: after_ceiling,
        worse: false,
    });
    Ok(findings)
}

/// k6's whole-run figures: requests per second, p95 in ms, failed share.
fn k6_figures(summary: &Value) -> Result<(f64, f64, f64)> {
    let metric = |name: &str, value: &str| {
        summary["metrics"][name]["values"][value]
            .as_f64()
            .with_context(|| format!("not a k6 summary.json: no {name} {value}"))
    };
    Ok((
        metric("http_reqs", "rate")?,
        metric("http_req_duration", "p(95)")?,
        metric("http_req_failed", "rate")? * 100.0,
    ))
}

fn compare_k6(baseline: &Value, now: &Value, tolerance: f64) -> Result<Vec<Finding>> {
    let (then, now) = (k6_figures(baseline)?, k6_figures(now)?);
    let finding = |measure, baseline, now, worse| Finding {
        phase: "k6 run".into(),
        measure,
        baseline,
        now,
        worse,
    };
    Ok(vec![
        finding("req/s", then.0, now.0, now.0 < then.0 * (1.0 - tolerance)),
        finding("p95 ms", then.1, now.1, now.1 > then.1 * (1.0 + tolerance)),
        finding("failed %", then.2, now.2, now.2 > then.2 + 1.0),
    ])
}

/// The comparison as a table.
pub fn text(findings: &[Finding], tolerance: f64) -> String {
    let mut out = format!(
        "Against the baseline (goose runs as ratios to each run's /livez ceiling, k6 runs as measured); flagged when worse by over {:.0} %, or failures up over 1 point:\n",
        tolerance * 100.0
    );
    for f in findings {
        let change = if f.baseline == 0.0 {
            String::from("   n/a")
        } else {
            format!("{:+6.1} %", (f.now / f.baseline - 1.0) * 100.0)
        };
        out.push_str(&format!(
            "  {:<20} {:<28} {:>14.4} -> {:>14.4}  {change}{}\n",
            f.phase,
            f.measure,
            f.baseline,
            f.now,
            if f.worse { "  WORSE" } else { "" }
        ));
    }
    out
}

/// Reads a stored summary.json.
pub fn read(path: &std::path::Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(mix_rps: f64, p95: f64, ceiling: f64, failed: f64) -> Value {
        let phase = |key: &str, rps: f64, p95: f64, failed: f64| json!({"key": key, "all": {"ok_rps": rps, "error_rate": failed, "latency": {"p95": p95}}});
        json!({"profile": "quick", "phases": [
            phase("mix", mix_rps, p95, failed),
            phase("ceiling", ceiling, 1.0, 0.0),
        ]})
    }

    #[test]
    fn a_slower_machine_is_not_a_regression() {
        // Everything a quarter slower, the ceiling too.
        let findings = compare(
            &run(100.0, 20.0, 40_000.0, 0.0),
            &run(75.0, 26.7, 30_000.0, 0.0),
            0.2,
        )
        .unwrap();
        assert!(findings.iter().all(|f| !f.worse), "{findings:?}");
    }

    #[test]
    fn a_slower_server_on_the_same_machine_is_flagged() {
        let findings = compare(
            &run(100.0, 20.0, 40_000.0, 0.0),
            &run(100.0, 30.0, 40_000.0, 2.0),
            0.2,
        )
        .unwrap();
        let worse: Vec<&str> = findings
            .iter()
            .filter(|f| f.worse)
            .map(|f| f.measure)
            .collect();
        assert_eq!(worse, ["p95 x ceiling", "failed %"]);
    }

    #[test]
    fn k6_runs_are_compared_as_they_are() {
        let k6 = |rate: f64, p95: f64| {
            json!({"profile": "k6 scale", "metrics": {
                "http_reqs": {"values": {"rate": rate}},
                "http_req_duration": {"values": {"p(95)": p95}},
                "http_req_failed": {"values": {"rate": 0.0}},
            }})
        };
        let findings = compare(&k6(1_000.0, 1_800.0), &k6(700.0, 1_900.0), 0.2).unwrap();
        let worse: Vec<&str> = findings
            .iter()
            .filter(|f| f.worse)
            .map(|f| f.measure)
            .collect();
        assert_eq!(worse, ["req/s"]);
    }

    #[test]
    fn runs_of_different_profiles_are_not_compared() {
        let mut other = run(100.0, 20.0, 40_000.0, 0.0);
        other["profile"] = json!("original");
        assert!(compare(&run(100.0, 20.0, 40_000.0, 0.0), &other, 0.2).is_err());
    }
}
