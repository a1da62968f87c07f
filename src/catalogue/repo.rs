//! SQL for the catalogue. A list page costs a constant number of statements
//! whatever its length: one count, one page of offerings, one batch of
//! variants and one batch of tags.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{
    Level, Money, NewOffering, NewVariant, Offering, OfferingStatus, OfferingType, TutorRef,
    Variant,
};
use crate::paging::Page;

/// Order of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sort {
    NewestFirst,
    OldestFirst,
    PriceAsc,
    PriceDesc,
    Title,
    /// Best full-text match first; only with a search query.
    Relevance,
}

impl Sort {
    fn order_by(self) -> &'static str {
        match self {
            Sort::NewestFirst => "o.created_at DESC, o.id DESC",
            Sort::OldestFirst => "o.created_at ASC, o.id ASC",
            Sort::PriceAsc => "o.price_from ASC, o.created_at DESC, o.id DESC",
            Sort::PriceDesc => "o.price_from DESC, o.created_at DESC, o.id DESC",
            Sort::Title => "o.title COLLATE NOCASE ASC, o.id ASC",
            // Title matches weigh most, then tags, then summary.
            Sort::Relevance => {
                "bm25(offerings_fts, 10.0, 2.0, 5.0) ASC, o.created_at DESC, o.id DESC"
            }
        }
    }
}

/// Filters of the public list; every field is optional but `sort` and `page`.
#[derive(Debug, Clone)]
pub struct ListFilter {
    /// An FTS5 match expression built by [`match_expression`].
    pub search: Option<String>,
    pub kind: Option<OfferingType>,
    pub tag: Option<String>,
    pub category: Option<String>,
    pub tutor_id: Option<String>,
    pub sort: Sort,
    pub page: Page,
}

/// Turns free text into a safe FTS5 expression: every run of letters and
/// digits becomes a quoted term, the last one a prefix, all required. FTS
/// syntax in the input (quotes, `*`, `-`, `NEAR`, parentheses) is just text.
/// `None` when nothing searchable is left.
pub fn match_expression(text: &str) -> Option<String> {
    let terms: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .take(16)
        .collect();
    let (last, rest) = terms.split_last()?;
    let mut expr = String::new();
    for term in rest {
        expr.push('"');
        expr.push_str(term);
        expr.push_str("\" ");
    }
    expr.push('"');
    expr.push_str(last);
    expr.push_str("\"*");
    Some(expr)
}

const OFFERING_COLUMNS: &str = "o.id, o.slug, o.type, o.title, o.summary, o.description,
    o.thumbnail, o.category, o.level, o.language, o.status, o.price_from, o.currency,
    o.created_at, o.updated_at, o.published_at, o.tutor_id, u.name";

/// Public list: PUBLISHED offerings matching `filter`, one page, and the
/// number matching on all pages.
pub fn list_published(
    conn: &Connection,
    filter: &ListFilter,
) -> rusqlite::Result<(Vec<Offering>, u64)> {
    let from = if filter.search.is_some() {
        "FROM offerings_fts JOIN offerings o ON o.rowid = offerings_fts.rowid
         JOIN users u ON u.id = o.tutor_id
         WHERE offerings_fts MATCH ?5 AND"
    } else {
        "FROM offerings o JOIN users u ON u.id = o.tutor_id WHERE ?5 IS NULL AND"
    };
    let filters = "o.status = 'PUBLISHED'
         AND (?1 IS NULL OR o.type = ?1)
         AND (?2 IS NULL OR o.category = ?2)
         AND (?3 IS NULL OR o.tutor_id = ?3)
         AND (?4 IS NULL OR EXISTS
              (SELECT 1 FROM offering_tags t WHERE t.offering_id = o.id AND t.tag = ?4))";
    let args = params![
        filter.kind.map(OfferingType::as_str),
        filter.category,
        filter.tutor_id,
        filter.tag,
        filter.search,
    ];
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) {from} {filters}"))?
        .query_row(args, |row| row.get(0))?;
    let sql = format!(
        "SELECT {OFFERING_COLUMNS} {from} {filters} ORDER BY {} LIMIT ?6 OFFSET ?7",
        filter.sort.order_by()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(
            params![
                filter.kind.map(OfferingType::as_str),
                filter.category,
                filter.tutor_id,
                filter.tag,
                filter.search,
                filter.page.limit,
                filter.page.offset(),
            ],
            offering_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((attach_details(conn, rows)?, total as u64))
}

/// An offering by slug, in any status.
pub fn by_slug(conn: &Connection, slug: &str) -> rusqlite::Result<Option<Offering>> {
    one(conn, "o.slug = ?1", slug)
}

/// An offering by id, in any status.
pub fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<Offering>> {
    one(conn, "o.id = ?1", id)
}

fn one(conn: &Connection, condition: &str, key: &str) -> rusqlite::Result<Option<Offering>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {OFFERING_COLUMNS} FROM offerings o JOIN users u ON u.id = o.tutor_id
             WHERE {condition}"
        ))?
        .query_row([key], offering_from_row)
        .optional()?;
    Ok(match row {
        Some(row) => attach_details(conn, vec![row])?.pop(),
        None => None,
    })
}

