//! Lanes: serial processing per repository, concurrency across repositories, quick in-lane
//! retries (durable ones are `retries.rs`), and the periodic build poller and reconciler.

use crate::handlers::{self, HandlerError};
use crate::{Inner, redelivery, retries};
use backon::{ExponentialBuilder, Retryable};
use greg_core::{BuildUpdate, Event, RepoName};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// One unit of work for a lane.
#[derive(Debug)]
pub(crate) enum Work {
    /// A stored delivery.
    Delivery {
        seq: i64,
        source: String,
        /// Failed attempts recorded before this run (they set the next retry's delay).
        attempts: i64,
        /// Boxed: events are large and most work items are small.
        event: Box<Event>,
    },
    /// Examine one active build (follow its queue item, poll it, time it out).
    Poll { build_id: i64 },
    /// COMPLETED arrived and FINALIZED did not follow within the grace period.
    CompletedGrace { build_id: i64, update: BuildUpdate },
    /// Re-read a repository's open pull requests and queue and repair drift.
    Reconcile { repo: RepoName },
    /// Drive a repository's merge queues: resume in-flight entries, start what can start.
    Queue { repo: RepoName },
}

/// Routes work to lanes in arrival order, for the repositories whose lease this process holds
/// or can take (`leases.rs`); work for a repository another replica holds is dropped here and
/// stays in the store for it (a delivery stays pending).
pub(crate) async fn dispatcher(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Work>) {
    let mut lanes: HashMap<String, mpsc::UnboundedSender<Work>> = HashMap::new();
    while let Some(work) = rx.recv().await {
        let repo = match lane_repo(&inner, &work).await {
            Some(r) => r,
            None => {
                // Not tied to any repository greg knows: finish it here.
                handlers::finish_unrouted(&inner, work).await;
                inner.end();
                continue;
            }
        };
        if !inner.leases.acquire(&inner, &repo).await {
            drop_work(&inner, &work);
            inner.end();
            continue;
        }
        let key = repo.key();
        let lane = lanes.entry(key.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(lane(inner.clone(), key.clone(), rx));
            tx
        });
        if let Err(mpsc::error::SendError(work)) = lane.send(work) {
            tracing::error!(lane = %key, ?work, "Lane has stopped; work stays in the store");
            drop_work(&inner, &work);
            inner.end();
        }
    }
}

/// Work that will not run here: a delivery is given back (it stays pending in the store, for
/// the replica holding its repository or a later scan); other work is redone by the holder's
/// timers.
fn drop_work(inner: &Inner, work: &Work) {
    if let Work::Delivery { seq, .. } = work {
        inner.claims.release(*seq);
    }
}

/// The repository whose lane runs a work item ([`RepoName::key`] names the lane,
/// case-insensitively, so `Acme/Demo` and `acme/demo` are processed in one lane).
async fn lane_repo(inner: &Inner, work: &Work) -> Option<RepoName> {
    match work {
        Work::Delivery { event, source, .. } => match event.as_ref() {
            Event::Build(update) => handlers::find_build(inner, source, update)
                .await
                .map(|b| b.repo),
            other => other.repository().cloned(),
        },
        Work::Reconcile { repo } | Work::Queue { repo } => Some(repo.clone()),
        Work::Poll { build_id } | Work::CompletedGrace { build_id, .. } => inner
            .store
            .build(*build_id)
            .await
            .ok()
            .flatten()
            .map(|b| b.repo),
    }
}

async fn lane(inner: Arc<Inner>, key: String, mut rx: mpsc::UnboundedReceiver<Work>) {
    while let Some(work) = rx.recv().await {
        let span = match &work {
            Work::Delivery {
                seq, source, event, ..
            } => {
                tracing::info_span!("delivery", seq, source = %source, repo = %key, event = %event.name())
            }
            Work::Poll { build_id } => tracing::info_span!("poll", build_id, repo = %key),
            Work::CompletedGrace { build_id, .. } => {
                tracing::info_span!("completed_grace", build_id, repo = %key)
            }
            Work::Reconcile { .. } => tracing::info_span!("reconcile", repo = %key),
            Work::Queue { .. } => tracing::info_span!("queue", repo = %key),
        };
        // Shutting down: only the steps already running finish; queued work stays in the store
        // (deliveries stay pending) or is redone by the next start (polls, reconciliation).
        // Without the lease (run out, or taken over) nothing runs here either: the holder
        // redoes it from the store.
        match inner.leases.fence(&key, &inner.holder) {
            Some(fence) if !inner.is_stopping() => {
                fence
                    .scope(Box::pin(run(&inner, work)).instrument(span))
                    .await;
            }
            Some(_) => drop_work(&inner, &work),
            None => {
                tracing::debug!(lane = %key, "No lease on the repository's lane; work left to its holder");
                drop_work(&inner, &work);
            }
        }
        inner.end();
    }
}

