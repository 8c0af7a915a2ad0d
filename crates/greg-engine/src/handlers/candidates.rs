//! The merge pipeline's steps (SPEC §10): each (repository, target) merge queue is driven by
//! [`drive`], which repairs the candidates in flight from their stored state, asks
//! [`crate::pipeline::plan`] what to do, and carries the actions out. Every change of queue
//! state goes through `exits::record` / `exits::record_many` (one transaction with its
//! effects) before any provider or builder call acts on it.
//!
//! A candidate is stored on its entries (`candidate`, `parent`, `base_sha`, `staging_sha`):
//! its id is its first entry's, its staging ref is `greg/staging/<target>/<id>`, and its
//! entries move together (`exits::record_many`), so a candidate is never half in one state.
//! Landing fast-forwards the target, by compare-and-swap on the tip the chain's first
//! candidate was built on, to the deepest green candidate's commit: every commit the target
//! takes was built green with exactly the pull requests that land.
//!
//! What a crash leaves is repaired by the next [`drive`] (at start, on every event):
//! a candidate being staged is staged again from its base, and those built on it are thrown
//! away (their base is gone); a candidate building finds its build by its commit; a green
//! chain is landed again after reading the target tip (already there → recorded as landed).

use super::builds::set_status;
use super::exits::{self, context_of, key};
use super::staging::{self, StagingResult};
use super::{HandlerError, RepoCtx, backend};
use crate::Inner;
use crate::outbox::{Effect, Plan};
use crate::pipeline::{self, Action, Aimd, Build, Candidate, Snapshot, Strategy, Waiting};
use crate::queue::{self, QueueEvent};
use crate::texts;
use greg_core::{BuildContext, CommitState, FastForward, MergeResult, Sha};
use greg_store::{BuildRunState, QueueChange, QueueEntry, QueueKind, QueueState};

/// Most plan-and-act rounds one [`drive`] makes; the rest waits for the next event.
const MAX_ROUNDS: usize = 16;

/// One candidate in flight, as stored: its entries in queue order (the first is its id).
#[derive(Debug, Clone)]
struct Stored {
    id: i64,
    parent: Option<i64>,
    members: Vec<QueueEntry>,
}

impl Stored {
    /// The least advanced state of its entries (they move together; a mix means a crash
    /// between two writes of an older version, and the least advanced step is redone).
    fn state(&self) -> QueueState {
        let rank = |s: QueueState| match s {
            QueueState::Staging => 0,
            QueueState::Building => 1,
            _ => 2,
        };
        self.members
            .iter()
            .map(|e| e.state)
            .min_by_key(|s| rank(*s))
            .unwrap_or(QueueState::Staging)
    }

    fn leader(&self) -> Option<&QueueEntry> {
        self.members.first()
    }

    fn staging_sha(&self) -> Option<&Sha> {
        self.leader().and_then(|e| e.staging_sha.as_ref())
    }

    fn base_sha(&self) -> Option<&Sha> {
        self.leader().and_then(|e| e.base_sha.as_ref())
    }
}

/// The repository's `merge_queue` as a [`Strategy`].
pub(crate) fn strategy(ctx: &RepoCtx<'_>) -> Strategy {
    let q = &ctx.cfg.merge_queue;
    let n = |v: u32| usize::try_from(v).unwrap_or(1).max(1);
    Strategy {
        batch_size: n(q.batch_size),
        window: n(q.window),
        adaptive: q.adaptive,
        window_min: n(q.window_min),
        optimistic: q.optimistic,
    }
}

/// The window of the (repository, target) queue now.
pub(crate) fn window(inner: &Inner, ctx: &RepoCtx<'_>, target: &str) -> usize {
    let s = strategy(ctx);
    let key = (ctx.repo.key(), target.to_owned());
    match inner.windows.lock() {
        Ok(mut w) => w.entry(key).or_insert_with(|| Aimd::new(&s)).window(&s),
        Err(_) => s.window,
    }
}

fn adapt(inner: &Inner, ctx: &RepoCtx<'_>, target: &str, f: impl FnOnce(&mut Aimd, &Strategy)) {
    let s = strategy(ctx);
    if let Ok(mut w) = inner.windows.lock() {
        let aimd = w
            .entry((ctx.repo.key(), target.to_owned()))
            .or_insert_with(|| Aimd::new(&s));
        f(aimd, &s);
    }
}

