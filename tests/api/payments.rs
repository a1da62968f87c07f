//! Webhooks and the Stripe provider through real HTTP and real signatures.

use serde_json::{Value, json};

use crate::fake_stripe::{FakeStripe, Mode, stripe_app, stripe_app_at};
use crate::helpers::{
    completed, event, now, problem, refund_by_intent, refunded, spawn_app, webhook_secret,
};

#[tokio::test]
async fn bad_or_missing_signatures_are_401_and_record_nothing() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let paid = completed("evt_forged", &order);

    let wrong_secret = app.deliver_at(&paid, "whsec_not_ours", now()).await;
    let body = problem(wrong_secret, 401).await;
    assert_eq!(body["code"], "WEBHOOK_SIGNATURE_INVALID");

    let missing = app
        .client
        .post(app.url("/api/v1/payments/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(paid.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(missing, 401).await["code"],
        "WEBHOOK_SIGNATURE_INVALID"
    );

    // The original platform's load test sends `test_signature_<random>`.
    let forged = app
        .client
        .post(app.url("/api/v1/payments/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", "test_signature_8f3a2c")
        .body(paid.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(forged, 401).await["code"],
        "WEBHOOK_SIGNATURE_INVALID"
    );

    // A valid signature over other bytes.
    let signature = wemaster::payments::webhook::sign(&webhook_secret(), b"{}", now());
    let tampered = app
        .client
        .post(app.url("/api/v1/payments/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("Stripe-Signature", signature)
        .body(paid.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(tampered, 401).await["code"],
        "WEBHOOK_SIGNATURE_INVALID"
    );

    assert_eq!(app.count("webhook_events"), 0);
    assert_eq!(app.count("payments"), 0);
    assert_eq!(
        app.order(&token, order["id"].as_str().unwrap()).await["status"],
        "PENDING_PAYMENT"
    );
}

#[tokio::test]
async fn stale_signature_timestamps_are_refused() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let resp = app
        .deliver_at(
            &completed("evt_old", &order),
            &webhook_secret(),
            now() - 301,
        )
        .await;
    problem(resp, 401).await;
    let resp = app
        .deliver_at(
            &completed("evt_future", &order),
            &webhook_secret(),
            now() + 301,
        )
        .await;
    problem(resp, 401).await;
    assert_eq!(app.count("webhook_events"), 0);
    // Within the tolerance it is fine.
    let resp = app
        .deliver_at(&completed("evt_ok", &order), &webhook_secret(), now() - 200)
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn malformed_verified_bodies_are_400() {
    let app = spawn_app().await;
    for body in ["not json", "{\"id\": \"evt_1\"}", "[]"] {
        let signature =
            wemaster::payments::webhook::sign(&webhook_secret(), body.as_bytes(), now());
        let resp = app
            .client
            .post(app.url("/api/v1/payments/webhooks/stripe"))
            .header("content-type", "application/json")
            .header("Stripe-Signature", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        problem(resp, 400).await;
    }
    assert_eq!(app.count("webhook_events"), 0);
}

#[tokio::test]
async fn a_replayed_event_is_acknowledged_without_a_second_effect() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let paid = completed("evt_once", &order);
    let first = app.deliver(&paid).await;
    assert_eq!(first, json!({"received": true, "outcome": "APPLIED"}));
    let second = app.deliver(&paid).await;
    assert_eq!(second["received"], true);
    assert_eq!(second["alreadyProcessed"], true);
    assert_eq!(app.count("payments"), 1);
    assert_eq!(app.count("enrollments"), 1);
    assert_eq!(app.count("webhook_events"), 1);
}

#[tokio::test]
async fn fifty_concurrent_deliveries_of_one_event_make_one_payment() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let paid = completed("evt_storm", &order);
    let secret = webhook_secret();
    let deliveries = (0..50).map(|_| app.deliver_at(&paid, &secret, now()));
    let responses = futures::future::join_all(deliveries).await;
    let mut fresh = 0;
    for resp in responses {
        assert_eq!(resp.status(), 200);
        let ack: Value = resp.json().await.unwrap();
        if ack.get("alreadyProcessed").is_none() {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
    assert_eq!(app.count("payments"), 1);
    assert_eq!(app.count("enrollments"), 1);
}

#[tokio::test]
async fn events_out_of_order_only_move_orders_forward() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let id = order["id"].as_str().unwrap();

    // (A refund before any payment: see
    // a_refund_delivered_before_its_payment_is_applied_when_the_payment_arrives.)
    // Completed is the first event that matters: PAID.
    assert_eq!(
        app.deliver(&completed("evt_paid", &order)).await["outcome"],
        "APPLIED"
    );
    // payment_intent.succeeded for the same payment: no second payment.
    let intent = event(
        "evt_pi",
        "payment_intent.succeeded",
        json!({"id": format!("pi_{id}"), "object": "payment_intent", "amount": order["amount"],
               "amount_received": order["amount"], "currency": "usd", "metadata": {"orderId": id}}),
    );
    assert_eq!(app.deliver(&intent).await["outcome"], "ALREADY_APPLIED");
    assert_eq!(app.count("payments"), 1);
    // Refund: REFUNDED and the enrollment revoked. This charge carries no
    // metadata; the order is found through its payment intent.
    let mut refund = refunded("evt_refund", &order);
    refund["data"]["object"]["metadata"] = json!({});
    assert_eq!(app.deliver(&refund).await["outcome"], "APPLIED");
    assert_eq!(app.order(&token, id).await["status"], "REFUNDED");
    let enrollments: Value = app.enrollments(&token).await;
    assert_eq!(enrollments[0]["status"], "REVOKED");
    // A late, retried completion does not bring it back.
    let late = app.deliver(&completed("evt_paid_retry", &order)).await;
    assert_eq!(late["outcome"], "IGNORED_STALE");
    assert_eq!(app.order(&token, id).await["status"], "REFUNDED");
    let enrollments: Value = app.enrollments(&token).await;
    assert_eq!(enrollments[0]["status"], "REVOKED");
    let admin = app.token_of("admin@test.com").await;
    let payments: Value = app
        .get_with_token("/api/v1/payments", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payments[0]["status"], "REFUNDED");
    // Expiry and failure after payment are stale too.
    let expired = event(
        "evt_expired",
        "checkout.session.expired",
        json!({"id": "cs_x", "metadata": {"orderId": id}}),
    );
    assert_eq!(app.deliver(&expired).await["outcome"], "IGNORED_STALE");
}

#[tokio::test]
async fn failed_and_expired_events_close_pending_orders() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let a = app.draft_first(&token).await;
    let b = app.draft_first(&token).await;
    let failed = event(
        "evt_fail",
        "payment_intent.payment_failed",
        json!({"id": "pi_f", "amount": a["amount"], "currency": "usd", "metadata": {"orderId": a["id"]}}),
    );
    assert_eq!(app.deliver(&failed).await["outcome"], "APPLIED");
    assert_eq!(
        app.order(&token, a["id"].as_str().unwrap()).await["status"],
        "FAILED"
    );
    let async_failed = event(
        "evt_async_fail",
        "checkout.session.async_payment_failed",
        json!({"id": "cs_b", "client_reference_id": b["id"], "amount_total": b["amount"], "currency": "usd"}),
    );
    assert_eq!(app.deliver(&async_failed).await["outcome"], "APPLIED");
    assert_eq!(
        app.order(&token, b["id"].as_str().unwrap()).await["status"],
        "FAILED"
    );
}

#[tokio::test]
async fn unpaid_completion_waits_for_async_success() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let mut unpaid = completed("evt_unpaid", &order);
    unpaid["data"]["object"]["payment_status"] = json!("unpaid");
    assert_eq!(app.deliver(&unpaid).await["outcome"], "AWAITING_PAYMENT");
    assert_eq!(
        app.order(&token, order["id"].as_str().unwrap()).await["status"],
        "PENDING_PAYMENT"
    );
    let mut later = completed("evt_async_ok", &order);
    later["type"] = json!("checkout.session.async_payment_succeeded");
    assert_eq!(app.deliver(&later).await["outcome"], "APPLIED");
    assert_eq!(
        app.order(&token, order["id"].as_str().unwrap()).await["status"],
        "PAID"
    );
}

#[tokio::test]
async fn amount_mismatch_is_recorded_not_paid() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let mut cheap = completed("evt_cheap", &order);
    cheap["data"]["object"]["amount_total"] = json!(1);
    assert_eq!(app.deliver(&cheap).await["outcome"], "AMOUNT_MISMATCH");
    let mut other_currency = completed("evt_eur", &order);
    other_currency["data"]["object"]["currency"] = json!("eur");
    assert_eq!(
        app.deliver(&other_currency).await["outcome"],
        "AMOUNT_MISMATCH"
    );
    assert_eq!(
        app.order(&token, order["id"].as_str().unwrap()).await["status"],
        "PENDING_PAYMENT"
    );
    let report = app.reconciliation().await;
    let mismatches = report["amountMismatches"].as_array().unwrap();
    assert_eq!(mismatches.len(), 2);
    assert_eq!(mismatches[0]["orderId"], order["id"]);
    assert_eq!(mismatches[0]["amount"], 1);
}

