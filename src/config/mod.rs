//! Configuration: built-in defaults, then `wemaster.toml`, then `WEMASTER_*`
//! environment variables (`WEMASTER_SECTION__KEY`), merged by figment.
//!
//! Every struct denies unknown fields so a typo in the file or an env var stops
//! start-up instead of being silently ignored.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Source};
use serde::{Deserialize, Serialize};

pub use crate::payments::model::PaymentProvider;

mod explain;

pub use explain::env_var;

/// `WEMASTER_*` variables that are not configuration keys (with the prefix
/// removed, as figment sees them).
const NOT_CONFIG_ENV: &[&str] = &["new_password", "config"];

/// The sections of the configuration, as `Config` names them.
const SECTIONS: [&str; 12] = [
    "server",
    "database",
    "health",
    "demo",
    "cache",
    "auth",
    "log",
    "metrics",
    "backup",
    "orders",
    "payments",
    "rate_limit",
];

/// Whether a `WEMASTER_*` variable (prefix removed, lower case) is meant as
/// configuration: `SECTION__KEY`, or anything that starts with a section's
/// name (so `WEMASTER_SERVER_ADDR`, a misspelt key, is refused by name).
/// Other variables that merely share the prefix (`WEMASTER_HOME`) are
/// left alone.
fn is_config_env(name: &str) -> bool {
    !NOT_CONFIG_ENV.contains(&name)
        && (name.contains("__") || SECTIONS.iter().any(|s| name.starts_with(s)))
}

/// The effective configuration of one server process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub health: HealthConfig,
    pub demo: DemoConfig,
    pub cache: CacheConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub backup: BackupConfig,
    pub orders: OrdersConfig,
    pub payments: PaymentsConfig,
    pub rate_limit: RateLimitConfig,
}

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
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            pending_ttl_seconds: 30 * 60,
            idempotency_ttl_seconds: 24 * 3600,
            expiry_sweep_seconds: 30,
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

/// An IP address or a CIDR block, written `10.0.0.1` or `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock(pub ipnet::IpNet);

impl IpBlock {
    pub fn contains(&self, ip: &std::net::IpAddr) -> bool {
        self.0.contains(ip)
    }
}

impl std::str::FromStr for IpBlock {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            return Ok(IpBlock(net));
        }
        text.parse::<std::net::IpAddr>()
            .map(|ip| IpBlock(ipnet::IpNet::from(ip)))
            .map_err(|_| format!("`{text}` is neither an IP address nor a CIDR block"))
    }
}

/// `host:port` as a socket address: an IP address as written, or a host
/// name resolved now (its first IPv4 address, else its first).
pub fn resolve_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("no port".into());
    };
    if port.parse::<u16>().is_err() {
        return Err(format!("`{port}` is not a port (0 to 65535)"));
    }
    let found: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("the host name `{host}` could not be resolved ({e})"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("the host name `{host}` has no address"))
}

fn deserialize_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    resolve_addr(&text).map_err(serde::de::Error::custom)
}

impl<'de> Deserialize<'de> for IpBlock {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for IpBlock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

/// A string that never prints: `Debug` and `Serialize` show a mask, so
/// `wemaster config` and logs cannot leak it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"********\""
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "********" })
    }
}

/// Levels a log filter may name.
const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// A tracing filter whose every directive names a level: `info`, or
/// `wemaster=debug,info`. A bare word that is not a level is a valid filter
/// to tracing (all levels of a target of that name) but silences everything
/// else, which is never what `infoo` meant.
fn check_log_level(filter: &str) -> Result<(), String> {
    let allowed = format!(
        "must be a level ({}) or target=level directives such as \"wemaster=debug,info\"",
        LOG_LEVELS.join(", ")
    );
    for directive in filter.split(',').map(str::trim) {
        let level = directive.rsplit('=').next().unwrap_or_default();
        if !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            let closest = LOG_LEVELS
                .iter()
                .map(|l| (strsim::jaro_winkler(&level.to_ascii_lowercase(), l), l))
                .filter(|(score, _)| *score >= 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, l)| format!("; did you mean \"{l}\"?"))
                .unwrap_or_default();
            return Err(format!("{level:?} is not a level{closest}; {allowed}"));
        }
    }
    if tracing_subscriber::EnvFilter::try_new(filter).is_err() {
        return Err(allowed);
    }
    Ok(())
}

