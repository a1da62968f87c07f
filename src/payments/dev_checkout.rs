//! The dev provider's checkout: a plain HTML page per order with Pay and
//! Cancel buttons (forms, no JavaScript). Pay delivers a correctly signed
//! `checkout.session.completed` through the same webhook code and signature
//! check as Stripe's deliveries; Cancel delivers `checkout.session.expired`.

use html_escape::encode_text as esc;
use poem::http::StatusCode;
use poem::web::{Data, Html, Path, Redirect};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use super::webhook;
use crate::error::Error;
use crate::orders::model::{Order, OrderStatus};
use crate::orders::repo as orders;
use crate::payments::model::PaymentProvider;
use crate::state::AppState;

async fn load(state: &AppState, id: String) -> Result<Order, Error> {
    if state.payments.kind() != PaymentProvider::Dev {
        return Err(Error::not_found(
            "the dev checkout is off; payments.provider is not dev",
        ));
    }
    state
        .db
        .read(move |conn| Ok(orders::order_by_id(conn, &id, &crate::clock::now())?))
        .await?
        .ok_or_else(|| Error::not_found("no such order"))
}

fn money(amount: i64, currency: &str) -> String {
    format!(
        "{}.{:02} {}",
        amount / 100,
        amount % 100,
        currency.to_uppercase()
    )
}

/// `GET /checkout/dev/{id}`: the order summary with Pay and Cancel.
#[handler]
pub async fn page(state: Data<&AppState>, Path(id): Path<String>) -> poem::Result<Html<String>> {
    let order = load(&state, id).await?;
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
            "<form method=\"post\" action=\"/checkout/dev/{id}/pay\"><button type=\"submit\">Pay {total}</button></form>\
             <form method=\"post\" action=\"/checkout/dev/{id}/cancel\"><button type=\"submit\">Cancel</button></form>",
            id = esc(&order.id),
            total = esc(&money(order.amount, &order.currency)),
        )
    } else {
        "<p>This order is closed.</p>".to_string()
    };
    Ok(Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>WeMaster checkout (dev)</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}td,th{{padding:.3em 1em;text-align:left}}\
         form{{display:inline-block;margin-right:1em}}button{{font-size:1.1em;padding:.4em 1.2em}}</style></head>\
         <body><h1>Checkout</h1><p>Development payment provider: no money moves.</p>\
         <p>Order <code>{id}</code>: <strong id=\"status\">{status}</strong></p>\
         <table><tr><th>Item</th><th>Qty</th><th>Total</th></tr>{rows}</table>\
         <p>Total: <strong>{total}</strong></p>{actions}</body></html>",
        id = esc(&order.id),
        status = order.status.as_str(),
        total = esc(&money(order.amount, &order.currency)),
    )))
}

/// The event Stripe would send for this order.
fn event(order: &Order, kind: &str) -> Vec<u8> {
    let session = json!({
        "id": format!("cs_dev_{}", order.id),
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
        "created": crate::auth::token::unix_now(),
        "livemode": false,
        "data": {"object": session},
    })
    .to_string()
    .into_bytes()
}

async fn deliver(state: &AppState, id: String, kind: &str) -> poem::Result<Response> {
    let order = load(state, id).await?;
    let body = event(&order, kind);
    let signature = webhook::sign(
        state.config.payments.webhook_secret.expose(),
        &body,
        crate::auth::token::unix_now() as i64,
    );
    let ack = webhook::receive(state, &body, Some(&signature)).await?;
    tracing::info!(order_id = %order.id, kind, outcome = ack.outcome.as_str(), "dev checkout delivered an event");
    Ok(Redirect::see_other(format!("/checkout/dev/{}", order.id)).into_response())
}

/// `POST /checkout/dev/{id}/pay`.
#[handler]
pub async fn pay(state: Data<&AppState>, Path(id): Path<String>) -> poem::Result<Response> {
    deliver(&state, id, "checkout.session.completed").await
}

/// `POST /checkout/dev/{id}/cancel`.
#[handler]
pub async fn cancel(state: Data<&AppState>, Path(id): Path<String>) -> poem::Result<Response> {
    deliver(&state, id, "checkout.session.expired").await
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