#[tokio::test]
async fn unknown_orders_and_other_event_types_are_acknowledged() {
    let app = spawn_app().await;
    let ghost =
        json!({"id": "01938a6e-0000-7000-8000-000000000000", "amount": 500, "currency": "usd"});
    let ack = app.deliver(&completed("evt_ghost", &ghost)).await;
    assert_eq!(ack["outcome"], "UNKNOWN_ORDER");
    let ack = app
        .deliver(&event(
            "evt_other",
            "customer.created",
            json!({"id": "cus_1"}),
        ))
        .await;
    assert_eq!(ack["outcome"], "UNHANDLED_TYPE");
    let ack = app
        .deliver(&event(
            "evt_no_ref",
            "payment_intent.succeeded",
            json!({"id": "pi_noref", "amount": 700, "currency": "usd", "metadata": {}}),
        ))
        .await;
    assert_eq!(ack["outcome"], "NO_ORDER_REFERENCE");
    assert_eq!(app.count("webhook_events"), 3);
    let report = app.reconciliation().await;
    let unmatched: Vec<&str> = report["unmatchedEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(unmatched, vec!["evt_ghost", "evt_no_ref"]);
    let orphans = report["paymentsWithoutOrder"].as_array().unwrap();
    assert_eq!(orphans.len(), 2, "{report}");
    assert!(orphans.iter().all(|p| p.get("orderStatus").is_none()));
}

#[tokio::test]
async fn the_bench_shape_of_payment_intent_succeeded_pays_an_order() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let id = order["id"].as_str().unwrap();
    let ack = app
        .deliver(&event(
            "evt_bench_1",
            "payment_intent.succeeded",
            json!({"id": "pi_bench_1", "object": "payment_intent", "amount": order["amount"],
                   "currency": order["currency"], "status": "succeeded", "metadata": {"orderId": id}}),
        ))
        .await;
    assert_eq!(ack["outcome"], "APPLIED");
    assert_eq!(app.order(&token, id).await["status"], "PAID");
}

