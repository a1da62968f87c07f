//! The OpenAPI service: the combination of every domain's API under
//! `/api/v1` (their tags live in `tags.rs`, below the domains).

use poem_openapi::OpenApiService;
use serde_yaml::{Mapping, Value};

use crate::admin::api::AdminApi;
use crate::auth::api::{AuthApi, UsersApi};
use crate::catalogue::api::CatalogueApi;
use crate::health::api::HealthApi;
use crate::orders::api::OrdersApi;
use crate::payments::api::PaymentsApi;
use crate::tutors::api::TutorsApi;

/// Every domain's operations.
pub type Apis = (
    HealthApi,
    AuthApi,
    UsersApi,
    CatalogueApi,
    OrdersApi,
    PaymentsApi,
    TutorsApi,
    AdminApi,
);

pub use crate::api_base::BASE_PATH;

/// Builds the OpenAPI service; also what `wemaster openapi` prints.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            HealthApi,
            AuthApi,
            UsersApi,
            CatalogueApi,
            OrdersApi,
            PaymentsApi,
            TutorsApi,
            AdminApi,
        ),
        "WeMaster API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Marketplace API for tutors selling courses and lessons and students buying them. \
             JSON in camelCase; money in integer minor units with a lower-case ISO 4217 \
             currency; lists are bare arrays paged with `page` and `limit`, with \
             `X-Total-Count` and RFC 8288 `Link` headers; errors are RFC 9457 problem \
             details with a stable `code`.",
    )
    .server(BASE_PATH)
}

/// The document served at `/openapi.json`, shown by Swagger UI and printed
/// by `wemaster openapi`.
pub fn spec_json() -> String {
    serde_json::to_string_pretty(&finished_spec())
        .expect("a document read from JSON writes as JSON")
}

/// [`spec_json`] as YAML, served at `/openapi.yaml`.
pub fn spec_yaml() -> String {
    serde_yaml::to_string(&finished_spec()).expect("a document read from JSON writes as YAML")
}

/// Swagger UI showing the finished document.
pub fn swagger_ui_html() -> String {
    let api = service();
    api.swagger_ui_html()
        .replacen(&api.spec(), &spec_json(), 1)
        .replacen(
            "<title>Swagger UI</title>",
            "<title>WeMaster API (Swagger UI)</title>",
            1,
        )
        .replacen("deepLinking: true,", SWAGGER_UI_OPTIONS, 1)
}

/// Options added to poem-openapi's Swagger UI set-up. Authorize wants the
/// token alone; one pasted with its "Bearer " (as the login answer's
/// `tokenType` suggests) would go out as "Bearer Bearer ...", be refused as
/// forged, and after a few tries throttle sign-ins from that address, so
/// the extra word is dropped before a request leaves the page.
const SWAGGER_UI_OPTIONS: &str = r#"deepLinking: true,
        requestInterceptor: (request) => {
            const auth = request.headers && request.headers.Authorization;
            if (typeof auth === "string") {
                request.headers.Authorization = auth.replace(/^Bearer\s+(Bearer\s+)+/i, "Bearer ");
            }
            return request;
        },"#;

/// poem-openapi's document with two touches it cannot make itself:
///
/// - A property with its own description that refers to a component comes
///   out as `allOf: [{$ref}, {description}]`. The second entry repeats what
///   the property already says, and code generators refuse an `allOf` over
///   an enum (openapi-python-client drops the whole model), so only the
///   `$ref` stays.
/// - Responses get OpenAPI links ([`LINKS`]) to the operations that take
///   what they return: for readers, and for stateful API testing.
/// - Each error response gets an example problem body with its own status
///   and code; the `Problem` schema's one example is a 400.
fn finished_spec() -> Value {
    // serde_yaml's mapping keeps the order of keys, so the document reads in
    // the order poem-openapi wrote it.
    let mut doc: Value =
        serde_json::from_str(&service().spec()).expect("poem-openapi writes valid JSON");
    collapse_redundant_all_of(&mut doc);
    add_links(&mut doc);
    add_problem_examples(&mut doc);
    add_path_examples(&mut doc);
    order_tags(&mut doc);
    doc
}

