//! The lease on each repository's lane (SPEC §11, replicas) and the fence its writes carry.
//!
//! Design note.
//! - Properties: at most one replica holds a repository's lease at a time (taking it is one
//!   atomic upsert `... WHERE free or expired or mine ... RETURNING`); a holder that stops
//!   renewing loses it `ttl` after its last renewal, and the next replica to ask gets it with
//!   the `epoch` bumped. The epoch is the fencing token: it only grows, and a change of holder
//!   always bumps it.
//! - Fencing: a lane runs its steps inside [`Fence::scope`]. Every queue-state write of the
//!   store (entries enqueued, moved or updated, builds finished, effects recorded, tree
//!   closures) made inside that scope first reads the lease row in its own transaction —
//!   `FOR SHARE` on PostgreSQL, so a takeover's upsert waits for the write to commit — and
//!   writes nothing, answering [`StoreError::Fenced`], unless `(holder, epoch)` still match.
//!   A replica paused past its lease (SIGSTOP, a long GC-like stall, a partition) therefore
//!   changes nothing in the store after another replica took over. SQLite serializes writers,
//!   so the check there is a plain read in the same transaction.
//! - Writes made outside a fence scope (the HTTP handlers' inbox writes, the report lease's
//!   own compare-and-swap, tests) are not checked.
//! - Races accepted: expiry is judged on the callers' clocks (the `now_ms` they pass), so
//!   replicas' clocks must agree to well under the lease time; calls to the provider or the
//!   builder are not fenced by the store (the engine checks its lease before each, which
//!   leaves a pause between that check and the call: that one call may then be made by both
//!   the old and the new holder; a fast-forward of the target is a compare-and-swap at the
//!   provider, so it cannot land twice).

use crate::model::Delivery;
use crate::{Store, StoreError, row};
use greg_core::RepoName;

/// A lease held by the caller on one repository's lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoLease {
    /// The repository's key (lower case).
    pub repo_key: String,
    /// The fencing token: bumped at every change of holder.
    pub epoch: i64,
    /// When the lease expires unless renewed (unix milliseconds, caller's clock).
    pub expires_ms: i64,
}

/// What [`Store::acquire_lease`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    /// The caller holds the lease now (taken, taken over, or renewed).
    Held(RepoLease),
    /// Another live holder has it until `expires_ms`.
    Busy {
        /// The holder's name.
        holder: String,
        /// When its lease expires unless renewed (unix milliseconds).
        expires_ms: i64,
    },
}

/// A lease whose holder stopped renewing it: the repository's lane runs nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredLease {
    /// The repository, as first leased.
    pub repo: RepoName,
    /// The holder that let it expire.
    pub holder: String,
}

/// The fence of a lane's writes: `(repo_key, holder, epoch)` as granted by
/// [`Store::acquire_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The repository's key (lower case).
    pub repo_key: String,
    /// The holder's name.
    pub holder: String,
    /// The epoch granted.
    pub epoch: i64,
}

tokio::task_local! {
    static FENCE: Fence;
}

impl Fence {
    /// Runs `fut` with this fence on every fenced store write it makes (not in tasks it
    /// spawns).
    pub async fn scope<F: std::future::Future>(self, fut: F) -> F::Output {
        FENCE.scope(self, fut).await
    }

    /// The fence of the current task, if it runs inside [`Fence::scope`].
    pub fn current() -> Option<Fence> {
        FENCE.try_with(Clone::clone).ok()
    }
}

/// The lease check of a fenced write, run on the writer's transaction; the statement depends
/// on the backend (`FOR SHARE` only exists on PostgreSQL).
pub(crate) trait FenceSql {
    /// The statement: one row when `($1 repo_key, $2 holder, $3 epoch)` still holds.
    fn fence_sql(&self) -> &'static str;
}

impl FenceSql for sqlx::PgConnection {
    fn fence_sql(&self) -> &'static str {
        "SELECT 1 FROM repo_leases WHERE repo_key = $1 AND holder = $2 AND epoch = $3 FOR SHARE"
    }
}

impl FenceSql for sqlx::SqliteConnection {
    fn fence_sql(&self) -> &'static str {
        "SELECT 1 FROM repo_leases WHERE repo_key = $1 AND holder = $2 AND epoch = $3"
    }
}

const ACQUIRE: &str = "INSERT INTO repo_leases (repo_key, repo, holder, epoch, expires_ms) \
     VALUES ($1, $2, $3, 1, $5) \
     ON CONFLICT (repo_key) DO UPDATE SET \
       epoch = CASE WHEN repo_leases.holder = excluded.holder THEN repo_leases.epoch \
                    ELSE repo_leases.epoch + 1 END, \
       holder = excluded.holder, expires_ms = excluded.expires_ms \
     WHERE repo_leases.holder = excluded.holder OR repo_leases.expires_ms <= $4 \
     RETURNING epoch, expires_ms";

