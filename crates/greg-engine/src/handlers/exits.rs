//! How a queue entry moves, and how it leaves its queue: every change of queue state goes
//! through [`record`], which asks the pure state machine (`crate::queue::transition`) and then
//! writes the new state and the effects it calls for (statuses, comments, the staging ref's
//! deletion, stopping the staging build) in one store transaction, a compare-and-swap on the
//! entry's state. The effects are performed afterwards by the outbox runner
//! (`crate::outbox`), once per outcome key. So an exit is persisted before anyone is told,
//! a repeated step never repeats a comment, and two racing steps cannot both move an entry.
//!
//! Every change to a finished state also stores why, structured ([`QueueExit`], shown by the
//! pull-request page): the exits that know more (who cancelled, the new head, the blockers)
//! say so; any other finishing change gets the exit its event implies ([`implied_exit`]).

use super::{HandlerError, RepoCtx};
use crate::Inner;
use crate::outbox::{Effect, Plan};
use crate::queue::{self, QueueEvent};
use crate::texts;
use greg_core::{BuildContext, CommitState, Login, PrNumber, PullRequest, Sha};
use greg_store::{
    BuildRunState, QueueChange, QueueEntry, QueueExit, QueueKind, QueueMove, QueueState,
};
use std::sync::atomic::Ordering;

/// The build context of an entry's staging build.
pub(crate) fn context_of(kind: QueueKind) -> BuildContext {
    match kind {
        QueueKind::Merge => BuildContext::Merge,
        QueueKind::Try => BuildContext::Try,
        QueueKind::Test => BuildContext::Test,
    }
}

/// The outcome key of an effect of entry `e`: `queue:<id>:<outcome>:<what>`.
pub(crate) fn key(e: &QueueEntry, outcome: &str, what: &str) -> String {
    format!("queue:{}:{outcome}:{what}", e.id)
}

/// Records `event` on `entry` with `change` and the effects of `plan`, as one transaction;
/// returns the entry as stored afterwards. `None` when the event does not apply in the
/// entry's state (logged at error and counted: a decision was made on a state that does not
/// allow it) or when another step moved the entry first (the compare-and-swap lost; nothing
/// was written). Wakes the lane so that the effects go out and the queue moves on.
///
/// An entry that leaves a merge-pipeline candidate of several entries (a conflict, a
/// cancellation, a push, the rules) takes the candidate with it: its other entries go back to
/// waiting in the same transaction, because the candidate's staging commit contains the
/// leaving pull request and must never land.
pub(crate) async fn record(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    event: QueueEvent,
    change: QueueChange,
    plan: Plan,
) -> Result<Option<QueueEntry>, HandlerError> {
    let mut moves = vec![(entry.clone(), event, change)];
    let leaves = entry.kind == QueueKind::Merge
        && queue::in_flight(entry.state)
        && queue::transition(entry.kind, entry.state, event).is_ok_and(|s| !queue::in_flight(s));
    if leaves && let Some(candidate) = entry.candidate {
        for mate in inner.store.queue(ctx.repo, &entry.target).await? {
            if mate.id != entry.id
                && mate.kind == QueueKind::Merge
                && mate.candidate == Some(candidate)
                && queue::in_flight(mate.state)
            {
                let back = QueueChange {
                    clear_staging: true,
                    reason: Some(format!("pull request #{} left its candidate", entry.pr)),
                    ..Default::default()
                };
                moves.push((mate, QueueEvent::TargetMoved, back));
            }
        }
    }
    Ok(record_many(inner, ctx, moves, plan)
        .await?
        .and_then(|m| m.into_iter().next()))
}

