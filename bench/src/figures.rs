//! Goose's metrics of one phase, turned into the figures the summary shows:
//! latency percentiles, error rate and throughput, for all requests, per
//! endpoint and per scenario.

use std::collections::BTreeMap;

use goose::metrics::{GooseMetrics, GooseRequestMetricTimingData};
use goose::test_plan::TestPlanStepAction;
use serde::Serialize;

use crate::flows::LOGIN;
use crate::probes::Probes;
use crate::profile::Phase;

/// Response (or scenario run) times, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub avg: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// The figures of response times measured one by one, in ms. Percentiles
    /// are nearest-rank: the smallest sample with at least that share of all
    /// samples at or below it, so every figure is a time that was measured.
    pub fn of_samples(samples_ms: &[f64]) -> Latency {
        if samples_ms.is_empty() {
            return Latency::default();
        }
        let mut sorted = samples_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        Latency {
            avg: sorted.iter().sum::<f64>() / sorted.len() as f64,
            min: sorted[0],
            p50: nearest_rank(&sorted, 0.50),
            p90: nearest_rank(&sorted, 0.90),
            p95: nearest_rank(&sorted, 0.95),
            p99: nearest_rank(&sorted, 0.99),
            max: sorted[sorted.len() - 1],
        }
    }

    fn of(data: &GooseRequestMetricTimingData) -> Latency {
        if data.counter == 0 {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            avg: data.total_time_us as f64 / data.counter as f64 / 1000.0,
            min: ms(data.minimum_time_us),
            p50: ms(data.percentile_us(0.50)),
            p90: ms(data.percentile_us(0.90)),
            p95: ms(data.percentile_us(0.95)),
            p99: ms(data.percentile_us(0.99)),
            max: ms(data.maximum_time_us),
        }
    }
}

