//! The one error type. A handler returns `Result<_, ApiError<{ ... }>>`, which
//! declares in the spec exactly the statuses that operation can answer; the
//! body is always an RFC 9457 problem. The client gets a stable `code` and a
//! safe message; the log gets the cause chain of a 500.

use std::fmt;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{Example, ToJSON, Type};
use poem_openapi::{ApiResponse, Object};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Problem {
    /// A URI reference identifying the problem type; `about:blank` means the
    /// title is the HTTP status phrase.
    #[oai(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code of this response.
    pub status: u16,
    /// Human-readable explanation specific to this occurrence.
    pub detail: String,
    /// Stable machine-readable identifier clients can switch on, e.g.
    /// `VALIDATION_ERROR`, `AUTH_INVALID_CREDENTIALS`, or `AUTH_TOKEN_EXPIRED`
    /// (refresh the access token) versus `AUTH_TOKEN_INVALID` (sign in).
    pub code: String,
    /// The request field (body property, query or path parameter) at fault.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
    /// With `SOLD_OUT`: the seats the variant has left.
    #[oai(rename = "seatsLeft", skip_serializing_if_is_none)]
    pub seats_left: Option<i64>,
}

impl Example for Problem {
    fn example() -> Self {
        Problem {
            kind: "about:blank".into(),
            title: "Bad Request".into(),
            status: 400,
            detail: "limit must be between 1 and 100".into(),
            code: "VALIDATION_ERROR".into(),
            field: Some("limit".into()),
            seats_left: None,
        }
    }
}

/// Everything that can go wrong while answering a request.
pub struct Error {
    status: StatusCode,
    code: &'static str,
    detail: String,
    field: Option<String>,
    retry_after: Option<u64>,
    seats_left: Option<i64>,
    /// The cause of a 5xx, for the log only.
    source: Option<anyhow::Error>,
}

impl Error {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
            seats_left: None,
            source: None,
        }
    }

    /// 400: a request field is missing, malformed or out of range.
    pub fn validation(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", detail);
        e.field = Some(field.into());
        e
    }

    /// 400 with a code of its own.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 401.
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }

    /// 403 with a code of its own.
    pub fn forbidden_code(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", detail)
    }

    /// 409 `SOLD_OUT`: `field` asks for `wanted` seats of a variant that
    /// has `left`.
    pub fn sold_out(field: impl Into<String>, wanted: i64, left: i64) -> Self {
        let detail = match left {
            0 => "this variant is sold out".to_string(),
            1 => format!("1 seat left of this variant; the order asks for {wanted}"),
            _ => format!("{left} seats left of this variant; the order asks for {wanted}"),
        };
        let mut e = Self::conflict("SOLD_OUT", detail);
        e.field = Some(field.into());
        e.seats_left = Some(left);
        e
    }

    /// 409.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// 422.
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 410: the thing existed and is closed for good.
    pub fn gone(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "GONE", detail)
    }

    /// 408: the request body did not arrive in time.
    pub fn request_timeout(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT", detail)
    }

    /// 413.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", detail)
    }

    /// 415.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            detail,
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(detail: impl Into<String>, retry_after_seconds: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", detail);
        e.retry_after = Some(retry_after_seconds);
        e
    }

    /// 502: the payment provider failed.
    pub fn bad_gateway(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "PAYMENT_PROVIDER_ERROR", detail)
    }

    /// 503 with `Retry-After`: a bounded queue is full or a dependency is down.
    pub fn unavailable(detail: impl Into<String>, retry_after_seconds: u64) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", detail);
        e.retry_after = Some(retry_after_seconds);
        e
    }

    /// 503 `OVERLOADED` with `Retry-After`: the server sheds load it cannot
    /// take on now (too much in progress, the hashing queue full).
    pub fn overloaded(detail: impl Into<String>, retry_after_seconds: u64) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "OVERLOADED", detail);
        e.retry_after = Some(retry_after_seconds);
        e
    }

    /// 500: a bug or an unexpected failure. The cause goes to the log only.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "the server failed to handle this request",
        );
        e.source = Some(cause.into());
        e
    }

    /// Attaches the offending field to an error.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The field the error names, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    fn problem(&self) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            field: self.field.clone(),
            seats_left: self.seats_left,
        }
    }

    /// Turns a unique-constraint violation into a 409 with the given message,
    /// and anything else into a 500.
    pub fn from_unique_violation(err: rusqlite::Error, detail: impl Into<String>) -> Self {
        if is_unique_violation(&err) {
            Self::conflict("CONFLICT", detail)
        } else {
            Self::internal(err)
        }
    }
}

