//! Lanes: serial processing per repository, concurrency across repositories, retries, and the
//! periodic build poller.

use crate::Inner;
use crate::handlers::{self, HandlerError};
use greg_core::{BuildUpdate, Event, RepoName};
use greg_store::DeliveryOutcome;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;
use tracing::Instrument;

/// One unit of work for a lane.
#[derive(Debug)]
pub(crate) enum Work {
    /// A stored delivery.
    Delivery {
        seq: i64,
        source: String,
        /// Boxed: events are large and most work items are small.
        event: Box<Event>,
    },
    /// Examine one active build (follow its queue item, poll it, time it out).
    Poll { build_id: i64 },
    /// COMPLETED arrived and FINALIZED did not follow within the grace period.
    CompletedGrace { build_id: i64, update: BuildUpdate },
}

/// Routes work to lanes in arrival order.
pub(crate) async fn dispatcher(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Work>) {
    let mut lanes: HashMap<String, mpsc::UnboundedSender<Work>> = HashMap::new();
    while let Some(work) = rx.recv().await {
        let key = match lane_key(&inner, &work).await {
            Some(k) => k,
            None => {
                // Not tied to any repository greg knows: finish it here.
                handlers::finish_unrouted(&inner, work).await;
                inner.end();
                continue;
            }
        };
        let lane = lanes.entry(key.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(lane(inner.clone(), key.clone(), rx));
            tx
        });
        if let Err(mpsc::error::SendError(work)) = lane.send(work) {
            tracing::error!(lane = %key, ?work, "Lane has stopped; work stays in the store");
            inner.end();
        }
    }
}

async fn lane_key(inner: &Inner, work: &Work) -> Option<String> {
    match work {
        Work::Delivery { event, source, .. } => match event.as_ref() {
            Event::Build(update) => handlers::find_build(inner, source, update)
                .await
                .map(|b| b.repo.to_string()),
            other => other.repository().map(RepoName::to_string),
        },
        Work::Poll { build_id } | Work::CompletedGrace { build_id, .. } => inner
            .store
            .build(*build_id)
            .await
            .ok()
            .flatten()
            .map(|b| b.repo.to_string()),
    }
}

async fn lane(inner: Arc<Inner>, key: String, mut rx: mpsc::UnboundedReceiver<Work>) {
    while let Some(work) = rx.recv().await {
        let span = match &work {
            Work::Delivery { seq, source, event } => {
                tracing::info_span!("delivery", seq, source = %source, repo = %key, event = %event.name())
            }
            Work::Poll { build_id } => tracing::info_span!("poll", build_id, repo = %key),
            Work::CompletedGrace { build_id, .. } => {
                tracing::info_span!("completed_grace", build_id, repo = %key)
            }
        };
        run(&inner, work).instrument(span).await;
        inner.end();
    }
}

async fn run(inner: &Inner, work: Work) {
    match work {
        Work::Delivery { seq, source, event } => {
            let mut attempt = 0;
            let outcome = loop {
                attempt += 1;
                match handlers::handle(inner, &source, &event).await {
                    Ok(()) => break DeliveryOutcome::Done,
                    Err(e) if e.is_retryable() && attempt < inner.options.max_attempts => {
                        let delay = e
                            .retry_after()
                            .unwrap_or(inner.options.retry_delay * 2u32.pow(attempt - 1));
                        tracing::warn!(error = %e, attempt, ?delay, "Retrying delivery after a transient failure");
                        tokio::time::sleep(delay).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, attempt, "Delivery failed");
                        break DeliveryOutcome::Failed {
                            error: e.to_string(),
                        };
                    }
                }
            };
            if let Err(e) = inner
                .store
                .finish_delivery(seq, outcome, inner.now_ms())
                .await
            {
                tracing::error!(error = %e, "Could not mark the delivery finished; it will run again after a restart");
            }
        }
        Work::Poll { build_id } => {
            if let Err(e) = handlers::poll_build(inner, build_id).await {
                log_handler_error(&e, "Polling a build failed; next poll retries");
            }
        }
        Work::CompletedGrace { build_id, update } => {
            if let Err(e) = handlers::completed_grace(inner, build_id, &update).await {
                log_handler_error(
                    &e,
                    "Acting on a COMPLETED callback failed; polling will retry",
                );
            }
        }
    }
}

fn log_handler_error(e: &HandlerError, msg: &str) {
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
        poll_once(&inner).await;
    }
}