fn offering_from_row(row: &Row<'_>) -> rusqlite::Result<Offering> {
    let kind: String = row.get(2)?;
    let level: Option<String> = row.get(8)?;
    let status: String = row.get(10)?;
    Ok(Offering {
        id: row.get(0)?,
        slug: row.get(1)?,
        kind: OfferingType::parse(&kind).unwrap_or(OfferingType::Recorded),
        title: row.get(3)?,
        summary: row.get(4)?,
        description: row.get(5)?,
        thumbnail: row.get(6)?,
        category: row.get(7)?,
        tags: Vec::new(),
        level: level.as_deref().and_then(Level::parse),
        language: row.get(9)?,
        status: OfferingStatus::parse(&status).unwrap_or(OfferingStatus::Draft),
        price_from: Money {
            amount: row.get(11)?,
            currency: row.get(12)?,
        },
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
        published_at: row.get(15)?,
        tutor: TutorRef {
            id: row.get(16)?,
            name: row.get(17)?,
        },
        variants: Vec::new(),
    })
}

/// Fills in variants and tags of many offerings with two statements.
fn attach_details(
    conn: &Connection,
    mut offerings: Vec<Offering>,
) -> rusqlite::Result<Vec<Offering>> {
    if offerings.is_empty() {
        return Ok(offerings);
    }
    let ids = serde_json::to_string(&offerings.iter().map(|o| &o.id).collect::<Vec<_>>())
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let index: HashMap<String, usize> = offerings
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.clone(), i))
        .collect();
    let mut variants = conn.prepare_cached(
        "SELECT offering_id, id, name, price, currency, duration_minutes, sessions, capacity,
                is_default, MAX(capacity - seats_taken, 0)
         FROM variants WHERE offering_id IN (SELECT value FROM json_each(?1))
         ORDER BY offering_id, position",
    )?;
    let mut rows = variants.query([&ids])?;
    while let Some(row) = rows.next()? {
        let offering_id: String = row.get(0)?;
        if let Some(&i) = index.get(&offering_id) {
            offerings[i].variants.push(Variant {
                id: row.get(1)?,
                name: row.get(2)?,
                price: row.get(3)?,
                currency: row.get(4)?,
                duration_minutes: row.get(5)?,
                sessions: row.get(6)?,
                capacity: row.get(7)?,
                is_default: row.get(8)?,
                seats_left: row.get(9)?,
            });
        }
    }
    let mut tags = conn.prepare_cached(
        "SELECT offering_id, tag FROM offering_tags
         WHERE offering_id IN (SELECT value FROM json_each(?1))
         ORDER BY offering_id, position",
    )?;
    let mut rows = tags.query([&ids])?;
    while let Some(row) = rows.next()? {
        let offering_id: String = row.get(0)?;
        if let Some(&i) = index.get(&offering_id) {
            offerings[i].tags.push(row.get(1)?);
        }
    }
    Ok(offerings)
}

