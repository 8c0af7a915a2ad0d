//! Opening the store: URL parsing, connection pools per backend, migrations, health check.

use crate::StoreError;
use crate::error::{redact_url, scrub};
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long SQLite waits for another process's write lock before answering "busy".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read-only connections beside the single SQLite writer (WAL readers do not block it).
const SQLITE_READERS: u32 = 4;
/// PostgreSQL connections; writes run concurrently there.
const POSTGRES_CONNECTIONS: u32 = 8;
/// How long a call waits for a free connection before failing with a transient error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the SQLite checkpointer copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// The size (bytes) SQLite truncates the write-ahead log back to when it starts it over after
/// a complete checkpoint (`journal_size_limit`): a burst may grow it, and this gives the disk
/// back afterwards.
const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;
/// The writer's own automatic checkpoint, in pages of log (16,384 pages of 4 KiB: 64 MiB):
/// only a backstop for a checkpointer that falls behind or has stopped (SQLite's default is
/// 1,000 pages, which the checkpointer keeps the log well below).
const WRITER_CHECKPOINT_PAGES: u32 = 16_384;

/// greg's persistence. Cheap to clone (an `Arc` inside); every clone shares the pools.
///
/// Open it with [`Store::connect`]. `Display` names the backend and the URL without its
/// password.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pools: Pools,
    /// The URL with its password redacted, for logs and errors.
    shown_url: String,
    /// The database file of a SQLite file store.
    sqlite_file: Option<std::path::PathBuf>,
    /// The lock file held by [`Store::serve_exclusively`], released when the store is dropped
    /// (or the process dies).
    serving: std::sync::Mutex<Option<std::fs::File>>,
    /// The SQLite file store's checkpointer ([`Checkpointer`]); `None` for other stores and
    /// once closed.
    checkpointer: std::sync::Mutex<Option<Checkpointer>>,
}