impl Store {
    /// Takes or renews the lease on `repo`'s lane for `holder` until `now_ms + ttl_ms`: granted
    /// when nobody holds it, when its holder let it expire (the epoch is bumped), or when
    /// `holder` holds it already (same epoch). Otherwise answers who holds it.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`] for a name with NUL; [`StoreError::Database`].
    pub async fn acquire_lease(
        &self,
        repo: &RepoName,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<LeaseGrant, StoreError> {
        const WHO: &str = "SELECT holder, expires_ms FROM repo_leases WHERE repo_key = $1";
        let key = crate::builds::repo_key(repo)?;
        let shown = repo.to_string();
        row::text("repository", &shown)?;
        let holder = row::text("lease holder", holder)?;
        let expires = now_ms.saturating_add(ttl_ms);
        let db = StoreError::db("acquire_lease");
        let granted: Option<(i64, i64)> = with_writer!(self, pool => {
            sqlx::query_as(ACQUIRE)
                .bind(&key)
                .bind(&shown)
                .bind(holder)
                .bind(now_ms)
                .bind(expires)
                .fetch_optional(pool)
                .await
                .map_err(db)?
        });
        if let Some((epoch, expires_ms)) = granted {
            return Ok(LeaseGrant::Held(RepoLease {
                repo_key: key,
                epoch,
                expires_ms,
            }));
        }
        let who: Option<(String, i64)> = with_writer!(self, pool => {
            sqlx::query_as(WHO)
                .bind(&key)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("acquire_lease"))?
        });
        Ok(match who {
            Some((holder, expires_ms)) => LeaseGrant::Busy { holder, expires_ms },
            // Deleted between the two statements (released): nobody holds it now; the caller
            // asks again.
            None => LeaseGrant::Busy {
                holder: String::new(),
                expires_ms: now_ms,
            },
        })
    }

