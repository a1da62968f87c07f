//! Admin actions: refunds through the provider, roles, suspensions, and the
//! audit log that records each of them.

use serde_json::{Value, json};

use crate::fake_stripe::{FakeStripe, stripe_app};
use crate::helpers::{TestApp, completed, problem, spawn_app};

impl TestApp {
    async fn refund(&self, admin: &str, order_id: &str, body: &Value) -> reqwest::Response {
        let path = format!("/api/v1/admin/orders/{order_id}/refund");
        self.post_as(admin, &path, body).await
    }

    /// A student's order of the first listed offering, paid.
    async fn paid_order(&self, student: &str, event: &str) -> Value {
        let order = self.draft_first(student).await;
        self.deliver(&completed(event, &order)).await;
        order
    }

    async fn audit_of(&self, admin: &str, target: &str) -> Vec<Value> {
        let log: Value = self
            .get_with_token(&format!("/api/v1/admin/audit?target={target}"), admin)
            .await
            .json()
            .await
            .unwrap();
        log.as_array().unwrap().clone()
    }
}

fn user_id(app_session: &Value) -> String {
    app_session["user"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_admin_refunds_in_part_then_in_full_and_each_refund_is_audited() {
    let app = spawn_app().await;
    let admin = app.token_of("admin@test.com").await;
    let student = app.token_of("student@test.com").await;
    let order = app.paid_order(&student, "evt_admin_refund").await;
    let id = order["id"].as_str().unwrap();
    let amount = order["amount"].as_i64().unwrap();
    let path = format!("/api/v1/admin/orders/{id}/refund");

    let resp = app.post_as(&admin, &path, &json!({"amount": 1})).await;
    assert_eq!(resp.status(), 200);
    let partly: Value = resp.json().await.unwrap();
    assert_eq!(partly["status"], "PAID", "part of it back: still paid");
    let too_much = problem(
        app.post_as(&admin, &path, &json!({"amount": amount})).await,
        400,
    )
    .await;
    assert_eq!(too_much["field"], "amount");
    let resp = app.post_as(&admin, &path, &json!({})).await;
    assert_eq!(resp.status(), 200);
    let refunded: Value = resp.json().await.unwrap();
    assert_eq!(refunded["status"], "REFUNDED");
    let enrollments = app.enrollments(&student).await;
    assert_eq!(enrollments[0]["status"], "REVOKED");
    let again = problem(app.post_as(&admin, &path, &json!({})).await, 409).await;
    assert_eq!(again["code"], "ORDER_NOT_REFUNDABLE");

    let payments: Value = app
        .get_with_token(&format!("/api/v1/payments?orderId={id}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payments[0]["refundedAmount"], amount);
    let log = app.audit_of(&admin, id).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["action"], "order.refund");
    assert_eq!(log[0]["address"], "127.0.0.1");
    assert_eq!(log[0]["detail"]["full"], true);
    assert_eq!(log[1]["detail"]["amount"], 1);
}

#[tokio::test]
async fn only_admins_refund_and_only_paid_orders() {
    let app = spawn_app().await;
    let student = app.token_of("student@test.com").await;
    let order = app.draft_first(&student).await;
    let path = format!(
        "/api/v1/admin/orders/{}/refund",
        order["id"].as_str().unwrap()
    );
    problem(app.post_as(&student, &path, &json!({})).await, 403).await;
    let admin = app.token_of("admin@test.com").await;
    let pending = problem(app.post_as(&admin, &path, &json!({})).await, 409).await;
    assert_eq!(pending["code"], "ORDER_NOT_REFUNDABLE");
    problem(
        app.post_as(&admin, "/api/v1/admin/orders/nope/refund", &json!({}))
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn a_stripe_refund_goes_through_the_refund_api_once_per_request() {
    let fake = FakeStripe::start().await;
    let app = stripe_app(&fake).await;
    let admin = app.token_of("admin@test.com").await;
    let student = app.token_of("student@test.com").await;
    let order = app.paid_order(&student, "evt_stripe_refund").await;
    let id = order["id"].as_str().unwrap();
    let resp = app.refund(&admin, id, &json!({})).await;
    assert_eq!(resp.status(), 200);
    let sent: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|r| r.path == "/v1/refunds")
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].form["payment_intent"], format!("pi_{id}"));
    assert_eq!(sent[0].form["amount"], order["amount"].to_string());
    assert!(sent[0].idempotency_key.is_some());
    let log = app.audit_of(&admin, id).await;
    assert!(
        log[0]["detail"]["refundId"]
            .as_str()
            .unwrap()
            .starts_with("re_test_")
    );
}

#[tokio::test]
async fn a_payment_for_a_closed_order_is_refunded_automatically_and_never_enrolls() {
    let fake = FakeStripe::start().await;
    let app = stripe_app(&fake).await;
    let student = app.token_of("student@test.com").await;
    let order = app.draft_first(&student).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(app.cancel(&student, id).await.status(), 200);
    let ack = app.deliver(&completed("evt_late_payment", &order)).await;
    assert_eq!(ack["outcome"], "PAYMENT_FOR_CLOSED_ORDER");
    let refunds: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|r| r.path == "/v1/refunds")
        .collect();
    assert_eq!(refunds.len(), 1, "sent back through Stripe");
    assert_eq!(refunds[0].form["payment_intent"], format!("pi_{id}"));
    assert_eq!(app.enrollments(&student).await.as_array().unwrap().len(), 0);
    let report = app.reconciliation().await;
    let payment = report["paymentsWithoutOrder"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["payment"]["orderId"] == id)
        .expect("listed by reconciliation");
    assert_eq!(payment["payment"]["status"], "REFUNDED");
    let event = report["unmatchedEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventId"] == "evt_late_payment")
        .expect("the event is listed");
    assert!(
        event["detail"]
            .as_str()
            .unwrap()
            .contains("refunded automatically"),
        "{event}"
    );
}

