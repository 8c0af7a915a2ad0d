//! Reads for the web pages and their JSON twins (SPEC §9): a pull request's builds and queue
//! history, a repository's recent merge-build durations (for the ETA) and recent landings.
//! Read-only, bounded by a limit, served by indexed columns.

use crate::builds::repo_key;
use crate::model::{BuildRecord, QueueEntry};
use crate::{Store, StoreError, row};
use greg_core::{PrNumber, RepoName};

impl Store {
    /// Every build greg ran for pull request `pr` of `repo` (any context, active or
    /// finished), newest first, at most `limit` (none for a `limit` of 0 or less).
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn builds_for_pr(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        limit: i64,
    ) -> Result<Vec<BuildRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            build_columns!(),
            " FROM builds WHERE repo = $1 AND pr = $2 ORDER BY id DESC LIMIT $3"
        );
        let repo = repo_key(repo)?;
        let Ok(pr) = i64::try_from(pr.0) else {
            return Ok(Vec::new());
        };
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .bind(pr)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("builds_for_pr"))?;
            rows.iter().map(row::build).collect()
        })
    }

    /// Every queue entry of pull request `pr` of `repo` (any kind, active or finished),
    /// newest first, at most `limit`: its queue history.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn queue_entries_for_pr(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        limit: i64,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            queue_columns!(),
            " FROM queue_entries WHERE repo = $1 AND pr = $2 ORDER BY id DESC LIMIT $3"
        );
        let repo = repo_key(repo)?;
        let Ok(pr) = i64::try_from(pr.0) else {
            return Ok(Vec::new());
        };
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .bind(pr)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("queue_entries_for_pr"))?;
            rows.iter().map(row::queue_entry).collect()
        })
    }

    /// The newest finished merge builds of `repo` into `target` that ran to a result (success
    /// or failure: aborted, superseded and timed-out builds say nothing of how long a build
    /// takes), newest first, at most `limit`: the sample of the queue's ETA.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn finished_merge_builds(
        &self,
        repo: &RepoName,
        target: &str,
        limit: i64,
    ) -> Result<Vec<BuildRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            build_columns!(),
            " FROM builds WHERE repo = $1 AND context = 'merge' AND target = $2 \
             AND state IN ('success', 'failure') ORDER BY id DESC LIMIT $3"
        );
        let repo = repo_key(repo)?;
        let target = row::text("target", target)?;
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .bind(target)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("finished_merge_builds"))?;
            rows.iter().map(row::build).collect()
        })
    }

    /// Every repository greg holds builds or queue entries for, as stored (lower case),
    /// ordered by `owner/name`.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn known_repos(&self) -> Result<Vec<RepoName>, StoreError> {
        const SQL: &str =
            "SELECT DISTINCT repo FROM builds UNION SELECT DISTINCT repo FROM queue_entries";
        let keys: Vec<String> = with_reader!(self, pool => {
            sqlx::query_scalar(SQL)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("known_repos"))?
        });
        let mut repos: Vec<RepoName> = keys
            .iter()
            .map(|k| {
                RepoName::parse(k).ok_or(StoreError::Corrupt {
                    table: "builds",
                    column: "repo",
                })
            })
            .collect::<Result<_, _>>()?;
        repos.sort_by_key(ToString::to_string);
        Ok(repos)
    }
}
