//! Accounts and authentication through real HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, reset_token_from, spawn_app, spawn_app_with};

#[test]
fn user_create_from_another_folder_writes_beside_the_config_file_and_says_which() {
    let root = tempfile::tempdir().unwrap();
    let site = root.path().join("opt/wemaster");
    let home = root.path().join("home/me");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        site.join("wemaster.toml"),
        "[database]\npath = \"data/wemaster.db\"\n[demo]\nseed_on_empty = false\n",
    )
    .unwrap();
    let config = site.join("wemaster.toml").display().to_string();
    let (status, stdout, stderr) = crate::helpers::run_binary(
        &home,
        &[
            "--config",
            &config,
            "user",
            "create",
            "--email",
            "you@example.com",
            "--role",
            "ADMIN",
        ],
        &[
            ("WEMASTER_NEW_PASSWORD", "root-password-1"),
            ("WEMASTER_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("WEMASTER_AUTH__ARGON2_ITERATIONS", "1"),
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    let database = site.join("data/wemaster.db");
    assert!(
        stdout.contains(&format!("in {}", database.display())),
        "{stdout}"
    );
    assert!(database.exists());
    assert!(!home.join("data").exists(), "nothing written where it ran");
}

#[tokio::test]
async fn register_creates_a_student_and_signs_in() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "  New.Person@Example.COM ", "password": "longenough", "name": "New"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 900);
    assert!(body["refreshToken"].as_str().unwrap().len() >= 40);
    assert_eq!(body["user"]["email"], "new.person@example.com");
    assert_eq!(body["user"]["role"], "STUDENT");
    let me = app
        .get_with_token("/api/v1/auth/me", body["accessToken"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], body["user"]["id"]);
    assert!(me.get("passwordHash").is_none());
}

#[tokio::test]
async fn register_as_tutor_is_allowed() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "t@example.com", "password": "longenough", "role": "TUTOR"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["role"], "TUTOR");
}

#[tokio::test]
async fn register_as_admin_is_refused() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "evil@example.com", "password": "longenough", "role": "ADMIN"}),
        )
        .await;
    let body = problem(resp, 400).await;
    // The problem names the field and what it allows, not a Rust type.
    assert_eq!(body["field"], "role", "{body}");
    assert_eq!(
        body["detail"], r#"role must be one of "STUDENT", "TUTOR"; got "ADMIN""#,
        "{body}"
    );
    // And no account was created.
    let resp = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "evil@example.com", "password": "longenough"}),
        )
        .await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn a_name_of_invisible_characters_is_refused() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "ghost@example.com", "password": "longenough",
                    "name": "\u{200b}\u{202e}\u{2066}"}),
        )
        .await;
    let body = problem(resp, 400).await;
    assert_eq!(body["field"], "name", "{body}");
    assert_eq!(app.count("users WHERE email = 'ghost@example.com'"), 0);
    // A blank name is simply no name.
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "blank@example.com", "password": "longenough", "name": "  "}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert!(body["user"]["name"].is_null(), "{body}");
}

#[tokio::test]
async fn register_with_a_duplicate_email_in_another_case_returns_409() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "STUDENT@Test.com", "password": "longenough"}),
        )
        .await;
    let body = problem(resp, 409).await;
    assert_eq!(body["code"], "CONFLICT");
    assert_eq!(body["field"], "email");
}

#[tokio::test]
async fn register_with_a_malformed_email_returns_400_naming_the_field() {
    let app = spawn_app().await;
    for email in ["not-an-email", "a@", "@b.com", "a b@c.com", ""] {
        let resp = app
            .post_json(
                "/api/v1/auth/register",
                &json!({"email": email, "password": "longenough"}),
            )
            .await;
        let body = problem(resp, 400).await;
        assert_eq!(body["field"], "email", "{email}: {body}");
    }
}

