//! The sections of the configuration and their built-in defaults, one
//! struct per `[section]` of `wemaster.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::PaymentProvider;
use super::values::{IpBlock, Secret, deserialize_addr};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address of the HTTP server: an IP address and port, or a host
    /// name of this machine and port (`localhost:3002`), resolved at start.
    #[serde(deserialize_with = "deserialize_addr")]
    pub addr: SocketAddr,
    /// How long in-flight requests may run on after a shutdown signal.
    pub shutdown_grace_seconds: u64,
    /// Peers (IPs or CIDR blocks) whose `X-Forwarded-For` is believed, e.g.
    /// the reverse proxy in front of this server.
    pub trusted_proxies: Vec<IpBlock>,
    /// Base URL clients reach this server at (for checkout and reset links);
    /// empty means `http://` plus the bound listen address.
    pub public_url: String,
    /// Largest accepted request body.
    pub max_body_bytes: u64,
    /// A request still running after this long is answered 503.
    pub request_timeout_ms: u64,
    /// A request's headers must arrive within this long of the connection's
    /// accept, or of their first byte on a kept-alive connection, else the
    /// connection is closed.
    pub header_timeout_seconds: u64,
    /// A connection that has been answered may wait this long for its next
    /// request. Longer than a load balancer's idle timeout (60 s at AWS's
    /// and nginx's upstream default), so the balancer, never the server,
    /// closes an idle pooled connection: a request it sends on a connection
    /// the server closed at the same moment fails.
    pub keepalive_timeout_seconds: u64,
    /// A request's whole body must arrive within this long of its headers,
    /// else it gets 408.
    pub body_timeout_seconds: u64,
    /// Most connections open at once; at the cap, the one that has waited
    /// longest without a request in progress is closed to make room. 0:
    /// three quarters of the open-file limit.
    pub max_connections: u32,
    /// Origins allowed to call the API from a browser (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// Send Strict-Transport-Security (set when served over TLS).
    pub hsts: bool,
    /// Requests run at once (not counting those that hash a password);
    /// past it requests wait their turn, fairly by client address. 0: no cap.
    pub max_in_flight: u32,
    /// Requests waiting for a turn at once, across all addresses; when full,
    /// the address with the most waiting gives up its newest (429), or, when
    /// it waits alone, the newcomer gets 503.
    pub queue_max: u32,
    /// Longest wait for a turn: a request facing a longer queue gets 503
    /// with that wait as `Retry-After` at once.
    pub queue_timeout_ms: u64,
    /// Connections the kernel queues for accepting (the listen backlog), for
    /// bursts of new connections; the kernel caps it at net.core.somaxconn.
    pub listen_backlog: u32,
}

impl ServerConfig {
    /// Whether clients can reach this server only from this machine: a
    /// loopback listen address, and a public URL that is empty or names
    /// localhost or a loopback address.
    pub fn loopback_only(&self) -> bool {
        if !self.addr.ip().is_loopback() {
            return false;
        }
        if self.public_url.is_empty() {
            return true;
        }
        let Ok(uri) = self.public_url.parse::<poem::http::Uri>() else {
            return false;
        };
        match uri.host() {
            Some(host) => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                host.eq_ignore_ascii_case("localhost")
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            None => false,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3002)),
            shutdown_grace_seconds: 10,
            trusted_proxies: Vec::new(),
            public_url: String::new(),
            max_body_bytes: 1024 * 1024,
            request_timeout_ms: 30_000,
            header_timeout_seconds: 10,
            keepalive_timeout_seconds: 75,
            body_timeout_seconds: 10,
            max_connections: 0,
            cors_origins: Vec::new(),
            hsts: false,
            max_in_flight: 64,
            queue_max: 10_000,
            queue_timeout_ms: 2_000,
            listen_backlog: 4_096,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// SQLite database file; its folder is created on first start.
    pub path: PathBuf,
    /// Number of read-only connections in the reader pool.
    pub read_pool_size: u32,
    /// How long SQLite waits on a locked database before giving up.
    pub busy_timeout_ms: u64,
    /// How long a request waits for a free connection before it gets a 503.
    pub pool_timeout_ms: u64,
    /// Who checkpoints the WAL into the database file.
    pub checkpoints: Checkpoints,
}

