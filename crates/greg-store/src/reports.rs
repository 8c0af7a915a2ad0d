//! CI reports (`greg report`, SPEC §8): the job results of a commit, the metadata files they
//! carry, and the one report comment per pull request with the lease on rendering it.
//!
//! Design note: the report-comment lease.
//! - Properties: each pull request has one `report_comments` row. Every report for it bumps
//!   `wanted` in the transaction that stores the report; a render records the `wanted` it
//!   showed as `done`. The comment is behind while `wanted > done`, so no report is ever
//!   left unshown: whoever renders next shows it, or the sweeper
//!   ([`Store::stale_report_comments`]) finds the row after a crash.
//! - At most one renderer at a time per pull request, across processes: taking the lease is
//!   one `UPDATE ... WHERE (free or expired or mine) RETURNING`, which PostgreSQL evaluates
//!   again on the locked row and SQLite runs under its write lock, so two takers never both
//!   win. Every take bumps `lease_seq`, the fencing token.
//! - Invariants: `done <= wanted`; `lease_seq` never decreases; a row's `comment_id`, once
//!   stored, is only replaced by another id, never cleared. Every write by a holder
//!   ([`Store::record_report_comment_id`], [`Store::record_report_render`],
//!   [`Store::release_report_lease`]) is a compare-and-swap on `(holder, lease_seq)`: a holder
//!   whose lease expired and was taken by another changes nothing, however late it wakes up.
//!   An expired lease that nobody took is still the holder's: its writes succeed, which is
//!   safe because nobody else can have written in between.
//! - Releasing is refused while reports arrived during the render (`done < wanted`): the
//!   holder gets [`LeaseRelease::MoreWork`] with its lease extended and renders again, so a
//!   report that lands just before the release is never stranded.
//! - Races accepted: a holder fenced out after it edited the comment on the provider but
//!   before it recorded the render wastes that edit (the new holder renders again from the
//!   stored reports, and the content hash makes an identical edit a no-op). A holder that
//!   outlives its lease while creating the comment can still create a second comment if the
//!   next holder also finds none; the comment id is recorded as soon as it exists, and the
//!   hidden marker lets the engine find a comment whose id was never recorded.

use crate::builds::repo_key;
use crate::model::ReportId;
use crate::{Store, StoreError, row};
use greg_core::{CommentId, PrNumber, RepoName, Sha};

/// A job's report to store ([`Store::insert_report`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewReport<'a> {
    /// The repository the job built.
    pub repo: &'a RepoName,
    /// The commit the job built.
    pub sha: &'a Sha,
    /// The job's name as shown in the comment.
    pub job: &'a str,
    /// The pull request the report named (`--pr`), if any.
    pub pr: Option<PrNumber>,
    /// `success`, `failure`, `error` or `pending` (checked by the server, not here).
    pub status: &'a str,
    /// The engine's report as JSON, stored verbatim.
    pub report_json: &'a str,
    /// Metadata files as (file name, JSON body); a file of the same name on the same commit
    /// is replaced.
    pub metadata: &'a [(String, String)],
    /// When greg received it, unix milliseconds.
    pub received_ms: u64,
}

/// A stored report, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// Arrival order.
    pub id: ReportId,
    /// The repository (as its lower-case key).
    pub repo: RepoName,
    /// The commit the job built.
    pub sha: Sha,
    /// As stored: [`NewReport::job`].
    pub job: String,
    /// As stored: [`NewReport::pr`].
    pub pr: Option<PrNumber>,
    /// As stored: [`NewReport::status`].
    pub status: String,
    /// As stored: [`NewReport::report_json`].
    pub report_json: String,
    /// When greg received it, unix milliseconds.
    pub received_ms: u64,
}

/// A metadata file of a pull request's commits ([`Store::report_metadata_for_pr`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportMetadata {
    /// The commit whose report carried it.
    pub sha: Sha,
    /// The file name.
    pub file: String,
    /// The file's JSON, verbatim.
    pub body: String,
    /// When the report that wrote it last was received, unix milliseconds.
    pub received_ms: u64,
}

