//! What the virtual users do: the original platform's five scenarios, the
//! single-endpoint loops of the `max` profile and the `/livez` ceiling.
//!
//! Each scenario is a goose transaction, so goose reports it on its own
//! (iterations, failures, run time) next to the per-endpoint request figures.
//! A request that answers 2xx with the wrong body is marked failed with
//! `set_failure`; a non-2xx answer is failed by goose itself, except a
//! draft's 409 `SOLD_OUT` (a class filled up: the true answer, which a
//! buyer sees too). Nothing is retried or hidden: an endpoint that is not
//! there yet shows up as 404s.
//!
//! No request carries a forwarding header. By default every user connects
//! from 127.0.0.1, as the users of one school or office reach the server from
//! one address; with `--per-user-addresses` each user binds its connections to
//! its own loopback address instead ([`source_address`]).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use goose::goose::GooseResponse;
use goose::metrics::GooseRequestMetric;
use goose::prelude::*;
use hmac::{Hmac, Mac};
use reqwest::RequestBuilder;
use serde_json::{Value, json};
use sha2::Sha256;

pub const LOGIN: &str = "/api/v1/auth/login";
pub const OFFERINGS: &str = "/api/v1/offerings";
/// The name every `GET /api/v1/offerings/<slug>` is reported under.
pub const OFFERING: &str = "/api/v1/offerings/{slug}";
pub const ORDER_DRAFT: &str = "/api/v1/orders/draft";
pub const ORDERS: &str = "/api/v1/orders";
pub const WEBHOOK: &str = "/api/v1/payments/webhooks/stripe";
pub const LIVEZ: &str = "/livez";

/// Transaction names of the original's five scenarios, as reported.
pub const CATALOGUE_BROWSE: &str = "catalogue browse";
pub const LOGIN_SCENARIO: &str = "login";
pub const ORDER_SCENARIO: &str = "order";
pub const PAYMENT_WEBHOOK: &str = "payment webhook";
pub const RECONCILIATION: &str = "reconciliation";

/// The accounts the original load test logs in with (demo data, API.md).
pub const ACCOUNTS: [(&str, &str); 3] = [
    ("student@test.com", "password123"),
    ("tutor@test.com", "password123"),
    ("admin@test.com", "admin123"),
];

/// Drafted orders a user keeps for its webhooks; older ones are dropped.
const KEPT_DRAFTS: usize = 16;

/// A request slower than this fails (and is counted).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// What goose's own clients send; a user's replacement client sends the same.
const USER_AGENT: &str = "goose/0.19.0";

/// The secret the server verifies webhook signatures with, from the bench config.
static WEBHOOK_SECRET: OnceLock<String> = OnceLock::new();
/// Which phase of the run is going, from 0: with per-user addresses, the
/// second octet of every user's address is this plus one, so one phase's
/// users never share an address with another's, nor with 127.0.0.1.
static PHASE: AtomicU8 = AtomicU8::new(0);
/// Whether each user connects from its own loopback address (`--per-user-addresses`).
static PER_USER_ADDRESSES: AtomicBool = AtomicBool::new(false);
/// Accounts the users sign in as instead of [`ACCOUNTS`]: user `i` always as
/// account `i` modulo their number, as each person has their own.
static ACCOUNT_POOL: OnceLock<Vec<(String, String)>> = OnceLock::new();

pub fn set_webhook_secret(secret: &str) {
    // Set once per process; a second call (there is none) would keep the first.
    let _ = WEBHOOK_SECRET.set(secret.to_owned());
}

pub fn set_phase(phase: u8) {
    PHASE.store(phase, Ordering::Relaxed);
}

pub fn set_per_user_addresses(on: bool) {
    PER_USER_ADDRESSES.store(on, Ordering::Relaxed);
}

pub fn set_account_pool(accounts: Vec<(String, String)>) {
    // Set once per process, like the webhook secret.
    let _ = ACCOUNT_POOL.set(accounts);
}