/// Who checkpoints the WAL (copies it into the database file and restarts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checkpoints {
    /// This process: SQLite's automatic checkpoints after a commit past
    /// 1000 WAL pages, and a TRUNCATE checkpoint at shutdown.
    Wemaster,
    /// Litestream, which must see every WAL frame before the WAL restarts:
    /// automatic checkpoints are off, and shutdown only runs a PASSIVE
    /// checkpoint, which never restarts or truncates the WAL.
    Litestream,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/wemaster.db"),
            read_pool_size: 8,
            busy_timeout_ms: 5_000,
            pool_timeout_ms: 5_000,
            checkpoints: Checkpoints::Wemaster,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// A database round-trip slower than this reports `degraded`.
    pub database_degraded_ms: u64,
    /// A cache probe slower than this reports `degraded`.
    pub cache_degraded_ms: u64,
    /// Litestream's control socket; when set, `/healthz` reports replication.
    pub litestream_socket: PathBuf,
    /// A last upload to the replica older than this reports `degraded`.
    pub replication_degraded_seconds: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            database_degraded_ms: 100,
            cache_degraded_ms: 10,
            litestream_socket: PathBuf::new(),
            replication_degraded_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Load the demo fixtures when the database holds no users yet.
    pub seed_on_empty: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            seed_on_empty: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Upper bound of the response cache, in bytes of cached bodies.
    pub max_bytes: u64,
    /// How long a cached response may be served before it is rebuilt.
    pub ttl_seconds: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_bytes: 32 * 1024 * 1024,
            ttl_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// Password hashes computed at once: one hashing thread each, each
    /// keeping `argon2_memory_kib` of working memory; 0 means the number of
    /// CPU cores.
    pub hash_concurrency: usize,
    /// Longest wait for a hashing turn: a sign-in facing a longer queue gets
    /// 503 with that wait as `Retry-After` at once.
    pub hash_queue_timeout_ms: u64,
    /// HS256 signing secret for access tokens (at least 32 bytes). Empty:
    /// generated on first start and kept in the database.
    pub jwt_secret: Secret,
    /// `iss` claim of access tokens.
    pub jwt_issuer: String,
    /// `aud` claim of access tokens.
    pub jwt_audience: String,
    /// Lifetime of an access token.
    pub access_token_ttl_seconds: u64,
    /// Lifetime of a refresh token.
    pub refresh_token_ttl_seconds: u64,
    /// Lifetime of a password-reset token.
    pub reset_token_ttl_seconds: u64,
    /// How long a session's liveness and its account's role are cached
    /// before the database is asked again. Changes made through the API
    /// apply at once; this bounds changes made outside it (a hand edit).
    pub session_recheck_seconds: u64,
    /// Link sent for a password reset; `{token}` is replaced by the token.
    /// Empty (the default): this server's own plain page, at
    /// `server.public_url` (else `server.addr`) + `/reset-password?token=..`;
    /// production points it at the front end's page.
    pub reset_link: String,
    /// Lifetime of an email-verification link.
    pub verify_token_ttl_seconds: u64,
    /// Link sent to verify an email address; `{token}` is replaced by the
    /// token. Empty (the default): this server's own page, at
    /// `server.public_url` (else `server.addr`) + `/verify-email?token=..`.
    pub verify_link: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: 0,
            hash_queue_timeout_ms: 2_000,
            jwt_secret: Secret::default(),
            jwt_issuer: "wemaster".into(),
            jwt_audience: "wemaster-api".into(),
            access_token_ttl_seconds: 15 * 60,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            reset_token_ttl_seconds: 30 * 60,
            session_recheck_seconds: 10,
            reset_link: String::new(),
            verify_token_ttl_seconds: 3 * 24 * 3_600,
            verify_link: String::new(),
        }
    }
}

