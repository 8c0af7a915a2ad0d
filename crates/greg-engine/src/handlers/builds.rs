//! Builds: starting them (keyed by repository, sha and context), superseding them when a head
//! moves, following them through callbacks and polling, and relaying their results.

use super::staging::{self, StagingResult};
use super::{HandlerError, RepoCtx, backend, comment, repo_ctx};
use crate::Inner;
use crate::dispatch::Work;
use crate::outbox::Plan;
use crate::texts;
use greg_config::{JobRef, MergeMode};
use greg_core::{
    BuildContext, BuildOutcome, BuildParams, BuildPhase, BuildState, BuildUpdate, CommitState,
    CommitStatus, PrNumber, PullRequest, PushEvent, RepoName, Sha,
};
use greg_store::{BuildChange, BuildInsert, BuildRecord, BuildRunState, NewBuild};

/// What [`start_build`] did.
pub(crate) enum Started {
    /// Triggered now.
    Triggered,
    /// An active build with the same key already exists.
    AlreadyActive(BuildRecord),
    /// A finished build with the same key exists and the request did not force a new one.
    AlreadyBuilt(BuildRecord),
    /// The builder refused; the reason was reported on the commit status.
    Refused(String),
}

/// A build request, before it has a row.
pub(crate) struct BuildRequest<'a> {
    pub pr: Option<PrNumber>,
    pub sha: &'a Sha,
    pub context: BuildContext,
    pub branch: &'a str,
    pub target: Option<&'a str>,
    pub job: &'a JobRef,
    /// Repository the head lives in (a fork when allowed), for `SOURCE`.
    pub source_repo: &'a RepoName,
    /// Build even when a finished build of the same key exists ("@greg retest", a new merge
    /// request). Events (push, pull request) do not force: one head gets one test build.
    pub force: bool,
}

/// Starts a build unless an active one with the same (repository, sha, context) exists.
pub(crate) async fn start_build(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    req: BuildRequest<'_>,
) -> Result<Started, HandlerError> {
    if !req.force
        && let Some(done) = inner
            .store
            .latest_build(ctx.repo, req.sha, req.context)
            .await?
        && matches!(done.state, BuildRunState::Success | BuildRunState::Failure)
    {
        return Ok(Started::AlreadyBuilt(done));
    }
    let new = NewBuild {
        repo: ctx.repo.clone(),
        pr: req.pr,
        sha: req.sha.clone(),
        context: req.context,
        builder: req.job.builder.clone(),
        job: req.job.name.clone(),
        branch: req.branch.to_owned(),
        target: req.target.map(str::to_owned),
        now_ms: inner.now_ms(),
    };
    let record = match inner.store.insert_build(&new).await? {
        BuildInsert::Created(r) => r,
        // A pending row is a trigger that never completed (crash or retry): trigger it now.
        BuildInsert::Exists(r) if r.state == BuildRunState::Pending => r,
        BuildInsert::Exists(r) => return Ok(Started::AlreadyActive(r)),
    };
    let source = format!(
        "{}{}.git",
        source_prefix(inner, ctx.provider_name),
        req.source_repo
    );
    trigger(inner, ctx, record, source).await
}

/// The provider's `source` prefix (SPEC §6), empty when the provider is not configured.
fn source_prefix<'a>(inner: &'a Inner, provider: &str) -> &'a str {
    inner.config.providers.source(provider).unwrap_or("")
}

