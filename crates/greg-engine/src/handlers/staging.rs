//! merge_mode staging (SPEC §6, the Patronus and bors way): the engine side of the merge
//! queue. The pure decisions live in [`crate::queue`]; this module persists them and performs
//! the provider and builder calls, always writing a state before acting on it (see the design
//! note there for properties and accepted races).
//!
//! Provider calls per pull request landed, when nothing goes wrong: tip of the target (1),
//! staging ref (1), merge into it (1), `greg/merge` pending on the head (1); after the green
//! build: `greg/merge` success on the staging commit (1, so a protected target accepts it), the
//! fast-forward (1), `greg/merge` success on the head (1), the "merged" comment (1), deleting
//! the staging ref (1). The command itself reads the pull request, its reviews and the
//! commenter's permission (3): 12 in all.

use super::builds::{self, BuildRequest, Started, set_status};
use super::{HandlerError, RepoCtx, backend, comment};
use crate::Inner;
use crate::queue::{self, QueueEvent, ResumeStep};
use crate::texts;
use greg_core::{
    BuildContext, BuildOutcome, CommitState, FastForward, Login, MergeResult, PrNumber,
    PullRequest, Sha,
};
use greg_store::{
    BuildChange, BuildRecord, BuildRunState, NewQueueEntry, QueueChange, QueueEntry, QueueInsert,
    QueueKind, QueueState,
};

/// Most entries one call of [`advance`] starts (each conflicting or already-merged entry lets
/// the next one start at once); the rest start on the next event.
const MAX_STARTS_PER_ADVANCE: usize = 16;

/// The build context of an entry's staging build.
pub(crate) fn context_of(kind: QueueKind) -> BuildContext {
    match kind {
        QueueKind::Merge => BuildContext::Merge,
        QueueKind::Try => BuildContext::Try,
        QueueKind::Test => BuildContext::Test,
    }
}

/// A request to land ("@greg please") or to test the merge ("@greg try") of `pr` into `target`.
pub(crate) struct Request<'a> {
    pub pr: &'a PullRequest,
    pub kind: QueueKind,
    pub target: &'a str,
    pub approver: &'a Login,
    pub command: String,
    pub priority: i32,
}

/// Puts the pull request in its queue and starts what can start. Comments only when it has to
/// wait (the `greg/merge` pending status tells the rest).
pub(crate) async fn request(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    req: Request<'_>,
) -> Result<(), HandlerError> {
    let pr = req.pr;
    if let Some(old) = inner
        .store
        .active_queue_entry(ctx.repo, pr.number, req.kind)
        .await?
    {
        if old.head_sha == pr.head_sha && old.target == req.target {
            // Asked again (or a retried delivery): nothing new, but make sure it moves.
            kick(inner, ctx);
            let body = texts::already_merging(&pr.head_sha);
            return comment(ctx, pr.number, &body).await;
        }
        // Another head or another target: the newer request replaces the older one.
        withdraw(inner, ctx, &old, "replaced by a newer request").await?;
    }
    let new = NewQueueEntry {
        repo: ctx.repo.clone(),
        pr: pr.number,
        kind: req.kind,
        target: req.target.to_owned(),
        head_sha: pr.head_sha.clone(),
        approver: req.approver.clone(),
        command: req.command,
        priority: req.priority,
        now_ms: inner.now_ms(),
    };
    let entry = match inner.store.enqueue(&new).await? {
        QueueInsert::Created(e) => e,
        QueueInsert::Exists(e) => e,
    };
    tracing::info!(pr = %pr.number, entry = entry.id, kind = entry.kind.as_str(), target = %entry.target, priority = entry.priority, "Queued");
    let queue = inner.store.queue(ctx.repo, &entry.target).await?;
    let closure = inner.store.tree_closure(ctx.repo, &entry.target).await?;
    let starts_now =
        queue::to_start(&queue, closure.map(|c| c.priority), test_cap(ctx)).contains(&entry.id);
    if !starts_now && entry.kind == QueueKind::Merge {
        let position = queue::position_of(&queue, entry.id).unwrap_or(1);
        let body = texts::queued(&entry.head_sha, &entry.target, position);
        comment(ctx, entry.pr, &body).await?;
    }
    kick(inner, ctx);
    Ok(())
}