impl AuthConfig {
    /// Hashing slots: the configured number, or one per CPU core.
    pub fn effective_hash_concurrency(&self) -> usize {
        if self.hash_concurrency == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            self.hash_concurrency
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics at GET /metrics.
    pub enabled: bool,
    /// Listen address of /metrics, apart from the API: loopback by default,
    /// so the main port never publishes the server's internals. Empty: served
    /// on the main address, to whoever can reach it.
    pub addr: String,
}

/// Where /metrics listens unless told otherwise: loopback, on the port
/// Prometheus exporters conventionally take in this range.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9102";

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: DEFAULT_METRICS_ADDR.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Minutes between scheduled backups; 0 turns them off.
    pub interval_minutes: u64,
    /// Folder scheduled backups are written to.
    pub dir: PathBuf,
    /// Scheduled backups kept; older ones are deleted.
    pub keep: usize,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            interval_minutes: 0,
            dir: PathBuf::from("data/backups"),
            keep: 7,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter directive, e.g. `info` or `wemaster=debug,info`.
    pub level: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersConfig {
    /// How long an order waits for payment before it expires.
    pub pending_ttl_seconds: u64,
    /// How long an Idempotency-Key is remembered.
    pub idempotency_ttl_seconds: u64,
    /// How often expired pending orders are swept to EXPIRED.
    pub expiry_sweep_seconds: u64,
    /// Whether an account must have verified its email before it may buy
    /// (403 `EMAIL_NOT_VERIFIED` on a draft until then).
    pub require_verified_email: bool,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            pending_ttl_seconds: 30 * 60,
            idempotency_ttl_seconds: 24 * 3600,
            expiry_sweep_seconds: 30,
            require_verified_email: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// `dev` (no network, a local checkout page) or `stripe`.
    pub provider: PaymentProvider,
    /// Secret that webhook signatures are verified with (and the dev provider signs with).
    pub webhook_secret: Secret,
    /// Largest accepted gap between a webhook's signed timestamp and now.
    pub webhook_tolerance_seconds: u64,
    /// Stripe secret API key (`sk_...`), for the stripe provider.
    pub stripe_secret_key: Secret,
    /// Stripe API base URL; tests point it at a local fake.
    pub stripe_api_base: String,
    /// Per-attempt timeout of a Stripe API call.
    pub stripe_timeout_ms: u64,
    /// Stripe API calls waiting at once; a draft past it gets 503 at once.
    pub stripe_max_concurrent_calls: u32,
    /// Where Stripe sends the buyer after paying; `{orderId}` is replaced.
    /// Empty (the default): this server's `/checkout/success` page at
    /// `server.public_url`, else `server.addr`.
    pub success_url: String,
    /// Where Stripe sends the buyer who cancels; `{orderId}` is replaced.
    /// Empty (the default): this server's `/checkout/cancel` page.
    pub cancel_url: String,
    /// Lets the dev provider run while the server is reachable beyond
    /// loopback (a non-loopback `server.addr` or `server.public_url`):
    /// whoever holds a checkout link can then mark that order paid without
    /// paying. For a shared demo only.
    pub dev_allow_public: bool,
}

/// The dev provider's webhook secret when none is configured: public (it is
/// in this file and docs/payments.md), so the stripe provider refuses it.
pub const DEV_WEBHOOK_SECRET: &str = "whsec_dev_only_change_me";

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            provider: PaymentProvider::Dev,
            webhook_secret: Secret::new(DEV_WEBHOOK_SECRET),
            webhook_tolerance_seconds: 300,
            stripe_secret_key: Secret::default(),
            stripe_api_base: "https://api.stripe.com".into(),
            stripe_timeout_ms: 10_000,
            stripe_max_concurrent_calls: 32,
            success_url: String::new(),
            cancel_url: String::new(),
            dev_allow_public: false,
        }
    }
}

