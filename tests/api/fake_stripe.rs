//! A local stand-in for the Stripe API: the real async-stripe client is
//! pointed at it. It records what it was sent and can be told to fail or to
//! hang.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Form, Json, Path};
use poem::{EndpointExt, Request, Route, Server, handler, post};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

/// How the fake answers session creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    /// Stripe answers with an API error.
    Fail,
    /// Stripe never answers in time.
    Hang,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    pub form: HashMap<String, String>,
}

#[derive(Clone)]
pub struct FakeStripe {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub mode: Arc<Mutex<Mode>>,
}

impl FakeStripe {
    pub async fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(Mode::Ok));
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let fake = FakeStripe {
            addr,
            received: received.clone(),
            mode: mode.clone(),
        };
        let app = Route::new()
            .at("/v1/checkout/sessions", post(create_session))
            .at("/v1/checkout/sessions/:id/expire", post(expire_session))
            .at("/v1/refunds", post(create_refund))
            .data(fake.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        fake
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A server with the stripe provider, its client pointed at `fake`.
pub async fn stripe_app(fake: &FakeStripe) -> TestApp {
    stripe_app_at(fake.base_url()).await
}

/// A server whose Stripe client talks to `base`.
pub async fn stripe_app_at(base: String) -> TestApp {
    spawn_app_with(move |c| {
        c.payments.provider = wemaster::config::PaymentProvider::Stripe;
        c.payments.stripe_secret_key = wemaster::config::Secret::new("sk_test_fake");
        c.payments.stripe_api_base = base;
        c.payments.stripe_timeout_ms = 300;
    })
    .await
}

fn record(fake: &FakeStripe, req: &Request, form: HashMap<String, String>) {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    fake.received.lock().unwrap().push(Received {
        path: req.uri().path().to_string(),
        idempotency_key: header("idempotency-key"),
        authorization: header("authorization"),
        form,
    });
}

/// A Checkout Session as Stripe returns it.
pub fn session_json(id: &str, order_id: &str, amount: i64, currency: &str, status: &str) -> Value {
    json!({
        "id": id,
        "object": "checkout.session",
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "billing_address_collection": null,
        "cancel_url": "http://127.0.0.1/cancel",
        "client_reference_id": order_id,
        "client_secret": null,
        "collected_information": null,
        "consent": null,
        "consent_collection": null,
        "created": 1_700_000_000,
        "currency": currency,
        "currency_conversion": null,
        "custom_fields": [],
        "custom_text": {"after_submit": null, "shipping_address": null, "submit": null,
                        "terms_of_service_acceptance": null},
        "customer": null,
        "customer_creation": "if_required",
        "customer_details": null,
        "customer_email": null,
        "discounts": [],
        "expires_at": 1_700_001_800,
        "invoice": null,
        "invoice_creation": null,
        "livemode": false,
        "locale": null,
        "metadata": {"orderId": order_id},
        "mode": "payment",
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "phone_number_collection": {"enabled": false},
        "recovered_from": null,
        "saved_payment_method_options": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": status,
        "submit_type": null,
        "subscription": null,
        "success_url": "http://127.0.0.1/success",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": format!("https://checkout.stripe.test/c/pay/{id}"),
        "wallet_options": null
    })
}

#[handler]
async fn create_session(
    req: &Request,
    fake: Data<&FakeStripe>,
    Form(form): Form<HashMap<String, String>>,
) -> poem::Response {
    record(&fake, req, form.clone());
    let mode = *fake.mode.lock().unwrap();
    match mode {
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            poem::Response::builder().status(poem::http::StatusCode::GATEWAY_TIMEOUT).finish()
        }
        Mode::Fail => poem::Response::builder()
            .status(poem::http::StatusCode::BAD_REQUEST)
            .content_type("application/json")
            .body(
                json!({"error": {"type": "invalid_request_error", "code": "parameter_invalid_integer",
                                  "message": "Invalid integer: abc", "param": "line_items[0][price_data][unit_amount]"}})
                .to_string(),
            ),
        Mode::Ok => {
            let order_id = form.get("metadata[orderId]").cloned().unwrap_or_default();
            let amount: i64 = form
                .get("line_items[0][price_data][unit_amount]")
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            let currency = form
                .get("line_items[0][price_data][currency]")
                .cloned()
                .unwrap_or_else(|| "usd".into());
            let id = format!("cs_test_{}", order_id.replace('-', ""));
            let body = session_json(&id, &order_id, amount, &currency, "open");
            poem::Response::builder()
                .content_type("application/json")
                .body(body.to_string())
        }
    }
}

#[handler]
async fn expire_session(
    req: &Request,
    fake: Data<&FakeStripe>,
    Path(id): Path<String>,
) -> Json<Value> {
    record(&fake, req, HashMap::new());
    Json(session_json(&id, "", 0, "usd", "expired"))
}

/// A Refund as Stripe returns it.
#[handler]
async fn create_refund(
    req: &Request,
    fake: Data<&FakeStripe>,
    Form(form): Form<HashMap<String, String>>,
) -> poem::Response {
    record(&fake, req, form.clone());
    if *fake.mode.lock().unwrap() == Mode::Fail {
        return poem::Response::builder()
            .status(poem::http::StatusCode::BAD_REQUEST)
            .content_type("application/json")
            .body(
                json!({"error": {"type": "invalid_request_error", "code": "charge_already_refunded",
                                  "message": "Charge has already been refunded."}})
                .to_string(),
            );
    }
    let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
    let intent = form.get("payment_intent").cloned().unwrap_or_default();
    let body = json!({
        "id": format!("re_test_{}", fake.received().len()),
        "object": "refund",
        "amount": amount,
        "balance_transaction": null,
        "charge": null,
        "created": 1_700_000_000,
        "currency": "usd",
        "description": null,
        "failure_reason": null,
        "metadata": {"orderId": form.get("metadata[orderId]")},
        "payment_intent": intent,
        "reason": null,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": null
    });
    poem::Response::builder()
        .content_type("application/json")
        .body(body.to_string())
}