/// What one phase's users run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The original mix, weights 3/2/2/1/1, sleeping between scenarios when
    /// `sleep` is set (uniformly, bounds inclusive).
    Mix { sleep: Option<(Duration, Duration)> },
    /// `GET /api/v1/offerings` in a closed loop.
    CatalogueList,
    /// `POST /api/v1/orders/draft` in a closed loop, after one login.
    OrderDraft,
    /// The same, only of variants with a capacity (seats held, a buyer's
    /// earlier hold replaced).
    OrderDraftLimited,
    /// The same, only of variants without a capacity.
    OrderDraftUnlimited,
    /// `POST /api/v1/auth/login` in a closed loop.
    Login,
    /// `GET /livez` in a closed loop: the framework's own ceiling.
    Livez,
}

impl Flow {
    /// The scenario names that must each succeed at least once (smoke).
    pub fn scenario_names(self) -> &'static [&'static str] {
        match self {
            Flow::Mix { .. } => &[
                CATALOGUE_BROWSE,
                LOGIN_SCENARIO,
                ORDER_SCENARIO,
                PAYMENT_WEBHOOK,
                RECONCILIATION,
            ],
            Flow::CatalogueList => &["catalogue list"],
            Flow::OrderDraft | Flow::OrderDraftLimited | Flow::OrderDraftUnlimited => {
                &["order draft"]
            }
            Flow::Login => &[LOGIN_SCENARIO],
            Flow::Livez => &["livez"],
        }
    }

    /// The endpoints this flow calls, as reported ("METHOD name").
    pub fn endpoints(self) -> &'static [&'static str] {
        match self {
            Flow::Mix { .. } => &[
                "GET /api/v1/offerings",
                "GET /api/v1/offerings/{slug}",
                "POST /api/v1/auth/login",
                "POST /api/v1/orders/draft",
                "POST /api/v1/payments/webhooks/stripe",
                "GET /api/v1/orders",
            ],
            Flow::CatalogueList => &["GET /api/v1/offerings"],
            Flow::OrderDraft | Flow::OrderDraftLimited | Flow::OrderDraftUnlimited => {
                &["POST /api/v1/orders/draft"]
            }
            Flow::Login => &["POST /api/v1/auth/login"],
            Flow::Livez => &["GET /livez"],
        }
    }

    /// The goose scenario that runs this flow.
    pub fn scenario(self) -> Result<Scenario, GooseError> {
        Ok(match self {
            Flow::Mix { sleep } => {
                let scenario = scenario!("original mix")
                    .register_transaction(transaction!(setup).set_name("setup").set_on_start())
                    .register_transaction(
                        transaction!(catalogue_browse)
                            .set_name(CATALOGUE_BROWSE)
                            .set_weight(3)?,
                    )
                    .register_transaction(
                        transaction!(login).set_name(LOGIN_SCENARIO).set_weight(2)?,
                    )
                    .register_transaction(
                        transaction!(order).set_name(ORDER_SCENARIO).set_weight(2)?,
                    )
                    .register_transaction(transaction!(payment_webhook).set_name(PAYMENT_WEBHOOK))
                    .register_transaction(transaction!(reconciliation).set_name(RECONCILIATION));
                match sleep {
                    Some((min, max)) => scenario.set_wait_time(min, max)?,
                    None => scenario,
                }
            }
            Flow::CatalogueList => scenario!("max catalogue list")
                .register_transaction(transaction!(catalogue_list).set_name("catalogue list")),
            Flow::OrderDraft => scenario!("max order draft")
                .register_transaction(transaction!(order_setup).set_name("setup").set_on_start())
                .register_transaction(transaction!(order_draft).set_name("order draft")),
            Flow::OrderDraftLimited => scenario!("max order draft, limited")
                .register_transaction(transaction!(order_setup).set_name("setup").set_on_start())
                .register_transaction(transaction!(order_draft_limited).set_name("order draft")),
            Flow::OrderDraftUnlimited => scenario!("max order draft, unlimited")
                .register_transaction(transaction!(order_setup).set_name("setup").set_on_start())
                .register_transaction(transaction!(order_draft_unlimited).set_name("order draft")),
            Flow::Login => scenario!("max login")
                .register_transaction(transaction!(login).set_name(LOGIN_SCENARIO)),
            Flow::Livez => {
                scenario!("ceiling").register_transaction(transaction!(livez).set_name("livez"))
            }
        })
    }
}

/// What a virtual user remembers between scenarios.
#[derive(Clone, Default)]
struct Session {
    /// Whether this user's client has been replaced by one bound to its own
    /// source address (only with per-user addresses).
    bound: bool,
    /// The access token of this user's latest successful login.
    token: Option<String>,
    /// The catalogue as this user last listed it.
    offerings: Arc<[Offering]>,
    /// Orders this user drafted and has not yet paid, oldest first.
    drafted: Vec<DraftedOrder>,
}

