//! The merge queue's persistence: entries keyed by `(repo, pr, kind)` with at most one active
//! entry per key, enforced by the `queue_one_active` partial unique index, no way back from a
//! finished state, and tree closures per `(repo, target)`. The store only keeps and orders
//! entries; what happens next is decided by the engine's queue state machine.

use crate::builds::repo_key;
use crate::model::{NewQueueEntry, QueueChange, QueueEntry, QueueInsert, QueueKind, TreeClosure};
use crate::{Store, StoreError, row};
use greg_core::{Login, PrNumber, RepoName};

/// How often [`Store::enqueue`] retries when the active entry it collided with finished
/// before it could be read. Each retry needs another writer to finish that entry in between.
const ENQUEUE_TRIES: usize = 5;

/// The columns of `tree_closures` that `row::tree_closure` decodes, as a literal for
/// `concat!`.
macro_rules! closure_columns {
    () => {
        "repo, target, priority, closed_by, since_ms"
    };
}

impl Store {
    /// Puts a merge or try request in the queue, in state `waiting` with `approved_ms`,
    /// `created_ms` and `updated_ms` set to `now_ms` and no attempts, unless an active entry
    /// (waiting, staging, building or landing) with the same `(repo, pr, kind)` exists: then
    /// that one is returned as [`QueueInsert::Exists`] and nothing is written. Concurrent
    /// calls for one key create exactly one entry. A finished entry does not block a new one.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`] for a pull-request number above `i64::MAX`;
    /// [`StoreError::InvalidText`] for text with NUL; [`StoreError::Contended`] when the
    /// colliding entry kept finishing under it; [`StoreError::Database`];
    /// [`StoreError::Corrupt`].
    pub async fn enqueue(&self, e: &NewQueueEntry) -> Result<QueueInsert, StoreError> {
        const INSERT: &str = concat!(
            "INSERT INTO queue_entries (repo, pr, kind, target, head_sha, approver, command, \
             priority, approved_ms, state, attempts, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'waiting', 0, $9, $9) \
             ON CONFLICT DO NOTHING RETURNING ",
            queue_columns!()
        );
        const ACTIVE: &str = concat!(
            "SELECT ",
            queue_columns!(),
            " FROM queue_entries WHERE repo = $1 AND pr = $2 AND kind = $3 AND state IN ",
            active_queue_states!()
        );
        let repo = repo_key(&e.repo)?;
        let pr = row::to_db("pull request", e.pr.0)?;
        let target = row::text("target", &e.target)?;
        let approver = row::text("approver", e.approver.as_str())?;
        let command = row::text("command", &e.command)?;
        let db = |err: sqlx::Error| StoreError::db("enqueue")(err);
        with_writer!(self, pool => {
            let mut conn = pool.begin().await.map_err(db)?;
            check_fence!(conn, "enqueue");
            for _ in 0..ENQUEUE_TRIES {
                let created = sqlx::query(INSERT)
                    .bind(&repo)
                    .bind(pr)
                    .bind(e.kind.as_str())
                    .bind(target)
                    .bind(e.head_sha.as_str())
                    .bind(approver)
                    .bind(command)
                    .bind(i64::from(e.priority))
                    .bind(e.now_ms)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                if let Some(created) = created {
                    let done = QueueInsert::Created(row::queue_entry(&created)?);
                    conn.commit().await.map_err(db)?;
                    return Ok(done);
                }
                let existing = sqlx::query(ACTIVE)
                    .bind(&repo)
                    .bind(pr)
                    .bind(e.kind.as_str())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                if let Some(existing) = existing {
                    let done = QueueInsert::Exists(row::queue_entry(&existing)?);
                    conn.commit().await.map_err(db)?;
                    return Ok(done);
                }
                // The active entry finished between the two statements: insert again.
            }
            Err(StoreError::Contended { operation: "enqueue" })
        })
    }

