//! Operations of a running engine (SPEC §11): graceful shutdown, retention of processed
//! deliveries, and the dead letters' admin side (list, redeliver).
//!
//! Shutdown: [`Engine::shutdown`] stops the lanes from starting further work, waits (at most
//! the grace period) for the steps already running, then closes the store. Nothing accepted
//! is lost: a delivery is in the store before its 202, stays `pending` until a lane finishes
//! it, and the next start resumes every pending delivery, so work queued behind the running
//! steps simply runs then. A step cut off by the grace period is redone from the start on
//! the next run (every handler step is idempotent or re-checks what is done).

use crate::{Engine, EngineError, Inner, retries};
use greg_store::{FailedDelivery, Redelivery};
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often processed deliveries older than `server.delivery_retention_days` are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// What [`Engine::redeliver`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivered {
    /// The failed delivery is pending again and queued to run now.
    Queued,
    /// No delivery has this sequence number (or it was pruned).
    NotFound,
    /// The delivery has not failed (it is pending, waiting for a retry, or done).
    NotFailed,
}

impl Engine {
    /// Stops the engine gracefully: lanes start no further work (deliveries not started stay
    /// pending in the store for the next start), timers stop, the steps already running get
    /// at most `grace` to finish, then the store is closed. Returns true when every running
    /// step finished within `grace`. Call it after the HTTP server stopped accepting.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.inner.stopping.store(true, Ordering::SeqCst);
        let drained = tokio::time::timeout(grace, self.wait_idle()).await.is_ok();
        if drained {
            tracing::info!("Engine drained; closing the store");
        } else {
            tracing::warn!(
                grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                "Steps still running after the shutdown grace; they run again on the next start"
            );
        }
        if drained {
            // Every step ended: other replicas may take the repositories over at once.
            self.inner.leases.release_all(&self.inner).await;
        }
        self.inner.store.close().await;
        drained
    }

    /// Deletes processed deliveries older than `server.delivery_retention_days` (failed ones
    /// are kept) and returns how many; what the pruner does every hour.
    ///
    /// Errors: the store failed.
    pub async fn prune_deliveries(&self) -> Result<u64, EngineError> {
        prune(&self.inner).await
    }

    /// Runs the deliveries whose scheduled retry is due now (what the retry timer does every
    /// second; tests on a manual clock call it after moving the clock).
    pub async fn run_due_retries(&self) {
        retries::run_due(&self.inner).await;
    }

    /// Up to `limit` failed deliveries (dead letters), oldest first.
    ///
    /// Errors: the store failed.
    pub async fn failed_deliveries(&self, limit: i64) -> Result<Vec<FailedDelivery>, EngineError> {
        self.inner
            .store
            .failed_deliveries(limit)
            .await
            .map_err(|e| EngineError::Store(e.to_string()))
    }

    /// Runs failed delivery `seq` again: it becomes pending with a fresh retry window and is
    /// queued to its lane.
    ///
    /// Errors: the store failed.
    pub async fn redeliver(&self, seq: i64) -> Result<Redelivered, EngineError> {
        let now = self.inner.now_ms();
        match self
            .inner
            .store
            .redeliver(seq, now)
            .await
            .map_err(|e| EngineError::Store(e.to_string()))?
        {
            Redelivery::Reset(d) => {
                tracing::info!(seq, source = %d.source, event = %d.event, "Redelivering a failed delivery");
                self.inner.claims.forget(seq);
                retries::submit_stored(&self.inner, d).await;
                Ok(Redelivered::Queued)
            }
            Redelivery::NotFound => Ok(Redelivered::NotFound),
            Redelivery::NotFailed => Ok(Redelivered::NotFailed),
        }
    }
}

async fn prune(inner: &Inner) -> Result<u64, EngineError> {
    let days = i64::try_from(inner.config.server.delivery_retention_days).unwrap_or(i64::MAX);
    let before = inner
        .now_ms()
        .saturating_sub(days.saturating_mul(24 * 3600 * 1000));
    let pruned = inner
        .store
        .prune_deliveries(before)
        .await
        .map_err(|e| EngineError::Store(e.to_string()))?;
    if pruned > 0 {
        tracing::info!(
            pruned,
            days,
            "Pruned processed deliveries past their retention"
        );
    }
    prune_reports(inner).await?;
    Ok(pruned)
}

/// Deletes reports, their metadata files and settled report-comment rows older than
/// `server.report_retention_days` (SPEC §8).
async fn prune_reports(inner: &Inner) -> Result<(), EngineError> {
    let days = inner.config.server.report_retention_days;
    let now = u64::try_from(inner.now_ms()).unwrap_or(0);
    let before = now.saturating_sub(days.saturating_mul(24 * 3600 * 1000));
    let pruned = inner
        .store
        .prune_reports(before)
        .await
        .map_err(|e| EngineError::Store(e.to_string()))?;
    if pruned != greg_store::PrunedReports::default() {
        tracing::info!(
            reports = pruned.reports,
            metadata = pruned.metadata,
            comments = pruned.comments,
            days,
            "Pruned reports past their retention"
        );
    }
    if let Some(files) = inner.report_files.get() {
        // Objects carry their expiry (greg-notify); one without it goes by its age.
        let rule = greg_notify::PruneRule::Expired {
            retention: files.retention,
        };
        let now = chrono::DateTime::from_timestamp_millis(inner.now_ms()).unwrap_or_default();
        match files.store.prune(rule, now).await {
            Ok(done) if done.deleted > 0 => tracing::info!(
                examined = done.examined,
                deleted = done.deleted,
                store = %files.store,
                "Pruned report files past their expiry"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "Pruning report files failed; the next run retries")
            }
        }
    }
    Ok(())
}

/// Prunes at start and every [`PRUNE_INTERVAL`] until the engine stops.
pub(crate) async fn pruner(inner: Weak<Inner>) {
    loop {
        {
            let Some(inner) = inner.upgrade() else { return };
            if inner.is_stopping() {
                return;
            }
            if let Err(e) = prune(&inner).await {
                tracing::error!(error = %e, "Pruning processed deliveries failed; the next run retries");
            }
        }
        tokio::time::sleep(PRUNE_INTERVAL).await;
    }
}
