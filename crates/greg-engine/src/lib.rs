//! greg-engine: the core router. It takes accepted deliveries from the durable inbox, runs them
//! serially per repository and concurrently across repositories, starts and follows builds,
//! applies the rules and relays every result back to the provider.
//!
//! Architecture invariant: no wire format and no HTTP framework here. Adapters come in as
//! `Arc<dyn Provider>` / `Arc<dyn Builder>`; time comes from an injected [`Clock`].
//!
//! Design note (delivery processing).
//! - Properties: an accepted delivery is processed at least once (it is in the store before the
//!   202) and its effects at most once per key: builds are keyed by (repository, sha, context)
//!   in the store, so a repeated delivery or a replay after a crash finds the existing build.
//! - Ordering: one lane (a task with a FIFO channel) per repository; the dispatcher assigns
//!   each delivery to its lane in sequence order. Build callbacks are routed to the lane of the
//!   repository their build record names. What holds: deliveries of one repository never run
//!   concurrently, and a repository's deliveries start in sequence order *except* after a
//!   failure: a delivery waiting for its durable retry (`retries.rs`) does not block the later
//!   deliveries of its repository, which run meanwhile; the retried one runs after them, in
//!   the lane, when due. Handlers re-read what they act on (heads, permissions, queue state),
//!   so a late "@greg please" acts on the pull request as it is then. After a restart, pending
//!   deliveries resume in sequence order and scheduled retries when due.
//! - Retries: a few quick attempts in the lane (seconds), then a durable schedule on the
//!   delivery row with capped exponential backoff until `server.retry_window` has passed; then
//!   the delivery is dead-lettered (`failed`, error kept) and a person whose command it carried
//!   is told (`retries.rs`). Shutdown and retention: `lifecycle.rs`.
//! - Replicas (`leases.rs`): a repository's lane runs only in the process holding its lease;
//!   deliveries another replica accepted reach it through the store, within one
//!   `claim_interval`. A processed delivery is marked done in a batch (`inbox::Finisher`): a
//!   crash before that commit runs it again after the restart.
//! - Races accepted: a crash between "build row written" and "Jenkins answered the trigger"
//!   leaves a `pending` build that recovery triggers again; Jenkins may then run it twice, and the
//!   second result wins. A callback for a build greg does not know is ignored.

pub mod api;
pub mod clock;
mod dispatch;
pub mod eta;
mod handlers;
pub mod inbox;
mod leases;
mod lifecycle;
mod metrics;
mod outbox;
pub mod pipeline;
mod project;
mod queue;
mod redelivery;
mod reports;
mod retries;
pub mod texts;
pub mod views;

pub use clock::{Clock, ManualClock, SystemClock};
pub use inbox::Inbox;
pub use lifecycle::Redelivered;
pub use metrics::METRICS_CONTENT_TYPE;
pub use reports::{
    JobView, MetadataView, REPORT_CONTEXT, ReportReceipt, ReportRefusal, ReportView,
};

use greg_config::Config;
use greg_core::{Builder, Event, Provider};
use greg_store::{Inserted, NewDelivery, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Tunables that are not part of config.yaml (tests shorten them).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How often active builds are examined (queue items followed, silent builds polled).
    pub poll_interval: Duration,
    /// After a COMPLETED callback, how long to wait for FINALIZED before acting on COMPLETED.
    pub completed_grace: Duration,
    /// Quick attempts, in the lane, of a delivery or merge-queue step that fails with a
    /// retryable error (delays of seconds at most). A delivery then gets durable retries until
    /// `server.retry_window` has passed (`retries.rs`).
    pub max_attempts: u32,
    /// First retry delay (doubles each attempt, quick and durable alike, up to 120 s).
    pub retry_delay: Duration,
    /// How often the outbox is checked for effects whose retry is due.
    pub effect_tick: Duration,
    /// How long a replica holds a pull request's report-comment lease without renewing it;
    /// after that another replica (or the sweeper) may render the comment.
    pub report_lease: Duration,
    /// How often report comments that are behind (a renderer failed or died) are looked for.
    pub report_sweep: Duration,
    /// How long a report waits before its comment is rendered, so that the jobs of a CI run
    /// that finish together make one edit rather than one each.
    pub report_debounce: Duration,
    /// How often this replica looks in the store for deliveries other replicas accepted for
    /// the repositories it holds, and for repositories whose lease ran out (SPEC §11).
    pub claim_interval: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(30),
            completed_grace: Duration::from_secs(60),
            max_attempts: 5,
            retry_delay: Duration::from_millis(500),
            effect_tick: Duration::from_secs(1),
            report_lease: Duration::from_secs(30),
            report_sweep: Duration::from_secs(10),
            report_debounce: Duration::from_secs(1),
            claim_interval: Duration::from_millis(500),
        }
    }
}

