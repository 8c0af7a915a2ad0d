//! CI reports (SPEC §8, kome): `POST /api/reports` is accepted here, stored, and shown in one
//! living comment per pull request (or, with `comments: false`, one commit status
//! `greg/report`).
//!
//! Design note.
//! - Flow: [`Engine::accept_report`] checks the body and its JUnit files (greg-report, pure)
//!   and the repository, and writes the report to the durable inbox like a webhook (so a
//!   provider outage or a restart never loses it); the server answers 202. In the
//!   repository's lane, [`on_report`] finds the pull requests it is for (the body's `pr`, else
//!   the provider's open pull requests whose head is the commit) and stores the report in one
//!   transaction that also marks each pull request's comment as behind (`wanted += 1`,
//!   greg-store `reports.rs`); the comments are then refreshed in the background.
//! - One renderer per pull request, across processes: a refresh takes the pull request's lease
//!   in the store (a compare-and-swap with a fencing sequence), renders from the stored
//!   reports, creates or edits the comment, records what it showed, and releases. A release
//!   refused because reports arrived meanwhile ([`LeaseRelease::MoreWork`]) renders again, so
//!   the last report is always shown; a refresh that finds the lease taken does nothing, since
//!   the holder will see its report at its release.
//! - Properties: no report is left unshown (a crashed or failing renderer leaves `wanted >
//!   done`, and the sweeper renders the pull request once its lease has expired); no
//!   duplicate comment (the id is stored as soon as the comment exists, and a renderer that
//!   has no id looks for the hidden marker among the pull request's comments before creating
//!   one); no no-op edit (the body's hash is stored and compared).
//! - Races accepted: a renderer stalled past its lease (`EngineOptions::report_lease`) while
//!   creating the comment, whose successor finds neither an id nor the marker (the provider
//!   listing lags), creates a second comment; greg-store's design note has the details.

use crate::handlers::{HandlerError, RepoCtx, backend};
use crate::metrics::Metrics;
use crate::{Accepted, Engine, EngineError, Inner};
use greg_config::RepoConfig;
use greg_core::{
    CommentId, CommitStatus, Event, PrNumber, Provider, PullRequestState, RepoName, ReportEvent,
    Sha,
};
use greg_report::{
    Baseline, BodyError, CommentInput, GITHUB_COMMENT_LIMIT, JobReport, JunitError, MARKER,
    ReportBody, StoredFile, render_comment, summarize,
};
use greg_store::{LeaseRelease, NewReport, ReportLease, StoreError};
use std::sync::Arc;

/// The commit status context of `comments: false` repositories.
pub const REPORT_CONTEXT: &str = "greg/report";

/// Pull requests the sweeper refreshes per round.
const SWEEP_BATCH: u32 = 100;

/// What [`Engine::accept_report`] did with a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportReceipt {
    /// The repository.
    pub repo: RepoName,
    /// The commit.
    pub sha: Sha,
    /// The job.
    pub job: String,
    /// Stored in the inbox with this sequence number, or a duplicate of a report accepted
    /// before (the same bytes: nothing more happens).
    pub accepted: Accepted,
}

/// A pull request's reports as `GET /api/reports/{provider}/{owner}/{repo}/{pr}` answers them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportView {
    /// The pull request.
    pub pr: u64,
    /// The commit the comment shows (that of the latest report).
    pub head_sha: String,
    /// The report comment's id, once posted.
    pub comment_id: Option<u64>,
    /// Reports received for the pull request.
    pub reports_received: u64,
    /// Of those, how many the comment shows (behind while smaller).
    pub reports_shown: u64,
    /// Each job's latest report on `head_sha`, in order of first report.
    pub jobs: Vec<JobView>,
    /// The metadata files of `head_sha`, by file name.
    pub commit_metadata: std::collections::BTreeMap<String, serde_json::Value>,
    /// The metadata files of every commit of the pull request, oldest first.
    pub pull_request_metadata: Vec<MetadataView>,
}

/// One job in a [`ReportView`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobView {
    /// The job's name.
    pub job: String,
    /// `success`, `failure`, `error` or `pending`.
    pub status: &'static str,
    /// Link to the job's build.
    pub build_url: Option<String>,
    /// How long the job took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Test counts, when the job sent JUnit files.
    pub tests: Option<greg_report::Totals>,
    /// Its files kept in `reports.store`.
    pub files: Vec<StoredFile>,
    /// When greg received the report, unix milliseconds.
    pub received_ms: u64,
}

