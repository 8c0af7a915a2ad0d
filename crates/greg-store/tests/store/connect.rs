//! Opening the store: URL forms, SQLite settings, migrations on reconnect, and errors that
//! name the database without its password.

use crate::common::{github_delivery, run_on_all_backends, run_on_persistent_backends};
use greg_store::{Inserted, Store, StoreError};
use sqlx::Connection;

#[tokio::test]
async fn every_backend_answers_ping_and_names_itself() {
    run_on_all_backends(|store| async move {
        store.ping().await.expect("ping");
        let shown = store.to_string();
        assert!(
            shown.starts_with(&format!("{} store at ", store.backend())),
            "{shown}"
        );
        assert!(["sqlite", "postgres"].contains(&store.backend()));
    })
    .await;
}

#[tokio::test]
async fn a_missing_sqlite_file_is_created_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("greg.db");
    assert!(!path.exists());
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url).await.expect("created");
    assert_eq!(store.backend(), "sqlite");
    assert!(path.exists());
    assert_eq!(store.to_string(), format!("sqlite store at {url}"));
    store.close().await;

    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("opens");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn each_in_memory_store_is_its_own_database() {
    let a = Store::connect("sqlite::memory:").await.expect("opens");
    let b = Store::connect("sqlite::memory:").await.expect("opens");
    let inserted = a
        .insert_deliveries(&[github_delivery("d1", "{}", 1)])
        .await
        .expect("inserted");
    assert!(matches!(inserted[..], [Inserted::New(_)]));
    assert_eq!(a.pending_deliveries(10).await.expect("pending").len(), 1);
    assert_eq!(b.pending_deliveries(10).await.expect("pending"), []);
}

#[tokio::test]
async fn migrations_are_idempotent_on_reconnect() {
    run_on_persistent_backends(|db| async move {
        let first = db.connect().await;
        first
            .insert_deliveries(&[github_delivery("d1", "{}", 1)])
            .await
            .expect("inserted");
        // A second store while the first is open, then a reconnect after it closed.
        let second = db.connect().await;
        first.close().await;
        second.close().await;
        let third = db.connect().await;
        assert_eq!(
            third.pending_deliveries(10).await.expect("pending").len(),
            1
        );
        third.close().await;

        let applied = db
            .scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .await;
        // One per file of migrations/sqlite (the PostgreSQL set has the same files).
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .expect("migrations")
            .count();
        assert_eq!(
            applied,
            i64::try_from(files).expect("count"),
            "each migration recorded once"
        );
    })
    .await;
}

#[tokio::test]
async fn an_unknown_scheme_is_refused_without_its_password() {
    let err = Store::connect("mysql://greg:hunter2@db.example.com/greg")
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "unsupported database URL mysql://greg:***@db.example.com/greg: \
         expected sqlite://FILE, sqlite::memory: or postgres://..."
    );
}

#[tokio::test]
async fn a_sqlite_url_without_a_file_is_refused() {
    let err = Store::connect("sqlite://").await.expect_err("refused");
    assert_eq!(
        err.to_string(),
        "unsupported database URL sqlite://: no database file named"
    );
    let err = Store::connect("sqlite://greg.db?mode=bogus")
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
}

#[tokio::test]
async fn a_sqlite_file_in_a_missing_directory_is_a_connect_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}/missing/greg.db", dir.path().display());
    let err = Store::connect(&url).await.expect_err("cannot open");
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to {url}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_connect_error_without_its_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = Store::connect("postgres://greg:hunter2@127.0.0.1:1/greg?password=hunter3")
        .await
        .expect_err("unreachable");
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.starts_with("cannot connect to postgres://greg:***@127.0.0.1:1/greg?password=***: "),
        "{shown}"
    );
    assert!(!shown.contains("hunter"), "{shown}");
    assert!(!format!("{err:?}").contains("hunter"), "{err:?}");
}

#[tokio::test]
async fn a_postgres_store_shows_its_url_without_the_password() {
    let Ok(base) = std::env::var("GREG_TEST_POSTGRES_URL") else {
        println!("skipped: GREG_TEST_POSTGRES_URL not set");
        return;
    };
    // Only meaningful where the server ignores the password (trust authentication, as in
    // CI); elsewhere the connect error must not show it either.
    let Some(with_password) = base
        .strip_prefix("postgres://")
        .and_then(|rest| rest.split_once('@'))
        .filter(|(user, _)| !user.contains(':'))
        .map(|(user, host)| format!("postgres://{user}:hunter2@{host}"))
    else {
        println!("skipped: GREG_TEST_POSTGRES_URL already carries a password");
        return;
    };
    match Store::connect(&with_password).await {
        Ok(store) => {
            let shown = format!("{store} {store:?}");
            assert!(shown.contains(":***@"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
            store.close().await;
        }
        Err(err) => assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}"),
    }
}

#[tokio::test]
async fn the_checkpointer_keeps_the_sqlite_write_ahead_log_short() {
    // The writer checkpoints itself only at 64 MiB of log (its checkpoints stalled the commit
    // that crossed the limit); the store's checkpointer copies the log every 250 ms instead.
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("greg.db").display());
    let store = Store::connect(&url).await.expect("opens");
    let payload = format!("{{\"padding\":\"{}\"}}", "x".repeat(4096));
    // About 12 MB of deliveries: some 3,000 pages of log.
    for chunk in 0..30 {
        let batch: Vec<_> = (0..100)
            .map(|i| github_delivery(&format!("d{chunk}-{i}"), &payload, 1))
            .collect();
        store.insert_deliveries(&batch).await.expect("inserted");
    }
    // A checkpoint runs within 250 ms; the next write then starts the log over.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    store
        .insert_deliveries(&[github_delivery("after", "{}", 2)])
        .await
        .expect("inserted");

    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("opens");
    // (busy, frames in the log, frames copied): the log holds the last write only.
    let (busy, log, _copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut conn)
        .await
        .expect("pragma");
    assert_eq!(busy, 0);
    assert!(log < 100, "{log} frames in the write-ahead log");
    conn.close().await.expect("closed");

    // Everything written is there, and the store closes cleanly.
    let pending = store.pending_deliveries(10_000).await.expect("pending");
    assert_eq!(pending.len(), 3_001);
    store.close().await;
}
