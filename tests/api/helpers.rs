//! `spawn_app` and typed request helpers shared by every test module.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use wemaster::app::Application;
use wemaster::clock::Clock;
use wemaster::config::Config;

/// A running server on its own temporary database.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The separate `/metrics` address, when the configuration has one.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    /// The server's clock: `clock.advance(..)` moves expiry instead of sleeping.
    pub clock: Clock,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    // Dropped last: holds the database file.
    _dir: TempDir,
}

/// A configuration for tests: port 0, a fresh database file in `dir`, cheap
/// Argon2 parameters, demo data seeded; everything else as shipped.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.addr = "127.0.0.1:0".parse().unwrap();
    config.server.shutdown_grace_seconds = 2;
    config.database.path = dir.join("wemaster.db");
    config.auth.argon2_memory_kib = 64;
    config.auth.argon2_iterations = 1;
    config.auth.argon2_parallelism = 1;
    config.log.level = "warn".into();
    // Rate limits and budgets stay on as shipped: tests take the
    // production path through every layer.
    // Metrics on the main port: servers of parallel tests cannot share the
    // default metrics port. tests/api/ops.rs checks the default.
    config.metrics.addr = String::new();
    config
}

/// Starts the server with the test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server after `adjust` has changed the test configuration.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    adjust(&mut config);
    spawn_in(dir, config).await
}

/// Starts the server on an existing temporary folder and configuration.
pub async fn spawn_in(dir: TempDir, config: Config) -> TestApp {
    let app = Application::build(config.clone())
        .await
        .expect("application builds");
    let addr = app.addr();
    let metrics_addr = app.metrics_addr();
    let clock = app.state().clock.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        metrics_addr,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db_path: config.database.path.clone(),
        clock,
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Stops the server gracefully and waits until the database is closed.
    pub async fn stop(mut self) -> TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server result");
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self._dir, dir)
    }
}

/// Parses a problem body and checks its required members.
pub async fn problem(resp: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "unexpected status");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type was {content_type}"
    );
    let body: serde_json::Value = resp.json().await.expect("problem body");
    for key in ["type", "title", "status", "detail", "code"] {
        assert!(body.get(key).is_some(), "problem lacks {key}: {body}");
    }
    assert_eq!(body["status"], status);
    body
}

/// Path of the built `wemaster` binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wemaster")
}