/// True when the provider cannot make staging refs and fast-forward (Bitbucket): merges are
/// built by the merge job from the head and TARGET, and landed with
/// [`Provider::merge_pull_request`](greg_core::Provider::merge_pull_request) after checking
/// that the target did not move (docs/providers.md, "Staging on Bitbucket").
pub(crate) fn api_merge(ctx: &RepoCtx<'_>) -> bool {
    let caps = ctx.provider.capabilities();
    !(caps.staging_refs && caps.fast_forward)
}

/// Deletes the staging ref of `entry`, when greg made one.
async fn delete_staging_ref(ctx: &RepoCtx<'_>, entry: &QueueEntry) -> Result<(), HandlerError> {
    if api_merge(ctx) {
        return Ok(());
    }
    let p = &ctx.provider;
    p.delete_branch(ctx.repo, &queue::staging_branch(entry))
        .await
        .map_err(backend(p))
}

/// `max_test_builds` of the repository.
fn test_cap(ctx: &RepoCtx<'_>) -> usize {
    usize::try_from(ctx.cfg.max_test_builds).unwrap_or(usize::MAX)
}

/// Asks the repository's lane to drive its queues (resume in-flight entries, start what can
/// start) as a work item of its own, after the current one: its failures are retried on their
/// own, so a provider error while starting the next entry never undoes the step that freed
/// the queue.
pub(crate) fn kick(inner: &Inner, ctx: &RepoCtx<'_>) {
    inner.submit(crate::dispatch::Work::Queue {
        repo: ctx.repo.clone(),
    });
}

/// Starts every entry of the (repository, target) queue the queue allows to start.
async fn advance(inner: &Inner, ctx: &RepoCtx<'_>, target: &str) -> Result<(), HandlerError> {
    for _ in 0..MAX_STARTS_PER_ADVANCE {
        let entries = inner.store.queue(ctx.repo, target).await?;
        let closure = inner.store.tree_closure(ctx.repo, target).await?;
        let ids = queue::to_start(&entries, closure.map(|c| c.priority), test_cap(ctx));
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            if let Some(entry) = entries.iter().find(|e| e.id == id) {
                start(inner, ctx, entry).await?;
            }
        }
    }
    Ok(())
}

/// Records `event` on `entry` (with extra field changes) and returns the new row; `None` when
/// the event does not apply in the entry's state (a stale or repeated trigger).
async fn record(
    inner: &Inner,
    entry: &QueueEntry,
    event: QueueEvent,
    mut change: QueueChange,
) -> Result<Option<QueueEntry>, HandlerError> {
    match queue::transition(entry.kind, entry.state, event) {
        Ok(next) => {
            change.state = Some(next);
            let updated = inner
                .store
                .update_queue_entry(entry.id, &change, inner.now_ms())
                .await?;
            tracing::info!(entry = entry.id, pr = %entry.pr, from = entry.state.as_str(), to = next.as_str(), ?event, "Queue entry moved");
            Ok(Some(updated))
        }
        Err(e) => {
            tracing::info!(entry = entry.id, error = %e, "Queue event ignored");
            Ok(None)
        }
    }
}

/// Waiting → Staging, then makes the staging commit.
async fn start(inner: &Inner, ctx: &RepoCtx<'_>, entry: &QueueEntry) -> Result<(), HandlerError> {
    let change = QueueChange {
        attempts: Some(entry.attempts.saturating_add(1)),
        clear_staging: true,
        ..Default::default()
    };
    let Some(entry) = record(inner, entry, QueueEvent::Start, change).await? else {
        return Ok(());
    };
    stage(inner, ctx, &entry).await
}

/// The merge message: what landed, from which pull request, approved by whom, by which command.
fn merge_message(ctx: &RepoCtx<'_>, entry: &QueueEntry) -> String {
    format!(
        "Merge pull request #{pr} into {target}\n\nPull-request: {repo}#{pr}\nHead: {head}\n\
         Approved-by: {approver}\nCommand: {command}\nMerged-by: greg (staging)",
        pr = entry.pr,
        target = entry.target,
        repo = ctx.repo,
        head = entry.head_sha,
        approver = entry.approver,
        command = entry.command,
    )
}