/// The fields of a listed offering that the flows need.
#[derive(Debug, Clone)]
struct Offering {
    id: String,
    slug: String,
    /// `variants[0].id`: the original orders the first variant.
    variant_id: String,
    /// `variants[0].seatsLeft` when listed: 0 means sold out.
    seats_left: Option<i64>,
}

impl Offering {
    fn from_json(item: &Value) -> Option<Offering> {
        Some(Offering {
            id: item.get("id")?.as_str()?.to_owned(),
            slug: item.get("slug")?.as_str()?.to_owned(),
            variant_id: item
                .get("variants")?
                .get(0)?
                .get("id")?
                .as_str()?
                .to_owned(),
            seats_left: item
                .get("variants")?
                .get(0)?
                .get("seatsLeft")
                .and_then(Value::as_i64),
        })
    }
}

/// An order this user drafted: what its payment event must carry.
#[derive(Debug, Clone)]
struct DraftedOrder {
    id: String,
    amount: i64,
    currency: String,
}

/// The loopback address user `user_index` of phase `phase` (from 0) connects
/// from with per-user addresses: 127.<phase+1>.<hi>.<lo>, distinct for the
/// first 65,535 users of a phase. All of 127.0.0.0/8 is local on Linux, so
/// the kernel accepts any of them as a source address.
pub fn source_address(phase: u8, user_index: usize) -> Ipv4Addr {
    let n = user_index + 1;
    Ipv4Addr::new(
        127,
        phase.saturating_add(1),
        ((n >> 8) & 0xff) as u8,
        (n & 0xff) as u8,
    )
}

