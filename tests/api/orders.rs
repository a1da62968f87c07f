//! Orders through real HTTP: the whole purchase on the dev provider,
//! validation, idempotency keys, ownership, cancel, expiry, CSV export.

use serde_json::{Value, json};

use crate::helpers::{TestApp, completed, problem, spawn_app};

async fn offering(app: &TestApp, slug: &str) -> Value {
    app.get(&format!("/api/v1/offerings/{slug}"))
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn buyer_goes_from_login_to_enrolled_on_the_dev_provider() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let python = offering(&app, "python-for-absolute-beginners").await;

    // Draft with the flat body the first backend's clients send.
    let resp = app
        .draft(
            &token,
            &json!({"offeringId": python["id"], "variantId": null}),
            None,
        )
        .await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let order: Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/orders/{}", order["id"].as_str().unwrap())
    );
    assert_eq!(order["orderId"], order["id"]);
    assert_eq!(order["status"], "PENDING_PAYMENT");
    assert_eq!(order["paymentProvider"], "dev");
    assert_eq!(order["amount"], 4900);
    assert_eq!(order["currency"], "usd");
    assert_eq!(order["items"][0]["unitPrice"], 4900);
    assert_eq!(order["items"][0]["lineTotal"], 4900);
    assert_eq!(order["items"][0]["variantId"], python["variants"][0]["id"]);
    let checkout = order["checkoutUrl"].as_str().unwrap();
    assert!(
        checkout.starts_with(&format!("http://{}/checkout/dev/", app.addr)),
        "{checkout}"
    );

    // The checkout page works without JavaScript: a form that posts.
    let page = app.client.get(checkout).send().await.unwrap();
    assert_eq!(page.status(), 200);
    // It can mark an order paid: never cached, nothing loaded from elsewhere.
    assert_eq!(page.headers()["cache-control"], "no-store");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("Python for Absolute Beginners"));
    assert!(html.contains("/pay\"") && html.contains("method=\"post\""));
    let pay = app
        .client
        .post(format!("{checkout}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(pay.status(), 303);

    let after = app.client.get(checkout).send().await.unwrap();
    assert!(
        after
            .text()
            .await
            .unwrap()
            .contains("Paid: the order is complete")
    );
    let id = order["id"].as_str().unwrap();
    let paid = app.order(&token, id).await;
    assert_eq!(paid["status"], "PAID");
    assert!(paid["paidAt"].is_string());
    let enrollments: Value = app.enrollments(&token).await;
    assert_eq!(
        enrollments[0]["offering"]["slug"],
        "python-for-absolute-beginners"
    );
    assert_eq!(enrollments[0]["orderId"], id);
    assert_eq!(enrollments[0]["status"], "ACTIVE");

    let report = app.reconciliation().await;
    for list in [
        "paidWithoutPayment",
        "paymentsWithoutOrder",
        "amountMismatches",
        "unmatchedEvents",
    ] {
        assert_eq!(report[list], json!([]), "{list}: {report}");
    }
    assert_eq!(
        report["totals"],
        json!([{"status": "PAID", "currency": "usd", "count": 1, "amount": 4900}])
    );
    let admin = app.token_of("admin@test.com").await;
    let payments: Value = app
        .get_with_token("/api/v1/payments", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payments[0]["orderId"], id);
    assert_eq!(payments[0]["amount"], 4900);
    assert_eq!(payments[0]["status"], "SUCCEEDED");
    // The page now shows the order closed.
    let html = app
        .client
        .get(checkout)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("PAID") && !html.contains("/pay\""));
}