/// What [`Engine::accept`] did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored with this inbox sequence number and queued for processing.
    New(i64),
    /// The same delivery id was accepted before; nothing more happens.
    Duplicate,
}

/// Errors of the engine's own entry points.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed; the message never contains credentials.
    #[error("store: {0}")]
    Store(String),
    /// The event could not be serialized for the inbox (a bug).
    #[error("cannot serialize event: {0}")]
    Serialize(String),
}

/// A running engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: Arc<Config>,
    pub store: Store,
    pub providers: HashMap<String, Arc<dyn Provider>>,
    pub builders: HashMap<String, Arc<dyn Builder>>,
    pub clock: Arc<dyn Clock>,
    pub options: EngineOptions,
    inbox: Inbox,
    /// Marks processed deliveries done in batches (`inbox.rs`).
    pub(crate) finisher: inbox::Finisher,
    work: mpsc::UnboundedSender<dispatch::Work>,
    inflight: AtomicUsize,
    idle: Notify,
    /// Queue events decided on a state that does not allow them (a bug or a race), counted.
    pub not_applicable: AtomicU64,
    /// When this process started (clock milliseconds): builds last heard of before it may
    /// have lost their callbacks while greg was down, and are read from the builder at once.
    pub started_ms: i64,
    /// Set by [`Engine::shutdown`]: lanes start no further work, timers stop.
    stopping: AtomicBool,
    /// What GitHub redelivery did this run (`redelivery.rs`).
    redelivery: redelivery::State,
    /// The adaptive window of each (repository key, target) merge queue (SPEC §10), in
    /// memory: after a restart it starts again from `window_min`.
    pub windows: std::sync::Mutex<HashMap<(String, String), pipeline::Aimd>>,
    /// Merge builds not started because a build of the same tree existed (SPEC §10).
    pub builds_reused: AtomicU64,
    /// Failed merge builds by (repository key, candidate content: the tip its chain starts
    /// from and its heads in order), so bisection does not build a known failure again. In
    /// memory, at most 10,000 (then cleared).
    pub known_red: std::sync::Mutex<HashMap<(String, String), i64>>,
    /// This process's name as a lease holder: unique per process (`<host>:<pid>:<start ms>`).
    pub holder: String,
    /// Report-comment refreshes started: each is a lease holder of its own
    /// (`<holder>#<n>`), so two refreshes in this process exclude each other.
    pub refreshes: AtomicU64,
    /// The object store for report files (`reports.store`), when configured.
    pub(crate) report_files: std::sync::OnceLock<reports::ReportFiles>,
    /// The poster of chat notifications (`repos[].notify`): given by the wiring, or made at
    /// the first notification.
    pub(crate) notifier: std::sync::OnceLock<greg_notify::chat::Poster>,
    /// Prometheus metrics (`metrics.rs`).
    pub(crate) metrics: metrics::Metrics,
    /// The title and author last written per (repository key, pull request), with the lease
    /// epoch they were written under (`handlers::remember_title`).
    pub(crate) titles: std::sync::Mutex<TitlesSeen>,
    /// The leases of the repositories whose lanes run in this process (`leases.rs`).
    pub(crate) leases: leases::Leases,
    /// The deliveries this process has queued, is running, or finished since the last scan.
    pub(crate) claims: leases::Claims,
    /// A weak handle to itself, for timers that submit work later.
    pub me: std::sync::Weak<Inner>,
}

impl Inner {
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn begin(&self) {
        self.inflight.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn end(&self) {
        if self.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    pub(crate) fn submit(&self, work: dispatch::Work) {
        self.begin();
        if self.work.send(work).is_err() {
            self.end();
            tracing::error!("Dispatcher has stopped; work dropped (it stays in the store)");
        }
    }
}

/// (repository key, pull request) → (lease epoch, title, author) last written.
pub(crate) type TitlesSeen = HashMap<(String, u64), (i64, String, String)>;

/// A lease holder name unique per process: the host (`$HOSTNAME`, else `greg`), the process id
/// and the start time in milliseconds.
fn holder_name(started_ms: i64) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "greg".to_owned());
    format!("{host}:{}:{started_ms}", std::process::id())
}