#[tokio::test]
async fn a_new_role_applies_at_once_and_an_admin_cannot_change_their_own() {
    let app = spawn_app().await;
    let admin = app.token_of("admin@test.com").await;
    let session = app.login("student1@test.com", "password123").await;
    let student = session["accessToken"].as_str().unwrap().to_string();
    let offering = json!({"type": "RECORDED", "title": "Promoted tutor's course",
        "variants": [{"name": "All", "price": 100, "currency": "usd"}]});
    let before = app.post_as(&student, "/api/v1/offerings", &offering).await;
    assert_eq!(before.status(), 403);
    let id = user_id(&session);
    let resp = app
        .post_as(
            &admin,
            &format!("/api/v1/admin/users/{id}/role"),
            &json!({"role": "TUTOR"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let user: Value = resp.json().await.unwrap();
    assert_eq!(user["role"], "TUTOR");
    let after = app.post_as(&student, "/api/v1/offerings", &offering).await;
    assert_eq!(after.status(), 201, "the same token, the new role");

    let me: Value = app
        .get_with_token("/api/v1/auth/me", &admin)
        .await
        .json()
        .await
        .unwrap();
    let own = me["id"].as_str().unwrap();
    let body = problem(
        app.post_as(
            &admin,
            &format!("/api/v1/admin/users/{own}/role"),
            &json!({"role": "STUDENT"}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(body["code"], "CANNOT_CHANGE_OWN_ACCOUNT");
    let log = app.audit_of(&admin, &id).await;
    assert_eq!(log[0]["action"], "user.role");
    assert_eq!(log[0]["detail"], json!({"from": "STUDENT", "to": "TUTOR"}));
}

#[tokio::test]
async fn a_suspended_account_cannot_sign_in_and_its_sessions_end() {
    let app = spawn_app().await;
    let admin = app.token_of("admin@test.com").await;
    let session = app.login("student2@test.com", "password123").await;
    let token = session["accessToken"].as_str().unwrap().to_string();
    let id = user_id(&session);
    assert_eq!(
        app.get_with_token("/api/v1/auth/me", &token).await.status(),
        200
    );

    let resp = app
        .post_as(
            &admin,
            &format!("/api/v1/admin/users/{id}/suspend"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let user: Value = resp.json().await.unwrap();
    assert!(user["suspendedAt"].is_string());
    problem(app.get_with_token("/api/v1/auth/me", &token).await, 401).await;
    let refresh = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refreshToken": session["refreshToken"]}),
        )
        .await;
    problem(refresh, 401).await;
    let login = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "student2@test.com", "password": "password123"}),
        )
        .await;
    assert_eq!(problem(login, 403).await["code"], "ACCOUNT_SUSPENDED");
    let wrong = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "student2@test.com", "password": "not-the-password"}),
        )
        .await;
    problem(wrong, 401).await;

    let resp = app
        .post_as(
            &admin,
            &format!("/api/v1/admin/users/{id}/reinstate"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    app.login("student2@test.com", "password123").await;
    let actions: Vec<Value> = app
        .audit_of(&admin, &id)
        .await
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(actions, [json!("user.reinstate"), json!("user.suspend")]);
}

/// A published GROUP offering of the demo tutor with one seat: (id,
/// variant id, slug).
async fn one_seat_class(app: &TestApp, title: &str) -> (String, String, String) {
    let tutor = app.token_of("tutor@test.com").await;
    let created = app
        .published(
            &tutor,
            &json!({"type": "GROUP", "title": title, "variants": [
                {"name": "The seat", "price": 5000, "currency": "usd", "capacity": 1}]}),
        )
        .await;
    let text = |v: &Value| v.as_str().unwrap().to_string();
    (
        text(&created["id"]),
        text(&created["variants"][0]["id"]),
        text(&created["slug"]),
    )
}

#[tokio::test]
async fn a_late_payment_for_a_full_class_ends_refunded_never_enrolled() {
    let fake = FakeStripe::start().await;
    let app = stripe_app(&fake).await;
    let (offering, variant, slug) = one_seat_class(&app, "Full class").await;
    let body = json!({"offeringId": offering, "variantId": variant, "quantity": 1});
    let late = app.token_of("student1@test.com").await;
    let late_order: Value = app.draft(&late, &body, None).await.json().await.unwrap();
    // The hold expires; someone else takes the seat and pays.
    let skipped = std::time::Duration::from_secs(31 * 60);
    app.clock.advance(skipped);
    let on_time = app.token_of("student2@test.com").await;
    let resp = app.draft(&on_time, &body, None).await;
    assert_eq!(resp.status(), 201, "the expired hold freed the seat");
    let paid: Value = resp.json().await.unwrap();
    let now = crate::helpers::now() + skipped.as_secs() as i64;
    let secret = crate::helpers::webhook_secret();
    let ack = app
        .deliver_at(&completed("evt_on_time", &paid), &secret, now)
        .await;
    assert_eq!(ack.status(), 200);
    // The first buyer's payment arrives after all.
    let ack: Value = app
        .deliver_at(&completed("evt_too_late", &late_order), &secret, now)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ack["outcome"], "PAYMENT_FOR_CLOSED_ORDER");
    let refunds: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|r| r.path == "/v1/refunds")
        .collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        refunds[0].form["payment_intent"],
        format!("pi_{}", late_order["id"].as_str().unwrap())
    );
    // Its access token expired meanwhile: sign in again to look.
    let late = app.token_of("student1@test.com").await;
    assert_eq!(app.enrollments(&late).await.as_array().unwrap().len(), 0);
    assert_eq!(app.enrollments(&on_time).await.as_array().unwrap().len(), 1);
    assert_eq!(app.seats_left(&slug).await, 0, "one seat, one student");
}

#[tokio::test]
async fn an_admin_refund_frees_the_seat_and_shows_in_reconciliation() {
    let app = spawn_app().await;
    let (offering, variant, slug) = one_seat_class(&app, "Refunded seat").await;
    let body = json!({"offeringId": offering, "variantId": variant, "quantity": 1});
    let student = app.token_of("student3@test.com").await;
    let order: Value = app.draft(&student, &body, None).await.json().await.unwrap();
    app.deliver(&completed("evt_seat_then_refund", &order))
        .await;
    assert_eq!(app.seats_left(&slug).await, 0);
    let admin = app.token_of("admin@test.com").await;
    let id = order["id"].as_str().unwrap();
    let resp = app.refund(&admin, id, &json!({})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.seats_left(&slug).await, 1, "the seat is free again");
    let report = app.reconciliation().await;
    let refunded = report["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "REFUNDED")
        .expect("a refunded order in the totals");
    assert!(refunded["count"].as_u64().unwrap() >= 1);
    assert_eq!(app.audit_of(&admin, id).await[0]["action"], "order.refund");
    let another = app.token_of("student4@test.com").await;
    assert_eq!(app.draft(&another, &body, None).await.status(), 201);
}
