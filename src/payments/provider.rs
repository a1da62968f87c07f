//! Payment providers: `dev` (no network; a checkout page served by this
//! binary) and `stripe` (Checkout Sessions and Refunds through
//! async-stripe). Both open a session per order with the order id as the
//! idempotency key, and send money back on request.

use std::time::Duration;

use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_checkout::CheckoutSessionMode;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, ExpireCheckoutSession, ProductData,
};
use stripe_core::refund::CreateRefund;

use crate::config::{PaymentProvider, PaymentsConfig};
use crate::error::Error;
use crate::orders::model::Order;
use crate::protection::admission::step_aside;

/// How a dev session id begins; 43 base64url characters (32 random bytes) follow.
pub const DEV_SESSION_PREFIX: &str = "cs_dev_";

/// A payment session the buyer completes at `url`.
#[derive(Debug, Clone)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
}

/// The configured payment provider.
pub enum PaymentGateway {
    Dev {
        /// Base URL of this server, for the checkout page link.
        public_url: String,
    },
    Stripe {
        client: Box<stripe::Client>,
        success_url: String,
        cancel_url: String,
        /// Calls waiting on Stripe at once (`stripe_max_concurrent_calls`).
        calls: tokio::sync::Semaphore,
    },
}

impl PaymentGateway {
    pub fn from_config(config: &PaymentsConfig, public_url: &str) -> anyhow::Result<Self> {
        Ok(match config.provider {
            PaymentProvider::Dev => PaymentGateway::Dev {
                public_url: public_url.trim_end_matches('/').to_string(),
            },
            PaymentProvider::Stripe => PaymentGateway::Stripe {
                client: Box::new(
                    stripe::ClientBuilder::new(config.stripe_secret_key.expose())
                        .url(config.stripe_api_base.trim_end_matches('/'))
                        .timeout(Duration::from_millis(config.stripe_timeout_ms))
                        .build()
                        .map_err(|e| anyhow::anyhow!("cannot build the Stripe client: {e}"))?,
                ),
                success_url: or_own_page(&config.success_url, public_url, "success"),
                cancel_url: or_own_page(&config.cancel_url, public_url, "cancel"),
                calls: tokio::sync::Semaphore::new(config.stripe_max_concurrent_calls as usize),
            },
        })
    }

    /// Which provider this is, as stored on orders and payments.
    pub fn kind(&self) -> PaymentProvider {
        match self {
            PaymentGateway::Dev { .. } => PaymentProvider::Dev,
            PaymentGateway::Stripe { .. } => PaymentProvider::Stripe,
        }
    }

    /// A new session when opening one needs no network (the dev provider),
    /// so it can be stored in the order's own transaction. As with Stripe's,
    /// the session id is the capability: random, in the checkout link, and
    /// good only while its order is pending and unexpired.
    pub fn local_session(&self) -> Option<CheckoutSession> {
        match self {
            PaymentGateway::Dev { public_url } => {
                let id = format!("{DEV_SESSION_PREFIX}{}", crate::ids::random_token());
                Some(CheckoutSession {
                    url: format!("{public_url}/checkout/dev/{id}"),
                    id,
                })
            }
            PaymentGateway::Stripe { .. } => None,
        }
    }