    /// Renews every lease `holder` still has until `now_ms + ttl_ms`, in one statement, and
    /// returns them. A lease taken over by another replica is not among them (it is lost); one
    /// that expired without being taken over is renewed with its epoch unchanged (nobody else
    /// wrote under it).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn renew_leases(
        &self,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Vec<RepoLease>, StoreError> {
        const SQL: &str = "UPDATE repo_leases SET expires_ms = $2 WHERE holder = $1 \
             RETURNING repo_key, epoch, expires_ms";
        let holder = row::text("lease holder", holder)?;
        let rows: Vec<(String, i64, i64)> = with_writer!(self, pool => {
            sqlx::query_as(SQL)
                .bind(holder)
                .bind(now_ms.saturating_add(ttl_ms))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("renew_leases"))?
        });
        Ok(rows
            .into_iter()
            .map(|(repo_key, epoch, expires_ms)| RepoLease {
                repo_key,
                epoch,
                expires_ms,
            })
            .collect())
    }

    /// Gives up every lease of `holder` (at shutdown, after its lanes drained) by making it
    /// expired, so another replica takes the repositories over at once; the epochs stay, so
    /// the next holder's are higher. Returns how many.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn release_leases(&self, holder: &str, now_ms: i64) -> Result<u64, StoreError> {
        const SQL: &str =
            "UPDATE repo_leases SET expires_ms = $2 WHERE holder = $1 AND expires_ms > $2";
        let holder = row::text("lease holder", holder)?;
        Ok(with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(holder)
                .bind(now_ms)
                .execute(pool)
                .await
                .map_err(StoreError::db("release_leases"))?
                .rows_affected()
        }))
    }

    /// Makes every lease expired at `now_ms`, whoever holds it, and returns how many were
    /// live. For a database only one process serves (SQLite, see
    /// [`Store::serve_exclusively`]): at start, every lease in it belongs to a process that is
    /// gone, and waiting for them to run out would stall every repository after a restart.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn expire_all_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE repo_leases SET expires_ms = $1 WHERE expires_ms > $1";
        Ok(with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(now_ms)
                .execute(pool)
                .await
                .map_err(StoreError::db("expire_all_leases"))?
                .rows_affected()
        }))
    }

    /// Leases expired at `now_ms` (their holder died, stalled or shut down), at most `limit`:
    /// the repositories whose lanes run nowhere until a replica takes them over.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn expired_leases(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<ExpiredLease>, StoreError> {
        const SQL: &str = "SELECT repo, holder FROM repo_leases WHERE expires_ms <= $1 \
             ORDER BY expires_ms LIMIT $2";
        let rows: Vec<(String, String)> = with_reader!(self, pool => {
            sqlx::query_as(SQL)
                .bind(now_ms)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("expired_leases"))?
        });
        rows.into_iter()
            .map(|(repo, holder)| {
                Ok(ExpiredLease {
                    repo: row::repo("repo_leases", &repo)?,
                    holder,
                })
            })
            .collect()
    }

    /// The repository keys of pending deliveries (not waiting for a scheduled retry) that no
    /// live lease covers at `now_ms`, at most `limit`: deliveries accepted by a replica that
    /// did not hold their repository, or left by a holder that died. Build callbacks (stored
    /// with an empty key: their repository is known only from the build record) are not
    /// listed.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn unleased_pending_repos(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT DISTINCT d.repo_key FROM deliveries d \
             LEFT JOIN repo_leases l ON l.repo_key = d.repo_key \
             WHERE d.state = 'pending' AND d.next_attempt_ms IS NULL AND d.repo_key <> '' \
             AND (l.repo_key IS NULL OR l.expires_ms <= $1) LIMIT $2";
        Ok(with_reader!(self, pool => {
            sqlx::query_scalar(SQL)
                .bind(now_ms)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("unleased_pending_repos"))?
        }))
    }

    /// The sequence numbers of pending deliveries (not waiting for a scheduled retry) of the
    /// repositories whose lease `holder` has, and of build callbacks (empty repository key),
    /// received before `received_before_ms`, oldest first, at most `limit`: what a replica's
    /// lanes should run, whichever replica accepted them. Read the deliveries this process
    /// does not have in hand yet with [`Store::pending_deliveries_by_seq`].
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn pending_seqs_of_holder(
        &self,
        holder: &str,
        received_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        const SQL: &str = "SELECT seq FROM deliveries WHERE state = 'pending' \
             AND next_attempt_ms IS NULL AND received_ms < $3 AND (repo_key = '' OR repo_key IN \
               (SELECT repo_key FROM repo_leases WHERE holder = $1)) \
             ORDER BY seq LIMIT $2";
        let holder = row::text("lease holder", holder)?;
        Ok(with_reader!(self, pool => {
            sqlx::query_scalar(SQL)
                .bind(holder)
                .bind(limit.max(0))
                .bind(received_before_ms)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("pending_seqs_of_holder"))?
        }))
    }

    /// The sequence numbers of pending deliveries (not waiting for a scheduled retry) of
    /// repository key `repo_key`, received before `received_before_ms`, oldest first, at most
    /// `limit`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn pending_seqs_of_repo(
        &self,
        repo_key: &str,
        received_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        const SQL: &str = "SELECT seq FROM deliveries WHERE state = 'pending' \
             AND next_attempt_ms IS NULL AND received_ms < $3 AND repo_key = $1 \
             ORDER BY seq LIMIT $2";
        let key = row::text("repository key", repo_key)?;
        Ok(with_reader!(self, pool => {
            sqlx::query_scalar(SQL)
                .bind(key)
                .bind(limit.max(0))
                .bind(received_before_ms)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("pending_seqs_of_repo"))?
        }))
    }

    /// The deliveries among `seqs` that are still pending and not waiting for a scheduled
    /// retry, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn pending_deliveries_by_seq(
        &self,
        seqs: &[i64],
    ) -> Result<Vec<Delivery>, StoreError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        const SQLITE: &str = concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE state = 'pending' AND next_attempt_ms IS NULL \
             AND seq IN (SELECT value FROM json_each($1)) ORDER BY seq"
        );
        const POSTGRES: &str = concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE state = 'pending' AND next_attempt_ms IS NULL \
             AND seq = ANY($1) ORDER BY seq"
        );
        let db = StoreError::db("pending_deliveries_by_seq");
        let rows = match self.pools() {
            crate::store::Pools::Sqlite { reader, .. } => {
                let list = crate::deliveries::sqlite_seq_list(seqs);
                sqlx::query(SQLITE)
                    .bind(list)
                    .fetch_all(reader)
                    .await
                    .map_err(db)?
                    .iter()
                    .map(row::delivery)
                    .collect::<Result<Vec<_>, _>>()
            }
            crate::store::Pools::Postgres(pool) => sqlx::query(POSTGRES)
                .bind(seqs)
                .fetch_all(pool)
                .await
                .map_err(db)?
                .iter()
                .map(row::delivery)
                .collect::<Result<Vec<_>, _>>(),
        }?;
        Ok(rows)
    }
}
