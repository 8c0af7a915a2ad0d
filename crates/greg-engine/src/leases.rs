//! Replicas (SPEC §11): which repositories' lanes run in this process, under a lease in the
//! store, and which deliveries this process has in hand.
//!
//! Design note.
//! - Properties: a repository's lane runs on one replica at a time. The dispatcher routes work
//!   for a repository only while this process holds its lease ([`Leases::fence`]), asking the
//!   store for it (`Store::acquire_lease`) when it has none; work for a repository another
//!   live replica holds is dropped here and stays in the store (a delivery stays `pending`)
//!   for the holder. Every step a lane runs carries the lease's [`Fence`], so the store refuses
//!   its queue-state writes once another replica has taken over (`greg_store::leases`).
//! - Validity: a lease counts as held locally until `ttl - ttl/4` after the *start* of the
//!   last successful renewal (measured on the monotonic clock), so this process stops acting
//!   before the store lets anyone else take over, with a margin for clock drift between
//!   replicas. The renewer runs every `ttl/3`; a renewal that fails leaves the leases to run
//!   out locally; one that no longer returns a lease means it was taken over.
//! - Pick-up: the replica that accepts a delivery processes it when it holds (or can take)
//!   the lease; otherwise the holder finds it once it is a second old, within one more
//!   [`EngineOptions::claim_interval`] (`Store::pending_seqs_of_holder`; younger ones are the
//!   accepting request's to hand over, in arrival order), and deliveries of repositories nobody holds, or
//!   whose holder died, are taken by whichever replica looks first
//!   (`Store::unleased_pending_repos`); so are expired leases with a queue in flight
//!   (`Store::expired_leases`), whose lanes resume from the stored state.
//! - Exactly once per process: [`Claims`] keeps the deliveries this process has queued or is
//!   running, and the ones it finished since the last scan began, so the accepting path and
//!   the scans never hand the same delivery to a lane twice.
//! - Races accepted: a replica paused between its last lease check and a call to the provider
//!   or builder makes that call after it lost the lease (the store writes that follow are
//!   refused); a fast-forward is a compare-and-swap at the provider, so it cannot land twice,
//!   but a comment could be posted twice in that window. Lease expiry is judged on each
//!   replica's clock; they must agree to well under `ttl/4`.
//!
//! [`EngineOptions::claim_interval`]: crate::EngineOptions::claim_interval

use crate::Inner;
use greg_core::RepoName;
use greg_store::{Fence, LeaseGrant};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

/// A lease this process holds.
#[derive(Debug, Clone)]
struct Held {
    epoch: i64,
    /// Acting under it stops at this instant unless a renewal moves it.
    valid_until: Instant,
}

/// The leases of this process, and what it knows of other replicas' leases.
#[derive(Debug)]
pub(crate) struct Leases {
    ttl: Duration,
    held: Mutex<HashMap<String, Held>>,
    /// Repositories another replica holds, with the instant its lease runs out unless it
    /// renews: no store call for them before then.
    busy: Mutex<HashMap<String, Instant>>,
}

