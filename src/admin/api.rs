//! HTTP side of admin views.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;

use super::model::Reconciliation;
use super::repo;
use crate::auth::model::{OutboxMessage, Role};
use crate::auth::{BearerAuth, repo as auth_repo};
use crate::error::declared::*;
use crate::error::{ApiResult, Error};
use crate::paging::{Page, Paged};
use crate::state::AppState;
use crate::tags::ApiTags;

pub struct AdminApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// Mail outbox (ADMIN)
    ///
    /// Mail the server would have sent, newest first, such as password-reset
    /// links. With no mail transport configured this is where they are read.
    #[oai(path = "/admin/outbox", method = "get", operation_id = "listOutbox")]
    async fn outbox(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<i64>>,
        /// Items per page, 1 to 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<i64>>,
    ) -> ApiResult<
        Paged<OutboxMessage>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | SERVER },
    > {
        auth.0.require_role(&[Role::Admin])?;
        let page = Page::new(page.0, limit.0)?;
        let (messages, total) = state
            .db
            .read(move |conn| Ok(auth_repo::list_outbox(conn, page)?))
            .await?;
        Ok(Paged::new(
            messages,
            total,
            page,
            &crate::api_base::api_path("/admin/outbox"),
            &[],
        ))
    }

    /// Reconciliation report (ADMIN)
    ///
    /// For a period (default: the last 30 days): order totals by status and
    /// currency, paid orders without a payment, payments without a paid
    /// order, webhook events whose amount did not match, and events that
    /// matched no order. Empty problem lists mean money and orders agree.
    #[oai(
        path = "/admin/reconciliation",
        method = "get",
        operation_id = "getReconciliation"
    )]
    async fn reconciliation(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Start of the period, inclusive (RFC 3339).
        #[oai(validator(max_length = 40))]
        from: Query<Option<String>>,
        /// End of the period, exclusive (RFC 3339); default now.
        #[oai(validator(max_length = 40))]
        to: Query<Option<String>>,
    ) -> ApiResult<
        Json<Reconciliation>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | SERVER },
    > {
        auth.0.require_role(&[Role::Admin])?;
        let now = state.clock.now();
        let parse = |name: &str, value: Option<String>, default: time::OffsetDateTime| match value
            .filter(|v| !v.is_empty())
        {
            Some(v) => crate::clock::parse(&v)
                .map(crate::clock::format)
                .ok_or_else(|| Error::validation(name, format!("{name} must be an RFC 3339 time"))),
            None => Ok(crate::clock::format(default)),
        };
        // `to` defaults a little past now so orders made this millisecond count.
        let to = parse("to", to.0, now + time::Duration::seconds(1))?;
        let from = parse("from", from.0, now - time::Duration::days(30))?;
        if from >= to {
            return Err(Error::validation("from", "from must be before to").into());
        }
        let stamp = crate::clock::format(now);
        let report = state
            .db
            .read(move |conn| Ok(repo::reconcile(conn, &from, &to, &stamp)?))
            .await?;
        Ok(Json(report))
    }
}