#[tokio::test]
async fn stripe_provider_opens_a_checkout_session_and_completes_through_the_webhook() {
    let fake = FakeStripe::start().await;
    let app = stripe_app(&fake).await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(order["paymentProvider"], "stripe");
    let url = order["checkoutUrl"].as_str().unwrap();
    assert!(
        url.starts_with("https://checkout.stripe.test/c/pay/cs_test_"),
        "{url}"
    );

    let sent = fake.received();
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(request.path, "/v1/checkout/sessions");
    assert_eq!(
        request.idempotency_key.as_deref(),
        Some(id),
        "order id as idempotency key"
    );
    assert_eq!(
        request.authorization.as_deref(),
        Some("Bearer sk_test_fake")
    );
    let form = &request.form;
    assert_eq!(form["mode"], "payment");
    assert_eq!(form["client_reference_id"], id);
    assert_eq!(form["metadata[orderId]"], id);
    assert_eq!(form["payment_intent_data[metadata][orderId]"], id);
    assert_eq!(form["line_items[0][quantity]"], "1");
    assert_eq!(
        form["line_items[0][price_data][unit_amount]"],
        order["amount"].to_string()
    );
    assert_eq!(form["line_items[0][price_data][currency]"], "usd");
    assert!(form["success_url"].contains(id));
    // The return pages follow the server's address.
    assert!(
        form["success_url"].starts_with(&format!("http://{}/checkout/success?orderId=", app.addr)),
        "{}",
        form["success_url"]
    );
    assert!(
        form["cancel_url"].starts_with(&format!("http://{}/checkout/cancel?orderId=", app.addr))
    );
    assert!(form.contains_key("expires_at"));

    assert_eq!(
        app.deliver(&completed("evt_stripe_paid", &order)).await["outcome"],
        "APPLIED"
    );
    assert_eq!(app.order(&token, id).await["status"], "PAID");
}

#[tokio::test]
async fn cancelling_a_stripe_order_expires_its_session() {
    let fake = FakeStripe::start().await;
    let app = stripe_app(&fake).await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let id = order["id"].as_str().unwrap();
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/orders/{id}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sent = fake.received();
    assert!(sent.iter().any(|r| r.path.ends_with("/expire")), "{sent:?}");
}

