//! Configuration: built-in defaults, then `wemaster.toml`, then `WEMASTER_*`
//! environment variables (`WEMASTER_SECTION__KEY`), merged by figment.
//!
//! Every struct denies unknown fields so a typo in the file or an env var stops
//! start-up instead of being silently ignored.

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Source};
use serde::{Deserialize, Serialize};

mod explain;
mod sections;
mod values;

pub use explain::env_var;
pub use sections::*;
pub use values::{IpBlock, PaymentProvider, Secret, resolve_addr};

/// `WEMASTER_*` variables that are not configuration keys (with the prefix
/// removed, as figment sees them).
const NOT_CONFIG_ENV: &[&str] = &["new_password", "config"];

/// The sections of the configuration, as `Config` names them.
const SECTIONS: [&str; 13] = [
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
    "mail",
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
    pub mail: MailConfig,
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
            ("mail.dkim_key_file", &mut self.mail.dkim_key_file),
            ("mail.templates_dir", &mut self.mail.templates_dir),
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
        let checks = self
            .serving_checks()
            .into_iter()
            .chain(self.budget_checks())
            .chain(self.store_checks())
            .chain(self.mail_checks());
        for (key, ok, why) in checks {
            if !ok {
                return Err(self.invalid(key, &why));
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

    /// The rules of the listener, probes, metrics and backups.
    fn serving_checks(&self) -> Vec<Check> {
        let s = &self.server;
        vec![
            at_least(
                "health.replication_degraded_seconds",
                self.health.replication_degraded_seconds,
                1,
            ),
            (
                "metrics.addr",
                self.metrics.addr.is_empty() || resolve_addr(&self.metrics.addr).is_ok(),
                "must be empty or host:port (an IP address or a host name of this machine)".into(),
            ),
            at_least("backup.keep", self.backup.keep, 1),
            between(
                "server.max_body_bytes",
                s.max_body_bytes,
                1_024,
                1_073_741_824,
            ),
            at_least("server.request_timeout_ms", s.request_timeout_ms, 1),
            between(
                "server.header_timeout_seconds",
                s.header_timeout_seconds,
                1,
                3_600,
            ),
            between(
                "server.keepalive_timeout_seconds",
                s.keepalive_timeout_seconds,
                1,
                3_600,
            ),
            between(
                "server.body_timeout_seconds",
                s.body_timeout_seconds,
                1,
                3_600,
            ),
            between("server.queue_timeout_ms", s.queue_timeout_ms, 1, 60_000),
            at_least("server.listen_backlog", s.listen_backlog, 1),
            (
                "server.shutdown_grace_seconds",
                s.shutdown_grace_seconds <= 3_600,
                "must be at most 3600".into(),
            ),
        ]
    }

    /// The rules of the budgets, payments and orders.
    fn budget_checks(&self) -> Vec<Check> {
        let r = &self.rate_limit;
        let p = &self.payments;
        let positive = |rate: &ClassLimit| rate.per_minute >= 1 && rate.burst >= 1;
        vec![
            at_least("rate_limit.max_keys", r.max_keys, 1),
            (
                "rate_limit.failures",
                positive(&r.failures),
                "per_minute and burst must be at least 1".into(),
            ),
            (
                "rate_limit.writes",
                positive(&r.writes) && positive(&r.admin),
                "per_minute and burst of writes and admin must be at least 1".into(),
            ),
            (
                "rate_limit.signups",
                positive(&r.signups),
                "per_minute and burst must be at least 1".into(),
            ),
            between(
                "payments.stripe_max_concurrent_calls",
                p.stripe_max_concurrent_calls,
                1,
                10_000,
            ),
            between(
                "orders.pending_ttl_seconds",
                self.orders.pending_ttl_seconds,
                60,
                86_400,
            ),
            at_least(
                "orders.expiry_sweep_seconds",
                self.orders.expiry_sweep_seconds,
                1,
            ),
            (
                "payments.webhook_secret",
                !p.webhook_secret.is_empty(),
                "must not be empty".into(),
            ),
            (
                "payments.stripe_secret_key",
                p.stripe_secret_key.is_empty()
                    || ["sk_", "rk_"]
                        .iter()
                        .any(|prefix| p.stripe_secret_key.expose().starts_with(prefix)),
                "must be a secret (sk_...) or restricted (rk_...) key; a publishable key (pk_...) cannot create checkout sessions".into(),
            ),
            (
                "payments.stripe_api_base",
                p.stripe_api_base.starts_with("http://")
                    || p.stripe_api_base.starts_with("https://"),
                "must be an http(s) URL".into(),
            ),
        ]
    }

    /// The rules of the database, the cache and the credentials.
    fn store_checks(&self) -> Vec<Check> {
        let a = &self.auth;
        vec![
            between(
                "database.read_pool_size",
                self.database.read_pool_size,
                1,
                256,
            ),
            at_least("database.pool_timeout_ms", self.database.pool_timeout_ms, 1),
            at_least("cache.ttl_seconds", self.cache.ttl_seconds, 1),
            (
                "auth.argon2_memory_kib",
                argon2::Params::new(
                    a.argon2_memory_kib,
                    a.argon2_iterations,
                    a.argon2_parallelism,
                    None,
                )
                .is_ok(),
                "argon2 rejects these parameters (memory must be at least 8 x parallelism KiB)"
                    .into(),
            ),
            at_least("auth.argon2_iterations", a.argon2_iterations, 1),
            (
                "auth.jwt_secret",
                a.jwt_secret.is_empty() || a.jwt_secret.expose().len() >= 32,
                "must be empty (generated) or at least 32 bytes".into(),
            ),
            between(
                "auth.access_token_ttl_seconds",
                a.access_token_ttl_seconds,
                10,
                86_400,
            ),
            at_least(
                "auth.refresh_token_ttl_seconds",
                a.refresh_token_ttl_seconds,
                60,
            ),
            between(
                "auth.session_recheck_seconds",
                a.session_recheck_seconds,
                1,
                300,
            ),
            at_least("auth.reset_token_ttl_seconds", a.reset_token_ttl_seconds, 1),
            at_least(
                "auth.verify_token_ttl_seconds",
                a.verify_token_ttl_seconds,
                60,
            ),
        ]
    }

    /// The rules of mail: a sender and relay lettre accepts, and sane
    /// retry and bound figures.
    fn mail_checks(&self) -> Vec<Check> {
        let m = &self.mail;
        vec![
            (
                "mail.from",
                m.from.parse::<lettre::message::Mailbox>().is_ok(),
                "must be an address, or a name and an address: \"WeMaster <no-reply@example.com>\"".into(),
            ),
            (
                "mail.smtp_url",
                m.transport != MailTransport::Smtp
                    || lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(
                        m.smtp_url.expose(),
                    )
                    .is_ok(),
                "must be an SMTP URL when mail.transport = \"smtp\": smtp://host:25, smtp://user:pass@host:587?tls=required or smtps://user:pass@host:465".into(),
            ),
            (
                "mail.dkim_key_file",
                m.dkim_selector.is_empty() == m.dkim_key_file.as_os_str().is_empty(),
                "and mail.dkim_selector go together: set both to sign mail, or neither".into(),
            ),
            between("mail.retry_base_seconds", m.retry_base_seconds, 1, 86_400),
            between(
                "mail.retry_max_seconds",
                m.retry_max_seconds,
                m.retry_base_seconds,
                7 * 86_400,
            ),
            between("mail.max_attempts", m.max_attempts, 1, 1_000),
            at_least("mail.give_up_after_seconds", m.give_up_after_seconds, 60),
            between("mail.concurrency", m.concurrency, 1, 64),
            between("mail.send_timeout_seconds", m.send_timeout_seconds, 1, 600),
            at_least("mail.degraded_after_seconds", m.degraded_after_seconds, 1),
            between("mail.per_recipient_per_hour", m.per_recipient_per_hour, 1, 1_000),
            between("mail.keep_days", m.keep_days, 0, 36_500),
        ]
    }

    /// What serving payments needs on top of [`validate`](Self::validate):
    /// the Stripe secrets, and no dev checkout reachable beyond this
    /// machine. Checked by `serve` (and `config`), not by the commands that
    /// only look after accounts and the database (`user create` on a new
    /// machine runs before the secrets are in place).
    pub fn validate_serving(&self) -> Result<(), ConfigError> {
        let p = &self.payments;
        let checks: [(&str, bool, &str); 4] = [
            (
                "orders.pending_ttl_seconds",
                p.provider != PaymentProvider::Stripe || self.orders.pending_ttl_seconds >= 1_800,
                "must be at least 1800 when payments.provider = \"stripe\": a Checkout Session expires with its order's hold, and Stripe keeps a session open for 30 minutes at least",
            ),
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

/// A rule a value must keep: its key, whether it holds, and what it must be.
type Check = (&'static str, bool, String);

fn between<T: PartialOrd + std::fmt::Display>(
    key: &'static str,
    value: T,
    low: T,
    high: T,
) -> Check {
    let holds = low <= value && value <= high;
    (key, holds, format!("must be between {low} and {high}"))
}

fn at_least<T: PartialOrd + std::fmt::Display>(key: &'static str, value: T, low: T) -> Check {
    let holds = value >= low;
    (key, holds, format!("must be at least {low}"))
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
