//! Defensive conversions between rows and records: every stored value is checked on the way
//! out (a bad sha or state is [`StoreError::Corrupt`], never a panic) and every id on the way
//! in (a `u64` above `i64::MAX` is [`StoreError::OutOfRange`]).

use crate::StoreError;
use crate::model::TreeClosure;
use crate::model::{
    BuildRecord, BuildRunState, Delivery, QueueEntry, QueueExit, QueueKind, QueueState,
};
use greg_core::{BuildContext, BuildNumber, JobName, Login, PrNumber, QueueItemId, RepoName, Sha};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// Typed column access shared by the SQLite and PostgreSQL rows. A value of the wrong type
/// is reported as corrupt, naming the table and column.
pub(crate) trait Cols {
    fn int(&self, table: &'static str, column: &'static str) -> Result<i64, StoreError>;
    fn opt_int(&self, table: &'static str, column: &'static str)
    -> Result<Option<i64>, StoreError>;
    fn text(&self, table: &'static str, column: &'static str) -> Result<String, StoreError>;
    fn opt_text(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<Option<String>, StoreError>;
}

macro_rules! impl_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn int(&self, table: &'static str, column: &'static str) -> Result<i64, StoreError> {
                self.try_get::<i64, _>(column)
                    .map_err(|_| StoreError::Corrupt { table, column })
            }
            fn opt_int(
                &self,
                table: &'static str,
                column: &'static str,
            ) -> Result<Option<i64>, StoreError> {
                self.try_get::<Option<i64>, _>(column)
                    .map_err(|_| StoreError::Corrupt { table, column })
            }
            fn text(
                &self,
                table: &'static str,
                column: &'static str,
            ) -> Result<String, StoreError> {
                self.try_get::<String, _>(column)
                    .map_err(|_| StoreError::Corrupt { table, column })
            }
            fn opt_text(
                &self,
                table: &'static str,
                column: &'static str,
            ) -> Result<Option<String>, StoreError> {
                self.try_get::<Option<String>, _>(column)
                    .map_err(|_| StoreError::Corrupt { table, column })
            }
        }
    };
}

impl_cols!(SqliteRow);
impl_cols!(PgRow);

/// Checks a text value before it is bound: PostgreSQL cannot store NUL in TEXT, so it is
/// refused on every backend.
pub(crate) fn text<'a>(what: &'static str, value: &'a str) -> Result<&'a str, StoreError> {
    if value.contains('\0') {
        Err(StoreError::InvalidText { what })
    } else {
        Ok(value)
    }
}

/// An id as a BIGINT.
pub(crate) fn to_db(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value })
}

/// A stored BIGINT as an id; negative is corrupt.
pub(crate) fn from_db(
    table: &'static str,
    column: &'static str,
    value: i64,
) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt { table, column })
}

/// A stored `owner/name`.
pub(crate) fn repo(table: &'static str, value: &str) -> Result<RepoName, StoreError> {
    RepoName::parse(value).ok_or(StoreError::Corrupt {
        table,
        column: "repo",
    })
}

/// A stored full commit sha.
pub(crate) fn sha(table: &'static str, value: &str) -> Result<Sha, StoreError> {
    Sha::parse(value).map_err(|_| StoreError::Corrupt {
        table,
        column: "sha",
    })
}

/// Decodes a `deliveries` row selected with `delivery_columns!()`.
pub(crate) fn delivery(row: &impl Cols) -> Result<Delivery, StoreError> {
    const T: &str = "deliveries";
    Ok(Delivery {
        seq: row.int(T, "seq")?,
        source: row.text(T, "source")?,
        delivery_id: row.text(T, "delivery_id")?,
        repo_key: row.text(T, "repo_key")?,
        event: row.text(T, "event")?,
        payload: row.text(T, "payload")?,
        received_ms: row.int(T, "received_ms")?,
        attempts: row.int(T, "attempts")?,
    })
}

/// Decodes a `builds` row selected with `build_columns!()`.
pub(crate) fn build(row: &impl Cols) -> Result<BuildRecord, StoreError> {
    const T: &str = "builds";
    let corrupt = |column| StoreError::Corrupt { table: T, column };
    let id = |column| -> Result<Option<u64>, StoreError> {
        row.opt_int(T, column)?
            .map(|v| from_db(T, column, v))
            .transpose()
    };
    Ok(BuildRecord {
        id: row.int(T, "id")?,
        repo: repo(T, &row.text(T, "repo")?)?,
        pr: id("pr")?.map(PrNumber),
        sha: sha(T, &row.text(T, "sha")?)?,
        context: BuildContext::parse(&row.text(T, "context")?).ok_or(corrupt("context"))?,
        builder: row.text(T, "builder")?,
        job: JobName(row.text(T, "job")?),
        branch: row.text(T, "branch")?,
        target: row.opt_text(T, "target")?,
        state: BuildRunState::parse(&row.text(T, "state")?).ok_or(corrupt("state"))?,
        queue_item: id("queue_item")?.map(QueueItemId),
        number: id("number")?.map(BuildNumber),
        url: row.opt_text(T, "url")?,
        created_ms: row.int(T, "created_ms")?,
        updated_ms: row.int(T, "updated_ms")?,
    })
}