/// The candidates in flight among `entries` (one queue's active entries, in queue order).
/// An in-flight entry stored without a candidate (written by a greg before SPEC §10) is a
/// candidate of its own on the target tip.
fn in_flight(entries: &[QueueEntry]) -> Vec<Stored> {
    let mut out: Vec<Stored> = Vec::new();
    for e in entries
        .iter()
        .filter(|e| e.kind == QueueKind::Merge && queue::in_flight(e.state))
    {
        let id = e.candidate.unwrap_or(e.id);
        match out.iter_mut().find(|c| c.id == id) {
            Some(c) => c.members.push(e.clone()),
            None => out.push(Stored {
                id,
                parent: e.candidate.and(e.parent),
                members: vec![e.clone()],
            }),
        }
    }
    for c in &mut out {
        // The candidate's own first entry leads, whatever the queue order became.
        c.members.sort_by_key(|e| (e.id != c.id, e.id));
    }
    out.sort_by_key(|c| c.id);
    out
}

/// Drives the merge queue of (repository, `target`): repair, plan, act, until nothing is left
/// to do or [`MAX_ROUNDS`] is reached.
pub(crate) async fn drive(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    target: &str,
) -> Result<(), HandlerError> {
    for _ in 0..MAX_ROUNDS {
        let entries = inner.store.queue(ctx.repo, target).await?;
        let candidates = in_flight(&entries);
        if repair(inner, ctx, &candidates).await? {
            continue;
        }
        let snap = snapshot(inner, ctx, target, &entries, &candidates).await?;
        let actions = pipeline::plan(&strategy(ctx), &snap);
        if actions.is_empty() {
            return Ok(());
        }
        tracing::debug!(repo = %ctx.repo, target, ?actions, "Merge pipeline plan");
        for action in actions {
            act(inner, ctx, target, &entries, &candidates, action).await?;
        }
    }
    Ok(())
}

