//! Mail against a real SMTP server: aiosmtpd (from PyPI, pinned in
//! tests/tools/requirements.txt, installed into tests/tools/.venv on first
//! use) on a loopback port, writing every message it accepts into a
//! Maildir that the tests read and parse as a mail client would.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mail_parser::{Message, MessageParser};
use serde_json::{Value, json};

use crate::helpers::{
    self, TestApp, binary_command, spawn_app, spawn_app_with, spawn_in, test_config,
};
use wemaster::config::{Config, MailTransport, Secret};

/// The Python of tests/tools/.venv, with aiosmtpd; made on first use.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools");
        let venv = tools.join(".venv");
        let python = venv.join("bin/python");
        let ready = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ready {
            let made = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .expect("python3 -m venv runs");
            assert!(made.success(), "python3 -m venv failed");
            let installed = Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(tools.join("requirements.txt"))
                .status()
                .expect("pip runs");
            assert!(
                installed.success(),
                "pip install -r tests/tools/requirements.txt failed"
            );
        }
        python
    })
}

/// A free loopback port (free when asked; the tests start their SMTP
/// server on it later, as a relay that comes back).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// aiosmtpd listening on `port`, keeping what it accepts in `maildir`.
struct SmtpServer {
    child: Child,
    maildir: PathBuf,
}

