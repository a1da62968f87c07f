//! The HTTP layers of protection, applied around every route by the
//! composition root: admission (fairness and load shedding), budgets and
//! the failure throttle, request body and time limits, CORS and security
//! headers.

use std::sync::Arc;
use std::time::Duration;

use poem::http::{HeaderValue, Method, header};
use poem::middleware::{Cors, SetHeader};
use poem::{Endpoint, IntoResponse, Request, Response};

use super::admission::{self, Lane, Refusal};
use super::limits::{Class, Decision};
use super::policy;
use crate::auth::Caller;
use crate::config::{IpBlock, ServerConfig};
use crate::error::{Error, problem_from_poem_error};
use crate::state::AppState;

fn set_rate_headers(resp: &mut Response, d: &Decision) {
    let headers = resp.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(d.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(d.reset_seconds));
}

fn refusal(error: Error) -> Response {
    poem::error::ResponseError::as_response(&error)
}

/// Resolves the [`Caller`] of every request (its address now, its token's
/// holder when first asked) for the layers, operations and log inside.
pub async fn identify<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    trusted: Arc<[IpBlock]>,
) -> poem::Result<Response> {
    let caller = Caller::resolve(&req, &trusted);
    req.set_data(caller);
    ep.call(req).await.map(IntoResponse::into_response)
}

/// Fair queuing by client address (see `admission.rs`); probes pass
/// untouched. Runs after the body has arrived (`request_limits` stands
/// outside it), so a request whose body never comes holds no slot.
pub async fn admit<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let Some(state) = req.data::<AppState>().cloned() else {
        return ep.call(req).await.map(IntoResponse::into_response);
    };
    let policy = policy::of_request(req.method(), req.uri().path());
    if policy.probe {
        return ep.call(req).await.map(IntoResponse::into_response);
    }
    // The budgets inside read it from here rather than look it up again.
    req.set_data(policy);
    let client = Caller::of(&req, &state).ip();
    let lane = if policy.hashing {
        Lane::Hashing
    } else {
        Lane::Cheap
    };
    let ticket = match state.admission.admit(client, lane).await {
        Ok(ticket) => ticket,
        Err(Refusal::OverShare { retry_after }) => {
            metrics::counter!(crate::metrics::RATE_LIMITED, "class" => "share").increment(1);
            return Ok(refusal(Error::too_many_requests(
                format!(
                    "too many requests waiting from your address while others wait; retry in {retry_after} s"
                ),
                retry_after,
            )));
        }
        Err(Refusal::Busy { retry_after }) => {
            metrics::counter!(crate::metrics::SHED, "lane" => lane.as_str()).increment(1);
            let what = match lane {
                Lane::Hashing => "sign-ins, sign-ups and password resets are",
                Lane::Cheap => "the server is",
            };
            return Ok(refusal(Error::overloaded(
                format!("{what} at capacity; retry in {retry_after} s"),
                retry_after,
            )));
        }
    };
    match admission::holding(ticket, ep.call(req)).await {
        Ok(resp) => Ok(resp.into_response()),
        Err(err) => Ok(problem_from_poem_error(err).await),
    }
}

/// Budgets per user (per address when anonymous) for writes and admin
/// views, and the failure throttle per address: failures are charged after
/// the answer, and an address that spent its failures is refused on the
/// credential routes and whenever it presents a forged token.
pub async fn rate_limit<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let Some(state) = req.data::<AppState>().cloned() else {
        return ep.call(req).await.map(IntoResponse::into_response);
    };
    let policy = req
        .data::<policy::Policy>()
        .copied()
        .unwrap_or_else(|| policy::of_request(req.method(), req.uri().path()));
    if !state.limits.enabled() || policy.probe {
        return ep.call(req).await.map(IntoResponse::into_response);
    }
    let caller = Caller::of(&req, &state);
    // A genuine token of an ended session is not forged: the operation's
    // own check answers it 401 without charging the address. A database
    // error leaves the holder unknown here; the operation's check asks
    // again and answers it.
    let holder = caller.holder(&state).await.ok().flatten();
    let forged_bearer = matches!(holder, Some(Err(refusal)) if refusal.forged());
    let address = format!("ip:{}", caller.address());
    if (forged_bearer || policy.credential)
        && let Some(wait) = state.limits.failures.retry_after(&address)
    {
        metrics::counter!(crate::metrics::RATE_LIMITED, "class" => "failures").increment(1);
        let mut resp = refusal(Error::too_many_requests(
            format!("too many failed attempts from your address; retry in {wait} s"),
            wait,
        ));
        resp.headers_mut()
            .insert("ratelimit-remaining", HeaderValue::from(0));
        return Ok(resp);
    }
    let class = policy.class;
    let key = match &holder {
        Some(Ok(principal)) if class != Some(Class::Signups) => {
            format!("user:{}", principal.user_id)
        }
        _ => address.clone(),
    };
    let decision = class.map(|class| (class, state.limits.check(class, &key)));
    if let Some((class, decision)) = decision
        && !decision.allowed
    {
        tracing::debug!(class = class.as_str(), "rate limited");
        metrics::counter!(crate::metrics::RATE_LIMITED, "class" => class.as_str()).increment(1);
        let wait = decision.retry_after_seconds;
        let detail = match class {
            Class::Signups => format!("too many sign-ups from your address; retry in {wait} s"),
            _ => format!(
                "too many requests of the {} kind; retry in {wait} s",
                class.as_str()
            ),
        };
        let mut resp = refusal(Error::too_many_requests(detail, wait));
        set_rate_headers(&mut resp, &decision);
        return Ok(resp);
    }
    let mut resp = match ep.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => problem_from_poem_error(err).await,
    };
    if policy::charged(&policy, resp.status().as_u16(), forged_bearer) {
        state.limits.failures.charge(&address);
    }
    if let Some((_, decision)) = decision {
        set_rate_headers(&mut resp, &decision);
    }
    Ok(resp)
}