/// A metadata file of a pull request's commit in a [`ReportView`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct MetadataView {
    /// The commit whose report carried it.
    pub sha: String,
    /// The file name.
    pub file: String,
    /// The file's JSON.
    pub body: serde_json::Value,
    /// When the report that wrote it last was received, unix milliseconds.
    pub received_ms: u64,
}

/// Why [`Engine::accept_report`] refused a report. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ReportRefusal {
    /// The body is not a valid report (400); the message names the field.
    #[error("{0}")]
    Body(#[from] BodyError),
    /// A JUnit file is not valid XML or not JUnit (400); the message names the file.
    #[error("{0}")]
    Junit(#[from] JunitError),
    /// A value the server cannot use (400): a short sha, or no provider named while several
    /// are configured.
    #[error("{0}")]
    Invalid(String),
    /// The provider or repository is not configured (404).
    #[error("{0}")]
    NotConfigured(String),
    /// The inbox could not store it (503).
    #[error("{0}")]
    Store(#[from] EngineError),
    /// The object store (`reports.store`) did not keep a file (503); the message names it.
    #[error("reports.store: {0}")]
    Files(String),
}

impl Engine {
    /// Checks a report sent by `greg report` (the body of `POST /api/reports`, at most
    /// [`greg_report::MAX_BODY_BYTES`]) and stores it in the durable inbox. Returns once it is
    /// stored; the repository's lane then finds its pull requests, stores it with them, and
    /// refreshes their comments (see [`Engine::wait_idle`]). The delivery id is the body's
    /// digest, so the same report sent twice is a duplicate.
    ///
    /// # Errors
    /// [`ReportRefusal`]: nothing was stored.
    pub async fn accept_report(&self, body: &[u8]) -> Result<ReportReceipt, ReportRefusal> {
        let (provider, event) = check(&self.inner, body).await?;
        let delivery = format!("report:{}", hex_digest(body));
        let (repo, sha, job) = (event.repo.clone(), event.sha.clone(), event.job.clone());
        let accepted = self
            .accept(&provider, &delivery, Event::Report(event))
            .await?;
        Ok(ReportReceipt {
            repo,
            sha,
            job,
            accepted,
        })
    }

    /// Keeps the JUnit files of every report from now on in `store` (`reports.store`), for
    /// `retention` (their expiry); the comment links them from the job's row. Set once, at
    /// start; a second call changes nothing and returns false.
    pub fn keep_report_files(
        &self,
        store: greg_notify::Store,
        retention: std::time::Duration,
    ) -> bool {
        self.inner
            .report_files
            .set(ReportFiles { store, retention })
            .is_ok()
    }

    /// The full report page of pull request `pr` of `repo` on provider `provider_name`: an
    /// HTML document, nothing left out ([`greg_report::render_full_html`]); `None` when greg
    /// holds no report for it.
    ///
    /// # Errors
    /// The store failed.
    pub async fn full_report(
        &self,
        provider_name: &str,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<Option<String>, StoreError> {
        full_report(&self.inner, provider_name, repo, pr).await
    }

    /// What greg holds for pull request `pr` (`GET /api/reports/...`): the comment's state,
    /// each job's latest report on the commit shown, and the metadata files of that commit and
    /// of every commit of the pull request (kome's `commits/$sha` and `pulls/$number`).
    /// `None` when greg holds no report for it.
    ///
    /// # Errors
    /// The store failed.
    pub async fn report_view(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<Option<ReportView>, StoreError> {
        let store = &self.inner.store;
        let Some(row) = store.report_comment(repo, pr).await? else {
            return Ok(None);
        };
        let reports = stored_reports(&self.inner, repo, &row.head_sha).await?;
        let mut jobs: Vec<JobView> = Vec::new();
        for r in reports.into_iter().rev() {
            if jobs.iter().any(|j| j.job == r.job) {
                continue;
            }
            jobs.push(JobView {
                job: r.job,
                status: r.status.as_str(),
                build_url: r.build_url,
                duration_ms: r.duration_ms,
                tests: r.tests.map(|t| t.totals),
                files: r.files,
                received_ms: r.received_ms,
            });
        }
        jobs.reverse();
        let parse = |body: &str| {
            serde_json::from_str::<serde_json::Value>(body).unwrap_or(serde_json::Value::Null)
        };
        let commit_metadata = store
            .report_metadata(repo, &row.head_sha)
            .await?
            .into_iter()
            .map(|(file, body)| (file, parse(&body)))
            .collect();
        let pull_request_metadata = store
            .report_metadata_for_pr(repo, pr)
            .await?
            .into_iter()
            .map(|m| MetadataView {
                sha: m.sha.to_string(),
                file: m.file,
                body: parse(&m.body),
                received_ms: m.received_ms,
            })
            .collect();
        Ok(Some(ReportView {
            pr: pr.0,
            head_sha: row.head_sha.to_string(),
            comment_id: row.comment_id.map(|c| c.0),
            reports_received: row.wanted,
            reports_shown: row.done,
            jobs,
            commit_metadata,
            pull_request_metadata,
        }))
    }

    /// Refreshes the comments of pull requests whose reports are not all shown and whose lease
    /// is free or expired (what the sweeper does every `EngineOptions::report_sweep`).
    pub async fn sweep_reports(&self) {
        sweep_once(&self.inner).await;
    }
}

/// The checks of a report before it is stored: the body, its JUnit files, the provider and
/// the repository. Returns the provider's name and the event to store.
async fn check(inner: &Inner, bytes: &[u8]) -> Result<(String, ReportEvent), ReportRefusal> {
    let body = greg_report::parse_body(bytes)?;
    let provider_name = provider_of(inner, &body)?;
    let repo = RepoName::parse(&body.repo).ok_or_else(|| {
        ReportRefusal::Invalid(format!("repo: {:?} is not owner/name", body.repo))
    })?;
    if inner.config.repo(&provider_name, &repo).is_none() {
        return Err(ReportRefusal::NotConfigured(format!(
            "repository {repo} is not configured for {provider_name}"
        )));
    }
    let sha = Sha::parse(&body.sha).map_err(|_| {
        ReportRefusal::Invalid(format!(
            "sha: greg needs the full commit id (40 or 64 hex digits), got {:?}",
            body.sha
        ))
    })?;
    let received_ms = u64::try_from(inner.now_ms()).unwrap_or(0);
    let mut report = greg_report::job_report(&body, received_ms)?;
    if let Some(files) = inner.report_files.get() {
        report.files = keep_files(files, &repo, &sha, &body, inner.now_ms()).await?;
    }
    let report_json = serde_json::to_string(&report)
        .map_err(|e| ReportRefusal::Invalid(format!("cannot store the report: {e}")))?;
    let metadata = body
        .metadata
        .iter()
        .map(|(file, value)| (file.clone(), value.to_string()))
        .collect();
    Ok((
        provider_name,
        ReportEvent {
            repo,
            sha,
            pr: body.pr.map(PrNumber),
            job: body.job,
            status: body.status.as_str().to_owned(),
            report_json,
            metadata,
        },
    ))
}

/// The object store for the files of `greg report` (`reports.store`) and how long they are
/// kept.
pub(crate) struct ReportFiles {
    pub store: greg_notify::Store,
    pub retention: std::time::Duration,
}

/// Most files of one report kept in the store; the rest are not kept (their tests still
/// count).
const MAX_KEPT_FILES: usize = 50;

/// Uploads the JUnit files of `body` to the store under
/// `<owner>/<repo>/<sha>/<job>/<n>-<file name>` (names made key-safe), with their expiry
/// (`now_ms` plus the retention); returns their links in order.
async fn keep_files(
    files: &ReportFiles,
    repo: &RepoName,
    sha: &Sha,
    body: &ReportBody,
    now_ms: i64,
) -> Result<Vec<StoredFile>, ReportRefusal> {
    let retention_s = i64::try_from(files.retention.as_secs()).unwrap_or(i64::MAX);
    let expires = (now_ms / 1000).saturating_add(retention_s);
    let mut kept = Vec::new();
    for (index, file) in body.junit.iter().enumerate().take(MAX_KEPT_FILES) {
        let name = file.name(index);
        let base = name.rsplit('/').next().unwrap_or(&name);
        let key = format!(
            "{}/{}/{}/{}/{index}-{}",
            key_safe(&repo.owner),
            key_safe(&repo.name),
            sha,
            key_safe(&body.job),
            key_safe(base)
        );
        let bytes = greg_notify::Bytes::copy_from_slice(file.xml().as_bytes());
        let link = files
            .store
            .put(&key, bytes, "application/xml", expires)
            .await
            .map_err(|e| ReportRefusal::Files(format!("{name}: {e}")))?;
        kept.push(StoredFile {
            name,
            url: link.url,
        });
    }
    Ok(kept)
}

/// `s` with every character but ASCII letters, digits, `.`, `-` and `_` replaced by `_`, and
/// no leading `.` (so no `..` segment).
fn key_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// The first 16 bytes of the body's SHA-256, in hex.
fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(bytes)[..16])
}

/// Handles a stored report in its repository's lane: finds the pull requests it is for (the
/// one it names, else the open pull requests whose head is its commit), stores it with them,
/// and refreshes their comments in the background. A provider failure retries the delivery;
/// nothing is stored before the lookup succeeded.
pub(crate) async fn on_report(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    event: &ReportEvent,
) -> Result<(), HandlerError> {
    let prs: Vec<PrNumber> = match event.pr {
        Some(pr) => vec![pr],
        None => ctx
            .provider
            .pull_requests_for_commit(ctx.repo, &event.sha)
            .await
            .map_err(backend(&ctx.provider))?
            .into_iter()
            .filter(|p| p.state == PullRequestState::Open)
            .map(|p| p.number)
            .collect(),
    };
    let received_ms = u64::try_from(inner.now_ms()).unwrap_or(0);
    let new = NewReport {
        repo: ctx.repo,
        sha: &event.sha,
        job: &event.job,
        pr: event.pr,
        status: &event.status,
        report_json: &event.report_json,
        metadata: &event.metadata,
        received_ms,
    };
    inner.store.insert_report(&new, &prs).await?;
    inner
        .metrics
        .reports
        .get_or_create(&crate::metrics::StatusLabel {
            status: event.status.clone(),
        })
        .inc();
    tracing::info!(sha = %event.sha.short(), job = %event.job, status = %event.status,
        prs = ?prs.iter().map(|p| p.0).collect::<Vec<_>>(), "Report stored");
    for pr in prs {
        spawn_refresh(inner, ctx.provider_name, ctx.repo, pr);
    }
    Ok(())
}

/// The provider a body names, else the only one configured.
fn provider_of(inner: &Inner, body: &ReportBody) -> Result<String, ReportRefusal> {
    match &body.provider {
        Some(p) if inner.providers.contains_key(p) => Ok(p.clone()),
        Some(p) => Err(ReportRefusal::NotConfigured(format!(
            "provider `{}` is not configured",
            p.chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect::<String>()
        ))),
        None => {
            let mut names = inner.providers.keys();
            match (names.next(), names.next()) {
                (Some(only), None) => Ok(only.clone()),
                _ => Err(ReportRefusal::Invalid(
                    "provider: several providers are configured; name one (--provider)".into(),
                )),
            }
        }
    }
}

/// Refreshes pull request `pr`'s comment in a task of its own, after
/// `EngineOptions::report_debounce` (counted as in flight, so [`Engine::wait_idle`] waits for
/// it). Reports that arrive during the wait are shown by the same render; their own refreshes
/// then find nothing left to show.
fn spawn_refresh(inner: &Inner, provider_name: &str, repo: &RepoName, pr: PrNumber) {
    let Some(me) = inner.me.upgrade() else { return };
    let provider_name = provider_name.to_owned();
    let repo = repo.clone();
    me.begin();
    tokio::spawn(async move {
        let debounce = me.options.report_debounce;
        if !debounce.is_zero() {
            tokio::time::sleep(debounce).await;
        }
        if !me.is_stopping() {
            refresh(&me, &provider_name, &repo, pr).await;
        }
        me.end();
    });
}

/// Takes the lease of `pr`'s comment and renders until every stored report is shown; does
/// nothing when another renderer holds the lease.
async fn refresh(inner: &Arc<Inner>, provider_name: &str, repo: &RepoName, pr: PrNumber) {
    let ttl = lease_ms(inner);
    let now = || u64::try_from(inner.now_ms()).unwrap_or(0);
    // A holder per refresh, not per process: two refreshes of one process must exclude each
    // other as two replicas do.
    let holder = format!(
        "{}#{}",
        inner.holder,
        inner
            .refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut lease = match inner
        .store
        .take_report_lease(repo, pr, &holder, now(), ttl)
        .await
    {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            tracing::debug!(repo = %repo, pr = pr.0, "Report comment is being rendered elsewhere");
            return;
        }
        Err(e) => {
            tracing::warn!(repo = %repo, pr = pr.0, error = %e, "Cannot take the report lease; the sweeper retries");
            return;
        }
    };
    loop {
        if lease.done >= lease.wanted {
            // An earlier render showed every report already (a debounced refresh whose report
            // was shown by another): nothing to do but release.
            match inner.store.release_report_lease(&lease, now(), ttl).await {
                Ok(LeaseRelease::MoreWork(next)) => {
                    lease = next;
                    continue;
                }
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(repo = %repo, pr = pr.0, error = %e, "Cannot release the report lease; it expires");
                    return;
                }
            }
        }
        match render(inner, provider_name, &lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(repo = %repo, pr = pr.0, "Report lease lost during a render; the new holder renders");
                return;
            }
            Err(e) => {
                // The lease is kept until it expires; the sweeper renders again then.
                tracing::warn!(repo = %repo, pr = pr.0, error = %e, "Rendering the report comment failed; the sweeper retries");
                return;
            }
        }
        match inner.store.release_report_lease(&lease, now(), ttl).await {
            Ok(LeaseRelease::Released) => return,
            Ok(LeaseRelease::MoreWork(next)) => lease = next,
            Ok(LeaseRelease::Lost) => return,
            Err(e) => {
                tracing::warn!(repo = %repo, pr = pr.0, error = %e, "Cannot release the report lease; it expires");
                return;
            }
        }
    }
}