async fn trigger(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    record: BuildRecord,
    source: String,
) -> Result<Started, HandlerError> {
    let builder = inner
        .builders
        .get(&record.builder)
        .ok_or_else(|| {
            HandlerError::Config(format!("builder `{}` is not configured", record.builder))
        })?
        .clone();
    let params = BuildParams {
        source,
        commit: record.sha.clone(),
        context: record.context,
        report: true,
        branch: record.branch.clone(),
        pr: if record.context == BuildContext::Test {
            None
        } else {
            record.pr
        },
        target: if record.context == BuildContext::Test {
            None
        } else {
            record.target.clone()
        },
    };
    // Pending first: if the status write fails, the row stays `pending` and the retry
    // triggers; once Jenkins has the build, only the store update remains. A staging commit
    // gets no pending status: the pull request's head carries it (see `staging.rs`).
    if !is_staging_build(&record) {
        let desc = format!(
            "{} build queued on {}",
            record.context.as_str(),
            builder.name()
        );
        set_status(
            inner,
            ctx,
            &record.sha,
            record.context,
            CommitState::Pending,
            &desc,
            None,
        )
        .await?;
    }
    match builder.trigger(&record.job, &params).await {
        Ok(item) => {
            let change = BuildChange {
                state: Some(BuildRunState::Queued),
                queue_item: Some(item),
                ..Default::default()
            };
            let record = inner
                .store
                .update_build(record.id, &change, inner.now_ms())
                .await?;
            tracing::info!(build_id = record.id, job = %record.job, sha = %record.sha, context = record.context.as_str(), queue_item = %item, "Build queued");
            inner.metrics.build_started(record.context.as_str());
            Ok(Started::Triggered)
        }
        Err(e) if e.is_retryable() => Err(backend(&builder)(e)),
        Err(e) => {
            tracing::error!(error = %e, job = %record.job, "Builder refused the build");
            let change = BuildChange {
                state: Some(BuildRunState::Error),
                ..Default::default()
            };
            inner
                .store
                .update_build(record.id, &change, inner.now_ms())
                .await?;
            let reason = e.to_string();
            let desc = format!(
                "could not start the {} build: {reason}",
                record.context.as_str()
            );
            set_status(
                inner,
                ctx,
                &record.sha,
                record.context,
                CommitState::Error,
                &desc,
                None,
            )
            .await?;
            Ok(Started::Refused(reason))
        }
    }
}

/// True for builds of a staging commit (merge_mode staging, try, test_merged): their branch is
/// one of greg's own refs, and their results go through the queue instead of straight to the
/// commit (pushes to greg's refs never start builds of their own).
fn is_staging_build(rec: &BuildRecord) -> bool {
    rec.branch.starts_with(crate::queue::STAGING_PREFIX)
}

/// Sets a commit status on the provider and remembers it in the store.
pub(crate) async fn set_status(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    sha: &Sha,
    context: BuildContext,
    state: CommitState,
    description: &str,
    target_url: Option<&str>,
) -> Result<(), HandlerError> {
    let status = CommitStatus {
        state,
        context: context.status_context().to_owned(),
        description: description.chars().take(140).collect(),
        target_url: target_url.map(str::to_owned),
    };
    ctx.provider
        .set_status(ctx.repo, sha, &status)
        .await
        .map_err(backend(&ctx.provider))?;
    inner
        .store
        .set_commit_status(
            ctx.repo,
            sha,
            context.status_context(),
            state,
            inner.now_ms(),
        )
        .await?;
    Ok(())
}

/// Push to a branch: test its new tip when the branch is one greg tests.
pub(crate) async fn on_push(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    push: &PushEvent,
) -> Result<(), HandlerError> {
    if push.branch.starts_with(crate::queue::STAGING_PREFIX) {
        tracing::debug!(branch = %push.branch, "Push to greg's own staging ref; ignored");
        return Ok(());
    }
    if ctx.cfg.test_merged {
        staging::retest_merged(inner, ctx, &push.branch).await?;
    }
    if ctx.cfg.merge_mode == MergeMode::Staging {
        staging::on_target_push(inner, ctx, &push.branch, &push.head).await?;
        if let Some(b) = inner
            .store
            .latest_build(ctx.repo, &push.head, BuildContext::Merge)
            .await?
            && b.state == BuildRunState::Success
        {
            tracing::info!(branch = %push.branch, head = %push.head, "Pushed commit is a staging commit that was built green; no test build");
            return Ok(());
        }
    }
    let Some(job) = &ctx.cfg.jobs.test else {
        return Ok(());
    };
    if !ctx.cfg.target_allowed(&push.branch) {
        tracing::info!(branch = %push.branch, "Branch is not in target_branches; no test build");
        return Ok(());
    }
    let req = BuildRequest {
        pr: None,
        sha: &push.head,
        context: BuildContext::Test,
        branch: &push.branch,
        target: None,
        job,
        source_repo: ctx.repo,
        force: false,
    };
    report_started(start_build(inner, ctx, req).await?);
    Ok(())
}