    /// The queue entry with store id `id`, active or finished.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn queue_entry(&self, id: i64) -> Result<Option<QueueEntry>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            queue_columns!(),
            " FROM queue_entries WHERE id = $1"
        );
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("queue_entry"))?;
            found.as_ref().map(row::queue_entry).transpose()
        })
    }

    /// The active entry of `(repo, pr, kind)`, if any.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn active_queue_entry(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        kind: QueueKind,
    ) -> Result<Option<QueueEntry>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            queue_columns!(),
            " FROM queue_entries WHERE repo = $1 AND pr = $2 AND kind = $3 AND state IN ",
            active_queue_states!()
        );
        let repo = repo_key(repo)?;
        let Ok(pr) = i64::try_from(pr.0) else {
            return Ok(None);
        };
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(&repo)
                .bind(pr)
                .bind(kind.as_str())
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("active_queue_entry"))?;
            found.as_ref().map(row::queue_entry).transpose()
        })
    }

    /// The active entries of every kind of one pull request, oldest first (to cancel them
    /// on a new head or a closed pull request).
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn active_queue_entries_for_pr(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            queue_columns!(),
            " FROM queue_entries WHERE repo = $1 AND pr = $2 AND state IN ",
            active_queue_states!(),
            " ORDER BY id"
        );
        let repo = repo_key(repo)?;
        let Ok(pr) = i64::try_from(pr.0) else {
            return Ok(Vec::new());
        };
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .bind(pr)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("active_queue_entries_for_pr"))?;
            rows.iter().map(row::queue_entry).collect()
        })
    }

    /// The queue of `target` in `repo`: its active entries in queue order, priority
    /// descending, then approval time ascending, then id ascending.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn queue(
        &self,
        repo: &RepoName,
        target: &str,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            queue_columns!(),
            " FROM queue_entries WHERE repo = $1 AND target = $2 AND state IN ",
            active_queue_states!(),
            " ORDER BY priority DESC, approved_ms, id"
        );
        let repo = repo_key(repo)?;
        let target = row::text("target", target)?;
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .bind(target)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("queue"))?;
            rows.iter().map(row::queue_entry).collect()
        })
    }

    /// Every active entry of every repository, ordered by repository and target (byte-wise,
    /// the same on every backend), then in queue order: what a restart resumes.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn active_queue_entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            queue_columns!(),
            " FROM queue_entries WHERE state IN ",
            active_queue_states!(),
            " ORDER BY priority DESC, approved_ms, id"
        );
        let mut entries: Vec<QueueEntry> = with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("active_queue_entries"))?;
            rows.iter().map(row::queue_entry).collect::<Result<_, _>>()?
        });
        // Text order differs between SQLite (byte-wise) and PostgreSQL (the database's
        // collation), so repository and target are ordered here; the sort is stable and
        // keeps the queue order the query gave.
        entries.sort_by(|a, b| {
            (a.repo.to_string(), a.target.as_bytes())
                .cmp(&(b.repo.to_string(), b.target.as_bytes()))
        });
        Ok(entries)
    }

    /// The entry, active or finished, whose staging build is `build_id`; the newest when
    /// several are.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn queue_entry_by_build(
        &self,
        build_id: i64,
    ) -> Result<Option<QueueEntry>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            queue_columns!(),
            " FROM queue_entries WHERE build_id = $1 ORDER BY id DESC LIMIT 1"
        );
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(build_id)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("queue_entry_by_build"))?;
            found.as_ref().map(row::queue_entry).transpose()
        })
    }

    /// True when `(repo, target)` has ever had an entry of `kind`, active or finished: a
    /// push to a branch that is such a target moves the base of those entries.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn has_queue_entries_for_target(
        &self,
        repo: &RepoName,
        target: &str,
        kind: QueueKind,
    ) -> Result<bool, StoreError> {
        const SQL: &str =
            "SELECT 1 FROM queue_entries WHERE repo = $1 AND target = $2 AND kind = $3 LIMIT 1";
        let repo = repo_key(repo)?;
        let target = row::text("target", target)?;
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(&repo)
                .bind(target)
                .bind(kind.as_str())
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("has_queue_entries_for_target"))?;
            Ok(found.is_some())
        })
    }

    /// The entries of `repo` that finished (landed, failed or cancelled) at or after
    /// `since_ms` (unix milliseconds; the time of the update that first finished them),
    /// newest first, at most `limit` (none for a `limit` of 0 or less).
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn finished_queue_entries(
        &self,
        repo: &RepoName,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            queue_columns!(),
            " FROM queue_entries WHERE repo = $1 AND finished_ms >= $2 \
             ORDER BY finished_ms DESC, id DESC LIMIT $3"
        );
        let repo = repo_key(repo)?;
        let limit = limit.max(0);
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .bind(since_ms)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("finished_queue_entries"))?;
            rows.iter().map(row::queue_entry).collect()
        })
    }

    /// Applies `change` to entry `id` at `now_ms` (unix milliseconds) and returns the entry as
    /// stored afterwards. Fields left `None` keep their value; `clear_staging` empties
    /// `base_sha`, `staging_sha` and `build_id` before the change's own values are applied.
    ///
    /// A finished entry (landed, failed, cancelled) never becomes active again: a change that
    /// would set waiting, staging, building or landing on it is refused as a whole with
    /// [`StoreError::InvalidTransition`] and nothing is written. A finished entry may still
    /// move to another finished state and take a reason. The check and the write are one
    /// statement, so a concurrent update cannot slip between them. The first change to a
    /// finished state records when the entry finished, for
    /// [`finished_queue_entries`](Self::finished_queue_entries).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown `id`; [`StoreError::InvalidTransition`];
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn update_queue_entry(
        &self,
        id: i64,
        change: &QueueChange,
        now_ms: i64,
    ) -> Result<QueueEntry, StoreError> {
        const UPDATE: &str = concat!(
            queue_change_set!(),
            "WHERE id = $1 AND (state IN ",
            active_queue_states!(),
            " OR NOT $16) RETURNING ",
            queue_columns!()
        );
        const SELECT: &str = concat!(
            "SELECT ",
            queue_columns!(),
            " FROM queue_entries WHERE id = $1"
        );
        let reactivates = change.state.is_some_and(|s| s.is_active());
        let reason = change
            .reason
            .as_deref()
            .map(|r| row::text("queue reason", r))
            .transpose()?;
        let db = |e: sqlx::Error| StoreError::db("update_queue_entry")(e);
        let found = with_writer!(self, pool => {
            let mut conn = pool.begin().await.map_err(db)?;
            check_fence!(conn, "update_queue_entry");
            let updated = bind_queue_change!(sqlx::query(UPDATE), id, change, reason, now_ms)
                .bind(reactivates)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
            if let Some(updated) = updated {
                let done = row::queue_entry(&updated)?;
                conn.commit().await.map_err(db)?;
                return Ok(done);
            }
            sqlx::query(SELECT)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?
                .as_ref()
                .map(row::queue_entry)
                .transpose()?
        });
        match (found, change.state) {
            // Refused by the statement: the stored entry is finished and the change
            // reactivates it.
            (Some(entry), Some(to)) if !entry.state.is_active() => {
                Err(StoreError::InvalidTransition {
                    what: "queue entry",
                    id,
                    from: entry.state.as_str(),
                    to: to.as_str(),
                })
            }
            // Cannot happen (an active entry always matches); reported rather than assumed.
            (Some(_), _) => Err(StoreError::Contended {
                operation: "update_queue_entry",
            }),
            (None, _) => Err(StoreError::NotFound {
                what: "queue entry",
                id,
            }),
        }
    }

    /// Closes the tree of `(repo, target)` ("@greg treeclosed=N"): merges of priority below
    /// `priority` wait. Closing a closed tree replaces its priority, closer and time.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn set_tree_closure(
        &self,
        repo: &RepoName,
        target: &str,
        priority: i32,
        by: &Login,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO tree_closures (",
            closure_columns!(),
            ") VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo, target) DO UPDATE SET priority = excluded.priority, \
             closed_by = excluded.closed_by, since_ms = excluded.since_ms"
        );
        let repo = repo_key(repo)?;
        let target = row::text("target", target)?;
        let by = row::text("login", by.as_str())?;
        let db = |e: sqlx::Error| StoreError::db("set_tree_closure")(e);
        with_writer!(self, pool => {
            let mut tx = pool.begin().await.map_err(db)?;
            check_fence!(tx, "set_tree_closure");
            sqlx::query(SQL)
                .bind(&repo)
                .bind(target)
                .bind(i64::from(priority))
                .bind(by)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
        });
        Ok(())
    }

    /// Opens the tree of `(repo, target)` ("@greg treeopen"); opening an open tree does
    /// nothing.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn clear_tree_closure(
        &self,
        repo: &RepoName,
        target: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM tree_closures WHERE repo = $1 AND target = $2";
        let repo = repo_key(repo)?;
        let target = row::text("target", target)?;
        let db = |e: sqlx::Error| StoreError::db("clear_tree_closure")(e);
        with_writer!(self, pool => {
            let mut tx = pool.begin().await.map_err(db)?;
            check_fence!(tx, "clear_tree_closure");
            sqlx::query(SQL)
                .bind(&repo)
                .bind(target)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
        });
        Ok(())
    }

    /// The closure of `(repo, target)`; `None` while the tree is open.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn tree_closure(
        &self,
        repo: &RepoName,
        target: &str,
    ) -> Result<Option<TreeClosure>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            closure_columns!(),
            " FROM tree_closures WHERE repo = $1 AND target = $2"
        );
        let repo = repo_key(repo)?;
        let target = row::text("target", target)?;
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(&repo)
                .bind(target)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("tree_closure"))?;
            found.as_ref().map(row::tree_closure).transpose()
        })
    }
}
