//! merge_mode staging (SPEC §6, the Patronus and bors way): the steps of the merge queue.
//! The pure decisions live in [`crate::queue`]; every change of an entry's state, with the
//! statuses and comments it calls for, is written by `exits::record` in one transaction
//! before anything acts on it (see the design notes of `crate::queue` and `crate::outbox`).
//!
//! The queue is level-triggered: [`resume`] (the `Work::Queue` item, run after every change,
//! at start and on reconciliation) redoes the step of each in-flight entry from its stored
//! state and starts what may start. Every step ends (SPEC §6): a provider refusal that cannot
//! change by retrying fails the entry with the provider's reason; a retryable failure is
//! retried, and past `server.retry_window_secs` in the same state the entry fails too. The
//! rules of SPEC §5 are checked again before an entry is staged and before it lands, and the
//! staging build's result is read from the builder itself before the entry may land.
//!
//! Provider calls per pull request landed, when nothing goes wrong: the rules before staging
//! (pull request, reviews, permission: 3), tip of the target (1), staging ref (1), merge into
//! it (1), `greg/merge` pending on the head (1); after the green build (read back from
//! Jenkins): the rules again (3), tip of the target (1), `greg/merge` success on the staging
//! commit (1, so a protected target accepts it), the fast-forward (1), `greg/merge` success on
//! the head (1), the "merged" comment (1), deleting the staging ref (1).

use super::builds::{self, BuildRequest, Started, set_status};
use super::exits::{self, context_of, key};
use super::{HandlerError, RepoCtx, backend, comment};
use crate::Inner;
use crate::outbox::Plan;
use crate::queue::{self, QueueEvent, ResumeStep};
use crate::texts;
use greg_core::{
    BuildContext, BuildOutcome, CommitState, Login, MergeResult, PrNumber, PullRequest, Sha,
};
use greg_store::{
    BuildRecord, BuildRunState, NewQueueEntry, QueueChange, QueueEntry, QueueInsert, QueueKind,
    QueueState,
};
use std::collections::HashMap;
use std::time::Duration;

/// Most entries one call of [`advance`] starts (each conflicting or already-merged entry lets
/// the next one start at once); the rest start on the next event.
const MAX_STARTS_PER_ADVANCE: usize = 16;

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
        exits::withdraw(
            inner,
            ctx,
            &old,
            "replaced by a newer request",
            Plan::default(),
        )
        .await?;
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
    let position = queue::position_of(&queue, entry.id).unwrap_or(1);
    // It starts now when it fits in the window's candidates and the tree is open to it.
    let slots = super::candidates::window(inner, ctx, &entry.target)
        .saturating_mul(super::candidates::strategy(ctx).batch_size);
    let starts_now = position <= slots && closure.is_none_or(|c| entry.priority >= c.priority);
    if !starts_now && entry.kind == QueueKind::Merge {
        let eta = crate::api::waiting_eta(inner, ctx.repo, &queue, &entry).await?;
        let body = texts::queued(&entry.head_sha, &entry.target, position, eta.as_ref());
        let mut plan = Plan::default();
        plan.comment(ctx.repo, key(&entry, "queued", "comment"), entry.pr, body);
        plan.record(inner).await?;
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

/// `max_test_builds` of the repository.
fn test_cap(ctx: &RepoCtx<'_>) -> usize {
    usize::try_from(ctx.cfg.max_test_builds).unwrap_or(usize::MAX)
}

/// Asks the repository's lane to drive its queues (run due effects, resume in-flight entries,
/// start what can start) as a work item of its own, after the current one.
pub(crate) fn kick(inner: &Inner, ctx: &RepoCtx<'_>) {
    inner.submit(crate::dispatch::Work::Queue {
        repo: ctx.repo.clone(),
    });
}

/// Asks for [`kick`] again after `delay` (a step failed for a retryable reason). In memory
/// only: after a restart, the start-up resume redoes every in-flight step anyway.
fn kick_later(inner: &Inner, ctx: &RepoCtx<'_>, delay: Duration) {
    let Some(me) = inner.me.upgrade() else { return };
    let repo = ctx.repo.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        me.submit(crate::dispatch::Work::Queue { repo });
    });
}

/// Starts every entry of the (repository, target) queue the queue allows to start.
async fn advance(inner: &Inner, ctx: &RepoCtx<'_>, target: &str) -> Result<(), HandlerError> {
    for _ in 0..MAX_STARTS_PER_ADVANCE {
        let entries = inner.store.queue(ctx.repo, target).await?;
        let ids = queue::to_start(&entries, test_cap(ctx));
        if ids.is_empty() {
            return Ok(());
        }
        let mut started = false;
        for id in ids {
            if let Some(entry) = entries.iter().find(|e| e.id == id) {
                started |= step(inner, ctx, entry, start(inner, ctx, entry)).await?;
            }
        }
        if !started {
            return Ok(());
        }
    }
    Ok(())
}