#[tokio::test]
async fn register_with_a_short_or_huge_password_returns_400() {
    let app = spawn_app().await;
    for password in ["short", &"x".repeat(129)] {
        let resp = app
            .post_json(
                "/api/v1/auth/register",
                &json!({"email": "p@example.com", "password": password}),
            )
            .await;
        let body = problem(resp, 400).await;
        assert!(
            body["detail"].as_str().unwrap().contains("password"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400_problems() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(resp, 400).await;
    let resp = app
        .post_json("/api/v1/auth/login", &json!({"email": 5, "password": []}))
        .await;
    problem(resp, 400).await;
    // A number where the spec says string is refused, not read as its digits.
    let cases = [
        (
            "/api/v1/auth/register",
            json!({"email": "digits@example.com", "password": 123456789}),
        ),
        (
            "/api/v1/auth/login",
            json!({"email": "student@test.com", "password": 12345678}),
        ),
        ("/api/v1/auth/refresh", json!({"refreshToken": 12})),
        ("/api/v1/auth/forgot-password", json!({"email": true})),
    ];
    for (path, body) in cases {
        let problem_body = problem(app.post_json(path, &body).await, 400).await;
        assert_eq!(
            problem_body["code"], "VALIDATION_ERROR",
            "{path}: {problem_body}"
        );
    }
    assert_eq!(app.count("users WHERE email = 'digits@example.com'"), 0);
}

#[tokio::test]
async fn demo_accounts_log_in() {
    let app = spawn_app().await;
    for (email, password, role) in [
        ("admin@test.com", "admin123", "ADMIN"),
        ("tutor@test.com", "password123", "TUTOR"),
        ("student@test.com", "password123", "STUDENT"),
        ("student3@test.com", "password123", "STUDENT"),
    ] {
        let body = app.login(email, password).await;
        assert_eq!(body["user"]["role"], role);
    }
}

#[tokio::test]
async fn login_with_wrong_password_and_unknown_email_give_the_same_401() {
    let app = spawn_app().await;
    let wrong = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "student@test.com", "password": "nope-nope"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "nobody@test.com", "password": "nope-nope"}),
        )
        .await;
    let wrong = problem(wrong, 401).await;
    let unknown = problem(unknown, 401).await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["code"], "AUTH_INVALID_CREDENTIALS");
}

#[tokio::test]
async fn login_email_is_case_insensitive() {
    let app = spawn_app().await;
    app.login(" Student@TEST.com", "password123").await;
}

#[tokio::test]
async fn protected_route_without_token_returns_401() {
    let app = spawn_app().await;
    let resp = app.get("/api/v1/auth/me").await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Bearer realm="wemaster""#
    );
    let body = problem(resp, 401).await;
    assert_eq!(body["code"], "AUTH_TOKEN_INVALID");
}

#[tokio::test]
async fn tampered_token_returns_401() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    // Flip the payload to claim another role, keeping the old signature.
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
    claims["role"] = json!("ADMIN");
    parts[1] = engine.encode(serde_json::to_vec(&claims).unwrap());
    let forged = parts.join(".");
    problem(app.get_with_token("/api/v1/users", &forged).await, 401).await;
    problem(app.get_with_token("/api/v1/auth/me", "garbage").await, 401).await;
}

#[tokio::test]
async fn token_signed_with_another_secret_returns_401() {
    let a =
        spawn_app_with(|c| c.auth.jwt_secret = wemaster::config::Secret::new("a".repeat(32))).await;
    let b =
        spawn_app_with(|c| c.auth.jwt_secret = wemaster::config::Secret::new("b".repeat(32))).await;
    let token = a.token_of("student@test.com").await;
    assert_eq!(
        a.get_with_token("/api/v1/auth/me", &token).await.status(),
        200
    );
    problem(b.get_with_token("/api/v1/auth/me", &token).await, 401).await;
}

