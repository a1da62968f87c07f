//! SQLite access: one writer connection that serializes every write, a pool
//! of read-only connections, embedded forward-only migrations, and the one
//! helper that moves blocking database work off the async runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

pub mod lock;

use crate::config::{Checkpoints, DatabaseConfig};
use crate::error::Error;

/// Every migration, in order. Append only: a released migration never changes.
const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("migrations/0001_users_and_catalogue.sql")),
    M::up(include_str!("migrations/0002_auth.sql")),
    M::up(include_str!("migrations/0003_catalogue_search.sql")),
    M::up(include_str!("migrations/0004_orders_payments.sql")),
    M::up(include_str!("migrations/0005_session_lookup.sql")),
    M::up(include_str!("migrations/0006_early_refunds.sql")),
    M::up(include_str!("migrations/0007_sign_in_lockouts.sql")),
    M::up(include_str!("migrations/0008_seats.sql")),
    M::up(include_str!("migrations/0009_admin_actions.sql")),
    M::up(include_str!("migrations/0010_mail.sql")),
];

/// The schema version this binary writes.
pub fn schema_version() -> usize {
    MIGRATIONS.len()
}

fn migrations() -> Migrations<'static> {
    Migrations::from_slice(MIGRATIONS)
}

/// A connection to a fresh in-memory database at the current schema, with
/// foreign keys on, for the unit tests of the stores.
#[cfg(test)]
pub fn in_memory() -> Connection {
    let mut conn = Connection::open_in_memory().expect("in-memory database");
    conn.pragma_update(None, "foreign_keys", true)
        .expect("foreign keys");
    migrations().to_latest(&mut conn).expect("migrates");
    conn
}

/// A database file this binary cannot use.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "database {path} has schema version {found}, newer than the {known} this wemaster knows; \
         run a newer wemaster or restore a backup"
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What `migrate` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationReport {
    pub from: usize,
    pub to: usize,
}

type SqlitePool = Pool<SqliteConnectionManager>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    /// Pool of exactly one connection: SQLite allows one writer at a time, so
    /// writers queue here instead of spinning on `SQLITE_BUSY`.
    writer: SqlitePool,
    /// Read-only connections; WAL lets them read while the writer writes.
    readers: SqlitePool,
    path: Arc<PathBuf>,
    /// Who checkpoints the WAL: this process or Litestream.
    checkpoints: Checkpoints,
}

impl Db {
    /// Opens (creating the file and its folder if needed) and migrates the
    /// database, then builds the pools.
    pub fn open(config: &DatabaseConfig) -> Result<(Self, MigrationReport), OpenError> {
        let path = config.path.clone();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create folder {}", parent.display()))?;
        }
        let report = migrate_file(&path, config.busy_timeout_ms)?;

        let busy_timeout = config.busy_timeout_ms;
        // SQLite checkpoints automatically after a commit that leaves 1000 or
        // more pages in the WAL. Litestream must copy every WAL frame before
        // the WAL restarts, so when it replicates the file it does all the
        // checkpointing and ours are off (its "tips": wal_autocheckpoint = 0).
        let autocheckpoint = match config.checkpoints {
            Checkpoints::Wemaster => 1000,
            Checkpoints::Litestream => 0,
        };
        let pragmas = move |conn: &mut Connection| {
            conn.busy_timeout(Duration::from_millis(busy_timeout))?;
            conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
            conn.pragma_update(None, "wal_autocheckpoint", autocheckpoint)?;
            conn.set_prepared_statement_cache_capacity(64);
            Ok(())
        };
        let wait = Duration::from_millis(config.pool_timeout_ms);
        let writer = Pool::builder()
            .max_size(1)
            .connection_timeout(wait)
            .build(SqliteConnectionManager::file(&path).with_init(move |conn| {
                pragmas(conn)?;
                // Transactions take the write lock when they begin. A
                // deferred one that read first and then writes gets
                // SQLITE_BUSY at once, without waiting the busy timeout,
                // if another process wrote in between; Litestream is such a
                // process (its bookkeeping tables, its checkpoints).
                conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
                Ok(())
            }))
            .with_context(|| format!("cannot open database {}", path.display()))?;
        let readers = Pool::builder()
            .max_size(config.read_pool_size)
            .min_idle(Some(1))
            .connection_timeout(wait)
            .build(
                SqliteConnectionManager::file(&path)
                    .with_flags(
                        OpenFlags::SQLITE_OPEN_READ_ONLY
                            | OpenFlags::SQLITE_OPEN_NO_MUTEX
                            | OpenFlags::SQLITE_OPEN_URI,
                    )
                    .with_init(pragmas),
            )
            .with_context(|| format!("cannot open database {}", path.display()))?;
        let db = Db {
            writer,
            readers,
            path: Arc::new(path),
            checkpoints: config.checkpoints,
        };
        Ok((db, report))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version the file holds now; `/readyz` compares it with
    /// [`schema_version`].
    pub async fn current_schema_version(&self) -> Result<usize, Error> {
        self.read(|conn| {
            let v: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
            Ok(usize::try_from(v).unwrap_or(0))
        })
        .await
    }

