//! The commit statuses greg has set, so that "@greg ok" need not read them back from the
//! provider.

use crate::builds::repo_key;
use crate::{Store, StoreError, row};
use greg_core::{CommitState, RepoName, Sha};

impl Store {
    /// Records that greg set `state` for `context` (e.g. `greg/test`) on `sha`, at `now_ms`
    /// (unix milliseconds); replaces the state recorded before.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn set_commit_status(
        &self,
        repo: &RepoName,
        sha: &Sha,
        context: &str,
        state: CommitState,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO commit_statuses (repo, sha, context, state, updated_ms) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo, sha, context) DO UPDATE SET state = excluded.state, \
             updated_ms = excluded.updated_ms";
        let repo = repo_key(repo)?;
        let context = row::text("status context", context)?;
        with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(&repo)
                .bind(sha.as_str())
                .bind(context)
                .bind(state.as_str())
                .bind(now_ms)
                .execute(pool)
                .await
                .map_err(StoreError::db("set_commit_status"))?;
        });
        Ok(())
    }

    /// The state greg last set for `context` on `sha`; `None` when it set none.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`] for
    /// an unknown stored state.
    pub async fn commit_status(
        &self,
        repo: &RepoName,
        sha: &Sha,
        context: &str,
    ) -> Result<Option<CommitState>, StoreError> {
        const SQL: &str = "SELECT state FROM commit_statuses \
             WHERE repo = $1 AND sha = $2 AND context = $3";
        let repo = repo_key(repo)?;
        let context = row::text("status context", context)?;
        let state: Option<String> = with_reader!(self, pool => {
            sqlx::query_scalar(SQL)
                .bind(&repo)
                .bind(sha.as_str())
                .bind(context)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("commit_status"))?
        });
        state
            .map(|s| {
                parse_commit_state(&s).ok_or(StoreError::Corrupt {
                    table: "commit_statuses",
                    column: "state",
                })
            })
            .transpose()
    }
}

/// Parses `CommitState::as_str` output (GitHub's four state names).
fn parse_commit_state(s: &str) -> Option<CommitState> {
    [
        CommitState::Pending,
        CommitState::Success,
        CommitState::Failure,
        CommitState::Error,
    ]
    .into_iter()
    .find(|state| state.as_str() == s)
}