/// Checks SPEC §5's rules for a queued merge again. `true` when they hold; otherwise the entry
/// left its queue with a comment saying why. Try and test entries are not checked (they land
/// nothing).
pub(crate) async fn rules_hold(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
) -> Result<bool, HandlerError> {
    if entry.kind != QueueKind::Merge {
        return Ok(true);
    }
    let p = &ctx.provider;
    let pr = p
        .pull_request(ctx.repo, entry.pr)
        .await
        .map_err(backend(p))?;
    if pr.head_sha != entry.head_sha {
        exits::on_new_head(inner, ctx, &pr).await?;
        return Ok(false);
    }
    if pr.base_ref != entry.target && !entry.command.contains("branch=") {
        // Retargeted while queued (the webhook was missed or is still coming).
        retargeted(inner, ctx, &pr).await?;
        return Ok(false);
    }
    let mut permissions = HashMap::new();
    let blockers: Vec<_> =
        super::mergeable::blockers(inner, ctx, &pr, Some(&entry.target), &mut permissions)
            .await?
            .into_iter()
            .filter(greg_core::Blocker::drops_queued)
            .collect();
    if blockers.is_empty() {
        return Ok(true);
    }
    tracing::info!(entry = entry.id, pr = %entry.pr, blockers = blockers.len(), "The rules no longer hold; the entry leaves the queue");
    exits::rules_broken(inner, ctx, entry, &blockers).await?;
    Ok(false)
}

/// Waiting → Staging after the rules are checked again, then makes the staging commit.
async fn start(inner: &Inner, ctx: &RepoCtx<'_>, entry: &QueueEntry) -> Result<(), HandlerError> {
    if !rules_hold(inner, ctx, entry).await? {
        return Ok(());
    }
    let change = QueueChange {
        attempts: Some(entry.attempts.saturating_add(1)),
        clear_staging: true,
        ..Default::default()
    };
    let Some(entry) = exits::record(
        inner,
        ctx,
        entry,
        QueueEvent::Start,
        change,
        Plan::default(),
    )
    .await?
    else {
        return Ok(());
    };
    stage(inner, ctx, &entry).await
}

/// The merge message: what landed, from which pull request, approved by whom, by which command.
pub(crate) fn merge_message(ctx: &RepoCtx<'_>, entry: &QueueEntry) -> String {
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
        return exits::fail(inner, ctx, entry, QueueEvent::Conflict, &reason, &body).await;
    };
    let staged = if api_merge(ctx) {
        // No staging refs (Bitbucket): the job builds the approved head merged with TARGET,
        // and greg merges the pull request through the API if the target is still `tip`.
        tracing::info!(entry = entry.id, base = %tip, "Building the head merged with the target (merge through the provider API)");
        entry.head_sha.clone()
    } else {
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
        // Without a staging commit, the ref made at the tip is this entry's to delete.
        let at_tip = QueueEntry {
            staging_sha: Some(tip.clone()),
            ..entry.clone()
        };
        match merged {
            MergeResult::Merged(staging) => {
                tracing::info!(entry = entry.id, base = %tip, staging = %staging, branch, "Staging commit made");
                staging
            }
            MergeResult::Conflict => {
                let body = texts::merge_conflict(&entry.head_sha, &entry.target);
                return exits::fail(
                    inner,
                    ctx,
                    &at_tip,
                    QueueEvent::Conflict,
                    "merge conflict",
                    &body,
                )
                .await;
            }
            MergeResult::UpToDate => return exits::up_to_date(inner, ctx, &at_tip).await,
        }
    };
    let context = context_of(entry.kind);
    let mut plan = Plan::default();
    let desc = format!(
        "{} into {}: building staging commit {}",
        context.as_str(),
        entry.target,
        staged.short()
    );
    let attempt = format!("staged{}", entry.attempts);
    plan.status(
        ctx.repo,
        key(entry, &attempt, "status"),
        &entry.head_sha,
        context,
        CommitState::Pending,
        &desc,
        None,
    );
    let change = QueueChange {
        base_sha: Some(tip),
        staging_sha: Some(staged),
        ..Default::default()
    };
    let Some(entry) = exits::record(inner, ctx, entry, QueueEvent::Staged, change, plan).await?
    else {
        return Ok(());
    };
    ensure_build(inner, ctx, &entry, true).await
}

