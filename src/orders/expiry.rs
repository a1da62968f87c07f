//! Expiry of unpaid orders: reads already show an overdue pending order as
//! EXPIRED; this background task makes it so in the database.

use std::time::Duration;

use super::lifecycle::OrderTx;
use crate::state::AppState;

/// Persists EXPIRED on overdue pending orders (reads already show them as
/// expired) and drops expired idempotency keys, every few seconds.
pub async fn sweep_expired(state: AppState) {
    let period = Duration::from_secs(state.config.orders.expiry_sweep_seconds);
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let now = state.clock.stamp();
        let cache = state.cache.clone();
        let swept = state
            .db
            .write(move |conn| {
                let mut tx = OrderTx::begin(conn, &cache)?;
                let expired = tx.expire_overdue(&now)?;
                super::repo::drop_expired_keys(&tx, &now)?;
                tx.commit()?;
                Ok(expired)
            })
            .await;
        match swept {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "pending orders expired"),
            Err(e) => tracing::warn!(error = ?e, "expiry sweep failed"),
        }
    }
}
