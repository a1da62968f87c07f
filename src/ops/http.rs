//! The request log and HTTP metrics: one line per request with method,
//! route template, status, latency and request id; the request id comes from
//! a valid `X-Request-Id` or is generated, and is echoed in the response.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use poem::PathPattern;
use poem::http::HeaderValue;
use poem::web::Data;
use poem::{Endpoint, IntoResponse, Request, Response, handler};

use crate::auth::Caller;
use crate::error::problem_from_poem_error;
use crate::metrics::{HTTP_DURATION, HTTP_IN_FLIGHT, HTTP_REQUESTS};
use crate::state::AppState;

const REQUEST_ID: &str = "x-request-id";

/// A client-chosen request id is kept if it is 1 to 128 characters of
/// letters, digits, `-`, `_`, `.` or `:`.
pub fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A route pattern with every parameter segment replaced by `{}`.
fn shape(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| {
            if seg.starts_with(':') || (seg.starts_with('{') && seg.ends_with('}')) {
                "{}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// One path of the spec: its template (`/api/v1/offerings/{slug}`) and the
/// methods it takes.
struct SpecPath {
    template: String,
    methods: Vec<String>,
}

/// The spec's paths indexed by shape, built once by the composition root
/// from the OpenAPI document and handed to [`observe`]; poem-openapi names
/// its route parameters `param0`, `param1` internally, so shapes match them.
pub struct RouteTable {
    by_shape: HashMap<String, SpecPath>,
}

impl RouteTable {
    /// Reads the paths of an OpenAPI document (JSON) whose paths are
    /// relative to `base_path`.
    pub fn from_spec(spec_json: &str, base_path: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let mut by_shape: HashMap<String, SpecPath> = HashMap::new();
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            let template = format!("{base_path}{path}");
            let methods: Vec<String> = item
                .as_object()
                .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                .unwrap_or_default();
            // Two templates of one shape (`{id}` for PATCH, `{slug}` for GET)
            // share a path: the later name labels it, the methods merge.
            let entry = by_shape.entry(shape(&template)).or_insert(SpecPath {
                template: String::new(),
                methods: Vec::new(),
            });
            entry.template = template;
            entry.methods.extend(methods);
        }
        Self { by_shape }
    }

    /// The methods the spec lists for a concrete request path, as an `Allow`
    /// header value (RFC 9110 asks for one on every 405).
    fn allowed_methods(&self, path: &str) -> Option<String> {
        let wanted: Vec<&str> = path.split('/').collect();
        let mut allowed: Vec<&str> = self
            .by_shape
            .values()
            .filter(|p| {
                let segments: Vec<&str> = p.template.split('/').collect();
                segments.len() == wanted.len()
                    && segments
                        .iter()
                        .zip(&wanted)
                        .all(|(s, w)| s == w || (s.starts_with('{') && !w.is_empty()))
            })
            .flat_map(|p| p.methods.iter().map(String::as_str))
            .collect();
        allowed.sort_unstable();
        allowed.dedup();
        (!allowed.is_empty()).then(|| allowed.join(", "))
    }

    /// The label of a matched route: its template from the spec, else the
    /// pattern with `:name` written `{name}`.
    fn template(&self, pattern: &str) -> String {
        if let Some(known) = self.by_shape.get(&shape(pattern)) {
            return known.template.clone();
        }
        pattern
            .split('/')
            .map(|seg| match seg.strip_prefix(':') {
                Some(name) => format!("{{{name}}}"),
                None => seg.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The `method` label: a method HTTP defines, else `OTHER`, so made-up
/// methods (any token is a valid method) cannot grow the series without
/// bound. The log line keeps the method as sent.
fn method_label(method: &poem::http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("OTHER")
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!(HTTP_IN_FLIGHT).increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(HTTP_IN_FLIGHT).decrement(1.0);
    }
}

/// Logs and measures one request; the outermost layer but one.
pub async fn observe<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    routes: Arc<RouteTable>,
) -> poem::Result<Response> {
    let started = Instant::now();
    let _in_flight = InFlight::start();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| valid_request_id(id))
        .map(str::to_string)
        .unwrap_or_else(crate::ids::new_id);
    let method = req.method().as_str().to_string();
    let method_label = method_label(req.method());
    let path = req.uri().path().to_string();
    let caller = req.data::<Caller>().cloned();

    let mut resp = match ep.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => problem_from_poem_error(err).await,
    };
    let status = resp.status().as_u16();
    let route = match resp.data::<PathPattern>() {
        Some(pattern) => routes.template(&pattern.0),
        None if status == 429 => "(rate limited)".to_string(),
        None if status == 503 => "(overloaded)".to_string(),
        None => "(unmatched)".to_string(),
    };
    let elapsed = started.elapsed();
    if status == 405
        && !resp.headers().contains_key(poem::http::header::ALLOW)
        && let Some(allow) = routes
            .allowed_methods(&path)
            .and_then(|a| HeaderValue::from_str(&a).ok())
    {
        resp.headers_mut().insert(poem::http::header::ALLOW, allow);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, value);
    }
    metrics::counter!(HTTP_REQUESTS, "method" => method_label, "route" => route.clone(), "status" => status_class(status))
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method_label, "route" => route.clone())
        .record(elapsed.as_secs_f64());
    let client = caller.as_ref().and_then(Caller::ip);
    let user = caller.as_ref().and_then(Caller::known_holder);
    tracing::info!(
        target: "wemaster::http",
        %method,
        %route,
        %path,
        status,
        latency_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        request_id = %request_id,
        client = client.map(tracing::field::display),
        user = user.map(|p| tracing::field::display(&p.user_id)),
        "request"
    );
    Ok(resp)
}

