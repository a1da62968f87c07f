//! What protection each operation gets, keyed by its `operationId`, so a
//! route's policy sits by its name rather than in path strings, and a new
//! operation without one fails a test instead of silently getting the
//! wrong budget. Requests are matched to operations by the spec's own paths
//! (read once at start-up, [`install`]); the few routes outside the API
//! (root probes, `/metrics`, the dev checkout's forms) have a policy of
//! their own.

use std::collections::HashMap;
use std::sync::OnceLock;

use poem::http::Method;

use super::limits::Class;

/// When a request's answer is charged to its address's failure bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Only when it presented a bearer token this server never signed.
    ForgedBearer,
    /// A 401: a wrong password or refresh token.
    Unauthorized,
    /// Any 4xx: a refused sign-up, a bad reset token.
    ClientError,
    /// Every answer: a reset request sends mail.
    Always,
    /// Never: the payment webhook (Stripe's failures are its own, and a
    /// forged delivery is refused by its signature).
    Never,
}

/// The protection of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Health probes and metrics: outside admission and the budgets.
    pub probe: bool,
    /// Hashes a password: takes a slot of the hashing lane.
    pub hashing: bool,
    /// Checks a credential or sends mail: refused to an address that spent
    /// its failures.
    pub credential: bool,
    /// The budget it is counted in, if any.
    pub class: Option<Class>,
    /// What is charged as a failure.
    pub charge: Charge,
}

const READ: Policy = Policy {
    probe: false,
    hashing: false,
    credential: false,
    class: None,
    charge: Charge::ForgedBearer,
};
const PROBE: Policy = Policy {
    probe: true,
    charge: Charge::Never,
    ..READ
};
const WRITE: Policy = Policy {
    class: Some(Class::Writes),
    ..READ
};
const ADMIN: Policy = Policy {
    class: Some(Class::Admin),
    ..READ
};

/// The policy of the operation `operation_id`; `None` for one this table
/// does not know (a test checks every operation of the spec is known).
pub fn of_operation(operation_id: &str) -> Option<Policy> {
    Some(match operation_id {
        "getHealthz" | "getHealth" | "getReadyz" | "getLivez" => PROBE,
        "login" => Policy {
            hashing: true,
            credential: true,
            charge: Charge::Unauthorized,
            ..READ
        },
        "register" => Policy {
            hashing: true,
            credential: true,
            class: Some(Class::Signups),
            charge: Charge::ClientError,
            ..READ
        },
        "resetPassword" => Policy {
            hashing: true,
            credential: true,
            charge: Charge::ClientError,
            ..READ
        },
        // A wrong token is a failure: guessing one is rationed per address.
        "verifyEmail" => Policy {
            credential: true,
            charge: Charge::ClientError,
            ..READ
        },
        "refresh" => Policy {
            credential: true,
            charge: Charge::Unauthorized,
            ..READ
        },
        "forgotPassword" => Policy {
            credential: true,
            charge: Charge::Always,
            ..READ
        },
        // Signing out and reading one's own account are never rationed.
        "logout" | "getMe" | "getProfile" => READ,
        "listOfferings" | "getOffering" | "listOrders" | "getOrder" | "listMyEnrollments" => READ,
        "listMySales" | "listMyTotals" | "listOfferingStudents" => READ,
        "createOffering" | "updateOffering" | "publishOffering" | "archiveOffering"
        | "draftOrder" | "cancelOrder" | "resendVerification" => WRITE,
        "listUsers" | "exportOrders" | "listPayments" | "listOutbox" | "getReconciliation"
        | "refundOrder" | "setUserRole" | "suspendUser" | "reinstateUser" | "listAuditLog"
        | "resendMail" => ADMIN,
        "stripeWebhook" => Policy {
            charge: Charge::Never,
            ..READ
        },
        _ => return None,
    })
}

/// Routes outside the API: the root probes and `/metrics` are probes, the
/// dev checkout's forms are writes, the rest (pages, the spec) reads.
fn outside_api(method: &Method, path: &str) -> Policy {
    const PROBES: [&str; 4] = ["/healthz", "/readyz", "/livez", "/metrics"];
    if PROBES.contains(&path) {
        PROBE
    } else if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        READ
    } else {
        WRITE
    }
}

/// The API's operations by method and path, from the spec.
struct Operations {
    /// Paths without parameters: an exact lookup, then the method.
    fixed: HashMap<String, Vec<(Method, String)>>,
    /// Paths with parameters, as segments (`None` for a parameter).
    templated: Vec<(Method, Vec<Option<String>>, String)>,
    base_path: String,
}

static OPERATIONS: OnceLock<Operations> = OnceLock::new();

/// Reads the operations of the spec (JSON, paths relative to `base_path`).
/// Call once at start-up; later calls change nothing.
pub fn install(spec_json: &str, base_path: &str) {
    OPERATIONS.get_or_init(|| Operations::from_spec(spec_json, base_path));
}

