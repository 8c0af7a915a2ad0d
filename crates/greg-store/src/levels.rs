//! Levels read at each `/metrics` scrape: aggregates over the tables, one query each, so a
//! scrape costs the same however many rows the levels summarize.

use crate::{Store, StoreError};

/// The active merge-queue entries of one (repository, target), as counted for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLength {
    /// The store's repository key (`owner/name`, lower case).
    pub repo: String,
    /// The target branch.
    pub target: String,
    /// Active entries (waiting, staging, building, landing), every kind.
    pub entries: i64,
}

impl Store {
    /// The number of active queue entries per (repository, target), sorted by repository,
    /// then target. Pairs with no active entry are absent.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn queue_lengths(&self) -> Result<Vec<QueueLength>, StoreError> {
        const SQL: &str = "SELECT repo, target, COUNT(*) AS n FROM queue_entries \
             WHERE state IN ('waiting', 'staging', 'building', 'landing') \
             GROUP BY repo, target ORDER BY repo, target";
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("queue_lengths"))?;
            rows.iter()
                .map(|r| {
                    use sqlx::Row as _;
                    Ok(QueueLength {
                        repo: r.try_get("repo").map_err(StoreError::db("queue_lengths"))?,
                        target: r.try_get("target").map_err(StoreError::db("queue_lengths"))?,
                        entries: r.try_get("n").map_err(StoreError::db("queue_lengths"))?,
                    })
                })
                .collect()
        })
    }
}