impl Engine {
    /// Starts the engine: the inbox writer, the dispatcher, the build poller, the reconciler,
    /// the retry timer and the pruner, then resumes every delivery the store still holds as
    /// pending (a restart); deliveries waiting for a scheduled retry run when it is due.
    ///
    /// Errors: the store could not be read.
    pub async fn start(
        config: Arc<Config>,
        store: Store,
        providers: HashMap<String, Arc<dyn Provider>>,
        builders: HashMap<String, Arc<dyn Builder>>,
        clock: Arc<dyn Clock>,
        options: EngineOptions,
    ) -> Result<Engine, EngineError> {
        let (work_tx, work_rx) = mpsc::unbounded_channel();
        let started_ms = clock.now_ms();
        let lease_ttl = config.server.lease;
        let finisher_clock = clock.clone();
        let inner = Arc::new_cyclic(|me: &std::sync::Weak<Inner>| Inner {
            finisher: {
                let me = me.clone();
                inbox::Finisher::start(
                    store.clone(),
                    move || finisher_clock.now_ms(),
                    move |seqs, committed| {
                        let Some(inner) = me.upgrade() else { return };
                        for seq in seqs {
                            // After the commit, so that no scan reads it pending again.
                            if committed {
                                inner.claims.finish(*seq);
                            } else {
                                inner.claims.release(*seq);
                            }
                            inner.end();
                        }
                    },
                )
            },
            not_applicable: AtomicU64::new(0),
            started_ms,
            config,
            inbox: Inbox::start(store.clone()),
            store,
            providers,
            builders,
            clock,
            options,
            work: work_tx,
            inflight: AtomicUsize::new(0),
            idle: Notify::new(),
            stopping: AtomicBool::new(false),
            redelivery: redelivery::State::default(),
            windows: std::sync::Mutex::new(HashMap::new()),
            builds_reused: AtomicU64::new(0),
            known_red: std::sync::Mutex::new(HashMap::new()),
            holder: holder_name(started_ms),
            refreshes: AtomicU64::new(0),
            report_files: std::sync::OnceLock::new(),
            notifier: std::sync::OnceLock::new(),
            metrics: metrics::Metrics::new(),
            titles: std::sync::Mutex::new(HashMap::new()),
            leases: leases::Leases::new(lease_ttl),
            claims: leases::Claims::default(),
            me: me.clone(),
        });
        tokio::spawn(dispatch::dispatcher(inner.clone(), work_rx));
        let engine = Engine { inner };
        engine.recover().await?;
        // SPEC §11 "Start": every build recorded as running is read from its builder now (a
        // callback may have been lost while greg was down), not after build_poll_after.
        dispatch::poll_once(&engine.inner).await;
        dispatch::reconcile_once(&engine.inner).await;
        tokio::spawn(outbox::ticker(
            Arc::downgrade(&engine.inner),
            engine.inner.options.effect_tick,
        ));
        tokio::spawn(dispatch::poller(Arc::downgrade(&engine.inner)));
        tokio::spawn(dispatch::reconciler(Arc::downgrade(&engine.inner)));
        tokio::spawn(retries::timer(Arc::downgrade(&engine.inner)));
        tokio::spawn(lifecycle::pruner(Arc::downgrade(&engine.inner)));
        tokio::spawn(reports::sweeper(Arc::downgrade(&engine.inner)));
        tokio::spawn(leases::keeper(Arc::downgrade(&engine.inner)));
        Ok(engine)
    }

    async fn recover(&self) -> Result<(), EngineError> {
        if self.inner.store.backend() == "sqlite" {
            // One process serves a SQLite database (`Store::serve_exclusively`): the leases in
            // it belong to the process that ran before this one, and are taken over now.
            self.inner
                .store
                .expire_all_leases(self.inner.now_ms())
                .await
                .map_err(|e| EngineError::Store(e.to_string()))?;
        }
        let pending = self
            .inner
            .store
            .pending_deliveries(i64::MAX)
            .await
            .map_err(|e| EngineError::Store(e.to_string()))?;
        if !pending.is_empty() {
            tracing::info!(
                count = pending.len(),
                "Resuming deliveries left pending by the last run"
            );
        }
        for d in pending {
            retries::submit_stored(&self.inner, d).await;
        }
        // Retries that fell due while greg was down.
        retries::run_due(&self.inner).await;
        Ok(())
    }

