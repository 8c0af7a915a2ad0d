//! The backend harness: every test runs on SQLite (a temporary file and `sqlite::memory:`)
//! and, when `GREG_TEST_POSTGRES_URL` is set, on PostgreSQL in a schema of its own (created
//! for the test, dropped after it passes), so parallel tests and repeated runs never meet.
//! Plus the fixture data the tests store: the real `pull_request.synchronize` delivery.

use greg_core::{BuildContext, JobName, PrNumber, RepoName, Sha};
use greg_store::{NewBuild, NewDelivery, Store};
use sqlx::Connection;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use tempfile::TempDir;

/// The environment variable naming a PostgreSQL database the tests may create schemas in.
const POSTGRES_ENV: &str = "GREG_TEST_POSTGRES_URL";

/// One database a test runs against. Cheap to clone; the harness owns its clean-up.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// `sqlite-file`, `sqlite-memory` or `postgres`.
    pub label: &'static str,
    /// The URL to give [`Store::connect`]; connecting again reaches the same data, except
    /// for `sqlite-memory`.
    pub url: String,
}

impl TestDb {
    /// Opens the store, failing the test with the reason when it cannot.
    pub async fn connect(&self) -> Store {
        match Store::connect(&self.url).await {
            Ok(store) => store,
            Err(e) => panic!("{}: cannot open {}: {e}", self.label, self.url),
        }
    }

    /// Runs raw SQL behind the store's back (to corrupt a row on purpose).
    pub async fn execute(&self, sql: &'static str) {
        if self.label == "postgres" {
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("postgres connects");
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .expect("raw sql runs");
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("sqlite connects");
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .expect("raw sql runs");
        }
    }
}

impl TestDb {
    /// Reads one integer behind the store's back.
    pub async fn scalar(&self, sql: &'static str) -> i64 {
        if self.label == "postgres" {
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("postgres connects");
            sqlx::query_scalar(sql)
                .fetch_one(&mut conn)
                .await
                .expect("query runs")
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("sqlite connects");
            sqlx::query_scalar(sql)
                .fetch_one(&mut conn)
                .await
                .expect("query runs")
        }
    }
}

/// What the harness removes after a test: the temporary directory, the PostgreSQL schema.
enum Cleanup {
    Dir { _dir: TempDir },
    Nothing,
    PgSchema { base_url: String, schema: String },
}

impl Cleanup {
    async fn run(self) {
        if let Cleanup::PgSchema { base_url, schema } = self {
            let mut conn = sqlx::PgConnection::connect(&base_url)
                .await
                .expect("postgres connects");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut conn)
            .await
            .expect("test schema dropped");
        }
    }
}

fn sqlite_file() -> (TestDb, Cleanup) {
    let dir = tempfile::tempdir().expect("temporary directory");
    // An absolute path: sqlite:///tmp/.../greg.db, the `sqlite:///abs/path` form.
    let url = format!("sqlite://{}", dir.path().join("greg.db").display());
    let db = TestDb {
        label: "sqlite-file",
        url,
    };
    (db, Cleanup::Dir { _dir: dir })
}

fn sqlite_memory() -> (TestDb, Cleanup) {
    let db = TestDb {
        label: "sqlite-memory",
        url: "sqlite::memory:".to_owned(),
    };
    (db, Cleanup::Nothing)
}

/// A fresh schema in the PostgreSQL test database, or `None` (with the skip notice) when
/// `GREG_TEST_POSTGRES_URL` is not set.
async fn postgres() -> Option<(TestDb, Cleanup)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Ok(base_url) = std::env::var(POSTGRES_ENV) else {
        println!("skipped: {POSTGRES_ENV} not set");
        return None;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let schema = format!(
        "greg_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    );
    let mut conn = sqlx::PgConnection::connect(&base_url)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV}: cannot connect: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("test schema created");
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let url = format!("{base_url}{separator}options[search_path]={schema}");
    let db = TestDb {
        label: "postgres",
        url,
    };
    Some((db, Cleanup::PgSchema { base_url, schema }))
}

/// Runs `test` once per backend with a fresh, migrated store, closing it afterwards.
pub async fn run_on_all_backends<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut dbs = vec![sqlite_file(), sqlite_memory()];
    dbs.extend(postgres().await);
    for (db, cleanup) in dbs {
        println!("backend: {}", db.label);
        let store = db.connect().await;
        test(store.clone()).await;
        store.close().await;
        cleanup.run().await;
    }
}

/// Runs `test` once per backend whose data outlives a connection (SQLite file, PostgreSQL):
/// for restarts, two stores on one database, and rows corrupted behind the store's back.
pub async fn run_on_persistent_backends<F, Fut>(test: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut dbs = vec![sqlite_file()];
    dbs.extend(postgres().await);
    for (db, cleanup) in dbs {
        println!("backend: {}", db.label);
        test(db).await;
        cleanup.run().await;
    }
}

/// The facts of the real GitHub `pull_request.synchronize` delivery
/// (tests/data/github/pull_request.synchronize.json, GitHub's documented example).
#[derive(Debug, Clone)]
pub struct Synchronize {
    /// The raw delivery body.
    pub payload: String,
    pub repo: RepoName,
    pub pr: PrNumber,
    /// `after`: the new head.
    pub head: Sha,
    /// `before`: the head it replaced.
    pub previous: Sha,
    /// `pull_request.head.ref`.
    pub branch: String,
    /// `pull_request.base.ref`.
    pub target: String,
}

/// Reads [`Synchronize`] from the fixture.
pub fn synchronize() -> Synchronize {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/github/pull_request.synchronize.json"
    );
    let payload = std::fs::read_to_string(path).expect("fixture readable");
    let json: serde_json::Value = serde_json::from_str(&payload).expect("fixture is JSON");
    let text = |pointer: &str| {
        json.pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("fixture has {pointer}"))
            .to_owned()
    };
    let number = json
        .pointer("/pull_request/number")
        .and_then(|v| v.as_u64())
        .expect("fixture has a pull-request number");
    Synchronize {
        repo: RepoName::parse(&text("/repository/full_name")).expect("owner/name"),
        pr: PrNumber(number),
        head: Sha::parse(&text("/after")).expect("full sha"),
        previous: Sha::parse(&text("/before")).expect("full sha"),
        branch: text("/pull_request/head/ref"),
        target: text("/pull_request/base/ref"),
        payload,
    }
}

/// The GitHub delivery `id` carrying the fixture payload, received at `received_ms`.
pub fn github_delivery(id: &str, payload: &str, received_ms: i64) -> NewDelivery {
    NewDelivery {
        source: "github".to_owned(),
        delivery_id: id.to_owned(),
        repo_key: "Codertocat/Hello-World".to_owned(),
        event: "pull_request".to_owned(),
        payload: payload.to_owned(),
        received_ms,
    }
}

/// A Jenkins test build of the fixture's head, as the engine records it before triggering.
pub fn test_build(fx: &Synchronize, now_ms: i64) -> NewBuild {
    NewBuild {
        repo: fx.repo.clone(),
        pr: Some(fx.pr),
        sha: fx.head.clone(),
        context: BuildContext::Test,
        builder: "jenkins".to_owned(),
        job: JobName::from("hello-world-test"),
        branch: fx.branch.clone(),
        target: None,
        now_ms,
    }
}