/// The `Stripe-Signature` header for `payload` sent at `timestamp`:
/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<payload>")>`.
pub fn stripe_signature(secret: &str, timestamp: u64, payload: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn session(user: &mut GooseUser) -> &mut Session {
    if user.get_session_data::<Session>().is_none() {
        user.set_session_data(Session::default());
    }
    user.get_session_data_unchecked_mut::<Session>()
}

/// With per-user addresses, replaces this user's client, before its first
/// request, by one whose connections leave from the user's own loopback
/// address; otherwise keeps goose's client, which connects from 127.0.0.1.
/// The replacement has goose's settings: gzip, the request timeout, no cookies.
async fn bind(user: &mut GooseUser) -> Result<(), Box<TransactionError>> {
    if !PER_USER_ADDRESSES.load(Ordering::Relaxed) || session(user).bound {
        return Ok(());
    }
    let address = source_address(PHASE.load(Ordering::Relaxed), user.weighted_users_index);
    let builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .gzip(true)
        .timeout(REQUEST_TIMEOUT)
        .local_address(IpAddr::V4(address));
    user.set_client_builder(builder).await.map_err(Box::new)?;
    session(user).bound = true;
    Ok(())
}

/// A transaction error that is not about one request's answer.
fn custom(message: &str) -> Box<TransactionError> {
    Box::new(TransactionError::Custom(message.to_owned()))
}

/// Marks a request that answered 2xx as failed, for `why`.
fn fail(
    user: &mut GooseUser,
    why: &str,
    request: &mut GooseRequestMetric,
    body: Option<&str>,
) -> Box<TransactionError> {
    match user.set_failure(why, request, None, body) {
        Err(error) => error,
        Ok(()) => custom(why),
    }
}

/// Sends one request from this user, reported as `METHOD name`.
async fn send(
    user: &mut GooseUser,
    method: GooseMethod,
    path: &str,
    name: &str,
    build: impl FnOnce(RequestBuilder) -> RequestBuilder,
) -> Result<GooseResponse, Box<TransactionError>> {
    bind(user).await?;
    let builder = build(user.get_request_builder(&method, path)?);
    let request = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(name)
        .set_request_builder(builder)
        .build();
    user.request(request).await
}

/// Reads the whole body, so the connection is reused. A non-2xx status fails
/// the scenario (goose has counted the request as failed already); a 401 also
/// forgets the token so that the next scenario logs in again.
async fn read(
    user: &mut GooseUser,
    goose: GooseResponse,
) -> Result<(GooseRequestMetric, u16, String), Box<TransactionError>> {
    let (request, status, text) = read_any(user, goose).await?;
    judge(user, request, status, text)
}

/// Reads the whole body whatever the status.
async fn read_any(
    user: &mut GooseUser,
    goose: GooseResponse,
) -> Result<(GooseRequestMetric, u16, String), Box<TransactionError>> {
    let GooseResponse {
        mut request,
        response,
    } = goose;
    let response = response.map_err(|error| Box::new(TransactionError::Reqwest(error)))?;
    let status = response.status().as_u16();
    match response.text().await {
        Ok(text) => Ok((request, status, text)),
        Err(error) => {
            let why = format!("reading the body: {error}");
            Err(fail(user, &why, &mut request, None))
        }
    }
}

/// The answer when it is 2xx; otherwise the scenario fails.
fn judge(
    user: &mut GooseUser,
    request: GooseRequestMetric,
    status: u16,
    text: String,
) -> Result<(GooseRequestMetric, u16, String), Box<TransactionError>> {
    if (200..300).contains(&status) {
        return Ok((request, status, text));
    }
    if status == 401 {
        session(user).token = None;
    }
    Err(Box::new(TransactionError::RequestFailed {
        raw_request: Box::new(request),
    }))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// `GET /api/v1/offerings`: must be a JSON array. Remembers what it listed.
async fn list_offerings(user: &mut GooseUser) -> Result<Arc<[Offering]>, Box<TransactionError>> {
    let goose = send(user, GooseMethod::Get, OFFERINGS, OFFERINGS, |b| b).await?;
    let (mut request, _, text) = read(user, goose).await?;
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text) else {
        return Err(fail(
            user,
            "GET /offerings: not a JSON array",
            &mut request,
            Some(&text),
        ));
    };
    let offerings: Arc<[Offering]> = items.iter().filter_map(Offering::from_json).collect();
    session(user).offerings = offerings.clone();
    Ok(offerings)
}

/// Logs in as a random one of the original's three accounts, or as this
/// user's own account of the pool, and keeps the token. A sign-in the
/// server's cores cannot hash in time is shed with 503 `OVERLOADED` and
/// `Retry-After`: the machine's limit said honestly, so the request is not
/// counted failed (its 503 is still counted, as shed), only the scenario.
async fn log_in(user: &mut GooseUser) -> TransactionResult {
    let (email, password) = match ACCOUNT_POOL.get() {
        Some(pool) if !pool.is_empty() => {
            let (email, password) = &pool[user.weighted_users_index % pool.len()];
            (email.as_str(), password.as_str())
        }
        _ => ACCOUNTS[rand::random_range(0..ACCOUNTS.len())],
    };
    let body = json!({ "email": email, "password": password });
    let goose = send(user, GooseMethod::Post, LOGIN, LOGIN, |b| b.json(&body)).await?;
    let (mut request, status, text) = read_any(user, goose).await?;
    if status == 503 && text.contains("\"OVERLOADED\"") {
        user.set_success(&mut request)?;
        return Err(custom("POST /auth/login: shed, 503 OVERLOADED"));
    }
    let (mut request, _, text) = judge(user, request, status, text)?;
    let token = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| Some(v.get("accessToken")?.as_str()?.to_owned()));
    match token {
        Some(token) => {
            session(user).token = Some(token);
            Ok(())
        }
        None => Err(fail(
            user,
            "POST /auth/login: no accessToken",
            &mut request,
            Some(&text),
        )),
    }
}

/// This user's token, logging in first when it has none (as the original's
/// order scenario needs a token from an earlier login).
async fn token(user: &mut GooseUser) -> Result<String, Box<TransactionError>> {
    if session(user).token.is_none() {
        log_in(user).await?;
    }
    Ok(session(user).token.clone().unwrap_or_default())
}

