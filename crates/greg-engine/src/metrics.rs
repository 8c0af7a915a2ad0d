//! Prometheus metrics (SPEC §9 `/metrics`): what the engine counts as it works, and the
//! levels read from the store at each scrape.
//!
//! One registry per engine (no global state), so two engines in one process (tests) count
//! apart. Names carry the `greg_` prefix and base units (seconds); counters end in `_total` in
//! the exposition. The text is the OpenMetrics text format of prometheus-client, which
//! Prometheus scrapes as such (`Content-Type: application/openmetrics-text`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A delivery's source (`github`, `bitbucket`, `jenkins`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SourceLabel {
    pub source: String,
}

/// How something ended (`done`, `error`; `create`, `edit`, `unchanged`, `status`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    pub outcome: String,
}

/// A report's job status (`success`, `failure`, `error`, `pending`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabel {
    pub status: String,
}

/// The engine's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    pub deliveries_accepted: Family<SourceLabel, Counter>,
    pub deliveries_duplicate: Family<SourceLabel, Counter>,
    pub deliveries_processed: Family<OutcomeLabel, Counter>,
    pub delivery_seconds: Histogram,
    pub reports: Family<StatusLabel, Counter>,
    pub report_comment_writes: Family<OutcomeLabel, Counter>,
    pub pending_deliveries: Gauge,
    pub active_builds: Gauge,
    pub queue_entries: Gauge,
    pub pending_effects: Gauge,
    pub not_applicable: Gauge,
    pub builds_reused: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("greg");
        let deliveries_accepted = Family::<SourceLabel, Counter>::default();
        registry.register(
            "deliveries_accepted",
            "Deliveries stored in the inbox (webhooks, build callbacks, CI reports), by source",
            deliveries_accepted.clone(),
        );
        let deliveries_duplicate = Family::<SourceLabel, Counter>::default();
        registry.register(
            "deliveries_duplicate",
            "Deliveries refused as already accepted (same delivery id), by source",
            deliveries_duplicate.clone(),
        );
        let deliveries_processed = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "deliveries_processed",
            "Delivery runs in a lane by outcome: done, or error (then retried or dead-lettered)",
            deliveries_processed.clone(),
        );
        let delivery_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "delivery_processing_seconds",
            "Time to handle one delivery in its lane, quick retries included",
            delivery_seconds.clone(),
        );
        let reports = Family::<StatusLabel, Counter>::default();
        registry.register(
            "reports",
            "CI reports stored (greg report), by job status",
            reports.clone(),
        );
        let report_comment_writes = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "report_comment_writes",
            "Report comment renders by outcome: create, edit, unchanged (hash equal, no write), status (comments: false)",
            report_comment_writes.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let pending_deliveries = gauge(
            &mut registry,
            "inbox_pending_deliveries",
            "Deliveries stored and not yet processed (read at scrape)",
        );
        let active_builds = gauge(
            &mut registry,
            "active_builds",
            "Builds triggered and not finished (read at scrape)",
        );
        let queue_entries = gauge(
            &mut registry,
            "queue_entries",
            "Active merge-queue entries, all repositories (read at scrape)",
        );
        let pending_effects = gauge(
            &mut registry,
            "pending_effects",
            "Effects (comments, statuses, ref deletions) decided and not yet performed (read at scrape)",
        );
        let not_applicable = gauge(
            &mut registry,
            "queue_events_not_applicable",
            "Queue events decided on a state that does not allow them since start (a bug or a race)",
        );
        let builds_reused = gauge(
            &mut registry,
            "builds_reused",
            "Merge builds not started since start because a build of the same tree existed",
        );
        Self {
            registry,
            deliveries_accepted,
            deliveries_duplicate,
            deliveries_processed,
            delivery_seconds,
            reports,
            report_comment_writes,
            pending_deliveries,
            active_builds,
            queue_entries,
            pending_effects,
            not_applicable,
            builds_reused,
        }
    }

    /// Counts one event of `family` under `label`.
    pub(crate) fn outcome(family: &Family<OutcomeLabel, Counter>, outcome: &str) {
        family
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The registry in the OpenMetrics text format.
    pub(crate) fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The Content-Type of [`crate::Engine::metrics_text`]'s answer.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl crate::Engine {
    /// The metrics in the OpenMetrics text format (serve with [`METRICS_CONTENT_TYPE`]): the
    /// counters kept since start, and levels read from the store now (pending deliveries,
    /// active builds, queue entries, pending effects). A level the store cannot read keeps its
    /// last value (logged).
    ///
    /// # Errors
    /// Formatting failed (a bug).
    pub async fn metrics_text(&self) -> Result<String, std::fmt::Error> {
        let inner = &self.inner;
        let m = &inner.metrics;
        let level = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        match inner.store.pending_delivery_count().await {
            Ok(n) => {
                m.pending_deliveries.set(n);
            }
            Err(e) => tracing::warn!(error = %e, "Metrics: cannot count pending deliveries"),
        }
        match inner.store.active_builds().await {
            Ok(b) => {
                m.active_builds.set(level(b.len()));
            }
            Err(e) => tracing::warn!(error = %e, "Metrics: cannot count active builds"),
        }
        match inner.store.active_queue_entries().await {
            Ok(q) => {
                m.queue_entries.set(level(q.len()));
            }
            Err(e) => tracing::warn!(error = %e, "Metrics: cannot count queue entries"),
        }
        match inner.store.pending_effects().await {
            Ok(n) => {
                m.pending_effects.set(n);
            }
            Err(e) => tracing::warn!(error = %e, "Metrics: cannot count pending effects"),
        }
        m.not_applicable.set(
            i64::try_from(
                inner
                    .not_applicable
                    .load(std::sync::atomic::Ordering::Relaxed),
            )
            .unwrap_or(i64::MAX),
        );
        m.builds_reused.set(
            i64::try_from(
                inner
                    .builds_reused
                    .load(std::sync::atomic::Ordering::Relaxed),
            )
            .unwrap_or(i64::MAX),
        );
        m.encode()
    }
}
