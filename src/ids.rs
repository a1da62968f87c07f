//! Identifiers: UUIDv7, so ids sort by creation time and index well; and
//! the fixed ids of the demo data.

use sha2::{Digest, Sha256};

/// A fresh id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A new opaque secret (refresh and reset tokens, dev checkout sessions):
/// 32 random bytes, base64url.
pub fn random_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The demo offering the API's request examples name (`DraftItem`).
pub const EXAMPLE_OFFERING_SLUG: &str = "python-for-absolute-beginners";

/// The id of the demo offering with `slug`. Demo offerings and their
/// variants get ids derived from the fixtures instead of random ones, so
/// every freshly seeded database has the ids the examples in the spec
/// name, and "Try it out" in Swagger UI works as shown.
pub fn demo_offering_id(slug: &str) -> String {
    derived_id(&format!("wemaster demo offering {slug}"))
}

/// The id of the variant at `position` (from 0) of the demo offering with
/// `slug`.
pub fn demo_variant_id(slug: &str, position: usize) -> String {
    derived_id(&format!("wemaster demo variant {slug} {position}"))
}

/// A UUIDv8 made from the SHA-256 of `name`: the same name, the same id.
fn derived_id(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}
