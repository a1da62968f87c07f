//! The composition root: `Application::build` opens the database, builds
//! the state (`state.rs`), binds the listener (port 0 works, for tests and
//! the bench); `routes` composes every route and layer; `run_until` serves
//! until a shutdown signal. Nothing below imports this module.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use poem::endpoint::{BoxEndpoint, make_sync};
use poem::listener::TcpAcceptor;
use poem::web::Redirect;
use poem::{EndpointExt, IntoResponse, Route, Server, get, handler, post};

use crate::auth::lockout::LockoutPolicy;
use crate::auth::password::PasswordHasher;
use crate::auth::sessions::Sessions;
use crate::auth::token::AccessTokens;
use crate::cache::ResponseCache;
use crate::clock::Clock;
use crate::compression::Precompressed;
use crate::config::{Config, IpBlock};
use crate::db::lock::ServeLock;
use crate::db::{self, Db};
use crate::health;
use crate::ops::http::RouteTable;
use crate::payments::dev_checkout;
use crate::payments::provider::PaymentGateway;
use crate::protection::admission::Admission;
use crate::protection::layers;
use crate::protection::limits::RateLimits;
use crate::state::{App, AppState};

/// A server bound to its port, not yet serving.
pub struct Application {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    /// The separate `/metrics` listener (`metrics.addr`), when there is one.
    metrics_listener: Option<tokio::net::TcpListener>,
    state: AppState,
}

impl Application {
    /// Binds the listen addresses, then opens and migrates the database and
    /// seeds demo data when configured and the database is empty.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Bind first: a port in use is reported before anything is created.
        let listener = crate::server::bind(config.server.addr, config.server.listen_backlog)
            .map_err(|e| cannot_listen(e, &config.server.addr.to_string(), "server.addr"))?;
        let addr = listener
            .local_addr()
            .context("listener has no socket address")?;
        let metrics_listener = if config.metrics.enabled && !config.metrics.addr.is_empty() {
            let metrics_addr = config.metrics.addr.as_str();
            let listener = tokio::net::TcpListener::bind(metrics_addr)
                .await
                .map_err(|e| cannot_listen(e, metrics_addr, "metrics.addr"))?;
            Some(listener)
        } else {
            None
        };
        let config = Arc::new(config);
        let cfg = config.clone();
        let clock = Clock::system();
        let token_clock = clock.clone();
        let (db, hasher, tokens, lock) =
            tokio::task::spawn_blocking(move || open_store(&cfg, token_clock))
                .await
                .context("database start-up task failed")??;

        let public_url = if config.server.public_url.is_empty() {
            format!("http://{}", browsable(addr))
        } else {
            config.server.public_url.trim_end_matches('/').to_string()
        };
        let payments = PaymentGateway::from_config(&config.payments, &public_url)?;
        // Reads the templates folder and the DKIM key: off the runtime.
        let mail_config = config.mail.clone();
        let mail = tokio::task::spawn_blocking(move || crate::mail::Mailer::new(&mail_config))
            .await
            .context("mail start-up task failed")?
            .map_err(anyhow::Error::msg)?;
        if config.payments.provider == crate::config::PaymentProvider::Dev
            && !config.server.loopback_only()
        {
            tracing::warn!(
                "payments.dev_allow_public = true: the dev checkout is reachable beyond this machine, and whoever holds a checkout link can mark its order paid without paying"
            );
        }
        let state = AppState(Arc::new(App {
            cache: ResponseCache::new(&config.cache),
            limits: RateLimits::new(&config.rate_limit),
            admission: Admission::new(&config.server, &config.auth),
            connections: crate::server::ConnectionGauge::default(),
            health: Default::default(),
            lockout: LockoutPolicy::new(&config.rate_limit),
            sessions: Sessions::new(
                config.rate_limit.max_keys,
                Duration::from_secs(config.auth.session_recheck_seconds),
                clock.clone(),
            ),
            payments,
            mail,
            public_url,
            metrics: if config.metrics.enabled {
                crate::metrics::install()
            } else {
                None
            },
            serve_lock: lock,
            config,
            db,
            hasher,
            tokens,
            started: Instant::now(),
            clock,
        }));
        Ok(Self {
            listener,
            addr,
            metrics_listener,
            state,
        })
    }

    /// Where `/metrics` is served apart from the API (with the real port when
    /// 0 was asked for); `None` when it is off or on the main address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish within the configured grace period and closes the
    /// database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.run_until_forced(shutdown, std::future::pending())
            .await
    }

    /// [`run_until`](Self::run_until), where `force` (polled only once
    /// `shutdown` resolved, e.g. a second Ctrl-C) cuts the grace period short.
    pub async fn run_until_forced(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        force: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = Duration::from_secs(self.state.config.server.shutdown_grace_seconds);
        let mut background = vec![
            tokio::spawn(crate::orders::expiry::sweep_expired(self.state.clone())),
            tokio::spawn(crate::ops::backup::scheduled(self.state.clone())),
            tokio::spawn(crate::health::keep_checking(self.state.clone())),
            tokio::spawn(crate::mail::delivery::deliver(self.state.clone())),
        ];
        if let Some(handle) = self.state.metrics.clone() {
            background.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    handle.run_upkeep();
                }
            }));
        }
        if let Some(listener) = self.metrics_listener {
            let addr = listener.local_addr()?;
            let listener = TcpAcceptor::from_tokio(listener)?;
            tracing::info!(%addr, "metrics listening at http://{addr}/metrics");
            let app = Route::new()
                .at("/metrics", get(crate::ops::http::metrics_endpoint))
                .data(self.state.clone());
            background.push(tokio::spawn(async move {
                if let Err(e) = Server::new_with_acceptor(listener).run(app).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            }));
        }
        tracing::info!(
            addr = %self.addr,
            "listening; Swagger UI at http://{}/docs; Ctrl-C stops the server",
            browsable(self.addr)
        );
        let server = &self.state.config.server;
        let max_connections = match server.max_connections {
            0 => match crate::server::raise_file_limit() {
                Ok(files) => crate::server::auto_max_connections(files),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the open-file limit; capping connections at 768");
                    768
                }
            },
            n => {
                let _ = crate::server::raise_file_limit();
                n as usize
            }
        };
        let limits = crate::server::ConnectionLimits {
            header_timeout: Duration::from_secs(server.header_timeout_seconds),
            keepalive_timeout: Duration::from_secs(server.keepalive_timeout_seconds),
            max_connections,
        };
        tracing::debug!(max_connections, "connection cap");
        let result = crate::server::serve(
            self.listener,
            routes(self.state.clone()),
            limits,
            self.state.connections.clone(),
            shutdown,
            force,
            grace,
        )
        .await;
        for task in background {
            task.abort();
            // Wait for the abort so the task's state (and the serve lock)
            // is dropped before this returns.
            let _ = task.await;
        }
        let db = self.state.db.clone();
        let _ = db::run_blocking(move || {
            db.close();
            Ok(())
        })
        .await;
        result
    }
}