/// Inserts an offering with its tags and variants. Run inside a transaction.
pub fn insert_offering(conn: &Connection, o: &NewOffering) -> rusqlite::Result<()> {
    let published_at = (o.status == OfferingStatus::Published).then_some(&o.created_at);
    conn.prepare_cached(
        "INSERT INTO offerings (id, slug, tutor_id, type, title, summary, description, thumbnail,
             category, level, language, status, price_from, currency, created_at, updated_at,
             published_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, 'usd', ?13, ?13, ?14)",
    )?
    .execute(params![
        o.id,
        o.slug,
        o.tutor_id,
        o.kind.as_str(),
        o.title,
        o.summary,
        o.description,
        o.thumbnail,
        o.category,
        o.level.map(Level::as_str),
        o.language,
        o.status.as_str(),
        o.created_at,
        published_at,
    ])?;
    replace_tags(conn, &o.id, &o.tags)?;
    replace_variants(conn, &o.id, &o.variants)?;
    reindex(conn, &o.id)
}

/// Fields of an offering a PATCH may change; `None` leaves a field alone,
/// `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct OfferingChanges {
    pub kind: Option<OfferingType>,
    pub title: Option<String>,
    pub summary: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub thumbnail: Option<Option<String>>,
    pub category: Option<Option<String>>,
    pub level: Option<Option<Level>>,
    pub language: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub variants: Option<Vec<NewVariant>>,
}

/// Applies `changes` to offering `id`. Run inside a transaction.
pub fn update_offering(
    conn: &Connection,
    id: &str,
    changes: &OfferingChanges,
    now: &str,
) -> rusqlite::Result<()> {
    // COALESCE keeps the old value for untouched fields; a flag per
    // nullable field tells "clear" from "leave alone".
    conn.prepare_cached(
        "UPDATE offerings SET
            type = coalesce(?2, type),
            title = coalesce(?3, title),
            summary = CASE WHEN ?4 THEN ?5 ELSE summary END,
            description = CASE WHEN ?6 THEN ?7 ELSE description END,
            thumbnail = CASE WHEN ?8 THEN ?9 ELSE thumbnail END,
            category = CASE WHEN ?10 THEN ?11 ELSE category END,
            level = CASE WHEN ?12 THEN ?13 ELSE level END,
            language = CASE WHEN ?14 THEN ?15 ELSE language END,
            updated_at = ?16
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        changes.kind.map(OfferingType::as_str),
        changes.title,
        changes.summary.is_some(),
        changes.summary.clone().flatten(),
        changes.description.is_some(),
        changes.description.clone().flatten(),
        changes.thumbnail.is_some(),
        changes.thumbnail.clone().flatten(),
        changes.category.is_some(),
        changes.category.clone().flatten(),
        changes.level.is_some(),
        changes.level.flatten().map(Level::as_str),
        changes.language.is_some(),
        changes.language.clone().flatten(),
        now,
    ])?;
    if let Some(tags) = &changes.tags {
        replace_tags(conn, id, tags)?;
    }
    if let Some(variants) = &changes.variants {
        replace_variants(conn, id, variants)?;
    }
    reindex(conn, id)
}

fn replace_tags(conn: &Connection, id: &str, tags: &[String]) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM offering_tags WHERE offering_id = ?1")?
        .execute([id])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO offering_tags (offering_id, tag, position) VALUES (?1, ?2, ?3)",
    )?;
    for (position, tag) in tags.iter().enumerate() {
        insert.execute(params![id, tag, position as i64])?;
    }
    Ok(())
}

/// The seats of a variant its paid orders take and its pending orders hold
/// now (holds past their expiry no longer count).
pub fn seats_taken(conn: &Connection, variant_id: &str, now: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT seats_taken - COALESCE((SELECT SUM(quantity) FROM seat_holds
                                        WHERE variant_id = ?1 AND expires_at <= ?2), 0)
         FROM variants WHERE id = ?1",
    )?
    .query_row(params![variant_id, now], |row| row.get(0))
}