fn report_started(s: Started) {
    match s {
        Started::Triggered => {}
        Started::AlreadyActive(r) => tracing::info!(
            build_id = r.id,
            "An active build of this head exists; not starting another"
        ),
        Started::AlreadyBuilt(r) => tracing::info!(
            build_id = r.id,
            state = r.state.as_str(),
            "This head was already built; not building it again"
        ),
        Started::Refused(reason) => tracing::warn!(%reason, "Build was not started"),
    }
}

/// Opened, reopened or new head: supersede the old head's builds, test the new one.
pub(crate) async fn on_new_head(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    pr: &PullRequest,
) -> Result<(), HandlerError> {
    // One read says whether anything of an older head is in flight; mostly nothing is.
    let same_repo = pr.head_repo.as_ref() == Some(ctx.repo);
    let old = inner
        .store
        .old_head_activity(
            ctx.repo,
            pr.number,
            same_repo.then_some(pr.head_ref.as_str()),
            &pr.head_sha,
        )
        .await?;
    if old.queue_entries {
        super::exits::on_new_head(inner, ctx, pr).await?;
    }
    if old.builds {
        supersede(inner, ctx, pr).await?;
    }
    if !same_repo && !ctx.cfg.allow_forks {
        tracing::info!(pr = %pr.number, "Head is in a fork and allow_forks is off; not building it");
        return Ok(());
    }
    let Some(job) = &ctx.cfg.jobs.test else {
        return Ok(());
    };
    if ctx.cfg.test_merged {
        return staging::test_merged(inner, ctx, pr).await;
    }
    let req = BuildRequest {
        pr: Some(pr.number),
        sha: &pr.head_sha,
        context: BuildContext::Test,
        branch: &pr.head_ref,
        target: Some(&pr.base_ref),
        job,
        source_repo: pr.head_repo.as_ref().unwrap_or(ctx.repo),
        force: false,
    };
    report_started(start_build(inner, ctx, req).await?);
    Ok(())
}

/// The active builds a new head of `pr` makes obsolete: those of the pull request, and the
/// test builds a push to its head branch started (GitHub sends `push` and `synchronize` for one
/// new head, in either order; when `push` comes first its build is recorded without the pull
/// request, and `synchronize` finds it active and reuses it).
async fn builds_of_pr(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    pr: &PullRequest,
) -> Result<Vec<BuildRecord>, HandlerError> {
    if pr.head_repo.as_ref() == Some(ctx.repo) {
        // One query for both: a new head is on every busy repository's hot path.
        return Ok(inner
            .store
            .active_builds_for_pr_or_branch(ctx.repo, pr.number, &pr.head_ref)
            .await?);
    }
    Ok(inner
        .store
        .active_builds_for_pr(ctx.repo, pr.number)
        .await?)
}