/// The native pools of one backend.
pub(crate) enum Pools {
    /// `writer` has exactly one connection; `reader` is read-only for a file database and the
    /// same pool as `writer` for an in-memory one.
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

impl Store {
    /// Opens the database named by `url` and brings its schema up to date.
    ///
    /// Accepted URLs:
    /// - `sqlite://greg.db` (relative to the working directory), `sqlite:///abs/path/greg.db`,
    ///   `sqlite:greg.db`: a file, created if missing (its directory must exist);
    /// - `sqlite::memory:`: a private in-memory database, gone when the store is dropped;
    /// - `postgres://user:password@host:port/db` or `postgresql://...`, with libpq's URL
    ///   parameters (`sslmode`, `options=-c search_path=greg`, ...); the database must exist.
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`] for another scheme or a malformed URL,
    /// [`StoreError::Connect`] when the database cannot be opened or reached,
    /// [`StoreError::Migrate`] when the schema cannot be brought up to date. Every message
    /// shows the URL with its password redacted.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let shown_url = redact_url(url);
        let mut sqlite_file = None;
        let mut checkpointer = None;
        let pools = if url.starts_with("sqlite:") {
            if !sqlite_in_memory(url)
                && let Ok(options) = SqliteConnectOptions::from_str(url)
            {
                sqlite_file = Some(options.get_filename().to_path_buf());
            }
            let (pools, c) = connect_sqlite(url, &shown_url).await?;
            checkpointer = c;
            pools
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            connect_postgres(url, &shown_url).await?
        } else {
            return Err(StoreError::InvalidUrl {
                url: shown_url,
                reason: "expected sqlite://FILE, sqlite::memory: or postgres://...".to_owned(),
            });
        };
        let store = Store {
            inner: Arc::new(Inner {
                pools,
                shown_url,
                sqlite_file,
                serving: std::sync::Mutex::new(None),
                checkpointer: std::sync::Mutex::new(checkpointer),
            }),
        };
        tracing::info!(backend = store.backend(), url = %store.inner.shown_url, "Opened the store");
        Ok(store)
    }

    /// Claims a SQLite file database for this process alone (`greg serve` calls it at start):
    /// SQLite serves one process, since two would run the same repositories' lanes side by
    /// side (SPEC §11: replicas need PostgreSQL). Takes an exclusive lock on
    /// `<database file>.lock`, held until the store is dropped or the process ends (the
    /// operating system releases it when a process dies, so a crash never blocks the next
    /// start). PostgreSQL and in-memory stores need nothing: returns `Ok` at once.
    ///
    /// # Errors
    /// [`StoreError::InUse`] when another process holds the lock; [`StoreError::Connect`]
    /// when the lock file cannot be created.
    pub fn serve_exclusively(&self) -> Result<(), StoreError> {
        let Some(file) = &self.inner.sqlite_file else {
            return Ok(());
        };
        let mut lock_path = file.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = std::path::PathBuf::from(lock_path);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Connect {
                url: self.inner.shown_url.clone(),
                message: format!("cannot create the lock file {}: {e}", lock_path.display()),
            })?;
        match lock.try_lock() {
            Ok(()) => {
                if let Ok(mut serving) = self.inner.serving.lock() {
                    *serving = Some(lock);
                }
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
                url: self.inner.shown_url.clone(),
                lock: lock_path.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Connect {
                url: self.inner.shown_url.clone(),
                message: format!("cannot lock {}: {e}", lock_path.display()),
            }),
        }
    }

    /// Checks that the database answers a trivial query (for `/healthz`).
    ///
    /// # Errors
    /// [`StoreError::Database`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_reader!(self, pool => {
            sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map_err(StoreError::db("ping"))?;
        });
        Ok(())
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pools() {
            Pools::Sqlite { .. } => "sqlite",
            Pools::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection, waiting for calls in flight; later calls fail. Call at
    /// shutdown so that SQLite checkpoints its WAL. Gives up [`Store::serve_exclusively`]'s
    /// lock.
    pub async fn close(&self) {
        // Another process may serve the database from now on.
        if let Ok(mut serving) = self.inner.serving.lock() {
            serving.take();
        }
        let checkpointer = self
            .inner
            .checkpointer
            .lock()
            .ok()
            .and_then(|mut c| c.take());
        if let Some(c) = checkpointer {
            c.stop().await;
        }
        match self.pools() {
            Pools::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.inner.pools
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} store at {}", self.backend(), self.inner.shown_url)
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("url", &self.inner.shown_url)
            .finish()
    }
}

/// True for the URL forms sqlx opens as an in-memory database (`sqlite::memory:`,
/// `sqlite://:memory:`, `mode=memory`).
fn sqlite_in_memory(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

async fn connect_sqlite(
    url: &str,
    shown_url: &str,
) -> Result<(Pools, Option<Checkpointer>), StoreError> {
    let invalid = |reason: String| StoreError::InvalidUrl {
        url: shown_url.to_owned(),
        reason,
    };
    let in_memory = sqlite_in_memory(url);
    let options =
        SqliteConnectOptions::from_str(url).map_err(|e| invalid(scrub(&e.to_string(), url)))?;
    if !in_memory && options.get_filename().as_os_str().is_empty() {
        return Err(invalid("no database file named".to_owned()));
    }
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true);
    let connect_error = |e: sqlx::Error| StoreError::Connect {
        url: shown_url.to_owned(),
        message: scrub(&e.to_string(), url),
    };
    // A file database's writer leaves checkpoints to the checkpointer: SQLite's automatic
    // checkpoint runs inside the commit that crosses 1,000 pages of log and ends in two
    // fsyncs, and every webhook waiting on that commit waited for them (the ingestion p99).
    // The writer still checkpoints itself if the log reaches 64 MiB (a backstop).
    let writer_options = if in_memory {
        options.clone()
    } else {
        options
            .clone()
            .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string())
            .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
    };
    // One writer. An in-memory database lives as long as its connection, so that one
    // connection must never be closed for idleness or age.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(writer_options)
        .await
        .map_err(connect_error)?;
    run_migrations(&SQLITE_MIGRATIONS, &writer, shown_url).await?;
    let reader = if in_memory {
        writer.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(SQLITE_READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(connect_error)?
    };
    let checkpointer = if in_memory {
        None
    } else {
        let connection = sqlx::sqlite::SqliteConnection::connect_with(&options)
            .await
            .map_err(connect_error)?;
        Some(Checkpointer::start(connection, shown_url.to_owned()))
    };
    Ok((Pools::Sqlite { writer, reader }, checkpointer))
}

/// Copies a SQLite file store's write-ahead log into the database file every
/// [`CHECKPOINT_EVERY`], on a connection of its own, so that no commit of the writer waits
/// for a checkpoint (the writer's automatic checkpoint only fires at
/// [`WRITER_CHECKPOINT_PAGES`], a backstop).
///
/// Design note: a `PASSIVE` checkpoint never blocks the writer or the readers in WAL mode; it
/// copies what no reader still needs and stops there, so a long read only delays it. When a
/// checkpoint has copied the whole log, the writer's next transaction starts the log over
/// from its beginning (truncated to [`WAL_SIZE_LIMIT`] if a burst grew it), so the log stays
/// about one interval of writes long. Race accepted: under sustained writes (a commit every
/// millisecond) a passive checkpoint never catches up with the writer, the log starts over
/// only at the writer's backstop, and the commit that crosses it waits for the remainder to be
/// copied (a `RESTART` checkpoint from here was tried and gave a worse p99: it holds new
/// commits back while it waits). If the checkpointer stalls (or its runtime is gone), the
/// log grows until the writer's backstop checkpoint; nothing is lost either way (the log is
/// the durable copy). At close a `TRUNCATE` checkpoint empties it.
struct Checkpointer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Checkpointer {
    fn start(mut connection: sqlx::sqlite::SqliteConnection, shown_url: String) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::select! {
                    // A stop, or the store dropped without `close`.
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
                }
                match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut connection)
                    .await
                {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!(url = %shown_url, "SQLite checkpoints work again");
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(url = %shown_url, error = %e, "SQLite checkpoint failed; the write-ahead log grows until one succeeds");
                    }
                    Err(_) => {}
                }
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut connection)
                .await
            {
                tracing::warn!(url = %shown_url, error = %e, "Final SQLite checkpoint failed");
            }
            let _ = connection.close().await;
        });
        Self { stop, task }
    }

    /// Runs the last checkpoint and closes the connection.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn connect_postgres(url: &str, shown_url: &str) -> Result<Pools, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
        url: shown_url.to_owned(),
        reason: scrub(&e.to_string(), url),
    })?;
    let connect_error = |e: sqlx::Error| StoreError::Connect {
        url: shown_url.to_owned(),
        message: scrub(&e.to_string(), url),
    };
    // One plain connection first: a wrong host, password or database fails at once with
    // the server's reason, where the pool would keep retrying until its acquire timeout.
    let probe = PgConnection::connect_with(&options)
        .await
        .map_err(connect_error)?;
    probe.close().await.map_err(connect_error)?;
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(connect_error)?;
    run_migrations(&POSTGRES_MIGRATIONS, &pool, shown_url).await?;
    Ok(Pools::Postgres(pool))
}

async fn run_migrations<'a, A>(
    migrator: &Migrator,
    pool: A,
    shown_url: &str,
) -> Result<(), StoreError>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    migrator
        .run(pool)
        .await
        .map_err(|source| StoreError::Migrate {
            url: shown_url.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_in_memory_urls() {
        assert!(sqlite_in_memory("sqlite::memory:"));
        assert!(sqlite_in_memory("sqlite://:memory:"));
        assert!(sqlite_in_memory("sqlite://?mode=memory"));
        assert!(sqlite_in_memory("sqlite://x.db?cache=shared&mode=memory"));
        assert!(!sqlite_in_memory("sqlite://greg.db"));
        assert!(!sqlite_in_memory("sqlite:///var/lib/greg/memory.db"));
    }
}
