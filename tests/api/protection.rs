//! Rate limits, login lockout, client addresses behind proxies, request
//! limits, CORS and security headers.

use std::time::Duration;

use serde_json::{Value, json};
use wemaster::config::{ClassLimit, Config};

use crate::helpers::{TestApp, problem, spawn_app, spawn_app_with};

/// Limits on, with every class made small: `burst` requests, then one more
/// a second. (A token every 50 ms made the tests depend on the machine
/// answering a few requests within 50 ms, which a busy CI host does not.)
fn small(config: &mut Config, burst: u32) {
    config.rate_limit.enabled = true;
    let tight = ClassLimit {
        per_minute: 60,
        burst,
    };
    config.rate_limit.auth = tight.clone();
    config.rate_limit.public = tight.clone();
    config.rate_limit.writes = tight.clone();
    config.rate_limit.admin = tight;
}

async fn get_from(app: &TestApp, path: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url(path));
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_class_limits_at_its_burst_and_recovers_at_its_rate() {
    let app = spawn_app_with(|c| small(c, 3)).await;
    for remaining in ["2", "1", "0"] {
        let resp = app.get("/api/v1/offerings?limit=1").await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["ratelimit-limit"], "3");
        assert_eq!(resp.headers()["ratelimit-remaining"], remaining);
        assert!(resp.headers().contains_key("ratelimit-reset"));
    }
    let refused = app.get("/api/v1/offerings?limit=1").await;
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    let body = problem(refused, 429).await;
    assert_eq!(body["code"], "RATE_LIMITED");
    // One token comes back every second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(app.get("/api/v1/offerings?limit=1").await.status(), 200);
    assert_eq!(app.get("/api/v1/offerings?limit=1").await.status(), 429);
}

#[tokio::test]
async fn each_class_has_its_own_bucket_and_probes_and_webhooks_are_outside() {
    let app = spawn_app_with(|c| small(c, 2)).await;
    for _ in 0..2 {
        assert_eq!(app.get("/api/v1/offerings").await.status(), 200);
    }
    assert_eq!(app.get("/api/v1/offerings").await.status(), 429);
    // Auth is another class: still open.
    let resp = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "student@test.com", "password": "password123"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    for _ in 0..10 {
        assert_eq!(app.get("/healthz").await.status(), 200);
        assert_eq!(app.get("/api/v1/livez").await.status(), 200);
        let resp = app
            .post_json("/api/v1/payments/webhooks/stripe", &json!({}))
            .await;
        assert_eq!(resp.status(), 400, "webhooks are verified, never throttled");
        assert!(!resp.headers().contains_key("ratelimit-limit"));
    }
}

#[tokio::test]
async fn signed_in_callers_are_limited_per_user_not_per_address() {
    let app = spawn_app_with(|c| {
        small(c, 2);
        c.rate_limit.auth.burst = 50;
    })
    .await;
    let alice = app.token_of("student1@test.com").await;
    let bob = app.token_of("student2@test.com").await;
    for _ in 0..2 {
        assert_eq!(
            app.get_with_token("/api/v1/orders", &alice).await.status(),
            200
        );
    }
    assert_eq!(
        app.get_with_token("/api/v1/orders", &alice).await.status(),
        429
    );
    // Same address, another user: a bucket of its own.
    assert_eq!(
        app.get_with_token("/api/v1/orders", &bob).await.status(),
        200
    );
}