/// Records several entries' events with the effects of `plan` as one all-or-nothing
/// transaction (see [`record`]); returns the entries as stored afterwards, in order, or
/// `None` when an event does not apply or another step moved an entry first.
pub(crate) async fn record_many(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    moves: Vec<(QueueEntry, QueueEvent, QueueChange)>,
    mut plan: Plan,
) -> Result<Option<Vec<QueueEntry>>, HandlerError> {
    let mut store_moves = Vec::with_capacity(moves.len());
    for (entry, event, mut change) in moves.iter().cloned() {
        let next = match queue::transition(entry.kind, entry.state, event) {
            Ok(next) => next,
            Err(e) => {
                inner.not_applicable.fetch_add(1, Ordering::Relaxed);
                tracing::error!(entry = entry.id, pr = %entry.pr, error = %e, "Queue event does not apply; nothing changed");
                return Ok(None);
            }
        };
        change.state = Some(next);
        if !next.is_active() && change.exit.is_none() {
            let build_url = match (event, entry.build_id) {
                (QueueEvent::BuildRed | QueueEvent::BuildGreen, Some(id)) => {
                    inner.store.build(id).await?.and_then(|b| b.url)
                }
                _ => None,
            };
            change.exit = Some(implied_exit(
                &entry,
                event,
                change.reason.as_deref(),
                build_url,
            ));
        }
        store_moves.push(QueueMove {
            id: entry.id,
            from: entry.state,
            change,
        });
    }
    let entries: Vec<&QueueEntry> = moves.iter().map(|(e, _, _)| e).collect();
    super::notify::on_moves(inner, ctx, &entries, &store_moves, &mut plan).await?;
    let updated = inner
        .store
        .transition_queue_entries(&store_moves, plan.effects(), inner.now_ms())
        .await?;
    for ((entry, event, _), m) in moves.iter().zip(&store_moves) {
        let to = m.change.state.map_or("?", |s| s.as_str());
        if updated.is_some() {
            tracing::info!(entry = entry.id, pr = %entry.pr, from = entry.state.as_str(), to, ?event, candidate = ?entry.candidate, "Queue entry moved");
            if entry.kind == QueueKind::Merge && matches!(to, "landed" | "failed" | "cancelled") {
                inner.metrics.merge_finished(to);
            }
        } else {
            tracing::info!(entry = entry.id, pr = %entry.pr, from = entry.state.as_str(), ?event, "Queue entry was moved by another step first; nothing changed");
        }
    }
    super::staging::kick(inner, ctx);
    Ok(updated)
}

/// Why an entry left its queue, from the event that finished it, its `reason` in words and
/// its staging build's page: for the finishing changes that do not give their exit.
pub(crate) fn implied_exit(
    entry: &QueueEntry,
    event: QueueEvent,
    reason: Option<&str>,
    build_url: Option<String>,
) -> QueueExit {
    let words = reason.unwrap_or("").to_owned();
    match event {
        QueueEvent::FastForwarded => QueueExit::Landed {
            commit: entry
                .staging_sha
                .clone()
                .unwrap_or_else(|| entry.head_sha.clone()),
        },
        QueueEvent::BuildGreen => QueueExit::Passed { build_url },
        QueueEvent::BuildRed => QueueExit::BuildFailed {
            result: if words.is_empty() {
                "build failed".to_owned()
            } else {
                words
            },
            build_url,
        },
        QueueEvent::Conflict => QueueExit::Conflict { detail: words },
        QueueEvent::UpToDate => QueueExit::UpToDate,
        QueueEvent::Refused => QueueExit::Refused { reason: words },
        QueueEvent::Withdrawn
        | QueueEvent::Start
        | QueueEvent::Staged
        | QueueEvent::TargetMoved => QueueExit::Other { reason: words },
    }
}

/// Adds the stop of `entry`'s active staging build, if any, marked `mark`.
async fn stop_build(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    mark: BuildRunState,
    plan: &mut Plan,
) -> Result<(), HandlerError> {
    match &entry.staging_sha {
        Some(staging) => {
            stop_build_of(inner, ctx, staging, context_of(entry.kind), mark, plan).await
        }
        None => Ok(()),
    }
}

/// Adds the stop of the active `context` build of commit `sha`, if any, marked `mark` (one
/// effect per build: keyed `build:<id>:stop`).
pub(crate) async fn stop_build_of(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    sha: &Sha,
    context: BuildContext,
    mark: BuildRunState,
    plan: &mut Plan,
) -> Result<(), HandlerError> {
    if let Some(b) = inner.store.latest_build(ctx.repo, sha, context).await?
        && b.state.is_active()
    {
        let effect = Effect::StopBuild {
            build_id: b.id,
            mark: mark.as_str().to_owned(),
        };
        plan.add(ctx.repo, format!("build:{}:stop", b.id), &effect);
    }
    Ok(())
}

/// Adds the effects every exit of `entry` calls for: stop its active staging build (marked
/// `mark`), and delete its staging ref when greg made one.
async fn cleanup(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    mark: BuildRunState,
    plan: &mut Plan,
) -> Result<(), HandlerError> {
    stop_build(inner, ctx, entry, mark, plan).await?;
    // The merge ref is shared by the queue: only a ref known to carry this entry's commit is
    // deleted (a ref made but not recorded is overwritten by the next entry).
    let made_ref = match entry.kind {
        QueueKind::Merge => queue::in_flight(entry.state) && entry.staging_sha.is_some(),
        QueueKind::Try | QueueKind::Test => true,
    };
    if made_ref && !super::staging::api_merge(ctx) {
        let effect = Effect::DeleteRef {
            branch: queue::staging_branch(entry),
            sha: entry.staging_sha.clone(),
        };
        plan.add(ctx.repo, key(entry, "finish", "delete_ref"), &effect);
    }
    Ok(())
}