/// The address a browser on this machine reaches a bound address at:
/// `0.0.0.0:8080` (every interface) is reached at `127.0.0.1:8080`.
fn browsable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// A listen error that says what to do: another port, by the key that sets it.
/// What start-up does off the runtime: the database folder, the serve
/// lock, the database opened and migrated, the signing secret, the
/// password hasher, and demo data when configured and the database is
/// empty.
fn open_store(
    cfg: &Config,
    token_clock: Clock,
) -> anyhow::Result<(Db, PasswordHasher, AccessTokens, ServeLock)> {
    if let Some(parent) = cfg
        .database
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    let lock = ServeLock::acquire(&cfg.database.path)?;
    let (db, _) = Db::open(&cfg.database)?;
    // The path is relative to the folder the server was started in:
    // say which file it is, so a start elsewhere is not a surprise.
    let path =
        std::path::absolute(&cfg.database.path).unwrap_or_else(|_| cfg.database.path.clone());
    tracing::info!(path = %path.display(), "database open");
    let secret = crate::auth::signing_secret(&db, &cfg.auth)
        .map_err(|e| anyhow::anyhow!("cannot load the token signing secret: {e:?}"))?;
    let tokens = AccessTokens::new(&cfg.auth, secret.as_bytes(), token_clock);
    let hasher = PasswordHasher::new(&cfg.auth)
        .map_err(|e| anyhow::anyhow!("cannot set up password hashing: {e:?}"))?;
    if cfg.demo.seed_on_empty
        && let Some(report) = crate::demo::seed_if_empty(&db, &hasher)
            .map_err(|e| anyhow::anyhow!("seeding demo data failed: {e:?}"))?
    {
        tracing::info!(
            users = report.users_added,
            offerings = report.offerings_added,
            "empty database seeded with demo data; demo logins: {}",
            crate::demo::login_summary()
        );
    }
    Ok((db, hasher, tokens, lock))
}

fn cannot_listen(error: std::io::Error, addr: &str, key: &str) -> anyhow::Error {
    let variable = crate::config::env_var(key);
    if error.kind() == std::io::ErrorKind::AddrInUse {
        anyhow::anyhow!(
            "cannot listen on {addr}: the address is in use (another wemaster?); choose another with {key} in wemaster.toml or {variable}=127.0.0.1:8081"
        )
    } else {
        anyhow::anyhow!("cannot listen on {addr} ({key}, {variable}): {error}")
    }
}

