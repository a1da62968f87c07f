//! Swagger UI, the served spec, and the committed spec; the examples
//! Swagger UI offers work on the demo data.

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn swagger_ui_is_served_at_docs() {
    let app = spawn_app().await;
    let resp = app.get("/docs").await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("swagger"), "Swagger UI page");
    assert!(html.contains("WeMaster API"), "embeds the spec");
    assert!(
        html.contains("<title>WeMaster API (Swagger UI)</title>"),
        "the tab names the API"
    );
    // Authorize drops a pasted "Bearer " before requests leave the page.
    assert!(
        html.contains("requestInterceptor") && html.contains(r"/^Bearer\s+(Bearer\s+)+/i"),
        "the page strips a doubled scheme"
    );
}

#[tokio::test]
async fn sections_come_in_reading_order_and_path_parameters_are_filled() {
    let app = spawn_app().await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let tags: Vec<&str> = spec["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            "Auth",
            "Catalogue",
            "Orders",
            "Payments",
            "Tutors",
            "Users",
            "Health",
            "Admin"
        ]
    );
    let mut filled = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/offerings/") {
            continue;
        }
        for op in item.as_object().unwrap().values() {
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] != "path" {
                    continue;
                }
                let example = parameter["example"].as_str().expect("an example");
                let concrete = path.replace(
                    &format!("{{{}}}", parameter["name"].as_str().unwrap()),
                    example,
                );
                if parameter["name"] == "slug" {
                    // "Try it out" as it starts: the demo offering is there.
                    assert_eq!(app.get(&format!("/api/v1{concrete}")).await.status(), 200);
                } else {
                    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
                    let found: i64 = conn
                        .query_row(
                            "SELECT count(*) FROM offerings WHERE id = ?1",
                            [example],
                            |r| r.get(0),
                        )
                        .unwrap();
                    assert_eq!(found, 1, "{path}: {example} is a demo offering");
                }
                filled += 1;
            }
        }
    }
    assert!(filled >= 4, "{filled} path parameters filled");
}

#[tokio::test]
async fn root_redirects_to_docs() {
    let app = spawn_app().await;
    let resp = app.get("/").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/docs");
}

/// The served spec must equal the committed files under openapi/. Set
/// `UPDATE_OPENAPI=1` to rewrite them.
#[tokio::test]
async fn served_spec_matches_the_committed_spec() {
    let app = spawn_app().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi");
    for (path, file) in [
        ("/openapi.json", "openapi.json"),
        ("/openapi.yaml", "openapi.yaml"),
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let served = resp.text().await.unwrap();
        let served = if file.ends_with(".json") {
            format!("{served}\n")
        } else {
            served
        };
        let committed_path = root.join(file);
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(&committed_path, &served).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
        assert!(
            served == committed,
            "openapi/{file} is stale; regenerate with `UPDATE_OPENAPI=1 cargo test --test api docs::`"
        );
    }
}

#[tokio::test]
async fn every_operation_is_documented() {
    let spec: serde_json::Value = serde_json::from_str(&wemaster::api::service().spec()).unwrap();
    let mut ids = std::collections::HashSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let where_ = format!("{method} {path}");
            assert!(op["summary"].is_string(), "{where_} lacks a summary");
            assert!(
                op["description"].is_string(),
                "{where_} lacks a description"
            );
            assert!(op["tags"][0].is_string(), "{where_} lacks a tag");
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(!id.is_empty(), "{where_} lacks an operationId");
            assert!(ids.insert(id), "{where_} reuses an operationId");
        }
    }
}

#[test]
fn every_error_response_has_an_example_of_its_own_status() {
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("openapi/openapi.json").unwrap()).unwrap();
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let Some(media) = response["content"].get("application/problem+json") else {
                    continue;
                };
                let example = &media["example"];
                assert_eq!(
                    example["status"].to_string(),
                    *status,
                    "{method} {path} {status}: {example}"
                );
                assert!(example["code"].is_string(), "{method} {path} {status}");
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} error responses");
}

#[tokio::test]
async fn unknown_route_is_a_problem_body() {
    let app = spawn_app().await;
    let body = crate::helpers::problem(app.get("/api/v1/nope").await, 404).await;
    assert_eq!(body["code"], "NOT_FOUND");
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let app = spawn_app().await;
    let resp = app
        .client
        .delete(app.url("/api/v1/offerings"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["allow"], "GET, POST");
    let body = crate::helpers::problem(resp, 405).await;
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
}

/// The example Swagger UI puts in the request body of `method path`: its
/// schema's own example or, for a choice (`anyOf`), the first choice's.
fn request_example(spec: &Value, path: &str, method: &str) -> Option<Value> {
    let content = spec["paths"][path][method]["requestBody"]["content"].as_object()?;
    let mut schema = &content.values().next()?["schema"];
    loop {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/components/schemas/");
            schema = &spec["components"]["schemas"][name];
        } else if let Some(example) = schema.get("example") {
            return Some(example.clone());
        } else if let Some(first) = schema["anyOf"].get(0).or(schema["oneOf"].get(0)) {
            schema = first;
        } else {
            return None;
        }
    }
}

/// Every string in `value` that is a UUID.
fn uuids_in(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(s) if uuid::Uuid::parse_str(s).is_ok() && s.len() == 36 => {
            found.push(s.clone())
        }
        Value::Array(items) => items.iter().for_each(|v| uuids_in(v, found)),
        Value::Object(map) => map.values().for_each(|v| uuids_in(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_draft_example_orders_a_demo_offering() {
    let app = spawn_app().await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let example = request_example(&spec, "/orders/draft", "post").expect("a draft example");

    let student = app.token_of("student@test.com").await;
    let resp = app.draft(&student, &example, None).await;

    assert_eq!(resp.status(), 201, "{example}");
    let order: Value = resp.json().await.unwrap();
    assert_eq!(
        order["items"][0]["offeringId"],
        example["items"][0]["offeringId"]
    );
}

#[tokio::test]
async fn request_examples_name_only_ids_of_the_demo_data() {
    let app = spawn_app().await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let demo: HashSet<String> = {
        let conn = rusqlite::Connection::open(&app.db_path).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT id FROM users UNION SELECT id FROM offerings UNION SELECT id FROM variants",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            // Only Stripe can send a webhook that passes its signature
            // check; its example shows the shape of Stripe's event.
            if op["operationId"] == "stripeWebhook" {
                continue;
            }
            let Some(example) = request_example(&spec, path, method) else {
                continue;
            };
            let mut ids = Vec::new();
            uuids_in(&example, &mut ids);
            for id in ids {
                assert!(
                    demo.contains(&id),
                    "{method} {path}: the example names {id}, which the demo data lacks"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 2,
        "the draft example names an offering and a variant"
    );
}

#[tokio::test]
async fn the_authorize_dialog_says_how_to_get_a_token() {
    let app = spawn_app().await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let text = spec["components"]["securitySchemes"]["bearerAuth"]["description"]
        .as_str()
        .unwrap();
    for needed in ["POST /api/v1/auth/login", "student@test.com", "accessToken"] {
        assert!(text.contains(needed), "lacks {needed}: {text}");
    }
    assert!(!text.contains("handler"), "written for developers: {text}");
}

#[tokio::test]
async fn the_docs_page_has_a_favicon() {
    let app = spawn_app().await;
    let resp = app.get("/favicon.ico").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/svg+xml");
    let body = resp.text().await.unwrap();
    assert!(body.starts_with("<svg"), "{body}");
}
