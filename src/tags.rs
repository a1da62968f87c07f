//! The one tags enum: the sections of the spec and of Swagger UI. It sits
//! below the domains, which tag their operations with it.

use poem_openapi::Tags;

/// Groups of operations. The spec lists them (and Swagger UI shows them)
/// in the order of [`ApiTags::READING_ORDER`], the order a reader meets
/// them, not alphabetically as poem-openapi writes them.
#[derive(Tags, Clone, Copy)]
pub enum ApiTags {
    /// Sign-up, sign-in, token refresh, sign-out and password reset.
    Auth,
    /// Offerings and their variants: browse, search, manage.
    Catalogue,
    /// Draft orders, read them, cancel them; enrollments.
    Orders,
    /// Payment provider webhooks and received payments.
    Payments,
    /// A tutor's sales, students and totals.
    Tutors,
    /// Accounts.
    Users,
    /// Liveness, readiness and the health report.
    Health,
    /// Admin-only views and actions.
    Admin,
}

impl ApiTags {
    /// Every tag, in the order the spec lists them.
    pub const READING_ORDER: [ApiTags; 8] = [
        ApiTags::Auth,
        ApiTags::Catalogue,
        ApiTags::Orders,
        ApiTags::Payments,
        ApiTags::Tutors,
        ApiTags::Users,
        ApiTags::Health,
        ApiTags::Admin,
    ];
}
