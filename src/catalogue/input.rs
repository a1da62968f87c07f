//! Request bodies of offering management and their validation. Every check
//! names the field at fault, e.g. `variants[1].price`.

use crate::text::{Text, display_text};
use poem_openapi::Object;
use poem_openapi::types::{Example, MaybeUndefined};

use super::model::{Level, NewVariant, OfferingType};
use super::repo::OfferingChanges;
use crate::error::Error;

/// Highest price of one variant, in minor units (one million major units).
pub const MAX_PRICE: i64 = 100_000_000;
/// Most variants an offering may have.
pub const MAX_VARIANTS: usize = 20;
/// Most tags an offering may have.
pub const MAX_TAGS: usize = 20;

/// A variant as sent by a tutor.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example, skip_serializing_if_is_none)]
pub struct VariantInput {
    /// Id of an existing variant to keep (PATCH only); omit for a new one.
    #[oai(validator(max_length = 64))]
    pub id: Option<Text>,
    /// 1 to 100 characters.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Text,
    /// Price in minor units, 0 to 100000000.
    #[oai(validator(minimum(value = "0"), maximum(value = "100000000")))]
    pub price: i64,
    /// ISO 4217 code, any case; stored lower case.
    #[oai(validator(min_length = 3, max_length = 3))]
    pub currency: Text,
    /// Length of one session, 1 to 1440 minutes.
    #[oai(validator(minimum(value = "1"), maximum(value = "1440")))]
    pub duration_minutes: Option<i64>,
    /// Number of sessions, 1 to 1000.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
    pub sessions: Option<i64>,
    /// Seats, 1 to 10000 (group offerings).
    #[oai(validator(minimum(value = "1"), maximum(value = "10000")))]
    pub capacity: Option<i64>,
    /// Exactly one variant is the default; a lone variant is it anyway.
    pub is_default: Option<bool>,
}

/// A new offering; it starts as a DRAFT.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example, skip_serializing_if_is_none)]
pub struct CreateOffering {
    /// URL name (lower-case letters, digits and dashes); derived from the
    /// title when absent.
    #[oai(validator(max_length = 100))]
    pub slug: Option<Text>,
    #[oai(rename = "type")]
    pub kind: OfferingType,
    /// 1 to 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub title: Text,
    #[oai(validator(max_length = 500))]
    pub summary: Option<Text>,
    #[oai(validator(max_length = 20000))]
    pub description: Option<Text>,
    /// An http(s) image URL.
    #[oai(validator(max_length = 2048))]
    pub thumbnail: Option<Text>,
    /// Lower-case category name, e.g. `programming`.
    #[oai(validator(max_length = 50))]
    pub category: Option<Text>,
    /// Up to 20 tags of 1 to 30 characters; stored lower case.
    #[oai(validator(max_items = 20))]
    pub tags: Option<Vec<Text>>,
    pub level: Option<Level>,
    /// ISO 639-1 code such as `en`, optionally with a region (`pt-BR`).
    #[oai(validator(max_length = 5))]
    pub language: Option<Text>,
    /// 1 to 20 variants, all in one currency.
    #[oai(validator(min_items = 1, max_items = 20))]
    pub variants: Vec<VariantInput>,
    /// ADMIN only: create on behalf of this tutor. Defaults to the caller.
    #[oai(validator(max_length = 64))]
    pub tutor_id: Option<Text>,
}

impl Example for CreateOffering {
    fn example() -> Self {
        CreateOffering {
            slug: None,
            kind: OfferingType::OneOnOne,
            title: "Conversational French".into(),
            summary: Some("Speak French with confidence in six weeks.".into()),
            description: None,
            thumbnail: None,
            category: Some("languages".into()),
            tags: Some(vec!["french".into(), "conversation".into()]),
            level: Some(Level::Beginner),
            language: Some("fr".into()),
            variants: vec![VariantInput {
                id: None,
                name: "Single 60-minute lesson".into(),
                price: 3500,
                currency: "usd".into(),
                duration_minutes: Some(60),
                sessions: Some(1),
                capacity: None,
                is_default: Some(true),
            }],
            tutor_id: None,
        }
    }
}