/// The `share` (0..=1) percentile of `sorted` (ascending, not empty), by
/// nearest rank.
fn nearest_rank(sorted: &[f64], share: f64) -> f64 {
    let rank = (share * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Requests to one endpoint, or to all of them.
#[derive(Debug, Clone, Serialize)]
pub struct Requests {
    /// "METHOD name", or "all requests".
    pub name: String,
    pub requests: usize,
    pub failed: usize,
    /// Failed requests as a percentage of all.
    pub error_rate: f64,
    /// Requests per second over the measured time.
    pub rps: f64,
    /// Successful requests per second: what the throughput targets count.
    pub ok_rps: f64,
    pub latency: Latency,
    pub status_codes: BTreeMap<u16, usize>,
}

/// One scenario (a goose transaction): how often it ran and how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioRuns {
    pub name: String,
    pub iterations: usize,
    pub failed: usize,
    pub per_second: f64,
    pub run_time: Latency,
}

/// The errors goose counted, most frequent first.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorCount {
    pub what: String,
    pub occurrences: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseFigures {
    pub key: String,
    pub title: String,
    pub shape: String,
    pub max_users: usize,
    /// Seconds the figures cover (the hold for closed loops, the whole plan
    /// otherwise), from goose's step timestamps.
    pub seconds: f64,
    pub all: Requests,
    pub endpoints: Vec<Requests>,
    pub scenarios: Vec<ScenarioRuns>,
    pub errors: Vec<ErrorCount>,
    /// 429 answers (RATE_LIMITED) of all requests, counted apart because
    /// honest traffic must never meet one.
    pub rate_limited: usize,
    /// Sign-ins shed for capacity: 503 `OVERLOADED` with `Retry-After`,
    /// counted apart because they are the machine's limit, said honestly.
    pub shed_sign_ins: usize,
    /// Every request but sign-ins, whose time is password hashing.
    pub outside_sign_in: Latency,
    /// The load balancer's probes during the phase, when it polled.
    pub probes: Option<Probes>,
    /// The cores the server used on average over the phase, ramp included.
    pub server_cores: Option<f64>,
    /// Goose's HTML report of this phase, relative to the run's folder.
    pub html_report: String,
    /// The server's resident set (VmRSS) right after the phase, in bytes.
    pub server_rss_after: Option<u64>,
    /// The server's peak resident set so far (VmHWM) right after the phase, in bytes.
    pub server_peak_rss_after: Option<u64>,
}

impl Requests {
    /// How many of these requests were answered 429.
    pub fn rate_limited(&self) -> usize {
        self.status_codes.get(&429).copied().unwrap_or(0)
    }
}

impl PhaseFigures {
    pub fn endpoint(&self, name: &str) -> Option<&Requests> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    pub fn scenario(&self, name: &str) -> Option<&ScenarioRuns> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

pub fn collect(phase: &Phase, metrics: &GooseMetrics, html_report: String) -> PhaseFigures {
    let seconds = measured_seconds(metrics, phase.shape.measured_from_hold());
    let per_second = |count: usize| {
        if seconds > 0.0 {
            count as f64 / seconds
        } else {
            0.0
        }
    };
    let requests = |name: String,
                    data: &GooseRequestMetricTimingData,
                    ok: usize,
                    failed: usize,
                    status_codes: BTreeMap<u16, usize>| {
        let total = ok + failed;
        Requests {
            name,
            requests: total,
            failed,
            error_rate: if total > 0 {
                failed as f64 * 100.0 / total as f64
            } else {
                0.0
            },
            rps: per_second(total),
            ok_rps: per_second(ok),
            latency: Latency::of(data),
            status_codes,
        }
    };

    let mut endpoints: Vec<Requests> = metrics
        .requests
        .values()
        .map(|aggregate| {
            requests(
                format!("{} {}", aggregate.method, aggregate.path),
                &aggregate.raw_data,
                aggregate.success_count,
                aggregate.fail_count,
                aggregate
                    .status_code_counts
                    .iter()
                    .map(|(&k, &v)| (k, v))
                    .collect(),
            )
        })
        .collect();
    endpoints.sort_by(|a, b| a.name.cmp(&b.name));

    let merged = merge(metrics.requests.values().map(|a| &a.raw_data));
    let mut status_codes = BTreeMap::new();
    for aggregate in metrics.requests.values() {
        for (&code, &count) in &aggregate.status_code_counts {
            *status_codes.entry(code).or_insert(0) += count;
        }
    }
    let all = requests(
        "all requests".into(),
        &merged,
        metrics.requests.values().map(|a| a.success_count).sum(),
        metrics.requests.values().map(|a| a.fail_count).sum(),
        status_codes,
    );

    let scenarios = metrics
        .transactions
        .iter()
        .flatten()
        .map(|t| ScenarioRuns {
            name: t.transaction_name.name_for_transaction().to_owned(),
            iterations: t.success_count + t.fail_count,
            failed: t.fail_count,
            per_second: per_second(t.success_count + t.fail_count),
            run_time: Latency::of(&t.run_times),
        })
        .collect();

    let mut errors: Vec<ErrorCount> = metrics
        .errors
        .values()
        .map(|e| ErrorCount {
            what: format!("{} {}: {}", e.method, e.name, e.error),
            occurrences: e.occurrences,
        })
        .chain(metrics.transaction_errors.values().map(|e| ErrorCount {
            what: format!("scenario {}: {}", e.transaction_name, e.error),
            occurrences: e.occurrences,
        }))
        .collect();
    errors.sort_by_key(|e| std::cmp::Reverse(e.occurrences));

    let rate_limited = all.status_codes.get(&429).copied().unwrap_or(0);
    let sign_ins = metrics.requests.values().filter(|a| a.path == LOGIN);
    let shed_sign_ins = sign_ins
        .filter_map(|a| a.status_code_counts.get(&503))
        .sum();
    let outside_sign_in = Latency::of(&merge(
        metrics
            .requests
            .values()
            .filter(|a| a.path != LOGIN)
            .map(|a| &a.raw_data),
    ));

    PhaseFigures {
        key: phase.key.to_owned(),
        title: phase.title.clone(),
        shape: phase.shape.describe(),
        max_users: metrics.maximum_users,
        seconds,
        all,
        endpoints,
        scenarios,
        errors,
        rate_limited,
        shed_sign_ins,
        outside_sign_in,
        probes: None,
        server_cores: None,
        html_report,
        server_rss_after: None,
        server_peak_rss_after: None,
    }
}

/// The seconds the metrics cover, from the timestamps goose keeps of each
/// step: from the first hold to the step after it for a closed loop (goose
/// resets its metrics when the hold starts), from start to end for a plan.
fn measured_seconds(metrics: &GooseMetrics, from_hold: bool) -> f64 {
    let history = &metrics.history;
    let start = if from_hold {
        history
            .iter()
            .position(|step| matches!(step.action, TestPlanStepAction::Maintaining))
    } else {
        (!history.is_empty()).then_some(0)
    };
    let end = match start {
        Some(start) if from_hold => history.get(start + 1),
        Some(_) => history.last(),
        None => None,
    };
    match (start.and_then(|i| history.get(i)), end) {
        (Some(start), Some(end)) => {
            (end.timestamp - start.timestamp).num_milliseconds() as f64 / 1000.0
        }
        _ => metrics.duration as f64,
    }
}

/// Every request's times in one distribution, for the all-requests percentiles.
fn merge<'a>(
    all: impl Iterator<Item = &'a GooseRequestMetricTimingData>,
) -> GooseRequestMetricTimingData {
    let mut buckets: BTreeMap<u64, usize> = BTreeMap::new();
    let mut merged = GooseRequestMetricTimingData::default();
    for data in all.filter(|d| d.counter > 0) {
        for (&bucket, &count) in data.times_us.iter() {
            *buckets.entry(bucket).or_insert(0) += count;
        }
        if merged.counter == 0 || data.minimum_time_us < merged.minimum_time_us {
            merged.minimum_time_us = data.minimum_time_us;
        }
        merged.maximum_time_us = merged.maximum_time_us.max(data.maximum_time_us);
        merged.total_time_us += data.total_time_us;
        merged.counter += data.counter;
    }
    for (bucket, count) in buckets {
        merged.times_us.insert(bucket, count);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_are_measured_samples() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let latency = Latency::of_samples(&samples);
        assert_eq!(latency.min, 1.0);
        assert_eq!(latency.p50, 50.0);
        assert_eq!(latency.p90, 90.0);
        assert_eq!(latency.p95, 95.0);
        assert_eq!(latency.p99, 99.0);
        assert_eq!(latency.max, 100.0);
        assert_eq!(latency.avg, 50.5);
    }

    #[test]
    fn nearest_rank_of_few_samples_rounds_up() {
        let latency = Latency::of_samples(&[3.0, 1.0, 2.0]);
        assert_eq!(latency.p50, 2.0);
        assert_eq!(latency.p95, 3.0);
        assert_eq!(Latency::of_samples(&[7.0]).p99, 7.0);
    }

    #[test]
    fn no_samples_give_zeros() {
        assert_eq!(Latency::of_samples(&[]).p95, 0.0);
    }
}
