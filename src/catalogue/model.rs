//! Catalogue types (API.md, Catalogue).

use poem_openapi::Enum;
use serde::Deserialize;

/// What kind of teaching an offering sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OfferingType {
    Recorded,
    OneOnOne,
    Group,
    Trial,
}

impl OfferingType {
    pub fn as_str(self) -> &'static str {
        match self {
            OfferingType::Recorded => "RECORDED",
            OfferingType::OneOnOne => "ONE_ON_ONE",
            OfferingType::Group => "GROUP",
            OfferingType::Trial => "TRIAL",
        }
    }
}

/// Lifecycle of an offering; only `PUBLISHED` is visible to the public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OfferingStatus {
    Draft,
    Published,
    Archived,
}

impl OfferingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OfferingStatus::Draft => "DRAFT",
            OfferingStatus::Published => "PUBLISHED",
            OfferingStatus::Archived => "ARCHIVED",
        }
    }
}

/// An offering ready to insert, already validated.
pub struct NewOffering {
    pub id: String,
    pub slug: String,
    pub tutor_id: String,
    pub kind: OfferingType,
    pub title: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub thumbnail: Option<String>,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub level: Option<String>,
    pub language: Option<String>,
    pub status: OfferingStatus,
    pub variants: Vec<NewVariant>,
    pub created_at: String,
}

/// A variant ready to insert.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewVariant {
    pub name: String,
    pub price: i64,
    pub currency: String,
    pub duration_minutes: Option<i64>,
    pub sessions: Option<i64>,
    pub capacity: Option<i64>,
    #[serde(default)]
    pub is_default: bool,
}