/// Lists the tags in [`ApiTags::READING_ORDER`]; Swagger UI shows its
/// sections in the order of this list.
fn order_tags(doc: &mut Value) {
    use poem_openapi::Tags;
    let Some(tags) = doc.get_mut("tags").and_then(Value::as_sequence_mut) else {
        return;
    };
    let rank = |tag: &Value| {
        let name = tag.get("name").and_then(Value::as_str);
        crate::tags::ApiTags::READING_ORDER
            .iter()
            .position(|t| Some(t.name()) == name)
            .unwrap_or(usize::MAX)
    };
    tags.sort_by_key(rank);
}

/// Path parameters get an example that exists on a freshly seeded database,
/// so "Try it out" starts filled: the first demo offering's slug and id
/// (its students' page too).
/// Orders have none to name: a fresh database holds none.
fn add_path_examples(doc: &mut Value) {
    use crate::ids::{EXAMPLE_OFFERING_SLUG, demo_offering_id};
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_mapping_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let offering = path
            .as_str()
            .is_some_and(|p| p.starts_with("/offerings/") || p.starts_with("/tutor/offerings/"));
        let parameters = item
            .as_mapping_mut()
            .into_iter()
            .flat_map(|item| item.values_mut())
            .filter_map(|op| op.get_mut("parameters"))
            .filter_map(Value::as_sequence_mut)
            .flatten();
        for parameter in parameters {
            if parameter.get("in").and_then(Value::as_str) != Some("path") {
                continue;
            }
            let example = match parameter.get("name").and_then(Value::as_str) {
                Some("slug") if offering => EXAMPLE_OFFERING_SLUG.to_string(),
                Some("id") if offering => demo_offering_id(EXAMPLE_OFFERING_SLUG),
                _ => continue,
            };
            if let Some(parameter) = parameter.as_mapping_mut() {
                parameter.insert("example".into(), example.into());
            }
        }
    }
}

/// A typical `detail` for an error status, for the examples.
fn sample_detail(status: u16) -> &'static str {
    match status {
        400 => "a parameter or body field is missing or invalid",
        401 => "the access token is invalid",
        403 => "this needs one of the roles ADMIN",
        404 => "no such resource",
        409 => "the offering is not published",
        413 => "the body is larger than the server accepts",
        415 => "the body must be application/json",
        422 => "all items must be in one currency",
        429 => "too many requests in progress from your address; retry in 1 s",
        502 => "the payment provider did not answer as expected",
        503 => "the server is busy; retry shortly",
        _ => "the server could not answer; the problem is logged",
    }
}

fn add_problem_examples(doc: &mut Value) {
    let operations = doc
        .get_mut("paths")
        .and_then(Value::as_mapping_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_mapping_mut)
        .flat_map(|item| item.values_mut());
    for op in operations {
        // Sign-in and the webhook are the 401s that are not about a token.
        let operation = op.get("operationId").and_then(Value::as_str);
        let login = operation == Some("login");
        let webhook = operation == Some("stripeWebhook");
        let Some(responses) = op.get_mut("responses").and_then(Value::as_mapping_mut) else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            let Some(status) = status
                .as_str()
                .and_then(|s| poem::http::StatusCode::from_bytes(s.as_bytes()).ok())
            else {
                continue;
            };
            let Some(media) = response
                .get_mut("content")
                .and_then(|c| c.get_mut("application/problem+json"))
                .and_then(Value::as_mapping_mut)
            else {
                continue;
            };
            let (code, detail) = match status.as_u16() {
                401 if login => (
                    "AUTH_INVALID_CREDENTIALS",
                    "the email or password is incorrect",
                ),
                401 if webhook => ("WEBHOOK_SIGNATURE_INVALID", "no v1 signature matches"),
                503 if login => ("OVERLOADED", "too many sign-ins at once, retry shortly"),
                n => (crate::error::code_for_status(status), sample_detail(n)),
            };
            let mut example = Mapping::new();
            example.insert("type".into(), "about:blank".into());
            example.insert(
                "title".into(),
                status.canonical_reason().unwrap_or("Error").into(),
            );
            example.insert("status".into(), status.as_u16().into());
            example.insert("detail".into(), detail.into());
            example.insert("code".into(), code.into());
            media.insert("example".into(), Value::Mapping(example));
        }
    }
}

