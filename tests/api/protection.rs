//! What an address is charged for (failures, never successes), budgets per
//! user, fairness per address and load shedding, login lockout, client
//! addresses behind proxies, request limits, CORS and security headers.
//! Distinct client addresses are real: clients bind to 127.0.0.2, 127.0.0.3
//! and so on, all of which reach the server's 127.0.0.1 on Linux.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use wemaster::config::{ClassLimit, Config};

use crate::fake_stripe::{FakeStripe, Mode};
use crate::helpers::{TestApp, problem, spawn_app, spawn_app_with};

/// `burst` failures charged to an address at once, and about none coming
/// back during a test (one a minute).
fn failures(config: &mut Config, burst: u32) {
    config.rate_limit.failures = ClassLimit {
        per_minute: 1,
        burst,
    };
}

/// A client whose connections come from `ip` (a loopback address).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn get_from(app: &TestApp, path: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url(path));
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn successful_logins_from_one_address_are_never_throttled() {
    // The shipped limits, and many people behind one address.
    let app = spawn_app_with(|c| c.rate_limit = wemaster::config::RateLimitConfig::default()).await;
    let accounts = ["student@test.com", "student1@test.com", "tutor@test.com"];
    for i in 0..120 {
        let resp = login_from(&app, &app.client, accounts[i % 3], "password123").await;
        assert_eq!(resp.status(), 200, "login {i}");
        assert!(!resp.headers().contains_key("ratelimit-limit"));
    }
    // Reads are not rationed per address either.
    let reads = (0..300).map(|_| app.get("/api/v1/offerings?limit=5"));
    for resp in futures::future::join_all(reads).await {
        assert_eq!(resp.status(), 200);
    }
}

#[tokio::test]
async fn failed_logins_throttle_the_address_not_the_others() {
    let app = spawn_app_with(|c| failures(c, 3)).await;
    let stuffer = client_from("127.0.0.2");
    // Credential stuffing: one guess per account, so no account locks.
    for i in 1..=3 {
        let resp = login_from(&app, &stuffer, &format!("student{i}@test.com"), "guess").await;
        assert_eq!(resp.status(), 401);
    }
    // The address spent its failures: even a right password is refused.
    let refused = login_from(&app, &stuffer, "student4@test.com", "password123").await;
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body = problem(refused, 429).await;
    assert_eq!(body["code"], "RATE_LIMITED");
    assert!(body["detail"].as_str().unwrap().contains("failed attempts"));
    // Registering from it is refused too; reading is not.
    let signup = stuffer
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "new@test.com", "password": "longenough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 429);
    let read = stuffer
        .get(app.url("/api/v1/offerings"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    // Someone else, from another address, signs in as usual.
    let honest = client_from("127.0.0.3");
    let resp = login_from(&app, &honest, "student1@test.com", "password123").await;
    assert_eq!(resp.status(), 200);
    // A token got earlier from the throttled address keeps working there.
    let token = app.token_of("student5@test.com").await;
    let me = stuffer
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn refused_signups_and_forged_tokens_are_charged_missing_tokens_are_not() {
    let app = spawn_app_with(|c| failures(c, 2)).await;
    let client = client_from("127.0.0.4");
    // An anonymous page asking who is signed in is not a failure.
    for _ in 0..10 {
        let resp = client.get(app.url("/api/v1/auth/me")).send().await.unwrap();
        assert_eq!(resp.status(), 401);
    }
    // A refused sign-up (the email is taken) is charged.
    let taken = client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "student@test.com", "password": "longenough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 409);
    // So is a token this server never signed.
    let forged = client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    // Two failures: the address is throttled; forged tokens get 429 now.
    let again = client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(again, 429).await["code"], "RATE_LIMITED");
    let login = login_from(&app, &client, "student@test.com", "password123").await;
    assert_eq!(login.status(), 429);
}

#[tokio::test]
async fn writes_are_budgeted_per_user_not_per_address() {
    let app = spawn_app_with(|c| {
        c.rate_limit.writes = ClassLimit {
            per_minute: 1,
            burst: 2,
        };
    })
    .await;
    let alice = app.token_of("student1@test.com").await;
    let bob = app.token_of("student2@test.com").await;
    let offering = app
        .get("/api/v1/offerings?limit=1")
        .await
        .json::<Value>()
        .await
        .unwrap()[0]["id"]
        .clone();
    let body = json!({"offeringId": offering});
    for remaining in ["1", "0"] {
        let resp = app.draft(&alice, &body, None).await;
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.headers()["ratelimit-limit"], "2");
        assert_eq!(resp.headers()["ratelimit-remaining"], remaining);
    }
    let refused = app.draft(&alice, &body, None).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(problem(refused, 429).await["code"], "RATE_LIMITED");
    // Same address, another user: a budget of its own.
    assert_eq!(app.draft(&bob, &body, None).await.status(), 201);
    // Reads and the webhook are outside every budget.
    assert_eq!(
        app.get_with_token("/api/v1/orders", &alice).await.status(),
        200
    );
    let webhook = app
        .post_json("/api/v1/payments/webhooks/stripe", &json!({}))
        .await;
    assert_eq!(
        problem(webhook, 401).await["code"],
        "WEBHOOK_SIGNATURE_INVALID"
    );
}

/// Opens a `POST path` from `ip` whose body never finishes, so it stays in
/// progress (holding its slots) until the returned stream is dropped.
async fn stalled_request(app: &TestApp, ip: &str, path: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Sends `GET /api/v1/offerings` from `client` until the answer has
/// `status` (the stalled request is admitted a moment after it is sent);
/// returns that answer and how long it took.
async fn until_status(
    app: &TestApp,
    client: &reqwest::Client,
    status: u16,
) -> (reqwest::Response, Duration) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let started = Instant::now();
        let resp = client
            .get(app.url("/api/v1/offerings"))
            .send()
            .await
            .unwrap();
        if resp.status() == status || Instant::now() > deadline {
            return (resp, started.elapsed());
        }
    }
}

