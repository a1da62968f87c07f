//! SQL for the catalogue.

use rusqlite::{Connection, params};

use super::model::NewOffering;

/// Inserts an offering with its tags and variants. Run inside a transaction.
pub fn insert_offering(conn: &Connection, o: &NewOffering) -> rusqlite::Result<()> {
    let cheapest = o.variants.iter().min_by_key(|v| v.price);
    let (price_from, currency) = cheapest
        .map(|v| (v.price, v.currency.as_str()))
        .unwrap_or((0, "usd"));
    let published_at =
        (o.status == super::model::OfferingStatus::Published).then_some(&o.created_at);
    conn.prepare_cached(
        "INSERT INTO offerings (id, slug, tutor_id, type, title, summary, description, thumbnail,
             category, level, language, status, price_from, currency, created_at, updated_at,
             published_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16)",
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
        o.level,
        o.language,
        o.status.as_str(),
        price_from,
        currency,
        o.created_at,
        published_at,
    ])?;
    let mut tag = conn.prepare_cached(
        "INSERT OR IGNORE INTO offering_tags (offering_id, tag, position) VALUES (?1, ?2, ?3)",
    )?;
    for (position, t) in o.tags.iter().enumerate() {
        tag.execute(params![o.id, t, position as i64])?;
    }
    let mut variant = conn.prepare_cached(
        "INSERT INTO variants (id, offering_id, position, name, price, currency, duration_minutes,
             sessions, capacity, is_default)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (position, v) in o.variants.iter().enumerate() {
        variant.execute(params![
            crate::ids::new_id(),
            o.id,
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
    Ok(())
}

/// Whether an offering with this slug exists, in any status.
pub fn slug_exists(conn: &Connection, slug: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM offerings WHERE slug = ?1)")?
        .query_row([slug], |row| row.get(0))
}
