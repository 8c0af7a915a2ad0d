//! The required reviewers a repository's admins edit on the `/project` page (SPEC §9):
//! stored by greg, and read by the rules next to `repos[].reviewers` at every decision
//! (mergeability, who may command greg), so an edit takes effect at once.

use crate::Engine;
use greg_core::{Login, RepoName};
use greg_store::StoreError;

impl Engine {
    /// The reviewers stored for `repo` from the `/project` page (not those of config.yaml),
    /// ordered by lower-cased login.
    ///
    /// # Errors
    /// The store failed.
    pub async fn project_reviewers(&self, repo: &RepoName) -> Result<Vec<Login>, StoreError> {
        self.inner.store.project_reviewers(repo).await
    }

    /// Replaces the stored reviewers of `repo` with `logins`, edited by `by` (an admin the
    /// caller checked). Logins already in `repos[].reviewers` are stored too: the page shows
    /// both lists apart.
    ///
    /// # Errors
    /// The store failed, or a login is not storable text.
    pub async fn set_project_reviewers(
        &self,
        repo: &RepoName,
        logins: &[Login],
        by: &Login,
    ) -> Result<(), StoreError> {
        let now = self.inner.now_ms();
        self.inner
            .store
            .set_project_reviewers(repo, logins, by, now)
            .await?;
        tracing::info!(%repo, by = %by, reviewers = logins.len(), "Required reviewers edited on /project");
        Ok(())
    }
}