#[tokio::test]
async fn cancel_on_the_dev_checkout_expires_the_order() {
    let app = spawn_app().await;
    let token = app.token_of("student1@test.com").await;
    let order = app.draft_first(&token).await;
    let checkout = order["checkoutUrl"].as_str().unwrap();
    let resp = app
        .client
        .post(format!("{checkout}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let order = app.order(&token, order["id"].as_str().unwrap()).await;
    assert_eq!(order["status"], "EXPIRED");
}

#[tokio::test]
async fn items_body_prices_every_line_and_snapshots_prices() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let spanish = offering(&app, "spanish-conversation-coaching").await;
    let sql = offering(&app, "sql-from-zero-to-window-functions").await;
    let pack = &spanish["variants"][1];
    let resp = app
        .draft(
            &token,
            &json!({"items": [
                {"offeringId": spanish["id"], "variantId": pack["id"], "quantity": 2},
                {"offeringId": sql["id"]}
            ]}),
            None,
        )
        .await;
    assert_eq!(resp.status(), 201);
    let order: Value = resp.json().await.unwrap();
    assert_eq!(order["amount"], 2 * 16000 + 3900);
    assert_eq!(order["items"][0]["lineTotal"], 32000);
    assert_eq!(order["items"][0]["quantity"], 2);
    assert_eq!(
        order["items"][1]["variantId"], sql["variants"][0]["id"],
        "default variant"
    );

    // The price goes up afterwards: the order keeps its snapshot.
    let tutor = app.token_of("admin@test.com").await;
    let resp = app
        .client
        .patch(app.url(&format!("/api/v1/offerings/{}", spanish["id"].as_str().unwrap())))
        .bearer_auth(&tutor)
        .json(&json!({"variants": [
            {"id": spanish["variants"][0]["id"], "name": "Single", "price": 9999, "currency": "usd", "isDefault": true},
            {"id": pack["id"], "name": "Five", "price": 99999, "currency": "usd"}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let again = app.order(&token, order["id"].as_str().unwrap()).await;
    assert_eq!(again["amount"], 2 * 16000 + 3900);
    assert_eq!(again["items"][0]["unitPrice"], 16000);
}

#[tokio::test]
async fn invalid_drafts_are_refused_and_leave_nothing() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let python = offering(&app, "python-for-absolute-beginners").await;
    let tutor = app.token_of("tutor@test.com").await;
    let draft_offering: Value = app
        .get_with_token("/api/v1/offerings/draft-advanced-rust-async", &tutor)
        .await
        .json()
        .await
        .unwrap();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"offeringId": "nope"}), 404, "NOT_FOUND"),
        (
            json!({"offeringId": python["id"], "variantId": "nope"}),
            404,
            "NOT_FOUND",
        ),
        (
            json!({"offeringId": draft_offering["id"]}),
            409,
            "OFFERING_UNAVAILABLE",
        ),
        (
            json!({"offeringId": python["id"], "quantity": 0}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"offeringId": python["id"], "quantity": 11}),
            400,
            "VALIDATION_ERROR",
        ),
        (json!({"items": []}), 400, "VALIDATION_ERROR"),
        (
            json!({"items": (0..21).map(|_| json!({"offeringId": python["id"]})).collect::<Vec<_>>()}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"items": [{"offeringId": python["id"]}, {"offeringId": python["id"]}]}),
            400,
            "VALIDATION_ERROR",
        ),
        (json!({"quantity": 1}), 400, "VALIDATION_ERROR"),
        (json!("not an object"), 400, "VALIDATION_ERROR"),
        (json!({"offeringId": 17}), 400, "VALIDATION_ERROR"),
        (
            json!({"offeringId": python["id"], "variantId": false}),
            400,
            "VALIDATION_ERROR",
        ),
    ];
    for (body, status, code) in cases {
        let resp = app.draft(&token, &body, None).await;
        let problem_body = problem(resp, status).await;
        assert_eq!(problem_body["code"], code, "{body}: {problem_body}");
    }
    problem(
        app.client
            .post(app.url("/api/v1/orders/draft"))
            .json(&json!({"offeringId": python["id"]}))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert_eq!(app.count("orders"), 0);
}

#[tokio::test]
async fn mixed_currencies_are_422() {
    let app = spawn_app().await;
    let tutor = app.token_of("tutor@test.com").await;
    let resp = app
        .client
        .post(app.url("/api/v1/offerings"))
        .bearer_auth(&tutor)
        .json(&json!({"type": "RECORDED", "title": "Euro Course",
                      "variants": [{"name": "Access", "price": 1000, "currency": "eur"}]}))
        .send()
        .await
        .unwrap();
    let euro: Value = resp.json().await.unwrap();
    let id = euro["id"].as_str().unwrap();
    app.client
        .post(app.url(&format!("/api/v1/offerings/{id}/publish")))
        .bearer_auth(&tutor)
        .send()
        .await
        .unwrap();
    let python = offering(&app, "python-for-absolute-beginners").await;
    let token = app.token_of("student@test.com").await;
    let resp = app
        .draft(
            &token,
            &json!({"items": [{"offeringId": python["id"]}, {"offeringId": id}]}),
            None,
        )
        .await;
    let body = problem(resp, 422).await;
    assert_eq!(body["code"], "MIXED_CURRENCIES");
    assert_eq!(app.count("orders"), 0);
}

