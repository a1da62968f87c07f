//! HTTP side of payments: the Stripe webhook and the admin's payment list.

use bytes::Bytes;
use poem::web::Data;
use poem::{Request, RequestBody};
use poem_openapi::error::ContentTypeError;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::{Example, Type};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, Object, OpenApi};

use super::model::{Payment, WebhookAck};
use super::{repo, webhook};
use crate::auth::BearerAuth;
use crate::auth::model::Role;
use crate::error::ApiResult;
use crate::error::declared::*;
use crate::paging::{Page, Paged};
use crate::state::AppState;
use crate::tags::ApiTags;

pub struct PaymentsApi;

/// A Stripe event as delivered (only the fields this server reads are
/// listed; everything else is accepted and ignored).
#[derive(Debug, Object)]
#[oai(example)]
pub struct StripeEvent {
    /// Unique event id, e.g. `evt_1Nq...`; processed at most once.
    pub id: String,
    /// Event type, e.g. `checkout.session.completed`.
    #[oai(rename = "type")]
    pub kind: String,
    /// Unix time the event was created.
    pub created: Option<i64>,
    /// What the event is about.
    pub data: StripeEventData,
}

impl Example for StripeEvent {
    fn example() -> Self {
        StripeEvent {
            id: "evt_1QdXk2Lz9pHn4Ty8aB3cD5eF".into(),
            kind: "checkout.session.completed".into(),
            created: Some(1_768_469_700),
            data: StripeEventData {
                object: serde_json::json!({
                    "id": "cs_test_a1B2c3D4e5F6g7H8",
                    "object": "checkout.session",
                    "amount_total": 4900,
                    "currency": "usd",
                    "payment_status": "paid",
                    "payment_intent": "pi_3QdXk2Lz9pHn4Ty81x2y3z4w",
                    "metadata": { "orderId": "01938a6e-7c3b-7d2e-9f41-2b6c8e0a1d55" }
                }),
            },
        }
    }
}

/// The object the event is about.
#[derive(Debug, Object)]
pub struct StripeEventData {
    /// A Checkout Session, PaymentIntent or Charge; the order is found through
    /// `metadata.orderId` (or `client_reference_id`).
    pub object: serde_json::Value,
}

/// The exact bytes of a JSON request body: signatures are computed over
/// them, so the body must not be parsed and re-serialized first.
pub struct RawJson(pub Bytes);

impl Payload for RawJson {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    }

    fn schema_ref() -> MetaSchemaRef {
        StripeEvent::schema_ref()
    }

    fn register(registry: &mut Registry) {
        StripeEvent::register(registry);
    }
}

impl ParsePayload for RawJson {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self(
            <Bytes as poem::FromRequest>::from_request(request, body).await?,
        ))
    }
}

// What poem-openapi's `impl_apirequest_for_payload!` does for its own
// payloads; the macro cannot be used from outside that crate.
impl<'a> ApiExtractor<'a> for RawJson {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: Self::CONTENT_TYPE,
                schema: Self::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _options: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        match request.content_type() {
            Some(ct) if Self::check_content_type(ct) => {
                <Self as ParsePayload>::from_request(request, body).await
            }
            Some(ct) => Err(ContentTypeError::NotSupported {
                content_type: ct.to_string(),
            }
            .into()),
            None => Err(ContentTypeError::ExpectContentType.into()),
        }
    }
}

#[OpenApi(tag = "ApiTags::Payments")]
impl PaymentsApi {
    /// Stripe webhook
    ///
    /// Receives Stripe events. The `Stripe-Signature` header must carry a
    /// valid HMAC-SHA256 of the raw body made with the configured webhook
    /// secret, at most 5 minutes old; otherwise 401 `WEBHOOK_SIGNATURE_INVALID`
    /// and nothing is recorded. A signed body that is not an event is a 400.
    /// Each event id is applied once (`alreadyProcessed` on repeats). Events
    /// only move orders forward: paid, failed, expired, refunded. Events for
    /// unknown orders or with a wrong amount are recorded, acknowledged and
    /// shown in reconciliation.
    #[oai(
        path = "/payments/webhooks/stripe",
        method = "post",
        operation_id = "stripeWebhook"
    )]
    async fn stripe_webhook(
        &self,
        state: Data<&AppState>,
        /// `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
        #[oai(name = "Stripe-Signature")]
        signature: Header<Option<String>>,
        body: RawJson,
    ) -> ApiResult<Json<WebhookAck>, { JSON_BODY | UNAUTHORIZED | TOO_MANY_REQUESTS | SERVER }>
    {
        Ok(Json(
            webhook::receive(&state, &body.0, signature.0.as_deref()).await?,
        ))
    }

    /// List payments (ADMIN)
    ///
    /// Money received, newest first, optionally for one order.
    #[oai(path = "/payments", method = "get", operation_id = "listPayments")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only payments for this order.
        #[oai(name = "orderId", validator(max_length = 64))]
        order_id: Query<Option<String>>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<i64>>,
        /// Items per page, 1 to 100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<i64>>,
    ) -> ApiResult<
        Paged<Payment>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | SERVER },
    > {
        auth.0.require_role(&[Role::Admin])?;
        let page = Page::new(page.0, limit.0)?;
        let order = order_id.0.filter(|o| !o.is_empty());
        let query: Vec<(&str, String)> = order.iter().map(|o| ("orderId", o.clone())).collect();
        let (payments, total) = state
            .db
            .read(move |conn| Ok(repo::list_payments(conn, order.as_deref(), page)?))
            .await?;
        Ok(Paged::new(
            payments,
            total,
            page,
            &crate::api_base::api_path("/payments"),
            &query,
        ))
    }
}