/// Staging: force the staging ref to the target tip, merge the approved head into it, then
/// build the result. Idempotent: run again after a crash, it starts from the current tip.
async fn stage(inner: &Inner, ctx: &RepoCtx<'_>, entry: &QueueEntry) -> Result<(), HandlerError> {
    let p = &ctx.provider;
    let branch = queue::staging_branch(entry);
    let Some(tip) = p
        .branch_tip(ctx.repo, &entry.target)
        .await
        .map_err(backend(p))?
    else {
        let reason = format!("target branch {} does not exist", entry.target);
        let body = texts::target_missing(&entry.head_sha, &entry.target);
        return fail(inner, ctx, entry, QueueEvent::Conflict, &reason, &body).await;
    };
    if api_merge(ctx) {
        // No staging refs (Bitbucket): the job builds the approved head merged with TARGET,
        // and greg merges the pull request through the API if the target is still `tip`.
        tracing::info!(entry = entry.id, base = %tip, "Building the head merged with the target (merge through the provider API)");
        let change = QueueChange {
            base_sha: Some(tip),
            staging_sha: Some(entry.head_sha.clone()),
            ..Default::default()
        };
        let Some(entry) = record(inner, entry, QueueEvent::Staged, change).await? else {
            return Ok(());
        };
        return ensure_build(inner, ctx, &entry, true).await;
    }
    p.set_branch(ctx.repo, &branch, &tip)
        .await
        .map_err(backend(p))?;
    let merged = p
        .merge_into_branch(
            ctx.repo,
            &branch,
            &entry.head_sha,
            &merge_message(ctx, entry),
        )
        .await
        .map_err(backend(p))?;
    match merged {
        MergeResult::Merged(staging) => {
            tracing::info!(entry = entry.id, base = %tip, staging = %staging, branch, "Staging commit made");
            let change = QueueChange {
                base_sha: Some(tip),
                staging_sha: Some(staging),
                ..Default::default()
            };
            let Some(entry) = record(inner, entry, QueueEvent::Staged, change).await? else {
                return Ok(());
            };
            ensure_build(inner, ctx, &entry, true).await
        }
        MergeResult::Conflict => {
            let body = texts::merge_conflict(&entry.head_sha, &entry.target);
            fail(
                inner,
                ctx,
                entry,
                QueueEvent::Conflict,
                "merge conflict",
                &body,
            )
            .await
        }
        MergeResult::UpToDate => {
            p.delete_branch(ctx.repo, &branch)
                .await
                .map_err(backend(p))?;
            let context = context_of(entry.kind);
            let desc = format!("already in {}", entry.target);
            let state = match entry.kind {
                QueueKind::Merge => CommitState::Success,
                QueueKind::Try | QueueKind::Test => CommitState::Error,
            };
            set_status(inner, ctx, &entry.head_sha, context, state, &desc, None).await?;
            let change = QueueChange {
                reason: Some(desc),
                ..Default::default()
            };
            record(inner, entry, QueueEvent::UpToDate, change).await?;
            kick(inner, ctx);
            if entry.kind == QueueKind::Test {
                return Ok(());
            }
            let body = texts::already_in_target(&entry.head_sha, &entry.target);
            comment(ctx, entry.pr, &body).await
        }
    }
}

