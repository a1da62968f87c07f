//! Operations: metrics, request ids, secrets kept out of logs, online backup
//! and restore.

use std::collections::HashSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    binary_command, completed, now, problem, run_binary, spawn_app, spawn_app_with, webhook_secret,
};

/// Sum of a metric's samples whose labels contain every `label` given.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{' | b' '))
        })
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_exposition_parses_and_counters_move_with_traffic() {
    let app = spawn_app().await;
    let first = app.get("/metrics").await;
    assert_eq!(first.status(), 200);
    assert!(
        first.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let before = first.text().await.unwrap();
    for line in before
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample line: {line}");
    }
    let route = "route=\"/api/v1/offerings/{slug}\"";
    let requests_before = metric(&before, "wemaster_http_requests_total", &[route]);
    for _ in 0..3 {
        app.get("/api/v1/offerings/python-for-absolute-beginners")
            .await;
    }
    app.get("/api/v1/offerings/no-such-slug").await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    app.deliver(&completed("evt_metrics", &order)).await;
    let after = app.get("/metrics").await.text().await.unwrap();
    assert!(metric(&after, "wemaster_http_requests_total", &[route]) >= requests_before + 4.0);
    assert!(
        metric(
            &after,
            "wemaster_http_requests_total",
            &[route, "status=\"4xx\""]
        ) >= 1.0
    );
    assert!(
        metric(
            &after,
            "wemaster_http_request_duration_seconds_count",
            &[route]
        ) >= 4.0
    );
    assert!(metric(&after, "wemaster_cache_lookups_total", &["result=\"hit\""]) >= 2.0);
    assert!(
        metric(
            &after,
            "wemaster_webhook_events_total",
            &["outcome=\"APPLIED\""]
        ) >= 1.0
    );
    assert!(metric(&after, "wemaster_order_transitions_total", &["to=\"PAID\""]) >= 1.0);
    assert!(
        metric(
            &after,
            "wemaster_db_statement_seconds_count",
            &["pool=\"write\""]
        ) >= 1.0
    );
    assert!(metric(&after, "wemaster_password_hash_seconds_count", &[]) >= 1.0);
    assert!(after.contains("wemaster_build_info{version=\""));
    // Raw ids never become labels.
    assert!(!after.contains("python-for-absolute-beginners"));
}

/// The values of `label` across the samples of every metric named `wemaster_*`.
fn label_values(text: &str, label: &str) -> HashSet<String> {
    let key = format!("{label}=\"");
    text.lines()
        .filter(|l| l.starts_with("wemaster_"))
        .filter_map(|l| {
            let start = l.find(&key)? + key.len();
            let len = l[start..].find('"')?;
            Some(l[start..start + len].to_string())
        })
        .collect()
}

#[tokio::test]
async fn made_up_methods_paths_and_event_types_add_no_metric_series() {
    let app = spawn_app().await;
    for i in 0..1_000 {
        let method = reqwest::Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
        let resp = app
            .client
            .request(method, app.url("/livez"))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());
        app.get(&format!("/nowhere/{i}")).await;
    }
    for i in 0..50 {
        let event = crate::helpers::event(
            &format!("evt_made_up_{i}"),
            &format!("x.{i}"),
            json!({ "id": "x" }),
        );
        app.deliver(&event).await;
    }
    // The recorder is the process's, shared with the tests running beside
    // this one: every label value must come from a bounded set, whoever
    // sent the request.
    let text = app.get("/metrics").await.text().await.unwrap();
    let methods = label_values(&text, "method");
    let known = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER",
    ];
    assert!(methods.contains("OTHER"), "{methods:?}");
    assert!(
        methods.iter().all(|m| known.contains(&m.as_str())),
        "{methods:?}"
    );
    let routes = label_values(&text, "route");
    assert!(routes.contains("(unmatched)"), "{routes:?}");
    assert!(
        routes.iter().all(|r| !r.starts_with("/nowhere")),
        "{routes:?}"
    );
    let types = label_values(&text, "type");
    assert!(types.contains("other"), "{types:?}");
    assert!(types.iter().all(|t| !t.starts_with("x.")), "{types:?}");
    let series = text.lines().filter(|l| l.starts_with("wemaster_")).count();
    assert!(series < 5_000, "{series} series");
}