#[tokio::test]
async fn trusted_proxies_pass_the_client_address_and_others_cannot_spoof_it() {
    let trusting = spawn_app_with(|c| {
        small(c, 1);
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    // Behind a trusted proxy, each forwarded client has its own bucket.
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(
            get_from(&trusting, "/api/v1/offerings", Some(client))
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        get_from(&trusting, "/api/v1/offerings", Some("203.0.113.1"))
            .await
            .status(),
        429
    );
    // A client cannot pick a fresh address by prepending to the header: the
    // rightmost untrusted hop counts.
    let spoof = "198.51.100.7, 203.0.113.1";
    assert_eq!(
        get_from(&trusting, "/api/v1/offerings", Some(spoof))
            .await
            .status(),
        429
    );

    // Without trust, the header is ignored: one peer, one bucket.
    let plain = spawn_app_with(|c| small(c, 1)).await;
    assert_eq!(
        get_from(&plain, "/api/v1/offerings", Some("203.0.113.1"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get_from(&plain, "/api/v1/offerings", Some("203.0.113.2"))
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn login_lockout_counts_failures_only_whatever_the_address() {
    let app = spawn_app_with(|c| {
        c.rate_limit.enabled = true;
        c.rate_limit.auth = ClassLimit {
            per_minute: 60_000,
            burst: 1_000,
        };
        c.rate_limit.login_free_failures = 3;
        c.rate_limit.login_lockout_base_ms = 1_000;
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let login = |password: &'static str, from: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", from)
            .json(&json!({"email": "student3@test.com", "password": password}))
            .send()
    };
    // Many honest logins in a row are never slowed.
    for _ in 0..10 {
        assert_eq!(
            login("password123", "198.51.100.1").await.unwrap().status(),
            200
        );
    }
    // Failures from changing addresses still count against the account.
    for from in ["198.51.100.2", "198.51.100.3", "198.51.100.4"] {
        assert_eq!(login("wrong-guess", from).await.unwrap().status(), 401);
    }
    let locked = login("wrong-guess", "198.51.100.5").await.unwrap();
    assert_eq!(
        locked.status(),
        401,
        "the fourth failure is counted, then the lock starts"
    );
    let refused = login("password123", "198.51.100.6").await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(problem(refused, 429).await["code"], "RATE_LIMITED");
    // Other accounts are unaffected.
    app.login("student4@test.com", "password123").await;
    // After the lock, a success clears the record.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        login("password123", "198.51.100.1").await.unwrap().status(),
        200
    );
    assert_eq!(
        login("wrong-guess", "198.51.100.1").await.unwrap().status(),
        401
    );
    assert_eq!(
        login("password123", "198.51.100.1").await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn unknown_accounts_lock_the_same_way() {
    let app = spawn_app_with(|c| {
        c.rate_limit.enabled = true;
        c.rate_limit.login_free_failures = 1;
    })
    .await;
    for email in ["student5@test.com", "nobody@test.com"] {
        let body = json!({"email": email, "password": "wrong-guess"});
        assert_eq!(
            app.post_json("/api/v1/auth/login", &body).await.status(),
            401
        );
        assert_eq!(
            app.post_json("/api/v1/auth/login", &body).await.status(),
            401
        );
        assert_eq!(
            app.post_json("/api/v1/auth/login", &body).await.status(),
            429,
            "{email}"
        );
    }
}

#[tokio::test]
async fn bodies_over_the_cap_are_413_even_when_chunked() {
    let app = spawn_app_with(|c| c.server.max_body_bytes = 2_048).await;
    let big = json!({"email": "a@b.co", "password": "x".repeat(4_000)});
    let body = problem(app.post_json("/api/v1/auth/login", &big).await, 413).await;
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
    // No Content-Length: a streamed body is counted as it arrives.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..8).map(|_| Ok(vec![b' '; 512])).collect();
    let stream = futures::stream::iter(chunks);
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    problem(resp, 413).await;
    // Compressed request bodies are refused outright.
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(resp, 415).await;
    // Small bodies pass.
    app.login("student@test.com", "password123").await;
}

#[tokio::test]
async fn a_slow_request_ends_as_503_not_a_hang() {
    let app = spawn_app_with(|c| {
        c.server.request_timeout_ms = 5;
        // A hash this costly takes far longer than 5 ms.
        c.auth.argon2_memory_kib = 65_536;
        c.auth.argon2_iterations = 4;
    })
    .await;
    let started = std::time::Instant::now();
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "slow@test.com", "password": "longenough"}),
        )
        .await;
    assert!(resp.headers().contains_key("retry-after"));
    problem(resp, 503).await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn cors_preflight_is_answered_for_configured_origins_only() {
    let app =
        spawn_app_with(|c| c.server.cors_origins = vec!["https://app.example.com".into()]).await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/orders/draft"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("idempotency-key"), "{allowed}");
    let resp = app
        .client
        .get(app.url("/api/v1/offerings"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = resp.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-total-count"), "{exposed}");
    let other = app
        .client
        .get(app.url("/api/v1/offerings"))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    // With no origins configured, no CORS headers at all.
    let closed = spawn_app().await;
    let resp = closed
        .client
        .get(closed.url("/api/v1/offerings"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn security_headers_and_compression() {
    let app = spawn_app_with(|c| c.server.hsts = true).await;
    let resp = app
        .client
        .get(app.url("/api/v1/offerings"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
    assert!(
        resp.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let compressed = resp.bytes().await.unwrap();
    let plain = app.get("/api/v1/offerings").await;
    assert!(!plain.headers().contains_key("content-encoding"));
    let plain: Value = plain.json().await.unwrap();
    let mut decoded = Vec::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut decoded)
        .unwrap();
    let decoded: Value = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(decoded, plain);
    // Errors carry the headers too; HSTS is off by default.
    let app = spawn_app().await;
    let resp = app.get("/api/v1/nope").await;
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(!resp.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn shipped_limits_let_a_page_load_through() {
    // Default limits: a front end loading a page fires a burst of reads.
    let app = spawn_app_with(|c| c.rate_limit = wemaster::config::RateLimitConfig::default()).await;
    let reads = (0..60).map(|i| {
        app.get(if i % 2 == 0 {
            "/api/v1/offerings"
        } else {
            "/api/v1/offerings/python-for-absolute-beginners"
        })
    });
    for resp in futures::future::join_all(reads).await {
        assert_eq!(resp.status(), 200);
    }
}

fn brotli_decode(body: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut plain = Vec::new();
    brotli::Decompressor::new(body, 4096)
        .read_to_end(&mut plain)
        .unwrap();
    plain
}

#[tokio::test]
async fn cached_reads_go_out_compressed_with_an_etag_per_coding() {
    let app = spawn_app().await;
    let fetch = |path: &'static str, encoding: Option<&'static str>, tag: Option<String>| {
        let mut req = app.client.get(app.url(path));
        if let Some(encoding) = encoding {
            req = req.header("accept-encoding", encoding);
        }
        if let Some(tag) = tag {
            req = req.header("if-none-match", tag);
        }
        async move { req.send().await.unwrap() }
    };
    let header = |resp: &reqwest::Response, name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };

    let plain = fetch("/api/v1/offerings", None, None).await;
    assert_eq!(header(&plain, "content-encoding"), None);
    assert_eq!(header(&plain, "vary").as_deref(), Some("accept-encoding"));
    let etag = header(&plain, "etag").unwrap();
    let stem = etag.trim_end_matches('"');
    let plain = plain.bytes().await.unwrap();

    // Brotli first, and the same kept bytes on every answer.
    let br = fetch("/api/v1/offerings", Some("gzip, deflate, br"), None).await;
    assert_eq!(header(&br, "content-encoding").as_deref(), Some("br"));
    assert_eq!(header(&br, "vary").as_deref(), Some("accept-encoding"));
    assert_eq!(header(&br, "etag"), Some(format!("{stem}-br\"")));
    let br_body = br.bytes().await.unwrap();
    assert_eq!(brotli_decode(&br_body), plain);
    assert!(
        br_body.len() * 4 < plain.len(),
        "{} of {}",
        br_body.len(),
        plain.len()
    );
    let again = fetch("/api/v1/offerings", Some("br"), None).await;
    assert_eq!(again.bytes().await.unwrap(), br_body);

    // q-values decide; q=0 refuses.
    let gzip = fetch("/api/v1/offerings", Some("br;q=0.5, gzip"), None).await;
    assert_eq!(header(&gzip, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header(&gzip, "etag"), Some(format!("{stem}-gzip\"")));
    let refused = fetch("/api/v1/offerings", Some("br;q=0, gzip;q=0"), None).await;
    assert_eq!(header(&refused, "content-encoding"), None);
    assert_eq!(refused.bytes().await.unwrap(), plain);

    // Any coding's ETag revalidates, and the 304 names the coding asked for.
    let tag = Some(format!("{stem}-br\""));
    let not_modified = fetch("/api/v1/offerings", Some("br"), tag.clone()).await;
    assert_eq!(not_modified.status(), 304);
    assert_eq!(header(&not_modified, "etag"), tag);
    let not_modified = fetch("/api/v1/offerings", None, tag).await;
    assert_eq!(not_modified.status(), 304);
    assert_eq!(header(&not_modified, "etag"), Some(etag));

    // Details are kept compressed too.
    let detail = fetch(
        "/api/v1/offerings/python-for-absolute-beginners",
        Some("br"),
        None,
    )
    .await;
    assert_eq!(header(&detail, "content-encoding").as_deref(), Some("br"));
    let detail: Value =
        serde_json::from_slice(&brotli_decode(&detail.bytes().await.unwrap())).unwrap();
    assert_eq!(detail["slug"], "python-for-absolute-beginners");

    // Small answers go out plain, still saying they could vary.
    let small = fetch("/livez", Some("br, gzip"), None).await;
    assert_eq!(header(&small, "content-encoding"), None);
    assert_eq!(header(&small, "vary").as_deref(), Some("accept-encoding"));
}

#[tokio::test]
async fn the_spec_and_docs_page_go_out_compressed() {
    let app = spawn_app().await;
    for (path, encoding) in [
        ("/openapi.json", "br"),
        ("/openapi.yaml", "gzip"),
        ("/docs/", "br"),
    ] {
        let plain = app.get(path).await.bytes().await.unwrap();
        for _ in 0..2 {
            let resp = app
                .client
                .get(app.url(path))
                .header("accept-encoding", encoding)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.headers()["content-encoding"], encoding, "{path}");
            assert_eq!(resp.headers()["vary"], "accept-encoding", "{path}");
            let body = resp.bytes().await.unwrap();
            let decoded = if encoding == "br" {
                brotli_decode(&body)
            } else {
                use std::io::Read;
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            };
            assert_eq!(decoded, plain, "{path}");
            assert!(
                body.len() * 3 < plain.len(),
                "{path}: {} of {}",
                body.len(),
                plain.len()
            );
        }
    }
}