    /// Runs `f` on a read-only connection, off the async runtime.
    pub async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let pool = self.readers.clone();
        run_blocking(move || timed("read", &pool, |conn| f(conn))).await
    }

    /// Runs `f` on the writer connection, off the async runtime. Writes are
    /// serialized: one runs at a time, the rest queue for the connection.
    pub async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let pool = self.writer.clone();
        run_blocking(move || timed("write", &pool, f)).await
    }

    /// The writer connection for command-line tools that run outside a runtime.
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        f(&mut *checkout(&self.writer)?)
    }

    /// Checkpoints the WAL at shutdown. On its own, the process flushes
    /// the whole WAL into the main file and truncates it, so the database
    /// closes clean. Under Litestream only a PASSIVE checkpoint runs: it
    /// copies what no reader still needs and never restarts or truncates
    /// the WAL, so Litestream's final sync still finds every frame; a
    /// TRUNCATE would wait out the busy timeout on Litestream's read lock
    /// and, if it won, make Litestream upload a fresh snapshot.
    pub fn close(&self) {
        let mode = match self.checkpoints {
            Checkpoints::Wemaster => "TRUNCATE",
            Checkpoints::Litestream => "PASSIVE",
        };
        let result = checkout(&self.writer).and_then(|conn| {
            conn.execute_batch("PRAGMA optimize;")?;
            // (busy, WAL frames, frames checkpointed)
            let (busy, frames, done): (i64, i64, i64) =
                conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
            Ok((busy, frames, done))
        });
        match result {
            Ok((busy, frames, done)) => tracing::info!(
                path = %self.path.display(),
                checkpoint = mode,
                complete = busy == 0 && frames == done,
                "database closed"
            ),
            Err(e) => tracing::warn!(error = %e, "database checkpoint at shutdown failed"),
        }
    }
}

/// Checks out a connection and runs `f` on it, recording the wait for the
/// connection and the time `f` took.
fn timed<T>(
    pool_name: &'static str,
    pool: &SqlitePool,
    f: impl FnOnce(&mut Connection) -> Result<T, Error>,
) -> Result<T, Error> {
    let started = std::time::Instant::now();
    let mut conn = checkout(pool)?;
    let waited = started.elapsed();
    let result = f(&mut conn);
    metrics::histogram!(crate::metrics::DB_POOL_WAIT, "pool" => pool_name)
        .record(waited.as_secs_f64());
    metrics::histogram!(crate::metrics::DB_STATEMENT, "pool" => pool_name)
        .record((started.elapsed() - waited).as_secs_f64());
    result
}

fn checkout(pool: &SqlitePool) -> Result<PooledConnection<SqliteConnectionManager>, Error> {
    pool.get().map_err(|e| {
        tracing::warn!(error = %e, "no database connection free in time");
        Error::unavailable("the database is busy, try again shortly", 1)
    })
}

/// Moves blocking work to tokio's blocking pool.
pub async fn run_blocking<T, F>(f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("blocking task failed: {e}")))?
}

