//! The dev provider's checkout: a plain HTML page per payment session with
//! Pay and Cancel buttons (forms, no JavaScript). Pay delivers a correctly
//! signed `checkout.session.completed` through the same webhook code and
//! signature check as Stripe's deliveries; Cancel delivers
//! `checkout.session.expired`.
//!
//! As with Stripe Checkout, the link is the capability: its session id is 32
//! random bytes, bound to one order, and Pay and Cancel work only while that
//! order is pending and unexpired. Knowing an order id is not enough.

use html_escape::encode_text as esc;
use poem::http::{StatusCode, header};
use poem::web::{Data, Html, Path, Redirect};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use super::webhook;
use crate::config::PaymentProvider;
use crate::error::Error;
use crate::orders::model::{Order, OrderStatus};
use crate::orders::repo as orders;
use crate::payments::provider::DEV_SESSION_PREFIX;
use crate::state::AppState;

/// The order of a dev session; 404 for anything that is not a live
/// session id of this provider (older, guessable `cs_dev_<order id>` ids
/// included).
async fn load(state: &AppState, session: String) -> Result<Order, Error> {
    if state.payments.kind() != PaymentProvider::Dev {
        return Err(Error::not_found(
            "the dev checkout is off; payments.provider is not dev",
        ));
    }
    let unknown = || Error::not_found("no such checkout session");
    let random = session
        .strip_prefix(DEV_SESSION_PREFIX)
        .ok_or_else(unknown)?;
    if random.len() != 43 {
        return Err(unknown());
    }
    let now = state.clock.stamp();
    state
        .db
        .read(move |conn| {
            let Some(id) = orders::order_of_session(conn, &session)? else {
                return Ok(None);
            };
            Ok(orders::order_by_id(conn, &id, &now)?)
        })
        .await?
        .ok_or_else(unknown)
}

fn money(amount: i64, currency: &str) -> String {
    format!(
        "{}.{:02} {}",
        amount / 100,
        amount % 100,
        currency.to_uppercase()
    )
}

/// `GET /checkout/dev/{session}`: the order summary with Pay and Cancel.
#[handler]
pub async fn page(state: Data<&AppState>, Path(session): Path<String>) -> poem::Result<Response> {
    let order = load(&state, session.clone()).await?;
    let rows: String = order
        .items
        .iter()
        .map(|i| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&i.title),
                i.quantity,
                esc(&money(i.line_total, &order.currency))
            )
        })
        .collect();
    let actions = if order.status == OrderStatus::PendingPayment {
        format!(
            "<form method=\"post\" action=\"/checkout/dev/{session}/pay\"><button type=\"submit\">Pay {total}</button></form>\
             <form method=\"post\" action=\"/checkout/dev/{session}/cancel\"><button type=\"submit\">Cancel</button></form>",
            session = esc(&session),
            total = esc(&money(order.amount, &order.currency)),
        )
    } else if order.status == OrderStatus::Paid {
        "<p>Paid: the order is complete and its enrollment active. Nothing more to do here.</p>"
            .to_string()
    } else {
        "<p>This order is closed: it can no longer be paid.</p>".to_string()
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>WeMaster checkout (dev)</title>\
         <style>{STYLE}</style></head>\
         <body><h1>Checkout</h1><p>Development payment provider: no money moves.</p>\
         <p>Order <code>{id}</code>: <strong id=\"status\">{status}</strong></p>\
         <table><tr><th>Item</th><th>Qty</th><th>Total</th></tr>{rows}</table>\
         <p>Total: <strong>{total}</strong></p>{actions}</body></html>",
        id = esc(&order.id),
        status = order.status.as_str(),
        total = esc(&money(order.amount, &order.currency)),
    );
    // The page can mark an order paid: never cached, and nothing on it but
    // its own style and forms back to this server.
    Ok(Response::builder()
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_SECURITY_POLICY, CSP.as_str())
        .body(html))
}

const STYLE: &str = "body{font-family:sans-serif;max-width:40em;margin:2em auto}td,th{padding:.3em 1em;text-align:left}\
form{display:inline-block;margin-right:1em}button{font-size:1.1em;padding:.4em 1.2em}";

static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src {}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        crate::auth::reset_page::csp_hash(STYLE)
    )
});

/// The event Stripe would send for this order's session.
fn event(order: &Order, session: &str, kind: &str, created: i64) -> Vec<u8> {
    let session = json!({
        "id": session,
        "object": "checkout.session",
        "amount_total": order.amount,
        "currency": order.currency,
        "client_reference_id": order.id,
        "metadata": {"orderId": order.id},
        "payment_intent": format!("pi_dev_{}", order.id),
        "payment_status": if kind == "checkout.session.completed" { "paid" } else { "unpaid" },
        "status": if kind == "checkout.session.completed" { "complete" } else { "expired" },
    });
    json!({
        "id": format!("evt_dev_{}", crate::ids::new_id()),
        "object": "event",
        "type": kind,
        "created": created,
        "livemode": false,
        "data": {"object": session},
    })
    .to_string()
    .into_bytes()
}

async fn deliver(state: &AppState, session: String, kind: &str) -> poem::Result<Response> {
    let order = load(state, session.clone()).await?;
    if order.status != OrderStatus::PendingPayment
        || order.expires_at.as_str() <= state.clock.stamp().as_str()
    {
        return Err(
            Error::gone("this checkout session is closed: its order is no longer pending").into(),
        );
    }
    let now = state.clock.unix();
    let body = event(&order, &session, kind, now);
    let signature = webhook::sign(state.config.payments.webhook_secret.expose(), &body, now);
    let ack = webhook::receive(state, &body, Some(&signature)).await?;
    tracing::info!(order_id = %order.id, kind, outcome = ack.outcome.as_str(), "dev checkout delivered an event");
    Ok(Redirect::see_other(format!("/checkout/dev/{session}")).into_response())
}

/// `POST /checkout/dev/{session}/pay`.
#[handler]
pub async fn pay(state: Data<&AppState>, Path(session): Path<String>) -> poem::Result<Response> {
    deliver(&state, session, "checkout.session.completed").await
}

/// `POST /checkout/dev/{session}/cancel`.
#[handler]
pub async fn cancel(state: Data<&AppState>, Path(session): Path<String>) -> poem::Result<Response> {
    deliver(&state, session, "checkout.session.expired").await
}

/// `GET /checkout/success` and `/checkout/cancel`: where Stripe Checkout
/// sends the buyer back to when no front end is configured.
#[handler]
pub fn returned(req: &poem::Request) -> Response {
    let paid = req.uri().path().ends_with("/success");
    let text = if paid {
        "Thank you: the payment is being confirmed. Your order turns PAID within moments."
    } else {
        "The checkout was cancelled; nothing was charged."
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>WeMaster</title></head>\
         <body><p>{text}</p></body></html>"
    ))
    .with_status(StatusCode::OK)
    .into_response()
}