/// The lease on a pull request's report comment, as taken or refreshed: the holder's view of
/// the row at that moment. Pass it back to every write; it is the fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLease {
    /// The repository (as its lower-case key).
    pub repo: RepoName,
    /// The pull request.
    pub pr: PrNumber,
    /// Who holds it (a replica's name, unique per process).
    pub holder: String,
    /// The row's `lease_seq` at the take: writes succeed only while it is unchanged.
    pub seq: u64,
    /// Reports received for the pull request so far; render up to this.
    pub wanted: u64,
    /// The `wanted` last rendered.
    pub done: u64,
    /// The report comment, once created.
    pub comment_id: Option<CommentId>,
    /// Hash of the body last rendered, to skip edits that change nothing.
    pub body_hash: Option<String>,
    /// The commit of the latest report for the pull request.
    pub head_sha: Sha,
}

/// How [`Store::release_report_lease`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseRelease {
    /// The comment showed every report (`done == wanted`); the lease is free.
    Released,
    /// Reports arrived during the render: the lease is still the holder's, extended, with
    /// the new `wanted`; render again.
    MoreWork(ReportLease),
    /// Another holder took the lease (or the row was pruned): nothing was changed.
    Lost,
}

/// A `report_comments` row, as stored ([`Store::report_comment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportCommentRow {
    /// The repository (as its lower-case key).
    pub repo: RepoName,
    /// The pull request.
    pub pr: PrNumber,
    /// The report comment, once created.
    pub comment_id: Option<CommentId>,
    /// Hash of the body last rendered.
    pub body_hash: Option<String>,
    /// The commit of the latest report for the pull request.
    pub head_sha: Sha,
    /// Reports received for the pull request.
    pub wanted: u64,
    /// The `wanted` last rendered.
    pub done: u64,
    /// The lease holder; `None` once released.
    pub holder: Option<String>,
    /// Bumped at every take: the fencing token.
    pub lease_seq: u64,
    /// The lease is live until this time, unix milliseconds (0 once released).
    pub lease_until_ms: u64,
    /// Last change by a report, a take, a render or a release, unix milliseconds.
    pub updated_ms: u64,
}

/// What [`Store::prune_reports`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrunedReports {
    /// Rows of `reports`.
    pub reports: u64,
    /// Metadata files.
    pub metadata: u64,
    /// Report-comment rows.
    pub comments: u64,
}

/// The columns of `report_comments` that [`decode_lease`] reads, as a literal for `concat!`.
macro_rules! lease_columns {
    () => {
        "repo, pr, holder, lease_seq, wanted, done, comment_id, body_hash, head_sha"
    };
}

const REPORTS: &str = "reports";
const COMMENTS: &str = "report_comments";

/// A stored non-negative BIGINT in `column` of `table`.
fn count(r: &impl row::Cols, table: &'static str, column: &'static str) -> Result<u64, StoreError> {
    row::from_db(table, column, r.int(table, column)?)
}

/// A stored commit sha in `column` of `table`.
fn sha_in(
    r: &impl row::Cols,
    table: &'static str,
    column: &'static str,
) -> Result<Sha, StoreError> {
    Sha::parse(&r.text(table, column)?).map_err(|_| StoreError::Corrupt { table, column })
}

fn report(r: &impl row::Cols) -> Result<StoredReport, StoreError> {
    const T: &str = REPORTS;
    Ok(StoredReport {
        id: ReportId(count(r, T, "id")?),
        repo: row::repo(T, &r.text(T, "repo")?)?,
        sha: sha_in(r, T, "sha")?,
        job: r.text(T, "job")?,
        pr: r
            .opt_int(T, "pr")?
            .map(|v| row::from_db(T, "pr", v).map(PrNumber))
            .transpose()?,
        status: r.text(T, "status")?,
        report_json: r.text(T, "report")?,
        received_ms: count(r, T, "received_ms")?,
    })
}