/// Stops and supersedes every active build of the pull request that is not for its head.
async fn supersede(inner: &Inner, ctx: &RepoCtx<'_>, pr: &PullRequest) -> Result<(), HandlerError> {
    for b in builds_of_pr(inner, ctx, pr).await? {
        // Builds of staging commits never build the head itself; the queue withdraws them
        // when the approved head changes (`staging::on_new_head`).
        if b.sha == pr.head_sha || is_staging_build(&b) {
            continue;
        }
        stop(inner, &b).await;
        let change = BuildChange {
            state: Some(BuildRunState::Superseded),
            ..Default::default()
        };
        inner
            .store
            .update_build(b.id, &change, inner.now_ms())
            .await?;
        let desc = format!("superseded by the new head {}", pr.head_sha.short());
        set_status(
            inner,
            ctx,
            &b.sha,
            b.context,
            CommitState::Error,
            &desc,
            b.url.as_deref(),
        )
        .await?;
        tracing::info!(build_id = b.id, old = %b.sha, new = %pr.head_sha, "Build superseded by a new head");
        if b.context == BuildContext::Merge {
            let body = texts::merge_dropped(&b.sha, &pr.head_sha);
            comment(ctx, pr.number, &body).await?;
        }
    }
    Ok(())
}

/// Pull request closed: stop its builds. A merged pull request's builds are left to finish:
/// in merge_mode builder the merge job pushes the merge (which closes the pull request as
/// merged) before it ends, and its result must still be relayed.
pub(crate) async fn on_closed(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    pr: PrNumber,
    merged: bool,
) -> Result<(), HandlerError> {
    super::exits::on_closed(inner, ctx, pr).await?;
    if merged {
        tracing::info!(%pr, "Pull request merged; its builds run to their end");
        return Ok(());
    }
    for b in inner.store.active_builds_for_pr(ctx.repo, pr).await? {
        stop(inner, &b).await;
        let change = BuildChange {
            state: Some(BuildRunState::Aborted),
            ..Default::default()
        };
        inner
            .store
            .update_build(b.id, &change, inner.now_ms())
            .await?;
        // Otherwise the head's status would stay pending for ever.
        let desc = format!(
            "{} build stopped: the pull request was closed",
            b.context.as_str()
        );
        set_status(
            inner,
            ctx,
            &b.sha,
            b.context,
            CommitState::Error,
            &desc,
            b.url.as_deref(),
        )
        .await?;
        tracing::info!(build_id = b.id, "Build stopped: pull request closed");
    }
    Ok(())
}

/// Best effort: stops a running build or cancels its queue item. Failures are logged; the
/// build's result is ignored anyway once its record is no longer active.
pub(crate) async fn stop(inner: &Inner, b: &BuildRecord) {
    let Some(builder) = inner.builders.get(&b.builder) else {
        return;
    };
    let result = match (b.number, b.queue_item) {
        (Some(n), _) => builder.stop(&b.job, n).await,
        (None, Some(item)) => builder.cancel_queued(item).await,
        (None, None) => Ok(()),
    };
    if let Err(e) = result {
        tracing::warn!(build_id = b.id, error = %e, "Could not stop the build; its result will be ignored");
    }
}

/// Finds the build record a callback is about: by number, then by queue item, then by the
/// job's COMMIT/CONTEXT parameters among active builds.
pub(crate) async fn find_build(
    inner: &Inner,
    builder: &str,
    u: &BuildUpdate,
) -> Option<BuildRecord> {
    if let Ok(Some(b)) = inner
        .store
        .find_build_by_number(builder, &u.job, u.number)
        .await
    {
        return Some(b);
    }
    if let Some(item) = u.queue_item
        && let Ok(Some(b)) = inner.store.find_build_by_queue_item(builder, item).await
    {
        return Some(b);
    }
    let (Some(commit), Some(context)) = (&u.commit, u.context) else {
        return None;
    };
    let active = inner.store.active_builds().await.ok()?;
    active
        .into_iter()
        .filter(|b| {
            b.builder == builder
                && b.job == u.job
                && &b.sha == commit
                && b.context == context
                && b.number.is_none()
        })
        .min_by_key(|b| b.id)
}

/// The provider context of a build's repository.
pub(crate) fn ctx_for<'a>(inner: &'a Inner, repo: &'a RepoName) -> Option<RepoCtx<'a>> {
    let provider = inner
        .config
        .repos
        .iter()
        .find(|r| r.matches(&r.provider, repo))?
        .provider
        .as_str();
    repo_ctx(inner, provider, repo)
}