#[tokio::test]
async fn a_stripe_error_is_502_and_leaves_the_order_failed() {
    let fake = FakeStripe::start().await;
    fake.set_mode(Mode::Fail);
    let app = stripe_app(&fake).await;
    let token = app.token_of("student@test.com").await;
    let offerings: Value = app
        .get("/api/v1/offerings?limit=1")
        .await
        .json()
        .await
        .unwrap();
    let body = json!({"offeringId": offerings[0]["id"]});
    let resp = app.draft(&token, &body, Some("retry-me")).await;
    let problem_body = problem(resp, 502).await;
    assert_eq!(problem_body["code"], "PAYMENT_PROVIDER_ERROR");
    assert!(
        !problem_body["detail"]
            .as_str()
            .unwrap()
            .contains("Invalid integer"),
        "no provider internals"
    );
    let orders: Value = app
        .get_with_token("/api/v1/orders", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orders.as_array().unwrap().len(), 1);
    assert_eq!(orders[0]["status"], "FAILED");
    assert!(orders[0]["failureReason"].is_string());
    // Once Stripe recovers, a retry with the same key succeeds.
    fake.set_mode(Mode::Ok);
    let resp = app.draft(&token, &body, Some("retry-me")).await;
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn a_stripe_timeout_is_503_and_leaves_the_order_failed() {
    let fake = FakeStripe::start().await;
    fake.set_mode(Mode::Hang);
    let app = stripe_app(&fake).await;
    let token = app.token_of("student@test.com").await;
    let resp = app.draft_first_response(&token).await;
    assert!(resp.headers().contains_key("retry-after"));
    let body = problem(resp, 503).await;
    assert!(
        body["detail"].as_str().unwrap().contains("did not answer"),
        "{body}"
    );
    let orders: Value = app
        .get_with_token("/api/v1/orders", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orders[0]["status"], "FAILED");
}

#[tokio::test]
async fn an_unreachable_stripe_is_503_saying_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = stripe_app_at(base).await;
    let token = app.token_of("student@test.com").await;
    let resp = app.draft_first_response(&token).await;
    let body = problem(resp, 503).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{body}"
    );
}

#[tokio::test]
async fn a_refund_delivered_before_its_payment_is_applied_when_the_payment_arrives() {
    let app = spawn_app().await;
    let admin = app.token_of("admin@test.com").await;
    let token = app.token_of("student@test.com").await;
    for (order, refund) in [
        // Named by order metadata, and named only by its payment intent.
        (app.draft_first(&token).await, None),
        (app.draft_first(&token).await, Some(())),
    ] {
        let id = order["id"].as_str().unwrap();
        let event_id = format!("evt_early_refund_{id}");
        let refund_event = match refund {
            None => refunded(&event_id, &order),
            Some(()) => refund_by_intent(&event_id, &order, order["amount"].as_i64().unwrap()),
        };
        let ack = app.deliver(&refund_event).await;
        assert_eq!(ack["outcome"], "REFUND_BEFORE_PAYMENT", "{ack}");
        assert_eq!(app.order(&token, id).await["status"], "PENDING_PAYMENT");
        // Meanwhile reconciliation shows it.
        let report = app.reconciliation().await;
        let waiting = report["refundsAwaitingPayment"].as_array().unwrap();
        assert!(
            waiting.iter().any(|e| e["eventId"] == event_id.as_str()),
            "{report}"
        );
        // The payment arrives: the order ends REFUNDED, with no enrollment.
        let ack = app
            .deliver(&completed(&format!("evt_late_pay_{id}"), &order))
            .await;
        assert_eq!(ack["outcome"], "APPLIED", "{ack}");
        let after = app.order(&token, id).await;
        assert_eq!(after["status"], "REFUNDED", "{after}");
        let enrollments: Value = app.enrollments(&token).await;
        assert!(
            enrollments
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["orderId"] != id || e["status"] != "ACTIVE"),
            "{enrollments}"
        );
        let report = app.reconciliation().await;
        let waiting = report["refundsAwaitingPayment"].as_array().unwrap();
        assert!(
            waiting.iter().all(|e| e["eventId"] != event_id.as_str()),
            "{report}"
        );
        let payments: Value = app
            .get_with_token(&format!("/api/v1/payments?orderId={id}"), &admin)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(payments[0]["status"], "REFUNDED", "{payments}");
    }
    // The refund event is stored with its order and the amount refunded.
    let db = rusqlite::Connection::open(&app.db_path).unwrap();
    let missing: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM webhook_events WHERE type = 'charge.refunded'
               AND (order_id IS NULL OR amount IS NULL)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(missing, 0);
}

#[tokio::test]
async fn a_partial_refund_is_recorded_as_partial() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let id = order["id"].as_str().unwrap();
    app.deliver(&completed("evt_partial_pay", &order)).await;
    let ack = app
        .deliver(&refund_by_intent("evt_partial_refund", &order, 1_000))
        .await;
    assert_eq!(ack["outcome"], "PARTIAL_REFUND", "{ack}");
    assert_eq!(app.order(&token, id).await["status"], "PAID");
    let db = rusqlite::Connection::open(&app.db_path).unwrap();
    let (refunded, status): (i64, String) = db
        .query_row(
            "SELECT refunded_amount, status FROM payments WHERE order_id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((refunded, status.as_str()), (1_000, "SUCCEEDED"));
    let (event_order, event_amount): (String, i64) = db
        .query_row(
            "SELECT order_id, amount FROM webhook_events WHERE id = 'evt_partial_refund'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((event_order.as_str(), event_amount), (id, 1_000));
}
