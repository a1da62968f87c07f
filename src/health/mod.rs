//! Health probes: `/healthz` (full report), `/readyz` (can serve traffic),
//! `/livez` (the process answers), under `/api/v1` and at the root.

pub mod api;
pub mod checks;
pub mod model;
mod replication;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::MailTransport;
use crate::db;
use crate::protection::admission::{Lane, LevelFigures};
use crate::state::AppState;
use checks::Checks;
use model::{
    CacheCheck, CheckStatus, DatabaseCheck, Health, LoadCheck, MailCheck, Readiness, Services,
    SystemFigures,
};

/// How often the checks that touch something run.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// A round of checks older than this is stuck (a wedged database or
/// Litestream): the report says so, as degraded.
const STALE_AFTER: Duration = Duration::from_secs(5);
/// A refusal (503 or 429 by admission) this recent makes the load degraded.
const RECENT_REFUSAL: Duration = Duration::from_secs(10);

/// Runs the checks once a second for as long as the server serves; probes
/// read the latest round (`report`).
pub async fn keep_checking(state: AppState) {
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let checks = run_checks(&state).await;
        state.health.set(checks);
    }
}

/// One round: the database round-trip, the cache's figures, Litestream
/// when configured, and the process's memory (read in the blocking pool).
async fn run_checks(state: &AppState) -> Checks {
    let database = check_database(state).await;
    let cache = check_cache(state);
    let health = &state.config.health;
    let replication = if health.litestream_socket.as_os_str().is_empty() {
        None
    } else {
        Some(
            replication::check(
                &health.litestream_socket,
                state.db.path(),
                health.replication_degraded_seconds,
            )
            .await,
        )
    };
    if let Some(r) = &replication {
        crate::metrics::replication(r.status == CheckStatus::Up, r.lag_seconds);
    }
    let mail = check_mail(state).await;
    let rss_bytes = tokio::task::spawn_blocking(crate::ops::system::rss_bytes)
        .await
        .ok()
        .flatten();
    Checks {
        database,
        cache,
        replication,
        mail,
        rss_bytes,
        made: Instant::now(),
    }
}

/// The report: the latest round of checks, and the figures the server
/// keeps in memory (connections, requests running and waiting), read now.
/// Costs the same whatever the load; the checks run at most once a second.
pub async fn report(state: &AppState) -> Health {
    let checks = match state.health.get() {
        Some(checks) => checks,
        None => {
            let checks = run_checks(state).await;
            state.health.set(checks.clone());
            Arc::new(checks)
        }
    };
    let mut database = checks.database.clone();
    let age = checks.made.elapsed();
    if age > STALE_AFTER {
        database.status = database.status.max(CheckStatus::Degraded);
        database.message = format!(
            "the last check finished {} s ago; the next has not answered",
            age.as_secs()
        );
    }
    let load = check_load(state);
    let status = database
        .status
        .max(checks.cache.status)
        .max(load.status)
        .max(checks.mail.status)
        .max(
            checks
                .replication
                .as_ref()
                .map_or(CheckStatus::Up, |r| r.status),
        );
    Health {
        status,
        timestamp: state.clock.stamp(),
        uptime_seconds: state.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        services: Services {
            database,
            cache: checks.cache.clone(),
            replication: checks.replication.clone(),
            load,
            mail: checks.mail.clone(),
        },
        system: SystemFigures {
            rss_bytes: checks.rss_bytes,
            open_connections: state.connections.open() as u64,
            hash_slots: state.config.auth.effective_hash_concurrency() as u64,
        },
    }
}

/// Requests running and waiting, and whether any were refused lately.
fn check_load(state: &AppState) -> LoadCheck {
    let cheap = state.admission.figures(Lane::Cheap);
    let hashing = state.admission.figures(Lane::Hashing);
    let recent = |figures: &LevelFigures| {
        figures
            .last_refusal
            .is_some_and(|at| at.elapsed() < RECENT_REFUSAL)
    };
    let (status, message) = match (recent(&cheap), recent(&hashing)) {
        (true, _) => (
            CheckStatus::Degraded,
            "requests refused (503 or 429) in the last 10 s: at capacity".to_string(),
        ),
        (false, true) => (
            CheckStatus::Degraded,
            "sign-ins refused in the last 10 s: password hashing at capacity".to_string(),
        ),
        (false, false) => (CheckStatus::Up, "ok".to_string()),
    };
    LoadCheck {
        status,
        running: cheap.running as u64,
        capacity: cheap.capacity as u64,
        queued: cheap.queued as u64,
        refused: cheap.refused,
        hashing_running: hashing.running as u64,
        hashing_capacity: hashing.capacity as u64,
        hashing_queued: hashing.queued as u64,
        hashing_refused: hashing.refused,
        message,
    }
}