    /// Opens the payment session of a freshly drafted order. A provider
    /// failure is a 502, a timeout or an unreachable provider a 503.
    pub async fn open_session(&self, order: &Order) -> Result<CheckoutSession, Error> {
        match self {
            PaymentGateway::Dev { .. } => self
                .local_session()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("dev session"))),
            PaymentGateway::Stripe {
                client,
                success_url,
                cancel_url,
                calls,
            } => {
                let currency = order
                    .currency
                    .parse::<stripe_types::Currency>()
                    .map_err(|_| {
                        Error::unprocessable(
                            "UNSUPPORTED_CURRENCY",
                            "Stripe does not take this currency",
                        )
                    })?;
                let line_items: Vec<CreateCheckoutSessionLineItems> = order
                    .items
                    .iter()
                    .map(|item| {
                        let mut price =
                            CreateCheckoutSessionLineItemsPriceData::new(currency.clone());
                        price.unit_amount = Some(item.unit_price);
                        price.product_data = Some(ProductData::new(item.title.clone()));
                        let mut line = CreateCheckoutSessionLineItems::new();
                        line.price_data = Some(price);
                        line.quantity = Some(item.quantity as u64);
                        line
                    })
                    .collect();
                let expires_at = crate::clock::parse(&order.expires_at)
                    .map(|t| t.unix_timestamp())
                    .ok_or_else(|| {
                        Error::internal(anyhow::anyhow!(
                            "order {} expires at {:?}, not a time",
                            order.id,
                            order.expires_at
                        ))
                    })?;
                let metadata =
                    std::collections::HashMap::from([("orderId".to_string(), order.id.clone())]);
                // The payment intent (and so its charges and refunds) carries
                // the order id too, for payment_intent.* and charge.* events.
                let mut intent_data = CreateCheckoutSessionPaymentIntentData::new();
                intent_data.metadata = Some(metadata.clone());
                let key = IdempotencyKey::new(&order.id)
                    .map_err(|e| Error::internal(anyhow::anyhow!("idempotency key: {e:?}")))?;
                let session = CreateCheckoutSession::new()
                    .mode(CheckoutSessionMode::Payment)
                    .line_items(line_items)
                    .client_reference_id(order.id.clone())
                    .metadata(metadata)
                    .payment_intent_data(intent_data)
                    .success_url(success_url.replace("{orderId}", &order.id))
                    .cancel_url(cancel_url.replace("{orderId}", &order.id))
                    .expires_at(expires_at)
                    .customize()
                    .request_strategy(RequestStrategy::Idempotent(key));
                let _call = calls.try_acquire().map_err(|_| {
                    Error::unavailable(
                        "the payment provider has as many checkouts opening as it may; try again",
                        1,
                    )
                })?;
                step_aside();
                let session = session
                    .send(client.as_ref())
                    .await
                    .map_err(|e| provider_error(e, "open a checkout session"))?;
                let url = session
                    .url
                    .ok_or_else(|| Error::bad_gateway("Stripe returned a session without a URL"))?;
                Ok(CheckoutSession {
                    id: session.id.to_string(),
                    url,
                })
            }
        }
    }

    /// Sends `amount` of the payment `payment_ref` (the provider's id for
    /// it) of order `order_id` back, once for a given `key` however often
    /// it is asked. Returns the provider's id of the refund. The dev
    /// provider moves no money and answers at once.
    pub async fn refund(
        &self,
        payment_ref: &str,
        amount: i64,
        order_id: &str,
        key: &str,
    ) -> Result<String, Error> {
        let PaymentGateway::Stripe { client, calls, .. } = self else {
            return Ok(format!("re_dev_{}", crate::ids::new_id().replace('-', "")));
        };
        if !payment_ref.starts_with("pi_") {
            return Err(Error::conflict(
                "REFUND_NOT_POSSIBLE",
                "the payment was recorded without a payment intent; refund it in the Stripe dashboard",
            ));
        }
        let metadata =
            std::collections::HashMap::from([("orderId".to_string(), order_id.to_string())]);
        let key = IdempotencyKey::new(key)
            .map_err(|e| Error::internal(anyhow::anyhow!("idempotency key: {e:?}")))?;
        let request = CreateRefund::new()
            .payment_intent(payment_ref)
            .amount(amount)
            .metadata(metadata)
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key));
        step_aside();
        let _call = calls
            .acquire()
            .await
            .map_err(|_| Error::unavailable("the payment provider is shutting down", 5))?;
        let refund = request
            .send(client.as_ref())
            .await
            .map_err(|e| provider_error(e, "send the money back"))?;
        Ok(refund.id.to_string())
    }

    /// Closes a session so it can no longer be paid (on cancel). Best
    /// effort: the order is cancelled either way.
    pub async fn expire_session(&self, session_id: &str) {
        if let PaymentGateway::Stripe { client, calls, .. } = self {
            // Waits its turn: the cancel stands either way, but an open
            // session could still be paid.
            step_aside();
            let Ok(_call) = calls.acquire().await else {
                return;
            };
            let result = ExpireCheckoutSession::new(session_id)
                .customize()
                .send(client.as_ref())
                .await;
            if let Err(e) = result {
                tracing::warn!(session_id, error = %e, "could not expire the Stripe session");
            }
        }
    }
}

/// `configured`, or when it is empty this server's own return page.
fn or_own_page(configured: &str, public_url: &str, page: &str) -> String {
    if configured.is_empty() {
        format!(
            "{}/checkout/{page}?orderId={{orderId}}",
            public_url.trim_end_matches('/')
        )
    } else {
        configured.to_string()
    }
}

/// What the caller gets when Stripe could not `what`.
fn provider_error(err: StripeError, what: &str) -> Error {
    tracing::warn!(error = %err, "Stripe request failed");
    match err {
        StripeError::Timeout => {
            Error::unavailable("the payment provider did not answer in time; try again", 5)
        }
        // The cause (refused, reset, no route, TLS) is in the log above.
        StripeError::ClientError(_) => Error::unavailable(
            "the payment provider could not be reached (the connection was refused or failed); try again",
            5,
        ),
        _ => Error::bad_gateway(format!("the payment provider refused to {what}")),
    }
}
