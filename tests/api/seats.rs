//! Seats: a variant with a capacity never sells more than it has, whoever
//! races for the last one; holds come back when an order is cancelled,
//! replaced or expires, and when a paid one is refunded.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, completed, problem, refunded, spawn_app};

/// A published GROUP offering of the demo tutor with one variant of
/// `capacity` seats: its id, its variant's id and its slug.
async fn group_class(app: &TestApp, title: &str, capacity: i64) -> (String, String, String) {
    let tutor = app.token_of("tutor@test.com").await;
    let created = app
        .published(
            &tutor,
            &json!({"type": "GROUP", "title": title, "variants": [
                {"name": "Evening class", "price": 3000, "currency": "usd", "capacity": capacity}
            ]}),
        )
        .await;
    let text = |v: &Value| v.as_str().unwrap().to_string();
    (
        text(&created["id"]),
        text(&created["variants"][0]["id"]),
        text(&created["slug"]),
    )
}

/// `n` new student accounts' access tokens.
async fn students(app: &TestApp, tag: &str, n: usize) -> Vec<String> {
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let body = json!({"email": format!("{tag}{i}@test.com"), "password": "seat-racer-1"});
        let resp = app.post_json("/api/v1/auth/register", &body).await;
        assert_eq!(resp.status(), 201);
        let session: Value = resp.json().await.unwrap();
        tokens.push(session["accessToken"].as_str().unwrap().to_string());
    }
    tokens
}

fn item(offering: &str, variant: &str, quantity: i64) -> Value {
    json!({"offeringId": offering, "variantId": variant, "quantity": quantity})
}