/// Building: the staging build (found by its key when it exists, so a resume never starts a
/// second one).
pub(crate) async fn ensure_build(
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
        return exits::fail(
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
        && (entry.kind != QueueKind::Merge || entry.build_id == Some(done.id))
    {
        // The build finished while greg was away and its (verified) result was recorded.
        let result = if done.state == BuildRunState::Success {
            StagingResult::Green
        } else {
            StagingResult::Red(done.state.as_str().to_owned())
        };
        return on_result(inner, ctx, entry, &done, result).await;
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
        return exits::fail(inner, ctx, entry, QueueEvent::BuildRed, reason, &body).await;
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
        let mut plan = Plan::default();
        let attempt = format!("staged{}", entry.attempts);
        plan.comment(ctx.repo, key(entry, &attempt, "comment"), entry.pr, body);
        plan.record(inner).await?;
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

/// A staging build finished with a result read from the builder itself (callback verified,
/// poll or timeout): record it; a green merge moves to Landing and the next [`resume`] lands
/// it.
pub(crate) async fn on_result(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    rec: &BuildRecord,
    result: StagingResult,
) -> Result<(), HandlerError> {
    let url = rec.url.as_deref();
    if entry.kind == QueueKind::Merge {
        // The merge pipeline decides what a candidate's result means (SPEC §10).
        return super::candidates::on_result(inner, ctx, entry, rec.id, &result).await;
    }
    match result {
        StagingResult::Green => {
            exits::checked(inner, ctx, entry, BuildOutcome::Success, "passed", url).await
        }
        StagingResult::Red(words) => {
            let outcome = if words.contains("aborted") {
                BuildOutcome::Aborted
            } else {
                BuildOutcome::Failure
            };
            exits::checked(inner, ctx, entry, outcome, &words, url).await
        }
    }
}

/// Landing where the provider cannot fast-forward (Bitbucket): the target must still be the
/// tip the build merged with, then the pull request is merged through the API with its head
/// as precondition. Accepted race (no compare-and-swap on the target in Bitbucket's API): a
/// push to the target between the check and the merge lands a merge that was not built.
pub(crate) async fn land_through_api(
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
        return exits::landed(inner, ctx, entry, &entry.head_sha, url).await;
    }
    let tip = p
        .branch_tip(ctx.repo, &entry.target)
        .await
        .map_err(backend(p))?;
    if tip.is_none() || tip != entry.base_sha {
        return exits::target_moved(inner, ctx, entry).await;
    }
    if !rules_hold(inner, ctx, entry).await? {
        return Ok(());
    }
    crate::leases::ensure_held(inner)?;
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
            exits::landed(inner, ctx, entry, &entry.head_sha, url).await
        }
        Err(greg_core::Error::PreconditionFailed { message }) => {
            tracing::info!(entry = entry.id, %message, "The head moved before the merge");
            let fresh = p
                .pull_request(ctx.repo, entry.pr)
                .await
                .map_err(backend(p))?;
            exits::on_new_head(inner, ctx, &fresh).await
        }
        Err(greg_core::Error::Conflict { message }) => {
            let body = texts::merge_conflict(&entry.head_sha, &entry.target);
            exits::fail(inner, ctx, entry, QueueEvent::Conflict, &message, &body).await
        }
        Err(greg_core::Error::Refused { message }) => {
            tracing::warn!(entry = entry.id, pr = %entry.pr, %message, "The provider refused the merge");
            let body = texts::merge_vetoed(&entry.head_sha, &entry.target, &message);
            let reason = format!("{} refused the merge: {message}", ctx.provider);
            exits::fail(inner, ctx, entry, QueueEvent::Refused, &reason, &body).await
        }
        Err(e) => Err(backend(p)(e)),
    }
}