/// Every route of the server.
pub fn routes(state: AppState) -> BoxEndpoint<'static> {
    // Built once, and compressed once per coding when first asked for;
    // `Bytes` clones per request are reference counts, not copies.
    let docs = Precompressed::kept(crate::api::swagger_ui_html());
    let spec_json = Precompressed::kept(crate::api::spec_json());
    let spec_yaml = Precompressed::kept(crate::api::spec_yaml());
    let routes = Route::new()
        .nest(crate::api::BASE_PATH, crate::api::service())
        .nest(
            "/docs",
            Route::new().at(
                "/",
                make_sync(move |_| docs.response("text/html; charset=utf-8")),
            ),
        )
        .at(
            "/openapi.json",
            make_sync(move |_| spec_json.response("application/json")),
        )
        .at(
            "/openapi.yaml",
            make_sync(move |_| spec_yaml.response("application/x-yaml")),
        )
        .at("/healthz", get(health::api::root_healthz))
        .at("/readyz", get(health::api::root_readyz))
        .at("/livez", get(root_livez))
        .at("/", get(root_index))
        .at("/favicon.ico", get(favicon))
        .at("/reset-password", get(crate::auth::reset_page::page))
        .at(
            "/verify-email",
            get(crate::auth::verify_page::show).post(crate::auth::verify_page::confirm),
        )
        .at("/checkout/dev/:session", get(dev_checkout::page))
        .at("/checkout/dev/:session/pay", post(dev_checkout::pay))
        .at("/checkout/dev/:session/cancel", post(dev_checkout::cancel))
        .at("/checkout/success", get(dev_checkout::returned))
        .at("/checkout/cancel", get(dev_checkout::returned));
    let routes = if state.config.metrics.enabled && state.config.metrics.addr.is_empty() {
        routes.at("/metrics", get(crate::ops::http::metrics_endpoint))
    } else {
        routes
    };
    let spec = crate::api::service().spec();
    crate::enum_hints::install(&spec);
    crate::protection::policy::install(&spec, crate::api::BASE_PATH);
    let route_table = Arc::new(RouteTable::from_spec(&spec, crate::api::BASE_PATH));
    let server = Arc::new(state.config.server.clone());
    let cors = layers::cors(&server);
    let cors_config = server.clone();
    let security = layers::security_headers(&server);
    let trusted: Arc<[IpBlock]> = server.trusted_proxies.clone().into();
    // Outermost last: the caller is resolved first, for everything inside;
    // the body arrives before a request takes a turn, then admission, then
    // the budgets.
    routes
        .around(layers::rate_limit)
        .around(layers::admit)
        .around(move |ep, req| layers::request_limits(ep, req, server.clone()))
        .data(state)
        .with_if(cors.is_some(), cors.unwrap_or_default())
        .with(layers::UnlistedPreflight::new(cors_config))
        .around(crate::compression::compress)
        .catch_all_error(crate::error::problem_from_poem_error)
        .around(move |ep, req| crate::ops::http::observe(ep, req, route_table.clone()))
        .around(move |ep, req| layers::identify(ep, req, trusted.clone()))
        .with(security)
        .boxed()
}

/// The framework's own ceiling: a constant answer that touches nothing.
#[handler]
fn root_livez() -> impl IntoResponse {
    poem::Response::builder()
        .content_type("application/json; charset=utf-8")
        .body(r#"{"status":"up"}"#)
}

#[handler]
fn root_index() -> Redirect {
    Redirect::see_other("/docs")
}

/// A "W" on a blue square for the browser tab, so opening `/docs` leaves
/// no 404 in the console.
const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#2a5db0"/><text x="16" y="23" font-family="sans-serif" font-size="20" font-weight="bold" text-anchor="middle" fill="#fff">W</text></svg>"##;

/// Browsers ask for `/favicon.ico` unprompted; they accept an SVG there.
#[handler]
fn favicon() -> impl IntoResponse {
    poem::Response::builder()
        .content_type("image/svg+xml")
        .header(poem::http::header::CACHE_CONTROL, "public, max-age=86400")
        .body(FAVICON)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when
/// this is called, not when the future is first polled, so a signal that
/// arrives while the server is still starting is not lost. Call it inside the
/// runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let signal = stop_signal();
    async move {
        signal.await;
        tracing::info!("shutdown signal received; finishing in-flight requests");
    }
}

/// Resolves on the next SIGINT or SIGTERM after the one that started the
/// shutdown: its handlers are installed when first polled, which the server
/// does only once it is stopping.
pub async fn second_signal() {
    stop_signal().await;
}

/// SIGINT or SIGTERM, listened for from this call on.
fn stop_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut interrupt =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match terminate.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match interrupt.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = term => {},
                () = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_is_browsed_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(browsable(any).to_string(), "127.0.0.1:8080");
        let any6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(browsable(any6).to_string(), "[::1]:8080");
        let lan: SocketAddr = "192.168.1.5:8080".parse().unwrap();
        assert_eq!(browsable(lan), lan);
    }
}