fn lease_ms(inner: &Inner) -> u64 {
    u64::try_from(inner.options.report_lease.as_millis()).unwrap_or(u64::MAX)
}

/// Renders the comment (or status) for what is stored up to `lease.wanted` and records it.
/// `Ok(false)`: the lease was lost (fenced out); nothing more may be written.
async fn render(
    inner: &Inner,
    provider_name: &str,
    lease: &ReportLease,
) -> Result<bool, HandlerError> {
    let repo = &lease.repo;
    let (Some(cfg), Some(provider)) = (
        inner.config.repo(provider_name, repo),
        inner.providers.get(provider_name),
    ) else {
        tracing::info!(repo = %repo, "Repository no longer configured; report comment left as is");
        return Ok(true);
    };
    let reports = stored_reports(inner, repo, &lease.head_sha).await?;
    let pull = provider
        .pull_request(repo, lease.pr)
        .await
        .map_err(backend(provider))?;
    let target = target_reports(inner, provider.as_ref(), repo, &pull.base_ref).await?;
    let expected: Vec<String> = if cfg_expect(cfg).is_empty() {
        expected_from(&target.1)
    } else {
        cfg_expect(cfg).to_vec()
    };
    let repo_text = repo_display(repo, &pull.base_repo);
    let full_url = full_report_url(inner, provider_name, &pull.base_repo, lease.pr);
    let input = CommentInput {
        repo: &repo_text,
        pr: lease.pr.0,
        head_sha: lease.head_sha.as_str(),
        reports: &reports,
        expected: &expected,
        baseline: target.0.as_ref().map(|(branch, sha, totals)| Baseline {
            branch,
            sha: sha.as_str(),
            totals: *totals,
        }),
        full_report_url: full_url.as_deref(),
    };
    let now = u64::try_from(inner.now_ms()).unwrap_or(0);
    if !cfg.comments {
        let summary = summarize(&input);
        let hash = format!(
            "status:{}:{:?}:{}",
            lease.head_sha, summary.state, summary.description
        );
        if lease.body_hash.as_deref() != Some(hash.as_str()) {
            Metrics::outcome(&inner.metrics.report_comment_writes, "status");
            let status = CommitStatus {
                state: summary.state,
                context: REPORT_CONTEXT.to_owned(),
                description: summary.description,
                target_url: full_url.clone(),
            };
            provider
                .set_status(repo, &lease.head_sha, &status)
                .await
                .map_err(backend(provider))?;
        }
        return Ok(inner
            .store
            .record_report_render(lease, lease.wanted, None, &hash, now)
            .await?);
    }
    let rendered = render_comment(&input, GITHUB_COMMENT_LIMIT);
    if lease.comment_id.is_some() && lease.body_hash.as_deref() == Some(rendered.hash.as_str()) {
        tracing::debug!(repo = %repo, pr = lease.pr.0, "Report comment unchanged; no edit");
        Metrics::outcome(&inner.metrics.report_comment_writes, "unchanged");
        return Ok(inner
            .store
            .record_report_render(lease, lease.wanted, None, &rendered.hash, now)
            .await?);
    }
    let id = match lease.comment_id {
        Some(id) => match provider
            .edit_comment(repo, lease.pr, id, &rendered.body)
            .await
        {
            Ok(()) => id,
            Err(greg_core::Error::NotFound { .. }) => {
                tracing::info!(repo = %repo, pr = lease.pr.0, comment = id.0, "Report comment was deleted; posting a new one");
                match create(inner, provider, lease, &rendered.body, false).await? {
                    Some(id) => id,
                    None => return Ok(false),
                }
            }
            Err(e) => return Err(backend(provider)(e)),
        },
        None => match create(inner, provider, lease, &rendered.body, true).await? {
            Some(id) => id,
            None => return Ok(false),
        },
    };
    Metrics::outcome(
        &inner.metrics.report_comment_writes,
        if lease.comment_id == Some(id) {
            "edit"
        } else {
            "create"
        },
    );
    if !rendered.dropped.is_empty() {
        tracing::info!(repo = %repo, pr = lease.pr.0, dropped = ?rendered.dropped, "Report comment over the limit; sections left out");
    }
    Ok(inner
        .store
        .record_report_render(lease, lease.wanted, Some(id), &rendered.hash, now)
        .await?)
}

