//! Demo data: the fixtures in `data/demo.json` (embedded in the binary),
//! loaded by `wemaster seed` and on a fresh database when
//! `demo.seed_on_empty` is set. Seeding is idempotent: accounts are matched by
//! email and offerings by slug, and what exists is left alone. Offerings and
//! their variants get fixed ids (`ids::demo_offering_id`), which the API's
//! examples name.

use serde::Deserialize;

use crate::auth::accounts::{self, NewAccount};
use crate::auth::model::{NewUser, Role};
use crate::auth::password::PasswordHasher;
use crate::auth::repo as users;
use crate::catalogue::model::{Level, NewOffering, NewVariant, OfferingStatus, OfferingType};
use crate::catalogue::repo as catalogue;
use crate::clock::Clock;
use crate::db::Db;
use crate::error::Error;
use crate::text::Text;

const FIXTURES: &str = include_str!("../data/demo.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixtures {
    users: Vec<FixtureUser>,
    offerings: Vec<FixtureOffering>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureUser {
    email: String,
    password: String,
    name: String,
    role: Role,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FixtureOffering {
    slug: String,
    /// Email of the tutor account that owns it.
    tutor: String,
    #[serde(rename = "type")]
    kind: OfferingType,
    title: String,
    summary: Option<String>,
    description: Option<String>,
    thumbnail: Option<String>,
    category: Option<String>,
    tags: Vec<String>,
    level: Option<Level>,
    language: Option<String>,
    status: OfferingStatus,
    variants: Vec<NewVariant>,
}

/// What one seeding run added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub users_added: usize,
    pub offerings_added: usize,
}

/// One login of each role from the demo fixtures, for the start-up line:
/// `admin@test.com / admin123 (ADMIN), tutor@test.com / password123 (TUTOR), ...`.
pub fn login_summary() -> String {
    let Ok(fixtures) = serde_json::from_str::<Fixtures>(FIXTURES) else {
        return String::new();
    };
    let mut shown: Vec<&FixtureUser> = Vec::new();
    for user in &fixtures.users {
        if !shown.iter().any(|u| u.role == user.role) {
            shown.push(user);
        }
    }
    let logins: Vec<String> = shown
        .iter()
        .map(|u| format!("{} / {} ({})", u.email, u.password, u.role.as_str()))
        .collect();
    format!(
        "{}; {} accounts in all (data/demo.json)",
        logins.join(", "),
        fixtures.users.len()
    )
}

/// Loads the demo fixtures into the database. Blocking: hashes passwords.
pub fn seed(db: &Db, hasher: &PasswordHasher) -> Result<SeedReport, Error> {
    let fixtures: Fixtures = serde_json::from_str(FIXTURES)?;

    // Hash only the passwords of accounts that are missing, outside the
    // write transaction so the writer is not held for seconds.
    let missing: Vec<NewAccount> = db.write_blocking(|conn| {
        let mut missing = Vec::new();
        for user in &fixtures.users {
            if users::id_by_email(conn, &user.email)?.is_none() {
                let name = Some(Text::from(user.name.as_str()));
                missing.push(NewAccount::check(
                    &user.email,
                    user.password.clone(),
                    name,
                    user.role,
                )?);
            }
        }
        Ok(missing)
    })?;
    let hashes =
        hasher.hash_blocking(missing.iter().map(|a| a.password().to_string()).collect())?;
    let clock = Clock::system();
    let new_users: Vec<NewUser> = missing
        .into_iter()
        .zip(hashes)
        .map(|(account, password_hash)| account.hashed(password_hash, &clock).verified())
        .collect();

    db.write_blocking(|conn| {
        let tx = conn.transaction()?;
        let mut report = SeedReport {
            users_added: 0,
            offerings_added: 0,
        };
        for user in &new_users {
            if users::id_by_email(&tx, &user.email)?.is_none() {
                accounts::insert(&tx, user)?;
                report.users_added += 1;
            }
        }
        let count = fixtures.offerings.len();
        let now = Clock::system().now();
        for (i, o) in fixtures.offerings.into_iter().enumerate() {
            if catalogue::slug_exists(&tx, &o.slug)? {
                continue;
            }
            let tutor_id = users::id_by_email(&tx, &o.tutor)?.ok_or_else(|| {
                Error::internal(anyhow::anyhow!("fixture tutor {} is missing", o.tutor))
            })?;
            // Spread creation times so the default newest-first sort is stable
            // and matches the fixture order.
            let created = now - time::Duration::minutes((count - i) as i64);
            let variants = o
                .variants
                .into_iter()
                .enumerate()
                .map(|(position, v)| NewVariant {
                    id: Some(crate::ids::demo_variant_id(&o.slug, position)),
                    ..v
                })
                .collect();
            catalogue::insert_offering(
                &tx,
                &NewOffering {
                    id: crate::ids::demo_offering_id(&o.slug),
                    slug: o.slug,
                    tutor_id,
                    kind: o.kind,
                    title: o.title,
                    summary: o.summary,
                    description: o.description,
                    thumbnail: o.thumbnail,
                    category: o.category,
                    tags: o.tags,
                    level: o.level,
                    language: o.language,
                    status: o.status,
                    variants,
                    created_at: crate::clock::format(created),
                },
            )?;
            report.offerings_added += 1;
        }
        tx.commit()?;
        Ok(report)
    })
}

/// Seeds only when the database holds no accounts yet.
pub fn seed_if_empty(db: &Db, hasher: &PasswordHasher) -> Result<Option<SeedReport>, Error> {
    let empty = db.write_blocking(|conn| Ok(users::count_users(conn)? == 0))?;
    if empty {
        seed(db, hasher).map(Some)
    } else {
        Ok(None)
    }
}