/// A server whose drafts call the fake Stripe, which is made to hang until
/// the provider's timeout, `stripe_ms`.
async fn hanging_stripe_app(
    fake: &FakeStripe,
    stripe_ms: u64,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let base = fake.base_url();
    let app = spawn_app_with(move |c| {
        c.payments.provider = wemaster::config::PaymentProvider::Stripe;
        c.payments.stripe_secret_key = wemaster::config::Secret::new("sk_test_fake");
        c.payments.stripe_api_base = base;
        c.payments.stripe_timeout_ms = stripe_ms;
        adjust(c);
    })
    .await;
    fake.set_mode(Mode::Hang);
    app
}

/// Holds the database's write lock from outside the server, as a long
/// migration or a careless backup tool would: drafts then wait for it in
/// their slots (up to `database.busy_timeout_ms`) until it is dropped.
fn hold_write_lock(app: &TestApp) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

/// Starts a draft of `offering` from `ip`; returns its status when it ends.
fn draft_from(app: &TestApp, ip: &str, token: &str, offering: &Value) -> JoinHandle<u16> {
    let request = client_from(ip)
        .post(app.url("/api/v1/orders/draft"))
        .bearer_auth(token)
        .json(&json!({"offeringId": offering}));
    tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
}

async fn first_offering(app: &TestApp) -> Value {
    app.get("/api/v1/offerings?limit=1")
        .await
        .json::<Value>()
        .await
        .unwrap()[0]["id"]
        .clone()
}