/// `GET /metrics`: the Prometheus text exposition. Rendering walks every
/// series (thousands with per-route histograms), so it runs on the blocking
/// pool, never on the threads that serve requests.
#[handler]
pub async fn metrics_endpoint(state: Data<&AppState>) -> poem::Response {
    let Some(handle) = state.metrics.clone() else {
        return poem::Response::builder()
            .status(poem::http::StatusCode::NOT_FOUND)
            .finish();
    };
    let stats = state.cache.stats();
    metrics::gauge!(crate::metrics::CACHE_ENTRIES, "cache" => "responses")
        .set(stats.entries as f64);
    match tokio::task::spawn_blocking(move || crate::metrics::render(&handle)).await {
        Ok(text) => poem::Response::builder()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            poem::Response::builder()
                .status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
                .finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of poem-openapi's document, trimmed to what is read.
    const SPEC: &str = r#"{"paths": {
        "/offerings": {"get": {}, "post": {}},
        "/offerings/{id}": {"patch": {}},
        "/offerings/{slug}": {"get": {}},
        "/orders/{id}/cancel": {"post": {}}
    }}"#;

    #[test]
    fn route_templates_and_request_ids() {
        let routes = RouteTable::from_spec(SPEC, "/base");
        let template = |p: &str| routes.template(p);
        let allowed_methods = |p: &str| routes.allowed_methods(p);
        assert_eq!(
            template("/base/offerings/{param0}"),
            "/base/offerings/{slug}"
        );
        assert_eq!(
            template("/base/orders/:param0/cancel"),
            "/base/orders/{id}/cancel"
        );
        assert_eq!(template("/checkout/dev/:id/pay"), "/checkout/dev/{id}/pay");
        assert_eq!(
            allowed_methods("/base/offerings").as_deref(),
            Some("GET, POST")
        );
        assert_eq!(
            allowed_methods("/base/offerings/some-slug").as_deref(),
            Some("GET, PATCH")
        );
        assert_eq!(allowed_methods("/nowhere"), None);
        assert!(valid_request_id("abc-123_x.y:z"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id(&"x".repeat(129)));
    }
}
