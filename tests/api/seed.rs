//! Demo data: seeded on an empty database, and seeding twice changes nothing.

use crate::helpers::{run_binary, spawn_app, spawn_app_with};

fn counts(path: &std::path::Path) -> (i64, i64, i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    (count("users"), count("offerings"), count("variants"))
}

#[tokio::test]
async fn fresh_database_gets_the_demo_accounts_and_offerings() {
    let app = spawn_app().await;
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    for (email, role) in [
        ("admin@test.com", "ADMIN"),
        ("tutor@test.com", "TUTOR"),
        ("student@test.com", "STUDENT"),
        ("student5@test.com", "STUDENT"),
    ] {
        let found: String = conn
            .query_row("SELECT role FROM users WHERE email = ?1", [email], |r| {
                r.get(0)
            })
            .unwrap_or_else(|_| panic!("{email} missing"));
        assert_eq!(found, role);
    }
    let published: i64 = conn
        .query_row(
            "SELECT count(*) FROM offerings WHERE status = 'PUBLISHED'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(published >= 20);
    let types: i64 = conn
        .query_row(
            "SELECT count(DISTINCT type) FROM offerings WHERE status = 'PUBLISHED'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(types, 4, "every type");
    let tutors: i64 = conn
        .query_row("SELECT count(DISTINCT tutor_id) FROM offerings", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(tutors >= 3);
    let without_default: i64 = conn
        .query_row(
            "SELECT count(*) FROM offerings o WHERE NOT EXISTS
               (SELECT 1 FROM variants v WHERE v.offering_id = o.id AND v.is_default = 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(without_default, 0);
}

#[tokio::test]
async fn seeding_twice_changes_nothing() {
    let app = spawn_app().await;
    let before = counts(&app.db_path);
    let path = app.db_path.clone();
    let dir = app.stop().await;
    let env = [
        ("WEMASTER_DATABASE__PATH", path.to_str().unwrap()),
        ("WEMASTER_AUTH__ARGON2_MEMORY_KIB", "64"),
        ("WEMASTER_AUTH__ARGON2_ITERATIONS", "1"),
    ];
    let (status, stdout, stderr) = run_binary(dir.path(), &["seed"], &env);
    assert_eq!(status, 0, "{stderr}");
    assert!(
        stdout.contains("seeded 0 accounts and 0 offerings"),
        "{stdout}"
    );
    assert_eq!(counts(&path), before);
}

#[tokio::test]
async fn seed_on_empty_can_be_turned_off() {
    let app = spawn_app_with(|c| c.demo.seed_on_empty = false).await;
    assert_eq!(counts(&app.db_path), (0, 0, 0));
}