/// Whether a SQLite error is a UNIQUE or PRIMARY KEY constraint violation.
pub fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("status", &self.status.as_u16())
            .field("code", &self.code)
            .field("detail", &self.detail);
        if let Some(source) = &self.source {
            d.field("source", &format_args!("{source:#}"));
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e.as_ref())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Self::internal(err)
    }
}

impl From<anyhow::Error> for Error {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(err)
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Self::internal(err)
    }
}

impl poem::error::ResponseError for Error {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        if let Some(source) = &self.source {
            tracing::error!(code = self.code, cause = %format!("{source:#}"), "request failed");
        }
        problem_response(&self.problem(), self.retry_after)
    }
}

/// Why a request without a bearer token on a protected operation failed.
pub const TOKEN_REQUIRED: &str = "a valid bearer access token is required";

/// The `WWW-Authenticate` challenge of a 401 (RFC 6750): a token that was
/// sent and refused is `invalid_token`, with whether it merely expired (so
/// a client refreshes instead of signing in again); a missing one, or a
/// wrong password, is the bare scheme.
fn challenge(problem: &Problem) -> HeaderValue {
    HeaderValue::from_static(match problem.code.as_str() {
        "AUTH_TOKEN_EXPIRED" => {
            r#"Bearer realm="wemaster", error="invalid_token", error_description="The access token expired""#
        }
        "AUTH_TOKEN_INVALID" if problem.detail != TOKEN_REQUIRED => {
            r#"Bearer realm="wemaster", error="invalid_token""#
        }
        _ => r#"Bearer realm="wemaster""#,
    })
}

/// Serializes a problem with its media type and optional `Retry-After`.
pub fn problem_response(problem: &Problem, retry_after: Option<u64>) -> Response {
    let body = problem.to_json_string();
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type(PROBLEM_JSON)
        .body(body);
    if problem.status == 401 {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge(problem));
    }
    if let Some(seconds) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    resp
}

/// Converts any error poem or poem-openapi raised before or around a handler
/// (unparsable parameter or body, unknown route, wrong method, body too large)
/// into a problem body, so no client ever sees a plain-text error.
pub async fn problem_from_poem_error(err: poem::Error) -> Response {
    if err.is::<Error>() {
        return err.into_response();
    }
    let status = err.status();
    // A value outside an enumeration: name the field and what it allows
    // rather than poem-openapi's Rust type names.
    let hint = if let Some(e) = err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        crate::enum_hints::for_parameter(e.name, &e.reason)
    } else if let Some(e) = err.downcast_ref::<poem_openapi::error::ParseRequestPayloadError>() {
        crate::enum_hints::for_body(&e.reason)
    } else {
        None
    };
    let (code, field) = if let Some(e) = err.downcast_ref::<poem_openapi::error::ParseParamError>()
    {
        ("VALIDATION_ERROR", Some(e.name.to_string()))
    } else if let Some(e) = err.downcast_ref::<poem_openapi::error::ParsePathError>() {
        ("VALIDATION_ERROR", Some(e.name.to_string()))
    } else if let Some(e) = err.downcast_ref::<poem_openapi::error::ParseRequestPayloadError>() {
        let field = hint.as_ref().and_then(|h| h.field.clone());
        (
            "VALIDATION_ERROR",
            field.or_else(|| payload_field(&e.reason)),
        )
    } else {
        (code_for_status(status), None)
    };
    let detail = if let Some(hint) = hint {
        hint.detail
    } else if err.is::<poem_openapi::error::AuthorizationError>() {
        TOKEN_REQUIRED.to_string()
    } else if status.is_server_error() {
        tracing::error!(error = %err, "request failed");
        "the server failed to handle this request".to_string()
    } else {
        err.to_string()
    };
    let problem = Problem {
        kind: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail,
        code: code.to_string(),
        field,
        seats_left: None,
    };
    let mut resp = problem_response(&problem, None);
    // Keep headers the original error carried, such as `Allow` or
    // `Retry-After`, and its extensions (the matched route, for metrics).
    let mut original = err.into_response();
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    *resp.extensions_mut() = std::mem::take(original.extensions_mut());
    resp
}

/// The body field a payload parse error names (poem-openapi writes
/// "field `price` verification failed"), if any.
fn payload_field(reason: &str) -> Option<String> {
    let start = reason.find("field `")? + "field `".len();
    let len = reason[start..].find('`')?;
    Some(reason[start..start + len].to_string())
}

/// The `code` of a problem that has no more specific one.
pub(crate) fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "VALIDATION_ERROR",
        401 => "AUTH_TOKEN_INVALID",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        406 => "NOT_ACCEPTABLE",
        408 => "REQUEST_TIMEOUT",
        409 => "CONFLICT",
        410 => "GONE",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        422 => "VALIDATION_ERROR",
        429 => "RATE_LIMITED",
        503 => "UNAVAILABLE",
        s if s >= 500 => "INTERNAL",
        _ => "BAD_REQUEST",
    }
}

