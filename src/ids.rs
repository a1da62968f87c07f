//! Identifiers: UUIDv7, so ids sort by creation time and index well.

/// A fresh id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