/// Posts the report comment (after looking for one with the marker when `search`), and
/// stores its id at once. `None`: the lease was lost.
async fn create(
    inner: &Inner,
    provider: &Arc<dyn Provider>,
    lease: &ReportLease,
    body: &str,
    search: bool,
) -> Result<Option<CommentId>, HandlerError> {
    let repo = &lease.repo;
    let found = if search {
        match provider.comments(repo, lease.pr).await {
            Ok(comments) => comments
                .into_iter()
                .rev()
                .find(|c| c.body.starts_with(MARKER))
                .map(|c| c.id),
            Err(greg_core::Error::NotSupported { .. }) => None,
            Err(e) => return Err(backend(provider)(e)),
        }
    } else {
        None
    };
    let id = match found {
        Some(id) => {
            tracing::info!(repo = %repo, pr = lease.pr.0, comment = id.0, "Found the report comment by its marker");
            if !inner.store.record_report_comment_id(lease, id).await? {
                return Ok(None);
            }
            provider
                .edit_comment(repo, lease.pr, id, body)
                .await
                .map_err(backend(provider))?;
            id
        }
        None => {
            let id = provider
                .post_comment(repo, lease.pr, body)
                .await
                .map_err(backend(provider))?;
            tracing::info!(repo = %repo, pr = lease.pr.0, comment = id.0, "Report comment posted");
            if !inner.store.record_report_comment_id(lease, id).await? {
                return Ok(None);
            }
            id
        }
    };
    Ok(Some(id))
}

