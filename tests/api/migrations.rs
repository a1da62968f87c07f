//! Migrations on an empty and on an already-migrated database, and refusal of
//! a database written by a newer schema.

use wemaster::db::{self, Db, OpenError};

use crate::helpers::{run_binary, test_config};

fn tables(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn empty_database_is_migrated_to_the_latest_version() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let (_db, report) = Db::open(&config.database).expect("opens");
    assert_eq!(report.from, 0);
    assert_eq!(report.to, db::schema_version());
    let names = tables(&config.database.path);
    for table in ["users", "offerings", "variants", "offering_tags"] {
        assert!(
            names.iter().any(|n| n == table),
            "{table} missing: {names:?}"
        );
    }
    let conn = rusqlite::Connection::open(&config.database.path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn already_migrated_database_is_left_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    drop(Db::open(&config.database).expect("first open"));
    let (_db, report) = Db::open(&config.database).expect("second open");
    assert_eq!(report.from, report.to);
}

#[test]
fn email_uniqueness_ignores_case() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    drop(Db::open(&config.database).unwrap());
    let conn = rusqlite::Connection::open(&config.database.path).unwrap();
    let insert = "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
                  VALUES (?1, ?2, 'x', 'STUDENT', 't', 't')";
    conn.execute(insert, ["1", "Sam@Example.com"]).unwrap();
    let err = conn.execute(insert, ["2", "sam@example.COM"]).unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");
}

#[test]
fn newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    drop(Db::open(&config.database).unwrap());
    let conn = rusqlite::Connection::open(&config.database.path).unwrap();
    conn.pragma_update(None, "user_version", 42).unwrap();
    drop(conn);
    match Db::open(&config.database) {
        Err(OpenError::TooNew { found, known, .. }) => {
            assert_eq!(found, 42);
            assert_eq!(known, db::schema_version());
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
    let path = config.database.path.to_str().unwrap();
    let (status, _, stderr) = run_binary(
        dir.path(),
        &["migrate"],
        &[("WEMASTER_DATABASE__PATH", path)],
    );
    assert_eq!(status, 1);
    assert!(stderr.contains("newer"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