/// Building: the pending status on the head, then the staging build (found by its key when it
/// exists, so a resume never starts a second one).
async fn ensure_build(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    fresh: bool,
) -> Result<(), HandlerError> {
    let Some(staging) = entry.staging_sha.clone() else {
        // Not reachable: Building is only recorded with its staging commit, and `resume_step`
        // restages a Building entry without one.
        tracing::warn!(
            entry = entry.id,
            "Building entry without a staging commit; left to the next resume"
        );
        return Ok(());
    };
    let context = context_of(entry.kind);
    let job = match entry.kind {
        QueueKind::Test => ctx.cfg.jobs.test.clone(),
        QueueKind::Merge | QueueKind::Try => ctx.cfg.jobs.merge.clone(),
    };
    let Some(job) = job else {
        let body = match entry.kind {
            QueueKind::Test => String::new(),
            _ => texts::no_merge_job(),
        };
        return fail(
            inner,
            ctx,
            entry,
            QueueEvent::BuildRed,
            "no job to run",
            &body,
        )
        .await;
    };
    if !fresh
        && let Some(done) = inner
            .store
            .latest_build(ctx.repo, &staging, context)
            .await?
        && !done.state.is_active()
    {
        // The build finished while greg was away and its result was recorded: act on it.
        let result = if done.state == BuildRunState::Success {
            StagingResult::Green
        } else {
            StagingResult::Red(done.state.as_str().to_owned())
        };
        return on_result(inner, ctx, entry, &done, result).await;
    }
    if fresh {
        let desc = format!(
            "{} into {}: building staging commit {}",
            context.as_str(),
            entry.target,
            staging.short()
        );
        set_status(
            inner,
            ctx,
            &entry.head_sha,
            context,
            CommitState::Pending,
            &desc,
            None,
        )
        .await?;
    }
    let branch = queue::staging_branch(entry);
    let req = BuildRequest {
        pr: Some(entry.pr),
        sha: &staging,
        context,
        branch: &branch,
        target: Some(&entry.target),
        job: &job,
        source_repo: ctx.repo,
        force: fresh,
    };
    let started = builds::start_build(inner, ctx, req).await?;
    if let Started::Refused(reason) = &started {
        let body = texts::build_not_started(&entry.head_sha, context.as_str(), reason);
        return fail(inner, ctx, entry, QueueEvent::BuildRed, reason, &body).await;
    }
    if let Some(b) = inner
        .store
        .latest_build(ctx.repo, &staging, context)
        .await?
    {
        let change = QueueChange {
            build_id: Some(b.id),
            ..Default::default()
        };
        inner
            .store
            .update_queue_entry(entry.id, &change, inner.now_ms())
            .await?;
    }
    if entry.kind == QueueKind::Try && fresh {
        let body = texts::try_started(&entry.head_sha, &entry.target, job.name.as_str());
        comment(ctx, entry.pr, &body).await?;
    }
    Ok(())
}

/// How a staging build ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StagingResult {
    Green,
    /// Red, aborted, or anything not green: the words for the comment ("failed", "was aborted").
    Red(String),
}

impl StagingResult {
    /// From a builder outcome.
    pub(crate) fn from_outcome(green: bool, outcome: BuildOutcome) -> Self {
        if green {
            return StagingResult::Green;
        }
        let words = match outcome {
            BuildOutcome::Failure => "failed",
            BuildOutcome::Aborted => "was aborted",
            BuildOutcome::Unstable => "was unstable",
            BuildOutcome::NotBuilt => "was not built",
            BuildOutcome::Success => "passed",
        };
        StagingResult::Red(format!("build {words}"))
    }
}

/// The active queue entry a staging build belongs to, if any (by pull request, kind and
/// staging commit).
pub(crate) async fn entry_of_build(
    inner: &Inner,
    rec: &BuildRecord,
) -> Result<Option<QueueEntry>, HandlerError> {
    let kind = match rec.context {
        BuildContext::Merge => QueueKind::Merge,
        BuildContext::Try => QueueKind::Try,
        BuildContext::Test => QueueKind::Test,
    };
    let Some(pr) = rec.pr else { return Ok(None) };
    let entry = inner.store.active_queue_entry(&rec.repo, pr, kind).await?;
    Ok(entry.filter(|e| e.staging_sha.as_ref() == Some(&rec.sha)))
}

