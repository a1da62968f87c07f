//! The catalogue: list filters, sorts, paging, search, visibility, ETags,
//! management, validation and read-after-write freshness through the cache.

use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};

async fn list(app: &TestApp, query: &str) -> (reqwest::header::HeaderMap, Vec<Value>) {
    let resp = app.get(&format!("/api/v1/offerings{query}")).await;
    assert_eq!(resp.status(), 200, "{query}");
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap();
    (headers, body.as_array().expect("bare array").clone())
}

fn slugs(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|o| o["slug"].as_str().unwrap().to_string())
        .collect()
}

fn new_offering(title: &str) -> Value {
    json!({
        "type": "ONE_ON_ONE",
        "title": title,
        "summary": "A test offering",
        "category": "testing",
        "tags": ["Alpha", "beta"],
        "level": "BEGINNER",
        "language": "en",
        "variants": [
            {"name": "Single", "price": 2500, "currency": "USD", "durationMinutes": 60, "isDefault": true},
            {"name": "Pack of five", "price": 11000, "currency": "usd", "sessions": 5}
        ]
    })
}

impl TestApp {
    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates an offering as `token`'s owner and returns it.
    async fn create_offering(&self, token: &str, body: &Value) -> Value {
        let resp = self
            .send_json(reqwest::Method::POST, "/api/v1/offerings", token, body)
            .await;
        assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
        resp.json().await.unwrap()
    }

    async fn publish(&self, token: &str, id: &str) -> reqwest::Response {
        self.send_json(
            reqwest::Method::POST,
            &format!("/api/v1/offerings/{id}/publish"),
            token,
            &json!({}),
        )
        .await
    }
}

#[tokio::test]
async fn list_is_a_bare_array_of_published_offerings_with_variants() {
    let app = spawn_app().await;
    let (headers, items) = list(&app, "").await;
    assert_eq!(items.len(), 20, "default page size");
    assert_eq!(headers["x-total-count"], "24");
    assert!(items.iter().all(|o| o["status"] == "PUBLISHED"));
    for o in &items {
        let variants = o["variants"].as_array().unwrap();
        assert!(!variants.is_empty());
        assert!(variants[0]["id"].is_string());
        assert_eq!(
            variants.iter().filter(|v| v["isDefault"] == true).count(),
            1
        );
        assert!(o["priceFrom"]["amount"].is_i64());
        assert!(o["tutor"]["name"].is_string());
    }
    assert!(!slugs(&items).contains(&"draft-advanced-rust-async".to_string()));
}

#[tokio::test]
async fn paging_headers_and_links_follow_the_github_style() {
    let app = spawn_app().await;
    let (headers, items) = list(&app, "?page=2&limit=3&type=RECORDED").await;
    let total: usize = headers["x-total-count"].to_str().unwrap().parse().unwrap();
    assert!(total > 6, "the fixtures hold three pages or more");
    assert_eq!(items.len(), 3);
    let link = headers["link"].to_str().unwrap();
    for rel in ["first", "prev", "next", "last"] {
        assert!(link.contains(&format!("rel=\"{rel}\"")), "{rel} in {link}");
    }
    assert!(link.contains("type=RECORDED"), "{link}");
    assert!(link.contains("page=3&limit=3"), "{link}");
    let (_, first_page) = list(&app, "?page=1&limit=3&type=RECORDED").await;
    let overlap = slugs(&first_page).iter().any(|s| slugs(&items).contains(s));
    assert!(!overlap, "pages do not overlap");
    let (headers, items) = list(&app, "?page=99").await;
    assert!(items.is_empty());
    assert_eq!(headers["x-total-count"], "24");
}

#[tokio::test]
async fn filters_narrow_the_list() {
    let app = spawn_app().await;
    let (_, items) = list(&app, "?type=TRIAL&limit=100").await;
    assert!(items.len() >= 3);
    assert!(items.iter().all(|o| o["type"] == "TRIAL"));
    let (_, items) = list(&app, "?tag=data&limit=100").await;
    assert!(items.len() >= 3);
    assert!(
        items
            .iter()
            .all(|o| o["tags"].as_array().unwrap().contains(&json!("data")))
    );
    let (_, items) = list(&app, "?category=Music&limit=100").await;
    assert_eq!(items.len(), 3);
    let tutor = items[0]["tutor"]["id"].as_str().unwrap().to_string();
    let (_, items) = list(&app, &format!("?tutorId={tutor}&limit=100")).await;
    assert!(!items.is_empty());
    assert!(items.iter().all(|o| o["tutor"]["id"] == tutor.as_str()));
    let (headers, items) = list(&app, "?type=GROUP&tag=nope").await;
    assert!(items.is_empty());
    assert_eq!(headers["x-total-count"], "0");
}

