//! The one tags enum: the sections of the spec and of Swagger UI. It sits
//! below the domains, which tag their operations with it.

use poem_openapi::Tags;

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