/// The entry failed (conflict, red build, refused or abandoned step): Failed, with a failure
/// status on the head, `body` as a comment (none when empty), its build stopped and its
/// staging ref deleted. Then the next entry starts.
pub(crate) async fn fail(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    event: QueueEvent,
    reason: &str,
    body: &str,
) -> Result<(), HandlerError> {
    let mut plan = Plan::default();
    finish_status(&mut plan, ctx, entry, CommitState::Failure, reason, None);
    plan.comment(
        ctx.repo,
        key(entry, "finish", "comment"),
        entry.pr,
        body.to_owned(),
    );
    cleanup(inner, ctx, entry, BuildRunState::Aborted, &mut plan).await?;
    // A failure never reads as a plain withdrawal: a waiting entry whose step failed for
    // good was refused.
    let exit = (event == QueueEvent::Withdrawn).then(|| QueueExit::Refused {
        reason: reason.to_owned(),
    });
    let change = QueueChange {
        reason: Some(reason.to_owned()),
        exit,
        ..Default::default()
    };
    record(inner, ctx, entry, event, change, plan).await?;
    Ok(())
}

/// The target reached the staging commit (or the pull request was merged through the API):
/// Landed, with `greg/merge` success on the head, the "merged" comment, the staging ref
/// deleted.
pub(crate) async fn landed(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    staging: &Sha,
    url: Option<&str>,
) -> Result<(), HandlerError> {
    let mut plan = Plan::default();
    let desc = format!("merged into {} as {}", entry.target, staging.short());
    finish_status(&mut plan, ctx, entry, CommitState::Success, &desc, url);
    let body = texts::landed(&entry.head_sha, &entry.target, staging, url);
    plan.comment(ctx.repo, key(entry, "finish", "comment"), entry.pr, body);
    cleanup(inner, ctx, entry, BuildRunState::Success, &mut plan).await?;
    let change = QueueChange {
        reason: Some(format!("landed as {staging}")),
        exit: Some(QueueExit::Landed {
            commit: staging.clone(),
        }),
        ..Default::default()
    };
    record(inner, ctx, entry, QueueEvent::FastForwarded, change, plan).await?;
    tracing::info!(entry = entry.id, pr = %entry.pr, target = %entry.target, staging = %staging, "Landed");
    Ok(())
}

/// The approved head is already in the target (the staging merge found nothing to merge): a
/// merge entry lands as is, a try or test has nothing to test. `entry` carries the commit its
/// staging ref was made at, so the ref is deleted only while it is still this entry's.
pub(crate) async fn up_to_date(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
) -> Result<(), HandlerError> {
    let desc = format!("already in {}", entry.target);
    let state = match entry.kind {
        QueueKind::Merge => CommitState::Success,
        QueueKind::Try | QueueKind::Test => CommitState::Error,
    };
    let mut plan = Plan::default();
    finish_status(&mut plan, ctx, entry, state, &desc, None);
    if entry.kind != QueueKind::Test {
        let body = texts::already_in_target(&entry.head_sha, &entry.target);
        plan.comment(ctx.repo, key(entry, "finish", "comment"), entry.pr, body);
    }
    cleanup(inner, ctx, entry, BuildRunState::Aborted, &mut plan).await?;
    let change = QueueChange {
        reason: Some(desc),
        ..Default::default()
    };
    record(inner, ctx, entry, QueueEvent::UpToDate, change, plan).await?;
    Ok(())
}

/// A try or test_merged build ended (`event` BuildGreen or BuildRed): status (and for try a
/// comment) on the head, staging ref removed, nothing lands.
pub(crate) async fn checked(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    outcome: greg_core::BuildOutcome,
    words: &str,
    url: Option<&str>,
) -> Result<(), HandlerError> {
    let green = outcome == greg_core::BuildOutcome::Success;
    let (event, state) = if green {
        (QueueEvent::BuildGreen, CommitState::Success)
    } else {
        (QueueEvent::BuildRed, CommitState::Failure)
    };
    let desc = match entry.kind {
        QueueKind::Test => format!(
            "{}, merged into {}",
            texts::status_description("test", outcome, None),
            entry.target
        ),
        _ => texts::status_description("try", outcome, None),
    };
    let mut plan = Plan::default();
    finish_status(&mut plan, ctx, entry, state, &desc, url);
    if entry.kind == QueueKind::Try {
        let body = texts::try_finished(&entry.head_sha, outcome, url);
        plan.comment(ctx.repo, key(entry, "finish", "comment"), entry.pr, body);
    }
    cleanup(inner, ctx, entry, BuildRunState::Aborted, &mut plan).await?;
    let exit = if green {
        QueueExit::Passed {
            build_url: url.map(str::to_owned),
        }
    } else {
        QueueExit::BuildFailed {
            result: words.to_owned(),
            build_url: url.map(str::to_owned),
        }
    };
    let change = QueueChange {
        reason: (!green).then(|| words.to_owned()),
        exit: Some(exit),
        ..Default::default()
    };
    record(inner, ctx, entry, event, change, plan).await?;
    Ok(())
}

