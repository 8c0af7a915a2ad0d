//! Builds keyed by `(repo, sha, context)`: at most one active build per key, enforced by the
//! `builds_one_active` partial unique index, and no way back from a finished state.

use crate::model::{BuildChange, BuildInsert, BuildRecord, BuildRunState, NewBuild};
use crate::{Store, StoreError, row};
use greg_core::{BuildContext, BuildNumber, JobName, PrNumber, QueueItemId, RepoName, Sha};

/// How often [`Store::insert_build`] retries when the active build it collided with finished
/// before it could be read. Each retry needs another writer to finish that build in between.
const INSERT_BUILD_TRIES: usize = 5;

impl Store {
    /// Records a new build in state `pending`, unless an active build (pending, queued or
    /// running) with the same `(repo, sha, context)` exists: then that one is returned as
    /// [`BuildInsert::Exists`] and nothing is written. Concurrent calls for one key create
    /// exactly one build. A finished build does not block a new one (retest).
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`] for a pull-request number above `i64::MAX`;
    /// [`StoreError::InvalidText`] for text with NUL; [`StoreError::Contended`] when the
    /// colliding build kept finishing under it; [`StoreError::Database`];
    /// [`StoreError::Corrupt`].
    pub async fn insert_build(&self, b: &NewBuild) -> Result<BuildInsert, StoreError> {
        const INSERT: &str = concat!(
            "INSERT INTO builds (repo, pr, sha, context, builder, job, branch, target, state, \
             created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9) \
             ON CONFLICT DO NOTHING RETURNING ",
            build_columns!()
        );
        const ACTIVE: &str = concat!(
            "SELECT ",
            build_columns!(),
            " FROM builds WHERE repo = $1 AND sha = $2 AND context = $3 AND state IN ",
            active_states!()
        );
        let repo = repo_key(&b.repo)?;
        let pr = b.pr.map(|p| row::to_db("pull request", p.0)).transpose()?;
        let builder = row::text("builder", &b.builder)?;
        let job = row::text("job", b.job.as_str())?;
        let branch = row::text("branch", &b.branch)?;
        let target = b
            .target
            .as_deref()
            .map(|t| row::text("target", t))
            .transpose()?;
        let db = |e: sqlx::Error| StoreError::db("insert_build")(e);
        with_writer!(self, pool => {
            let mut conn = pool.begin().await.map_err(db)?;
            check_fence!(conn, "insert_build");
            for _ in 0..INSERT_BUILD_TRIES {
                let created = sqlx::query(INSERT)
                    .bind(&repo)
                    .bind(pr)
                    .bind(b.sha.as_str())
                    .bind(b.context.as_str())
                    .bind(builder)
                    .bind(job)
                    .bind(branch)
                    .bind(target)
                    .bind(b.now_ms)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                if let Some(created) = created {
                    let done = BuildInsert::Created(row::build(&created)?);
                    conn.commit().await.map_err(db)?;
                    return Ok(done);
                }
                let existing = sqlx::query(ACTIVE)
                    .bind(&repo)
                    .bind(b.sha.as_str())
                    .bind(b.context.as_str())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                if let Some(existing) = existing {
                    let done = BuildInsert::Exists(row::build(&existing)?);
                    conn.commit().await.map_err(db)?;
                    return Ok(done);
                }
                // The active build finished between the two statements: insert again.
            }
            Err(StoreError::Contended { operation: "insert_build" })
        })
    }

    /// The build with store id `id`.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn build(&self, id: i64) -> Result<Option<BuildRecord>, StoreError> {
        const SQL: &str = concat!("SELECT ", build_columns!(), " FROM builds WHERE id = $1");
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("build"))?;
            found.as_ref().map(row::build).transpose()
        })
    }

    /// The newest build of `builder` with Jenkins queue item `item`; `None` when there is
    /// none (also for an id no build can have, above `i64::MAX`).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn find_build_by_queue_item(
        &self,
        builder: &str,
        item: QueueItemId,
    ) -> Result<Option<BuildRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            build_columns!(),
            " FROM builds WHERE builder = $1 AND queue_item = $2 ORDER BY id DESC LIMIT 1"
        );
        let Ok(item) = i64::try_from(item.0) else {
            return Ok(None);
        };
        let builder = row::text("builder", builder)?;
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(builder)
                .bind(item)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("find_build_by_queue_item"))?;
            found.as_ref().map(row::build).transpose()
        })
    }

    /// The newest build of `builder`'s job `job` with build number `number`; `None` when
    /// there is none.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn find_build_by_number(
        &self,
        builder: &str,
        job: &JobName,
        number: BuildNumber,
    ) -> Result<Option<BuildRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            build_columns!(),
            " FROM builds WHERE builder = $1 AND job = $2 AND number = $3 \
             ORDER BY id DESC LIMIT 1"
        );
        let Ok(number) = i64::try_from(number.0) else {
            return Ok(None);
        };
        let builder = row::text("builder", builder)?;
        let job = row::text("job", job.as_str())?;
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(builder)
                .bind(job)
                .bind(number)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("find_build_by_number"))?;
            found.as_ref().map(row::build).transpose()
        })
    }

    /// Every active build (pending, queued, running), oldest first: what a restart resumes
    /// and the poller follows.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn active_builds(&self) -> Result<Vec<BuildRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            build_columns!(),
            " FROM builds WHERE state IN ",
            active_states!(),
            " ORDER BY id"
        );
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("active_builds"))?;
            rows.iter().map(row::build).collect()
        })
    }

    /// What a new head `head` of pull request `pr` may make obsolete, in one query: whether
    /// the pull request has an active queue entry for another head, and whether it has an
    /// active build of another commit (with `head_branch`: also an active test build of that
    /// branch recorded without a pull request). Both `false` is the common case of a new
    /// head, and then there is nothing to read further: the lane of a busy repository makes
    /// one store round trip per new head instead of two.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn old_head_activity(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        head_branch: Option<&str>,
        head: &Sha,
    ) -> Result<OldHeadActivity, StoreError> {
        const SQL: &str = concat!(
            "SELECT EXISTS (SELECT 1 FROM queue_entries WHERE repo = $1 AND pr = $2 AND state IN ",
            active_queue_states!(),
            " AND head_sha <> $4), EXISTS (SELECT 1 FROM builds WHERE repo = $1 AND state IN ",
            active_states!(),
            " AND sha <> $4 AND (pr = $2 OR ($3 IS NOT NULL AND pr IS NULL AND context = 'test' \
             AND branch = $3)))"
        );
        let repo = repo_key(repo)?;
        let branch = head_branch.map(|b| row::text("branch", b)).transpose()?;
        let pr = i64::try_from(pr.0).unwrap_or(-1);
        let (queue_entries, builds): (bool, bool) = with_reader!(self, pool => {
            sqlx::query_as(SQL)
                .bind(&repo)
                .bind(pr)
                .bind(branch)
                .bind(head.as_str())
                .fetch_one(pool)
                .await
                .map_err(StoreError::db("old_head_activity"))?
        });
        Ok(OldHeadActivity {
            queue_entries,
            builds,
        })
    }

    /// The active builds of one pull request plus the active test builds of branch
    /// `head_branch` recorded without a pull request (started by a push to it), oldest first,
    /// in one query: what a new head of the pull request supersedes.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn active_builds_for_pr_or_branch(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        head_branch: &str,
    ) -> Result<Vec<BuildRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            build_columns!(),
            " FROM builds WHERE repo = $1 AND state IN ",
            active_states!(),
            " AND (pr = $2 OR (pr IS NULL AND context = 'test' AND branch = $3)) ORDER BY id"
        );
        let repo = repo_key(repo)?;
        let branch = row::text("branch", head_branch)?;
        let pr = i64::try_from(pr.0).unwrap_or(-1);
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .bind(pr)
                .bind(branch)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("active_builds_for_pr_or_branch"))?;
            rows.iter().map(row::build).collect()
        })
    }

    /// The active builds of one pull request, oldest first (to supersede on a new head).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn active_builds_for_pr(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<Vec<BuildRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            build_columns!(),
            " FROM builds WHERE repo = $1 AND pr = $2 AND state IN ",
            active_states!(),
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
                .map_err(StoreError::db("active_builds_for_pr"))?;
            rows.iter().map(row::build).collect()
        })
    }

    /// The newest builds of `context` in `state`, newest first, at most `limit` (for the JSON
    /// API: `/api/passing` lists recent green test builds).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn recent_builds(
        &self,
        context: BuildContext,
        state: BuildRunState,
        limit: i64,
    ) -> Result<Vec<BuildRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            build_columns!(),
            " FROM builds WHERE context = $1 AND state = $2 ORDER BY id DESC LIMIT $3"
        );
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(context.as_str())
                .bind(state.as_str())
                .bind(limit.max(0))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("recent_builds"))?;
            rows.iter().map(row::build).collect()
        })
    }

    /// The newest build, active or finished, of `(repo, sha, context)`.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn latest_build(
        &self,
        repo: &RepoName,
        sha: &Sha,
        context: BuildContext,
    ) -> Result<Option<BuildRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            build_columns!(),
            " FROM builds WHERE repo = $1 AND sha = $2 AND context = $3 \
             ORDER BY id DESC LIMIT 1"
        );
        let repo = repo_key(repo)?;
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(&repo)
                .bind(sha.as_str())
                .bind(context.as_str())
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("latest_build"))?;
            found.as_ref().map(row::build).transpose()
        })
    }

    /// Applies `upd` to build `id` at `now_ms` (unix milliseconds) and returns the record as
    /// stored afterwards. Fields left `None` keep their value.
    ///
    /// A finished build (success, failure, aborted, superseded, timed_out, error) never
    /// becomes active again: a change that would set pending, queued or running on it is
    /// ignored as a whole (a late QUEUED or STARTED notification) and the record is returned
    /// unchanged. A finished build may still move to another finished state and gain a
    /// queue item, number or URL. The check and the write are one statement, so a
    /// concurrent update cannot slip between them.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown `id`; [`StoreError::OutOfRange`] for ids
    /// above `i64::MAX`; [`StoreError::InvalidText`]; [`StoreError::Database`];
    /// [`StoreError::Corrupt`].
    pub async fn update_build(
        &self,
        id: i64,
        upd: &BuildChange,
        now_ms: i64,
    ) -> Result<BuildRecord, StoreError> {
        const UPDATE: &str = concat!(
            "UPDATE builds SET state = COALESCE($2, state), \
             queue_item = COALESCE($3, queue_item), number = COALESCE($4, number), \
             url = COALESCE($5, url), updated_ms = $6 \
             WHERE id = $1 AND (state IN ",
            active_states!(),
            " OR NOT $7) RETURNING ",
            build_columns!()
        );
        const SELECT: &str = concat!("SELECT ", build_columns!(), " FROM builds WHERE id = $1");
        let reactivates = upd.state.is_some_and(|s| s.is_active());
        let Binds {
            state,
            queue_item,
            number,
            url,
        } = Binds::of(upd)?;
        let db = |e: sqlx::Error| StoreError::db("update_build")(e);
        with_writer!(self, pool => {
            let mut conn = pool.begin().await.map_err(db)?;
            check_fence!(conn, "update_build");
            let updated = sqlx::query(UPDATE)
                .bind(id)
                .bind(state)
                .bind(queue_item)
                .bind(number)
                .bind(url)
                .bind(now_ms)
                .bind(reactivates)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
            let found = match updated {
                Some(updated) => Some(updated),
                None => sqlx::query(SELECT)
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?,
            };
            let found = match found {
                Some(found) => row::build(&found)?,
                None => return Err(StoreError::NotFound { what: "build", id }),
            };
            conn.commit().await.map_err(db)?;
            Ok(found)
        })
    }
}

/// A repository as its stored key, `owner/name`.
/// The values a [`BuildChange`] binds, checked: its state's name, queue item and number as
/// BIGINTs, URL without NUL.
pub(crate) struct Binds<'a> {
    pub state: Option<&'static str>,
    pub queue_item: Option<i64>,
    pub number: Option<i64>,
    pub url: Option<&'a str>,
}

impl<'a> Binds<'a> {
    /// # Errors
    /// [`StoreError::OutOfRange`]; [`StoreError::InvalidText`].
    pub(crate) fn of(change: &'a BuildChange) -> Result<Self, StoreError> {
        Ok(Binds {
            state: change.state.map(|s| s.as_str()),
            queue_item: change
                .queue_item
                .map(|q| row::to_db("queue item", q.0))
                .transpose()?,
            number: change
                .number
                .map(|n| row::to_db("build number", n.0))
                .transpose()?,
            url: change
                .url
                .as_deref()
                .map(|u| row::text("build url", u))
                .transpose()?,
        })
    }
}

pub(crate) fn repo_key(repo: &RepoName) -> Result<String, StoreError> {
    // Repository identity is case-insensitive (SPEC §3): one key per repository.
    let key = repo.key();
    row::text("repository", &key)?;
    Ok(key)
}

/// The answer of [`Store::old_head_activity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldHeadActivity {
    /// The pull request has an active queue entry for another head.
    pub queue_entries: bool,
    /// The pull request (or its head branch) has an active build of another commit.
    pub builds: bool,
}