/// Request size and time limits: bodies over `server.max_body_bytes` get
/// 413 (also when sent chunked), a body not all there within
/// `server.body_timeout_seconds` of the headers gets 408 (a trickled body
/// cannot hold a connection), compressed request bodies are refused (no
/// decompression bombs), and a request still running after
/// `server.request_timeout_ms` is answered 503.
pub async fn request_limits<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    config: Arc<ServerConfig>,
) -> poem::Result<Response> {
    let max = config.max_body_bytes as usize;
    if req.headers().contains_key(header::CONTENT_ENCODING) {
        return Err(
            Error::unsupported_media_type("compressed request bodies are not accepted").into(),
        );
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large =
        || Error::payload_too_large(format!("the request body is larger than {max} bytes"));
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large().into());
    }
    let may_have_body =
        declared.is_some_and(|n| n > 0) || req.headers().contains_key(header::TRANSFER_ENCODING);
    if may_have_body {
        let body_timeout = Duration::from_secs(config.body_timeout_seconds);
        let body = tokio::time::timeout(body_timeout, req.take_body().into_bytes_limit(max))
            .await
            .map_err(|_| {
                Error::request_timeout(format!(
                    "the request body did not arrive within {} s",
                    config.body_timeout_seconds
                ))
            })?
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => too_large(),
                other => Error::bad_request(
                    "VALIDATION_ERROR",
                    format!("the request body could not be read: {other}"),
                ),
            })?;
        req.set_body(body);
    }
    let timeout = Duration::from_millis(config.request_timeout_ms);
    match tokio::time::timeout(timeout, ep.call(req)).await {
        Ok(result) => result.map(IntoResponse::into_response),
        Err(_) => Err(Error::unavailable("the request took too long and was stopped", 1).into()),
    }
}

/// Origins whose refused preflight was logged already (each once).
pub type LoggedOrigins = moka::sync::Cache<String, ()>;

/// A browser's CORS preflight from an origin not in `server.cors_origins`
/// (all of them when the list is empty) gets 403 with a problem body that
/// names the setting, and the log says so once per origin, instead of a
/// bare 405 or 403 that leaves a front-end developer guessing. Listed
/// origins pass on to the CORS layer. Any other request passes at the cost
/// of a method comparison: nothing is cloned or allocated for it.
pub struct UnlistedPreflight {
    config: Arc<ServerConfig>,
    logged: LoggedOrigins,
}

impl UnlistedPreflight {
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            config,
            logged: LoggedOrigins::new(1_000),
        }
    }
}

impl<E: Endpoint> poem::Middleware<E> for UnlistedPreflight {
    type Output = UnlistedPreflightEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        UnlistedPreflightEndpoint {
            inner,
            config: self.config.clone(),
            logged: self.logged.clone(),
        }
    }
}

pub struct UnlistedPreflightEndpoint<E> {
    inner: E,
    config: Arc<ServerConfig>,
    logged: LoggedOrigins,
}

impl<E: Endpoint> Endpoint for UnlistedPreflightEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let origin = match req.headers().get(header::ORIGIN) {
            Some(origin) if preflight => origin.to_str().map_or_else(
                |_| "(not text)".to_string(),
                |o| o.chars().take(200).collect(),
            ),
            _ => return self.inner.call(req).await.map(IntoResponse::into_response),
        };
        if self.config.cors_origins.contains(&origin) {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        if !self.logged.contains_key(&origin) {
            self.logged.insert(origin.clone(), ());
            tracing::warn!(
                %origin,
                "refused a browser's cross-origin preflight: that origin is not in server.cors_origins"
            );
        }
        let listed = if self.config.cors_origins.is_empty() {
            "no origin is listed"
        } else {
            "it is not listed"
        };
        Ok(refusal(Error::forbidden(format!(
            "cross-origin requests from {origin} are not allowed: {listed} in \
             server.cors_origins (WEMASTER_SERVER__CORS_ORIGINS)"
        ))))
    }
}

/// CORS for the configured origins; `None` when there are none.
pub fn cors(config: &ServerConfig) -> Option<Cors> {
    if config.cors_origins.is_empty() {
        return None;
    }
    Some(
        Cors::new()
            .allow_origins(config.cors_origins.iter().map(String::as_str))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::OPTIONS])
            .allow_headers([
                "authorization",
                "content-type",
                "idempotency-key",
                "if-none-match",
                "x-request-id",
            ])
            .expose_headers([
                "x-total-count",
                "link",
                "etag",
                "location",
                "retry-after",
                "ratelimit-limit",
                "ratelimit-remaining",
                "ratelimit-reset",
                "x-request-id",
            ])
            .max_age(600),
    )
}

/// Headers every answer carries.
pub fn security_headers(config: &ServerConfig) -> SetHeader {
    let headers = SetHeader::new()
        .overriding(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .overriding(header::X_FRAME_OPTIONS, "DENY")
        .overriding(header::REFERRER_POLICY, "no-referrer");
    if config.hsts {
        headers.overriding(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        )
    } else {
        headers
    }
}