/// A Notification-plugin callback.
pub(crate) async fn on_build_update(
    inner: &Inner,
    builder: &str,
    u: &BuildUpdate,
) -> Result<(), HandlerError> {
    let Some(rec) = find_build(inner, builder, u).await else {
        tracing::info!(job = %u.job, number = %u.number, "Callback for a build greg did not start; ignored");
        return Ok(());
    };
    if !rec.state.is_active() {
        tracing::info!(
            build_id = rec.id,
            state = rec.state.as_str(),
            phase = u.phase.as_str(),
            "Callback for a finished build; ignored"
        );
        return Ok(());
    }
    let change = BuildChange {
        state: Some(BuildRunState::Running),
        number: Some(u.number),
        url: u.url.clone(),
        queue_item: u.queue_item,
    };
    let rec = inner
        .store
        .update_build(rec.id, &change, inner.now_ms())
        .await?;
    match (u.phase, u.outcome) {
        (BuildPhase::Finalized, Some(outcome)) => verified(inner, rec, outcome).await,
        (BuildPhase::Completed, Some(_)) => {
            // Act on FINALIZED; if it never comes, act on this after the grace period.
            if let Some(me) = inner.me.upgrade() {
                let grace = inner.options.completed_grace;
                let update = u.clone();
                let id = rec.id;
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    me.submit(Work::CompletedGrace {
                        build_id: id,
                        update,
                    });
                });
            }
            Ok(())
        }
        (BuildPhase::Finalized, None) => poll_build(inner, rec.id).await,
        _ => {
            tracing::info!(build_id = rec.id, number = %u.number, phase = u.phase.as_str(), "Build is running");
            Ok(())
        }
    }
}

/// COMPLETED without FINALIZED: act on COMPLETED's result.
pub(crate) async fn completed_grace(
    inner: &Inner,
    build_id: i64,
    u: &BuildUpdate,
) -> Result<(), HandlerError> {
    let Some(rec) = inner.store.build(build_id).await? else {
        return Ok(());
    };
    if !rec.state.is_active() {
        return Ok(());
    }
    let Some(outcome) = u.outcome else {
        return Ok(());
    };
    tracing::warn!(
        build_id,
        "FINALIZED never arrived; acting on the COMPLETED callback"
    );
    verified(inner, rec, outcome).await
}

/// A callback says the build finished with `claimed`. A callback is a hint, not proof (SPEC
/// §6: its `?token=` is readable by anyone who can read the job's configuration): the build
/// is read from the builder, and only the builder's own result is recorded and relayed, and
/// only when the build ran with `COMMIT` equal to the record's commit. Anything else changes
/// nothing and is logged at warn.
async fn verified(
    inner: &Inner,
    rec: BuildRecord,
    claimed: BuildOutcome,
) -> Result<(), HandlerError> {
    let (Some(builder), Some(number)) = (inner.builders.get(&rec.builder).cloned(), rec.number)
    else {
        return poll_build(inner, rec.id).await;
    };
    let state = match builder.build(&rec.job, number).await {
        Ok(state) => state,
        Err(e) if e.is_retryable() => return Err(backend(&builder)(e)),
        Err(e) => {
            tracing::warn!(build_id = rec.id, job = %rec.job, number = %number, claimed = ?claimed, error = %e, "A callback names a build the builder does not know; ignored");
            return Ok(());
        }
    };
    match state {
        BuildState::Finished {
            number,
            url,
            outcome,
            commit,
        } => {
            if !commit_matches(&rec, commit.as_ref()) {
                tracing::warn!(build_id = rec.id, job = %rec.job, number = %number, expected = %rec.sha, reported = ?commit.as_ref().map(Sha::as_str), "A callback names a build of another commit; ignored (forged or stale)");
                return Ok(());
            }
            if outcome != claimed {
                tracing::warn!(build_id = rec.id, claimed = ?claimed, actual = ?outcome, "The callback's result differs from the builder's; the builder's counts");
            }
            finalize(inner, rec, outcome, Some(url)).await
        }
        BuildState::Cancelled => finalize(inner, rec, BuildOutcome::Aborted, None).await,
        BuildState::Running { .. } | BuildState::Queued { .. } => {
            tracing::warn!(build_id = rec.id, job = %rec.job, number = %number, claimed = ?claimed, "A callback says the build finished, but the builder says it has not; ignored (forged, or the builder is behind: polling follows it)");
            Ok(())
        }
    }
}

