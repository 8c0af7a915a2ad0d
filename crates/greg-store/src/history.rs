//! Read-only history for `greg simulate --from-history`: the merge builds a repository ran,
//! with their start and end times, to estimate build durations and flake rates.

use crate::builds::repo_key;
use crate::model::BuildRecord;
use crate::{Store, StoreError, row};
use greg_core::RepoName;

impl Store {
    /// The merge builds (context `merge`) of `repo` created at or after `since_ms` (unix
    /// milliseconds), active or finished, oldest first.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn merge_builds_since(
        &self,
        repo: &RepoName,
        since_ms: i64,
    ) -> Result<Vec<BuildRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            build_columns!(),
            " FROM builds WHERE repo = $1 AND context = 'merge' AND created_ms >= $2 \
             ORDER BY id"
        );
        let repo = repo_key(repo)?;
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .bind(since_ms)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("merge_builds_since"))?;
            rows.iter().map(row::build).collect()
        })
    }
}
