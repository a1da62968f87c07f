//! The OpenAPI service: the one tags enum and the combination of every
//! domain's API under `/api/v1`.

use poem_openapi::{OpenApiService, Tags};

use crate::admin::api::AdminApi;
use crate::auth::api::{AuthApi, UsersApi};
use crate::catalogue::api::CatalogueApi;
use crate::health::api::HealthApi;
use crate::orders::api::OrdersApi;
use crate::payments::api::PaymentsApi;

/// Groups of operations, in the order Swagger UI shows them.
#[derive(Tags)]
pub enum ApiTags {
    /// Liveness, readiness and the health report.
    Health,
    /// Sign-up, sign-in, token refresh, sign-out and password reset.
    Auth,
    /// Accounts.
    Users,
    /// Offerings and their variants: browse, search, manage.
    Catalogue,
    /// Draft orders, read them, cancel them; enrollments.
    Orders,
    /// Payment provider webhooks and received payments.
    Payments,
    /// Admin-only views.
    Admin,
}

/// Every domain's operations.
pub type Apis = (
    HealthApi,
    AuthApi,
    UsersApi,
    CatalogueApi,
    OrdersApi,
    PaymentsApi,
    AdminApi,
);

/// Base path of every operation.
pub const BASE_PATH: &str = "/api/v1";

/// Builds the OpenAPI service; also what `wemaster openapi` prints.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            HealthApi,
            AuthApi,
            UsersApi,
            CatalogueApi,
            OrdersApi,
            PaymentsApi,
            AdminApi,
        ),
        "WeMaster API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Marketplace API for tutors selling courses and lessons and students buying them. \
             JSON in camelCase; money in integer minor units with a lower-case ISO 4217 \
             currency; lists are bare arrays paged with `page` and `limit`, with \
             `X-Total-Count` and RFC 8288 `Link` headers; errors are RFC 9457 problem \
             details with a stable `code`.",
    )
    .server(BASE_PATH)
}
