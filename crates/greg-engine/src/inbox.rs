//! The durable inbox writer: group commit for accepted deliveries, and for finished ones.
//!
//! Every accepted delivery is written to the store before the HTTP 202 goes out. Writing each
//! one in its own transaction caps ingestion at the disk's fsync rate, so callers hand their
//! delivery to one writer task, which drains whatever has queued up meanwhile (up to
//! [`MAX_BATCH`]) and writes the lot in one transaction, then answers each caller. Under light
//! load a batch is one delivery and the latency is one commit; under heavy load the commit cost
//! is shared.

use greg_store::{Inserted, NewDelivery, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Largest batch written in one transaction.
pub const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Inserted, String>>;

/// Handle to the writer task. Cloning is cheap.
#[derive(Clone)]
pub struct Inbox {
    tx: mpsc::Sender<(NewDelivery, Reply)>,
}

impl Inbox {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        tokio::spawn(writer(store, rx));
        Self { tx }
    }

    /// Writes one delivery durably; returns its sequence number or `Duplicate`.
    ///
    /// Errors: the store failed (the message is the store's, without credentials) or the
    /// writer task is gone (shutting down).
    pub async fn write(&self, delivery: NewDelivery) -> Result<Inserted, String> {
        let (reply, wait) = oneshot::channel();
        self.tx
            .send((delivery, reply))
            .await
            .map_err(|_| "the inbox writer has stopped".to_owned())?;
        wait.await
            .map_err(|_| "the inbox writer has stopped".to_owned())?
    }
}

async fn writer(store: Store, mut rx: mpsc::Receiver<(NewDelivery, Reply)>) {
    let mut batch: Vec<NewDelivery> = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<Reply> = Vec::with_capacity(MAX_BATCH);
    while let Some((d, r)) = rx.recv().await {
        batch.push(d);
        replies.push(r);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((d, r)) => {
                    batch.push(d);
                    replies.push(r);
                }
                Err(_) => break,
            }
        }
        let result: Result<Vec<Inserted>, StoreError> = store.insert_deliveries(&batch).await;
        match result {
            Ok(outcomes) if outcomes.len() == replies.len() => {
                for (r, o) in replies.drain(..).zip(outcomes) {
                    let _ = r.send(Ok(o));
                }
            }
            Ok(outcomes) => {
                let msg = format!(
                    "store answered {} outcomes for {} deliveries",
                    outcomes.len(),
                    replies.len()
                );
                tracing::error!(error = %msg, "Inbox batch write returned a wrong count");
                for r in replies.drain(..) {
                    let _ = r.send(Err(msg.clone()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = batch.len(), "Inbox batch write failed");
                let msg = e.to_string();
                for r in replies.drain(..) {
                    let _ = r.send(Err(msg.clone()));
                }
            }
        }
        batch.clear();
    }
}

/// Marks processed deliveries `done` in batches: lanes hand over the sequence number and go on
/// with their next delivery, and one task commits whatever has queued up meanwhile (up to
/// [`MAX_BATCH`]) in one transaction. A crash before the commit runs those deliveries again
/// after the restart (at least once, as always: every handler step is idempotent).
#[derive(Clone)]
pub(crate) struct Finisher {
    tx: mpsc::UnboundedSender<i64>,
}

impl Finisher {
    /// Starts the task; `committed` is called with each batch after its commit (`Ok`) or after
    /// the store refused it (`Err`: the deliveries stay pending and run again).
    pub(crate) fn start(
        store: Store,
        now_ms: impl Fn() -> i64 + Send + 'static,
        committed: impl Fn(&[i64], bool) + Send + 'static,
    ) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<i64>();
        tokio::spawn(async move {
            let mut seqs: Vec<i64> = Vec::with_capacity(MAX_BATCH);
            while let Some(seq) = rx.recv().await {
                seqs.push(seq);
                while seqs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(seq) => seqs.push(seq),
                        Err(_) => break,
                    }
                }
                let result = store.finish_done(&seqs, now_ms()).await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, batch = seqs.len(), "Could not mark processed deliveries done; they run again");
                }
                committed(&seqs, result.is_ok());
                seqs.clear();
            }
        });
        Self { tx }
    }

    /// Queues `seq` to be marked done. False when the task is gone (shutting down).
    pub(crate) fn done(&self, seq: i64) -> bool {
        self.tx.send(seq).is_ok()
    }
}