/// A push to a branch: for a merge queue's target, see
/// [`candidates::on_target_push`](super::candidates::on_target_push).
pub(crate) async fn on_target_push(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    branch: &str,
    head: &Sha,
) -> Result<(), HandlerError> {
    super::candidates::on_target_push(inner, ctx, branch, head).await
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
            exits::withdraw(inner, ctx, &old, "the target moved", Plan::default()).await?;
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

/// The pull request now targets another branch (`pull_request.edited` with `changes.base`, or
/// found so before staging or landing): its merge entry leaves the old queue and, when it may
/// merge into the new base, joins that queue with the same approver and priority; otherwise
/// it stays out, with a comment either way.
pub(crate) async fn retargeted(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    pr: &PullRequest,
) -> Result<(), HandlerError> {
    for entry in inner
        .store
        .active_queue_entries_for_pr(ctx.repo, pr.number)
        .await?
    {
        if entry.target == pr.base_ref || entry.command.contains("branch=") {
            continue;
        }
        let mut permissions = HashMap::new();
        let blockers = if entry.kind == QueueKind::Merge {
            super::mergeable::blockers(inner, ctx, pr, None, &mut permissions).await?
        } else {
            Vec::new()
        };
        let mut plan = Plan::default();
        let body = texts::retargeted(&entry.head_sha, &entry.target, &pr.base_ref, &blockers);
        plan.comment(ctx.repo, key(&entry, "finish", "comment"), pr.number, body);
        let reason = format!("retargeted to {}", pr.base_ref);
        exits::withdraw(inner, ctx, &entry, &reason, plan).await?;
        if blockers.is_empty() && entry.head_sha == pr.head_sha {
            let req = Request {
                pr,
                kind: entry.kind,
                target: &pr.base_ref,
                approver: &entry.approver,
                command: entry.command.clone(),
                priority: entry.priority,
            };
            request(inner, ctx, req).await?;
        }
    }
    Ok(())
}

/// Something that may break SPEC §5's rules happened to pull request `pr` (a review dismissed
/// or changing things, "@greg not lgtm", a conversion to draft): each queued merge of it is
/// checked now and leaves the queue when the rules no longer hold. In-flight entries are
/// checked too; the staging or landing step then stops.
pub(crate) async fn recheck(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    pr: PrNumber,
) -> Result<(), HandlerError> {
    for entry in inner
        .store
        .active_queue_entries_for_pr(ctx.repo, pr)
        .await?
    {
        // A landing entry is past the point of no return on the provider's side only once the
        // target moved; until then the rules still hold it back.
        rules_hold(inner, ctx, &entry).await?;
    }
    Ok(())
}

/// What [`step`] did with a step's result.
pub(crate) async fn step<F>(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    work: F,
) -> Result<bool, HandlerError>
where
    F: std::future::Future<Output = Result<(), HandlerError>>,
{
    let err = match work.await {
        Ok(()) => return Ok(true),
        Err(e) => e,
    };
    // Read the entry again: the step may have moved it before it failed.
    let Some(now_entry) = inner.store.queue_entry(entry.id).await? else {
        return Ok(false);
    };
    if !now_entry.state.is_active() {
        return Ok(false);
    }
    let waited = inner.now_ms().saturating_sub(now_entry.updated_ms);
    let window = i64::try_from(inner.config.server.retry_window.as_millis()).unwrap_or(i64::MAX);
    // A waiting entry's age says nothing about how long its first step has been failing:
    // it retries for as long as the failure is retryable.
    let within = waited < window || now_entry.state == QueueState::Waiting;
    if err.is_retryable() && within {
        // The lane retries the work item at once (backoff, Retry-After); should that give up
        // too, this later kick comes back to it until the retry window is over.
        let delay = Duration::from_millis(u64::try_from(waited / 2).unwrap_or(0))
            .clamp(Duration::from_secs(5), Duration::from_secs(60));
        tracing::warn!(entry = entry.id, pr = %entry.pr, state = now_entry.state.as_str(), error = %err, "Queue step failed; retrying");
        kick_later(inner, ctx, delay);
        return Err(err);
    }
    let what = match now_entry.state {
        QueueState::Waiting | QueueState::Staging => "staging the merge",
        QueueState::Building => "starting the merge build",
        _ => "landing",
    };
    let minutes = waited / 60_000;
    tracing::error!(entry = entry.id, pr = %entry.pr, state = now_entry.state.as_str(), error = %err, retryable = err.is_retryable(), "Queue step failed for good; the entry leaves the queue");
    let body = texts::step_failed(
        &now_entry.head_sha,
        &now_entry.target,
        what,
        &err.to_string(),
        err.is_retryable().then_some(minutes),
    );
    let reason = format!("{what} failed: {err}");
    let event = match now_entry.state {
        QueueState::Waiting => QueueEvent::Withdrawn,
        _ => QueueEvent::Refused,
    };
    exits::fail(inner, ctx, &now_entry, event, &reason, &body).await?;
    Ok(false)
}

/// Drives the repository's queues: the merge pipeline of each target
/// ([`candidates::drive`](super::candidates::drive)), and for try and test entries, redoes
/// the step of each in-flight one from its stored state, then starts what may start. Each
/// step ends: see [`step`].
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
        if entry.kind == QueueKind::Merge {
            continue;
        }
        match queue::resume_step(entry) {
            ResumeStep::Wait | ResumeStep::Land => {}
            ResumeStep::Restage => {
                tracing::info!(entry = entry.id, pr = %entry.pr, "Resuming: making the staging commit again");
                step(inner, ctx, entry, stage(inner, ctx, entry)).await?;
            }
            ResumeStep::EnsureBuild => {
                step(inner, ctx, entry, ensure_build(inner, ctx, entry, false)).await?;
            }
        }
    }
    for target in targets {
        super::candidates::drive(inner, ctx, &target).await?;
        advance(inner, ctx, &target).await?;
    }
    Ok(())
}
