//! HTTP side of the health probes.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::model::{CheckStatus, Health, Liveness, Readiness};
use crate::state::AppState;
use crate::tags::ApiTags;

pub struct HealthApi;

/// The health report, 503 when a dependency is down.
#[derive(ApiResponse)]
pub enum HealthResponse {
    /// Up or degraded.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// At least one dependency is down.
    #[oai(status = 503)]
    Down(Json<Health>),
}

impl From<Health> for HealthResponse {
    fn from(health: Health) -> Self {
        if health.status == CheckStatus::Down {
            HealthResponse::Down(Json(health))
        } else {
            HealthResponse::Ok(Json(health))
        }
    }
}

/// Readiness, 503 until the server can take traffic.
#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// Ready for traffic.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// Not ready: schema mismatch or database unreachable.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

impl From<Readiness> for ReadyResponse {
    fn from(readiness: Readiness) -> Self {
        if readiness.ready {
            ReadyResponse::Ready(Json(readiness))
        } else {
            ReadyResponse::NotReady(Json(readiness))
        }
    }
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health report
    ///
    /// Times a database round-trip and reads the cache figures. `status` is
    /// `degraded` when a check is slower than its configured threshold and
    /// `down` (HTTP 503) when a dependency fails. Also served at `/healthz`.
    #[oai(path = "/healthz", method = "get", operation_id = "getHealthz")]
    async fn healthz(&self, state: Data<&AppState>) -> HealthResponse {
        super::report(&state).await.into()
    }

    /// Health report (alias)
    ///
    /// The same report as `/healthz`, kept for clients of the first backend.
    #[oai(path = "/health", method = "get", operation_id = "getHealth")]
    async fn health(&self, state: Data<&AppState>) -> HealthResponse {
        super::report(&state).await.into()
    }

    /// Readiness probe
    ///
    /// 200 once migrations ran and the database answers, else 503. Also served
    /// at `/readyz`.
    #[oai(path = "/readyz", method = "get", operation_id = "getReadyz")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyResponse {
        super::readiness(&state).await.into()
    }

    /// Liveness probe
    ///
    /// 200 while the process serves; touches nothing else. Also served at
    /// `/livez`.
    #[oai(path = "/livez", method = "get", operation_id = "getLivez")]
    async fn livez(&self) -> Json<Liveness> {
        Json(Liveness {
            status: CheckStatus::Up,
        })
    }
}

/// `GET /healthz` at the root, outside the base path, for probes and load
/// balancers.
#[poem::handler]
pub async fn root_healthz(state: Data<&AppState>) -> HealthResponse {
    super::report(&state).await.into()
}

/// `GET /readyz` at the root.
#[poem::handler]
pub async fn root_readyz(state: Data<&AppState>) -> ReadyResponse {
    super::readiness(&state).await.into()
}