/// True when the builder's `COMMIT` of a finished build fits the record. Merge builds land
/// code, so their `COMMIT` must be reported and equal; for test and try builds a builder that
/// does not report parameters is believed on the commit (a mismatch still refuses).
fn commit_matches(rec: &BuildRecord, commit: Option<&Sha>) -> bool {
    match commit {
        Some(c) => c == &rec.sha,
        None => {
            let lands = rec.context == BuildContext::Merge;
            if lands {
                tracing::warn!(
                    build_id = rec.id,
                    "The builder does not report the COMMIT parameter of a merge build; it cannot be verified"
                );
            }
            !lands
        }
    }
}

/// Records a build's result and relays it: commit status, and for merge and try builds a comment.
async fn finalize(
    inner: &Inner,
    rec: BuildRecord,
    outcome: BuildOutcome,
    url: Option<String>,
) -> Result<(), HandlerError> {
    let green = outcome == BuildOutcome::Success
        || (outcome == BuildOutcome::Unstable && inner.config.server.unstable_is_success);
    let state = match outcome {
        _ if green => BuildRunState::Success,
        BuildOutcome::Aborted | BuildOutcome::NotBuilt => BuildRunState::Aborted,
        _ => BuildRunState::Failure,
    };
    let url = url.or_else(|| rec.url.clone()).or_else(|| {
        let b = inner.builders.get(&rec.builder)?;
        Some(b.build_url(&rec.job, rec.number?))
    });
    tracing::info!(build_id = rec.id, sha = %rec.sha, context = rec.context.as_str(), outcome = ?outcome, "Build finished");
    if rec.state.is_active() {
        inner
            .metrics
            .build_finished(rec.context.as_str(), state.as_str());
    }
    let change = BuildChange {
        state: Some(state),
        url: url.clone(),
        ..Default::default()
    };
    let Some(ctx) = ctx_for(inner, &rec.repo) else {
        tracing::warn!(repo = %rec.repo, "Repository no longer configured; result recorded, not relayed");
        inner
            .store
            .update_build(rec.id, &change, inner.now_ms())
            .await?;
        return Ok(());
    };
    if is_staging_build(&rec) {
        // The queue entry's transition carries the statuses and comments; the build is
        // recorded after it, so a crash in between replays the (idempotent) result.
        let mut rec = rec.clone();
        rec.url.clone_from(&url);
        match staging::entry_of_build(inner, &rec).await? {
            Some(entry) => {
                let result = StagingResult::from_outcome(green, outcome);
                staging::on_result(inner, &ctx, &entry, &rec, result).await?;
            }
            None => tracing::info!(
                build_id = rec.id,
                "Staging build of an entry that left the queue; result not relayed"
            ),
        }
        inner
            .store
            .update_build(rec.id, &change, inner.now_ms())
            .await?;
        return Ok(());
    }
    // Decide, persist, act: the result and the status and comment that relay it are written
    // in one transaction, only while the build is still active; the outbox posts them once.
    let plan = relay_plan(&ctx, &rec, outcome, green, url.as_deref());
    match inner
        .store
        .finish_build(rec.id, &change, plan.effects(), inner.now_ms())
        .await?
    {
        Some(_) => staging::kick(inner, &ctx),
        None => tracing::info!(
            build_id = rec.id,
            "Build already finished; result not relayed again"
        ),
    }
    Ok(())
}