fn decode_lease(r: &impl row::Cols) -> Result<ReportLease, StoreError> {
    const T: &str = COMMENTS;
    Ok(ReportLease {
        repo: row::repo(T, &r.text(T, "repo")?)?,
        pr: PrNumber(count(r, T, "pr")?),
        holder: r.text(T, "holder")?,
        seq: count(r, T, "lease_seq")?,
        wanted: count(r, T, "wanted")?,
        done: count(r, T, "done")?,
        comment_id: r
            .opt_int(T, "comment_id")?
            .map(|v| row::from_db(T, "comment_id", v).map(CommentId))
            .transpose()?,
        body_hash: r.opt_text(T, "body_hash")?,
        head_sha: sha_in(r, T, "head_sha")?,
    })
}

fn comment_row(r: &impl row::Cols) -> Result<ReportCommentRow, StoreError> {
    const T: &str = COMMENTS;
    Ok(ReportCommentRow {
        repo: row::repo(T, &r.text(T, "repo")?)?,
        pr: PrNumber(count(r, T, "pr")?),
        comment_id: r
            .opt_int(T, "comment_id")?
            .map(|v| row::from_db(T, "comment_id", v).map(CommentId))
            .transpose()?,
        body_hash: r.opt_text(T, "body_hash")?,
        head_sha: sha_in(r, T, "head_sha")?,
        wanted: count(r, T, "wanted")?,
        done: count(r, T, "done")?,
        holder: r.opt_text(T, "holder")?,
        lease_seq: count(r, T, "lease_seq")?,
        lease_until_ms: count(r, T, "lease_until_ms")?,
        updated_ms: count(r, T, "updated_ms")?,
    })
}

/// A time as a BIGINT.
fn time(value: u64) -> Result<i64, StoreError> {
    row::to_db("time (unix milliseconds)", value)
}

/// The end of a lease taken at `now_ms` for `ttl_ms`, as a BIGINT.
fn lease_end(now_ms: u64, ttl_ms: u64) -> Result<i64, StoreError> {
    time(now_ms.checked_add(ttl_ms).ok_or(StoreError::OutOfRange {
        what: "lease end (unix milliseconds)",
        value: u64::MAX,
    })?)
}

/// The key and bound values identifying a lease's row and holder.
struct LeaseKey<'a> {
    repo: String,
    pr: i64,
    holder: &'a str,
    seq: i64,
}

impl<'a> LeaseKey<'a> {
    fn of(lease: &'a ReportLease) -> Result<Self, StoreError> {
        Ok(LeaseKey {
            repo: repo_key(&lease.repo)?,
            pr: row::to_db("pull request", lease.pr.0)?,
            holder: row::text("lease holder", &lease.holder)?,
            seq: row::to_db("lease sequence", lease.seq)?,
        })
    }
}

