//! The one place the API's base path is written: the spec's server, the
//! routes, the protection policy, paging links, `Location` headers and
//! messages all take it from here. A leaf, so every room may use it.

/// Base path of every operation.
pub const BASE_PATH: &str = "/api/v1";

/// `path` (such as `/orders`) under the base path.
pub fn api_path(path: &str) -> String {
    format!("{BASE_PATH}{path}")
}
