//! The tutor's side: own sales only, students per variant with seats, and
//! totals per period.

use serde_json::{Value, json};

use crate::helpers::{TestApp, completed, problem, spawn_app};

/// A published GROUP offering of `tutor` with one variant of `capacity`
/// seats: (offering id, variant id).
async fn class_of(app: &TestApp, tutor: &str, title: &str, capacity: i64) -> (String, String) {
    let created = app
        .published(
            tutor,
            &json!({"type": "GROUP", "title": title, "variants": [
                {"name": "Saturday", "price": 2000, "currency": "usd", "capacity": capacity}
            ]}),
        )
        .await;
    let text = |v: &Value| v.as_str().unwrap().to_string();
    (text(&created["id"]), text(&created["variants"][0]["id"]))
}

/// `student` drafts one seat of the variant; paid when `event` is given.
async fn buy(app: &TestApp, student: &str, class: &(String, String), event: Option<&str>) -> Value {
    let body = json!({"offeringId": class.0, "variantId": class.1, "quantity": 1});
    let resp = app.draft(student, &body, None).await;
    assert_eq!(resp.status(), 201);
    let order: Value = resp.json().await.unwrap();
    if let Some(event) = event {
        app.deliver(&completed(event, &order)).await;
    }
    order
}

async fn json_of(app: &TestApp, path: &str, token: &str) -> Value {
    let resp = app.get_with_token(path, token).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_tutor_sees_the_sales_of_their_own_offerings_only() {
    let app = spawn_app().await;
    let tomas = app.token_of("tutor@test.com").await;
    let maria = app.token_of("maria.lopez@test.com").await;
    let mine = class_of(&app, &tomas, "Tomas's circle", 5).await;
    let hers = class_of(&app, &maria, "Maria's circle", 5).await;
    let student = app.token_of("student@test.com").await;
    buy(&app, &student, &mine, Some("evt_tutor_mine")).await;
    buy(&app, &student, &hers, Some("evt_tutor_hers")).await;
    let pending = app.token_of("student1@test.com").await;
    buy(&app, &pending, &mine, None).await;

    let sales = json_of(&app, "/api/v1/tutor/sales", &tomas).await;
    let sales = sales.as_array().unwrap();
    assert_eq!(
        sales.len(),
        1,
        "paid lines of his offerings, not hers, not pending"
    );
    assert_eq!(sales[0]["offeringId"], mine.0.as_str());
    assert_eq!(sales[0]["student"]["email"], "student@test.com");
    assert_eq!(sales[0]["student"]["name"], "Sam Student");
    assert_eq!(sales[0]["lineTotal"], 2000);
    let keys: Vec<&String> = sales[0]["student"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["email", "name"],
        "nothing of the student beyond name and email"
    );

    problem(
        app.get_with_token("/api/v1/tutor/sales", &student).await,
        403,
    )
    .await;
    let admin = app.token_of("admin@test.com").await;
    let unnamed = problem(app.get_with_token("/api/v1/tutor/sales", &admin).await, 400).await;
    assert_eq!(unnamed["field"], "tutorId");
    let me: Value = json_of(&app, "/api/v1/auth/me", &maria).await;
    let hers_seen = json_of(
        &app,
        &format!("/api/v1/tutor/sales?tutorId={}", me["id"].as_str().unwrap()),
        &admin,
    )
    .await;
    assert_eq!(hers_seen[0]["offeringId"], hers.0.as_str());
}

#[tokio::test]
async fn a_tutor_sees_who_is_enrolled_and_the_seats_taken_held_and_left() {
    let app = spawn_app().await;
    let tomas = app.token_of("tutor@test.com").await;
    let class = class_of(&app, &tomas, "Roster class", 3).await;
    for (i, email) in ["student2@test.com", "student3@test.com"]
        .iter()
        .enumerate()
    {
        let token = app.token_of(email).await;
        buy(&app, &token, &class, Some(&format!("evt_roster_{i}"))).await;
    }
    let waiting = app.token_of("student4@test.com").await;
    buy(&app, &waiting, &class, None).await;

    let roster = json_of(
        &app,
        &format!("/api/v1/tutor/offerings/{}/students", class.0),
        &tomas,
    )
    .await;
    let variant = &roster[0];
    assert_eq!(variant["capacity"], 3);
    assert_eq!(variant["seatsPaid"], 2);
    assert_eq!(variant["seatsHeld"], 1);
    assert_eq!(variant["seatsLeft"], 0);
    let emails: Vec<&str> = variant["students"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["student2@test.com", "student3@test.com"]);

    let maria = app.token_of("maria.lopez@test.com").await;
    let path = format!("/api/v1/tutor/offerings/{}/students", class.0);
    problem(app.get_with_token(&path, &maria).await, 403).await;
    problem(
        app.get_with_token("/api/v1/tutor/offerings/nope/students", &tomas)
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn totals_per_period_count_orders_amounts_and_refunds() {
    let app = spawn_app().await;
    let tomas = app.token_of("tutor@test.com").await;
    let class = class_of(&app, &tomas, "Totals class", 10).await;
    let mut paid = Vec::new();
    for (i, email) in ["student@test.com", "student5@test.com"].iter().enumerate() {
        let token = app.token_of(email).await;
        paid.push(buy(&app, &token, &class, Some(&format!("evt_totals_{i}"))).await);
    }
    let admin = app.token_of("admin@test.com").await;
    let refund = app
        .client
        .post(app.url(&format!(
            "/api/v1/admin/orders/{}/refund",
            paid[0]["id"].as_str().unwrap()
        )))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), 200);

    let month = json_of(&app, "/api/v1/tutor/totals", &tomas).await;
    assert_eq!(month.as_array().unwrap().len(), 1);
    assert_eq!(month[0]["orders"], 2);
    assert_eq!(month[0]["amount"], 4000);
    assert_eq!(month[0]["refunded"], 2000);
    assert_eq!(month[0]["currency"], "usd");
    assert_eq!(month[0]["period"].as_str().unwrap().len(), 7, "2026-12");
    let day = json_of(&app, "/api/v1/tutor/totals?period=day", &tomas).await;
    assert_eq!(day[0]["period"].as_str().unwrap().len(), 10);
    let week = json_of(&app, "/api/v1/tutor/totals?period=week", &tomas).await;
    assert!(week[0]["period"].as_str().unwrap().contains("-W"));
}