/// The binary, to run in `dir` with the given args and env.
pub fn binary_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(binary());
    cmd.current_dir(dir).args(args);
    // The binary must not see a developer's own WEMASTER_* settings, nor
    // those a figment Jail of a test running beside it sets in this
    // process: it starts from an environment without any, fixed here.
    cmd.env_clear();
    for (k, v) in std::env::vars() {
        if !k.starts_with("WEMASTER_") {
            cmd.env(k, v);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the binary in `dir` with the given args and env, returning status,
/// stdout and stderr. Its stdin is empty.
pub fn run_binary(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    outcome(
        binary_command(dir, args, env)
            .output()
            .expect("binary runs"),
    )
}

/// [`run_binary`] with `input` on the binary's stdin (a pipe, as in a
/// script).
pub fn run_binary_with_input(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    input: &str,
) -> (i32, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = binary_command(dir, args, env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut stdin = child.stdin.take().expect("stdin pipe");
    stdin.write_all(input.as_bytes()).expect("input written");
    drop(stdin);
    outcome(child.wait_with_output().expect("binary ends"))
}

fn outcome(out: std::process::Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl TestApp {
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// POST `body` as JSON with `token`.
    pub async fn post_as(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// POST /orders/{id}/cancel as `token`.
    pub async fn cancel(&self, token: &str, id: &str) -> reqwest::Response {
        let path = format!("/api/v1/orders/{id}/cancel");
        self.post_as(token, &path, &json!({})).await
    }

    /// Creates `offering` as `tutor` and publishes it: the created offering.
    pub async fn published(&self, tutor: &str, offering: &Value) -> Value {
        let resp = self.post_as(tutor, "/api/v1/offerings", offering).await;
        assert_eq!(resp.status(), 201, "offering created");
        let created: Value = resp.json().await.unwrap();
        let id = created["id"].as_str().unwrap();
        let path = format!("/api/v1/offerings/{id}/publish");
        let resp = self.post_as(tutor, &path, &json!({})).await;
        assert_eq!(resp.status(), 200, "offering published");
        created
    }

    /// The `seatsLeft` the catalogue shows for an offering's first variant.
    pub async fn seats_left(&self, slug: &str) -> Value {
        let offering: Value = self
            .get(&format!("/api/v1/offerings/{slug}"))
            .await
            .json()
            .await
            .unwrap();
        offering["variants"][0]["seatsLeft"].clone()
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Logs in and returns the session body; panics unless it is 200.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let resp = self
            .post_json(
                "/api/v1/auth/login",
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(resp.status(), 200, "login of {email}");
        resp.json().await.unwrap()
    }

    /// An access token of a demo account.
    pub async fn token_of(&self, email: &str) -> String {
        let password = if email == "admin@test.com" {
            "admin123"
        } else {
            "password123"
        };
        self.login(email, password).await["accessToken"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `GET /api/v1/me/enrollments` as `token`'s holder.
    pub async fn enrollments(&self, token: &str) -> Value {
        let resp = self.get_with_token("/api/v1/me/enrollments", token).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// The newest mail of `kind` to `recipient`, once rendered, read
    /// through the admin outbox (the delivery worker renders it just after
    /// the request that queued it).
    pub async fn mail_to(&self, recipient: &str, kind: &str) -> Value {
        let admin = self.token_of("admin@test.com").await;
        for _ in 0..200 {
            let resp = self
                .get_with_token("/api/v1/admin/outbox?limit=100", &admin)
                .await;
            assert_eq!(resp.status(), 200);
            let mails: Value = resp.json().await.unwrap();
            let found = mails.as_array().unwrap().iter().find(|m| {
                m["recipient"] == recipient && m["kind"] == kind && m["body"].is_string()
            });
            if let Some(mail) = found {
                return mail.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("no {kind} mail to {recipient} in the outbox");
    }
}

/// The token of the reset link in a password-reset mail.
pub fn reset_token_from(mail: &Value) -> String {
    let body = mail["body"].as_str().unwrap();
    let at = body.find("token=").expect("link with token") + "token=".len();
    body[at..].split_whitespace().next().unwrap().to_string()
}

/// The webhook secret of the test configuration (the built-in default).
pub fn webhook_secret() -> String {
    wemaster::config::Config::default()
        .payments
        .webhook_secret
        .expose()
        .to_string()
}

impl TestApp {
    /// POST /orders/draft as `token`, with an optional Idempotency-Key.
    pub async fn draft(&self, token: &str, body: &Value, key: Option<&str>) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/api/v1/orders/draft"))
            .bearer_auth(token)
            .json(body);
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        req.send().await.expect("request")
    }

    /// Drafts an order of the first listed offering and returns it.
    pub async fn draft_first(&self, token: &str) -> Value {
        let resp = self.draft_first_response(token).await;
        assert_eq!(resp.status(), 201);
        resp.json().await.unwrap()
    }

    /// Drafts one of the first offering's first variant: the answer as it is.
    pub async fn draft_first_response(&self, token: &str) -> reqwest::Response {
        let offerings: Value = self
            .get("/api/v1/offerings?limit=1")
            .await
            .json()
            .await
            .unwrap();
        let o = &offerings[0];
        self.draft(
            token,
            &json!({"offeringId": o["id"], "variantId": o["variants"][0]["id"], "quantity": 1}),
            None,
        )
        .await
    }

    /// Delivers `event` to the webhook signed with `secret` at time `t`.
    pub async fn deliver_at(&self, event: &Value, secret: &str, t: i64) -> reqwest::Response {
        let body = event.to_string();
        let signature = wemaster::payments::webhook::sign(secret, body.as_bytes(), t);
        self.client
            .post(self.url("/api/v1/payments/webhooks/stripe"))
            .header("content-type", "application/json")
            .header("Stripe-Signature", signature)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Delivers `event`, correctly signed now.
    pub async fn deliver(&self, event: &Value) -> Value {
        let resp = self.deliver_at(event, &webhook_secret(), now()).await;
        assert_eq!(resp.status(), 200, "webhook answered {}", resp.status());
        resp.json().await.unwrap()
    }

    /// Number of rows in `table`.
    pub fn count(&self, table: &str) -> i64 {
        self.value(&format!("SELECT count(*) FROM {table}"))
    }

    /// The one value `sql` selects, read from the database file.
    pub fn value<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        rusqlite::Connection::open(&self.db_path)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    pub async fn order(&self, token: &str, id: &str) -> Value {
        let resp = self
            .get_with_token(&format!("/api/v1/orders/{id}"), token)
            .await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    pub async fn reconciliation(&self) -> Value {
        let admin = self.token_of("admin@test.com").await;
        let resp = self
            .get_with_token("/api/v1/admin/reconciliation", &admin)
            .await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A Stripe event of `kind` about an object.
pub fn event(id: &str, kind: &str, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "created": now(), "data": {"object": object}})
}

/// `checkout.session.completed` (paid) for an order.
pub fn completed(event_id: &str, order: &Value) -> Value {
    event(
        event_id,
        "checkout.session.completed",
        json!({
            "id": format!("cs_test_{}", order["id"].as_str().unwrap()),
            "object": "checkout.session",
            "amount_total": order["amount"],
            "currency": order["currency"],
            "payment_status": "paid",
            "payment_intent": format!("pi_{}", order["id"].as_str().unwrap()),
            "metadata": {"orderId": order["id"]},
        }),
    )
}

/// `charge.refunded` (full) for an order paid through `completed`.
pub fn refunded(event_id: &str, order: &Value) -> Value {
    let mut refund = refund_by_intent(event_id, order, order["amount"].as_i64().unwrap());
    refund["data"]["object"]["metadata"] = json!({"orderId": order["id"]});
    refund
}

/// A `charge.refunded` of `refunded` minor units that names only its
/// payment intent, as Stripe's charge objects do (no order metadata).
pub fn refund_by_intent(event_id: &str, order: &Value, refunded: i64) -> Value {
    event(
        event_id,
        "charge.refunded",
        json!({
            "id": format!("ch_{}", order["id"].as_str().unwrap()),
            "object": "charge",
            "amount": order["amount"],
            "amount_refunded": refunded,
            "currency": order["currency"],
            "refunded": refunded >= order["amount"].as_i64().unwrap(),
            "payment_intent": format!("pi_{}", order["id"].as_str().unwrap()),
        }),
    )
}