async fn run(inner: &Inner, work: Work) {
    match work {
        Work::Delivery {
            seq,
            source,
            attempts,
            event,
        } => {
            // Every handler step is idempotent or re-checks what is already done, so a
            // delivery whose handling failed half-way is simply handled again.
            let started = std::time::Instant::now();
            // Boxed: a handler's future is large (every step's state), and each attempt would
            // otherwise be moved by value into the retry loop (memcpy showed in the profile).
            let (result, tries) = with_retries(inner, "delivery", || {
                Box::pin(handlers::handle(inner, &source, &event))
            })
            .await;
            inner
                .metrics
                .delivery_seconds
                .observe(started.elapsed().as_secs_f64());
            crate::metrics::Metrics::outcome(
                &inner.metrics.deliveries_processed,
                if result.is_ok() { "done" } else { "error" },
            );
            match result {
                Ok(()) => {
                    // Marked done in a batch with others; the lane goes on meanwhile. The batch
                    // counts as work in flight until it is committed.
                    inner.begin();
                    if !inner.finisher.done(seq) {
                        tracing::error!(
                            "The finisher has stopped; the delivery runs again after a restart"
                        );
                        inner.claims.release(seq);
                        inner.end();
                    }
                }
                Err(e) if e.is_lease_lost() => {
                    // Another replica took the repository over: the delivery is its now.
                    tracing::warn!(error = %e, "Lost the repository's lease mid-step; the replica that took over runs the delivery");
                    lease_lost(inner, &e);
                    inner.claims.release(seq);
                }
                Err(e) => {
                    retries::on_failure(inner, seq, &source, &event, attempts, tries, &e).await;
                    inner.claims.finish(seq);
                }
            }
        }
        Work::Poll { build_id } => {
            if let Err(e) = handlers::poll_build(inner, build_id).await {
                log_handler_error(inner, &e, "Polling a build failed; next poll retries");
            }
        }
        Work::CompletedGrace { build_id, update } => {
            if let Err(e) = handlers::completed_grace(inner, build_id, &update).await {
                log_handler_error(
                    inner,
                    &e,
                    "Acting on a COMPLETED callback failed; polling will retry",
                );
            }
        }
        Work::Reconcile { repo } => {
            if let Err(e) = handlers::reconcile(inner, &repo).await {
                log_handler_error(inner, &e, "Reconciliation failed; the next run retries");
            }
            retries::post_due_notices(inner, &repo).await;
            redelivery::redeliver_missed(inner, &repo).await;
        }
        Work::Queue { repo } => {
            let (result, _) = with_retries(inner, "merge queue", || {
                Box::pin(handlers::drive_queue(inner, &repo))
            })
            .await;
            if let Err(e) = result {
                log_handler_error(
                    inner,
                    &e,
                    "Driving the merge queue failed; reconciliation retries",
                );
            }
        }
    }
}

/// The repositories reconciliation visits: those with active queue entries or active builds,
/// and every configured `organizations` × exact `names` pair (regex names cannot be listed
/// without a provider call per organization; their repositories join once greg has seen them).
async fn known_repos(inner: &Inner) -> Vec<RepoName> {
    let mut repos: Vec<RepoName> = Vec::new();
    let mut add = |r: RepoName| {
        if !repos.contains(&r) {
            repos.push(r);
        }
    };
    match inner.store.active_queue_entries().await {
        Ok(entries) => entries.into_iter().for_each(|e| add(e.repo)),
        Err(e) => tracing::error!(error = %e, "Cannot list the merge queue"),
    }
    match inner.store.active_builds().await {
        Ok(builds) => builds.into_iter().for_each(|b| add(b.repo)),
        Err(e) => tracing::error!(error = %e, "Cannot list active builds"),
    }
    for r in &inner.config.repos {
        for org in &r.organizations {
            for name in &r.names {
                if let greg_config::NamePattern::Exact(n) = name {
                    add(RepoName::new(org.as_str(), n.as_str()));
                }
            }
        }
    }
    repos
}