/// A staging build finished (callback, poll or timeout): land it, or fail the entry. Runs
/// before the build is recorded finished, so a crash here repeats it (every step re-checks).
pub(crate) async fn on_result(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    rec: &BuildRecord,
    result: StagingResult,
) -> Result<(), HandlerError> {
    let url = rec.url.as_deref();
    match result {
        // A replayed callback after a crash in the middle of landing: finish the landing.
        StagingResult::Green if entry.state == QueueState::Landing => {
            land(inner, ctx, entry, url, true).await
        }
        StagingResult::Green => {
            let change = QueueChange {
                build_id: Some(rec.id),
                ..Default::default()
            };
            let Some(entry) = record(inner, entry, QueueEvent::BuildGreen, change).await? else {
                return Ok(());
            };
            match entry.kind {
                QueueKind::Merge => land(inner, ctx, &entry, url, false).await,
                QueueKind::Try | QueueKind::Test => {
                    finish_check(inner, ctx, &entry, BuildOutcome::Success, url).await
                }
            }
        }
        StagingResult::Red(words) => {
            let staging = entry.staging_sha.clone().unwrap_or_else(|| rec.sha.clone());
            if entry.kind != QueueKind::Merge {
                let outcome = if words.contains("aborted") {
                    BuildOutcome::Aborted
                } else {
                    BuildOutcome::Failure
                };
                let change = QueueChange {
                    reason: Some(words.clone()),
                    ..Default::default()
                };
                let Some(entry) = record(inner, entry, QueueEvent::BuildRed, change).await? else {
                    return Ok(());
                };
                return finish_check(inner, ctx, &entry, outcome, url).await;
            }
            let body = texts::staging_failed(&entry.head_sha, &staging, &words, url);
            fail(inner, ctx, entry, QueueEvent::BuildRed, &words, &body).await
        }
    }
}

/// A try or test_merged build ended: status (and for try a comment) on the head, staging ref
/// removed, nothing lands.
async fn finish_check(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    outcome: BuildOutcome,
    url: Option<&str>,
) -> Result<(), HandlerError> {
    let state = if outcome == BuildOutcome::Success {
        CommitState::Success
    } else {
        CommitState::Failure
    };
    let desc = match entry.kind {
        QueueKind::Test => format!(
            "{}, merged into {}",
            texts::status_description("test", outcome, None),
            entry.target
        ),
        _ => texts::status_description("try", outcome, None),
    };
    let context = context_of(entry.kind);
    set_status(inner, ctx, &entry.head_sha, context, state, &desc, url).await?;
    if entry.kind == QueueKind::Try {
        let body = texts::try_finished(&entry.head_sha, outcome, url);
        comment(ctx, entry.pr, &body).await?;
    }
    delete_staging_ref(ctx, entry).await?;
    // A green entry is already Landed; a red one was recorded Failed by the caller. Its slot is
    // free for the next test build.
    kick(inner, ctx);
    Ok(())
}

/// Landing: the staging commit's status, then the compare-and-swap fast-forward of the target.
///
/// `resumed`: greg may have fast-forwarded before a crash, so the target is read first (on the
/// normal path that read is saved: a repeated fast-forward to the same commit is a no-op).
async fn land(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    url: Option<&str>,
    resumed: bool,
) -> Result<(), HandlerError> {
    let p = &ctx.provider;
    let Some(staging) = entry.staging_sha.clone() else {
        return Ok(());
    };
    if api_merge(ctx) {
        return land_through_api(inner, ctx, entry, url).await;
    }
    let tip = if resumed {
        p.branch_tip(ctx.repo, &entry.target)
            .await
            .map_err(backend(p))?
    } else {
        None
    };
    if tip.as_ref() != Some(&staging) {
        set_status(
            inner,
            ctx,
            &staging,
            BuildContext::Merge,
            CommitState::Success,
            "staging build passed",
            url,
        )
        .await?;
        match p
            .fast_forward(ctx.repo, &entry.target, &staging)
            .await
            .map_err(backend(p))?
        {
            FastForward::Done => {}
            FastForward::Moved => return target_moved(inner, ctx, entry).await,
        }
    }
    tracing::info!(entry = entry.id, pr = %entry.pr, target = %entry.target, staging = %staging, "Target fast-forwarded to the green staging commit");
    finish_landed(inner, ctx, entry, &staging, url).await
}