/// `POST /api/v1/orders/draft` for the first variant of a random listed
/// offering that is not sold out, as a buyer would pick; needs 200/201 and
/// a checkoutUrl or id, or 409 `SOLD_OUT` when the last seats went between
/// the listing and the draft (the bench pays orders, so classes with a
/// capacity fill up). Keeps the order for a webhook.
async fn draft_order(user: &mut GooseUser, offerings: &[Offering]) -> TransactionResult {
    let token = token(user).await?;
    let open: Vec<&Offering> = offerings
        .iter()
        .filter(|o| o.seats_left != Some(0))
        .collect();
    if open.is_empty() {
        // Nothing to send: pause, so that a closed loop of users that all
        // find nothing does not spin without yielding and starve the
        // runtime (goose could then never end the phase).
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Err(custom(
            "GET /offerings: no offering with id, slug and variants[0].id and seats left",
        ));
    }
    let offering = open[rand::random_range(0..open.len())];
    let body = json!({
        "offeringId": offering.id,
        "variantId": offering.variant_id,
        "quantity": 1,
    });
    let goose = send(user, GooseMethod::Post, ORDER_DRAFT, ORDER_DRAFT, |b| {
        b.bearer_auth(&token).json(&body)
    })
    .await?;
    let (mut request, status, text) = read(user, goose).await?;
    if status == 409 && text.contains("\"SOLD_OUT\"") {
        // A true answer, not a failure: goose fails every non-2xx itself.
        return user.set_success(&mut request);
    }
    if !matches!(status, 200 | 201) {
        let why = format!("POST /orders/draft: status {status}, not 200 or 201");
        return Err(fail(user, &why, &mut request, Some(&text)));
    }
    let order = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
    let id = order
        .get("id")
        .or_else(|| order.get("orderId"))
        .and_then(Value::as_str);
    let checkout_url = order.get("checkoutUrl").and_then(Value::as_str);
    if id.is_none() && checkout_url.is_none() {
        return Err(fail(
            user,
            "POST /orders/draft: neither checkoutUrl nor id",
            &mut request,
            Some(&text),
        ));
    }
    if let (Some(id), Some(amount), Some(currency)) = (
        id,
        order.get("amount").and_then(Value::as_i64),
        order.get("currency").and_then(Value::as_str),
    ) {
        let drafted = &mut session(user).drafted;
        if drafted.len() >= KEPT_DRAFTS {
            drafted.remove(0);
        }
        drafted.push(DraftedOrder {
            id: id.to_owned(),
            amount,
            currency: currency.to_owned(),
        });
    }
    Ok(())
}

/// On start: log in, so the order and reconciliation scenarios have a token.
async fn setup(user: &mut GooseUser) -> TransactionResult {
    token(user).await.map(|_| ())
}

/// Catalogue browse (weight 3): list, which must be an array, then the first
/// offering by slug.
async fn catalogue_browse(user: &mut GooseUser) -> TransactionResult {
    let offerings = list_offerings(user).await?;
    let Some(first) = offerings.first() else {
        return Err(custom(
            "GET /offerings: no offering with id, slug and variants[0].id",
        ));
    };
    let path = format!("{OFFERINGS}/{}", first.slug);
    let goose = send(user, GooseMethod::Get, &path, OFFERING, |b| b).await?;
    let (mut request, _, text) = read(user, goose).await?;
    let slug = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| Some(v.get("slug")?.as_str()?.to_owned()));
    if slug.as_deref() != Some(first.slug.as_str()) {
        return Err(fail(
            user,
            "GET /offerings/{slug}: not the offering asked for",
            &mut request,
            Some(&text),
        ));
    }
    Ok(())
}

/// Login (weight 2): a random account of the three; 200 and an accessToken.
async fn login(user: &mut GooseUser) -> TransactionResult {
    log_in(user).await
}

/// Order (weight 2): list the catalogue, then draft an order.
async fn order(user: &mut GooseUser) -> TransactionResult {
    token(user).await?;
    let offerings = list_offerings(user).await?;
    draft_order(user, &offerings).await
}