/// Redoes the step of each candidate from its stored state; `true` when something moved
/// (the caller reads the queue again).
async fn repair(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    candidates: &[Stored],
) -> Result<bool, HandlerError> {
    for c in candidates {
        if let Some(why) = stale(inner, candidates, c).await? {
            reset(inner, ctx, c, why).await?;
            return Ok(true);
        }
        let Some(leader) = c.leader() else { continue };
        match c.state() {
            QueueState::Staging => {
                tracing::info!(
                    candidate = c.id,
                    "Resuming: making the staging commit again"
                );
                staging::step(inner, ctx, leader, stage(inner, ctx, c, candidates)).await?;
                return Ok(true);
            }
            QueueState::Building if c.staging_sha().is_none() => {
                staging::step(inner, ctx, leader, stage(inner, ctx, c, candidates)).await?;
                return Ok(true);
            }
            QueueState::Building => {
                // A build Jenkins has accepted is followed by the build poller: nothing to
                // redo. One never triggered (pending), never recorded, or finished while its
                // result was not taken (a crash) is seen to here.
                let accepted = match leader.build_id {
                    Some(id) => inner.store.build(id).await?.is_some_and(|b| {
                        matches!(b.state, BuildRunState::Queued | BuildRunState::Running)
                    }),
                    None => false,
                };
                if !accepted {
                    staging::step(
                        inner,
                        ctx,
                        leader,
                        staging::ensure_build(inner, ctx, leader, false),
                    )
                    .await?;
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

/// Why candidate `c` can no longer land as built, if so: its parent was made again (its
/// commit is not `c`'s base any more), or its parent left the queue without landing.
async fn stale(
    inner: &Inner,
    candidates: &[Stored],
    c: &Stored,
) -> Result<Option<&'static str>, HandlerError> {
    let Some(parent) = c.parent else {
        return Ok(None);
    };
    if let Some(p) = candidates.iter().find(|p| p.id == parent) {
        if c.state() != QueueState::Staging && p.staging_sha() != c.base_sha() {
            return Ok(Some("the candidate it was built on was made again"));
        }
        return Ok(None);
    }
    let landed = inner
        .store
        .queue_entry(parent)
        .await?
        .is_some_and(|p| p.state == QueueState::Landed);
    Ok((!landed).then_some("the candidate it was built on left the queue"))
}

/// The pipeline's view of the queue: candidates with their builds, waiting entries, the
/// tree closure and the window.
async fn snapshot(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    target: &str,
    entries: &[QueueEntry],
    candidates: &[Stored],
) -> Result<Snapshot, HandlerError> {
    let mut out = Vec::with_capacity(candidates.len());
    for c in candidates {
        let build = match c.state() {
            QueueState::Landing => Build::Green,
            // Its own build (a rebuilt candidate may have the same commit as a build thrown
            // away before: only the build started for this candidate counts).
            QueueState::Building => match c.leader().and_then(|e| e.build_id) {
                Some(id) => match inner.store.build(id).await? {
                    Some(b) if !b.state.is_active() && b.state != BuildRunState::Success => {
                        // A real failure (not a build greg stopped) is remembered for
                        // bisection.
                        if b.state == BuildRunState::Failure
                            && let Some(base) = c.base_sha()
                        {
                            remember_red(inner, ctx, content_key(c, candidates, base), b.id);
                        }
                        Build::Red
                    }
                    _ => Build::Running,
                },
                None => Build::Running,
            },
            _ => Build::Running,
        };
        out.push(Candidate {
            id: c.id,
            entries: c.members.iter().map(|e| e.id).collect(),
            parent: c.parent,
            build,
        });
    }
    let waiting = entries
        .iter()
        .filter(|e| e.kind == QueueKind::Merge && e.state == QueueState::Waiting)
        .map(|e| Waiting {
            id: e.id,
            priority: e.priority,
            group: e.group,
        })
        .collect();
    let closure = inner.store.tree_closure(ctx.repo, target).await?;
    Ok(Snapshot {
        candidates: out,
        waiting,
        closed_below: closure.map(|c| c.priority),
        window: window(inner, ctx, target),
    })
}

/// Carries out one action of the plan.
async fn act(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    target: &str,
    entries: &[QueueEntry],
    candidates: &[Stored],
    action: Action,
) -> Result<(), HandlerError> {
    let find = |id: i64| candidates.iter().find(|c| c.id == id);
    match action {
        Action::Reset { candidate } => {
            if let Some(c) = find(candidate) {
                reset(
                    inner,
                    ctx,
                    c,
                    "a candidate ahead of it failed or landed without it",
                )
                .await?;
            }
        }
        Action::Fail { candidate, entry } => {
            if let Some(c) = find(candidate)
                && let Some(e) = c.members.iter().find(|e| e.id == entry)
            {
                fail_red(inner, ctx, c, e).await?;
                adapt(inner, ctx, target, Aimd::on_blamed);
            }
        }
        Action::Split { candidate, halves } => {
            if let Some(c) = find(candidate) {
                split(inner, ctx, c, &halves).await?;
                adapt(inner, ctx, target, Aimd::on_blamed);
            }
        }
        Action::Land { chain, .. } => {
            let chain: Vec<&Stored> = chain.iter().filter_map(|id| find(*id)).collect();
            if let Some(leader) = chain.first().and_then(|c| c.leader()) {
                let work = land(inner, ctx, target, candidates, &chain);
                staging::step(inner, ctx, leader, work).await?;
            }
        }
        Action::Start {
            entries: ids,
            parent,
        } => {
            let members: Vec<&QueueEntry> = ids
                .iter()
                .filter_map(|id| entries.iter().find(|e| e.id == *id))
                .collect();
            if let Some(first) = members.first() {
                let first = (*first).clone();
                let work = start(inner, ctx, &members, parent, candidates);
                staging::step(inner, ctx, &first, work).await?;
            }
        }
    }
    Ok(())
}

/// Throws candidate `c` away: its entries wait again at their place, its build is stopped
/// (superseded) and its staging ref deleted.
async fn reset(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    c: &Stored,
    why: &str,
) -> Result<(), HandlerError> {
    tracing::info!(candidate = c.id, entries = ?c.members.iter().map(|e| e.id).collect::<Vec<_>>(), why, "Candidate thrown away; its pull requests wait again");
    let mut plan = Plan::default();
    let mut moves = Vec::new();
    for e in &c.members {
        let change = QueueChange {
            clear_staging: true,
            reason: Some(format!("rebuilt: {why}")),
            ..Default::default()
        };
        moves.push((e.clone(), QueueEvent::TargetMoved, change));
    }
    cleanup(inner, ctx, c, BuildRunState::Superseded, &mut plan).await?;
    exits::record_many(inner, ctx, moves, plan).await?;
    Ok(())
}

/// Stops candidate `c`'s active build (marked `mark`) and deletes its staging ref while it
/// still holds the candidate's commit.
async fn cleanup(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    c: &Stored,
    mark: BuildRunState,
    plan: &mut Plan,
) -> Result<(), HandlerError> {
    let Some(sha) = c.staging_sha() else {
        return Ok(());
    };
    exits::stop_build_of(inner, ctx, sha, BuildContext::Merge, mark, plan).await?;
    if !staging::api_merge(ctx)
        && let Some(leader) = c.leader()
    {
        let effect = Effect::DeleteRef {
            branch: queue::staging_branch(leader),
            sha: Some(sha.clone()),
        };
        plan.add(
            ctx.repo,
            format!("candidate:{}:{}:delete_ref", c.id, sha.short()),
            &effect,
        );
    }
    Ok(())
}

/// The build of candidate `c` (alone at the head) failed: its only entry fails with the
/// build's result and link.
async fn fail_red(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    c: &Stored,
    e: &QueueEntry,
) -> Result<(), HandlerError> {
    let Some(staging) = c.staging_sha() else {
        return Ok(());
    };
    let build = match c.leader().and_then(|e| e.build_id) {
        Some(id) => inner.store.build(id).await?,
        None => None,
    };
    let words = match build.as_ref().map(|b| b.state) {
        Some(BuildRunState::Aborted) => "build was aborted",
        Some(BuildRunState::Superseded) => "build was superseded",
        Some(BuildRunState::Error) => "build could not be run",
        Some(BuildRunState::TimedOut) => "build timed out",
        _ => "build failed",
    };
    let url = build.as_ref().and_then(|b| b.url.clone());
    let body = texts::staging_failed(&e.head_sha, staging, words, url.as_deref());
    tracing::info!(candidate = c.id, entry = e.id, pr = %e.pr, "The candidate failed alone at the head: its pull request leaves the queue");
    exits::fail(inner, ctx, e, QueueEvent::BuildRed, words, &body).await
}

/// A red batch at the head goes back to waiting as two bisection groups.
async fn split(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    c: &Stored,
    halves: &(Vec<i64>, Vec<i64>),
) -> Result<(), HandlerError> {
    tracing::info!(candidate = c.id, first = ?halves.0, second = ?halves.1, "A batch failed at the head; building its halves apart");
    let mut plan = Plan::default();
    cleanup(inner, ctx, c, BuildRunState::Aborted, &mut plan).await?;
    let mut moves = Vec::new();
    for half in [&halves.0, &halves.1] {
        let Some(group) = half.first().copied() else {
            continue;
        };
        for e in c.members.iter().filter(|e| half.contains(&e.id)) {
            let change = QueueChange {
                clear_staging: true,
                group: Some(group),
                reason: Some("its batch failed; bisecting".to_owned()),
                ..Default::default()
            };
            moves.push((e.clone(), QueueEvent::TargetMoved, change));
        }
    }
    exits::record_many(inner, ctx, moves, plan).await?;
    Ok(())
}

/// Starts a candidate of `members` on `parent`: the rules are checked again for each, the
/// entries move to Staging together, then the staging commit is made.
async fn start(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    members: &[&QueueEntry],
    parent: Option<i64>,
    candidates: &[Stored],
) -> Result<(), HandlerError> {
    for e in members {
        if !staging::rules_hold(inner, ctx, e).await? {
            // It left the queue; the next round plans without it.
            return Ok(());
        }
    }
    let Some(id) = members.first().map(|e| e.id) else {
        return Ok(());
    };
    let moves = members
        .iter()
        .map(|e| {
            let change = QueueChange {
                attempts: Some(e.attempts.saturating_add(1)),
                clear_staging: true,
                candidate: Some(id),
                parent,
                ..Default::default()
            };
            ((*e).clone(), QueueEvent::Start, change)
        })
        .collect();
    let Some(moved) = exits::record_many(inner, ctx, moves, Plan::default()).await? else {
        return Ok(());
    };
    let c = Stored {
        id,
        parent,
        members: moved,
    };
    tracing::info!(candidate = id, parent = ?parent, entries = ?c.members.iter().map(|e| e.id).collect::<Vec<_>>(), "Candidate started");
    stage(inner, ctx, &c, candidates).await
}

/// Staging: force the candidate's ref to its base (its parent's commit, or the target tip),
/// merge each approved head into it in queue order, then build the result. Idempotent: run
/// again after a crash, it starts from the base again.
async fn stage(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    c: &Stored,
    candidates: &[Stored],
) -> Result<(), HandlerError> {
    let p = &ctx.provider;
    let Some(leader) = c.leader().cloned() else {
        return Ok(());
    };
    let base = match c.parent {
        Some(parent) => match candidates.iter().find(|x| x.id == parent) {
            Some(x) if x.state() != QueueState::Staging && x.staging_sha().is_some() => {
                x.staging_sha().cloned()
            }
            Some(_) => {
                // Its parent is being made again: this one is made after it, on its commit.
                return reset(
                    inner,
                    ctx,
                    c,
                    "the candidate it builds on is being made again",
                )
                .await;
            }
            None if stale(inner, candidates, c).await?.is_some() => {
                return reset(
                    inner,
                    ctx,
                    c,
                    "the candidate it was built on left the queue",
                )
                .await;
            }
            // The parent landed: the target is its commit.
            None => None,
        },
        None => None,
    };
    let base = match base {
        Some(b) => b,
        None => match p
            .branch_tip(ctx.repo, &leader.target)
            .await
            .map_err(backend(p))?
        {
            Some(tip) => tip,
            None => {
                let reason = format!("target branch {} does not exist", leader.target);
                let body = texts::target_missing(&leader.head_sha, &leader.target);
                return exits::fail(inner, ctx, &leader, QueueEvent::Conflict, &reason, &body)
                    .await;
            }
        },
    };
    // A green build of the same tree needs no second build (SPEC §10, "no build twice for
    // one tree"): a try or test_merged build of this head on this base.
    let mut reused: Option<(i64, bool)> = None;
    let staged = if let Some((commit, build)) = reusable(inner, ctx, c, &base).await? {
        let branch = queue::staging_branch(&leader);
        p.set_branch(ctx.repo, &branch, &commit)
            .await
            .map_err(backend(p))?;
        tracing::info!(candidate = c.id, base = %base, staging = %commit, build, "Reusing a green build of the same merge instead of building it again");
        reused = Some((build, true));
        commit
    } else if staging::api_merge(ctx) {
        // No staging refs (Bitbucket, serial only): the job builds the approved head merged
        // with TARGET, and greg merges the pull request through the API if the target is
        // still `base`.
        tracing::info!(entry = leader.id, base = %base, "Building the head merged with the target (merge through the provider API)");
        leader.head_sha.clone()
    } else {
        let branch = queue::staging_branch(&leader);
        p.set_branch(ctx.repo, &branch, &base)
            .await
            .map_err(backend(p))?;
        let mut at = base.clone();
        for e in &c.members {
            let merged = p
                .merge_into_branch(
                    ctx.repo,
                    &branch,
                    &e.head_sha,
                    &staging::merge_message(ctx, e),
                )
                .await
                .map_err(backend(p))?;
            // Until the candidate is recorded, the ref at `at` is this entry's to delete.
            let at_ref = QueueEntry {
                staging_sha: Some(at.clone()),
                ..e.clone()
            };
            match merged {
                MergeResult::Merged(sha) => at = sha,
                MergeResult::Conflict => {
                    let body = texts::merge_conflict(&e.head_sha, &e.target);
                    return exits::fail(
                        inner,
                        ctx,
                        &at_ref,
                        QueueEvent::Conflict,
                        "merge conflict",
                        &body,
                    )
                    .await;
                }
                MergeResult::UpToDate if c.parent.is_none() && c.members.len() == 1 => {
                    return exits::up_to_date(inner, ctx, &at_ref).await;
                }
                // Already in its base: it lands with the candidate (nothing to merge).
                MergeResult::UpToDate => {}
            }
        }
        tracing::info!(candidate = c.id, base = %base, staging = %at, branch, "Staging commit made");
        // The same commit was built green already (a candidate made again).
        if let Some(b) = inner
            .store
            .latest_build(ctx.repo, &at, BuildContext::Merge)
            .await?
            && b.state == BuildRunState::Success
        {
            tracing::info!(candidate = c.id, staging = %at, build = b.id, "This staging commit was built green already; reusing its build");
            reused = Some((b.id, true));
        } else if !strategy(ctx).optimistic
            && let Some(failed) = known_red(inner, ctx, &content_key(c, candidates, &base))
        {
            // The same pull requests on the same tip failed before (the second half of a
            // bisected batch, built on a green first half, is the batch again): that result
            // stands. Not with `optimistic`, which assumes red builds may be flakes.
            tracing::info!(candidate = c.id, staging = %at, build = failed, "These pull requests on this tip failed before; reusing that result");
            reused = Some((failed, false));
        }
        at
    };
    let mut plan = Plan::default();
    let mut moves = Vec::new();
    for e in &c.members {
        let desc = format!(
            "{} into {}: building staging commit {}",
            context_of(e.kind).as_str(),
            e.target,
            staged.short()
        );
        let attempt = format!("staged{}", e.attempts);
        plan.status(
            ctx.repo,
            key(e, &attempt, "status"),
            &e.head_sha,
            context_of(e.kind),
            CommitState::Pending,
            &desc,
            None,
        );
        let change = QueueChange {
            base_sha: Some(base.clone()),
            staging_sha: Some(staged.clone()),
            build_id: reused.map(|(b, _)| b),
            ..Default::default()
        };
        moves.push((e.clone(), QueueEvent::Staged, change));
    }
    let Some(moved) = exits::record_many(inner, ctx, moves, plan).await? else {
        return Ok(());
    };
    if reused.is_some() {
        inner
            .builds_reused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    match (moved.first(), reused) {
        (Some(leader), Some((build, true))) => on_green(inner, ctx, leader, build).await,
        // A known failure: the plan blames it (or waits for the candidates ahead).
        (Some(_), Some((_, false))) => {
            staging::kick(inner, ctx);
            Ok(())
        }
        (Some(leader), None) => staging::ensure_build(inner, ctx, leader, true).await,
        (None, _) => Ok(()),
    }
}

/// What candidate `c`, built on `base`, contains: the tip its chain starts from and every
/// head of the chain in order (`<root base>:<head>,<head>,...`). Two candidates with the same
/// key build the same tree, however the pull requests were split into candidates.
fn content_key(c: &Stored, all: &[Stored], base: &Sha) -> String {
    let mut chain = vec![c];
    let mut root_base = base.clone();
    let mut at = c.parent;
    while let Some(p) = at.and_then(|id| all.iter().find(|x| x.id == id)) {
        if chain.len() > all.len() || chain.iter().any(|x| x.id == p.id) {
            break;
        }
        chain.push(p);
        if let Some(b) = p.base_sha() {
            root_base = b.clone();
        }
        at = p.parent;
    }
    let heads: Vec<&str> = chain
        .iter()
        .rev()
        .flat_map(|x| x.members.iter().map(|e| e.head_sha.as_str()))
        .collect();
    format!("{root_base}:{}", heads.join(","))
}

/// The failed build of candidates with content `key` (see [`content_key`]), if one is known.
fn known_red(inner: &Inner, ctx: &RepoCtx<'_>, key: &str) -> Option<i64> {
    let known = inner.known_red.lock().ok()?;
    known.get(&(ctx.repo.key(), key.to_owned())).copied()
}

/// Remembers that candidates with content `key` failed in build `build` (in memory, bounded:
/// an optimisation, lost on restart).
fn remember_red(inner: &Inner, ctx: &RepoCtx<'_>, key: String, build: i64) {
    if let Ok(mut known) = inner.known_red.lock() {
        if known.len() >= 10_000 {
            known.clear();
        }
        known.insert((ctx.repo.key(), key), build);
    }
}

/// A green build of exactly what candidate `c` would build on `base`, if any: for a single
/// pull request on the target tip, a finished try or test_merged build of the same head
/// merged into the same tip (the same tree). Returns its staging commit and build id.
async fn reusable(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    c: &Stored,
    base: &Sha,
) -> Result<Option<(Sha, i64)>, HandlerError> {
    let ([e], None) = (c.members.as_slice(), c.parent) else {
        return Ok(None);
    };
    if staging::api_merge(ctx) {
        return Ok(None);
    }
    // Builds of the last day: an older one is on a tip long gone anyway.
    let since = inner.now_ms().saturating_sub(86_400_000);
    for done in inner
        .store
        .finished_queue_entries(ctx.repo, since, 500)
        .await?
    {
        if done.pr != e.pr
            || done.state != QueueState::Landed
            || !matches!(done.kind, QueueKind::Try | QueueKind::Test)
            || done.head_sha != e.head_sha
            || done.base_sha.as_ref() != Some(base)
        {
            continue;
        }
        let Some(commit) = done.staging_sha else {
            continue;
        };
        if let Some(b) = inner
            .store
            .latest_build(ctx.repo, &commit, context_of(done.kind))
            .await?
            && b.state == BuildRunState::Success
        {
            return Ok(Some((commit, b.id)));
        }
    }
    Ok(None)
}

/// A candidate's build finished green (read from the builder): its entries move to Landing
/// together; the next [`drive`] lands it when the plan says so. `entry` is the candidate's
/// entry the build was found by.
pub(crate) async fn on_green(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    build_id: i64,
) -> Result<(), HandlerError> {
    let id = entry.candidate.unwrap_or(entry.id);
    let entries = inner.store.queue(ctx.repo, &entry.target).await?;
    let moves: Vec<_> = in_flight(&entries)
        .into_iter()
        .filter(|c| c.id == id)
        .flat_map(|c| c.members)
        .filter(|e| e.state == QueueState::Building && e.staging_sha == entry.staging_sha)
        .map(|e| {
            let change = QueueChange {
                build_id: Some(build_id),
                ..Default::default()
            };
            (e, QueueEvent::BuildGreen, change)
        })
        .collect();
    if moves.is_empty() {
        staging::kick(inner, ctx);
        return Ok(());
    }
    exits::record_many(inner, ctx, moves, Plan::default()).await?;
    Ok(())
}

/// Lands `chain` (candidates head first, each built on the one before): the target must
/// still be the tip the first was built on; then the rules once more for every pull request,
/// `greg/merge` success on the last commit (so a protected target accepts it), and the
/// compare-and-swap fast-forward of the target to it.
async fn land(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    target: &str,
    all: &[Stored],
    chain: &[&Stored],
) -> Result<(), HandlerError> {
    let (Some(first), Some(last)) = (chain.first(), chain.last()) else {
        return Ok(());
    };
    let Some(staging) = last.staging_sha().cloned() else {
        return Ok(());
    };
    let url = match last.leader().and_then(|e| e.build_id) {
        Some(id) => inner.store.build(id).await?.and_then(|b| b.url),
        None => None,
    };
    if staging::api_merge(ctx) {
        // Serial only (a parallel queue is refused at start without staging refs).
        return match first.leader() {
            Some(e) => staging::land_through_api(inner, ctx, e, url.as_deref()).await,
            None => Ok(()),
        };
    }
    let p = &ctx.provider;
    let tip = p.branch_tip(ctx.repo, target).await.map_err(backend(p))?;
    // Resume after a crash: the target may already be at one of the chain's commits.
    if let Some(k) = chain.iter().position(|c| tip.as_ref() == c.staging_sha()) {
        return landed(inner, ctx, target, &chain[..=k], url.as_deref()).await;
    }
    if tip.as_ref() != first.base_sha() {
        return target_moved(inner, ctx, all).await;
    }
    for c in chain {
        for e in &c.members {
            if !staging::rules_hold(inner, ctx, e).await? {
                return Ok(());
            }
        }
    }
    set_status(
        inner,
        ctx,
        &staging,
        BuildContext::Merge,
        CommitState::Success,
        "staging build passed",
        url.as_deref(),
    )
    .await?;
    // The fast-forward is a compare-and-swap at the provider; checking the lease first keeps a
    // replica that lost it from even trying.
    crate::leases::ensure_held(inner)?;
    match p.fast_forward(ctx.repo, target, &staging).await {
        Ok(FastForward::Done) => landed(inner, ctx, target, chain, url.as_deref()).await,
        Ok(FastForward::Moved) => target_moved(inner, ctx, all).await,
        Err(greg_core::Error::Refused { message }) => {
            tracing::warn!(candidate = last.id, target, %message, "The provider refused the fast-forward");
            refused(inner, ctx, chain, &message).await
        }
        Err(e) => Err(backend(p)(e)),
    }
}

/// The target reached the commit of `chain`'s last candidate: every entry of the chain is
/// Landed, with `greg/merge` success on its head, the "merged" comment naming the commit of
/// its own candidate, and the staging refs deleted; one transaction.
async fn landed(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    target: &str,
    chain: &[&Stored],
    url: Option<&str>,
) -> Result<(), HandlerError> {
    let mut plan = Plan::default();
    let mut moves = Vec::new();
    for c in chain {
        let Some(staging) = c.staging_sha() else {
            continue;
        };
        cleanup(inner, ctx, c, BuildRunState::Success, &mut plan).await?;
        for e in &c.members {
            let desc = format!("merged into {} as {}", e.target, staging.short());
            exits::finish_status(&mut plan, ctx, e, CommitState::Success, &desc, url);
            let body = texts::landed(&e.head_sha, &e.target, staging, url);
            plan.comment(ctx.repo, key(e, "finish", "comment"), e.pr, body);
            let change = QueueChange {
                reason: Some(format!("landed as {staging}")),
                ..Default::default()
            };
            moves.push((e.clone(), QueueEvent::FastForwarded, change));
        }
    }
    let landed = moves.len();
    if exits::record_many(inner, ctx, moves, plan).await?.is_some() {
        tracing::info!(
            target,
            candidates = chain.len(),
            pull_requests = landed,
            "Landed"
        );
        adapt(inner, ctx, target, |w, s| w.on_landed(s, chain.len()));
    }
    Ok(())
}

/// The target moved away from what the candidates were built on: every candidate in flight
/// is thrown away and made again on the new tip, at the same places in the queue.
async fn target_moved(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    all: &[Stored],
) -> Result<(), HandlerError> {
    for c in all {
        reset(inner, ctx, c, "the target moved").await?;
    }
    Ok(())
}

/// The provider refused the fast-forward for good (a protected branch): every entry of the
/// chain fails with the provider's reason, in one transaction, and the queue moves on.
async fn refused(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    chain: &[&Stored],
    message: &str,
) -> Result<(), HandlerError> {
    let mut plan = Plan::default();
    let mut moves = Vec::new();
    let reason = format!("{} refused the fast-forward: {message}", ctx.provider);
    for c in chain {
        cleanup(inner, ctx, c, BuildRunState::Aborted, &mut plan).await?;
        for e in &c.members {
            exits::finish_status(&mut plan, ctx, e, CommitState::Failure, &reason, None);
            let body = texts::landing_refused(&e.head_sha, &e.target, message);
            plan.comment(ctx.repo, key(e, "finish", "comment"), e.pr, body);
            let change = QueueChange {
                reason: Some(reason.clone()),
                ..Default::default()
            };
            moves.push((e.clone(), QueueEvent::Refused, change));
        }
    }
    exits::record_many(inner, ctx, moves, plan).await?;
    Ok(())
}

/// A push of `head` to `target`. A commit the pipeline knows (a candidate's base or staging
/// commit: greg's own landing) changes nothing; any other push makes the candidates being
/// built stale: they are thrown away and made again on the new tip. Candidates being staged
/// are being made by this lane right now, and green ones check the tip before landing.
pub(crate) async fn on_target_push(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    target: &str,
    head: &Sha,
) -> Result<(), HandlerError> {
    let entries = inner.store.queue(ctx.repo, target).await?;
    let candidates = in_flight(&entries);
    let ours = candidates
        .iter()
        .any(|c| c.base_sha() == Some(head) || c.staging_sha() == Some(head));
    if ours {
        return Ok(());
    }
    let building: Vec<&Stored> = candidates
        .iter()
        .filter(|c| c.state() == QueueState::Building)
        .collect();
    for c in building {
        reset(inner, ctx, c, "the target moved").await?;
    }
    Ok(())
}

/// `StagingResult` of a merge candidate: green moves it to Landing; anything else is left to
/// the plan (blame at the head, or wait for the candidates ahead).
pub(crate) async fn on_result(
    inner: &Inner,
    ctx: &RepoCtx<'_>,
    entry: &QueueEntry,
    build_id: i64,
    result: &StagingResult,
) -> Result<(), HandlerError> {
    match result {
        StagingResult::Green if entry.state == QueueState::Building => {
            on_green(inner, ctx, entry, build_id).await
        }
        _ => {
            staging::kick(inner, ctx);
            Ok(())
        }
    }
}
