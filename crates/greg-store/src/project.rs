//! The required reviewers of a repository that its admins edit on the `/project` page
//! (SPEC §9). They join `repos[].reviewers` of config.yaml wherever the rules read required
//! reviewers. Logins compare case-insensitively: rows are keyed by the ASCII-lower-cased
//! login and keep the spelling written.

use crate::builds::repo_key;
use crate::{Store, StoreError, row};
use greg_core::{Login, RepoName};

impl Store {
    /// The reviewers stored for `repo` by the `/project` page, ordered by lower-cased login.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn project_reviewers(&self, repo: &RepoName) -> Result<Vec<Login>, StoreError> {
        const SQL: &str = "SELECT login FROM project_reviewers WHERE repo = $1 ORDER BY login_key";
        let repo = repo_key(repo)?;
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("project_reviewers"))?;
            rows.iter()
                .map(|r| {
                    use row::Cols;
                    Ok(Login(r.text("project_reviewers", "login")?))
                })
                .collect()
        })
    }

    /// Replaces the reviewers stored for `repo` with `logins` (duplicates, in any case, kept
    /// once with their first spelling), recording who edited them (`by`) and when (`now_ms`,
    /// unix milliseconds). One transaction: readers see the old list or the new one.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn set_project_reviewers(
        &self,
        repo: &RepoName,
        logins: &[Login],
        by: &Login,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const DELETE: &str = "DELETE FROM project_reviewers WHERE repo = $1";
        const INSERT: &str = "INSERT INTO project_reviewers \
             (repo, login_key, login, added_by, updated_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo, login_key) DO NOTHING";
        let repo = repo_key(repo)?;
        let by = row::text("login", by.as_str())?;
        for login in logins {
            row::text("login", login.as_str())?;
        }
        with_writer!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::db("set_project_reviewers"))?;
            sqlx::query(DELETE)
                .bind(&repo)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("set_project_reviewers"))?;
            for login in logins {
                sqlx::query(INSERT)
                    .bind(&repo)
                    .bind(login.as_str().to_ascii_lowercase())
                    .bind(login.as_str())
                    .bind(by)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("set_project_reviewers"))?;
            }
            tx.commit().await.map_err(StoreError::db("set_project_reviewers"))?;
        });
        Ok(())
    }
}
