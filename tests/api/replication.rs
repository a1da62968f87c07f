//! `/healthz` and Litestream: a replication section only when
//! `health.litestream_socket` is set, read from a stand-in for Litestream's
//! control socket; the database's checkpoint settings under Litestream.

use std::path::Path;
use std::sync::{Arc, Mutex};

use poem::listener::{Listener, UnixListener};
use poem::web::{Data, Json};
use poem::{EndpointExt, Route, Server, get, handler};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{spawn_app, spawn_app_with};

/// Answers `GET /list` on a Unix socket the way `litestream replicate`
/// answers on its control socket, with whatever `databases` holds.
struct FakeLitestream {
    databases: Arc<Mutex<Value>>,
    _dir: tempfile::TempDir,
}

impl FakeLitestream {
    async fn start() -> (Self, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("litestream.sock");
        let databases = Arc::new(Mutex::new(json!([])));
        let acceptor = UnixListener::bind(&socket).into_acceptor().await.unwrap();
        let app = Route::new().at("/list", get(list)).data(databases.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        (
            FakeLitestream {
                databases,
                _dir: dir,
            },
            socket,
        )
    }

    /// Litestream replicates `path`, last uploaded `seconds_ago`.
    fn replicating(&self, path: &Path, seconds_ago: i64) {
        let at = OffsetDateTime::now_utc() - time::Duration::seconds(seconds_ago);
        *self.databases.lock().unwrap() = json!([{
            "path": path,
            "status": "replicating",
            "last_sync_at": at.format(&Rfc3339).unwrap(),
        }]);
    }
}

#[handler]
fn list(databases: Data<&Arc<Mutex<Value>>>) -> Json<Value> {
    Json(json!({"databases": databases.lock().unwrap().clone()}))
}

async fn healthz(app: &crate::helpers::TestApp) -> Value {
    let resp = app.get("/healthz").await;
    assert_eq!(resp.status(), 200, "replication never makes /healthz 503");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn healthz_has_no_replication_section_without_a_litestream_socket() {
    let app = spawn_app().await;
    let body = healthz(&app).await;
    assert!(body["services"].get("replication").is_none(), "{body}");
    assert_eq!(body["status"], "up");
}

#[tokio::test]
async fn healthz_reports_the_age_of_the_last_upload_litestream_gives() {
    let (litestream, socket) = FakeLitestream::start().await;
    let app = spawn_app_with(|c| c.health.litestream_socket = socket).await;
    litestream.replicating(&app.db_path, 2);
    let body = healthz(&app).await;
    let replication = &body["services"]["replication"];
    assert_eq!(replication["status"], "up", "{body}");
    assert_eq!(replication["state"], "replicating");
    assert_eq!(replication["message"], "ok");
    let lag = replication["lagSeconds"].as_f64().unwrap();
    assert!((2.0..10.0).contains(&lag), "{lag}");
    assert!(replication["lastSyncAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["status"], "up");
}

#[tokio::test]
async fn healthz_is_degraded_when_the_last_upload_is_older_than_the_threshold() {
    let (litestream, socket) = FakeLitestream::start().await;
    let app = spawn_app_with(|c| {
        c.health.litestream_socket = socket;
        c.health.replication_degraded_seconds = 30;
    })
    .await;
    litestream.replicating(&app.db_path, 120);
    let body = healthz(&app).await;
    let replication = &body["services"]["replication"];
    assert_eq!(replication["status"], "degraded", "{body}");
    assert!(replication["lagSeconds"].as_f64().unwrap() >= 120.0);
    assert_eq!(body["status"], "degraded");
}

#[tokio::test]
async fn healthz_says_unknown_when_litestream_does_not_replicate_this_database() {
    let (litestream, socket) = FakeLitestream::start().await;
    let app = spawn_app_with(|c| c.health.litestream_socket = socket).await;
    litestream.replicating(Path::new("/elsewhere/other.db"), 1);
    let body = healthz(&app).await;
    let replication = &body["services"]["replication"];
    assert_eq!(replication["state"], "unknown", "{body}");
    assert_eq!(replication["status"], "degraded");
    assert!(
        replication["message"]
            .as_str()
            .unwrap()
            .contains("does not replicate")
    );
    assert!(replication.get("lagSeconds").is_none());
}

#[tokio::test]
async fn healthz_is_degraded_not_down_when_litestream_cannot_be_asked() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-litestream.sock");
    let app = spawn_app_with(|c| c.health.litestream_socket = socket).await;
    let body = healthz(&app).await;
    let replication = &body["services"]["replication"];
    assert_eq!(replication["state"], "unknown", "{body}");
    assert_eq!(replication["status"], "degraded");
    assert!(
        replication["message"]
            .as_str()
            .unwrap()
            .contains("cannot ask Litestream")
    );
    assert_eq!(body["services"]["database"]["status"], "up");
}