#[tokio::test]
async fn expired_access_token_returns_401() {
    let app = spawn_app_with(|c| c.auth.access_token_ttl_seconds = 10).await;
    let token = app.token_of("student@test.com").await;
    assert_eq!(
        app.get_with_token("/api/v1/auth/me", &token).await.status(),
        200
    );
    // The claims say 10 s, and a token expired by construction (signed
    // with the same generated secret) is refused.
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims: Value =
        serde_json::from_slice(&engine.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        10
    );
    for key in ["sub", "role", "iat", "exp", "iss", "aud", "jti"] {
        assert!(claims.get(key).is_some(), "claim {key}");
    }
    let secret: String = rusqlite::Connection::open(&app.db_path)
        .unwrap()
        .query_row(
            "SELECT value FROM settings WHERE key = 'jwt_secret'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut expired = claims.clone();
    expired["iat"] = json!(1_000_000_000u64);
    expired["exp"] = json!(1_000_000_010u64);
    let stale = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &expired,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let resp = app.get_with_token("/api/v1/auth/me", &stale).await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Bearer realm="wemaster", error="invalid_token", error_description="The access token expired""#
    );
    let body = problem(resp, 401).await;
    assert_eq!(body["code"], "AUTH_TOKEN_EXPIRED", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/api/v1/auth/refresh"),
        "{body}"
    );
    // A token this server never signed is invalid, not expired.
    let forged = format!("{}x", &token[..token.len() - 1]);
    let resp = app.get_with_token("/api/v1/auth/me", &forged).await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Bearer realm="wemaster", error="invalid_token""#
    );
    assert_eq!(problem(resp, 401).await["code"], "AUTH_TOKEN_INVALID");
    // No token at all: the bare challenge.
    let resp = app.get("/api/v1/auth/me").await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Bearer realm="wemaster""#
    );
    assert_eq!(problem(resp, 401).await["code"], "AUTH_TOKEN_INVALID");
    // The real token dies when the server's clock passes its lifetime.
    app.clock.advance(Duration::from_secs(10));
    let body = problem(app.get_with_token("/api/v1/auth/me", &token).await, 401).await;
    assert_eq!(body["code"], "AUTH_TOKEN_EXPIRED", "{body}");
}

#[tokio::test]
async fn generated_secret_survives_a_restart() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let dir = app.stop().await;
    let config = crate::helpers::test_config(dir.path());
    let again = crate::helpers::spawn_in(dir, config).await;
    assert_eq!(
        again
            .get_with_token("/api/v1/auth/me", &token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_stops_working() {
    let app = spawn_app().await;
    let session = app.login("student@test.com", "password123").await;
    let first = session["refreshToken"].as_str().unwrap();
    let resp = app
        .post_json("/api/v1/auth/refresh", &json!({"refreshToken": first}))
        .await;
    assert_eq!(resp.status(), 200);
    let rotated: Value = resp.json().await.unwrap();
    let second = rotated["refreshToken"].as_str().unwrap();
    assert_ne!(first, second);
    assert_eq!(rotated["user"]["email"], "student@test.com");
    let again = app
        .post_json("/api/v1/auth/refresh", &json!({"refreshToken": first}))
        .await;
    problem(again, 401).await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let session = app.login("student@test.com", "password123").await;
    let stolen = session["refreshToken"].as_str().unwrap().to_string();
    let legit: Value = app
        .post_json("/api/v1/auth/refresh", &json!({"refreshToken": stolen}))
        .await
        .json()
        .await
        .unwrap();
    let current = legit["refreshToken"].as_str().unwrap();
    // The thief replays the rotated token: refused, and the family dies.
    problem(
        app.post_json("/api/v1/auth/refresh", &json!({"refreshToken": stolen}))
            .await,
        401,
    )
    .await;
    problem(
        app.post_json("/api/v1/auth/refresh", &json!({"refreshToken": current}))
            .await,
        401,
    )
    .await;
    // Another login's family is untouched.
    let other = app.login("student@test.com", "password123").await;
    let resp = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refreshToken": other["refreshToken"]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn logout_ends_the_session_and_its_access_token_at_once() {
    let app = spawn_app().await;
    let session = app.login("student@test.com", "password123").await;
    let other = app.login("student@test.com", "password123").await;
    let access = session["accessToken"].as_str().unwrap();
    // Read once, so the session's liveness is cached before the logout.
    assert_eq!(
        app.get_with_token("/api/v1/auth/me", access).await.status(),
        200
    );
    let token = &session["refreshToken"];
    let resp = app
        .post_json("/api/v1/auth/logout", &json!({"refreshToken": token}))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let me = app.get_with_token("/api/v1/auth/me", access).await;
    assert_eq!(problem(me, 401).await["code"], "AUTH_TOKEN_INVALID");
    // The account's other session (another device) goes on.
    let other_access = other["accessToken"].as_str().unwrap();
    assert_eq!(
        app.get_with_token("/api/v1/auth/me", other_access)
            .await
            .status(),
        200
    );
    problem(
        app.post_json("/api/v1/auth/refresh", &json!({"refreshToken": token}))
            .await,
        401,
    )
    .await;
    // Logging out twice, or with nonsense, is still 204.
    let resp = app
        .post_json("/api/v1/auth/logout", &json!({"refreshToken": token}))
        .await;
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn forgot_password_answers_202_whether_or_not_the_account_exists() {
    let app = spawn_app().await;
    let known = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "student@test.com"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "ghost@test.com"}),
        )
        .await;
    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
}