/// Changes to an offering; absent fields stay as they are, `null` clears an
/// optional field. `variants`, when present, replaces the whole set
/// (variants listed with their `id` are kept and updated).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example, skip_serializing_if_is_none)]
pub struct UpdateOffering {
    #[oai(rename = "type")]
    pub kind: Option<OfferingType>,
    #[oai(validator(min_length = 1, max_length = 200))]
    pub title: Option<Text>,
    #[oai(nullable, validator(max_length = 500))]
    pub summary: MaybeUndefined<Text>,
    #[oai(nullable, validator(max_length = 20000))]
    pub description: MaybeUndefined<Text>,
    #[oai(nullable, validator(max_length = 2048))]
    pub thumbnail: MaybeUndefined<Text>,
    #[oai(nullable, validator(max_length = 50))]
    pub category: MaybeUndefined<Text>,
    #[oai(validator(max_items = 20))]
    pub tags: Option<Vec<Text>>,
    #[oai(nullable)]
    pub level: MaybeUndefined<Level>,
    #[oai(nullable, validator(max_length = 5))]
    pub language: MaybeUndefined<Text>,
    #[oai(validator(min_items = 1, max_items = 20))]
    pub variants: Option<Vec<VariantInput>>,
}

/// Validated fields of a new offering.
pub struct ValidOffering {
    pub slug: Option<String>,
    pub kind: OfferingType,
    pub title: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub thumbnail: Option<String>,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub level: Option<Level>,
    pub language: Option<String>,
    pub variants: Vec<NewVariant>,
}

impl CreateOffering {
    pub fn validate(self) -> Result<ValidOffering, Error> {
        Ok(ValidOffering {
            slug: self.slug.as_deref().map(check_slug).transpose()?,
            kind: self.kind,
            title: check_title(&self.title)?,
            summary: text("summary", self.summary, 500)?,
            description: text("description", self.description, 20_000)?,
            thumbnail: self
                .thumbnail
                .map(|t| check_url("thumbnail", &t))
                .transpose()?,
            category: self.category.map(|c| check_category(&c)).transpose()?,
            tags: check_tags(self.tags.unwrap_or_default())?,
            level: self.level,
            language: self.language.map(|l| check_language(&l)).transpose()?,
            variants: check_variants(self.variants)?,
        })
    }
}

impl UpdateOffering {
    pub fn validate(self) -> Result<OfferingChanges, Error> {
        Ok(OfferingChanges {
            kind: self.kind,
            title: self.title.as_deref().map(check_title).transpose()?,
            summary: maybe(self.summary, |v| text("summary", Some(v), 500))?,
            description: maybe(self.description, |v| text("description", Some(v), 20_000))?,
            thumbnail: maybe(self.thumbnail, |v| check_url("thumbnail", &v).map(Some))?,
            category: maybe(self.category, |v| check_category(&v).map(Some))?,
            level: match self.level {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(l) => Some(Some(l)),
            },
            language: maybe(self.language, |v| check_language(&v).map(Some))?,
            tags: self.tags.map(check_tags).transpose()?,
            variants: self.variants.map(check_variants).transpose()?,
        })
    }
}

/// `Undefined` -> leave alone; `Null` -> clear; a value -> check it.
fn maybe(
    value: MaybeUndefined<Text>,
    check: impl FnOnce(Text) -> Result<Option<String>, Error>,
) -> Result<Option<Option<String>>, Error> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(v) => check(v).map(Some),
    }
}

fn check_title(title: &str) -> Result<String, Error> {
    let title = display_text("title", title)?;
    if title.chars().count() > 200 {
        return Err(Error::validation(
            "title",
            "title must be 1 to 200 characters",
        ));
    }
    Ok(title)
}

/// Trims optional text; empty becomes absent.
fn text(field: &str, value: Option<Text>, max: usize) -> Result<Option<String>, Error> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim();
    if value.chars().count() > max {
        return Err(Error::validation(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok((!value.is_empty()).then(|| value.to_string()))
}

/// A slug: lower-case ASCII letters and digits in dash-separated words.
pub fn check_slug(slug: &str) -> Result<String, Error> {
    let ok = (1..=100).contains(&slug.len())
        && slug.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !ok {
        return Err(Error::validation(
            "slug",
            "slug must be lower-case letters and digits separated by single dashes, at most 100 characters",
        ));
    }
    Ok(slug.to_string())
}

/// The slug a title suggests, never empty.
pub fn slug_from_title(title: &str) -> String {
    let mut slug = slug::slugify(title);
    slug.truncate(80);
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        "offering".into()
    } else {
        slug
    }
}

fn check_url(field: &str, url: &str) -> Result<String, Error> {
    let url = url.trim();
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(Error::validation(
            field,
            format!("{field} must be an http(s) URL"),
        ));
    }
    Ok(url.to_string())
}