fn collapse_redundant_all_of(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            let redundant = match map.get("allOf") {
                Some(Value::Sequence(parts)) => {
                    parts.len() == 2
                        && parts[0].get("$ref").is_some()
                        && parts[1]
                            .as_mapping()
                            .is_some_and(|extra| extra.iter().all(|(k, v)| map.get(k) == Some(v)))
                }
                _ => false,
            };
            if redundant && let Some(Value::Sequence(parts)) = map.get_mut("allOf") {
                parts.truncate(1);
            }
            for (_, v) in map.iter_mut() {
                collapse_redundant_all_of(v);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(collapse_redundant_all_of),
        _ => {}
    }
}

/// An OpenAPI link from one operation's response to another operation.
struct Link {
    from: &'static str,
    status: &'static str,
    name: &'static str,
    to: &'static str,
    description: &'static str,
    /// Target parameter name and the runtime expression that fills it.
    parameters: &'static [(&'static str, &'static str)],
    /// Target body properties and the runtime expressions that fill them.
    body: &'static [(&'static str, &'static str)],
}

const fn link(
    from: &'static str,
    status: &'static str,
    name: &'static str,
    to: &'static str,
    description: &'static str,
) -> Link {
    Link {
        from,
        status,
        name,
        to,
        description,
        parameters: &[],
        body: &[],
    }
}

const ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
const SLUG: &[(&str, &str)] = &[("slug", "$response.body#/slug")];
const REFRESH_TOKEN: &[(&str, &str)] = &[("refreshToken", "$response.body#/refreshToken")];