#[tokio::test]
async fn sorts_order_the_list() {
    let app = spawn_app().await;
    let prices = |items: &[Value]| -> Vec<i64> {
        items
            .iter()
            .map(|o| o["priceFrom"]["amount"].as_i64().unwrap())
            .collect()
    };
    let (_, items) = list(&app, "?sort=price&limit=100").await;
    let p = prices(&items);
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
    let (_, items) = list(&app, "?sort=-price&limit=100").await;
    let p = prices(&items);
    assert!(p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
    let (_, items) = list(&app, "?sort=title&limit=100").await;
    let titles: Vec<String> = items
        .iter()
        .map(|o| o["title"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(titles.windows(2).all(|w| w[0] <= w[1]), "{titles:?}");
    let (_, newest) = list(&app, "?limit=100").await;
    let (_, oldest) = list(&app, "?sort=createdAt&limit=100").await;
    let mut reversed = slugs(&oldest);
    reversed.reverse();
    assert_eq!(slugs(&newest), reversed);
    let created: Vec<&str> = newest
        .iter()
        .map(|o| o["createdAt"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]));
}

#[tokio::test]
async fn search_ranks_title_matches_first() {
    let app = spawn_app().await;
    let (headers, items) = list(&app, "?q=python").await;
    let found = slugs(&items);
    // "Python for Absolute Beginners" has it in the title; "Machine Learning
    // Foundations" only as a tag.
    assert_eq!(found[0], "python-for-absolute-beginners", "{found:?}");
    assert!(
        found.contains(&"machine-learning-foundations".to_string()),
        "{found:?}"
    );
    assert_eq!(headers["x-total-count"], found.len().to_string().as_str());
    // Prefix search on the last word, every word required.
    let (_, items) = list(&app, "?q=japanese%20pronun").await;
    assert_eq!(slugs(&items), vec!["trial-lesson-japanese-pronunciation"]);
    // A search can still be sorted and filtered.
    let (_, items) = list(&app, "?q=trial&type=TRIAL&sort=price").await;
    assert!(items.len() >= 2 && items.iter().all(|o| o["type"] == "TRIAL"));
}

#[tokio::test]
async fn odd_search_queries_never_error() {
    let app = spawn_app().await;
    for q in [
        "%22",
        "*",
        "(",
        ")",
        "NEAR(a%20b)",
        "a%20OR%20b",
        "-python",
        "python*",
        "%22unterminated",
        "%F0%9F%A6%80",
        "c%2B%2B",
        "%27%3B%20DROP%20TABLE%20offerings%3B--",
        "AND",
        "%5E",
    ] {
        let resp = app.get(&format!("/api/v1/offerings?q={q}")).await;
        assert_eq!(resp.status(), 200, "q={q}");
        let _: Vec<Value> = resp.json().await.unwrap();
    }
    let (_, items) = list(&app, "?q=%22python%22").await;
    assert!(
        !items.is_empty(),
        "quotes are ignored, the word still matches"
    );
}

#[tokio::test]
async fn bad_list_parameters_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("page=0", "page"),
        ("limit=abc", "limit"),
        ("sort=bogus", "sort"),
        ("type=WEBINAR", "type"),
        ("sort=relevance", "sort"),
    ] {
        let body = problem(app.get(&format!("/api/v1/offerings?{query}")).await, 400).await;
        assert_eq!(body["field"], field, "{query}: {body}");
        assert_eq!(body["code"], "VALIDATION_ERROR");
    }
    // An enumeration parameter lists what it allows.
    let body = problem(app.get("/api/v1/offerings?type=WEBINAR").await, 400).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("type must be one of") && detail.contains("\"GROUP\""),
        "{body}"
    );
}