impl Leases {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            held: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashMap::new()),
        }
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// How long a lease stays valid locally after the start of the renewal that granted it.
    fn local_validity(&self) -> Duration {
        self.ttl.saturating_sub(self.ttl / 4)
    }

    /// The fence of `key`'s lane when this process holds its lease now.
    pub(crate) fn fence(&self, key: &str, holder: &str) -> Option<Fence> {
        let held = self.held.lock().ok()?;
        let h = held.get(key)?;
        (h.valid_until > Instant::now()).then(|| Fence {
            repo_key: key.to_owned(),
            holder: holder.to_owned(),
            epoch: h.epoch,
        })
    }

    /// Records that the store granted `key`'s lease with `epoch` to a request sent at
    /// `asked`: valid here until [`local_validity`](Self::local_validity) after that.
    fn hold(&self, key: String, epoch: i64, asked: Instant) {
        if let Ok(mut held) = self.held.lock() {
            held.insert(
                key,
                Held {
                    epoch,
                    valid_until: asked + self.local_validity(),
                },
            );
        }
    }

    /// Forgets `key`'s lease: a write was fenced out (another replica took it over).
    pub(crate) fn lost(&self, key: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(key);
        }
    }

    /// The number of leases held now (for `/metrics`).
    pub(crate) fn held_count(&self) -> usize {
        let now = Instant::now();
        self.held
            .lock()
            .map(|h| h.values().filter(|l| l.valid_until > now).count())
            .unwrap_or(0)
    }

    /// True when this process holds `key`'s lease now.
    fn holds(&self, key: &str) -> bool {
        let now = Instant::now();
        self.held
            .lock()
            .is_ok_and(|held| held.get(key).is_some_and(|h| h.valid_until > now))
    }

    /// True when this process holds `repo`'s lease: held already, or taken from the store
    /// now because nobody else holds it. False when another replica holds it (or the store
    /// failed: the work stays in the store and is picked up later).
    pub(crate) async fn acquire(&self, inner: &Inner, repo: &RepoName) -> bool {
        let key = repo.key();
        if self.holds(&key) {
            return true;
        }
        let asked = Instant::now();
        if let Ok(mut busy) = self.busy.lock() {
            match busy.get(&key) {
                Some(until) if *until > asked => return false,
                Some(_) => {
                    busy.remove(&key);
                }
                None => {}
            }
        }
        let now_ms = inner.now_ms();
        match inner
            .store
            .acquire_lease(repo, &inner.holder, now_ms, self.ttl_ms())
            .await
        {
            Ok(LeaseGrant::Held(lease)) => {
                tracing::info!(repo = %repo, epoch = lease.epoch, "Took the lease of the repository's lane");
                self.hold(key, lease.epoch, asked);
                true
            }
            Ok(LeaseGrant::Busy { holder, expires_ms }) => {
                let left = u64::try_from(expires_ms.saturating_sub(now_ms)).unwrap_or(0);
                tracing::debug!(repo = %repo, %holder, left_ms = left, "Another replica holds the repository's lane");
                if let Ok(mut busy) = self.busy.lock() {
                    busy.insert(key, asked + Duration::from_millis(left));
                }
                false
            }
            Err(e) => {
                tracing::warn!(repo = %repo, error = %e, "Cannot take the lease of the repository's lane; the work stays in the store");
                false
            }
        }
    }

    /// Renews `repo`'s lease in the store now (this process holds it); forgets it when
    /// another replica has it.
    async fn acquire_again(&self, inner: &Inner, repo: &RepoName) {
        let key = repo.key();
        let asked = Instant::now();
        match inner
            .store
            .acquire_lease(repo, &inner.holder, inner.now_ms(), self.ttl_ms())
            .await
        {
            Ok(LeaseGrant::Held(lease)) => self.hold(key, lease.epoch, asked),
            Ok(LeaseGrant::Busy { .. }) => self.lost(&key),
            Err(e) => tracing::warn!(repo = %repo, error = %e, "Cannot renew the lease"),
        }
    }

    /// Renews every lease this process holds, in one store call; forgets the ones taken
    /// over meanwhile.
    async fn renew(&self, inner: &Inner) {
        let started = Instant::now();
        match inner
            .store
            .renew_leases(&inner.holder, inner.now_ms(), self.ttl_ms())
            .await
        {
            Ok(renewed) => {
                let renewed: HashMap<String, i64> =
                    renewed.into_iter().map(|l| (l.repo_key, l.epoch)).collect();
                if let Ok(mut held) = self.held.lock() {
                    held.retain(|key, h| match renewed.get(key) {
                        Some(epoch) if *epoch == h.epoch => {
                            h.valid_until = started + self.local_validity();
                            true
                        }
                        _ => {
                            tracing::warn!(repo = %key, epoch = h.epoch, "Lost the lease of the repository's lane: another replica took it over");
                            false
                        }
                    });
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot renew the leases; the lanes stop when they run out");
            }
        }
    }

    /// Gives every lease up (at shutdown, after the lanes drained), so other replicas take
    /// the repositories over at once.
    pub(crate) async fn release_all(&self, inner: &Inner) {
        if let Ok(mut held) = self.held.lock() {
            held.clear();
        }
        match inner
            .store
            .release_leases(&inner.holder, inner.now_ms())
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "Released the leases of this replica"),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot release the leases; they run out by themselves")
            }
        }
    }
}

/// Before a call that moves a target branch (a fast-forward, a pull-request merge) or any
/// other call the store cannot fence: `Err` (a lost lease) unless the running lane still holds
/// its repository's lease. Steps run outside a lane (no fence) pass.
pub(crate) fn ensure_held(inner: &Inner) -> Result<(), crate::handlers::HandlerError> {
    match Fence::current() {
        Some(fence)
            if inner.leases.fence(&fence.repo_key, &inner.holder).as_ref() != Some(&fence) =>
        {
            Err(crate::handlers::HandlerError::Store(
                greg_store::StoreError::Fenced {
                    repo_key: fence.repo_key,
                    epoch: fence.epoch,
                },
            ))
        }
        _ => Ok(()),
    }
}