/// Landing where the provider cannot fast-forward (Bitbucket): the target must still be the
/// tip the build merged with, then the pull request is merged through the API with its head
/// as precondition. Accepted race (no compare-and-swap on the target in Bitbucket's API): a
/// push to the target between the check and the merge lands a merge that was not built.
async fn land_through_api(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    url: Option<&str>,
) -> Result<(), HandlerError> {
    let p = &ctx.provider;
    // Resume after a crash: the merge may already have happened.
    let pr = p
        .pull_request(ctx.repo, entry.pr)
        .await
        .map_err(backend(p))?;
    if pr.state == greg_core::PullRequestState::Merged {
        return finish_landed(inner, ctx, entry, &entry.head_sha, url).await;
    }
    let tip = p
        .branch_tip(ctx.repo, &entry.target)
        .await
        .map_err(backend(p))?;
    if tip.is_none() || tip != entry.base_sha {
        return target_moved(inner, ctx, entry).await;
    }
    match p
        .merge_pull_request(
            ctx.repo,
            entry.pr,
            &entry.head_sha,
            &merge_message(ctx, entry),
        )
        .await
    {
        Ok(()) => {
            tracing::info!(entry = entry.id, pr = %entry.pr, target = %entry.target, "Pull request merged through the provider API after a green build of its merge");
            finish_landed(inner, ctx, entry, &entry.head_sha, url).await
        }
        Err(greg_core::Error::PreconditionFailed { message }) => {
            tracing::info!(entry = entry.id, %message, "The head moved before the merge");
            withdraw(inner, ctx, entry, "new commits were pushed").await
        }
        Err(greg_core::Error::Conflict { message }) => {
            let body = texts::merge_conflict(&entry.head_sha, &entry.target);
            fail(inner, ctx, entry, QueueEvent::Conflict, &message, &body).await
        }
        Err(e) => Err(backend(p)(e)),
    }
}

/// After the fast-forward: head status, comment, staging ref deleted, entry Landed, next one.
async fn finish_landed(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    staging: &Sha,
    url: Option<&str>,
) -> Result<(), HandlerError> {
    let desc = format!("merged into {} as {}", entry.target, staging.short());
    set_status(
        inner,
        ctx,
        &entry.head_sha,
        BuildContext::Merge,
        CommitState::Success,
        &desc,
        url,
    )
    .await?;
    let body = texts::landed(&entry.head_sha, &entry.target, staging, url);
    comment(ctx, entry.pr, &body).await?;
    delete_staging_ref(ctx, entry).await?;
    let change = QueueChange {
        reason: Some(format!("landed as {staging}")),
        ..Default::default()
    };
    record(inner, entry, QueueEvent::FastForwarded, change).await?;
    kick(inner, ctx);
    Ok(())
}

/// The target moved away from the staging base: back to Waiting at the same place, restaged
/// by the next [`advance`] from the new tip.
async fn target_moved(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
) -> Result<(), HandlerError> {
    tracing::info!(entry = entry.id, pr = %entry.pr, target = %entry.target, "Target moved under the staging commit; merging again from the new tip");
    if let Some(staging) = &entry.staging_sha {
        stop_staging_build(inner, ctx, entry, staging, BuildRunState::Superseded).await?;
    }
    let change = QueueChange {
        clear_staging: true,
        reason: Some("target moved; merging again".to_owned()),
        ..Default::default()
    };
    record(inner, entry, QueueEvent::TargetMoved, change).await?;
    kick(inner, ctx);
    Ok(())
}

/// Stops the active staging build of `staging`, if any, and marks it `state`.
async fn stop_staging_build(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    staging: &Sha,
    state: BuildRunState,
) -> Result<(), HandlerError> {
    let context = context_of(entry.kind);
    if let Some(b) = inner.store.latest_build(ctx.repo, staging, context).await?
        && b.state.is_active()
    {
        builds::stop(inner, &b).await;
        let change = BuildChange {
            state: Some(state),
            ..Default::default()
        };
        inner
            .store
            .update_build(b.id, &change, inner.now_ms())
            .await?;
    }
    Ok(())
}

/// The entry failed (conflict, red build, no target): head status, comment, staging ref
/// deleted, entry Failed, next one.
async fn fail(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    event: QueueEvent,
    reason: &str,
    body: &str,
) -> Result<(), HandlerError> {
    let context = context_of(entry.kind);
    set_status(
        inner,
        ctx,
        &entry.head_sha,
        context,
        CommitState::Failure,
        reason,
        None,
    )
    .await?;
    if !body.is_empty() {
        comment(ctx, entry.pr, body).await?;
    }
    delete_staging_ref(ctx, entry).await?;
    let change = QueueChange {
        reason: Some(reason.to_owned()),
        ..Default::default()
    };
    record(inner, entry, event, change).await?;
    kick(inner, ctx);
    Ok(())
}