#[tokio::test]
async fn detail_by_slug_with_etag_and_304() {
    let app = spawn_app().await;
    let resp = app
        .get("/api/v1/offerings/python-for-absolute-beginners")
        .await;
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["title"], "Python for Absolute Beginners");
    let again = app
        .client
        .get(app.url("/api/v1/offerings/python-for-absolute-beginners"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = app
        .client
        .get(app.url("/api/v1/offerings/python-for-absolute-beginners"))
        .header("if-none-match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    // Lists have ETags too.
    let resp = app.get("/api/v1/offerings?type=GROUP").await;
    let etag = resp.headers()["etag"].clone();
    let again = app
        .client
        .get(app.url("/api/v1/offerings?type=GROUP"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn unknown_draft_and_archived_offerings_are_404_to_the_public() {
    let app = spawn_app().await;
    let body = problem(app.get("/api/v1/offerings/no-such-thing").await, 404).await;
    assert_eq!(body["code"], "NOT_FOUND");
    problem(
        app.get("/api/v1/offerings/draft-advanced-rust-async").await,
        404,
    )
    .await;
    let student = app.token_of("student@test.com").await;
    problem(
        app.get_with_token("/api/v1/offerings/draft-advanced-rust-async", &student)
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn owner_and_admin_see_drafts_privately() {
    let app = spawn_app().await;
    for email in ["tutor@test.com", "admin@test.com"] {
        let token = app.token_of(email).await;
        let resp = app
            .get_with_token("/api/v1/offerings/draft-advanced-rust-async", &token)
            .await;
        assert_eq!(resp.status(), 200, "{email}");
        assert_eq!(resp.headers()["cache-control"], "private, no-cache");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "DRAFT");
    }
    // Another tutor does not.
    let other = app.token_of("maria.lopez@test.com").await;
    problem(
        app.get_with_token("/api/v1/offerings/draft-advanced-rust-async", &other)
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn tutor_creates_a_draft_with_a_slug_from_the_title() {
    let app = spawn_app().await;
    let tutor = app.token_of("tutor@test.com").await;
    let created = app
        .create_offering(&tutor, &new_offering("Café Crème: Français!"))
        .await;
    assert_eq!(created["slug"], "cafe-creme-francais");
    assert_eq!(created["status"], "DRAFT");
    assert_eq!(created["tags"], json!(["alpha", "beta"]));
    assert_eq!(created["variants"][0]["currency"], "usd");
    assert_eq!(
        created["priceFrom"],
        json!({"amount": 2500, "currency": "usd"})
    );
    assert!(created.get("publishedAt").is_none());
    // Same title again: a unique slug.
    let second = app
        .create_offering(&tutor, &new_offering("Café Crème: Français!"))
        .await;
    assert_eq!(second["slug"], "cafe-creme-francais-2");
    // An explicit slug that is taken is a conflict.
    let mut body = new_offering("Anything");
    body["slug"] = json!("cafe-creme-francais");
    let resp = app
        .send_json(reqwest::Method::POST, "/api/v1/offerings", &tutor, &body)
        .await;
    let problem_body = problem(resp, 409).await;
    assert_eq!(problem_body["field"], "slug");
}

#[tokio::test]
async fn students_cannot_create_and_tutors_cannot_touch_others_offerings() {
    let app = spawn_app().await;
    let student = app.token_of("student@test.com").await;
    let resp = app
        .send_json(
            reqwest::Method::POST,
            "/api/v1/offerings",
            &student,
            &new_offering("Nope"),
        )
        .await;
    problem(resp, 403).await;
    problem(
        app.post_json("/api/v1/offerings", &new_offering("Nope"))
            .await,
        401,
    )
    .await;

    let tutor = app.token_of("tutor@test.com").await;
    let mine = app.create_offering(&tutor, &new_offering("Mine")).await;
    let other = app.token_of("maria.lopez@test.com").await;
    let id = mine["id"].as_str().unwrap();
    let resp = app
        .send_json(
            reqwest::Method::PATCH,
            &format!("/api/v1/offerings/{id}"),
            &other,
            &json!({"title": "Stolen"}),
        )
        .await;
    problem(resp, 403).await;
    problem(app.publish(&other, id).await, 403).await;
    // A tutor cannot create on behalf of another tutor; an admin can.
    let mut body = new_offering("On behalf");
    body["tutorId"] = mine["tutor"]["id"].clone();
    let resp = app
        .send_json(reqwest::Method::POST, "/api/v1/offerings", &other, &body)
        .await;
    problem(resp, 403).await;
    let admin = app.token_of("admin@test.com").await;
    let created = app.create_offering(&admin, &body).await;
    assert_eq!(created["tutor"]["id"], mine["tutor"]["id"]);
    // Admin may patch anyone's offering.
    let resp = app
        .send_json(
            reqwest::Method::PATCH,
            &format!("/api/v1/offerings/{id}"),
            &admin,
            &json!({"title": "Renamed"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    problem(app.publish(&admin, "no-such-id").await, 404).await;
}

/// Offering patches that break a rule, and the field each one names.
fn invalid_patches() -> Vec<(Value, &'static str)> {
    vec![
        (json!({"title": ""}), "title"),
        (json!({"title": "   "}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"variants": []}), "variants"),
        (
            json!({"variants": [{"name": "a", "price": -1, "currency": "usd"}]}),
            "variants[0].price",
        ),
        (
            json!({"variants": [{"name": "a", "price": 100_000_001i64, "currency": "usd"}]}),
            "variants[0].price",
        ),
        (
            json!({"variants": [{"name": "a", "price": 100, "currency": "xyz"}]}),
            "variants[0].currency",
        ),
        (
            json!({"variants": [{"name": "a", "price": 100, "currency": "usd", "isDefault": true},
                              {"name": "b", "price": 100, "currency": "usd", "isDefault": true}]}),
            "variants",
        ),
        (
            json!({"variants": [{"name": "a", "price": 100, "currency": "usd"},
                              {"name": "b", "price": 100, "currency": "usd"}]}),
            "variants",
        ),
        (
            json!({"variants": [{"name": "a", "price": 100, "currency": "usd", "isDefault": true},
                              {"name": "b", "price": 100, "currency": "eur"}]}),
            "variants",
        ),
        (json!({"slug": "Bad Slug"}), "slug"),
        (json!({"thumbnail": "javascript:alert(1)"}), "thumbnail"),
        (json!({"language": "english"}), "language"),
        (json!({"tags": ["ok", ""]}), "tags[1]"),
        // Only invisible characters: zero-width, bidi controls, a filler.
        (
            json!({"title": "\u{200b}\u{202e}\u{2066}\u{200d}"}),
            "title",
        ),
        (json!({"title": " \u{3164}\u{feff} "}), "title"),
        (
            json!({"variants": [{"name": "\u{2060}\u{200f}", "price": 100, "currency": "usd"}]}),
            "variants[0].name",
        ),
        // A value outside an enumeration names its field, not a Rust type.
        (json!({"level": "WIZARD"}), "level"),
    ]
}

#[tokio::test]
async fn invalid_offerings_are_400_naming_the_field() {
    let app = spawn_app().await;
    let tutor = app.token_of("tutor@test.com").await;
    let cases = invalid_patches();
    for (patch, field) in cases {
        let mut body = new_offering("Valid title");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let resp = app
            .send_json(reqwest::Method::POST, "/api/v1/offerings", &tutor, &body)
            .await;
        let status = resp.status().as_u16();
        let body = problem(resp, status).await;
        assert_eq!(status, 400, "{field}: {body}");
        // Checks the server makes name the full path; checks the schema
        // validator makes name the property.
        let named = body["field"].as_str().unwrap_or_default();
        assert!(
            !named.is_empty() && field.ends_with(named),
            "{field}: {body}"
        );
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(!detail.contains("optional_"), "{field}: {body}");
    }
    // The enumeration's allowed values are spelled out.
    let mut wizard = new_offering("Valid title");
    wizard["type"] = json!("PODCAST");
    let resp = app
        .send_json(reqwest::Method::POST, "/api/v1/offerings", &tutor, &wizard)
        .await;
    let body = problem(resp, 400).await;
    assert_eq!(body["field"], "type", "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"ONE_ON_ONE\"") && detail.contains("got \"PODCAST\""),
        "{body}"
    );
    // Letters from any script, and symbols, are visible.
    let mut unicode = new_offering("  Ελληνικά για αρχάριους \u{200b}");
    unicode["variants"][0]["name"] = json!("🎸");
    let created = app.create_offering(&tutor, &unicode).await;
    assert_eq!(created["title"], "Ελληνικά για αρχάριους");
    let resp = app
        .send_json(
            reqwest::Method::POST,
            "/api/v1/offerings",
            &tutor,
            &json!({"type": "PODCAST", "title": "x"}),
        )
        .await;
    problem(resp, 400).await;
    // A number or boolean is not text, even where it could be printed as one.
    for patch in [
        json!({"title": 2024}),
        json!({"summary": true}),
        json!({"tags": ["ok", 7]}),
        json!({"variants": [{"name": 1, "price": 100, "currency": "usd"}]}),
    ] {
        let mut body = new_offering("Valid title");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let resp = app
            .send_json(reqwest::Method::POST, "/api/v1/offerings", &tutor, &body)
            .await;
        let body = problem(resp, 400).await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .ends_with("must be a string"),
            "{patch}: {body}"
        );
    }
    assert_eq!(app.count("offerings WHERE title = 'Valid title'"), 0);
}

#[tokio::test]
async fn writes_are_visible_to_the_next_read_through_the_cache() {
    let app = spawn_app().await;
    let tutor = app.token_of("tutor@test.com").await;
    // Warm the caches.
    let (_, before) = list(&app, "?category=testing").await;
    assert!(before.is_empty());
    list(&app, "?category=testing").await;

    let created = app
        .create_offering(&tutor, &new_offering("Fresh Offering"))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let slug = created["slug"].as_str().unwrap().to_string();
    let (_, still) = list(&app, "?category=testing").await;
    assert!(still.is_empty(), "drafts are not listed");

    assert_eq!(app.publish(&tutor, &id).await.status(), 200);
    let (_, after) = list(&app, "?category=testing").await;
    assert_eq!(slugs(&after), vec![slug.clone()]);
    let detail: Value = app
        .get(&format!("/api/v1/offerings/{slug}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["status"], "PUBLISHED");
    assert!(detail["publishedAt"].is_string());
    let (_, found) = list(&app, "?q=fresh").await;
    assert_eq!(slugs(&found), vec![slug.clone()]);

    // Patch: new title and variants; the slug stays.
    let variant_id = detail["variants"][0]["id"].clone();
    let resp = app
        .send_json(
            reqwest::Method::PATCH,
            &format!("/api/v1/offerings/{id}"),
            &tutor,
            &json!({
                "title": "Renamed Offering",
                "summary": null,
                "variants": [
                    {"id": variant_id, "name": "Single", "price": 1500, "currency": "usd", "isDefault": true}
                ]
            }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let detail: Value = app
        .get(&format!("/api/v1/offerings/{slug}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["title"], "Renamed Offering");
    assert_eq!(detail["slug"], slug.as_str());
    assert!(detail.get("summary").is_none());
    assert_eq!(detail["variants"].as_array().unwrap().len(), 1);
    assert_eq!(detail["variants"][0]["id"], variant_id);
    assert_eq!(detail["priceFrom"]["amount"], 1500);
    let (_, found) = list(&app, "?q=renamed").await;
    assert_eq!(slugs(&found), vec![slug.clone()]);
    let (_, gone) = list(&app, "?q=fresh").await;
    assert!(gone.is_empty(), "search index follows the title");

    // Archive: gone from list and detail.
    let resp = app
        .send_json(
            reqwest::Method::POST,
            &format!("/api/v1/offerings/{id}/archive"),
            &tutor,
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (_, after) = list(&app, "?category=testing").await;
    assert!(after.is_empty());
    problem(app.get(&format!("/api/v1/offerings/{slug}")).await, 404).await;
}

#[tokio::test]
async fn cache_figures_show_in_healthz() {
    let app = spawn_app().await;
    for _ in 0..4 {
        list(&app, "?type=GROUP").await;
    }
    // The checks run once a second: the next round shows the lookups.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let health: Value = app.get("/healthz").await.json().await.unwrap();
        let cache = &health["services"]["cache"];
        if cache["entries"].as_u64().unwrap() >= 1 && cache["hitRate"].as_f64().unwrap() >= 0.5 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{cache}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn control_bidi_and_stacked_marks_in_display_text_are_refused_by_field() {
    let app = spawn_app().await;
    let tutor = app.token_of("tutor@test.com").await;
    let zalgo = format!("Z{}algo", "\u{0336}".repeat(20));
    for bad in [
        "a\u{0}b",
        "\u{1b}[2J\u{1b}[31mred",
        "two\nlines",
        "invoice\u{202e}fdp.exe",
        zalgo.as_str(),
    ] {
        for (field, body) in [
            ("title", {
                let mut b = new_offering("x");
                b["title"] = json!(bad);
                b
            }),
            ("variants[0].name", {
                let mut b = new_offering("Fine title");
                b["variants"][0]["name"] = json!(bad);
                b
            }),
            ("tags[1]", {
                let mut b = new_offering("Fine title");
                b["tags"] = json!(["ok", bad]);
                b
            }),
        ] {
            let resp = app
                .send_json(reqwest::Method::POST, "/api/v1/offerings", &tutor, &body)
                .await;
            let refused = problem(resp, 400).await;
            assert_eq!(refused["field"], field, "{bad:?}: {refused}");
        }
    }
    let resp = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "rtl@test.com", "password": "longenough1",
                      "name": "Admin\u{202e}nimda"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 400).await["field"], "name");
    assert_eq!(app.count("offerings WHERE title = 'Fine title'"), 0);
}