/// The effects that tell the provider a build's result: the commit status, and for merge and
/// try builds a comment (skipped by the runner with `comments: false`). Keyed by build, so a
/// result is relayed once.
fn relay_plan(
    ctx: &RepoCtx<'_>,
    rec: &BuildRecord,
    outcome: BuildOutcome,
    green: bool,
    url: Option<&str>,
) -> Plan {
    let commit_state = match (green, outcome) {
        (true, _) => CommitState::Success,
        (false, BuildOutcome::Aborted | BuildOutcome::NotBuilt) => CommitState::Error,
        (false, _) => CommitState::Failure,
    };
    let desc = texts::status_description(rec.context.as_str(), outcome, rec.number.map(|n| n.0));
    let mut plan = Plan::default();
    plan.status(
        ctx.repo,
        format!("build:{}:result:status", rec.id),
        &rec.sha,
        rec.context,
        commit_state,
        &desc,
        url,
    );
    if let Some(pr) = rec.pr {
        let body = match (rec.context, green) {
            (BuildContext::Merge, false) => Some(texts::merge_failed(&rec.sha, outcome, url)),
            (BuildContext::Try, _) => Some(texts::try_finished(&rec.sha, outcome, url)),
            _ => None,
        };
        if let Some(body) = body {
            plan.comment(
                ctx.repo,
                format!("build:{}:result:comment", rec.id),
                pr,
                body,
            );
        }
    }
    plan
}