/// The stored reports of a commit, decoded; a row that does not decode is logged and skipped.
async fn stored_reports(
    inner: &Inner,
    repo: &RepoName,
    sha: &Sha,
) -> Result<Vec<JobReport>, StoreError> {
    let rows = inner.store.reports_for_commit(repo, sha).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match serde_json::from_str::<JobReport>(&r.report_json) {
            Ok(report) => Some(report),
            Err(e) => {
                tracing::error!(report = r.id.0, error = %e, "A stored report does not decode; left out");
                None
            }
        })
        .collect())
}

/// The target branch's baseline (branch, commit, totals) and that commit's reports: the
/// branch's tip when it has reports (then recorded as the branch's latest reported commit),
/// else the latest commit of the branch recorded with reports (the tip's CI still runs), else
/// nothing.
type TargetReports = (Option<(String, Sha, greg_report::Totals)>, Vec<JobReport>);

async fn target_reports(
    inner: &Inner,
    provider: &dyn Provider,
    repo: &RepoName,
    branch: &str,
) -> Result<TargetReports, HandlerError> {
    let tip = provider
        .branch_tip(repo, branch)
        .await
        .map_err(backend(&provider))?;
    let mut reports = Vec::new();
    let mut commit = None;
    if let Some(tip) = tip {
        reports = stored_reports(inner, repo, &tip).await?;
        if !reports.is_empty() {
            let now = u64::try_from(inner.now_ms()).unwrap_or(0);
            inner
                .store
                .record_report_baseline(repo, branch, &tip, now)
                .await?;
            commit = Some(tip);
        }
    }
    if commit.is_none()
        && let Some(latest) = inner.store.report_baseline(repo, branch).await?
    {
        reports = stored_reports(inner, repo, &latest).await?;
        if !reports.is_empty() {
            commit = Some(latest);
        }
    }
    let Some(commit) = commit else {
        return Ok((None, Vec::new()));
    };
    let totals = greg_report::baseline_totals(&reports);
    Ok((Some((branch.to_owned(), commit, totals)), reports))
}