/// The target moved away from the staging base: back to Waiting at the same place, its
/// staging build stopped (superseded), restaged from the new tip by the next advance.
pub(crate) async fn target_moved(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
) -> Result<(), HandlerError> {
    tracing::info!(entry = entry.id, pr = %entry.pr, target = %entry.target, "Target moved under the staging commit; merging again from the new tip");
    let mut plan = Plan::default();
    stop_build(inner, ctx, entry, BuildRunState::Superseded, &mut plan).await?;
    let change = QueueChange {
        clear_staging: true,
        reason: Some("target moved; merging again".to_owned()),
        ..Default::default()
    };
    record(inner, ctx, entry, QueueEvent::TargetMoved, change, plan).await?;
    Ok(())
}

/// Takes an entry out of its queue (push, close, cancel, replacement, rules no longer met):
/// Cancelled, its build stopped, its staging ref deleted, plus the caller's `plan` (the
/// status and comment that say why), all in one transaction.
pub(crate) async fn withdraw(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    reason: &str,
    plan: Plan,
) -> Result<(), HandlerError> {
    let exit = QueueExit::Other {
        reason: reason.to_owned(),
    };
    withdraw_as(inner, ctx, entry, reason, exit, plan).await
}

/// [`withdraw`], saying why with `exit`.
pub(crate) async fn withdraw_as(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    reason: &str,
    exit: QueueExit,
    mut plan: Plan,
) -> Result<(), HandlerError> {
    cleanup(inner, ctx, entry, BuildRunState::Aborted, &mut plan).await?;
    let change = QueueChange {
        reason: Some(reason.to_owned()),
        exit: Some(exit),
        ..Default::default()
    };
    if record(inner, ctx, entry, QueueEvent::Withdrawn, change, plan)
        .await?
        .is_some()
    {
        tracing::info!(entry = entry.id, pr = %entry.pr, reason, "Left the queue");
    }
    Ok(())
}

/// The status on the head that announces how the entry finished (one per entry: keyed
/// `queue:<id>:finish:status`).
pub(crate) fn finish_status(
    plan: &mut Plan,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    state: CommitState,
    desc: &str,
    url: Option<&str>,
) {
    plan.status(
        ctx.repo,
        key(entry, "finish", "status"),
        &entry.head_sha,
        context_of(entry.kind),
        state,
        desc,
        url,
    );
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
        let mut plan = Plan::default();
        let desc = format!("dropped: new head {}", pr.head_sha.short());
        finish_status(&mut plan, ctx, &entry, CommitState::Error, &desc, None);
        let body = texts::dropped_new_head(&entry.head_sha, &pr.head_sha);
        plan.comment(ctx.repo, key(&entry, "finish", "comment"), pr.number, body);
        let exit = QueueExit::NewHead {
            head: pr.head_sha.clone(),
        };
        withdraw_as(inner, ctx, &entry, "new commits were pushed", exit, plan).await?;
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
        withdraw_as(
            inner,
            ctx,
            &entry,
            "the pull request was closed",
            QueueExit::Closed,
            Plan::default(),
        )
        .await?;
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
        let desc = format!("cancelled by @{by}");
        let mut plan = Plan::default();
        finish_status(&mut plan, ctx, entry, CommitState::Failure, &desc, None);
        let exit = QueueExit::Cancelled { by: by.clone() };
        withdraw_as(inner, ctx, entry, &desc, exit, plan).await?;
    }
    Ok(entries.len())
}

/// The rules of SPEC §5 no longer hold for a queued merge (`blockers` not empty): the entry
/// leaves its queue with a comment listing them.
pub(crate) async fn rules_broken(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    blockers: &[greg_core::Blocker],
) -> Result<(), HandlerError> {
    let mut plan = Plan::default();
    finish_status(
        &mut plan,
        ctx,
        entry,
        CommitState::Failure,
        "dropped: no longer mergeable",
        None,
    );
    let body = texts::dropped_rules(&entry.head_sha, &entry.target, blockers);
    plan.comment(ctx.repo, key(entry, "finish", "comment"), entry.pr, body);
    let words: Vec<String> = blockers.iter().map(ToString::to_string).collect();
    let reason = format!("no longer mergeable: {}", words.join("; "));
    let exit = QueueExit::RulesBroken { blockers: words };
    withdraw_as(inner, ctx, entry, &reason, exit, plan).await
}