/// Examines one active build: triggers a pending one, follows a queue item, polls a silent
/// build, and times out one that ran too long.
pub(crate) async fn poll_build(inner: &Inner, build_id: i64) -> Result<(), HandlerError> {
    let Some(rec) = inner.store.build(build_id).await? else {
        return Ok(());
    };
    if !rec.state.is_active() {
        return Ok(());
    }
    let Some(builder) = inner.builders.get(&rec.builder).cloned() else {
        return Ok(());
    };
    let now = inner.now_ms();
    let poll_after =
        i64::try_from(inner.config.server.build_poll_after.as_millis()).unwrap_or(i64::MAX);
    let timeout = i64::try_from(inner.config.server.build_timeout.as_millis()).unwrap_or(i64::MAX);
    let repo = rec.repo.clone();
    let Some(ctx) = ctx_for(inner, &repo) else {
        return Ok(());
    };

    if rec.state == BuildRunState::Pending {
        if now - rec.updated_ms >= poll_after.min(60_000) {
            tracing::info!(
                build_id,
                "Build was recorded but never triggered; triggering it now"
            );
            let source = format!(
                "{}{}.git",
                source_prefix(inner, ctx.provider_name),
                rec.repo
            );
            trigger(inner, &ctx, rec, source).await?;
        }
        return Ok(());
    }

    // Heard of last before this process started: its callback may have been lost while greg
    // was down (SPEC §11 "Start"), so it is read at once.
    let silent = now - rec.updated_ms >= poll_after || rec.updated_ms < inner.started_ms;
    let polled = match (rec.number, rec.queue_item) {
        (Some(n), _) if silent => Some(builder.build(&rec.job, n).await),
        (None, Some(item)) => match builder.queue_item(item).await {
            // The item became a build we never heard of: it may have finished long ago (its
            // callbacks lost while greg was down), so the build itself is read too.
            Ok(BuildState::Running { number, .. }) if silent => {
                Some(builder.build(&rec.job, number).await)
            }
            other => Some(other),
        },
        _ => None,
    };
    // A build the builder cannot tell about (forgotten, or the builder is down) must still
    // time out below, so a failed read is logged here rather than returned.
    let state = match polled {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            let e = backend(&builder)(e);
            if e.is_retryable() {
                tracing::warn!(build_id, error = %e, "Could not poll the build");
            } else {
                tracing::error!(build_id, error = %e, "Could not poll the build");
            }
            None
        }
        None => None,
    };
    match state {
        Some(BuildState::Finished {
            number,
            url,
            outcome,
            commit,
        }) if commit_matches(&rec, commit.as_ref()) => {
            tracing::info!(
                build_id,
                "No callback arrived; took the result from polling"
            );
            let change = BuildChange {
                number: Some(number),
                ..Default::default()
            };
            let rec = inner.store.update_build(rec.id, &change, now).await?;
            return finalize(inner, rec, outcome, Some(url)).await;
        }
        Some(BuildState::Cancelled) => {
            return finalize(inner, rec, BuildOutcome::Aborted, None).await;
        }
        Some(BuildState::Queued { why }) => {
            waiting_too_long(inner, &ctx, &rec, why.as_deref()).await?;
        }
        Some(BuildState::Running { number, url }) if rec.number.is_none() => {
            let change = BuildChange {
                state: Some(BuildRunState::Running),
                number: Some(number),
                url: Some(url),
                ..Default::default()
            };
            inner.store.update_build(rec.id, &change, now).await?;
        }
        _ => {}
    }
    if now - rec.created_ms >= timeout {
        stop(inner, &rec).await;
        let change = BuildChange {
            state: Some(BuildRunState::TimedOut),
            ..Default::default()
        };
        if is_staging_build(&rec) {
            if let Some(entry) = staging::entry_of_build(inner, &rec).await? {
                let result = StagingResult::Red("build timed out".to_owned());
                staging::on_result(inner, &ctx, &entry, &rec, result).await?;
            }
            inner.store.update_build(rec.id, &change, now).await?;
            tracing::warn!(build_id, "Staging build timed out");
            inner
                .metrics
                .build_finished(rec.context.as_str(), BuildRunState::TimedOut.as_str());
            return Ok(());
        }
        tracing::warn!(build_id, "Build timed out");
        inner
            .metrics
            .build_finished(rec.context.as_str(), BuildRunState::TimedOut.as_str());
        let desc = format!("{} build timed out", rec.context.as_str());
        let mut plan = Plan::default();
        plan.status(
            ctx.repo,
            format!("build:{}:result:status", rec.id),
            &rec.sha,
            rec.context,
            CommitState::Error,
            &desc,
            rec.url.as_deref(),
        );
        if let Some(pr) = rec.pr {
            let body = texts::build_timed_out(&rec.sha, rec.context.as_str(), rec.url.as_deref());
            plan.comment(
                ctx.repo,
                format!("build:{}:result:comment", rec.id),
                pr,
                body,
            );
        }
        if inner
            .store
            .finish_build(rec.id, &change, plan.effects(), now)
            .await?
            .is_some()
        {
            staging::kick(inner, &ctx);
        }
    }
    Ok(())
}

/// A build still in the builder's queue after `server.build_start_timeout_secs`: the pull
/// request is told once, with the builder's own reason ("Waiting for next available
/// executor"), instead of waiting silently for the build timeout.
async fn waiting_too_long(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    rec: &BuildRecord,
    why: Option<&str>,
) -> Result<(), HandlerError> {
    let limit =
        i64::try_from(inner.config.server.build_start_timeout.as_millis()).unwrap_or(i64::MAX);
    let waited = inner.now_ms().saturating_sub(rec.created_ms);
    let Some(pr) = rec.pr else { return Ok(()) };
    if waited < limit {
        return Ok(());
    }
    tracing::warn!(
        build_id = rec.id,
        waited_ms = waited,
        why,
        "Build has not started"
    );
    let mut plan = crate::outbox::Plan::default();
    let body = texts::build_waiting(&rec.sha, rec.context.as_str(), waited / 60_000, why);
    plan.comment(ctx.repo, format!("build:{}:waiting", rec.id), pr, body);
    plan.record(inner).await
}