/// Waits until the fake Stripe has been asked for `n` sessions.
async fn until_stripe_asked(fake: &FakeStripe, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.received().len() < n {
        assert!(
            Instant::now() < deadline,
            "Stripe asked {} times, not {n}",
            fake.received().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the health report's general slots show `running` requests
/// running and `queued` waiting.
async fn until_load(app: &TestApp, running: u64, queued: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health: Value = app.get("/healthz").await.json().await.unwrap();
        let load = &health["services"]["load"];
        if load["running"] == running && load["queued"] == queued {
            return;
        }
        assert!(Instant::now() < deadline, "load stayed {load}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_address_alone_may_run_every_slot_and_another_gets_the_next_turn() {
    // Many people behind one address (a school, a NAT): nothing holds them
    // back while capacity is free.
    let app = spawn_app_with(|c| {
        c.server.max_in_flight = 12;
        c.server.queue_timeout_ms = 10_000;
    })
    .await;
    let token = app.token_of("student@test.com").await;
    let offering = first_offering(&app).await;
    let lock = hold_write_lock(&app);
    let drafts: Vec<_> = (0..12)
        .map(|_| draft_from(&app, "127.0.0.5", &token, &offering))
        .collect();
    until_load(&app, 12, 0).await;
    // Every slot is taken: another address waits for the next free one
    // rather than being refused.
    let other = client_from("127.0.0.6");
    let url = app.url("/api/v1/offerings");
    let read = tokio::spawn(async move { other.get(url).send().await.unwrap().status() });
    until_load(&app, 12, 1).await;
    drop(lock);
    assert_eq!(read.await.unwrap(), 200);
    for draft in drafts {
        assert_eq!(draft.await.unwrap(), 201);
    }
}

#[tokio::test]
async fn past_capacity_a_wait_longer_than_allowed_is_503_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.server.max_in_flight = 1;
        c.server.queue_timeout_ms = 300;
    })
    .await;
    let token = app.token_of("student@test.com").await;
    let offering = first_offering(&app).await;
    let lock = hold_write_lock(&app);
    let draft = draft_from(&app, "127.0.0.7", &token, &offering);
    until_load(&app, 1, 0).await;
    let other = client_from("127.0.0.8");
    let shed = other
        .get(app.url("/api/v1/offerings"))
        .send()
        .await
        .unwrap();
    assert!(shed.headers().contains_key("retry-after"));
    assert_eq!(problem(shed, 503).await["code"], "OVERLOADED");
    // Probes still answer, and the report says the server is shedding.
    let health = other.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["services"]["load"]["status"], "degraded");
    assert_eq!(health["status"], "degraded");
    drop(lock);
    assert_eq!(draft.await.unwrap(), 201);
    let (resp, _) = until_status(&app, &other, 200).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_hanging_stripe_holds_no_slot_and_its_calls_are_bounded() {
    let fake = FakeStripe::start().await;
    let app = hanging_stripe_app(&fake, 1_500, |c| {
        c.server.max_in_flight = 1;
        c.server.queue_timeout_ms = 300;
        c.payments.stripe_max_concurrent_calls = 1;
    })
    .await;
    let token = app.token_of("student@test.com").await;
    let offering = first_offering(&app).await;
    let hanging = draft_from(&app, "127.0.0.9", &token, &offering);
    until_stripe_asked(&fake, 1).await;
    // The only slot is free while the draft waits on Stripe.
    let other = client_from("127.0.0.10");
    let read = other
        .get(app.url("/api/v1/offerings"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    // A second call to Stripe is past the bound: refused at once.
    let second = other
        .post(app.url("/api/v1/orders/draft"))
        .bearer_auth(&token)
        .json(&json!({"offeringId": offering}))
        .send()
        .await
        .unwrap();
    assert!(second.headers().contains_key("retry-after"));
    assert_eq!(problem(second, 503).await["status"], 503);
    assert_eq!(fake.received().len(), 1, "the second draft reached Stripe");
    assert_eq!(hanging.await.unwrap(), 503, "Stripe never answered");
}

#[tokio::test]
async fn requests_whose_bodies_never_come_hold_no_slot() {
    // 32 addresses each open 4 requests and never send their bodies; the
    // server runs 4 requests at once. Another address's reads still pass.
    let app = spawn_app_with(|c| c.server.max_in_flight = 4).await;
    let mut stalled = Vec::new();
    for i in 0..32 {
        for _ in 0..4 {
            let ip = format!("127.0.1.{}", i + 1);
            stalled.push(stalled_request(&app, &ip, "/api/v1/orders/draft").await);
        }
    }
    // Every one of them reached the server (none holds a slot).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health: Value = app.get("/healthz").await.json().await.unwrap();
        if health["system"]["openConnections"].as_u64().unwrap() > 128 {
            break;
        }
        assert!(Instant::now() < deadline, "{health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let honest = client_from("127.0.0.9");
    for _ in 0..5 {
        let resp = honest
            .get(app.url("/api/v1/offerings"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let health: Value = honest
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["services"]["load"]["running"], 0, "{health}");
    assert!(health["system"]["openConnections"].as_u64().unwrap() >= 128);
    drop(stalled);
}

#[tokio::test]
async fn trusted_proxies_pass_the_client_address_and_others_cannot_spoof_it() {
    let trusting = spawn_app_with(|c| {
        failures(c, 1);
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let guess = |app: &TestApp, from: &str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", from.to_string())
            .json(&json!({"email": "student@test.com", "password": "guess"}))
            .send()
    };
    // Behind a trusted proxy, each forwarded client is charged on its own.
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(guess(&trusting, client).await.unwrap().status(), 401);
    }
    assert_eq!(guess(&trusting, "203.0.113.1").await.unwrap().status(), 429);
    // A client cannot pick a fresh address by prepending to the header: the
    // rightmost untrusted hop counts.
    let spoof = "198.51.100.7, 203.0.113.1";
    assert_eq!(guess(&trusting, spoof).await.unwrap().status(), 429);

    // Without trust, the header is ignored: one peer, one address.
    let plain = spawn_app_with(|c| failures(c, 1)).await;
    assert_eq!(guess(&plain, "203.0.113.1").await.unwrap().status(), 401);
    assert_eq!(guess(&plain, "203.0.113.2").await.unwrap().status(), 429);
    let _ = get_from(&plain, "/api/v1/offerings", None).await;
}

/// Addresses chosen by `X-Forwarded-For` (the test client, 127.0.0.1, is
/// a trusted proxy).
fn lockout_app(config: &mut Config) {
    config.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

async fn login_via(app: &TestApp, email: &str, password: &str, from: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", from)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn locked(resp: reqwest::Response) {
    assert!(resp.headers().contains_key("retry-after"));
    let body = problem(resp, 429).await;
    assert_eq!(body["code"], "RATE_LIMITED");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("too many failed sign-ins for this account"),
        "{body}"
    );
}

#[tokio::test]
async fn six_wrong_passwords_lock_out_their_address_not_the_owner_elsewhere() {
    let app = spawn_app_with(lockout_app).await;
    let (owner, attacker) = ("198.51.100.1", "203.0.113.7");
    // Many honest logins in a row are never slowed.
    for _ in 0..8 {
        let resp = login_via(&app, "student3@test.com", "password123", owner).await;
        assert_eq!(resp.status(), 200);
    }
    // Five free failures, and the sixth is still checked (401), then locks.
    for _ in 0..6 {
        let resp = login_via(&app, "student3@test.com", "wrong-guess", attacker).await;
        assert_eq!(resp.status(), 401);
    }
    // Locked: the right password from that address is not even checked.
    locked(login_via(&app, "student3@test.com", "password123", attacker).await).await;
    // The owner, from their address or from one never used, gets in.
    let resp = login_via(&app, "student3@test.com", "password123", owner).await;
    assert_eq!(resp.status(), 200);
    let resp = login_via(&app, "student3@test.com", "password123", "192.0.2.55").await;
    assert_eq!(resp.status(), 200);
    // The lock runs out (1 s, then doubling): one more guess is checked and
    // locks for 2 s.
    app.clock.advance(Duration::from_millis(1_001));
    let resp = login_via(&app, "student3@test.com", "wrong-guess", attacker).await;
    assert_eq!(resp.status(), 401);
    locked(login_via(&app, "student3@test.com", "password123", attacker).await).await;
    app.clock.advance(Duration::from_millis(1_500));
    locked(login_via(&app, "student3@test.com", "password123", attacker).await).await;
    app.clock.advance(Duration::from_millis(501));
    // A success clears that address's count.
    let resp = login_via(&app, "student3@test.com", "password123", attacker).await;
    assert_eq!(resp.status(), 200);
    let resp = login_via(&app, "student3@test.com", "wrong-guess", attacker).await;
    assert_eq!(resp.status(), 401);
    let resp = login_via(&app, "student3@test.com", "password123", attacker).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn guesses_from_many_addresses_lock_out_unfamiliar_ones_not_the_owners() {
    let app = spawn_app_with(|c| {
        lockout_app(c);
        c.rate_limit.login_unfamiliar_free_failures = 3;
    })
    .await;
    let home = "198.51.100.1";
    let resp = login_via(&app, "student4@test.com", "password123", home).await;
    assert_eq!(resp.status(), 200, "the owner signs in from home once");
    // One guess from each of four new addresses: three free, the fourth
    // checked, then every unfamiliar address is locked out.
    for i in 1..=4 {
        let from = format!("203.0.113.{i}");
        let resp = login_via(&app, "student4@test.com", "wrong-guess", &from).await;
        assert_eq!(resp.status(), 401);
    }
    locked(login_via(&app, "student4@test.com", "password123", "203.0.113.9").await).await;
    locked(login_via(&app, "student4@test.com", "password123", "192.0.2.1").await).await;
    // The owner at home is not locked out.
    let resp = login_via(&app, "student4@test.com", "password123", home).await;
    assert_eq!(resp.status(), 200);
    // Other accounts are unaffected.
    let resp = login_via(&app, "student5@test.com", "password123", "203.0.113.9").await;
    assert_eq!(resp.status(), 200);
    app.clock.advance(Duration::from_millis(1_001));
    let resp = login_via(&app, "student4@test.com", "password123", "192.0.2.1").await;
    assert_eq!(resp.status(), 200, "the lock ran out");
}

#[tokio::test]
async fn unknown_accounts_lock_the_same_way() {
    let app = spawn_app_with(|c| {
        lockout_app(c);
        c.rate_limit.login_free_failures = 1;
    })
    .await;
    for email in ["student5@test.com", "nobody@test.com"] {
        for _ in 0..2 {
            let resp = login_via(&app, email, "wrong-guess", "203.0.113.7").await;
            assert_eq!(resp.status(), 401, "{email}");
        }
        let resp = login_via(&app, email, "wrong-guess", "203.0.113.7").await;
        let status = resp.status();
        let body = problem(resp, 429).await;
        assert_eq!(status, 429);
        assert_eq!(
            body["detail"], "too many failed sign-ins for this account; retry in 1 s",
            "{email}"
        );
    }
}

#[tokio::test]
async fn a_password_reset_lifts_the_lock_and_a_lock_survives_a_restart() {
    let config = {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::helpers::test_config(dir.path());
        lockout_app(&mut config);
        (dir, config)
    };
    let app = crate::helpers::spawn_in(config.0, config.1.clone()).await;
    let from = "203.0.113.7";
    for _ in 0..6 {
        let resp = login_via(&app, "student2@test.com", "wrong-guess", from).await;
        assert_eq!(resp.status(), 401);
    }
    locked(login_via(&app, "student2@test.com", "password123", from).await).await;
    let dir = app.stop().await;
    let app = crate::helpers::spawn_in(dir, config.1).await;
    locked(login_via(&app, "student2@test.com", "password123", from).await).await;
    let resp = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "student2@test.com"}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let token =
        crate::helpers::reset_token_from(&app.mail_to("student2@test.com", "PASSWORD_RESET").await);
    let resp = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "newPassword": "a-new-password"}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let resp = login_via(&app, "student2@test.com", "a-new-password", from).await;
    assert_eq!(resp.status(), 200, "the reset lifted the lock");
}

#[tokio::test]
async fn wemaster_user_unlock_lifts_every_lock_of_an_account() {
    let app = spawn_app_with(|c| {
        lockout_app(c);
        c.rate_limit.login_unfamiliar_free_failures = 1;
    })
    .await;
    for from in ["203.0.113.1", "203.0.113.2"] {
        let resp = login_via(&app, "student1@test.com", "wrong-guess", from).await;
        assert_eq!(resp.status(), 401);
    }
    locked(login_via(&app, "student1@test.com", "password123", "192.0.2.1").await).await;
    let dir = tempfile::tempdir().unwrap();
    let db = app.db_path.display().to_string();
    let env = [("WEMASTER_DATABASE__PATH", db.as_str())];
    let (code, out, err) =
        crate::helpers::run_binary(dir.path(), &["user", "unlock", "Student1@test.com"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("unlocked student1@test.com: 1 locked-out address(es) cleared (database "),
        "{out}"
    );
    assert!(out.contains(&db), "{out}");
    let resp = login_via(&app, "student1@test.com", "password123", "192.0.2.1").await;
    assert_eq!(resp.status(), 200);
    let (code, _, err) =
        crate::helpers::run_binary(dir.path(), &["user", "unlock", "nobody@test.com"], &env);
    assert_eq!(code, 1);
    assert!(
        err.contains("no account has the email nobody@test.com"),
        "{err}"
    );
}

#[tokio::test]
async fn sign_ups_are_bounded_per_address_and_a_classroom_fits() {
    let app = spawn_app_with(|c| {
        lockout_app(c);
        c.rate_limit.signups.burst = 30;
    })
    .await;
    let register = |i: u32, from: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/register"))
            .header("x-forwarded-for", from)
            .json(&json!({"email": format!("pupil{i}@school.test"), "password": "longenough"}))
            .send()
    };
    let before = app.count("users");
    // A class of 30 behind one school address.
    for i in 0..30 {
        assert_eq!(register(i, "198.51.100.1").await.unwrap().status(), 201);
    }
    let refused = register(30, "198.51.100.1").await.unwrap();
    assert_eq!(refused.headers()["ratelimit-limit"], "30");
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body = problem(refused, 429).await;
    assert_eq!(body["code"], "RATE_LIMITED");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("too many sign-ups from your address; retry in"),
        "{body}"
    );
    assert_eq!(
        app.count("users"),
        before + 30,
        "the refused one was not created"
    );
    // Another address signs up as before.
    assert_eq!(register(31, "198.51.100.2").await.unwrap().status(), 201);
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

    // A preflight from an origin not listed says which setting lists it.
    let refused = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/orders/draft"))
        .header("origin", "https://evil.example.net")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let body = problem(refused, 403).await;
    assert!(
        body["detail"].as_str().unwrap().contains(
            "https://evil.example.net are not allowed: it is not listed in server.cors_origins"
        ),
        "{body}"
    );

    // With no origins configured, no CORS headers at all, and a preflight
    // is told why.
    let closed = spawn_app().await;
    let refused = closed
        .client
        .request(reqwest::Method::OPTIONS, closed.url("/api/v1/auth/login"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    let body = problem(refused, 403).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no origin is listed in server.cors_origins (WEMASTER_SERVER__CORS_ORIGINS)"),
        "{body}"
    );
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

#[tokio::test]
async fn forged_tokens_are_charged_whatever_the_case_of_the_scheme() {
    let app = spawn_app_with(|c| failures(c, 2)).await;
    let client = client_from("127.0.0.11");
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged";
    for scheme in ["bearer", "BEARER"] {
        let resp = client
            .get(app.url("/api/v1/auth/me"))
            .header("authorization", format!("{scheme} {forged}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{scheme}");
    }
    let again = client
        .get(app.url("/api/v1/auth/me"))
        .header("authorization", format!("bEaReR {forged}"))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(again, 429).await["code"], "RATE_LIMITED");
}