    /// Writes an accepted delivery to the durable inbox, then queues it for processing.
    /// Returns once the delivery is stored (the caller may answer 202).
    ///
    /// `source` is the provider or builder name; `delivery_id` deduplicates per source.
    pub async fn accept(
        &self,
        source: &str,
        delivery_id: &str,
        event: Event,
    ) -> Result<Accepted, EngineError> {
        let payload =
            serde_json::to_string(&event).map_err(|e| EngineError::Serialize(e.to_string()))?;
        let repo_key = event
            .repository()
            .map(greg_core::RepoName::key)
            .unwrap_or_default();
        let new = NewDelivery {
            source: source.to_owned(),
            delivery_id: delivery_id.to_owned(),
            repo_key,
            event: event.name(),
            payload,
            received_ms: self.inner.now_ms(),
        };
        match self
            .inner
            .inbox
            .write(new)
            .await
            .map_err(EngineError::Store)?
        {
            Inserted::Duplicate => {
                self.inner
                    .metrics
                    .deliveries_duplicate
                    .get_or_create(&metrics::SourceLabel {
                        source: source.to_owned(),
                    })
                    .inc();
                Ok(Accepted::Duplicate)
            }
            Inserted::New(seq) => {
                self.inner
                    .metrics
                    .deliveries_accepted
                    .get_or_create(&metrics::SourceLabel {
                        source: source.to_owned(),
                    })
                    .inc();
                // A scan may have handed it to a lane already (another replica's view of the
                // inbox is the same table).
                if self.inner.claims.claim(seq) {
                    self.inner.submit(dispatch::Work::Delivery {
                        seq,
                        source: source.to_owned(),
                        attempts: 0,
                        event: Box::new(event),
                    });
                }
                Ok(Accepted::New(seq))
            }
        }
    }

    /// Posts the chat notifications of `repos[].notify` with `poster` from now on (SPEC §9).
    /// Set once, at start; a second call changes nothing and returns false. Without it the
    /// engine makes a poster with greg-notify's defaults at the first notification.
    pub fn send_notifications(&self, poster: greg_notify::chat::Poster) -> bool {
        self.inner.notifier.set(poster).is_ok()
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store (for health checks and the JSON API).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// A configured provider by name.
    pub fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.inner.providers.get(name).cloned()
    }

    /// A configured builder by name.
    pub fn builder(&self, name: &str) -> Option<Arc<dyn Builder>> {
        self.inner.builders.get(name).cloned()
    }

    /// Examines every active build now (what the poller does every `poll_interval`).
    pub async fn poll_builds(&self) {
        dispatch::poll_once(&self.inner).await;
    }

    /// Reconciles every known repository now (what happens at start and every
    /// `server.reconcile_interval_secs`): open pull requests re-read, queue entries repaired.
    pub async fn reconcile(&self) {
        dispatch::reconcile_once(&self.inner).await;
    }

    /// How many queue events were decided on a state that does not allow them since start
    /// (each is logged at error; a non-zero count is a bug or an unexpected race).
    pub fn not_applicable_count(&self) -> u64 {
        self.inner.not_applicable.load(Ordering::Relaxed)
    }

    /// Merge builds not started since this process started because a build of the same tree
    /// existed (a green test_merged or try build of the head on the same target tip, the same
    /// staging commit built green before, or the same pull requests on the same tip built red
    /// before, during bisection; SPEC §10).
    pub fn builds_reused(&self) -> u64 {
        self.inner.builds_reused.load(Ordering::Relaxed)
    }

    /// True when effects decided earlier (comments, statuses, ...) wait to be performed, for
    /// instance for a retry after a provider error. A store error counts as "none".
    pub async fn has_pending_effects(&self) -> bool {
        self.inner
            .store
            .pending_effects()
            .await
            .is_ok_and(|n| n > 0)
    }

    /// True when no delivery, callback or poll is queued or running.
    pub fn is_idle(&self) -> bool {
        self.inner.inflight.load(Ordering::SeqCst) == 0
    }

    /// Waits until no delivery, callback or poll is being processed. Tests use it after each
    /// action; it returns at once when the engine is idle.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.inflight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}