async fn wait_for_reset_mail(app: &TestApp, recipient: &str) -> Value {
    app.mail_to(recipient, "PASSWORD_RESET").await
}

/// The `sha256-...` CSP source of an inline block's text.
fn csp_source(text: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The text between the first `open` and the `close` after it.
fn between<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    let start = html.find(open).unwrap_or_else(|| panic!("no {open}")) + open.len();
    let end = html[start..]
        .find(close)
        .unwrap_or_else(|| panic!("no {close}"));
    &html[start..start + end]
}

#[tokio::test]
async fn the_reset_link_opens_a_page_with_a_form() {
    let app = spawn_app().await;
    app.post_json(
        "/api/v1/auth/forgot-password",
        &json!({"email": "student@test.com"}),
    )
    .await;
    let mail = wait_for_reset_mail(&app, "student@test.com").await;
    let token = reset_token_from(&mail);
    // The default link names this server's own page, at its own address.
    let body = mail["body"].as_str().unwrap();
    assert!(
        body.contains(&format!("http://{}/reset-password?token=", app.addr)),
        "{body}"
    );
    let at = body.find("/reset-password?").expect("a reset link");
    let link = body[at..].split_whitespace().next().unwrap();

    let resp = app.get(link).await;

    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = resp.text().await.unwrap();
    assert!(html.contains("<form"), "{html}");
    assert!(html.contains("type=\"password\""), "{html}");
    assert!(html.contains(&format!("value=\"{token}\"")), "{html}");
    assert!(html.contains("/api/v1/auth/reset-password"), "{html}");
    // Its inline script and style are the ones its policy allows, and it
    // loads nothing from elsewhere.
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(
        csp.contains(&csp_source(between(&html, "<script>", "</script>"))),
        "{csp}"
    );
    assert!(
        csp.contains(&csp_source(between(&html, "<style>", "</style>"))),
        "{csp}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
}

#[tokio::test]
async fn the_reset_page_escapes_the_token_it_shows() {
    let app = spawn_app().await;
    let hostile = "x\"><script>alert(1)</script>";
    let resp = app
        .client
        .get(app.url("/reset-password"))
        .query(&[("token", hostile)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(!html.contains("x\">"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)"), "{html}");
}

#[tokio::test]
async fn reset_password_works_once_and_ends_every_session() {
    let app = spawn_app().await;
    let session = app.login("student@test.com", "password123").await;
    let access = session["accessToken"].as_str().unwrap().to_string();
    assert_eq!(app.draft_first_response(&access).await.status(), 201);
    app.post_json(
        "/api/v1/auth/forgot-password",
        &json!({"email": "student@test.com"}),
    )
    .await;
    let mail = wait_for_reset_mail(&app, "student@test.com").await;
    assert_eq!(mail["kind"], "PASSWORD_RESET");
    let token = reset_token_from(&mail);

    let resp = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "newPassword": "brand-new-secret"}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    // The old access token no longer drafts orders.
    let draft = app.draft_first_response(&access).await;
    assert_eq!(problem(draft, 401).await["code"], "AUTH_TOKEN_INVALID");
    // Old password out, new password in, old refresh tokens revoked.
    let old = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "student@test.com", "password": "password123"}),
        )
        .await;
    problem(old, 401).await;
    app.login("student@test.com", "brand-new-secret").await;
    problem(
        app.post_json(
            "/api/v1/auth/refresh",
            &json!({"refreshToken": session["refreshToken"]}),
        )
        .await,
        401,
    )
    .await;
    // Single use.
    let again = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "newPassword": "another-secret"}),
        )
        .await;
    let body = problem(again, 400).await;
    assert_eq!(body["code"], "RESET_TOKEN_INVALID");
}

#[tokio::test]
async fn expired_reset_token_is_refused() {
    let app = spawn_app_with(|c| c.auth.reset_token_ttl_seconds = 1).await;
    app.post_json(
        "/api/v1/auth/forgot-password",
        &json!({"email": "student1@test.com"}),
    )
    .await;
    let token = reset_token_from(&wait_for_reset_mail(&app, "student1@test.com").await);
    app.clock.advance(Duration::from_secs(1));
    let resp = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "newPassword": "brand-new-secret"}),
        )
        .await;
    problem(resp, 400).await;
    app.login("student1@test.com", "password123").await;
}