/// Replaces the variant set: variants with a known `id` keep it, the rest
/// get new ids, unlisted ones go. Then refreshes `price_from`.
fn replace_variants(conn: &Connection, id: &str, variants: &[NewVariant]) -> rusqlite::Result<()> {
    let keep: Vec<&str> = variants.iter().filter_map(|v| v.id.as_deref()).collect();
    let keep = serde_json::to_string(&keep)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.prepare_cached(
        "DELETE FROM variants WHERE offering_id = ?1
         AND id NOT IN (SELECT value FROM json_each(?2))",
    )?
    .execute(params![id, keep])?;
    // Clear defaults first so the one-default index holds mid-update.
    conn.prepare_cached("UPDATE variants SET is_default = 0 WHERE offering_id = ?1")?
        .execute([id])?;
    let mut upsert = conn.prepare_cached(
        "INSERT INTO variants (id, offering_id, position, name, price, currency, duration_minutes,
             sessions, capacity, is_default)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO UPDATE SET position = excluded.position, name = excluded.name,
             price = excluded.price, currency = excluded.currency,
             duration_minutes = excluded.duration_minutes, sessions = excluded.sessions,
             capacity = excluded.capacity, is_default = excluded.is_default
         WHERE variants.offering_id = excluded.offering_id",
    )?;
    for (position, v) in variants.iter().enumerate() {
        let variant_id = v.id.clone().unwrap_or_else(crate::ids::new_id);
        upsert.execute(params![
            variant_id,
            id,
            position as i64,
            v.name,
            v.price,
            v.currency,
            v.duration_minutes,
            v.sessions,
            v.capacity,
            v.is_default,
        ])?;
    }
    conn.prepare_cached(
        "UPDATE offerings SET
            price_from = (SELECT min(price) FROM variants WHERE offering_id = ?1),
            currency = (SELECT currency FROM variants WHERE offering_id = ?1
                        ORDER BY price, position LIMIT 1)
         WHERE id = ?1",
    )?
    .execute([id])?;
    Ok(())
}

/// Rewrites the offering's full-text row from its current title, summary
/// and tags.
fn reindex(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "DELETE FROM offerings_fts WHERE rowid = (SELECT rowid FROM offerings WHERE id = ?1)",
    )?
    .execute([id])?;
    conn.prepare_cached(
        "INSERT INTO offerings_fts (rowid, title, summary, tags)
         SELECT o.rowid, o.title, coalesce(o.summary, ''),
                coalesce((SELECT group_concat(tag, ' ') FROM offering_tags WHERE offering_id = o.id), '')
         FROM offerings o WHERE o.id = ?1",
    )?
    .execute([id])?;
    Ok(())
}

/// Moves an offering to `status`; publishing stamps `published_at` once.
pub fn set_status(
    conn: &Connection,
    id: &str,
    status: OfferingStatus,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE offerings SET status = ?2, updated_at = ?3,
            published_at = CASE WHEN ?2 = 'PUBLISHED' THEN coalesce(published_at, ?3)
                                ELSE published_at END
         WHERE id = ?1",
    )?
    .execute(params![id, status.as_str(), now])?;
    Ok(())
}

/// Owner and status of an offering, for permission checks.
pub fn owner_of(conn: &Connection, id: &str) -> rusqlite::Result<Option<(String, OfferingStatus)>> {
    conn.prepare_cached("SELECT tutor_id, status FROM offerings WHERE id = ?1")?
        .query_row([id], |row| {
            let status: String = row.get(1)?;
            Ok((
                row.get(0)?,
                OfferingStatus::parse(&status).unwrap_or(OfferingStatus::Draft),
            ))
        })
        .optional()
}

/// Whether an offering with this slug exists, in any status.
pub fn slug_exists(conn: &Connection, slug: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM offerings WHERE slug = ?1)")?
        .query_row([slug], |row| row.get(0))
}

/// The first free slug of `base`, `base-2`, `base-3`, ...
pub fn free_slug(conn: &Connection, base: &str) -> rusqlite::Result<String> {
    if !slug_exists(conn, base)? {
        return Ok(base.to_string());
    }
    for n in 2.. {
        let candidate = format!("{base}-{n}");
        if !slug_exists(conn, &candidate)? {
            return Ok(candidate);
        }
    }
    unreachable!("the loop above only ends by returning")
}

#[cfg(test)]
mod tests {
    use super::match_expression;

    #[test]
    fn fts_syntax_is_neutralized() {
        assert_eq!(match_expression("rust"), Some("\"rust\"*".into()));
        assert_eq!(
            match_expression("\"py\" AND (NEAR* -x"),
            Some("\"py\" \"AND\" \"NEAR\" \"x\"*".into())
        );
        assert_eq!(match_expression("*** \"\" ()"), None);
        assert_eq!(
            match_expression("São  Paulo"),
            Some("\"São\" \"Paulo\"*".into())
        );
    }
}