impl SmtpServer {
    fn start(port: u16, folder: &Path) -> Self {
        // aiosmtpd makes the Maildir (cur, new, tmp) only where no folder is.
        let maildir = folder.join("maildir");
        let child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, maildir }
    }

    /// The raw messages accepted so far.
    fn messages(&self) -> Vec<Vec<u8>> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect()
    }

    /// Waits until `count` messages arrived, then a little longer, and
    /// returns them all (so a duplicate shows).
    async fn wait_for(&self, count: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.messages().len() < count {
            assert!(
                Instant::now() < deadline,
                "{} of {count} messages arrived",
                self.messages().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        self.messages()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse(raw: &[u8]) -> Message<'_> {
    MessageParser::default().parse(raw).expect("a MIME message")
}

fn to_of(message: &Message<'_>) -> String {
    message
        .to()
        .and_then(|to| to.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string()
}

fn text_of(message: &Message<'_>) -> String {
    message.body_text(0).expect("a text part").into_owned()
}

fn html_of(message: &Message<'_>) -> String {
    message.body_html(0).expect("an HTML part").into_owned()
}

/// The token of the first link in a text.
fn token_in(text: &str) -> String {
    let at = text.find("token=").expect("a link with a token") + "token=".len();
    text[at..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap()
        .to_string()
}

/// The test configuration, delivering to an SMTP server on `port`, with
/// retries a second apart.
fn smtp_config(config: &mut Config, port: u16) {
    config.mail.transport = MailTransport::Smtp;
    config.mail.smtp_url = Secret::new(format!("smtp://127.0.0.1:{port}"));
    config.mail.from = "WeMaster <no-reply@wemaster.test>".into();
    config.mail.retry_base_seconds = 1;
    config.mail.retry_max_seconds = 1;
}

/// The admin outbox's messages in `status`, newest first.
async fn outbox(app: &TestApp, admin: &str, status: &str) -> Value {
    app.get_with_token(&format!("/api/v1/admin/outbox?status={status}"), admin)
        .await
        .json()
        .await
        .unwrap()
}

/// A server set to deliver to a relay on a free port, which the test
/// starts when it wants the relay up (`smtp`).
struct Relayed {
    app: TestApp,
    port: u16,
    folder: tempfile::TempDir,
}

impl Relayed {
    async fn spawn(adjust: impl FnOnce(&mut Config)) -> Self {
        let port = free_port();
        let app = spawn_app_with(|c| {
            smtp_config(c, port);
            adjust(c);
        })
        .await;
        Self {
            app,
            port,
            folder: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts the relay: aiosmtpd on the configured port.
    fn smtp(&self) -> SmtpServer {
        SmtpServer::start(self.port, self.folder.path())
    }
}

async fn forgot(app: &TestApp, email: &str) -> Duration {
    let started = Instant::now();
    let resp = app
        .post_json("/api/v1/auth/forgot-password", &json!({ "email": email }))
        .await;
    assert_eq!(resp.status(), 202);
    started.elapsed()
}

/// Drafts the first offering for `email` and pays it through the dev
/// provider's checkout page, as a buyer's browser does.
async fn buy_first(app: &TestApp, email: &str) -> Value {
    let token = app.token_of(email).await;
    let order = app.draft_first(&token).await;
    let checkout = order["checkoutUrl"].as_str().unwrap();
    let paid = app
        .client
        .post(format!("{checkout}/pay"))
        .send()
        .await
        .unwrap();
    assert!(paid.status().is_success() || paid.status().is_redirection());
    order
}

#[tokio::test]
async fn the_reset_link_arrives_over_smtp_and_works() {
    let relayed = Relayed::spawn(|_| {}).await;
    let (app, smtp) = (&relayed.app, relayed.smtp());

    forgot(app, "student@test.com").await;

    let messages = smtp.wait_for(1).await;
    assert_eq!(messages.len(), 1);
    let mail = parse(&messages[0]);
    assert_eq!(to_of(&mail), "student@test.com");
    assert_eq!(mail.subject(), Some("Reset your WeMaster password"));
    let from = mail.from().and_then(|f| f.first()).unwrap();
    assert_eq!(from.address(), Some("no-reply@wemaster.test"));
    assert!(
        mail.message_id().unwrap().ends_with("@wemaster.test"),
        "{:?}",
        mail.message_id()
    );
    let token = token_in(&text_of(&mail));
    assert_eq!(token, token_in(&html_of(&mail)));
    let resp = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "newPassword": "a-brand-new-secret"}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    app.login("student@test.com", "a-brand-new-secret").await;

    let admin = app.token_of("admin@test.com").await;
    let sent = outbox(app, &admin, "SENT").await;
    assert_eq!(sent[0]["kind"], "PASSWORD_RESET");
    assert_eq!(sent[0]["attempts"], 1);
    assert!(sent[0]["sentAt"].is_string());
    // Once sent, no copy of the live token stays behind: not in the
    // outbox, not in the database (nor its backups and replicas).
    assert!(!sent[0]["body"].as_str().unwrap().contains(&token));
    let kept: String =
        app.value("SELECT data || coalesce(body, '') FROM mail WHERE kind = 'PASSWORD_RESET'");
    assert!(!kept.contains(&token), "{kept}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        // One recorder serves every test in this process: at least this one.
        metrics.contains(r#"wemaster_mail_messages_total{kind="PASSWORD_RESET",outcome="SENT"} "#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_purchase_mails_the_student_a_receipt_and_the_tutor_a_sale_notice() {
    let relayed = Relayed::spawn(|_| {}).await;
    let (app, smtp) = (&relayed.app, relayed.smtp());

    let order = buy_first(app, "student@test.com").await;

    let messages = smtp.wait_for(2).await;
    assert_eq!(messages.len(), 2, "a receipt and a sale notice");
    let parsed: Vec<Message<'_>> = messages.iter().map(|m| parse(m)).collect();
    let receipt = parsed
        .iter()
        .find(|m| to_of(m) == "student@test.com")
        .expect("a receipt to the student");
    let notice = parsed
        .iter()
        .find(|m| to_of(m) != "student@test.com")
        .expect("a sale notice to the tutor");
    let title = order["items"][0]["title"].as_str().unwrap();
    let offering = title.split(" - ").next().unwrap();
    let order_id = order["id"].as_str().unwrap();
    for mail in [receipt, notice] {
        let text = text_of(mail);
        assert!(text.contains(offering), "{text}");
        assert!(text.contains(order_id), "{text}");
        assert!(mail.subject().unwrap().contains(offering));
    }
    let amount = order["amount"].as_i64().unwrap();
    let currency = order["currency"].as_str().unwrap();
    let shown = format!("{}.{:02} {currency}", amount / 100, amount % 100);
    assert!(text_of(receipt).contains(&shown), "{}", text_of(receipt));
    assert!(
        receipt
            .subject()
            .unwrap()
            .starts_with("Your WeMaster receipt"),
        "{:?}",
        receipt.subject()
    );
    assert!(notice.subject().unwrap().starts_with("You made a sale"));
}

#[tokio::test]
async fn mail_asked_for_while_the_smtp_server_is_down_arrives_once_when_it_returns() {
    let relayed = Relayed::spawn(|c| c.mail.degraded_after_seconds = 1).await;
    let app = &relayed.app;

    let answered_in = forgot(app, "student@test.com").await;
    assert!(answered_in < Duration::from_secs(5), "{answered_in:?}");

    // Tried, failed, waiting: visible to the admin and to /healthz.
    let admin = app.token_of("admin@test.com").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let queued = outbox(app, &admin, "QUEUED").await;
        let health: Value = app.get("/healthz").await.json().await.unwrap();
        if queued[0]["attempts"].as_u64().unwrap_or(0) >= 2
            && health["services"]["mail"]["status"] == "degraded"
        {
            assert!(queued[0]["lastError"].is_string(), "{queued}");
            assert_eq!(health["services"]["mail"]["queued"], 1);
            break;
        }
        assert!(Instant::now() < deadline, "{queued} {health}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let smtp = relayed.smtp();
    let messages = smtp.wait_for(1).await;
    assert_eq!(messages.len(), 1, "delivered exactly once");
    assert_eq!(to_of(&parse(&messages[0])), "student@test.com");
}

#[tokio::test]
async fn a_message_given_up_is_shown_dead_and_an_admin_can_send_it_again() {
    let relayed = Relayed::spawn(|c| c.mail.max_attempts = 1).await;
    let app = &relayed.app;
    forgot(app, "student@test.com").await;
    let admin = app.token_of("admin@test.com").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let dead = outbox(app, &admin, "DEAD").await;
        if let Some(message) = dead.as_array().unwrap().first() {
            break message.clone();
        }
        assert!(Instant::now() < deadline, "never given up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(dead["lastError"].is_string());
    let id = dead["id"].as_str().unwrap();

    let smtp = relayed.smtp();
    let resent = app
        .post_as(
            &admin,
            &format!("/api/v1/admin/outbox/{id}/resend"),
            &json!({}),
        )
        .await;
    assert_eq!(resent.status(), 200);
    let messages = smtp.wait_for(1).await;
    assert_eq!(messages.len(), 1);

    // Only a dead message goes again.
    let again = app
        .post_as(
            &admin,
            &format!("/api/v1/admin/outbox/{id}/resend"),
            &json!({}),
        )
        .await;
    assert_eq!(
        crate::helpers::problem(again, 409).await["code"],
        "NOT_DEAD"
    );
    let audit: Value = app
        .get_with_token("/api/v1/admin/audit", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["action"], "mail.resend");
}

#[tokio::test]
async fn a_mail_asked_for_just_before_kill_9_arrives_once_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let serve = |port: u16| {
        binary_command(
            dir.path(),
            &[],
            &[
                ("WEMASTER_SERVER__ADDR", &format!("127.0.0.1:{port}")),
                ("WEMASTER_METRICS__ADDR", "127.0.0.1:0"),
                ("WEMASTER_AUTH__ARGON2_MEMORY_KIB", "64"),
                ("WEMASTER_AUTH__ARGON2_ITERATIONS", "1"),
                ("WEMASTER_MAIL__TRANSPORT", "smtp"),
                (
                    "WEMASTER_MAIL__SMTP_URL",
                    &format!("smtp://127.0.0.1:{smtp_port}"),
                ),
                ("WEMASTER_MAIL__FROM", "WeMaster <no-reply@wemaster.test>"),
                ("WEMASTER_MAIL__RETRY_BASE_SECONDS", "1"),
                ("WEMASTER_MAIL__RETRY_MAX_SECONDS", "1"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts")
    };
    let client = reqwest::Client::new();
    let ready = |port: u16| {
        let client = client.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let url = format!("http://127.0.0.1:{port}/readyz");
                if client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
                {
                    return;
                }
                assert!(Instant::now() < deadline, "the server never got ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    // The relay is down: the message can only be in the queue when the
    // process dies.
    let port = free_port();
    let mut first = serve(port);
    ready(port).await;
    let resp = client
        .post(format!(
            "http://127.0.0.1:{port}/api/v1/auth/forgot-password"
        ))
        .json(&json!({"email": "student@test.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let db = dir.path().join("data/wemaster.db");
    let deadline = Instant::now() + Duration::from_secs(10);
    while queued_resets(&db) == 0 {
        assert!(Instant::now() < deadline, "nothing queued");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    let smtp = SmtpServer::start(smtp_port, maildir.path());
    let port = free_port();
    let mut second = serve(port);
    ready(port).await;
    let messages = smtp.wait_for(1).await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(
        messages.len(),
        1,
        "delivered exactly once after the restart"
    );
    assert_eq!(to_of(&parse(&messages[0])), "student@test.com");
}

fn queued_resets(db: &Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return 0;
    };
    conn.query_row(
        "SELECT count(*) FROM mail WHERE kind = 'PASSWORD_RESET'",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

#[tokio::test]
async fn a_hostile_offering_title_is_escaped_in_the_html_part() {
    let relayed = Relayed::spawn(|_| {}).await;
    let (app, smtp) = (&relayed.app, relayed.smtp());
    let tutor = app.token_of("tutor@test.com").await;
    let hostile = r#"<img src=x onerror="alert(1)"> & Co"#;
    let offering = app
        .published(
            &tutor,
            &json!({
                "type": "RECORDED",
                "title": hostile,
                "variants": [{"name": "<b>Standard</b>", "price": 1500, "currency": "USD"}],
            }),
        )
        .await;
    let student = app.token_of("student@test.com").await;
    let resp = app
        .draft(
            &student,
            &json!({"items": [{"offeringId": offering["id"], "quantity": 1}]}),
            None,
        )
        .await;
    assert_eq!(resp.status(), 201);
    let order: Value = resp.json().await.unwrap();
    app.client
        .post(format!("{}/pay", order["checkoutUrl"].as_str().unwrap()))
        .send()
        .await
        .unwrap();

    let messages = smtp.wait_for(2).await;
    for raw in &messages {
        let mail = parse(raw);
        let html = html_of(&mail);
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>Standard"), "{html}");
        assert!(html.contains("&lt;img src=x onerror="), "{html}");
        // The plain part shows the title as written; the subject too, on one line.
        assert!(text_of(&mail).contains(hostile));
        assert!(mail.subject().unwrap().contains(hostile));
    }
}

#[tokio::test]
async fn sign_up_mails_a_verification_link_that_verifies_the_address() {
    let app = spawn_app_with(|c| c.orders.require_verified_email = true).await;
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "new@test.com", "password": "password123", "name": "New"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let session: Value = resp.json().await.unwrap();
    assert_eq!(session["user"]["emailVerified"], false);
    assert_eq!(session["user"]["locale"], "en");
    let token = session["accessToken"].as_str().unwrap();

    // Unverified: no purchase while the setting asks for a verified address.
    let refused = app.draft_first_response(token).await;
    assert_eq!(
        crate::helpers::problem(refused, 403).await["code"],
        "EMAIL_NOT_VERIFIED"
    );

    // The outbox transport (the default) keeps the mail for admins.
    let mail = app.mail_to("new@test.com", "VERIFY_EMAIL").await;
    assert_eq!(mail["status"], "KEPT");
    let link_token = token_in(mail["body"].as_str().unwrap());
    let verified = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": link_token}))
        .await;
    assert_eq!(verified.status(), 204);
    let me: Value = app
        .get_with_token("/api/v1/auth/me", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["emailVerified"], true);
    assert_eq!(app.draft_first_response(token).await.status(), 201);

    // Once only; and nothing more to verify.
    let again = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": link_token}))
        .await;
    assert_eq!(
        crate::helpers::problem(again, 400).await["code"],
        "VERIFY_TOKEN_INVALID"
    );
    let resend = app
        .post_as(token, "/api/v1/auth/resend-verification", &json!({}))
        .await;
    assert_eq!(
        crate::helpers::problem(resend, 409).await["code"],
        "EMAIL_ALREADY_VERIFIED"
    );
}

#[tokio::test]
async fn the_verification_page_verifies_only_when_its_button_is_pressed() {
    let app = crate::helpers::spawn_app().await;
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "page@test.com", "password": "password123"}),
        )
        .await;
    let session: Value = resp.json().await.unwrap();
    let token = session["accessToken"].as_str().unwrap();
    let mail = app.mail_to("page@test.com", "VERIFY_EMAIL").await;
    let link = mail["body"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap()
        .to_string();
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    assert_eq!(
        verified(&app, token).await,
        false,
        "opening the link changes nothing"
    );
    let pressed = app
        .client
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", token_in(&link)))
        .send()
        .await
        .unwrap();
    assert_eq!(pressed.status(), 200);
    assert_eq!(verified(&app, token).await, true);
}

async fn verified(app: &TestApp, token: &str) -> Value {
    let me: Value = app
        .get_with_token("/api/v1/auth/me", token)
        .await
        .json()
        .await
        .unwrap();
    me["emailVerified"].clone()
}

#[tokio::test]
async fn mail_is_written_in_the_account_s_language() {
    let app = crate::helpers::spawn_app().await;
    let resp = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.8")
        .json(&json!({"email": "li@test.com", "password": "password123", "name": "李雷"}))
        .send()
        .await
        .unwrap();
    let session: Value = resp.json().await.unwrap();
    assert_eq!(session["user"]["locale"], "zh-CN");
    let mail = app.mail_to("li@test.com", "VERIFY_EMAIL").await;
    assert_eq!(mail["locale"], "zh-CN");
    assert!(mail["subject"].as_str().unwrap().contains("邮箱"), "{mail}");
    assert!(
        mail["body"].as_str().unwrap().starts_with("李雷，您好"),
        "{mail}"
    );
}

#[tokio::test]
async fn nobody_can_mail_bomb_an_address_through_password_resets() {
    let app = spawn_app_with(|c| c.mail.per_recipient_per_hour = 3).await;
    for _ in 0..6 {
        forgot(&app, "student@test.com").await;
    }
    // The resets run after their answers; give them time to land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queued: i64 = app.value("SELECT count(*) FROM mail WHERE kind = 'PASSWORD_RESET'");
    assert_eq!(queued, 3);
    assert_eq!(app.count("password_resets"), 3, "no token without its mail");
}

#[tokio::test]
async fn a_refund_mails_the_student_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let app = spawn_in(dir, config).await;
    let order = buy_first(&app, "student@test.com").await;
    let admin = app.token_of("admin@test.com").await;
    let resp = app
        .post_as(
            &admin,
            &format!(
                "/api/v1/admin/orders/{}/refund",
                order["id"].as_str().unwrap()
            ),
            &json!({"reason": "asked by the student"}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let notice = app.mail_to("student@test.com", "REFUND_NOTICE").await;
    assert!(
        notice["body"]
            .as_str()
            .unwrap()
            .contains(order["id"].as_str().unwrap())
    );
}

#[tokio::test]
async fn mail_is_dkim_signed_when_a_key_is_configured() {
    use base64::Engine;
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("dkim.key");
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8 * 7 + 1);
    std::fs::write(&key, base64::engine::general_purpose::STANDARD.encode(seed)).unwrap();
    let relayed = Relayed::spawn(|c| {
        c.mail.dkim_selector = "wm2026".into();
        c.mail.dkim_key_file = key.clone();
    })
    .await;
    let (app, smtp) = (&relayed.app, relayed.smtp());
    forgot(app, "student@test.com").await;
    let messages = smtp.wait_for(1).await;
    let raw = String::from_utf8_lossy(&messages[0]);
    let signature = raw
        .lines()
        .find(|l| l.starts_with("DKIM-Signature:"))
        .unwrap_or_else(|| panic!("no DKIM-Signature in {raw}"));
    assert!(signature.contains("s=wm2026"), "{signature}");
    assert!(signature.contains("d=wemaster.test"), "{signature}");
}

#[tokio::test]
async fn finished_mail_older_than_keep_days_is_deleted_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.mail.keep_days = 30;
    let app = spawn_in(dir, config.clone()).await;
    let db = app.db_path.clone();
    let dir = app.stop().await;
    // `due`: when a QUEUED one would be tried (never, here).
    let insert = |id: &str, status: &str, created: &str, due: &str| {
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute(
                "INSERT INTO mail (id, kind, recipient, locale, data, status, next_attempt_at,
                                   created_at, queued_at)
                 VALUES (?1, 'RECEIPT', 'a@test.com', 'en', '{}', ?2, ?4, ?3, ?3)",
                rusqlite::params![id, status, created, due],
            )
            .unwrap();
    };
    let long_ago = "2020-01-01T00:00:00.000Z";
    let never = "2999-01-01T00:00:00.000Z";
    insert("old-sent", "SENT", long_ago, long_ago);
    insert("old-dead", "DEAD", long_ago, long_ago);
    // Still to be sent: never deleted, however old.
    insert("old-queued", "QUEUED", long_ago, never);
    let now = wemaster::clock::Clock::system().stamp();
    insert("new-sent", "SENT", &now, &now);

    let app = spawn_in(dir, config).await;
    let ids = || -> Vec<String> {
        let conn = rusqlite::Connection::open(&app.db_path).unwrap();
        let mut stmt = conn.prepare("SELECT id FROM mail ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while ids().contains(&"old-sent".to_string()) {
        assert!(Instant::now() < deadline, "{:?}", ids());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ids(), ["new-sent", "old-queued"]);
}

/// The bodies of the refund notices queued for `recipient` (empty until rendered).
async fn refund_notices(app: &TestApp, recipient: &str) -> Vec<String> {
    let admin = app.token_of("admin@test.com").await;
    let mails: Value = app
        .get_with_token("/api/v1/admin/outbox?limit=100", &admin)
        .await
        .json()
        .await
        .unwrap();
    mails
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["recipient"] == recipient && m["kind"] == "REFUND_NOTICE")
        .map(|m| m["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_partial_refund_made_at_the_provider_mails_the_buyer_what_went_back_once() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let (amount, currency) = (
        order["amount"].as_i64().unwrap(),
        order["currency"].as_str().unwrap(),
    );
    app.deliver(&helpers::completed("evt_mail_partial_pay", &order))
        .await;
    let (first, in_all) = (amount / 5, amount / 2);
    // Refunded in the provider's dashboard: the charge says how much went
    // back in all. The same total again (a second event for one refund)
    // tells nothing new; a larger one tells the difference.
    for (event, refunded) in [
        ("evt_mail_p1", first),
        ("evt_mail_p2", first),
        ("evt_mail_p3", in_all),
    ] {
        let ack = app
            .deliver(&helpers::refund_by_intent(event, &order, refunded))
            .await;
        assert_eq!(ack["outcome"], "PARTIAL_REFUND", "{ack}");
    }
    assert_eq!(
        app.order(&token, order["id"].as_str().unwrap()).await["status"],
        "PAID"
    );
    // Bodies appear once the worker has rendered them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut notices = refund_notices(&app, "student@test.com").await;
    while notices.iter().any(String::is_empty) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        notices = refund_notices(&app, "student@test.com").await;
    }
    let money = |minor: i64| wemaster::orders::mail::money(minor, currency);
    assert_eq!(notices.len(), 2, "{notices:?}");
    for part in [first, in_all - first] {
        assert!(
            notices.iter().any(|body| body.contains(&money(part))),
            "no notice of {}: {notices:?}",
            money(part)
        );
    }
}

#[tokio::test]
async fn a_partial_refund_that_came_before_its_payment_is_mailed_when_the_payment_arrives() {
    let app = spawn_app().await;
    let token = app.token_of("student@test.com").await;
    let order = app.draft_first(&token).await;
    let currency = order["currency"].as_str().unwrap();
    let part = order["amount"].as_i64().unwrap() / 3;
    let ack = app
        .deliver(&helpers::refund_by_intent("evt_mail_early", &order, part))
        .await;
    assert_eq!(ack["outcome"], "REFUND_BEFORE_PAYMENT", "{ack}");
    app.deliver(&helpers::completed("evt_mail_early_pay", &order))
        .await;
    assert_eq!(
        app.order(&token, order["id"].as_str().unwrap()).await["status"],
        "PAID"
    );
    let notice = app.mail_to("student@test.com", "REFUND_NOTICE").await;
    let money = wemaster::orders::mail::money(part, currency);
    assert!(
        notice["body"].as_str().unwrap().contains(&money),
        "{notice}"
    );
    assert_eq!(refund_notices(&app, "student@test.com").await.len(), 1);
}
