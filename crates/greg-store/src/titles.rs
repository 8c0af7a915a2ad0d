//! The title and author of each pull request greg has seen, for the queue and pull-request
//! pages and their JSON twins (SPEC §9). Written when a pull-request webhook arrives and when
//! greg reads a pull request from the provider; the last one seen wins. Keyed by (repository
//! key, number). A pull request greg never saw (a queue entry older than this table) has no
//! row, and the pages show its number alone.

use crate::builds::repo_key;
use crate::{Store, StoreError, row};
use greg_core::{Login, PrNumber, RepoName};
use serde::Serialize;

/// The longest title stored, in characters (GitHub allows 256; longer text is cut).
pub const MAX_TITLE_CHARS: usize = 1024;

/// A pull request's title and author as greg last saw them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequestTitle {
    /// The pull request.
    pub pr: PrNumber,
    /// Its title, as written (escaped by whoever shows it).
    pub title: String,
    /// Who opened it.
    pub author: Login,
    /// Unix milliseconds of the write.
    pub updated_ms: i64,
}

/// `text` as the store keeps it: NUL (which PostgreSQL refuses) replaced, at most
/// [`MAX_TITLE_CHARS`] characters. A title never fails a delivery.
fn storable(text: &str) -> String {
    text.chars()
        .take(MAX_TITLE_CHARS)
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect()
}

fn decode<R: row::Cols>(r: &R) -> Result<PullRequestTitle, StoreError> {
    const TABLE: &str = "pull_requests";
    Ok(PullRequestTitle {
        pr: PrNumber(row::from_db(TABLE, "number", r.int(TABLE, "number")?)?),
        title: r.text(TABLE, "title")?,
        author: Login(r.text(TABLE, "author")?),
        updated_ms: r.int(TABLE, "updated_ms")?,
    })
}

impl Store {
    /// Records the `title` and `author` of pull request `pr` of `repo` at `now_ms` (unix
    /// milliseconds), replacing what was stored. Writes nothing when both are unchanged.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`] (the repository name); [`StoreError::OutOfRange`];
    /// [`StoreError::Database`].
    pub async fn save_pull_request_title(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        title: &str,
        author: &Login,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO pull_requests (repo, number, title, author, updated_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repo, number) DO UPDATE SET \
             title = excluded.title, author = excluded.author, updated_ms = excluded.updated_ms \
             WHERE pull_requests.title <> excluded.title \
             OR pull_requests.author <> excluded.author";
        let repo = repo_key(repo)?;
        let number = row::to_db("pull request", pr.0)?;
        let title = storable(title);
        let author = storable(author.as_str());
        with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(&repo)
                .bind(number)
                .bind(&title)
                .bind(&author)
                .bind(now_ms)
                .execute(pool)
                .await
                .map_err(StoreError::db("save_pull_request_title"))?;
        });
        Ok(())
    }

    /// The title and author stored for pull request `pr` of `repo`; `None` when greg never
    /// saw it.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn pull_request_title(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<Option<PullRequestTitle>, StoreError> {
        const SQL: &str = "SELECT number, title, author, updated_ms FROM pull_requests \
             WHERE repo = $1 AND number = $2";
        let repo = repo_key(repo)?;
        let Ok(number) = i64::try_from(pr.0) else {
            return Ok(None);
        };
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(&repo)
                .bind(number)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("pull_request_title"))?;
            found.as_ref().map(decode).transpose()
        })
    }

    /// The titles and authors of the pull requests of `repo` with an active queue entry,
    /// ordered by number: one query for a whole queue page.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn queued_pull_request_titles(
        &self,
        repo: &RepoName,
    ) -> Result<Vec<PullRequestTitle>, StoreError> {
        const SQL: &str = concat!(
            "SELECT p.number, p.title, p.author, p.updated_ms FROM pull_requests p \
             WHERE p.repo = $1 AND EXISTS (SELECT 1 FROM queue_entries q \
             WHERE q.repo = p.repo AND q.pr = p.number AND q.state IN ",
            active_queue_states!(),
            ") ORDER BY p.number"
        );
        let repo = repo_key(repo)?;
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("queued_pull_request_titles"))?;
            rows.iter().map(decode).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced_and_long_titles_are_cut() {
        assert_eq!(storable("a\0b"), "a\u{FFFD}b");
        assert_eq!(storable(&"é".repeat(2000)).chars().count(), MAX_TITLE_CHARS);
        assert_eq!(storable("<script>"), "<script>");
    }
}