#[tokio::test]
async fn idempotency_key_replays_and_refuses_misuse() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let python = offering(&app, "python-for-absolute-beginners").await;
    let body = json!({"offeringId": python["id"], "quantity": 2});
    let first = app.draft(&token, &body, Some("key-123")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = app.draft(&token, &body, Some("key-123")).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    // The same key with another body.
    let other = app
        .draft(
            &token,
            &json!({"offeringId": python["id"], "quantity": 3}),
            Some("key-123"),
        )
        .await;
    let body_problem = problem(other, 422).await;
    assert_eq!(body_problem["code"], "IDEMPOTENCY_KEY_REUSED");
    // Keys are per user: another student's key-123 is a new order.
    let other_student = app.token_of("student2@test.com").await;
    let theirs = app.draft(&other_student, &body, Some("key-123")).await;
    assert_eq!(theirs.status(), 201);
    assert_eq!(app.count("orders"), 2);
    // A bad key is a 400.
    problem(
        app.draft(&token, &body, Some("bad key with spaces")).await,
        400,
    )
    .await;
    // So is one that is not ASCII at all, rather than being ignored (which
    // would make the retry a second order).
    let orders = app.count("orders");
    for _ in 0..2 {
        let resp = app
            .client
            .post(app.url("/api/v1/orders/draft"))
            .bearer_auth(&token)
            .header(
                "Idempotency-Key",
                reqwest::header::HeaderValue::from_bytes("clé-1".as_bytes()).unwrap(),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        let refused = problem(resp, 400).await;
        assert_eq!(refused["field"], "Idempotency-Key", "{refused}");
    }
    assert_eq!(app.count("orders"), orders);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_order() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let python = offering(&app, "python-for-absolute-beginners").await;
    let body = json!({"offeringId": python["id"]});
    let requests = (0..12).map(|_| app.draft(&token, &body, Some("same-key")));
    let responses = futures::future::join_all(requests).await;
    let mut ids = std::collections::HashSet::new();
    for resp in responses {
        let status = resp.status().as_u16();
        assert!(matches!(status, 200 | 201 | 409), "status {status}");
        if status != 409 {
            let order: Value = resp.json().await.unwrap();
            ids.insert(order["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("orders"), 1);
}

#[tokio::test]
async fn a_student_cannot_read_another_students_order() {
    let app = spawn_app().await;
    let alice = app.token_of("student1@test.com").await;
    let bob = app.token_of("student2@test.com").await;
    let order = app.draft_first(&alice).await;
    let id = order["id"].as_str().unwrap();
    problem(
        app.get_with_token(&format!("/api/v1/orders/{id}"), &bob)
            .await,
        404,
    )
    .await;
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/orders/{id}/cancel")))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    problem(resp, 404).await;
    // Bob's list is empty; Alice sees hers; the admin sees all and filters.
    let list: Value = app
        .get_with_token("/api/v1/orders", &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    let resp = app
        .get_with_token("/api/v1/orders?userId=anyone", &bob)
        .await;
    assert_eq!(
        resp.status(),
        200,
        "students may not widen the filter, but it is no error"
    );
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list, json!([]));
    let list: Value = app
        .get_with_token("/api/v1/orders", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], id);
    let admin = app.token_of("admin@test.com").await;
    assert_eq!(app.order(&admin, id).await["id"], id);
    let resp = app
        .get_with_token("/api/v1/orders?status=PENDING_PAYMENT,PAID", &admin)
        .await;
    assert_eq!(resp.headers()["x-total-count"], "1");
    let resp = app
        .get_with_token("/api/v1/orders?status=PAID", &admin)
        .await;
    assert_eq!(resp.headers()["x-total-count"], "0");
    problem(
        app.get_with_token("/api/v1/orders?status=BOGUS", &admin)
            .await,
        400,
    )
    .await;
    problem(
        app.get_with_token("/api/v1/orders?from=yesterday", &admin)
            .await,
        400,
    )
    .await;
}

#[tokio::test]
async fn cancel_works_once_while_pending() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let id = order["id"].as_str().unwrap();
    let cancel = || {
        app.client
            .post(app.url(&format!("/api/v1/orders/{id}/cancel")))
            .bearer_auth(&token)
            .send()
    };
    let resp = cancel().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "CANCELLED");
    let body = problem(cancel().await.unwrap(), 409).await;
    assert_eq!(body["code"], "ORDER_NOT_CANCELLABLE");
    // Paying a cancelled order afterwards records the money, not a PAID order.
    let ack = app.deliver(&completed("evt_late_pay", &order)).await;
    assert_eq!(ack["outcome"], "PAYMENT_FOR_CLOSED_ORDER");
    assert_eq!(app.order(&token, id).await["status"], "CANCELLED");
    let report = app.reconciliation().await;
    assert_eq!(report["paymentsWithoutOrder"][0]["payment"]["orderId"], id);
    assert_eq!(
        report["paymentsWithoutOrder"][0]["orderStatus"],
        "CANCELLED"
    );
    assert_eq!(report["unmatchedEvents"][0]["eventId"], "evt_late_pay");
}

#[tokio::test]
async fn overdue_pending_orders_read_as_expired_and_cannot_be_paid() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let id = order["id"].as_str().unwrap();
    rusqlite::Connection::open(&app.db_path)
        .unwrap()
        .execute(
            "UPDATE orders SET expires_at = '2000-01-01T00:00:00.000Z' WHERE id = ?1",
            [id],
        )
        .unwrap();
    assert_eq!(app.order(&token, id).await["status"], "EXPIRED");
    let admin = app.token_of("admin@test.com").await;
    let resp = app
        .get_with_token("/api/v1/orders?status=EXPIRED", &admin)
        .await;
    assert_eq!(resp.headers()["x-total-count"], "1");
    let report = app.reconciliation().await;
    assert_eq!(report["totals"][0]["status"], "EXPIRED");
    let ack = app.deliver(&completed("evt_after_expiry", &order)).await;
    assert_eq!(ack["outcome"], "PAYMENT_FOR_CLOSED_ORDER");
    assert_eq!(app.order(&token, id).await["status"], "EXPIRED");
}

/// Creates and publishes a RECORDED offering of the demo tutor with one
/// variant; returns its id.
async fn published_offering(app: &TestApp, title: &str, variant: &str) -> String {
    let tutor = app.token_of("tutor@test.com").await;
    let created = app
        .published(
            &tutor,
            &json!({"type": "RECORDED", "title": title,
                    "variants": [{"name": variant, "price": 100, "currency": "usd"}]}),
        )
        .await;
    created["id"].as_str().unwrap().to_string()
}

/// The rows of the admin's CSV export.
async fn exported_rows(app: &TestApp) -> Vec<csv::StringRecord> {
    let admin = app.token_of("admin@test.com").await;
    let text = app
        .get_with_token("/api/v1/orders/export.csv", &admin)
        .await
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader.records().map(Result::unwrap).collect()
}

#[tokio::test]
async fn csv_export_cells_never_start_a_spreadsheet_formula() {
    let app = spawn_app().await;
    let student = app.token_of("student@test.com").await;
    for (title, variant) in [
        ("=HYPERLINK(\"https://evil.example\",\"Invoice\")", "A"),
        ("+SUM(1+1) course", "+SUM(1+1)"),
        ("-2+3 maths", "B"),
        ("@cmd|' /C calc'!A0", "C"),
    ] {
        let id = published_offering(&app, title, variant).await;
        let resp = app.draft(&student, &json!({"offeringId": id}), None).await;
        assert_eq!(resp.status(), 201);
    }
    let rows = exported_rows(&app).await;
    assert_eq!(rows.len(), 4);
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a live formula cell: {cell:?}"
            );
        }
        assert!(row[6].starts_with('\''), "{:?}", &row[6]);
    }
}