impl Operations {
    fn from_spec(spec_json: &str, base_path: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let mut operations = Operations {
            fixed: HashMap::new(),
            templated: Vec::new(),
            base_path: base_path.to_string(),
        };
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let (Ok(method), Some(id)) = (
                    Method::from_bytes(method.to_ascii_uppercase().as_bytes()),
                    op["operationId"].as_str(),
                ) else {
                    continue;
                };
                let id = id.to_string();
                if path.contains('{') {
                    let segments = path
                        .split('/')
                        .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
                        .collect();
                    operations.templated.push((method, segments, id));
                } else {
                    operations
                        .fixed
                        .entry(path.clone())
                        .or_default()
                        .push((method, id));
                }
            }
        }
        operations
    }

    /// The operation a request is for, if it is one of the API's. No
    /// allocation: this runs for every request.
    fn find(&self, method: &Method, path: &str) -> Option<&str> {
        let rest = path.strip_prefix(&self.base_path)?;
        let fixed = self
            .fixed
            .get(rest)
            .and_then(|methods| methods.iter().find(|(m, _)| m == method));
        if let Some((_, id)) = fixed {
            return Some(id);
        }
        let count = rest.split('/').count();
        self.templated
            .iter()
            .find(|(m, segments, _)| {
                m == method
                    && segments.len() == count
                    && segments.iter().zip(rest.split('/')).all(|(s, w)| match s {
                        Some(s) => s == w,
                        None => !w.is_empty(),
                    })
            })
            .map(|(_, _, id)| id.as_str())
    }
}

/// The policy of a request: its operation's, or that of a route outside
/// the API. A path under the API that names no operation (a 404 or 405 to
/// come) is treated like a read or a write by its method.
pub fn of_request(method: &Method, path: &str) -> Policy {
    OPERATIONS
        .get()
        .and_then(|ops| ops.find(method, path))
        .and_then(of_operation)
        .unwrap_or_else(|| outside_api(method, path))
}

/// Whether an answer with `status` is a failure its address is charged
/// for. Refusals (429) and the server's own failures (5xx) never are.
pub fn charged(policy: &Policy, status: u16, forged_bearer: bool) -> bool {
    if status == 429 || status >= 500 {
        return false;
    }
    match policy.charge {
        Charge::Never => false,
        Charge::Always => true,
        Charge::Unauthorized => status == 401,
        Charge::ClientError => status >= 400,
        Charge::ForgedBearer => forged_bearer && status == 401,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(operation_id: &str) -> Policy {
        of_operation(operation_id).expect("a known operation")
    }

    #[test]
    fn failures_are_charged_successes_and_honest_refusals_are_not() {
        let login = policy("login");
        assert!(charged(&login, 401, false));
        assert!(!charged(&login, 200, false));
        assert!(!charged(&login, 429, false), "already refused");
        assert!(!charged(&login, 503, false), "our capacity, not theirs");
        assert!(charged(&policy("register"), 409, false));
        assert!(!charged(&policy("register"), 201, false));
        assert!(charged(&policy("forgotPassword"), 202, false));
        // Missing or expired tokens (forged_bearer false) are not charged;
        // tokens this server never signed are.
        assert!(!charged(&policy("listOrders"), 401, false));
        assert!(charged(&policy("listOrders"), 401, true));
        assert!(!charged(&policy("listOrders"), 200, true));
        // A forged webhook is refused by its signature, never charged.
        assert!(!charged(&policy("stripeWebhook"), 401, true));
    }

    #[test]
    fn requests_find_their_operation_by_the_specs_paths() {
        let spec = r#"{"paths": {
            "/offerings": {"get": {"operationId": "listOfferings"}, "post": {"operationId": "createOffering"}},
            "/offerings/{slug}": {"get": {"operationId": "getOffering"}},
            "/offerings/{id}/publish": {"post": {"operationId": "publishOffering"}}
        }}"#;
        let ops = Operations::from_spec(spec, "/base");
        let find = |m: Method, p: &str| ops.find(&m, p);
        assert_eq!(find(Method::GET, "/base/offerings"), Some("listOfferings"));
        assert_eq!(
            find(Method::POST, "/base/offerings"),
            Some("createOffering")
        );
        assert_eq!(find(Method::GET, "/base/offerings/x"), Some("getOffering"));
        assert_eq!(
            find(Method::POST, "/base/offerings/x/publish"),
            Some("publishOffering")
        );
        assert_eq!(find(Method::GET, "/base/offerings/"), None, "empty segment");
        assert_eq!(find(Method::DELETE, "/base/offerings"), None);
        assert_eq!(
            find(Method::GET, "/offerings"),
            None,
            "outside the base path"
        );
    }

    #[test]
    fn routes_outside_the_api_have_a_policy_of_their_own() {
        assert!(outside_api(&Method::GET, "/healthz").probe);
        assert!(outside_api(&Method::GET, "/metrics").probe);
        assert_eq!(
            outside_api(&Method::POST, "/checkout/dev/abc/pay").class,
            Some(Class::Writes)
        );
        assert_eq!(outside_api(&Method::GET, "/docs"), READ);
    }
}