/// The job names reported on the target's tip, in first-report order.
fn expected_from(target: &[JobReport]) -> Vec<String> {
    let mut jobs: Vec<String> = Vec::new();
    for r in target {
        if !jobs.contains(&r.job) {
            jobs.push(r.job.clone());
        }
    }
    jobs
}

fn cfg_expect(cfg: &RepoConfig) -> &[String] {
    &cfg.report.expect
}

/// The repository as the provider spells it (the store keeps lower-case keys).
fn repo_display(stored: &RepoName, from_provider: &RepoName) -> String {
    if stored.key() == from_provider.key() {
        from_provider.to_string()
    } else {
        stored.to_string()
    }
}

/// `<public_url>/report/<provider>/<owner>/<repo>/<pr>` when `server.public_url` is set.
fn full_report_url(
    inner: &Inner,
    provider_name: &str,
    repo: &RepoName,
    pr: PrNumber,
) -> Option<String> {
    let base = inner.config.server.public_url.as_deref()?;
    Some(format!(
        "{base}/report/{provider_name}/{}/{}/{}",
        repo.owner, repo.name, pr.0
    ))
}

/// One sweeper round: refresh every pull request whose comment is behind with a free lease.
async fn sweep_once(inner: &Inner) {
    let now = u64::try_from(inner.now_ms()).unwrap_or(0);
    let stale = match inner.store.stale_report_comments(now, SWEEP_BATCH).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot list report comments that are behind");
            return;
        }
    };
    for (repo, pr) in stale {
        match inner
            .config
            .repos
            .iter()
            .find(|r| r.matches(&r.provider, &repo))
        {
            Some(cfg) => {
                tracing::info!(repo = %repo, pr = pr.0, "Report comment behind; refreshing");
                spawn_refresh(inner, &cfg.provider.clone(), &repo, pr);
            }
            None => {
                tracing::debug!(repo = %repo, pr = pr.0, "Report comment of an unconfigured repository left behind")
            }
        }
    }
}