/// The deliveries this process has in hand. See the module's design note.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    inner: Mutex<ClaimSets>,
}

#[derive(Debug, Default)]
struct ClaimSets {
    /// Queued to a lane or running.
    inflight: HashSet<i64>,
    /// Finished, with the scan generation current when they finished.
    finished: HashMap<i64, u64>,
    /// Bumped when a scan begins reading the store.
    generation: u64,
}

impl Claims {
    /// Takes `seq` for a lane; false when this process has it already (queued, running, or
    /// finished since the current scan began).
    pub(crate) fn claim(&self, seq: i64) -> bool {
        let Ok(mut c) = self.inner.lock() else {
            return true;
        };
        if c.inflight.contains(&seq) || c.finished.contains_key(&seq) {
            return false;
        }
        c.inflight.insert(seq);
        true
    }

    /// True when this process has `seq` in hand (queued, running, or finished since the
    /// current scan began).
    fn has(&self, seq: i64) -> bool {
        self.inner
            .lock()
            .map(|c| c.inflight.contains(&seq) || c.finished.contains_key(&seq))
            .unwrap_or(false)
    }

    /// Gives `seq` back unprocessed (its repository is held elsewhere, or the lane lost its
    /// lease): a later scan may take it again.
    pub(crate) fn release(&self, seq: i64) {
        if let Ok(mut c) = self.inner.lock() {
            c.inflight.remove(&seq);
        }
    }

    /// `seq` is finished (done, failed or scheduled for a retry): no longer pending without a
    /// schedule, so scans that begin from now on do not return it.
    pub(crate) fn finish(&self, seq: i64) {
        if let Ok(mut c) = self.inner.lock() {
            c.inflight.remove(&seq);
            let g = c.generation;
            c.finished.insert(seq, g);
        }
    }

    /// Forgets that `seq` finished: the store handed it out again (a retry fell due, an
    /// operator redelivered it), so it may be claimed at once.
    pub(crate) fn forget(&self, seq: i64) {
        if let Ok(mut c) = self.inner.lock() {
            c.finished.remove(&seq);
        }
    }

    /// A scan is about to read the store: returns its generation.
    fn begin_scan(&self) -> u64 {
        self.inner
            .lock()
            .map(|mut c| {
                c.generation += 1;
                c.generation
            })
            .unwrap_or(0)
    }

    /// The scan of generation `g` has handed out what it read: deliveries finished before it
    /// began cannot be in any later read.
    fn end_scan(&self, g: u64) {
        if let Ok(mut c) = self.inner.lock() {
            c.finished.retain(|_, f| *f >= g);
        }
    }
}

/// How old (by `received_ms`) a delivery must be before a scan takes it: the accepting
/// request hands a delivery to its lane within milliseconds of storing it.
const SCAN_AGE_MS: i64 = 1_000;
/// Most deliveries one scan reads per query.
const SCAN_LIMIT: i64 = 1000;
/// Most repositories without a live lease taken over per scan.
const TAKEOVER_LIMIT: i64 = 100;