impl Store {
    /// Stores `report` in one transaction: inserts the report, upserts its metadata files
    /// (a file of the same name on the same commit is replaced; each file's `pr` is the
    /// report's `pr`, else the first of `prs`), and for each pull request in `prs` (once
    /// each) bumps `wanted` of its report-comment row and sets `head_sha` to the report's
    /// commit, creating the row (wanted 1, done 0, no lease) when it is new. Returns the
    /// report's id.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`] for a pull request or time above `i64::MAX`;
    /// [`StoreError::InvalidText`] for text with NUL; [`StoreError::Database`].
    pub async fn insert_report(
        &self,
        report: &NewReport<'_>,
        prs: &[PrNumber],
    ) -> Result<ReportId, StoreError> {
        const INSERT: &str = "INSERT INTO reports (repo, sha, job, pr, status, report, \
             received_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
        const METADATA: &str = "INSERT INTO report_metadata (repo, sha, pr, file, body, \
             received_ms) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (repo, sha, file) DO UPDATE SET body = excluded.body, \
             pr = COALESCE(excluded.pr, report_metadata.pr), received_ms = excluded.received_ms";
        const COMMENT: &str = "INSERT INTO report_comments (repo, pr, comment_id, body_hash, \
             head_sha, wanted, done, holder, lease_seq, lease_until_ms, updated_ms) \
             VALUES ($1, $2, NULL, NULL, $3, 1, 0, NULL, 0, 0, $4) \
             ON CONFLICT (repo, pr) DO UPDATE SET wanted = report_comments.wanted + 1, \
             head_sha = excluded.head_sha, updated_ms = excluded.updated_ms";
        let repo = repo_key(report.repo)?;
        let job = row::text("report job", report.job)?;
        let status = row::text("report status", report.status)?;
        let json = row::text("report", report.report_json)?;
        let received = time(report.received_ms)?;
        let pr = report
            .pr
            .map(|p| row::to_db("pull request", p.0))
            .transpose()?;
        // Rows are locked in one order (files by name, pull requests by number) so that two
        // reports stored at once on PostgreSQL cannot deadlock.
        let mut files = Vec::with_capacity(report.metadata.len());
        for (file, body) in report.metadata {
            files.push((
                row::text("metadata file name", file)?,
                row::text("metadata file", body)?,
            ));
        }
        files.sort_by(|a, b| a.0.cmp(b.0));
        let mut comment_prs = prs
            .iter()
            .map(|p| row::to_db("pull request", p.0))
            .collect::<Result<Vec<_>, _>>()?;
        let metadata_pr = pr.or(comment_prs.first().copied());
        comment_prs.sort_unstable();
        comment_prs.dedup();
        let db = |e: sqlx::Error| StoreError::db("insert_report")(e);
        with_writer!(self, pool => {
            let mut tx = pool.begin().await.map_err(db)?;
            let inserted = sqlx::query(INSERT)
                .bind(&repo)
                .bind(report.sha.as_str())
                .bind(job)
                .bind(pr)
                .bind(status)
                .bind(json)
                .bind(received)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            let id = ReportId(count(&inserted, REPORTS, "id")?);
            for (file, body) in &files {
                sqlx::query(METADATA)
                    .bind(&repo)
                    .bind(report.sha.as_str())
                    .bind(metadata_pr)
                    .bind(*file)
                    .bind(*body)
                    .bind(received)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            for pr in &comment_prs {
                sqlx::query(COMMENT)
                    .bind(&repo)
                    .bind(*pr)
                    .bind(report.sha.as_str())
                    .bind(received)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            Ok(id)
        })
    }

    /// Every report stored for commit `sha` of `repo`, in arrival order (the latest report
    /// of each job is the last one of its name).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn reports_for_commit(
        &self,
        repo: &RepoName,
        sha: &Sha,
    ) -> Result<Vec<StoredReport>, StoreError> {
        const SQL: &str = "SELECT id, repo, sha, job, pr, status, report, received_ms \
             FROM reports WHERE repo = $1 AND sha = $2 ORDER BY id";
        let repo = repo_key(repo)?;
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .bind(sha.as_str())
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("reports_for_commit"))?;
            rows.iter().map(report).collect()
        })
    }

    /// The metadata files of commit `sha` of `repo` as (file name, JSON body), by file name.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn report_metadata(
        &self,
        repo: &RepoName,
        sha: &Sha,
    ) -> Result<Vec<(String, String)>, StoreError> {
        const SQL: &str = "SELECT file, body FROM report_metadata \
             WHERE repo = $1 AND sha = $2 ORDER BY file";
        const T: &str = "report_metadata";
        let repo = repo_key(repo)?;
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(&repo)
                .bind(sha.as_str())
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("report_metadata"))?;
            rows.iter()
                .map(|r| {
                    use row::Cols;
                    Ok((r.text(T, "file")?, r.text(T, "body")?))
                })
                .collect()
        })
    }

    /// The metadata files stored for pull request `pr` of `repo`, over all its commits,
    /// oldest first (by time received, then commit, then file name).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn report_metadata_for_pr(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<Vec<ReportMetadata>, StoreError> {
        const SQL: &str = "SELECT sha, file, body, received_ms FROM report_metadata \
             WHERE repo = $1 AND pr = $2 ORDER BY received_ms, sha, file";
        const T: &str = "report_metadata";
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
                .map_err(StoreError::db("report_metadata_for_pr"))?;
            rows.iter()
                .map(|r| {
                    use row::Cols;
                    Ok(ReportMetadata {
                        sha: sha_in(r, T, "sha")?,
                        file: r.text(T, "file")?,
                        body: r.text(T, "body")?,
                        received_ms: count(r, T, "received_ms")?,
                    })
                })
                .collect()
        })
    }

    /// Takes the lease on the report comment of pull request `pr` of `repo` for `holder`
    /// until `now_ms + ttl_ms` (unix milliseconds) when nobody holds it, the lease expired
    /// (`lease_until_ms < now_ms`), or `holder` already holds it. One atomic
    /// `UPDATE ... WHERE ... RETURNING`, so two processes on one PostgreSQL never both get
    /// it. Bumps `lease_seq`: a lease taken earlier, even by the same holder, is fenced out.
    /// `None` when another holder has a live lease or the pull request has no row (no
    /// report yet).
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`]; [`StoreError::InvalidText`]; [`StoreError::Database`];
    /// [`StoreError::Corrupt`].
    pub async fn take_report_lease(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        holder: &str,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<Option<ReportLease>, StoreError> {
        const SQL: &str = concat!(
            "UPDATE report_comments SET holder = $3, lease_seq = lease_seq + 1, \
             lease_until_ms = $5, updated_ms = $4 \
             WHERE repo = $1 AND pr = $2 \
             AND (holder IS NULL OR lease_until_ms < $4 OR holder = $3) RETURNING ",
            lease_columns!()
        );
        let repo = repo_key(repo)?;
        let pr = row::to_db("pull request", pr.0)?;
        let holder = row::text("lease holder", holder)?;
        let now = time(now_ms)?;
        let until = lease_end(now_ms, ttl_ms)?;
        with_writer!(self, pool => {
            let taken = sqlx::query(SQL)
                .bind(&repo)
                .bind(pr)
                .bind(holder)
                .bind(now)
                .bind(until)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("take_report_lease"))?;
            taken.as_ref().map(decode_lease).transpose()
        })
    }

    /// Records a render of the report comment at `now_ms`: `done` becomes `rendered_wanted`
    /// (never beyond `wanted`, never backwards), `body_hash` and `comment_id` are stored (a
    /// `None` comment id keeps the stored one). Only while `lease` is still current: a
    /// compare-and-swap on holder and `lease_seq`, so a holder that lost its lease changes
    /// nothing. Returns `false` when fenced out.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`]; [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn record_report_render(
        &self,
        lease: &ReportLease,
        rendered_wanted: u64,
        comment_id: Option<CommentId>,
        body_hash: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE report_comments SET \
             done = CASE WHEN $5 > wanted THEN wanted WHEN $5 > done THEN $5 ELSE done END, \
             comment_id = COALESCE($6, comment_id), body_hash = $7, updated_ms = $8 \
             WHERE repo = $1 AND pr = $2 AND holder = $3 AND lease_seq = $4";
        let key = LeaseKey::of(lease)?;
        let rendered = row::to_db("rendered report count", rendered_wanted)?;
        let comment_id = comment_id
            .map(|c| row::to_db("comment id", c.0))
            .transpose()?;
        let body_hash = row::text("body hash", body_hash)?;
        let now = time(now_ms)?;
        let updated = with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(&key.repo)
                .bind(key.pr)
                .bind(key.holder)
                .bind(key.seq)
                .bind(rendered)
                .bind(comment_id)
                .bind(body_hash)
                .bind(now)
                .execute(pool)
                .await
                .map_err(StoreError::db("record_report_render"))?
                .rows_affected()
        });
        Ok(updated > 0)
    }

    /// Stores the id of the report comment as soon as it is created, before anything else,
    /// so that a crash after creating it never leads to a second comment. The same
    /// compare-and-swap as [`Store::record_report_render`]; returns `false` when fenced out.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`]; [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn record_report_comment_id(
        &self,
        lease: &ReportLease,
        comment_id: CommentId,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE report_comments SET comment_id = $5 \
             WHERE repo = $1 AND pr = $2 AND holder = $3 AND lease_seq = $4";
        let key = LeaseKey::of(lease)?;
        let comment_id = row::to_db("comment id", comment_id.0)?;
        let updated = with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(&key.repo)
                .bind(key.pr)
                .bind(key.holder)
                .bind(key.seq)
                .bind(comment_id)
                .execute(pool)
                .await
                .map_err(StoreError::db("record_report_comment_id"))?
                .rows_affected()
        });
        Ok(updated > 0)
    }

    /// Releases `lease` at `now_ms` when the comment shows every report (`done >= wanted`):
    /// [`LeaseRelease::Released`]. When reports arrived meanwhile, keeps the lease, extends
    /// it to `now_ms + ttl_ms` and answers [`LeaseRelease::MoreWork`] with the row as it is
    /// now. [`LeaseRelease::Lost`] when fenced out (compare-and-swap on holder and
    /// `lease_seq`). One atomic statement: a report stored concurrently is either seen here
    /// (more work) or bumps `wanted` after the release (and whoever stored it takes the lease).
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`]; [`StoreError::InvalidText`]; [`StoreError::Database`];
    /// [`StoreError::Corrupt`].
    pub async fn release_report_lease(
        &self,
        lease: &ReportLease,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<LeaseRelease, StoreError> {
        const SQL: &str = concat!(
            "UPDATE report_comments SET \
             holder = CASE WHEN done >= wanted THEN NULL ELSE holder END, \
             lease_until_ms = CASE WHEN done >= wanted THEN 0 ELSE $6 END, updated_ms = $5 \
             WHERE repo = $1 AND pr = $2 AND holder = $3 AND lease_seq = $4 RETURNING ",
            lease_columns!()
        );
        const T: &str = COMMENTS;
        let key = LeaseKey::of(lease)?;
        let now = time(now_ms)?;
        let until = lease_end(now_ms, ttl_ms)?;
        with_writer!(self, pool => {
            let updated = sqlx::query(SQL)
                .bind(&key.repo)
                .bind(key.pr)
                .bind(key.holder)
                .bind(key.seq)
                .bind(now)
                .bind(until)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("release_report_lease"))?;
            let Some(updated) = updated else {
                return Ok(LeaseRelease::Lost);
            };
            if row::Cols::opt_text(&updated, T, "holder")?.is_none() {
                Ok(LeaseRelease::Released)
            } else {
                Ok(LeaseRelease::MoreWork(decode_lease(&updated)?))
            }
        })
    }

    /// Pull requests whose report comment is behind (`wanted > done`) and whose lease is
    /// free or expired at `now_ms` (unix milliseconds), least recently updated first, at most
    /// `limit`: for the periodic sweeper after a crash.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn stale_report_comments(
        &self,
        now_ms: u64,
        limit: u32,
    ) -> Result<Vec<(RepoName, PrNumber)>, StoreError> {
        const SQL: &str = "SELECT repo, pr FROM report_comments \
             WHERE wanted > done AND (holder IS NULL OR lease_until_ms < $1) \
             ORDER BY updated_ms, repo, pr LIMIT $2";
        const T: &str = COMMENTS;
        let now = time(now_ms)?;
        with_reader!(self, pool => {
            let rows = sqlx::query(SQL)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("stale_report_comments"))?;
            rows.iter()
                .map(|r| {
                    use row::Cols;
                    Ok((row::repo(T, &r.text(T, "repo")?)?, PrNumber(count(r, T, "pr")?)))
                })
                .collect()
        })
    }

    /// The report-comment row of pull request `pr` of `repo`, if any report reached it (the
    /// JSON API, tests).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn report_comment(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<Option<ReportCommentRow>, StoreError> {
        const SQL: &str = "SELECT repo, pr, comment_id, body_hash, head_sha, wanted, done, \
             holder, lease_seq, lease_until_ms, updated_ms FROM report_comments \
             WHERE repo = $1 AND pr = $2";
        let repo = repo_key(repo)?;
        let Ok(pr) = i64::try_from(pr.0) else {
            return Ok(None);
        };
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(&repo)
                .bind(pr)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("report_comment"))?;
            found.as_ref().map(comment_row).transpose()
        })
    }

    /// Records `sha` as the latest commit of `branch` that has reports (the baseline of the
    /// branch's pull requests' comments, [`Store::report_baseline`]).
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`]; [`StoreError::InvalidText`]; [`StoreError::Database`].
    pub async fn record_report_baseline(
        &self,
        repo: &RepoName,
        branch: &str,
        sha: &Sha,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO report_baselines (repo, branch, sha, updated_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (repo, branch) DO UPDATE \
             SET sha = excluded.sha, updated_ms = excluded.updated_ms";
        let repo = repo_key(repo)?;
        let branch = row::text("branch", branch)?;
        let now = time(now_ms)?;
        with_writer!(self, pool => {
            sqlx::query(SQL)
                .bind(&repo)
                .bind(branch)
                .bind(sha.as_str())
                .bind(now)
                .execute(pool)
                .await
                .map_err(StoreError::db("record_report_baseline"))?;
            Ok(())
        })
    }

    /// The latest commit of `branch` recorded with [`Store::record_report_baseline`].
    ///
    /// # Errors
    /// [`StoreError::InvalidText`]; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn report_baseline(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<Sha>, StoreError> {
        const SQL: &str = "SELECT sha FROM report_baselines WHERE repo = $1 AND branch = $2";
        let repo = repo_key(repo)?;
        let branch = row::text("branch", branch)?;
        with_reader!(self, pool => {
            let found = sqlx::query(SQL)
                .bind(&repo)
                .bind(branch)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("report_baseline"))?;
            found
                .as_ref()
                .map(|r| sha_in(r, "report_baselines", "sha"))
                .transpose()
        })
    }

    /// Deletes, in one transaction, the reports and metadata files received before
    /// `before_ms` (unix milliseconds), the report-comment rows not updated since then that
    /// are not behind (`done >= wanted`), and the branch baselines not updated since then. A
    /// holder whose row is deleted is fenced out.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`]; [`StoreError::Database`].
    pub async fn prune_reports(&self, before_ms: u64) -> Result<PrunedReports, StoreError> {
        const REPORTS_SQL: &str = "DELETE FROM reports WHERE received_ms < $1";
        const METADATA_SQL: &str = "DELETE FROM report_metadata WHERE received_ms < $1";
        const COMMENTS_SQL: &str =
            "DELETE FROM report_comments WHERE updated_ms < $1 AND done >= wanted";
        const BASELINES_SQL: &str = "DELETE FROM report_baselines WHERE updated_ms < $1";
        let before = time(before_ms)?;
        let db = |e: sqlx::Error| StoreError::db("prune_reports")(e);
        with_writer!(self, pool => {
            let mut tx = pool.begin().await.map_err(db)?;
            let mut deleted = [0u64; 4];
            let all = [REPORTS_SQL, METADATA_SQL, COMMENTS_SQL, BASELINES_SQL];
            for (n, sql) in deleted.iter_mut().zip(all) {
                *n = sqlx::query(sql)
                    .bind(before)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
            }
            tx.commit().await.map_err(db)?;
            let [reports, metadata, comments, _baselines] = deleted;
            Ok(PrunedReports {
                reports,
                metadata,
                comments,
            })
        })
    }
}
