//! Approvals from "@greg lgtm" comments and reviewers required by "@greg review @a @b".
//! Logins compare case-insensitively (as `greg_core::Login` does): rows are keyed by the
//! ASCII-lower-cased login and keep the spelling last written.

use crate::builds::repo_key;
use crate::{Store, StoreError, row};
use greg_core::{Approval, ApprovalSource, Login, PrNumber, RepoName, Sha};

impl Store {
    /// Records that `login` approved head `sha` of the pull request at `now_ms` (unix
    /// milliseconds), replacing that person's earlier approval of the same pull request.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`]; [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn set_approval(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        login: &Login,
        sha: &Sha,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO approvals (repo, pr, login_key, login, sha, approved_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (repo, pr, login_key) DO UPDATE SET login = excluded.login, \
             sha = excluded.sha, approved_ms = excluded.approved_ms";
        let repo = repo_key(repo)?;
        let pr = row::to_db("pull request", pr.0)?;
        let login = row::text("login", login.as_str())?;
        with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(&repo)
                .bind(pr)
                .bind(login.to_ascii_lowercase())
                .bind(login)
                .bind(sha.as_str())
                .bind(now_ms)
                .execute(pool)
                .await
                .map_err(StoreError::db("set_approval"))?;
        });
        Ok(())
    }

    /// Withdraws `login`'s approval of the pull request ("@greg not lgtm"); `true` when
    /// there was one.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn remove_approval(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        login: &Login,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM approvals WHERE repo = $1 AND pr = $2 AND login_key = $3";
        let repo = repo_key(repo)?;
        let Ok(pr) = i64::try_from(pr.0) else {
            return Ok(false);
        };
        let login = row::text("login", login.as_str())?;
        let deleted = with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(&repo)
                .bind(pr)
                .bind(login.to_ascii_lowercase())
                .execute(pool)
                .await
                .map_err(StoreError::db("remove_approval"))?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    /// The comment approvals of a pull request, any head (the mergeability rule discards
    /// stale ones), ordered by lower-cased login; each with source
    /// [`ApprovalSource::Comment`].
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] for a stored sha that is not one.
    pub async fn approvals(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<Vec<Approval>, StoreError> {
        const SQL: &str = "SELECT login, sha FROM approvals WHERE repo = $1 AND pr = $2 \
             ORDER BY login_key";
        const T: &str = "approvals";
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
                .map_err(StoreError::db("approvals"))?;
            rows.iter()
                .map(|r| {
                    use row::Cols;
                    Ok(Approval {
                        login: Login(r.text(T, "login")?),
                        sha: row::sha(T, &r.text(T, "sha")?)?,
                        source: ApprovalSource::Comment,
                    })
                })
                .collect()
        })
    }

    /// Adds reviewers the pull request requires ("@greg review @a @b"); reviewers already
    /// required stay as they are. One transaction.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`]; [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn add_required_reviewers(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        logins: &[Login],
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO required_reviewers (repo, pr, login_key, login) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (repo, pr, login_key) DO NOTHING";
        if logins.is_empty() {
            return Ok(());
        }
        let repo = repo_key(repo)?;
        let pr = row::to_db("pull request", pr.0)?;
        for login in logins {
            row::text("login", login.as_str())?;
        }
        with_writer!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::db("add_required_reviewers"))?;
            for login in logins {
                sqlx::query(SQL)
                    .bind(&repo)
                    .bind(pr)
                    .bind(login.as_str().to_ascii_lowercase())
                    .bind(login.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("add_required_reviewers"))?;
            }
            tx.commit().await.map_err(StoreError::db("add_required_reviewers"))?;
        });
        Ok(())
    }

    /// The reviewers required by comments on the pull request, ordered by lower-cased login
    /// (configured reviewers are not stored here).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn required_reviewers(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<Vec<Login>, StoreError> {
        const SQL: &str = "SELECT login FROM required_reviewers WHERE repo = $1 AND pr = $2 \
             ORDER BY login_key";
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
                .map_err(StoreError::db("required_reviewers"))?;
            rows.iter()
                .map(|r| {
                    use row::Cols;
                    Ok(Login(r.text("required_reviewers", "login")?))
                })
                .collect()
        })
    }
}
