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
            describe();
            PROCESS.get_or_init(Collector::default).describe();
            Some(handle)
        })
        .clone()
}

/// Each metric's HELP text (docs/monitoring.md has the same table).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by method, route template and status class."
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time from request to response, by method and route template."
    );
    describe_gauge!(HTTP_IN_FLIGHT, "Requests being handled now.");
    describe_counter!(RATE_LIMITED, "Requests refused with 429, by budget class.");
    describe_counter!(
        SHED,
        "Requests refused with 503 OVERLOADED for capacity, by lane."
    );
    describe_counter!(
        LOGIN_LOCKOUTS,
        "Sign-ins refused because the account is locked out for the caller's address."
    );
    describe_counter!(
        CACHE_LOOKUPS,
        "Response cache lookups, by result (hit or miss)."
    );
    describe_gauge!(CACHE_ENTRIES, "Responses held in the cache.");
    describe_gauge!(
        HASH_WAITING,
        "Sign-ins, sign-ups and resets waiting for a password-hashing slot."
    );
    describe_histogram!(
        HASH_WAIT,
        metrics::Unit::Seconds,
        "Wait for a password-hashing slot."
    );
    describe_histogram!(
        HASH_DURATION,
        metrics::Unit::Seconds,
        "Time of one Argon2id hash or verification."
    );
    describe_histogram!(
        DB_POOL_WAIT,
        metrics::Unit::Seconds,
        "Wait for a database connection, by pool (read or write)."
    );
    describe_histogram!(
        DB_STATEMENT,
        metrics::Unit::Seconds,
        "Time spent in the database per request step, by pool."
    );
    describe_counter!(
        WEBHOOK_EVENTS,
        "Verified webhook events, by type and outcome."
    );
    describe_counter!(
        WEBHOOK_REJECTED,
        "Webhook deliveries not applied: signature, malformed or error."
    );
    describe_counter!(ORDER_TRANSITIONS, "Order status changes, by from and to.");
    describe_gauge!(
        BACKUP_LAST_SUCCESS,
        metrics::Unit::Seconds,
        "When the newest scheduled backup was written (Unix time)."
    );
    describe_gauge!(
        BACKUP_INTERVAL,
        metrics::Unit::Seconds,
        "How often scheduled backups run."
    );
    describe_counter!(BACKUP_FAILURES, "Scheduled backups that failed.");
    describe_gauge!(
        REPLICATION_HEALTHY,
        "1 while Litestream replicates the database, else 0."
    );
    describe_gauge!(
        REPLICATION_LAG,
        metrics::Unit::Seconds,
        "Seconds since the replica last confirmed every change Litestream had read."
    );
    describe_counter!(
        MAIL_MESSAGES,
        "Mail attempts, by kind and outcome (SENT, KEPT, FAILED, DEAD)."
    );
    describe_gauge!(MAIL_QUEUED, "Messages waiting to be sent.");
    describe_gauge!(MAIL_DEAD, "Messages given up.");
    describe_gauge!(
        MAIL_OLDEST_UNSENT,
        metrics::Unit::Seconds,
        "How long the oldest waiting message has waited."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the running version in its label.");
}

/// The exposition text, with the process figures (`process_*`: CPU, RSS,
/// open files, threads) read from /proc just before. Blocking: call it on
/// the blocking pool. Reading open files lists /proc/self/fd, once per
/// scrape, never per request.
pub fn render(handle: &PrometheusHandle) -> String {
    if let Some(process) = PROCESS.get() {
        process.collect();
    }
    // CPU seconds are recorded as a gauge (the facade's counters hold whole
    // numbers, and a small server needs fractions) but only ever grow: they
    // are declared a counter, as Prometheus's own clients do, so rate() and
    // the linters treat them as one.
    handle.render().replacen(
        "# TYPE process_cpu_seconds_total gauge",
        "# TYPE process_cpu_seconds_total counter",
        1,
    )
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
