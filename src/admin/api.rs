//! HTTP side of admin views.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Query;

use crate::api::ApiTags;
use crate::app::AppState;
use crate::auth::model::{OutboxMessage, Role};
use crate::auth::{BearerAuth, repo as auth_repo};
use crate::error::ApiResult;
use crate::error::declared::*;
use crate::paging::{Page, Paged};

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
        { BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | INTERNAL | UNAVAILABLE },
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
            "/api/v1/admin/outbox",
            &[],
        ))
    }
}