#[tokio::test]
async fn metrics_listen_on_loopback_apart_from_the_api_by_default() {
    assert_eq!(
        wemaster::config::Config::default().metrics.addr,
        "127.0.0.1:9102"
    );
    // The default, on a free port so parallel tests do not collide.
    let app = spawn_app_with(|c| c.metrics.addr = "127.0.0.1:0".into()).await;
    let body = problem(app.get("/metrics").await, 404).await;
    assert_eq!(body["code"], "NOT_FOUND");
    let metrics_addr = app.metrics_addr.expect("a metrics listener");
    assert!(metrics_addr.ip().is_loopback());
    let resp = app
        .client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("# TYPE"));
}

#[test]
fn a_fresh_server_shows_its_refusal_counters_at_zero_and_its_process_figures() {
    // A process of its own: the recorder of this test binary is shared.
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, metrics_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut child = binary_command(
        dir.path(),
        &["serve"],
        &[
            ("WEMASTER_SERVER__ADDR", &format!("127.0.0.1:{port}")),
            (
                "WEMASTER_METRICS__ADDR",
                &format!("127.0.0.1:{metrics_port}"),
            ),
            ("WEMASTER_DEMO__SEED_ON_EMPTY", "false"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let scraped =
            std::net::TcpStream::connect(("127.0.0.1", metrics_port)).and_then(|mut stream| {
                use std::io::Write;
                stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")?;
                let mut text = String::new();
                stream.read_to_string(&mut text)?;
                Ok(text)
            });
        match scraped {
            Ok(text) if text.starts_with("HTTP/1.0 200") => break text,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => {
                let _ = child.kill();
                panic!("no metrics: {other:?}");
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    for series in [
        "wemaster_shed_total{lane=\"cheap\"} 0",
        "wemaster_shed_total{lane=\"hashing\"} 0",
        "wemaster_rate_limited_total{class=\"failures\"} 0",
        "wemaster_rate_limited_total{class=\"signups\"} 0",
        "wemaster_login_lockouts_total 0",
    ] {
        assert!(text.contains(series), "lacks {series}: {text}");
    }
    assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
    ] {
        assert!(metric(&text, name, &[]) > 0.0, "lacks {name}: {text}");
    }
}

#[tokio::test]
async fn a_taken_metrics_address_stops_start_up_naming_the_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(dir.path());
    config.metrics.addr = taken.local_addr().unwrap().to_string();
    let err = wemaster::app::Application::build(config)
        .await
        .err()
        .expect("start-up refused");
    let message = format!("{err:#}");
    assert!(message.contains("metrics.addr"), "{message}");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/api/v1/offerings"))
        .header("x-request-id", "trace-abc_123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-abc_123");
    let resp = app
        .client
        .get(app.url("/api/v1/nope"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let generated = resp.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "a fresh UUID: {generated}");
}

#[tokio::test]
async fn health_reports_system_figures() {
    let app = spawn_app().await;
    let body: Value = app.get("/healthz").await.json().await.unwrap();
    assert!(body["system"]["rssBytes"].as_u64().unwrap() > 1_000_000);
    assert!(body["system"]["openConnections"].as_u64().unwrap() >= 1);
}

/// Signs up, fails a login, refreshes, reads `/auth/me` and delivers a
/// webhook against the server at `base`; returns every secret that passed.
async fn handle_secrets(base: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/readyz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let password = "correct-horse-7-battery";
    let post = |path: &str, body: Value| {
        let request = client.post(format!("{base}{path}")).json(&body);
        async move { request.send().await.unwrap() }
    };
    let session: Value = post(
        "/api/v1/auth/register",
        json!({"email": "logcheck@test.com", "password": password}),
    )
    .await
    .json()
    .await
    .unwrap();
    let failed = post(
        "/api/v1/auth/login",
        json!({"email": "logcheck@test.com", "password": "wrong-password-xyz"}),
    )
    .await;
    assert_eq!(failed.status(), 401);
    let refreshed: Value = post(
        "/api/v1/auth/refresh",
        json!({"refreshToken": session["refreshToken"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let access = refreshed["accessToken"].as_str().unwrap().to_string();
    client
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let marker = "payload-marker-5c1f";
    let order = json!({"id": "nope", "amount": 1, "currency": "usd"});
    let mut event = completed("evt_log_check", &order);
    event["data"]["object"]["customer_details"] = json!({"email": marker});
    let body = event.to_string();
    let signature = wemaster::payments::webhook::sign(&webhook_secret(), body.as_bytes(), now());
    let resp = client
        .post(format!("{base}/api/v1/payments/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", &signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    vec![
        password.to_string(),
        "wrong-password-xyz".to_string(),
        session["accessToken"].as_str().unwrap().to_string(),
        session["refreshToken"].as_str().unwrap().to_string(),
        refreshed["refreshToken"].as_str().unwrap().to_string(),
        access,
        marker.to_string(),
        signature.split("v1=").nth(1).unwrap().to_string(),
        webhook_secret(),
    ]
}

#[test]
fn secrets_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = binary_command(dir.path(), &[], &[])
        .env("WEMASTER_SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("WEMASTER_METRICS__ADDR", "127.0.0.1:0")
        .env("WEMASTER_LOG__LEVEL", "debug")
        .env("WEMASTER_LOG__FORMAT", "json")
        .env("WEMASTER_AUTH__ARGON2_MEMORY_KIB", "64")
        .env("WEMASTER_AUTH__ARGON2_ITERATIONS", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let secrets = runtime.block_on(handle_secrets(&base));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    child.wait().unwrap();
    assert!(logs.contains("\"request_id\""), "request lines are logged");
    assert!(logs.contains("/api/v1/auth/refresh"));
    // The request line names the caller: its address, and the account of
    // a verified token (here the one /auth/me was asked with).
    let me = logs
        .lines()
        .find(|l| l.contains("\"path\":\"/api/v1/auth/me\""))
        .expect("the /auth/me request is logged");
    assert!(me.contains("\"client\":\"127.0.0.1\""), "{me}");
    assert!(me.contains("\"user\":\""), "{me}");
    for secret in secrets {
        assert!(
            !logs.contains(&secret),
            "a secret reached the logs: {secret}"
        );
    }
}

#[tokio::test]
async fn a_backup_under_concurrent_writes_restores_every_acknowledged_order() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let offerings: Value = app
        .get("/api/v1/offerings?limit=1")
        .await
        .json()
        .await
        .unwrap();
    let body = json!({"offeringId": offerings[0]["id"]});

    // A writer drafts orders the whole time.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let client = app.client.clone();
    let url = app.url("/api/v1/orders/draft");
    let token_w = token.clone();
    let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = acks.clone();
    let writer = tokio::spawn(async move {
        let mut acknowledged: Vec<(Instant, String)> = Vec::new();
        loop {
            if stop_rx.try_recv().is_ok() {
                return acknowledged;
            }
            let resp = client
                .post(&url)
                .bearer_auth(&token_w)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
            let order: Value = resp.json().await.unwrap();
            acknowledged.push((Instant::now(), order["id"].as_str().unwrap().to_string()));
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // Some writes before the backup, some during, and some after it.
    let until_acks = |n: usize| {
        let acks = acks.clone();
        async move {
            while acks.load(std::sync::atomic::Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    until_acks(5).await;
    let backup_started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let backup_path = dir.path().join("snapshot.db");
    let (source, target) = (app.db_path.clone(), backup_path.clone());
    let report =
        tokio::task::spawn_blocking(move || wemaster::ops::backup::backup(&source, &target))
            .await
            .unwrap()
            .expect("backup under load");
    assert!(report.bytes > 0);
    let so_far = acks.load(std::sync::atomic::Ordering::Relaxed);
    until_acks(so_far + 5).await;
    let _ = stop_tx.send(());
    let acknowledged = writer.await.unwrap();
    let before: Vec<&String> = acknowledged
        .iter()
        .filter(|(at, _)| *at < backup_started)
        .map(|(_, id)| id)
        .collect();
    assert!(before.len() >= 5, "the writer was busy: {}", before.len());
    assert!(
        acknowledged.len() > before.len(),
        "writes went on during the backup"
    );

    // Restore into a fresh database with the real binary.
    let restored = dir.path().join("restored/wemaster.db");
    let (status, stdout, stderr) = run_binary(
        dir.path(),
        &["restore", backup_path.to_str().unwrap()],
        &[("WEMASTER_DATABASE__PATH", restored.to_str().unwrap())],
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(stdout.contains("integrity check ok"), "{stdout}");
    assert!(stdout.contains("no database to replace"), "{stdout}");
    let conn = rusqlite::Connection::open(&restored).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn.prepare("SELECT id FROM orders").unwrap();
    let ids: HashSet<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in before {
        assert!(
            ids.contains(id),
            "acknowledged order {id} missing from the backup"
        );
    }
}

#[tokio::test]
async fn restore_refuses_a_live_database_and_a_broken_backup() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("ok.db");
    let (status, stdout, stderr) = run_binary(
        dir.path(),
        &["backup", snapshot.to_str().unwrap()],
        &[("WEMASTER_DATABASE__PATH", app.db_path.to_str().unwrap())],
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(stdout.contains("backed up"), "{stdout}");
    // The server holds the database: restore must refuse.
    let (status, _, stderr) = run_binary(
        dir.path(),
        &["restore", snapshot.to_str().unwrap()],
        &[("WEMASTER_DATABASE__PATH", app.db_path.to_str().unwrap())],
    );
    assert_eq!(status, 1);
    assert!(stderr.contains("running"), "{stderr}");
    // A file that is not a sound database is refused before anything is touched.
    let broken = dir.path().join("broken.db");
    std::fs::write(&broken, b"definitely not sqlite").unwrap();
    let target = dir.path().join("fresh.db");
    let (status, _, stderr) = run_binary(
        dir.path(),
        &["restore", broken.to_str().unwrap()],
        &[("WEMASTER_DATABASE__PATH", target.to_str().unwrap())],
    );
    assert_eq!(status, 1, "{stderr}");
    assert!(!target.exists());
    // Backing up onto an existing file is refused too.
    let (status, _, _) = run_binary(
        dir.path(),
        &["backup", snapshot.to_str().unwrap()],
        &[("WEMASTER_DATABASE__PATH", app.db_path.to_str().unwrap())],
    );
    assert_eq!(status, 1);
}

#[test]
fn backup_into_a_folder_that_does_not_exist_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("WEMASTER_DATABASE__PATH", "live.db")];
    let (status, _, stderr) = run_binary(dir.path(), &["migrate"], &env);
    assert_eq!(status, 0, "{stderr}");
    let missing = dir.path().join("no/such");
    let target = missing.join("x.db");
    let (status, _, stderr) = run_binary(dir.path(), &["backup", target.to_str().unwrap()], &env);
    assert_eq!(status, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "folder {} does not exist; create it first",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(!dir.path().join("no").exists(), "a folder was created");
    // Once the folder is there, the same command works.
    std::fs::create_dir_all(&missing).unwrap();
    let (status, _, stderr) = run_binary(dir.path(), &["backup", target.to_str().unwrap()], &env);
    assert_eq!(status, 0, "{stderr}");
    assert!(target.exists());
}

/// A SQLite file whose `user_version` is `version`, with one table.
fn sqlite_file_with_version(path: &std::path::Path, version: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE notes(x); PRAGMA user_version = {version};"
    ))
    .unwrap();
}

#[test]
fn restore_says_what_is_wrong_with_what_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("data/wemaster.db");
    let env = [("WEMASTER_DATABASE__PATH", target.to_str().unwrap())];
    let restore = |source: &std::path::Path| {
        let (status, _, stderr) =
            run_binary(dir.path(), &["restore", source.to_str().unwrap()], &env);
        assert_eq!(status, 1, "{stderr}");
        assert!(!target.exists(), "restore touched the database: {stderr}");
        stderr
    };

    // Some other program's SQLite database.
    let foreign = dir.path().join("foreign.db");
    sqlite_file_with_version(&foreign, 0);
    let stderr = restore(&foreign);
    assert!(stderr.contains("not a wemaster backup"), "{stderr}");

    // A backup from a later release.
    let future = dir.path().join("future.db");
    sqlite_file_with_version(&future, 99);
    let stderr = restore(&future);
    assert!(stderr.contains("made by a newer wemaster"), "{stderr}");
    let known = wemaster::db::schema_version();
    assert!(
        stderr.contains(&format!("knows versions 1 to {known}")),
        "{stderr}"
    );

    // A folder, not a file.
    let folder = dir.path().join("backups");
    std::fs::create_dir(&folder).unwrap();
    let stderr = restore(&folder);
    assert!(stderr.contains("is a folder"), "{stderr}");
    assert!(!stderr.contains("disk I/O error"), "{stderr}");
}

#[test]
fn restore_keeps_the_database_it_replaces_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live/wemaster.db");
    let other = dir.path().join("other/wemaster.db");
    for db in [&live, &other] {
        let (status, _, stderr) = run_binary(
            dir.path(),
            &["migrate"],
            &[("WEMASTER_DATABASE__PATH", db.to_str().unwrap())],
        );
        assert_eq!(status, 0, "{stderr}");
    }
    // Something only the live database holds.
    rusqlite::Connection::open(&live)
        .unwrap()
        .execute_batch("CREATE TABLE only_in_live(x); INSERT INTO only_in_live VALUES (42);")
        .unwrap();
    let env = [("WEMASTER_DATABASE__PATH", live.to_str().unwrap())];
    let (status, stdout, stderr) =
        run_binary(dir.path(), &["restore", other.to_str().unwrap()], &env);
    assert_eq!(status, 0, "{stderr}");

    // The output names the kept copy; it sits beside the database, named with the time.
    let kept = stdout
        .lines()
        .find_map(|l| l.split(" is kept as ").nth(1))
        .and_then(|rest| rest.split(';').next())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no kept file named: {stdout}"));
    assert_eq!(kept.parent(), live.parent(), "{stdout}");
    let name = kept.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("wemaster.replaced-20"), "{name}");
    let kept_value: i64 = rusqlite::Connection::open(&kept)
        .unwrap()
        .query_row("SELECT x FROM only_in_live", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept_value, 42);
    let restored_has_it: i64 = rusqlite::Connection::open(&live)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'only_in_live'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(restored_has_it, 0, "the restore replaced the live database");

    // A second restore in the same second keeps the newer state under its own name.
    let (status, again, stderr) =
        run_binary(dir.path(), &["restore", other.to_str().unwrap()], &env);
    assert_eq!(status, 0, "{stderr}");
    assert!(again.contains(" is kept as "), "{again}");
    assert!(!again.contains(&kept.display().to_string()), "{again}");
    assert!(kept.exists());
}

#[tokio::test]
async fn a_second_server_on_the_same_database_is_refused() {
    let app = spawn_app().await;
    let mut config = crate::helpers::test_config(app.db_path.parent().unwrap());
    config.database.path = app.db_path.clone();
    let second = wemaster::app::Application::build(config).await;
    let err = second.err().expect("second server refused").to_string();
    assert!(err.contains("running wemaster"), "{err}");
}
