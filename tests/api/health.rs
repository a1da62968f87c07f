//! Health probe shapes and statuses.

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_reports_up_with_every_service() {
    let app = spawn_app().await;
    for path in ["/healthz", "/api/v1/healthz", "/api/v1/health"] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "up", "{path}: {body}");
        // No secret of the configuration shows.
        assert!(!body.to_string().contains(&crate::helpers::webhook_secret()));
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(body["uptimeSeconds"].is_u64());
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        let db = &body["services"]["database"];
        assert_eq!(db["status"], "up");
        assert!(db["responseTime"].as_f64().unwrap() >= 0.0);
        assert!(db["message"].is_string());
        let cache = &body["services"]["cache"];
        assert_eq!(cache["status"], "up");
        assert!(cache["entries"].is_u64());
        let rate = cache["hitRate"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&rate));
    }
}

#[tokio::test]
async fn healthz_is_degraded_past_the_configured_threshold() {
    let app = spawn_app_with(|c| c.health.database_degraded_ms = 0).await;
    let resp = app.get("/healthz").await;
    // Any real round-trip takes more than 0 ms: degraded, but still 200.
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["services"]["database"]["status"], "degraded");
    assert_eq!(body["status"], "degraded");
}

#[tokio::test]
async fn readyz_and_livez_answer_200() {
    let app = spawn_app().await;
    for path in ["/readyz", "/api/v1/readyz"] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["ready"], true);
        assert_eq!(body["schemaVersion"], wemaster::db::schema_version() as u64);
    }
    for path in ["/livez", "/api/v1/livez"] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "up");
    }
}

#[tokio::test]
async fn readyz_is_503_when_the_schema_is_not_ours() {
    let app = spawn_app().await;
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["schemaVersion"], 999);
}