/// Queues a reconciliation of every known repository.
pub(crate) async fn reconcile_once(inner: &Inner) {
    for repo in known_repos(inner).await {
        inner.submit(Work::Reconcile { repo });
    }
}

/// Reconciles every `reconcile_interval` until the engine is dropped.
pub(crate) async fn reconciler(inner: Weak<Inner>) {
    let interval = match inner.upgrade() {
        Some(i) => i.config.server.reconcile_interval,
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.is_stopping() {
            return;
        }
        reconcile_once(&inner).await;
    }
}

/// The longest wait a lane spends between two quick attempts. A failure whose `Retry-After`
/// asks for more ends the quick attempts at once: a rate limit reset minutes away must not
/// stall a repository's lane; the delivery's retry is scheduled durably instead
/// (`retries.rs`), and a merge-queue step is picked up by reconciliation.
const QUICK_RETRY_LIMIT: Duration = Duration::from_secs(5);

/// Runs `work` until it succeeds, fails for good, or `max_attempts` quick attempts are used:
/// exponential backoff with jitter, a server's `Retry-After` when it named one of at most
/// [`QUICK_RETRY_LIMIT`]. Returns the last result and the number of attempts made.
async fn with_retries<F, Fut>(inner: &Inner, what: &str, work: F) -> (Result<(), HandlerError>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), HandlerError>>,
{
    let mut attempt: u32 = 1;
    let mut work = work;
    // Each attempt first checks the lane's lease: a replica that stalled between two attempts
    // and lost it makes no further call.
    let attempt_held = || {
        let held = crate::leases::ensure_held(inner);
        let step = work();
        async move {
            held?;
            step.await
        }
    };
    let result = attempt_held
        .retry(backoff(inner))
        .when(|e: &HandlerError| {
            e.is_retryable() && e.retry_after().is_none_or(|d| d <= QUICK_RETRY_LIMIT)
        })
        .adjust(|e: &HandlerError, next| {
            next.map(|d| e.retry_after().unwrap_or(d).min(QUICK_RETRY_LIMIT))
        })
        .notify(|e: &HandlerError, delay| {
            tracing::warn!(error = %e, attempt, ?delay, "Retrying the {what} after a transient failure");
            attempt += 1;
        })
        .await;
    (result, attempt)
}

/// Exponential backoff with jitter from `retry_delay`, `max_attempts` attempts in all.
fn backoff(inner: &Inner) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(inner.options.retry_delay)
        .with_max_delay(QUICK_RETRY_LIMIT)
        .with_max_times(inner.options.max_attempts.saturating_sub(1) as usize)
        .with_jitter()
}

/// Forgets the lease a fenced write found lost, so the lane stops at once.
fn lease_lost(inner: &Inner, e: &HandlerError) {
    if let HandlerError::Store(greg_store::StoreError::Fenced { repo_key, .. }) = e {
        inner.leases.lost(repo_key);
    }
}

fn log_handler_error(inner: &Inner, e: &HandlerError, msg: &str) {
    if e.is_lease_lost() {
        lease_lost(inner, e);
        tracing::warn!(error = %e, "Lost the repository's lease; the replica that took over carries on");
        return;
    }
    if e.is_retryable() {
        tracing::warn!(error = %e, "{msg}");
    } else {
        tracing::error!(error = %e, "{msg}");
    }
}

/// Queues a poll of every active build.
pub(crate) async fn poll_once(inner: &Inner) {
    match inner.store.active_builds().await {
        Ok(builds) => {
            for b in builds {
                inner.submit(Work::Poll { build_id: b.id });
            }
        }
        Err(e) => tracing::error!(error = %e, "Cannot list active builds"),
    }
}

/// Polls active builds every `poll_interval` until the engine is dropped.
pub(crate) async fn poller(inner: Weak<Inner>) {
    let interval = match inner.upgrade() {
        Some(i) => i.options.poll_interval,
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.is_stopping() {
            return;
        }
        poll_once(&inner).await;
    }
}
