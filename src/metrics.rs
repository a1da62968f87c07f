//! Prometheus metrics through the `metrics` facade and
//! metrics-exporter-prometheus. Names and what they mean are listed in the
//! docs/monitoring.md; route labels are templates, so cardinality stays bounded.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_process::Collector;

pub const HTTP_REQUESTS: &str = "wemaster_http_requests_total";
pub const HTTP_DURATION: &str = "wemaster_http_request_duration_seconds";
pub const HTTP_IN_FLIGHT: &str = "wemaster_http_requests_in_flight";
pub const RATE_LIMITED: &str = "wemaster_rate_limited_total";
pub const SHED: &str = "wemaster_shed_total";
pub const LOGIN_LOCKOUTS: &str = "wemaster_login_lockouts_total";
pub const CACHE_LOOKUPS: &str = "wemaster_cache_lookups_total";
pub const CACHE_ENTRIES: &str = "wemaster_cache_entries";
pub const HASH_WAITING: &str = "wemaster_password_hash_waiting";
pub const HASH_WAIT: &str = "wemaster_password_hash_wait_seconds";
pub const HASH_DURATION: &str = "wemaster_password_hash_seconds";
pub const DB_POOL_WAIT: &str = "wemaster_db_pool_wait_seconds";
pub const DB_STATEMENT: &str = "wemaster_db_statement_seconds";
pub const WEBHOOK_EVENTS: &str = "wemaster_webhook_events_total";
pub const ORDER_TRANSITIONS: &str = "wemaster_order_transitions_total";
pub const WEBHOOK_REJECTED: &str = "wemaster_webhook_rejected_total";
pub const BACKUP_LAST_SUCCESS: &str = "wemaster_backup_last_success_timestamp_seconds";
pub const BACKUP_INTERVAL: &str = "wemaster_backup_interval_seconds";
pub const BACKUP_FAILURES: &str = "wemaster_backup_failures_total";
pub const REPLICATION_HEALTHY: &str = "wemaster_replication_healthy";
pub const REPLICATION_LAG: &str = "wemaster_replication_lag_seconds";
pub const MAIL_MESSAGES: &str = "wemaster_mail_messages_total";
pub const MAIL_QUEUED: &str = "wemaster_mail_queued";
pub const MAIL_DEAD: &str = "wemaster_mail_dead";
pub const MAIL_OLDEST_UNSENT: &str = "wemaster_mail_oldest_unsent_seconds";
pub const BUILD_INFO: &str = "wemaster_build_info";

/// Latency buckets in seconds: 50 µs to 10 s.
const BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static PROCESS: OnceLock<Collector> = OnceLock::new();

/// Counters that exist from the start at 0 for every label a dashboard
/// plots, so a panel shows 0 rather than "no data" until the first event.
const ZERO_COUNTERS: [(&str, &str, &[&str]); 5] = [
    (
        RATE_LIMITED,
        "class",
        &["share", "failures", "writes", "admin", "signups"],
    ),
    (SHED, "lane", &["cheap", "hashing"]),
    (LOGIN_LOCKOUTS, "", &[]),
    (
        WEBHOOK_REJECTED,
        "reason",
        &["signature", "malformed", "error"],
    ),
    (BACKUP_FAILURES, "", &[]),
];

/// Installs the process-wide recorder once (later calls share it) and
/// returns the handle that renders the exposition; `None` if another
/// recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            for (name, label, values) in ZERO_COUNTERS {
                if values.is_empty() {
                    metrics::counter!(name).increment(0);
                }
                for value in values {
                    metrics::counter!(name, label => *value).increment(0);
                }
            }
            PROCESS.get_or_init(Collector::default).describe();
            Some(handle)
        })
        .clone()
}

/// The exposition text, with the process figures (`process_*`: CPU, RSS,
/// open files, threads) read from /proc just before. Blocking: call it on
/// the blocking pool. Reading open files lists /proc/self/fd, once per
/// scrape, never per request.
pub fn render(handle: &PrometheusHandle) -> String {
    if let Some(process) = PROCESS.get() {
        process.collect();
    }
    handle.render()
}

/// Records that an order moved between states.
pub fn order_transition(from: &'static str, to: &'static str, count: u64) {
    metrics::counter!(ORDER_TRANSITIONS, "from" => from, "to" => to).increment(count);
}

/// Records what became of a mail attempt: `SENT`, `KEPT`, `FAILED` (to be
/// tried again) or `DEAD` (given up).
pub fn mail_outcome(kind: &'static str, outcome: &'static str) {
    metrics::counter!(MAIL_MESSAGES, "kind" => kind, "outcome" => outcome).increment(1);
}

/// Sets the queue's gauges: waiting and dead messages, and how long the
/// oldest waiting one has waited.
pub fn mail_queue(queued: u64, dead: u64, oldest_unsent_seconds: f64) {
    metrics::gauge!(MAIL_QUEUED).set(queued as f64);
    metrics::gauge!(MAIL_DEAD).set(dead as f64);
    metrics::gauge!(MAIL_OLDEST_UNSENT).set(oldest_unsent_seconds);
}

/// Records a webhook delivery that was not applied: `signature` (not
/// signed with our secret, or too old), `malformed` (not an event) or
/// `error` (it could not be recorded; Stripe delivers it again).
pub fn webhook_rejected(reason: &'static str) {
    metrics::counter!(WEBHOOK_REJECTED, "reason" => reason).increment(1);
}

/// Records a scheduled backup: its time when it succeeded, else a failure.
pub fn backup_done(succeeded_at: Option<i64>) {
    match succeeded_at {
        Some(at) => metrics::gauge!(BACKUP_LAST_SUCCESS).set(at as f64),
        None => metrics::counter!(BACKUP_FAILURES).increment(1),
    }
}

/// Sets how often scheduled backups run, for the "backup too old" alert.
pub fn backup_interval(seconds: u64) {
    metrics::gauge!(BACKUP_INTERVAL).set(seconds as f64);
}

/// Sets Litestream's replication as the health check last saw it.
pub fn replication(healthy: bool, lag_seconds: Option<f64>) {
    metrics::gauge!(REPLICATION_HEALTHY).set(if healthy { 1.0 } else { 0.0 });
    if let Some(lag) = lag_seconds {
        metrics::gauge!(REPLICATION_LAG).set(lag);
    }
}
