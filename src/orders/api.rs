//! HTTP side of orders and enrollments.

use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::draft::{self, Drafted};
use super::lifecycle::{OrderTx, Step, Transition};
use super::model::{DraftOrderRequest, Enrollment, Order, OrderStatus};
use super::repo::{self, OrderFilter};
use crate::auth::BearerAuth;
use crate::auth::model::Role;
use crate::error::declared::*;
use crate::error::{ApiResult, Error};
use crate::paging::{Page, Paged, time_bound};
use crate::state::AppState;
use crate::tags::ApiTags;

pub struct OrdersApi;

/// A drafted order.
#[derive(ApiResponse)]
pub enum DraftResponse {
    /// A new order, its payment session open at `checkoutUrl`.
    #[oai(status = 201)]
    Created(
        Json<Order>,
        /// Where the order can be read.
        #[oai(header = "Location")]
        String,
    ),
    /// The order an earlier request with the same Idempotency-Key and body
    /// created.
    #[oai(status = 200)]
    Replayed(Json<Order>),
}

/// A CSV document.
pub struct Csv(pub String);

impl poem_openapi::payload::Payload for Csv {
    const CONTENT_TYPE: &'static str = "text/csv; charset=utf-8";

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        <String as poem_openapi::types::Type>::schema_ref()
    }
}

impl poem::IntoResponse for Csv {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .content_type(<Self as poem_openapi::payload::Payload>::CONTENT_TYPE)
            .body(self.0)
    }
}

/// The orders export.
#[derive(ApiResponse)]
pub enum CsvExport {
    /// One row per order; items joined with `; `.
    #[oai(status = 200)]
    Ok(
        Csv,
        /// Suggests a file name.
        #[oai(header = "Content-Disposition")]
        String,
    ),
}

/// Filters shared by the list and the export, checked.
struct Filters {
    filter: OrderFilter,
    query: Vec<(&'static str, String)>,
}

#[allow(clippy::too_many_arguments)]
fn filters(
    principal: &crate::auth::Principal,
    status: Option<String>,
    user_id: Option<String>,
    offering_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
) -> Result<Filters, Error> {
    let mut query = Vec::new();
    let mut filter = OrderFilter::default();
    if let Some(status) = status.filter(|s| !s.trim().is_empty()) {
        for part in status.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let s = OrderStatus::parse(&part.to_ascii_uppercase()).ok_or_else(|| {
                Error::validation(
                    "status",
                    "status must be a comma-separated list of PENDING_PAYMENT, PAID, REFUNDED, CANCELLED, EXPIRED, FAILED",
                )
            })?;
            if !filter.statuses.contains(&s) {
                filter.statuses.push(s);
            }
        }
        query.push(("status", status));
    }
    for (name, value, slot) in [("from", from, &mut filter.from), ("to", to, &mut filter.to)] {
        if let Some(at) = time_bound(name, value.as_deref())? {
            *slot = Some(at);
            query.push((name, value.unwrap_or_default()));
        }
    }
    if let Some(q) = q.map(|q| q.trim().to_string()).filter(|q| !q.is_empty()) {
        filter.q = Some(q.clone());
        query.push(("q", q));
    }
    if let Some(offering) = offering_id.filter(|v| !v.is_empty()) {
        filter.offering_id = Some(offering.clone());
        query.push(("offeringId", offering));
    }
    if principal.is_admin() {
        if let Some(user) = user_id.filter(|v| !v.is_empty()) {
            filter.user_id = Some(user.clone());
            query.push(("userId", user));
        }
    } else {
        // Everyone else sees only their own orders, whatever they ask for.
        filter.user_id = Some(principal.user_id.clone());
    }
    Ok(Filters { filter, query })
}

