//! HTTP side of the tutor's views.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::model::{Period, Sale, Total, VariantRoster};
use super::repo::{self, Span};
use crate::auth::BearerAuth;
use crate::auth::model::{Principal, Role};
use crate::catalogue::repo as catalogue;
use crate::error::declared::*;
use crate::error::{ApiResult, Error};
use crate::paging::{Page, Paged, time_bound};
use crate::state::AppState;
use crate::tags::ApiTags;

pub struct TutorsApi;

/// Whose sales: a tutor's own; an admin names the tutor.
fn tutor_of(principal: &Principal, tutor_id: Option<String>) -> Result<String, Error> {
    principal.require_role(&[Role::Tutor, Role::Admin])?;
    match (principal.role, tutor_id.filter(|t| !t.is_empty())) {
        (Role::Admin, Some(tutor)) => Ok(tutor),
        (Role::Admin, None) => Err(Error::validation(
            "tutorId",
            "an admin names the tutor with tutorId",
        )),
        _ => Ok(principal.user_id.clone()),
    }
}

#[OpenApi(tag = "ApiTags::Tutors")]
impl TutorsApi {
    /// My sales (TUTOR)
    ///
    /// Lines of paid orders (and of those since refunded) for the caller's
    /// own offerings, newest first: what was bought, for how much, and the
    /// student's name and email. Never another tutor's. An admin reads a
    /// tutor's with `tutorId`.
    #[oai(path = "/tutor/sales", method = "get", operation_id = "listMySales")]
    #[allow(clippy::too_many_arguments)]
    async fn sales(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Paid at or after (RFC 3339).
        #[oai(validator(max_length = 40))]
        from: Query<Option<String>>,
        /// Paid before (RFC 3339).
        #[oai(validator(max_length = 40))]
        to: Query<Option<String>>,
        /// One offering only.
        #[oai(name = "offeringId", validator(max_length = 64))]
        offering_id: Query<Option<String>>,
        /// For an admin: whose sales.
        #[oai(name = "tutorId", validator(max_length = 64))]
        tutor_id: Query<Option<String>>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<i64>>,
        /// Items per page, 1 to 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<i64>>,
    ) -> ApiResult<
        Paged<Sale>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | SERVER },
    > {
        let tutor = tutor_of(&auth.0, tutor_id.0)?;
        let page = Page::new(page.0, limit.0)?;
        let (from, to) = (
            time_bound("from", from.0.as_deref())?,
            time_bound("to", to.0.as_deref())?,
        );
        let offering = offering_id.0.filter(|o| !o.is_empty());
        let mut query: Vec<(&str, String)> = Vec::new();
        for (name, value) in [("from", &from), ("to", &to), ("offeringId", &offering)] {
            if let Some(value) = value {
                query.push((name, value.clone()));
            }
        }
        if auth.0.is_admin() {
            query.push(("tutorId", tutor.clone()));
        }
        let (sales, total) = state
            .db
            .read(move |conn| {
                let span = Span {
                    from: from.as_deref(),
                    to: to.as_deref(),
                };
                Ok(repo::sales(conn, &tutor, &span, offering.as_deref(), page)?)
            })
            .await?;
        Ok(Paged::new(
            sales,
            total,
            page,
            &crate::api_base::api_path("/tutor/sales"),
            &query,
        ))
    }

    /// My totals (TUTOR)
    ///
    /// The caller's takings per period (`month` by default, `week` or
    /// `day`) and currency, newest first: orders, amount, and how much of
    /// it was refunded. An admin reads a tutor's with `tutorId`.
    #[oai(path = "/tutor/totals", method = "get", operation_id = "listMyTotals")]
    async fn totals(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// How to group: `day`, `week` or `month`.
        period: Query<Option<Period>>,
        /// Paid at or after (RFC 3339).
        #[oai(validator(max_length = 40))]
        from: Query<Option<String>>,
        /// Paid before (RFC 3339).
        #[oai(validator(max_length = 40))]
        to: Query<Option<String>>,
        /// For an admin: whose totals.
        #[oai(name = "tutorId", validator(max_length = 64))]
        tutor_id: Query<Option<String>>,
    ) -> ApiResult<
        Json<Vec<Total>>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | SERVER },
    > {
        let tutor = tutor_of(&auth.0, tutor_id.0)?;
        let period = period.0.unwrap_or(Period::Month);
        let (from, to) = (
            time_bound("from", from.0.as_deref())?,
            time_bound("to", to.0.as_deref())?,
        );
        let totals = state
            .db
            .read(move |conn| {
                let span = Span {
                    from: from.as_deref(),
                    to: to.as_deref(),
                };
                Ok(repo::totals(conn, &tutor, &span, period)?)
            })
            .await?;
        Ok(Json(totals))
    }

    /// Students of an offering (its TUTOR, ADMIN)
    ///
    /// Per variant: the capacity, the seats paid for, held by pending
    /// orders and left, and the students of paid orders (name and email).
    #[oai(
        path = "/tutor/offerings/:id/students",
        method = "get",
        operation_id = "listOfferingStudents"
    )]
    async fn students(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The offering's id.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
    ) -> ApiResult<
        Json<Vec<VariantRoster>>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | NOT_FOUND | SERVER },
    > {
        let principal = auth.0;
        principal.require_role(&[Role::Tutor, Role::Admin])?;
        let id = id.0;
        let now = state.clock.stamp();
        let roster = state
            .db
            .read(move |conn| {
                let (owner, _) = catalogue::owner_of(conn, &id)?
                    .ok_or_else(|| Error::not_found("no such offering"))?;
                if !principal.acts_for(&owner) {
                    return Err(Error::forbidden(
                        "only the offering's tutor or an admin sees its students",
                    ));
                }
                Ok(repo::roster(conn, &id, &now)?)
            })
            .await?;
        Ok(Json(roster))
    }
}