/// A stored full commit sha in `column`.
fn sha_in(table: &'static str, column: &'static str, value: &str) -> Result<Sha, StoreError> {
    Sha::parse(value).map_err(|_| StoreError::Corrupt { table, column })
}

/// A stored INTEGER/BIGINT that must fit an `i32`.
fn int32(row: &impl Cols, table: &'static str, column: &'static str) -> Result<i32, StoreError> {
    i32::try_from(row.int(table, column)?).map_err(|_| StoreError::Corrupt { table, column })
}

/// Decodes a `queue_entries` row selected with `queue_columns!()`.
pub(crate) fn queue_entry(row: &impl Cols) -> Result<QueueEntry, StoreError> {
    const T: &str = "queue_entries";
    let corrupt = |column| StoreError::Corrupt { table: T, column };
    let opt_sha = |column| -> Result<Option<Sha>, StoreError> {
        row.opt_text(T, column)?
            .map(|v| sha_in(T, column, &v))
            .transpose()
    };
    Ok(QueueEntry {
        id: row.int(T, "id")?,
        repo: repo(T, &row.text(T, "repo")?)?,
        pr: PrNumber(from_db(T, "pr", row.int(T, "pr")?)?),
        kind: QueueKind::parse(&row.text(T, "kind")?).ok_or(corrupt("kind"))?,
        target: row.text(T, "target")?,
        head_sha: sha_in(T, "head_sha", &row.text(T, "head_sha")?)?,
        approver: Login(row.text(T, "approver")?),
        command: row.text(T, "command")?,
        priority: int32(row, T, "priority")?,
        approved_ms: row.int(T, "approved_ms")?,
        state: QueueState::parse(&row.text(T, "state")?).ok_or(corrupt("state"))?,
        base_sha: opt_sha("base_sha")?,
        staging_sha: opt_sha("staging_sha")?,
        build_id: row.opt_int(T, "build_id")?,
        attempts: int32(row, T, "attempts")?,
        reason: row.opt_text(T, "reason")?,
        exit: row
            .opt_text(T, "exit")?
            .and_then(|text| QueueExit::from_json(&text)),
        created_ms: row.int(T, "created_ms")?,
        updated_ms: row.int(T, "updated_ms")?,
        candidate: row.opt_int(T, "candidate")?,
        parent: row.opt_int(T, "parent")?,
        group: row.opt_int(T, "batch_group")?,
    })
}

/// Decodes a `tree_closures` row selected with `repo, target, priority, closed_by, since_ms`.
pub(crate) fn tree_closure(row: &impl Cols) -> Result<TreeClosure, StoreError> {
    const T: &str = "tree_closures";
    Ok(TreeClosure {
        repo: repo(T, &row.text(T, "repo")?)?,
        target: row.text(T, "target")?,
        priority: int32(row, T, "priority")?,
        closed_by: Login(row.text(T, "closed_by")?),
        since_ms: row.int(T, "since_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_above_bigint_are_out_of_range() {
        assert_eq!(to_db("pull request", 42).ok(), Some(42));
        assert_eq!(to_db("pull request", i64::MAX as u64).ok(), Some(i64::MAX));
        let err = to_db("pull request", u64::MAX).expect_err("too large");
        assert_eq!(
            err.to_string(),
            "pull request 18446744073709551615 is too large to store (the limit is 9223372036854775807)"
        );
    }

    #[test]
    fn negative_stored_ids_are_corrupt() {
        assert!(matches!(
            from_db("builds", "number", -1),
            Err(StoreError::Corrupt {
                table: "builds",
                column: "number"
            })
        ));
        assert_eq!(from_db("builds", "number", 7).ok(), Some(7));
    }

    #[test]
    fn nul_in_text_is_refused() {
        assert!(text("branch", "main").is_ok());
        let err = text("branch", "ma\0in").expect_err("nul");
        assert_eq!(err.to_string(), "branch contains a NUL character");
    }
}