#[OpenApi(tag = "ApiTags::Orders")]
impl OrdersApi {
    /// Draft an order
    ///
    /// Prices the items (snapshotted into the order), creates the order in
    /// PENDING_PAYMENT and opens its payment session: pay at `checkoutUrl`.
    /// The body is `{items: [...]}` or a single flat item. With an
    /// `Idempotency-Key`, repeating the same request returns the same order
    /// (200); the same key with another body is a 422.
    ///
    /// A variant with a `capacity` sells no more seats than that: the order
    /// holds its quantity until it is paid, cancelled, fails or expires
    /// (`expiresAt`), and an item that does not fit is a 409 `SOLD_OUT`
    /// with `seatsLeft`. A newer draft replaces the caller's pending order
    /// for the same variant with a capacity (that one is CANCELLED and its
    /// seats return), so nobody holds seats by drafting again.
    ///
    /// With `orders.require_verified_email`, an account whose email is not
    /// verified gets 403 `EMAIL_NOT_VERIFIED`.
    #[oai(path = "/orders/draft", method = "post", operation_id = "draftOrder")]
    async fn draft(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<DraftOrderRequest>,
        /// Makes retries safe: the same key and body give the same order.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        req: &poem::Request,
    ) -> ApiResult<
        DraftResponse,
        {
            TOO_MANY_REQUESTS
                | JSON_BODY
                | UNAUTHORIZED
                | FORBIDDEN
                | NOT_FOUND
                | CONFLICT
                | UNPROCESSABLE
                | BAD_GATEWAY
                | SERVER
        },
    > {
        // A key that is not text at all reads as no key; ignoring it would
        // make the client's retry a second order.
        if idempotency_key.0.is_none() && req.headers().contains_key("idempotency-key") {
            return Err(Error::validation(
                "Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
            .into());
        }
        let drafted = draft::draft(&state, &auth.0, body.0.into_items(), idempotency_key.0).await?;
        Ok(match drafted {
            Drafted::Created(order) => {
                let location = crate::api_base::api_path(&format!("/orders/{}", order.id));
                DraftResponse::Created(Json(order), location)
            }
            Drafted::Replayed(order) => DraftResponse::Replayed(Json(order)),
        })
    }

    /// List orders
    ///
    /// The caller's own orders, newest first; an ADMIN sees everyone's and
    /// may filter by buyer. Paged like the catalogue. A tutor's sales (the
    /// orders of their offerings) are at `GET /tutor/sales`.
    #[oai(path = "/orders", method = "get", operation_id = "listOrders")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Comma-separated statuses, e.g. `PAID,REFUNDED`.
        #[oai(validator(max_length = 200))]
        status: Query<Option<String>>,
        /// ADMIN only: orders of this buyer.
        #[oai(name = "userId", validator(max_length = 64))]
        user_id: Query<Option<String>>,
        /// Orders containing this offering.
        #[oai(name = "offeringId", validator(max_length = 64))]
        offering_id: Query<Option<String>>,
        /// Created at or after (RFC 3339).
        #[oai(validator(max_length = 40))]
        from: Query<Option<String>>,
        /// Created before (RFC 3339).
        #[oai(validator(max_length = 40))]
        to: Query<Option<String>>,
        /// An order id, or text in an item title.
        #[oai(validator(max_length = 200))]
        q: Query<Option<String>>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<i64>>,
        /// Items per page, 1 to 100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<i64>>,
    ) -> ApiResult<Paged<Order>, { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | SERVER }> {
        let page = Page::new(page.0, limit.0)?;
        let Filters { filter, query } = filters(
            &auth.0,
            status.0,
            user_id.0,
            offering_id.0,
            from.0,
            to.0,
            q.0,
        )?;
        let now = state.clock.stamp();
        let (orders, total) = state
            .db
            .read(move |conn| Ok(repo::list_orders(conn, &filter, Some(page), &now)?))
            .await?;
        Ok(Paged::new(
            orders,
            total,
            page,
            &crate::api_base::api_path("/orders"),
            &query,
        ))
    }