async fn check_database(state: &AppState) -> DatabaseCheck {
    let threshold = state.config.health.database_degraded_ms;
    let started = Instant::now();
    let result = state
        .db
        .read(|conn| Ok(conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
        .await;
    let response_time = elapsed_ms(started);
    let (status, message) = match result {
        Ok(_) if response_time > threshold as f64 => (
            CheckStatus::Degraded,
            format!("round-trip slower than {threshold} ms"),
        ),
        Ok(_) => (CheckStatus::Up, "ok".to_string()),
        Err(e) => (CheckStatus::Down, e.detail().to_string()),
    };
    DatabaseCheck {
        status,
        response_time,
        message,
    }
}

/// The mail queue's backlog, and the gauges that show it.
async fn check_mail(state: &AppState) -> MailCheck {
    let config = &state.config.mail;
    let transport = match config.transport {
        MailTransport::Outbox => "outbox",
        MailTransport::Smtp => "smtp",
    };
    let figures = match state
        .db
        .read(|conn| Ok(crate::mail::queue::figures(conn)?))
        .await
    {
        Ok(figures) => figures,
        Err(e) => {
            return MailCheck {
                status: CheckStatus::Degraded,
                transport: transport.into(),
                queued: 0,
                dead: 0,
                oldest_unsent_seconds: None,
                message: format!("cannot read the mail queue: {}", e.detail()),
            };
        }
    };
    let waited = figures
        .oldest_unsent
        .as_deref()
        .and_then(crate::clock::parse)
        .map(|queued| ((state.clock.now() - queued).as_seconds_f64()).max(0.0));
    crate::metrics::mail_queue(figures.queued, figures.dead, waited.unwrap_or(0.0));
    let late = waited.is_some_and(|s| s > config.degraded_after_seconds as f64);
    MailCheck {
        status: if late {
            CheckStatus::Degraded
        } else {
            CheckStatus::Up
        },
        transport: transport.into(),
        queued: figures.queued,
        dead: figures.dead,
        oldest_unsent_seconds: waited.map(|s| (s * 10.0).round() / 10.0),
        message: if late {
            format!(
                "a message has waited longer than {} s: is the SMTP server reachable? (log: \"mail not sent\")",
                config.degraded_after_seconds
            )
        } else {
            "ok".into()
        },
    }
}

fn check_cache(state: &AppState) -> CacheCheck {
    let threshold = state.config.health.cache_degraded_ms;
    let started = Instant::now();
    // Settles moka's pending bookkeeping, so a wedged cache shows here as a
    // slow check; runs once a second, not per probe.
    let stats = state.cache.stats();
    let response_time = elapsed_ms(started);
    let status = if response_time > threshold as f64 {
        CheckStatus::Degraded
    } else {
        CheckStatus::Up
    };
    CacheCheck {
        status,
        response_time,
        message: "in-process".to_string(),
        entries: stats.entries,
        hit_rate: (stats.hit_rate() * 10_000.0).round() / 10_000.0,
    }
}

/// Ready once the schema is the one this binary knows and the database answers.
pub async fn readiness(state: &AppState) -> Readiness {
    let expected = db::schema_version();
    match state.db.current_schema_version().await {
        Ok(found) if found == expected => Readiness {
            ready: true,
            schema_version: found as u64,
            message: "ready".into(),
        },
        Ok(found) => Readiness {
            ready: false,
            schema_version: found as u64,
            message: format!("schema version {found}, expected {expected}"),
        },
        Err(e) => Readiness {
            ready: false,
            schema_version: 0,
            message: e.detail().to_string(),
        },
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1_000.0
}