/// Sets WAL mode and brings the schema of the file at `path` up to date,
/// refusing a file written by a newer binary.
pub fn migrate_file(path: &Path, busy_timeout_ms: u64) -> Result<MigrationReport, OpenError> {
    let mut conn = Connection::open(path)
        .with_context(|| format!("cannot open database {}", path.display()))?;
    conn.busy_timeout(Duration::from_millis(busy_timeout_ms))
        .context("cannot set busy timeout")?;
    // As on the writer connection: Litestream may write its bookkeeping
    // tables while the migrations run.
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    // journal_mode is persistent in the file; setting it once here is enough.
    conn.pragma_update(None, "journal_mode", "WAL")
        .with_context(|| format!("cannot switch {} to WAL", path.display()))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .context("cannot enable foreign keys")?;

    let from: usize = conn
        .pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))
        .with_context(|| format!("{} is not a SQLite database", path.display()))?
        .try_into()
        .unwrap_or(usize::MAX);
    let known = schema_version();
    if from > known {
        return Err(OpenError::TooNew {
            path: path.to_path_buf(),
            found: from,
            known,
        });
    }
    migrations()
        .to_latest(&mut conn)
        .with_context(|| format!("migrating {} failed", path.display()))?;
    if from < known {
        tracing::info!(from, to = known, path = %path.display(), "database migrated");
    }
    Ok(MigrationReport { from, to: known })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().expect("migrations validate");
    }

    #[test]
    fn seats_of_orders_from_before_seats_were_counted_are_counted() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 7).unwrap();
        conn.execute_batch(
            "INSERT INTO users VALUES ('u', 'a@b.c', 'x', NULL, 'STUDENT', 't', 't');
             INSERT INTO offerings (id, slug, tutor_id, type, title, status, price_from,
                 currency, created_at, updated_at)
             VALUES ('o', 'o', 'u', 'GROUP', 'O', 'PUBLISHED', 1, 'usd', 't', 't');
             INSERT INTO variants (id, offering_id, position, name, price, currency, capacity)
             VALUES ('v', 'o', 0, 'V', 1, 'usd', 10);
             INSERT INTO orders (id, user_id, status, amount, currency, payment_provider,
                 expires_at, created_at, updated_at)
             VALUES ('pending', 'u', 'PENDING_PAYMENT', 1, 'usd', 'dev', 'z', 't', 't'),
                    ('paid', 'u', 'PAID', 1, 'usd', 'dev', 'z', 't', 't'),
                    ('gone', 'u', 'CANCELLED', 1, 'usd', 'dev', 'z', 't', 't');
             INSERT INTO order_items (id, order_id, position, offering_id, variant_id, title,
                 unit_price, quantity, line_total)
             VALUES ('i1', 'pending', 0, 'o', 'v', 'T', 1, 2, 2),
                    ('i2', 'paid', 0, 'o', 'v', 'T', 1, 3, 3),
                    ('i3', 'gone', 0, 'o', 'v', 'T', 1, 4, 4);",
        )
        .unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let taken: i64 = conn
            .query_row("SELECT seats_taken FROM variants WHERE id = 'v'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(taken, 5, "the pending order's 2 and the paid one's 3");
        let held: (String, i64) = conn
            .query_row("SELECT order_id, quantity FROM seat_holds", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(held, ("pending".to_string(), 2));
    }

    fn open_with(dir: &Path, checkpoints: Checkpoints) -> Db {
        let config = DatabaseConfig {
            path: dir.join("wemaster.db"),
            checkpoints,
            ..DatabaseConfig::default()
        };
        Db::open(&config).expect("opens").0
    }

    fn autocheckpoint(db: &Db) -> i64 {
        db.write_blocking(|conn| {
            Ok(conn.pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))?)
        })
        .unwrap()
    }

    fn wal_bytes(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("wemaster.db-wal")).map_or(0, |m| m.len())
    }

    /// Commits a few pages to the WAL.
    fn write_some(db: &Db) {
        db.write_blocking(|conn| {
            conn.execute_batch(
                "CREATE TABLE t(x);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
                 INSERT INTO t SELECT randomblob(4000) FROM n;",
            )?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_write_transaction_holds_the_write_lock_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_with(dir.path(), Checkpoints::Litestream);
        // Another process writing, as Litestream does; it does not wait.
        let other = Connection::open(dir.path().join("wemaster.db")).unwrap();
        other.busy_timeout(Duration::ZERO).unwrap();
        other.execute_batch("CREATE TABLE theirs(x);").unwrap();
        db.write_blocking(|conn| {
            let tx = conn.transaction()?;
            let _: i64 = tx.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
            // A deferred transaction would have let this in and then failed
            // its own write below with SQLITE_BUSY, busy timeout or not.
            assert!(other.execute("INSERT INTO theirs VALUES (1)", []).is_err());
            tx.execute("CREATE TABLE ours(x)", [])?;
            tx.commit()?;
            Ok(())
        })
        .expect("the write transaction commits");
    }

    #[test]
    fn on_its_own_the_server_checkpoints_and_truncates_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_with(dir.path(), Checkpoints::Wemaster);
        // A second connection, so closing ours is not the last close.
        let _other = Connection::open(dir.path().join("wemaster.db")).unwrap();
        assert_eq!(autocheckpoint(&db), 1000);
        write_some(&db);
        assert!(wal_bytes(dir.path()) > 0);
        db.close();
        assert_eq!(wal_bytes(dir.path()), 0, "TRUNCATE empties the WAL");
    }

    #[test]
    fn under_litestream_the_server_never_restarts_or_truncates_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_with(dir.path(), Checkpoints::Litestream);
        // Litestream's connection stays open while the server stops.
        let _litestream = Connection::open(dir.path().join("wemaster.db")).unwrap();
        assert_eq!(autocheckpoint(&db), 0, "automatic checkpoints are off");
        write_some(&db);
        let before = wal_bytes(dir.path());
        assert!(before > 0);
        db.close();
        // (`PRAGMA optimize` may append a few frames of its own.)
        assert!(
            wal_bytes(dir.path()) >= before,
            "every frame stays for Litestream to read"
        );
    }
}