    /// Export orders as CSV (ADMIN)
    ///
    /// Every order matching the filters of `GET /orders`, newest first, as
    /// `text/csv`.
    #[oai(
        path = "/orders/export.csv",
        method = "get",
        operation_id = "exportOrders"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn export(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Comma-separated statuses, e.g. `PAID,REFUNDED`.
        #[oai(validator(max_length = 200))]
        status: Query<Option<String>>,
        /// Orders of this buyer.
        #[oai(name = "userId", validator(max_length = 64))]
        user_id: Query<Option<String>>,
        /// Orders containing this offering.
        #[oai(name = "offeringId", validator(max_length = 64))]
        offering_id: Query<Option<String>>,
        /// Created at or after (RFC 3339).
        #[oai(validator(max_length = 40))]
        from: Query<Option<String>>,
        /// Created before (RFC 3339).
        #[oai(validator(max_length = 40))]
        to: Query<Option<String>>,
        /// An order id, or text in an item title.
        #[oai(validator(max_length = 200))]
        q: Query<Option<String>>,
    ) -> ApiResult<CsvExport, { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | SERVER }>
    {
        auth.0.require_role(&[Role::Admin])?;
        let Filters { filter, .. } = filters(
            &auth.0,
            status.0,
            user_id.0,
            offering_id.0,
            from.0,
            to.0,
            q.0,
        )?;
        let now = state.clock.stamp();
        let (orders, _) = state
            .db
            .read(move |conn| Ok(repo::list_orders(conn, &filter, None, &now)?))
            .await?;
        let mut csv = csv::Writer::from_writer(Vec::new());
        let write = |csv: &mut csv::Writer<Vec<u8>>| -> Result<(), csv::Error> {
            csv.write_record([
                "id",
                "createdAt",
                "userId",
                "status",
                "amount",
                "currency",
                "items",
                "provider",
                "paidAt",
            ])?;
            for o in &orders {
                let items = o
                    .items
                    .iter()
                    .map(|i| format!("{} x{}", i.title, i.quantity))
                    .collect::<Vec<_>>()
                    .join("; ");
                csv.write_record(
                    [
                        o.id.as_str(),
                        &o.created_at,
                        &o.user_id,
                        o.status.as_str(),
                        &o.amount.to_string(),
                        &o.currency,
                        &items,
                        o.payment_provider.as_str(),
                        o.paid_at.as_deref().unwrap_or(""),
                    ]
                    .map(inert_cell),
                )?;
            }
            csv.flush()?;
            Ok(())
        };
        write(&mut csv).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
        let bytes = csv
            .into_inner()
            .map_err(|e| Error::internal(anyhow::anyhow!("csv: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
        Ok(CsvExport::Ok(
            Csv(text),
            "attachment; filename=\"orders.csv\"".into(),
        ))
    }

    /// Get an order
    ///
    /// The buyer's own order, or any order for an ADMIN. Other callers get
    /// 404, so order ids reveal nothing.
    #[oai(path = "/orders/:id", method = "get", operation_id = "getOrder")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The order id.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
    ) -> ApiResult<
        Json<Order>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | NOT_FOUND | SERVER },
    > {
        let id = id.0;
        let now = state.clock.stamp();
        let order = state
            .db
            .read(move |conn| Ok(repo::order_by_id(conn, &id, &now)?))
            .await?
            .filter(|o| auth.0.acts_for(&o.user_id))
            .ok_or_else(|| Error::not_found("no such order"))?;
        Ok(Json(order))
    }

    /// Cancel an order
    ///
    /// The buyer (or an ADMIN) cancels an order that is still waiting for
    /// payment; its payment session is closed. Any other status is a 409.
    #[oai(
        path = "/orders/:id/cancel",
        method = "post",
        operation_id = "cancelOrder"
    )]
    async fn cancel(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The order id.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
    ) -> ApiResult<
        Json<Order>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | NOT_FOUND | CONFLICT | SERVER },
    > {
        let principal = auth.0;
        let id = id.0;
        let clock = state.clock.clone();
        let cache = state.cache.clone();
        let (order, session) = state
            .db
            .write(move |conn| {
                let mut tx = OrderTx::begin(conn, &cache)?;
                let now = clock.stamp();
                let order = repo::order_by_id(&tx, &id, &now)?
                    .filter(|o| principal.acts_for(&o.user_id))
                    .ok_or_else(|| Error::not_found("no such order"))?;
                if !matches!(
                    tx.apply(&order, Transition::Cancel, &now)?,
                    Step::Moved { .. }
                ) {
                    return Err(Error::conflict(
                        "ORDER_NOT_CANCELLABLE",
                        format!(
                            "an order that is {} cannot be cancelled",
                            order.status.as_str()
                        ),
                    ));
                }
                let session = repo::session_of(&tx, &id)?;
                let order = repo::order_by_id(&tx, &id, &now)?
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("order vanished")))?;
                tx.commit()?;
                Ok((order, session))
            })
            .await?;
        if let Some(session) = session {
            state.payments.expire_session(&session).await;
        }
        Ok(Json(order))
    }

    /// My enrollments
    ///
    /// Offerings the caller has access to through paid orders, newest first;
    /// a refund turns an enrollment REVOKED.
    #[oai(
        path = "/me/enrollments",
        method = "get",
        operation_id = "listMyEnrollments"
    )]
    async fn enrollments(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<i64>>,
        /// Items per page, 1 to 100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<i64>>,
    ) -> ApiResult<Paged<Enrollment>, { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | SERVER }>
    {
        let page = Page::new(page.0, limit.0)?;
        let user = auth.0.user_id;
        let (items, total) = state
            .db
            .read(move |conn| Ok(repo::enrollments_of(conn, &user, page)?))
            .await?;
        Ok(Paged::new(
            items,
            total,
            page,
            &crate::api_base::api_path("/me/enrollments"),
            &[],
        ))
    }
}

/// A cell a spreadsheet shows as text: one that would start a formula
/// (`=`, `+`, `-`, `@`, tab or carriage return, OWASP's list) gets a
/// leading `'`, so a tutor's title such as `=HYPERLINK(..)` cannot run in
/// the admin's spreadsheet.
fn inert_cell(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}
