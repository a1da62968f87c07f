//! Catalogue types (API.md, Catalogue). Response types derive both
//! poem-openapi's `Object` (for the spec) and serde's `Serialize` (for the
//! ready-to-send bytes in the response cache) with the same field names.

use poem_openapi::types::Example;
use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};

/// What kind of teaching an offering sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, Serialize, Deserialize)]
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

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Recorded, Self::OneOnOne, Self::Group, Self::Trial]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// Lifecycle of an offering; only `PUBLISHED` is visible to the public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
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

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Draft, Self::Published, Self::Archived]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// Who an offering suits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    Beginner,
    Intermediate,
    Advanced,
    AllLevels,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Beginner => "BEGINNER",
            Level::Intermediate => "INTERMEDIATE",
            Level::Advanced => "ADVANCED",
            Level::AllLevels => "ALL_LEVELS",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Beginner,
            Self::Intermediate,
            Self::Advanced,
            Self::AllLevels,
        ]
        .into_iter()
        .find(|l| l.as_str() == text)
    }
}

/// An amount of money in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize)]
#[oai(example)]
pub struct Money {
    /// Integer minor units: 4900 is 49.00.
    pub amount: i64,
    /// ISO 4217 code, lower case.
    pub currency: String,
}

/// The tutor who sells an offering.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize)]
#[oai(example)]
pub struct TutorRef {
    pub id: String,
    pub name: Option<String>,
}

/// One way to buy an offering, e.g. a single lesson or a pack of five.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize)]
#[oai(rename_all = "camelCase", example)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    pub id: String,
    pub name: String,
    /// Price in minor units.
    pub price: i64,
    /// ISO 4217 code, lower case; the same for every variant of an offering.
    pub currency: String,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_minutes: Option<i64>,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<i64>,
    /// Most seats this variant sells (GROUP classes, say); absent:
    /// unlimited.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,
    /// With a capacity: the seats not yet taken by paid orders or held by
    /// pending ones. A draft may still find fewer (it is the authority).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats_left: Option<i64>,
    /// Exactly one variant per offering is the default.
    pub is_default: bool,
}

/// A course or lesson a tutor sells.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize)]
#[oai(rename_all = "camelCase", example)]
#[serde(rename_all = "camelCase")]
pub struct Offering {
    pub id: String,
    /// URL name, unique and stable.
    pub slug: String,
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: OfferingType,
    pub title: String,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub tags: Vec<String>,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub status: OfferingStatus,
    pub tutor: TutorRef,
    /// At least one; clients order `variants[0]`.
    pub variants: Vec<Variant>,
    /// The lowest variant price.
    pub price_from: Money,
    pub created_at: String,
    pub updated_at: String,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
}

impl Example for Offering {
    fn example() -> Self {
        Offering {
            id: crate::ids::demo_offering_id(crate::ids::EXAMPLE_OFFERING_SLUG),
            slug: crate::ids::EXAMPLE_OFFERING_SLUG.into(),
            kind: OfferingType::Recorded,
            title: "Python for Absolute Beginners".into(),
            summary: Some("Write your first programs in Python, step by step.".into()),
            description: None,
            thumbnail: None,
            category: Some("programming".into()),
            tags: vec!["python".into(), "beginner".into()],
            level: Some(Level::Beginner),
            language: Some("en".into()),
            status: OfferingStatus::Published,
            tutor: TutorRef {
                id: "01938a6e-7c3b-7d2e-9f41-000000000001".into(),
                name: Some("Tomas Tutor".into()),
            },
            variants: vec![Variant {
                id: crate::ids::demo_variant_id(crate::ids::EXAMPLE_OFFERING_SLUG, 0),
                name: "Lifetime access".into(),
                price: 4900,
                currency: "usd".into(),
                duration_minutes: None,
                sessions: None,
                capacity: None,
                seats_left: None,
                is_default: true,
            }],
            price_from: Money {
                amount: 4900,
                currency: "usd".into(),
            },
            created_at: "2026-01-15T09:30:00.000Z".into(),
            updated_at: "2026-01-15T09:30:00.000Z".into(),
            published_at: Some("2026-01-15T09:30:00.000Z".into()),
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
    pub level: Option<Level>,
    pub language: Option<String>,
    pub status: OfferingStatus,
    pub variants: Vec<NewVariant>,
    pub created_at: String,
}

/// A variant ready to insert; `id` keeps an existing variant on update.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewVariant {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    pub price: i64,
    pub currency: String,
    pub duration_minutes: Option<i64>,
    pub sessions: Option<i64>,
    pub capacity: Option<i64>,
    #[serde(default)]
    pub is_default: bool,
}

impl Example for Money {
    fn example() -> Self {
        Offering::example().price_from
    }
}

impl Example for TutorRef {
    fn example() -> Self {
        Offering::example().tutor
    }
}

impl Example for Variant {
    fn example() -> Self {
        Offering::example().variants.remove(0)
    }
}
