//! The HTTP layers of protection, applied around every route in
//! `app::routes`: rate limits, request body and time limits, CORS and
//! security headers.

use std::sync::Arc;
use std::time::Duration;

use poem::http::{HeaderValue, Method, header};
use poem::middleware::{Cors, SetHeader};
use poem::{Endpoint, IntoResponse, Request, Response};

use super::client_ip::client_ip;
use super::limits::{Class, Decision};
use crate::auth::{VerifiedBearer, principal_of};
use crate::config::ServerConfig;
use crate::error::{Error, problem_from_poem_error};
use crate::state::AppState;

/// The limit class of a request, or `None` for what the general buckets do
/// not cover: health probes, metrics and the payment webhook (Stripe must
/// always get through; its deliveries are verified instead).
pub fn classify(method: &Method, path: &str) -> Option<Class> {
    const UNLIMITED: [&str; 9] = [
        "/healthz",
        "/readyz",
        "/livez",
        "/metrics",
        "/api/v1/healthz",
        "/api/v1/health",
        "/api/v1/readyz",
        "/api/v1/livez",
        "/api/v1/payments/webhooks/stripe",
    ];
    if UNLIMITED.contains(&path) {
        return None;
    }
    if path.starts_with("/api/v1/auth/") && path != "/api/v1/auth/me" {
        return Some(Class::Auth);
    }
    let admin = path.starts_with("/api/v1/admin/")
        || path == "/api/v1/users"
        || path == "/api/v1/payments"
        || path == "/api/v1/orders/export.csv";
    if admin {
        return Some(Class::Admin);
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        Some(Class::Public)
    } else {
        Some(Class::Writes)
    }
}

fn set_rate_headers(resp: &mut Response, d: &Decision) {
    let headers = resp.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(d.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(d.reset_seconds));
}

/// Token buckets per class, keyed by user id for signed-in calls and by
/// client address otherwise.
pub async fn rate_limit<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let Some(state) = req.data::<AppState>().cloned() else {
        return ep.call(req).await.map(IntoResponse::into_response);
    };
    let class = classify(req.method(), req.uri().path());
    let Some(class) = class.filter(|_| state.limits.enabled()) else {
        return ep.call(req).await.map(IntoResponse::into_response);
    };
    let verified = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| {
            let principal = principal_of(&state, token).ok()?;
            Some(VerifiedBearer {
                token: token.to_string(),
                principal,
            })
        });
    let key = match &verified {
        Some(v) => format!("user:{}", v.principal.user_id),
        None => match client_ip(&req, &state.config.server.trusted_proxies) {
            Some(ip) => format!("ip:{ip}"),
            None => "ip:unknown".to_string(),
        },
    };
    if let Some(verified) = verified {
        req.set_data(verified);
    }
    let decision = state.limits.check(class, &key);
    if !decision.allowed {
        tracing::debug!(class = class.as_str(), "rate limited");
        metrics::counter!(crate::ops::metrics::RATE_LIMITED, "class" => class.as_str())
            .increment(1);
        let mut resp = poem::error::ResponseError::as_response(&Error::too_many_requests(
            format!(
                "too many requests of the {} kind; retry in {} s",
                class.as_str(),
                decision.retry_after_seconds
            ),
            decision.retry_after_seconds,
        ));
        set_rate_headers(&mut resp, &decision);
        return Ok(resp);
    }
    let mut resp = match ep.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => problem_from_poem_error(err).await,
    };
    set_rate_headers(&mut resp, &decision);
    Ok(resp)
}

/// Request size and time limits: bodies over `server.max_body_bytes` get
/// 413 (also when sent chunked), compressed request bodies are refused (no
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
        let body = req
            .take_body()
            .into_bytes_limit(max)
            .await
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