#[tokio::test]
async fn reset_with_a_short_new_password_is_400_and_keeps_the_token() {
    let app = spawn_app().await;
    app.post_json(
        "/api/v1/auth/forgot-password",
        &json!({"email": "student2@test.com"}),
    )
    .await;
    let token = reset_token_from(&wait_for_reset_mail(&app, "student2@test.com").await);
    let resp = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "newPassword": "short"}),
        )
        .await;
    problem(resp, 400).await;
    let resp = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "newPassword": "long-enough-now"}),
        )
        .await;
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn profile_alias_returns_the_same_user() {
    let app = spawn_app().await;
    let token = app.token_of("tutor@test.com").await;
    let me: Value = app
        .get_with_token("/api/v1/auth/me", &token)
        .await
        .json()
        .await
        .unwrap();
    let profile: Value = app
        .get_with_token("/api/v1/users/profile", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me, profile);
    assert_eq!(me["role"], "TUTOR");
    for key in ["id", "email", "name", "role", "createdAt"] {
        assert!(me.get(key).is_some(), "{key}");
    }
}

#[tokio::test]
async fn student_calling_an_admin_route_gets_403() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let body = problem(app.get_with_token("/api/v1/users", &token).await, 403).await;
    assert_eq!(body["code"], "FORBIDDEN");
    problem(
        app.get_with_token("/api/v1/admin/outbox", &token).await,
        403,
    )
    .await;
}

#[tokio::test]
async fn admin_lists_users_with_filters_and_paging() {
    let app = spawn_app().await;
    let token = app.token_of("admin@test.com").await;
    let resp = app
        .get_with_token("/api/v1/users?role=STUDENT&limit=2&page=2", &token)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-total-count"], "6");
    let link = resp.headers()["link"].to_str().unwrap().to_string();
    assert!(link.contains("rel=\"next\""), "{link}");
    assert!(link.contains("role=STUDENT"), "{link}");
    let users: Value = resp.json().await.unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["role"] == "STUDENT")
    );

    let resp = app
        .get_with_token("/api/v1/users?q=TUTOR%40test", &token)
        .await;
    let users: Value = resp.json().await.unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["email"], "tutor@test.com");

    let body = problem(
        app.get_with_token("/api/v1/users?limit=101", &token).await,
        400,
    )
    .await;
    assert_eq!(body["field"], "limit");
    problem(
        app.get_with_token("/api/v1/users?role=ROOT", &token).await,
        400,
    )
    .await;
}

#[tokio::test]
async fn login_works_with_production_argon2_parameters() {
    let app = spawn_app_with(|c| {
        let d = wemaster::config::AuthConfig::default();
        c.auth.argon2_memory_kib = d.argon2_memory_kib;
        c.auth.argon2_iterations = d.argon2_iterations;
        c.auth.argon2_parallelism = d.argon2_parallelism;
        c.demo.seed_on_empty = false;
    })
    .await;
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "p@example.com", "password": "production"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let hash: String = rusqlite::Connection::open(&app.db_path)
        .unwrap()
        .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    app.login("p@example.com", "production").await;
}

#[tokio::test]
async fn a_full_hashing_queue_answers_503_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.auth.hash_concurrency = 1;
        c.auth.hash_queue_timeout_ms = 1;
        // Slow hashes so the queue is surely full.
        c.auth.argon2_memory_kib = 65_536;
        c.auth.argon2_iterations = 3;
    })
    .await;
    let body = json!({"email": "student@test.com", "password": "password123"});
    let logins = (0..6).map(|_| app.post_json("/api/v1/auth/login", &body));
    let responses = futures::future::join_all(logins).await;
    let unavailable: Vec<_> = responses
        .into_iter()
        .filter(|r| r.status() == 503)
        .collect();
    assert!(!unavailable.is_empty(), "some logins must be turned away");
    for resp in unavailable {
        assert_eq!(resp.headers()["retry-after"], "1");
        problem(resp, 503).await;
    }
}