/// Takes an entry out of its queue (push, close, cancel, replacement): stops its build,
/// deletes its staging ref, marks it Cancelled, and lets the next one start. Statuses and
/// comments are the caller's.
pub(crate) async fn withdraw(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    reason: &str,
) -> Result<(), HandlerError> {
    if let Some(staging) = &entry.staging_sha {
        stop_staging_build(inner, ctx, entry, staging, BuildRunState::Aborted).await?;
    }
    if queue::in_flight(entry.state) || entry.kind != QueueKind::Merge {
        delete_staging_ref(ctx, entry).await?;
    }
    let change = QueueChange {
        reason: Some(reason.to_owned()),
        ..Default::default()
    };
    record(inner, entry, QueueEvent::Withdrawn, change).await?;
    tracing::info!(entry = entry.id, pr = %entry.pr, reason, "Left the queue");
    kick(inner, ctx);
    Ok(())
}

/// A new head on the pull request: every entry approved for another head leaves its queue.
pub(crate) async fn on_new_head(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    pr: &PullRequest,
) -> Result<(), HandlerError> {
    for entry in inner
        .store
        .active_queue_entries_for_pr(ctx.repo, pr.number)
        .await?
    {
        if entry.head_sha == pr.head_sha {
            continue;
        }
        withdraw(inner, ctx, &entry, "new commits were pushed").await?;
        let desc = format!("dropped: new head {}", pr.head_sha.short());
        set_status(
            inner,
            ctx,
            &entry.head_sha,
            context_of(entry.kind),
            CommitState::Error,
            &desc,
            None,
        )
        .await?;
        let body = texts::dropped_new_head(&entry.head_sha, &pr.head_sha);
        comment(ctx, pr.number, &body).await?;
    }
    Ok(())
}

/// The pull request was closed (not by greg's landing): its entries leave their queues.
pub(crate) async fn on_closed(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    pr: PrNumber,
) -> Result<(), HandlerError> {
    for entry in inner
        .store
        .active_queue_entries_for_pr(ctx.repo, pr)
        .await?
    {
        // A landing entry is finished by its own step (GitHub closes the pull request as
        // merged when the target reaches its head).
        if entry.state == QueueState::Landing {
            continue;
        }
        withdraw(inner, ctx, &entry, "the pull request was closed").await?;
    }
    Ok(())
}

/// "@greg cancel": the pull request's entries leave their queues, with a failure status.
/// Returns how many entries were withdrawn.
pub(crate) async fn cancel(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    pr: PrNumber,
    by: &Login,
) -> Result<usize, HandlerError> {
    let entries = inner
        .store
        .active_queue_entries_for_pr(ctx.repo, pr)
        .await?;
    for entry in &entries {
        withdraw(inner, ctx, entry, &format!("cancelled by @{by}")).await?;
        let desc = format!("cancelled by @{by}");
        set_status(
            inner,
            ctx,
            &entry.head_sha,
            context_of(entry.kind),
            CommitState::Failure,
            &desc,
            None,
        )
        .await?;
    }
    Ok(entries.len())
}

/// A push to a branch. greg's own staging refs are ignored; a push to a target whose in-flight
/// merge was staged on another tip sends that entry back to be merged again.
pub(crate) async fn on_target_push(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    branch: &str,
    head: &Sha,
) -> Result<(), HandlerError> {
    let entries = inner.store.queue(ctx.repo, branch).await?;
    for entry in entries
        .iter()
        .filter(|e| e.kind == QueueKind::Merge && queue::in_flight(e.state))
    {
        let ours =
            entry.staging_sha.as_ref() == Some(head) || entry.base_sha.as_ref() == Some(head);
        // Landing re-checks the tip itself; Staging is being made right now by this lane.
        if ours || entry.state != QueueState::Building {
            continue;
        }
        target_moved(inner, ctx, entry).await?;
    }
    Ok(())
}