/// Bits naming the error statuses an operation declares; combine with `|`.
pub mod declared {
    pub const BAD_REQUEST: u32 = 1 << 0;
    pub const UNAUTHORIZED: u32 = 1 << 1;
    pub const FORBIDDEN: u32 = 1 << 2;
    pub const NOT_FOUND: u32 = 1 << 3;
    pub const CONFLICT: u32 = 1 << 4;
    pub const PAYLOAD_TOO_LARGE: u32 = 1 << 5;
    pub const UNPROCESSABLE: u32 = 1 << 6;
    pub const TOO_MANY_REQUESTS: u32 = 1 << 7;
    pub const INTERNAL: u32 = 1 << 8;
    pub const BAD_GATEWAY: u32 = 1 << 9;
    pub const UNAVAILABLE: u32 = 1 << 10;
    pub const UNSUPPORTED_MEDIA_TYPE: u32 = 1 << 11;
    /// What any operation with a JSON body can answer before its handler
    /// runs: unparsable (400), too large (413), wrong media type (415).
    pub const JSON_BODY: u32 = BAD_REQUEST | PAYLOAD_TOO_LARGE | UNSUPPORTED_MEDIA_TYPE;
    /// What any operation can answer when the server fails (500) or is
    /// overloaded or times out (503).
    pub const SERVER: u32 = INTERNAL | UNAVAILABLE;
}

/// What each declared bit means in the spec.
const DECLARED_STATUSES: [(u32, u16, &str); 12] = [
    (
        declared::BAD_REQUEST,
        400,
        "The request is malformed or a field is invalid.",
    ),
    (
        declared::UNAUTHORIZED,
        401,
        "Missing, invalid or expired credentials: `AUTH_TOKEN_EXPIRED` means get a new access token with the refresh token, `AUTH_TOKEN_INVALID` means sign in again.",
    ),
    (declared::FORBIDDEN, 403, "The caller may not do this."),
    (
        declared::NOT_FOUND,
        404,
        "No such resource visible to the caller.",
    ),
    (
        declared::CONFLICT,
        409,
        "The request conflicts with the current state.",
    ),
    (
        declared::PAYLOAD_TOO_LARGE,
        413,
        "The request body is larger than allowed.",
    ),
    (
        declared::UNSUPPORTED_MEDIA_TYPE,
        415,
        "The body is not JSON (missing or other `Content-Type`) or is compressed.",
    ),
    (
        declared::UNPROCESSABLE,
        422,
        "The request is well-formed but cannot be processed.",
    ),
    (
        declared::TOO_MANY_REQUESTS,
        429,
        "Throttled: a budget is spent, this address failed too often, or it has too many requests in progress; see Retry-After.",
    ),
    (declared::INTERNAL, 500, "Unexpected server failure."),
    (declared::BAD_GATEWAY, 502, "The payment provider failed."),
    (
        declared::UNAVAILABLE,
        503,
        "Temporarily overloaded or unavailable; see Retry-After.",
    ),
];

/// The error side of an operation's result. `DECLARED` is a set of
/// [`declared`] bits: the spec lists exactly those statuses, each with a
/// problem body.
pub struct ApiError<const DECLARED: u32>(pub Error);

impl<const D: u32, E: Into<Error>> From<E> for ApiError<D> {
    fn from(err: E) -> Self {
        ApiError(err.into())
    }
}

impl<const D: u32> From<ApiError<D>> for poem::Error {
    fn from(err: ApiError<D>) -> Self {
        poem::Error::from(err.0)
    }
}

impl<const D: u32> IntoResponse for ApiError<D> {
    fn into_response(self) -> Response {
        poem::error::ResponseError::as_response(&self.0)
    }
}

impl<const D: u32> ApiResponse for ApiError<D> {
    fn meta() -> MetaResponses {
        let responses = DECLARED_STATUSES
            .iter()
            .filter(|(bit, _, _)| D & bit != 0)
            .map(|&(_, status, description)| MetaResponse {
                description,
                status: Some(status),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: PROBLEM_JSON,
                    schema: Problem::schema_ref(),
                }],
                headers: if status == 429 || status == 503 {
                    vec![MetaHeader {
                        name: "Retry-After".into(),
                        description: Some("Seconds to wait before retrying.".into()),
                        required: false,
                        deprecated: false,
                        schema: u64::schema_ref(),
                    }]
                } else {
                    vec![]
                },
            })
            .collect();
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// Shorthand for a handler's result.
pub type ApiResult<T, const DECLARED: u32> = Result<T, ApiError<DECLARED>>;