#[test]
fn user_create_reads_the_password_from_env_never_argv() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("WEMASTER_DATABASE__PATH", "w.db"),
        ("WEMASTER_DEMO__SEED_ON_EMPTY", "false"),
        ("WEMASTER_NEW_PASSWORD", "root-password-1"),
        ("WEMASTER_AUTH__ARGON2_MEMORY_KIB", "64"),
        ("WEMASTER_AUTH__ARGON2_ITERATIONS", "1"),
    ];
    let (status, stdout, stderr) = crate::helpers::run_binary(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "Root@Example.com",
            "--role",
            "ADMIN",
        ],
        &env,
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(
        stdout.contains("created ADMIN account root@example.com"),
        "{stdout}"
    );
    let role: String = rusqlite::Connection::open(dir.path().join("w.db"))
        .unwrap()
        .query_row(
            "SELECT role FROM users WHERE email = 'root@example.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(role, "ADMIN");
    // The role is taken in any case.
    let (status, stdout, stderr) = crate::helpers::run_binary(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "t@example.com",
            "--role",
            "tutor",
        ],
        &env,
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(stdout.contains("created TUTOR account"), "{stdout}");
    // There is no flag to pass a password on the command line.
    let (status, _, _) = crate::helpers::run_binary(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "x@example.com",
            "--password",
            "oops-oops",
        ],
        &env,
    );
    assert_eq!(status, 2);
}

#[tokio::test]
async fn user_create_reads_a_piped_password_and_refuses_an_empty_one() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("WEMASTER_DATABASE__PATH", app.db_path.to_str().unwrap()),
        ("WEMASTER_AUTH__ARGON2_MEMORY_KIB", "64"),
        ("WEMASTER_AUTH__ARGON2_ITERATIONS", "1"),
    ];
    let args = [
        "user",
        "create",
        "--email",
        "piped@example.com",
        "--role",
        "TUTOR",
    ];

    // Nothing on stdin, or an empty line: no password, said as much.
    for input in ["", "\n"] {
        let (status, _, stderr) =
            crate::helpers::run_binary_with_input(dir.path(), &args, &env, input);
        assert_eq!(status, 1, "{input:?}: {stderr}");
        assert!(stderr.contains("no password given"), "{input:?}: {stderr}");
        assert!(!stderr.contains("8 to 128"), "{input:?}: {stderr}");
    }

    // A script pipes the password in; the account signs in with it.
    let (status, stdout, stderr) =
        crate::helpers::run_binary_with_input(dir.path(), &args, &env, "piped-password-1\n");
    assert_eq!(status, 0, "{stderr}");
    assert!(!stdout.contains("piped-password-1"), "{stdout}");
    assert!(
        stdout.contains("created TUTOR account piped@example.com"),
        "{stdout}"
    );
    let session = app.login("piped@example.com", "piped-password-1").await;
    assert_eq!(session["user"]["role"], "TUTOR");
}

#[tokio::test]
async fn a_demoted_or_deleted_account_loses_its_powers_before_its_token_expires() {
    let app = spawn_app_with(|c| c.auth.session_recheck_seconds = 1).await;
    let admin = app.token_of("admin@test.com").await;
    assert_eq!(
        app.get_with_token("/api/v1/admin/reconciliation", &admin)
            .await
            .status(),
        200
    );
    let student = app.token_of("student2@test.com").await;
    assert_eq!(
        app.get_with_token("/api/v1/auth/me", &student)
            .await
            .status(),
        200
    );
    // Changed outside the API, by hand: seen within the recheck period.
    let db = rusqlite::Connection::open(&app.db_path).unwrap();
    db.execute(
        "UPDATE users SET role = 'STUDENT' WHERE email = 'admin@test.com'",
        [],
    )
    .unwrap();
    db.execute("DELETE FROM enrollments WHERE user_id IN (SELECT id FROM users WHERE email = 'student2@test.com')", [])
        .unwrap();
    db.execute("DELETE FROM users WHERE email = 'student2@test.com'", [])
        .unwrap();
    app.clock.advance(Duration::from_secs(1));
    let refused = app
        .get_with_token("/api/v1/admin/reconciliation", &admin)
        .await;
    assert_eq!(problem(refused, 403).await["code"], "FORBIDDEN");
    let gone = app.get_with_token("/api/v1/auth/me", &student).await;
    assert_eq!(problem(gone, 401).await["code"], "AUTH_TOKEN_INVALID");
}