#[tokio::test]
async fn csv_export_escapes_commas_and_quotes() {
    let app = spawn_app().await;
    let title = "Commas, \"Quotes\" and more";
    let id = published_offering(&app, title, "A, \"b\"").await;
    let student = app.token_of("student@test.com").await;
    assert_eq!(
        app.draft(&student, &json!({"offeringId": id}), None)
            .await
            .status(),
        201
    );

    let admin = app.token_of("admin@test.com").await;
    let resp = app
        .get_with_token("/api/v1/orders/export.csv", &admin)
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(&rows[0][6], "Commas, \"Quotes\" and more - A, \"b\" x1");
    assert_eq!(&rows[0][3], "PENDING_PAYMENT");
    // Students may not export.
    problem(
        app.get_with_token("/api/v1/orders/export.csv", &student)
            .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn the_dev_checkout_needs_its_unguessable_link_and_closes_with_its_order() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let id = order["id"].as_str().unwrap();
    let checkout = order["checkoutUrl"].as_str().unwrap();
    let enrolled = app.count("enrollments");
    let session = checkout.rsplit('/').next().unwrap();
    assert!(
        session.starts_with("cs_dev_") && session.len() == 50,
        "{session}"
    );
    assert!(!session.contains(id));
    // Knowing the order id is not enough: not as the path, not as the
    // session id older versions made from it, not a made-up one.
    for guess in [
        id.to_string(),
        format!("cs_dev_{id}"),
        format!("cs_dev_{}", "A".repeat(43)),
    ] {
        for action in ["pay", "cancel"] {
            let resp = app
                .client
                .post(app.url(&format!("/checkout/dev/{guess}/{action}")))
                .send()
                .await
                .unwrap();
            assert_eq!(problem(resp, 404).await["code"], "NOT_FOUND");
        }
        let page = app.get(&format!("/checkout/dev/{guess}")).await;
        assert_eq!(page.status(), 404);
    }
    assert_eq!(app.order(&token, id).await["status"], "PENDING_PAYMENT");
    // The link's holder cancels; the link then no longer pays.
    let cancel = app
        .client
        .post(format!("{checkout}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 303);
    let pay = app
        .client
        .post(format!("{checkout}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(pay, 410).await["code"], "GONE");
    let closed = app.order(&token, id).await;
    assert_ne!(closed["status"], "PAID");
    assert_eq!(app.count("enrollments"), enrolled);
}

#[tokio::test]
async fn a_draft_with_both_a_flat_item_and_items_is_refused() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let python = offering(&app, "python-for-absolute-beginners").await;
    let both = json!({"offeringId": python["id"], "items": [{"offeringId": python["id"]}]});
    let refused = problem(app.draft(&token, &both, None).await, 400).await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("no other fields")
    );
    assert_eq!(app.count("orders"), 0);
}

#[tokio::test]
async fn validation_errors_name_no_internal_type_and_echo_nothing() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let long = "x".repeat(80);
    for bad in [
        json!({"offeringId": "secret-looking-value", "quantity": "x"}),
        json!({"offeringId": "secret-looking-value", "quantity": 99}),
        json!({"items": [{"offeringId": 7}]}),
        json!({"offeringId": long}),
        json!(["secret-looking-value"]),
    ] {
        let refused = problem(app.draft(&token, &bad, None).await, 400).await;
        let detail = refused["detail"].as_str().unwrap();
        for leak in [
            "Draft",
            "Request",
            "integer_",
            "secret-looking-value",
            &long,
        ] {
            assert!(!detail.contains(leak), "{bad} => {refused}");
        }
    }
    let resp = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": 5, "password": "longenough1"}))
        .send()
        .await
        .unwrap();
    let refused = problem(resp, 400).await;
    assert!(
        !refused["detail"]
            .as_str()
            .unwrap()
            .contains("RegisterRequest"),
        "{refused}"
    );
    let refused = problem(app.get("/api/v1/offerings?limit=abc").await, 400).await;
    assert_eq!(refused["field"], "limit");
    assert_eq!(refused["detail"], "limit must be an integer");
}
