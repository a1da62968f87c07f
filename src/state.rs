//! The application state every handler and background task reads: the
//! configuration, the database, the cache, the protections and the payment
//! provider. It sits low in the house: domains import it, and it imports no
//! domain API and nothing from `app.rs`, which builds it.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::lockout::LockoutPolicy;
use crate::auth::password::PasswordHasher;
use crate::auth::sessions::Sessions;
use crate::auth::token::AccessTokens;
use crate::cache::ResponseCache;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::db::lock::ServeLock;
use crate::health::checks::LatestChecks;
use crate::mail::Mailer;
use crate::payments::provider::PaymentGateway;
use crate::protection::admission::Admission;
use crate::protection::limits::RateLimits;
use crate::server::ConnectionGauge;

/// Everything a request handler may need.
pub struct App {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The database: `db.read` for queries, `db.write` for changes.
    pub db: Db,
    /// Ready-to-send responses of hot reads.
    pub cache: ResponseCache,
    /// Bounded Argon2id hashing off the runtime.
    pub hasher: PasswordHasher,
    /// Signs and verifies access tokens.
    pub tokens: AccessTokens,
    /// Live sessions and their holders' current roles, cached.
    pub sessions: Sessions,
    /// Budgets per user and the failure throttle per address.
    pub limits: RateLimits,
    /// Requests running at once, and fair queuing by address past that.
    pub admission: Admission,
    /// Client connections open, counted by the server loop.
    pub connections: ConnectionGauge,
    /// The latest round of health checks, refreshed in the background.
    pub health: LatestChecks,
    /// Sign-in lockout thresholds (the counts live in the database).
    pub lockout: LockoutPolicy,
    /// The configured payment provider.
    pub payments: PaymentGateway,
    /// Renders and sends mail; its worker drains the queue.
    pub mail: Mailer,
    /// Base URL clients reach this server at.
    pub public_url: String,
    /// Renders the Prometheus exposition; `None` when metrics are off.
    pub metrics: Option<PrometheusHandle>,
    /// Held while serving so `restore` and a second server keep off; never
    /// read, released when the state is dropped.
    pub serve_lock: ServeLock,
    /// When the process started, for `uptimeSeconds`.
    pub started: Instant,
    /// The time every expiry and hold is judged by; tests move it.
    pub clock: Clock,
}

/// Shared handle to [`App`], cheap to clone into each request.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}