/// A configuration that cannot be used, explained in one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults, then the TOML file at `path` if it exists, then the
    /// environment, and checks every value.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment(path))
    }

    /// The layered sources, exposed so tests can add their own on top.
    pub fn figment(path: &Path) -> Figment {
        // Built-in defaults come from serde's `default` attributes; a
        // `Serialized` provider of the whole configuration would feed the
        // masked secrets back in. The tables inside sections have no one
        // default of their own, so theirs go in under the file: a partial
        // table (`[rate_limit.failures] burst = 50`) keeps its other keys.
        let limits = RateLimitConfig::default();
        let nested = serde_json::json!({"rate_limit": {
            "failures": limits.failures,
            "writes": limits.writes,
            "admin": limits.admin,
            "signups": limits.signups,
        }});
        Figment::from(Serialized::defaults(nested))
            .merge(Toml::file(path))
            .merge(
                Env::prefixed("WEMASTER_")
                    .filter(|name| is_config_env(&name.as_str().to_ascii_lowercase()))
                    .split("__"),
            )
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let mut config: Config = figment
            .extract()
            .map_err(|e| explain::explain(e, &figment))?;
        config.anchor_paths(&figment);
        config.validate()?;
        Ok(config)
    }

    /// Makes every file path absolute, as nginx and systemd read theirs: a
    /// relative path in the configuration file, or a built-in default one,
    /// is relative to the file's folder (so `wemaster --config
    /// /opt/wemaster/wemaster.toml` finds `/opt/wemaster/data/wemaster.db`
    /// from any folder); one from an environment variable, or any path when
    /// there is no file, to the current folder, as a shell reads it.
    fn anchor_paths(&mut self, figment: &Figment) {
        let file_folder = |source: Option<&Source>| match source {
            Some(Source::File(file)) => file.parent().map(Path::to_path_buf),
            _ => None,
        };
        let config_folder = figment
            .metadata()
            .find_map(|meta| file_folder(meta.source.as_ref()));
        for (key, path) in [
            ("database.path", &mut self.database.path),
            ("backup.dir", &mut self.backup.dir),
            (
                "health.litestream_socket",
                &mut self.health.litestream_socket,
            ),
        ] {
            if path.as_os_str().is_empty() || path.is_absolute() {
                continue;
            }
            let base = match figment.find_metadata(key) {
                Some(meta) => file_folder(meta.source.as_ref()),
                None => config_folder.clone(),
            };
            let joined = base.map_or_else(|| path.clone(), |folder| folder.join(&*path));
            *path = std::path::absolute(&joined).unwrap_or(joined);
        }
    }

    /// Checks the values serde cannot: ranges and relations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let a = &self.auth;
        let p = &self.payments;
        let r = &self.rate_limit;
        let checks: [(&str, bool, &str); 31] = [
            (
                "health.replication_degraded_seconds",
                self.health.replication_degraded_seconds >= 1,
                "must be at least 1",
            ),
            (
                "metrics.addr",
                self.metrics.addr.is_empty() || resolve_addr(&self.metrics.addr).is_ok(),
                "must be empty or host:port (an IP address or a host name of this machine)",
            ),
            ("backup.keep", self.backup.keep >= 1, "must be at least 1"),
            (
                "server.max_body_bytes",
                (1_024..=1_073_741_824).contains(&self.server.max_body_bytes),
                "must be between 1024 and 1073741824",
            ),
            (
                "server.request_timeout_ms",
                self.server.request_timeout_ms >= 1,
                "must be at least 1",
            ),
            (
                "server.header_timeout_seconds",
                (1..=3_600).contains(&self.server.header_timeout_seconds),
                "must be between 1 and 3600",
            ),
            (
                "server.keepalive_timeout_seconds",
                (1..=3_600).contains(&self.server.keepalive_timeout_seconds),
                "must be between 1 and 3600",
            ),
            (
                "server.body_timeout_seconds",
                (1..=3_600).contains(&self.server.body_timeout_seconds),
                "must be between 1 and 3600",
            ),
            ("rate_limit.max_keys", r.max_keys >= 1, "must be at least 1"),
            (
                "rate_limit.failures",
                r.failures.per_minute >= 1 && r.failures.burst >= 1,
                "per_minute and burst must be at least 1",
            ),
            (
                "server.queue_timeout_ms",
                (1..=60_000).contains(&self.server.queue_timeout_ms),
                "must be between 1 and 60000",
            ),
            (
                "server.listen_backlog",
                self.server.listen_backlog >= 1,
                "must be at least 1",
            ),
            (
                "rate_limit.writes",
                r.writes.per_minute >= 1
                    && r.writes.burst >= 1
                    && r.admin.per_minute >= 1
                    && r.admin.burst >= 1,
                "per_minute and burst of writes and admin must be at least 1",
            ),
            (
                "rate_limit.signups",
                r.signups.per_minute >= 1 && r.signups.burst >= 1,
                "per_minute and burst must be at least 1",
            ),
            (
                "payments.stripe_max_concurrent_calls",
                (1..=10_000).contains(&self.payments.stripe_max_concurrent_calls),
                "must be between 1 and 10000",
            ),
            (
                "orders.pending_ttl_seconds",
                (60..=86_400).contains(&self.orders.pending_ttl_seconds),
                "must be between 60 and 86400",
            ),
            (
                "orders.expiry_sweep_seconds",
                self.orders.expiry_sweep_seconds >= 1,
                "must be at least 1",
            ),
            (
                "payments.webhook_secret",
                !p.webhook_secret.is_empty(),
                "must not be empty",
            ),
            (
                "payments.stripe_secret_key",
                p.stripe_secret_key.is_empty()
                    || ["sk_", "rk_"]
                        .iter()
                        .any(|prefix| p.stripe_secret_key.expose().starts_with(prefix)),
                "must be a secret (sk_...) or restricted (rk_...) key; a publishable key (pk_...) cannot create checkout sessions",
            ),
            (
                "payments.stripe_api_base",
                p.stripe_api_base.starts_with("http://")
                    || p.stripe_api_base.starts_with("https://"),
                "must be an http(s) URL",
            ),
            (
                "database.read_pool_size",
                (1..=256).contains(&self.database.read_pool_size),
                "must be between 1 and 256",
            ),
            (
                "database.pool_timeout_ms",
                self.database.pool_timeout_ms >= 1,
                "must be at least 1",
            ),
            (
                "server.shutdown_grace_seconds",
                self.server.shutdown_grace_seconds <= 3_600,
                "must be at most 3600",
            ),
            (
                "cache.ttl_seconds",
                self.cache.ttl_seconds >= 1,
                "must be at least 1",
            ),
            (
                "auth.argon2_memory_kib",
                argon2::Params::new(
                    a.argon2_memory_kib,
                    a.argon2_iterations,
                    a.argon2_parallelism,
                    None,
                )
                .is_ok(),
                "argon2 rejects these parameters (memory must be at least 8 x parallelism KiB)",
            ),
            (
                "auth.argon2_iterations",
                a.argon2_iterations >= 1,
                "must be at least 1",
            ),
            (
                "auth.jwt_secret",
                a.jwt_secret.is_empty() || a.jwt_secret.expose().len() >= 32,
                "must be empty (generated) or at least 32 bytes",
            ),
            (
                "auth.access_token_ttl_seconds",
                (10..=86_400).contains(&a.access_token_ttl_seconds),
                "must be between 10 and 86400",
            ),
            (
                "auth.refresh_token_ttl_seconds",
                a.refresh_token_ttl_seconds >= 60,
                "must be at least 60",
            ),
            (
                "auth.session_recheck_seconds",
                (1..=300).contains(&a.session_recheck_seconds),
                "must be between 1 and 300",
            ),
            (
                "auth.reset_token_ttl_seconds",
                a.reset_token_ttl_seconds >= 1,
                "must be at least 1",
            ),
        ];
        for (key, ok, why) in checks {
            if !ok {
                return Err(self.invalid(key, why));
            }
        }
        if let Err(why) = check_log_level(&self.log.level) {
            return Err(self.invalid("log.level", &why));
        }
        if self.database.path.as_os_str().is_empty() {
            return Err(self.invalid("database.path", "must not be empty"));
        }
        Ok(())
    }

    /// What serving payments needs on top of [`validate`](Self::validate):
    /// the Stripe secrets, and no dev checkout reachable beyond this
    /// machine. Checked by `serve` (and `config`), not by the commands that
    /// only look after accounts and the database (`user create` on a new
    /// machine runs before the secrets are in place).
    pub fn validate_serving(&self) -> Result<(), ConfigError> {
        let p = &self.payments;
        let checks: [(&str, bool, &str); 3] = [
            (
                "payments.stripe_secret_key",
                p.provider != PaymentProvider::Stripe || !p.stripe_secret_key.is_empty(),
                "is required when payments.provider = \"stripe\"",
            ),
            (
                "payments.webhook_secret",
                p.provider != PaymentProvider::Stripe
                    || p.webhook_secret.expose() != DEV_WEBHOOK_SECRET,
                "must be your Stripe endpoint's own signing secret (whsec_... from the Stripe dashboard or `stripe listen`) when payments.provider = \"stripe\"; the dev default is public",
            ),
            (
                "payments.provider",
                p.provider != PaymentProvider::Dev
                    || p.dev_allow_public
                    || self.server.loopback_only(),
                "is \"dev\", whose checkout marks orders paid without payment, while server.addr or server.public_url is reachable beyond loopback; use \"stripe\", or set payments.dev_allow_public = true if a public demo is intended",
            ),
        ];
        for (key, ok, why) in checks {
            if !ok {
                return Err(self.invalid(key, why));
            }
        }
        Ok(())
    }

    /// "invalid value for `key` = value (environment variable ...): why".
    fn invalid(&self, key: &str, why: &str) -> ConfigError {
        // Serialized, so secrets are masked.
        let value = toml::Value::try_from(self)
            .ok()
            .and_then(|root| {
                key.split('.')
                    .try_fold(root, |v, part| v.get(part).cloned())
            })
            .map(|v| format!(" = {v}"))
            .unwrap_or_default();
        let var = explain::env_var(key);
        let origin = if std::env::var_os(&var).is_some() {
            format!(" (environment variable {var})")
        } else {
            String::new()
        };
        ConfigError(format!("invalid value for `{key}`{value}{origin}: {why}"))
    }

    /// The configuration as TOML with every secret masked.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sections_are_configs_fields() {
        let value = serde_json::to_value(Config::default()).unwrap();
        let mut fields: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        let mut sections: Vec<_> = SECTIONS.iter().map(|s| s.to_string()).collect();
        fields.sort();
        sections.sort();
        assert_eq!(fields, sections);
    }

    #[test]
    fn variables_that_only_share_the_prefix_are_not_configuration() {
        assert!(is_config_env("server__addr"));
        assert!(is_config_env("nosuch__key"));
        assert!(is_config_env("server_addr"), "a misspelt key is refused");
        assert!(!is_config_env("home"));
        assert!(!is_config_env("new_password"));
        assert!(!is_config_env("config"));
    }
}