/// "@greg p=N": re-orders a waiting entry. Returns the entry's new position, `None` when the
/// pull request is not queued.
pub(crate) async fn set_priority(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    pr: PrNumber,
    priority: i32,
) -> Result<Option<(Sha, Option<usize>)>, HandlerError> {
    let Some(entry) = inner
        .store
        .active_queue_entry(ctx.repo, pr, QueueKind::Merge)
        .await?
    else {
        return Ok(None);
    };
    let change = QueueChange {
        priority: Some(priority),
        ..Default::default()
    };
    inner
        .store
        .update_queue_entry(entry.id, &change, inner.now_ms())
        .await?;
    kick(inner, ctx);
    let queue = inner.store.queue(ctx.repo, &entry.target).await?;
    let position = queue::position_of(&queue, entry.id);
    Ok(Some((entry.head_sha, position)))
}

/// `test_merged`: queues the test build of `pr`'s head merged with its target (started within
/// `max_test_builds`; the `greg/test` status on the head says pending once it runs).
pub(crate) async fn test_merged(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    pr: &PullRequest,
) -> Result<(), HandlerError> {
    let new = NewQueueEntry {
        repo: ctx.repo.clone(),
        pr: pr.number,
        kind: QueueKind::Test,
        target: pr.base_ref.clone(),
        head_sha: pr.head_sha.clone(),
        approver: pr.author.clone(),
        command: "test_merged".to_owned(),
        priority: 0,
        now_ms: inner.now_ms(),
    };
    match inner.store.enqueue(&new).await? {
        QueueInsert::Created(e) => {
            tracing::info!(pr = %pr.number, entry = e.id, target = %e.target, "Test of the merge with the target queued");
        }
        QueueInsert::Exists(e) => {
            tracing::info!(pr = %pr.number, entry = e.id, "Test of this head is already queued");
        }
    }
    kick(inner, ctx);
    Ok(())
}

/// `test_merged`: `branch` moved. Every open pull request into it is tested again against the
/// new tip: its running test is stopped, its `greg/test` status goes back to pending, and it is
/// queued again (approved ones first, see `queue::to_start`). One list call to the provider,
/// made only for branches that were the target of a test_merged build.
pub(crate) async fn retest_merged(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    branch: &str,
) -> Result<(), HandlerError> {
    if !inner
        .store
        .has_queue_entries_for_target(ctx.repo, branch, QueueKind::Test)
        .await?
    {
        return Ok(());
    }
    let p = &ctx.provider;
    let open = p.open_pull_requests(ctx.repo).await.map_err(backend(p))?;
    for pr in open.iter().filter(|pr| pr.base_ref == branch) {
        let fork = pr.head_repo.as_ref() != Some(ctx.repo);
        if fork && !ctx.cfg.allow_forks {
            continue;
        }
        if let Some(old) = inner
            .store
            .active_queue_entry(ctx.repo, pr.number, QueueKind::Test)
            .await?
        {
            withdraw(inner, ctx, &old, "the target moved").await?;
        }
        let desc = format!("{branch} moved; testing the merge again");
        set_status(
            inner,
            ctx,
            &pr.head_sha,
            BuildContext::Test,
            CommitState::Pending,
            &desc,
            None,
        )
        .await?;
        test_merged(inner, ctx, pr).await?;
    }
    Ok(())
}

/// Repairs every active entry of the repository after a restart or on reconciliation: each
/// in-flight entry redoes its step, then every queue starts what it can.
pub(crate) async fn resume(inner: &Inner, ctx: &RepoCtx<'_>) -> Result<(), HandlerError> {
    let entries: Vec<QueueEntry> = inner
        .store
        .active_queue_entries()
        .await?
        .into_iter()
        .filter(|e| &e.repo == ctx.repo)
        .collect();
    let mut targets: Vec<String> = Vec::new();
    for entry in &entries {
        if !targets.contains(&entry.target) {
            targets.push(entry.target.clone());
        }
        match queue::resume_step(entry) {
            ResumeStep::Wait => {}
            ResumeStep::Restage => {
                tracing::info!(entry = entry.id, pr = %entry.pr, "Resuming: making the staging commit again");
                stage(inner, ctx, entry).await?;
            }
            ResumeStep::EnsureBuild => ensure_build(inner, ctx, entry, false).await?,
            ResumeStep::Land => {
                tracing::info!(entry = entry.id, pr = %entry.pr, "Resuming a landing");
                land(inner, ctx, entry, None, true).await?;
            }
        }
    }
    for target in targets {
        advance(inner, ctx, &target).await?;
    }
    Ok(())
}