/// Sweeps every `report_sweep` until the engine stops.
pub(crate) async fn sweeper(inner: std::sync::Weak<Inner>) {
    let interval = match inner.upgrade() {
        Some(i) => i.options.report_sweep,
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.is_stopping() {
            return;
        }
        sweep_once(&inner).await;
    }
}

/// The full report page of pull request `pr` (`GET /report/...`): `None` when greg holds no
/// report for it.
///
/// # Errors
/// The store failed.
pub(crate) async fn full_report(
    inner: &Inner,
    provider_name: &str,
    repo: &RepoName,
    pr: PrNumber,
) -> Result<Option<String>, StoreError> {
    let Some(row) = inner.store.report_comment(repo, pr).await? else {
        return Ok(None);
    };
    let reports = stored_reports(inner, repo, &row.head_sha).await?;
    let expected: Vec<String> = inner
        .config
        .repo(provider_name, repo)
        .map(|c| cfg_expect(c).to_vec())
        .unwrap_or_default();
    let repo_text = repo.to_string();
    let input = CommentInput {
        repo: &repo_text,
        pr: pr.0,
        head_sha: row.head_sha.as_str(),
        reports: &reports,
        expected: &expected,
        baseline: None,
        full_report_url: None,
    };
    Ok(Some(greg_report::render_full_html(&input)))
}