/// Payment webhook (weight 1): a signed `payment_intent.succeeded` for an
/// order this user drafted (drafting one first when it has none), with that
/// order's amount and currency and a new event id every time.
async fn payment_webhook(user: &mut GooseUser) -> TransactionResult {
    if session(user).drafted.is_empty() {
        let known = session(user).offerings.clone();
        let offerings = if known.is_empty() {
            list_offerings(user).await?
        } else {
            known
        };
        draft_order(user, &offerings).await?;
    }
    let Some(order) = session(user).drafted.pop() else {
        return Err(custom(
            "POST /orders/draft: the order has no id, amount and currency to pay",
        ));
    };
    let created = unix_now();
    let event = json!({
        "id": format!("evt_bench_{:032x}", rand::random::<u128>()),
        "type": "payment_intent.succeeded",
        "created": created,
        "data": {
            "object": {
                "id": format!("pi_bench_{:032x}", rand::random::<u128>()),
                "object": "payment_intent",
                "amount": order.amount,
                "currency": order.currency,
                "status": "succeeded",
                "metadata": { "orderId": order.id },
            }
        }
    });
    let payload = event.to_string();
    let secret = WEBHOOK_SECRET.get().map_or("", String::as_str);
    let signature = stripe_signature(secret, created, &payload);
    let goose = send(user, GooseMethod::Post, WEBHOOK, WEBHOOK, move |b| {
        b.header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(payload)
    })
    .await?;
    let (mut request, _, text) = read(user, goose).await?;
    let received = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("received")?.as_bool());
    if received != Some(true) {
        return Err(fail(
            user,
            "POST /payments/webhooks/stripe: not {received: true}",
            &mut request,
            Some(&text),
        ));
    }
    Ok(())
}

/// Reconciliation (weight 1): the user's own orders, 200.
async fn reconciliation(user: &mut GooseUser) -> TransactionResult {
    let token = token(user).await?;
    let goose = send(user, GooseMethod::Get, ORDERS, ORDERS, |b| {
        b.bearer_auth(&token)
    })
    .await?;
    let (mut request, status, text) = read(user, goose).await?;
    if status != 200 {
        let why = format!("GET /orders: status {status}, not 200");
        return Err(fail(user, &why, &mut request, Some(&text)));
    }
    Ok(())
}

/// Max: the catalogue list alone. Only the first byte is checked, to spend
/// the shared cores on the server rather than on parsing.
async fn catalogue_list(user: &mut GooseUser) -> TransactionResult {
    let goose = send(user, GooseMethod::Get, OFFERINGS, OFFERINGS, |b| b).await?;
    let (mut request, _, text) = read(user, goose).await?;
    if !text.trim_start().starts_with('[') {
        return Err(fail(
            user,
            "GET /offerings: not a JSON array",
            &mut request,
            Some(&text),
        ));
    }
    Ok(())
}

/// Max order drafts, on start: a token and the catalogue.
async fn order_setup(user: &mut GooseUser) -> TransactionResult {
    token(user).await?;
    list_offerings(user).await.map(|_| ())
}

/// Max: order drafts alone. Lists the catalogue again only while it has none,
/// so a failing setup still sends requests rather than spinning.
async fn order_draft(user: &mut GooseUser) -> TransactionResult {
    order_draft_of(user, |_| true).await
}

/// Drafts of variants with a capacity only.
async fn order_draft_limited(user: &mut GooseUser) -> TransactionResult {
    order_draft_of(user, |o| o.seats_left.is_some()).await
}

/// Drafts of variants without a capacity only.
async fn order_draft_unlimited(user: &mut GooseUser) -> TransactionResult {
    order_draft_of(user, |o| o.seats_left.is_none()).await
}

async fn order_draft_of(user: &mut GooseUser, keep: fn(&Offering) -> bool) -> TransactionResult {
    let known = session(user).offerings.clone();
    let offerings = if known.is_empty() {
        list_offerings(user).await?
    } else {
        known
    };
    let chosen: Vec<Offering> = offerings.iter().filter(|o| keep(o)).cloned().collect();
    draft_order(user, &chosen).await
}

/// The ceiling: `GET /livez`, which touches nothing.
async fn livez(user: &mut GooseUser) -> TransactionResult {
    let goose = send(user, GooseMethod::Get, LIVEZ, LIVEZ, |b| b).await?;
    read(user, goose).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_payload() {
        // Computed independently: printf '1700000000.{"id":"evt_1"}' |
        // openssl dgst -sha256 -hmac whsec_test
        let header = stripe_signature("whsec_test", 1_700_000_000, r#"{"id":"evt_1"}"#);
        assert_eq!(
            header,
            "t=1700000000,v1=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
        );
    }

    #[test]
    fn every_user_of_a_phase_has_its_own_loopback_address() {
        assert_eq!(source_address(0, 0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(source_address(1, 99), Ipv4Addr::new(127, 2, 0, 100));
        assert_eq!(source_address(0, 299), Ipv4Addr::new(127, 1, 1, 44));
        assert!(source_address(3, 65_534).is_loopback());
    }
}
