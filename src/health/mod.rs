//! Health probes: `/healthz` (full report), `/readyz` (can serve traffic),
//! `/livez` (the process answers), under `/api/v1` and at the root.

pub mod api;
pub mod model;
mod replication;

use std::time::Instant;

use crate::db;
use crate::state::AppState;
use model::{CacheCheck, CheckStatus, DatabaseCheck, Health, Readiness, Services, SystemFigures};

/// Runs every check and reports the worst status.
pub async fn report(state: &AppState) -> Health {
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
    let status = database
        .status
        .max(cache.status)
        .max(replication.as_ref().map_or(CheckStatus::Up, |r| r.status));
    Health {
        status,
        timestamp: crate::clock::now(),
        uptime_seconds: state.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        services: Services {
            database,
            cache,
            replication,
        },
        system: SystemFigures {
            rss_bytes: crate::ops::system::rss_bytes(),
            open_connections: crate::ops::system::open_sockets(),
            hash_slots: state.config.auth.effective_hash_concurrency() as u64,
        },
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

fn check_cache(state: &AppState) -> CacheCheck {
    let threshold = state.config.health.cache_degraded_ms;
    let started = Instant::now();
    // Reading the figures takes the cache's internal locks, so a wedged
    // cache shows here as a slow probe.
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