/// Rate and burst of one route class's token buckets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassLimit {
    /// Tokens added per minute (sustained rate).
    pub per_minute: u32,
    /// Bucket size: requests allowed at once after a quiet spell.
    pub burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Master switch for the budgets, the failure throttle and the login
    /// lockout (not for the in-flight caps of `[server]`).
    pub enabled: bool,
    /// Most keys (users or addresses) remembered per class; idle ones go first.
    pub max_keys: u64,
    /// Failures charged to a client address (wrong passwords, refused
    /// sign-ups, bad refresh, reset or access tokens, reset requests); once
    /// spent, the address is refused on the credential routes.
    pub failures: ClassLimit,
    /// Changes (orders, offerings, checkout actions); per signed-in user.
    pub writes: ClassLimit,
    /// Admin views; per admin.
    pub admin: ClassLimit,
    /// Accounts created per client address (sign-ups, refused ones too).
    pub signups: ClassLimit,
    /// Failed logins of one account from one address that cost nothing; the
    /// next failure locks that address out of the account (it is still
    /// answered 401; later tries get 429). Other addresses are unaffected.
    pub login_free_failures: u32,
    /// Failed logins of one account from all the addresses it never signed
    /// in from, summed, that cost nothing; the next failure locks every such
    /// address out of it. Addresses it signed in from are never locked by
    /// another's failures.
    pub login_unfamiliar_free_failures: u32,
    /// First lockout; each further failure doubles it.
    pub login_lockout_base_ms: u64,
    /// Longest lockout.
    pub login_lockout_max_seconds: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_keys: 100_000,
            failures: ClassLimit {
                per_minute: 10,
                burst: 30,
            },
            writes: ClassLimit {
                per_minute: 600,
                burst: 300,
            },
            admin: ClassLimit {
                per_minute: 3_000,
                burst: 600,
            },
            signups: ClassLimit {
                per_minute: 1,
                burst: 100,
            },
            login_free_failures: 5,
            login_unfamiliar_free_failures: 20,
            login_lockout_base_ms: 1_000,
            login_lockout_max_seconds: 900,
        }
    }
}

/// How mail leaves the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Kept in the admin outbox (`GET /admin/outbox`) and named in the log;
    /// nothing leaves the machine.
    Outbox,
    /// Delivered through the SMTP server of `mail.smtp_url`.
    Smtp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `outbox` (kept for an admin to read) or `smtp` (delivered).
    pub transport: MailTransport,
    /// SMTP relay: `smtp://host:25` (plain), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS), `smtps://user:pass@host:465` (TLS from the first byte).
    pub smtp_url: Secret,
    /// Sender of every message: `Name <address>` or a bare address.
    pub from: String,
    /// DKIM selector (the `s=` tag; its public key is published at
    /// `<selector>._domainkey.<from's domain>`); empty: mail is not signed.
    pub dkim_selector: String,
    /// The DKIM private key, with `dkim_selector`: RSA in PKCS#1 PEM, or an
    /// Ed25519 seed in base64.
    pub dkim_key_file: PathBuf,
    /// Folder whose `<locale>/<kind>.subject|txt|html` files replace the
    /// built-in templates of the same name; empty: the built-in ones.
    pub templates_dir: PathBuf,
    /// Wait before the second attempt; each later wait doubles, with jitter.
    pub retry_base_seconds: u64,
    /// Longest wait between two attempts.
    pub retry_max_seconds: u64,
    /// Attempts before a message is given up (DEAD).
    pub max_attempts: u32,
    /// A message still unsent this long after it was queued is given up.
    pub give_up_after_seconds: u64,
    /// Messages handed to the SMTP server at once.
    pub concurrency: usize,
    /// Longest an SMTP exchange may take before the attempt counts as failed.
    pub send_timeout_seconds: u64,
    /// `/healthz` shows mail degraded while a message has waited longer than this.
    pub degraded_after_seconds: u64,
    /// Most messages of one kind a request may cause to one address in an
    /// hour (password resets, verification links): past it, no more are
    /// queued, so nobody can mail-bomb an address through this server.
    pub per_recipient_per_hour: u32,
    /// Sent, kept and dead messages (with their text, which names people)
    /// are deleted this many days after they were queued; 0 keeps them.
    pub keep_days: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::Outbox,
            smtp_url: Secret::default(),
            from: "WeMaster <no-reply@example.com>".into(),
            dkim_selector: String::new(),
            dkim_key_file: PathBuf::new(),
            templates_dir: PathBuf::new(),
            retry_base_seconds: 30,
            retry_max_seconds: 3_600,
            max_attempts: 20,
            give_up_after_seconds: 2 * 24 * 3_600,
            concurrency: 4,
            send_timeout_seconds: 30,
            degraded_after_seconds: 600,
            per_recipient_per_hour: 5,
            keep_days: 90,
        }
    }
}