/// Hands this process's lanes the deliveries other replicas accepted for the repositories it
/// holds, takes over repositories nobody holds, and resumes their queues.
async fn scan(inner: &Inner) {
    let generation = inner.claims.begin_scan();
    // Deliveries this process accepted are handed to their lane by the accepting request, in
    // arrival order; a scan that took one between its commit and that hand-off would queue it
    // behind later ones. So scans leave deliveries younger than `SCAN_AGE` alone.
    let now = inner.now_ms();
    let before = now.saturating_sub(SCAN_AGE_MS);
    let mut seqs = match inner
        .store
        .pending_seqs_of_holder(&inner.holder, before, SCAN_LIMIT)
        .await
    {
        Ok(seqs) => seqs,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read the pending deliveries; the next scan retries");
            Vec::new()
        }
    };
    match inner
        .store
        .unleased_pending_repos(now, TAKEOVER_LIMIT)
        .await
    {
        Ok(keys) => {
            for key in keys {
                match inner
                    .store
                    .pending_seqs_of_repo(&key, before, SCAN_LIMIT)
                    .await
                {
                    Ok(more) => seqs.extend(more),
                    Err(e) => {
                        tracing::warn!(repo = %key, error = %e, "Cannot read a repository's pending deliveries")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "Cannot list the deliveries nobody holds"),
    }
    // Only the deliveries this process does not have in hand are read whole (usually none:
    // the replica that accepted a delivery and holds its repository runs it at once).
    seqs.retain(|seq| !inner.claims.has(*seq));
    if !seqs.is_empty() {
        match inner.store.pending_deliveries_by_seq(&seqs).await {
            Ok(pending) => {
                for d in pending {
                    crate::retries::submit_stored(inner, d).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the pending deliveries; the next scan retries")
            }
        }
    }
    inner.claims.end_scan(generation);
    match inner.store.expired_leases(now, TAKEOVER_LIMIT).await {
        Ok(expired) => {
            for lease in expired {
                if lease.holder == inner.holder && inner.leases.holds(&lease.repo.key()) {
                    // Ours and still valid here (the store's clock ran ahead, or a renewal is
                    // due): renewing is enough, the lane never stopped.
                    inner.leases.acquire_again(inner, &lease.repo).await;
                    continue;
                }
                take_over(inner, lease.repo).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "Cannot list expired leases"),
    }
}

/// Takes `repo`'s lease if nobody holds it and resumes its lane from the stored state: the
/// queue driven, its active builds examined, the repository reconciled.
async fn take_over(inner: &Inner, repo: RepoName) {
    if !inner.leases.acquire(inner, &repo).await {
        return;
    }
    tracing::info!(repo = %repo, "Taking over a repository whose lease ran out");
    inner.submit(crate::dispatch::Work::Queue { repo: repo.clone() });
    match inner.store.active_builds().await {
        Ok(builds) => {
            for b in builds.into_iter().filter(|b| b.repo == repo) {
                inner.submit(crate::dispatch::Work::Poll { build_id: b.id });
            }
        }
        Err(e) => tracing::warn!(repo = %repo, error = %e, "Cannot list active builds"),
    }
    inner.submit(crate::dispatch::Work::Reconcile { repo });
}

/// Renews this process's leases every `ttl/3` and scans every `claim_interval`, until the
/// engine is dropped or stops.
pub(crate) async fn keeper(inner: Weak<Inner>) {
    let (ttl, interval) = match inner.upgrade() {
        Some(i) => (i.leases.ttl, i.options.claim_interval),
        None => return,
    };
    let renew_every = (ttl / 3).max(Duration::from_millis(10));
    let mut next_renewal = Instant::now() + renew_every;
    loop {
        tokio::time::sleep(interval.min(renew_every)).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.is_stopping() {
            return;
        }
        if Instant::now() >= next_renewal {
            next_renewal = Instant::now() + renew_every;
            inner.leases.renew(&inner).await;
        }
        scan(&inner).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Claims;

    #[test]
    fn a_delivery_reaches_a_lane_once_whoever_offers_it() {
        let claims = Claims::default();
        // Accepted here and read by a scan at the same time: one of the two gets it.
        assert!(claims.claim(7));
        assert!(!claims.claim(7));
        // Given back unprocessed (another replica holds its repository): free again.
        claims.release(7);
        assert!(claims.claim(7));
    }

    #[test]
    fn a_finished_delivery_is_not_taken_again_from_a_scan_that_read_it_pending() {
        let claims = Claims::default();
        assert!(claims.claim(1));
        // A scan begins reading the store; meanwhile the delivery finishes (its row may still
        // read pending in that scan's snapshot).
        let g = claims.begin_scan();
        claims.finish(1);
        assert!(!claims.claim(1), "the scan's stale row is refused");
        claims.end_scan(g);
        // Still refused for the next scan, which may also have begun before the commit.
        let g2 = claims.begin_scan();
        assert!(!claims.claim(1));
        claims.end_scan(g2);
        // A scan that began after the finish cannot read it pending: forgotten now (only a
        // store that hands it out again, a retry or a redelivery, offers it again).
        assert!(!claims.has(1));
        assert!(claims.claim(1));
    }

    #[test]
    fn a_retry_or_a_redelivery_may_take_a_finished_delivery_at_once() {
        let claims = Claims::default();
        assert!(claims.claim(3));
        claims.finish(3);
        assert!(!claims.claim(3));
        claims.forget(3);
        assert!(claims.claim(3));
    }
}