fn check_category(category: &str) -> Result<String, Error> {
    let category = category.trim().to_lowercase();
    let ok = (1..=50).contains(&category.len())
        && category
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == ' ');
    if !ok {
        return Err(Error::validation(
            "category",
            "category must be 1 to 50 letters, digits, spaces or dashes",
        ));
    }
    Ok(category)
}

fn check_language(language: &str) -> Result<String, Error> {
    let language = language.trim();
    let bytes = language.as_bytes();
    let base_ok = bytes.len() >= 2 && bytes[..2].iter().all(u8::is_ascii_lowercase);
    let ok = match bytes.len() {
        2 => base_ok,
        5 => base_ok && bytes[2] == b'-' && bytes[3..].iter().all(u8::is_ascii_uppercase),
        _ => false,
    };
    if !ok {
        return Err(Error::validation(
            "language",
            "language must be an ISO 639-1 code such as `en` or `pt-BR`",
        ));
    }
    Ok(language.to_string())
}

fn check_tags(tags: Vec<Text>) -> Result<Vec<String>, Error> {
    if tags.len() > MAX_TAGS {
        return Err(Error::validation(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let tag = display_text(&format!("tags[{i}]"), tag)?.to_lowercase();
        if !(1..=30).contains(&tag.chars().count()) {
            return Err(Error::validation(
                format!("tags[{i}]"),
                "each tag must be 1 to 30 characters",
            ));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

/// Lower-case ISO 4217 code, or a validation error for `field`.
pub fn check_currency(field: &str, code: &str) -> Result<String, Error> {
    let upper = code.trim().to_ascii_uppercase();
    if iso_currency::Currency::from_code(&upper).is_none() {
        return Err(Error::validation(
            field,
            format!("{field} must be an ISO 4217 currency code such as usd"),
        ));
    }
    Ok(upper.to_ascii_lowercase())
}

fn check_variants(variants: Vec<VariantInput>) -> Result<Vec<NewVariant>, Error> {
    if variants.is_empty() || variants.len() > MAX_VARIANTS {
        return Err(Error::validation(
            "variants",
            format!("an offering needs 1 to {MAX_VARIANTS} variants"),
        ));
    }
    let lone = variants.len() == 1;
    let mut out = Vec::with_capacity(variants.len());
    for (i, v) in variants.into_iter().enumerate() {
        let field = |name: &str| format!("variants[{i}].{name}");
        let name = display_text(&field("name"), &v.name)?;
        if name.chars().count() > 100 {
            return Err(Error::validation(
                field("name"),
                "name must be 1 to 100 characters",
            ));
        }
        if !(0..=MAX_PRICE).contains(&v.price) {
            return Err(Error::validation(
                field("price"),
                format!("price must be between 0 and {MAX_PRICE} minor units"),
            ));
        }
        let currency = check_currency(&field("currency"), &v.currency)?;
        for (value, key, max) in [
            (v.duration_minutes, "durationMinutes", 1_440),
            (v.sessions, "sessions", 1_000),
            (v.capacity, "capacity", 10_000),
        ] {
            if value.is_some_and(|n| !(1..=max).contains(&n)) {
                return Err(Error::validation(
                    field(key),
                    format!("{key} must be between 1 and {max}"),
                ));
            }
        }
        out.push(NewVariant {
            id: v.id.map(Text::into_inner),
            name,
            price: v.price,
            currency,
            duration_minutes: v.duration_minutes,
            sessions: v.sessions,
            capacity: v.capacity,
            is_default: v.is_default.unwrap_or(lone),
        });
    }
    if out.iter().filter(|v| v.is_default).count() != 1 {
        return Err(Error::validation(
            "variants",
            "exactly one variant must have isDefault: true",
        ));
    }
    if out.iter().any(|v| v.currency != out[0].currency) {
        return Err(Error::validation(
            "variants",
            "all variants of an offering must use the same currency",
        ));
    }
    Ok(out)
}

impl Example for VariantInput {
    fn example() -> Self {
        CreateOffering::example().variants.remove(0)
    }
}

impl Example for UpdateOffering {
    fn example() -> Self {
        UpdateOffering {
            kind: None,
            title: Some("Conversational French for Travellers".into()),
            summary: MaybeUndefined::Value("Order food, ask the way, make friends.".into()),
            description: MaybeUndefined::Undefined,
            thumbnail: MaybeUndefined::Undefined,
            category: MaybeUndefined::Undefined,
            tags: Some(vec!["french".into(), "travel".into()]),
            level: MaybeUndefined::Undefined,
            language: MaybeUndefined::Undefined,
            variants: None,
        }
    }
}