/// Where a response leads.
const LINKS: &[Link] = &[
    Link {
        parameters: &[("slug", "$response.body#/0/slug")],
        ..link(
            "listOfferings",
            "200",
            "GetFirstOffering",
            "getOffering",
            "Read the first offering listed.",
        )
    },
    Link {
        body: &[("offeringId", "$response.body#/0/id")],
        ..link(
            "listOfferings",
            "200",
            "OrderFirstOffering",
            "draftOrder",
            "Order the first offering listed.",
        )
    },
    Link {
        body: &[
            ("offeringId", "$response.body#/id"),
            ("variantId", "$response.body#/variants/0/id"),
        ],
        ..link(
            "getOffering",
            "200",
            "OrderOffering",
            "draftOrder",
            "Order this offering's first variant.",
        )
    },
    Link {
        parameters: SLUG,
        ..link(
            "createOffering",
            "201",
            "GetOffering",
            "getOffering",
            "Read the new offering (its tutor and admins see drafts).",
        )
    },
    Link {
        parameters: ID,
        ..link(
            "createOffering",
            "201",
            "UpdateOffering",
            "updateOffering",
            "Change the new offering.",
        )
    },
    Link {
        parameters: ID,
        ..link(
            "createOffering",
            "201",
            "PublishOffering",
            "publishOffering",
            "Publish the new offering.",
        )
    },
    Link {
        parameters: ID,
        ..link(
            "createOffering",
            "201",
            "ArchiveOffering",
            "archiveOffering",
            "Archive the new offering.",
        )
    },
    Link {
        parameters: SLUG,
        ..link(
            "updateOffering",
            "200",
            "GetOffering",
            "getOffering",
            "Read the changed offering.",
        )
    },
    Link {
        parameters: SLUG,
        ..link(
            "publishOffering",
            "200",
            "GetOffering",
            "getOffering",
            "Read the published offering.",
        )
    },
    Link {
        body: &[("offeringId", "$response.body#/id")],
        ..link(
            "publishOffering",
            "200",
            "OrderOffering",
            "draftOrder",
            "Order the published offering.",
        )
    },
    Link {
        parameters: ID,
        ..link(
            "draftOrder",
            "201",
            "GetOrder",
            "getOrder",
            "Read the new order.",
        )
    },
    Link {
        parameters: ID,
        ..link(
            "draftOrder",
            "201",
            "CancelOrder",
            "cancelOrder",
            "Cancel the new order.",
        )
    },
    Link {
        parameters: ID,
        ..link(
            "draftOrder",
            "200",
            "GetOrder",
            "getOrder",
            "Read the order.",
        )
    },
    Link {
        parameters: ID,
        ..link(
            "cancelOrder",
            "200",
            "GetOrder",
            "getOrder",
            "Read the cancelled order.",
        )
    },
    Link {
        parameters: &[("id", "$response.body#/0/id")],
        ..link(
            "listOrders",
            "200",
            "GetFirstOrder",
            "getOrder",
            "Read the first order listed.",
        )
    },
    Link {
        body: REFRESH_TOKEN,
        ..link(
            "register",
            "201",
            "Refresh",
            "refresh",
            "Rotate the refresh token.",
        )
    },
    Link {
        body: REFRESH_TOKEN,
        ..link("register", "201", "Logout", "logout", "Sign out.")
    },
    Link {
        body: REFRESH_TOKEN,
        ..link(
            "login",
            "200",
            "Refresh",
            "refresh",
            "Rotate the refresh token.",
        )
    },
    Link {
        body: REFRESH_TOKEN,
        ..link("login", "200", "Logout", "logout", "Sign out.")
    },
    Link {
        body: REFRESH_TOKEN,
        ..link(
            "refresh",
            "200",
            "Refresh",
            "refresh",
            "Rotate the new refresh token.",
        )
    },
    Link {
        body: REFRESH_TOKEN,
        ..link("refresh", "200", "Logout", "logout", "Sign out.")
    },
];

/// Adds [`LINKS`] to their responses. A link whose operation or response
/// is missing is a bug in the table, caught by the first request for the
/// spec (and so by the test suite).
fn add_links(doc: &mut Value) {
    for link in LINKS {
        let response = doc
            .get_mut("paths")
            .and_then(Value::as_mapping_mut)
            .into_iter()
            .flat_map(|paths| paths.values_mut())
            .filter_map(Value::as_mapping_mut)
            .flat_map(|item| item.values_mut())
            .find(|op| op.get("operationId").and_then(Value::as_str) == Some(link.from))
            .and_then(|op| op.get_mut("responses"))
            .and_then(|responses| responses.get_mut(link.status))
            .and_then(Value::as_mapping_mut)
            .unwrap_or_else(|| panic!("no {} response of {} to link from", link.status, link.from));
        let mut target = Mapping::new();
        target.insert("operationId".into(), link.to.into());
        target.insert("description".into(), link.description.into());
        let pairs = |pairs: &[(&str, &str)]| -> Value {
            Value::Mapping(pairs.iter().map(|&(k, v)| (k.into(), v.into())).collect())
        };
        if !link.parameters.is_empty() {
            target.insert("parameters".into(), pairs(link.parameters));
        }
        if !link.body.is_empty() {
            target.insert("requestBody".into(), pairs(link.body));
        }
        let links = response
            .entry("links".into())
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if let Value::Mapping(links) = links {
            links.insert(link.name.into(), Value::Mapping(target));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_of_the_spec_has_a_policy() {
        let spec: serde_json::Value = serde_json::from_str(&service().spec()).unwrap();
        let mut seen = 0;
        for item in spec["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap();
                assert!(
                    crate::protection::policy::of_operation(id).is_some(),
                    "{id} has no policy"
                );
                seen += 1;
            }
        }
        assert!(seen >= 29, "{seen} operations");
    }
}