#[tokio::test]
async fn twelve_students_racing_for_a_class_of_three_get_three_seats() {
    let app = spawn_app().await;
    for round in 0..3 {
        let (offering, variant, slug) =
            group_class(&app, &format!("Racing class {round}"), 3).await;
        assert_eq!(app.seats_left(&slug).await, 3);
        let tokens = students(&app, &format!("racer{round}-"), 12).await;
        let body = item(&offering, &variant, 1);
        let answers =
            futures::future::join_all(tokens.iter().map(|token| app.draft(token, &body, None)))
                .await;
        let mut sold = Vec::new();
        for resp in answers {
            match resp.status().as_u16() {
                201 => sold.push(resp.json::<Value>().await.unwrap()),
                409 => {
                    let body = problem(resp, 409).await;
                    assert_eq!(body["code"], "SOLD_OUT");
                    assert_eq!(body["seatsLeft"], 0);
                    assert_eq!(body["field"], "items[0].quantity");
                }
                other => panic!("a draft answered {other}"),
            }
        }
        assert_eq!(sold.len(), 3, "round {round}: three seats, three orders");
        assert_eq!(app.seats_left(&slug).await, 0, "the cached detail follows");
        for (i, order) in sold.iter().enumerate() {
            app.deliver(&completed(&format!("evt_race_{round}_{i}"), order))
                .await;
        }
        assert_eq!(app.seats_left(&slug).await, 0, "paid seats stay taken");
    }
    let enrolled: i64 = rusqlite::Connection::open(&app.db_path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM enrollments e JOIN offerings o ON o.id = e.offering_id
             WHERE o.title LIKE 'Racing class %'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(enrolled, 9, "three per class, never more");
}

#[tokio::test]
async fn a_quantity_beyond_the_seats_left_is_refused_with_the_seats_left() {
    let app = spawn_app().await;
    let (offering, variant, slug) = group_class(&app, "Quantities", 3).await;
    let tokens = students(&app, "qty", 3).await;
    let resp = app
        .draft(&tokens[0], &item(&offering, &variant, 2), None)
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(app.seats_left(&slug).await, 1);
    let body = problem(
        app.draft(&tokens[1], &item(&offering, &variant, 2), None)
            .await,
        409,
    )
    .await;
    assert_eq!(body["code"], "SOLD_OUT");
    assert_eq!(body["seatsLeft"], 1);
    assert!(body["detail"].as_str().unwrap().contains("1 seat left"));
    let resp = app
        .draft(&tokens[1], &item(&offering, &variant, 1), None)
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(app.seats_left(&slug).await, 0);
}

#[tokio::test]
async fn seats_come_back_on_cancel_on_replacement_and_on_expiry() {
    let app = spawn_app().await;
    let (offering, variant, slug) = group_class(&app, "One seat", 1).await;
    let tokens = students(&app, "back", 3).await;
    let body = item(&offering, &variant, 1);

    // Cancelled: the seat is free at once.
    let first: Value = app
        .draft(&tokens[0], &body, None)
        .await
        .json()
        .await
        .unwrap();
    problem(app.draft(&tokens[1], &body, None).await, 409).await;
    let resp = app
        .client
        .post(app.url(&format!(
            "/api/v1/orders/{}/cancel",
            first["id"].as_str().unwrap()
        )))
        .bearer_auth(&tokens[0])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(app.seats_left(&slug).await, 1);

    // Replaced: the same buyer drafting again holds one seat, not two.
    let held: Value = app
        .draft(&tokens[1], &body, None)
        .await
        .json()
        .await
        .unwrap();
    let again = app.draft(&tokens[1], &body, None).await;
    assert_eq!(again.status(), 201, "the newer draft replaces the older");
    let replaced = app.order(&tokens[1], held["id"].as_str().unwrap()).await;
    assert_eq!(replaced["status"], "CANCELLED");
    assert_eq!(app.seats_left(&slug).await, 0);

    // Expired: past the hold, the seat is free before any sweep runs.
    problem(app.draft(&tokens[2], &body, None).await, 409).await;
    app.clock.advance(Duration::from_secs(31 * 60));
    // The access token expired meanwhile too: sign in again.
    let session = app.login("back2@test.com", "seat-racer-1").await;
    let fresh = session["accessToken"].as_str().unwrap();
    let resp = app.draft(fresh, &body, None).await;
    assert_eq!(resp.status(), 201, "the expired hold no longer counts");
}

#[tokio::test]
async fn a_refund_gives_the_seat_back() {
    let app = spawn_app().await;
    let (offering, variant, slug) = group_class(&app, "Refundable", 1).await;
    let tokens = students(&app, "refund", 2).await;
    let order: Value = app
        .draft(&tokens[0], &item(&offering, &variant, 1), None)
        .await
        .json()
        .await
        .unwrap();
    app.deliver(&completed("evt_seat_paid", &order)).await;
    assert_eq!(app.seats_left(&slug).await, 0);
    app.deliver(&refunded("evt_seat_refunded", &order)).await;
    assert_eq!(app.seats_left(&slug).await, 1);
    let resp = app
        .draft(&tokens[1], &item(&offering, &variant, 1), None)
        .await;
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn a_capacity_cannot_go_below_the_seats_taken_and_raising_it_frees_places() {
    let app = spawn_app().await;
    let (offering, variant, slug) = group_class(&app, "Resized", 3).await;
    let tokens = students(&app, "resize", 3).await;
    for token in &tokens[..2] {
        let resp = app.draft(token, &item(&offering, &variant, 1), None).await;
        assert_eq!(resp.status(), 201);
    }
    let tutor = app.token_of("tutor@test.com").await;
    let resize = |capacity: i64| {
        app.client
            .patch(app.url(&format!("/api/v1/offerings/{offering}")))
            .bearer_auth(&tutor)
            .json(
                &json!({"variants": [{"id": variant, "name": "Evening class",
                "price": 3000, "currency": "usd", "capacity": capacity}]}),
            )
            .send()
    };
    let body = problem(resize(1).await.unwrap(), 409).await;
    assert_eq!(body["code"], "CAPACITY_BELOW_TAKEN");
    assert!(body["detail"].as_str().unwrap().starts_with("2 seats"));
    assert_eq!(app.seats_left(&slug).await, 1, "nothing changed");
    assert_eq!(resize(2).await.unwrap().status(), 200);
    assert_eq!(app.seats_left(&slug).await, 0);
    problem(
        app.draft(&tokens[2], &item(&offering, &variant, 1), None)
            .await,
        409,
    )
    .await;
    assert_eq!(resize(4).await.unwrap().status(), 200);
    assert_eq!(app.seats_left(&slug).await, 2);
    let resp = app
        .draft(&tokens[2], &item(&offering, &variant, 1), None)
        .await;
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn variants_without_a_capacity_stay_unlimited_and_show_no_seats() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let order = app.draft_first(&token).await;
        ids.push(order["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        assert_eq!(app.order(&token, id).await["status"], "PENDING_PAYMENT");
    }
    let list: Value = app
        .get("/api/v1/offerings?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert!(list[0]["variants"][0].get("seatsLeft").is_none());
}
