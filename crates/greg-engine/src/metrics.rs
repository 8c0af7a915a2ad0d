//! Prometheus metrics (SPEC §9 `/metrics`): what the engine counts as it works, and the
//! levels read from the store at each scrape.
//!
//! One registry per engine (no global state), so two engines in one process (tests) count
//! apart. Names carry the `greg_` prefix and base units (seconds); counters end in `_total` in
//! the exposition. The process metrics (`process_*`, read from `/proc/self` by the procfs
//! crate at each scrape, Linux only) keep the names every Prometheus client library uses, so
//! standard dashboards find them. The text is the OpenMetrics text format of prometheus-client, which
//! Prometheus scrapes as such (`Content-Type: application/openmetrics-text`).

use greg_core::UpstreamCounts;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};

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

/// A merge queue: repository (`owner/name`, lower case) and target branch.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct QueueLabel {
    pub repo: String,
    pub target: String,
}

/// A build's context (`test`, `merge`, `try`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ContextLabel {
    pub context: String,
}

/// A finished build: context and result (`success`, `failure`, `aborted`, `timed_out`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BuildResultLabel {
    pub context: String,
    pub result: String,
}

/// How a merge left its queue (`landed`, `failed`, `cancelled`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabel {
    pub result: String,
}

/// The engine's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    /// The adapters' request counts, once [`crate::Engine::count_upstream`] set them.
    pub upstream: Arc<OnceLock<Arc<UpstreamCounts>>>,
    pub queue_length: Family<QueueLabel, Gauge>,
    pub builds_started: Family<ContextLabel, Counter>,
    pub builds_finished: Family<BuildResultLabel, Counter>,
    pub merges: Family<ResultLabel, Counter>,
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
    pub leases_held: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let upstream = Arc::new(OnceLock::new());
        let registry = root.sub_registry_with_prefix("greg");
        registry.register_collector(Box::new(UpstreamCollector(upstream.clone())));
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
        let queue_length = Family::<QueueLabel, Gauge>::default();
        registry.register(
            "queue_length",
            "Active merge-queue entries per repository and target branch (read at scrape)",
            queue_length.clone(),
        );
        let builds_started = Family::<ContextLabel, Counter>::default();
        registry.register(
            "builds_started",
            "Builds the builder accepted (queued), by context",
            builds_started.clone(),
        );
        let builds_finished = Family::<BuildResultLabel, Counter>::default();
        registry.register(
            "builds_finished",
            "Builds finished, by context and result",
            builds_finished.clone(),
        );
        let merges = Family::<ResultLabel, Counter>::default();
        registry.register(
            "merges",
            "Merge-queue entries (\"@greg please\") that left their queue, by result: landed, failed, cancelled",
            merges.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let pending_deliveries = gauge(
            registry,
            "inbox_pending_deliveries",
            "Deliveries stored and not yet processed (read at scrape)",
        );
        let active_builds = gauge(
            registry,
            "active_builds",
            "Builds triggered and not finished (read at scrape)",
        );
        let queue_entries = gauge(
            registry,
            "queue_entries",
            "Active merge-queue entries, all repositories (read at scrape)",
        );
        let pending_effects = gauge(
            registry,
            "pending_effects",
            "Effects (comments, statuses, ref deletions) decided and not yet performed (read at scrape)",
        );
        let not_applicable = gauge(
            registry,
            "queue_events_not_applicable",
            "Queue events decided on a state that does not allow them since start (a bug or a race)",
        );
        let builds_reused = gauge(
            registry,
            "builds_reused",
            "Merge builds not started since start because a build of the same tree existed",
        );
        let leases_held = gauge(
            registry,
            "leases_held",
            "Repositories whose lane runs in this replica now, under its lease (SPEC §11)",
        );
        Self {
            registry: root,
            upstream,
            queue_length,
            builds_started,
            builds_finished,
            merges,
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
            leases_held,
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

    /// Counts a build the builder accepted.
    pub(crate) fn build_started(&self, context: &str) {
        self.builds_started
            .get_or_create(&ContextLabel {
                context: context.to_owned(),
            })
            .inc();
    }

    /// Counts a finished build.
    pub(crate) fn build_finished(&self, context: &str, result: &str) {
        self.builds_finished
            .get_or_create(&BuildResultLabel {
                context: context.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts a merge that left its queue as `result`.
    pub(crate) fn merge_finished(&self, result: &str) {
        self.merges
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
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

/// `greg_upstream_requests_total{service,status}` and
/// `greg_upstream_rate_limit_remaining{service}` from the adapters' counts (SPEC §9).
#[derive(Debug)]
struct UpstreamCollector(Arc<OnceLock<Arc<UpstreamCounts>>>);

/// A service and an HTTP status (`200`, `502`, `error` when no answer came).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    service: String,
    status: String,
}

/// A service (`github`, `bitbucket`, `jenkins`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

impl Collector for UpstreamCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(counts) = self.0.get() else {
            return Ok(());
        };
        let (requests, remaining) = counts.snapshot();
        if !requests.is_empty() {
            let mut family = encoder.encode_descriptor(
                "upstream_requests",
                "Requests greg made to GitHub, Bitbucket and Jenkins, by service and HTTP status (error: no answer)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for ((service, status), n) in requests {
                let label = UpstreamLabel { service, status };
                ConstCounter::new(n).encode(family.encode_family(&label)?)?;
            }
        }
        if !remaining.is_empty() {
            let mut family = encoder.encode_descriptor(
                "upstream_rate_limit_remaining",
                "The last X-RateLimit-Remaining the service answered (GitHub)",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (service, n) in remaining {
                let v = i64::try_from(n).unwrap_or(i64::MAX);
                ConstGauge::new(v).encode(family.encode_family(&ServiceLabel { service })?)?;
            }
        }
        Ok(())
    }
}

/// The process metrics every Prometheus client exposes, read from `/proc/self` at each
/// scrape: CPU seconds, resident and virtual memory, open and maximum file descriptors,
/// threads, start time. Nothing is written when `/proc` cannot be read (not Linux).
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        #[cfg(target_os = "linux")]
        {
            let Ok(me) = procfs::process::Process::myself() else {
                return Ok(());
            };
            let Ok(stat) = me.stat() else {
                return Ok(());
            };
            let ticks = procfs::ticks_per_second() as f64;
            let page = procfs::page_size();
            #[allow(clippy::cast_precision_loss)] // ticks and pages stay far below 2^52
            let cpu = (stat.utime + stat.stime) as f64 / ticks;
            let counter = ConstCounter::new(cpu);
            counter.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent, in seconds",
                None,
                counter.metric_type(),
            )?)?;
            let gauges: [(&str, &str, Option<i64>); 5] = [
                (
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes",
                    i64::try_from(stat.rss.saturating_mul(page)).ok(),
                ),
                (
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes",
                    i64::try_from(stat.vsize).ok(),
                ),
                (
                    "process_open_fds",
                    "Number of open file descriptors",
                    me.fd_count().ok().and_then(|n| i64::try_from(n).ok()),
                ),
                (
                    "process_threads",
                    "Number of OS threads in the process",
                    Some(stat.num_threads),
                ),
                (
                    "process_max_fds",
                    "Maximum number of open file descriptors",
                    me.limits()
                        .ok()
                        .and_then(|l| match l.max_open_files.soft_limit {
                            procfs::process::LimitValue::Value(v) => i64::try_from(v).ok(),
                            procfs::process::LimitValue::Unlimited => None,
                        }),
                ),
            ];
            for (name, help, value) in gauges {
                if let Some(v) = value {
                    let g = ConstGauge::new(v);
                    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
                }
            }
            if let Ok(boot) = procfs::boot_time_secs() {
                #[allow(clippy::cast_precision_loss)]
                let start = boot as f64 + stat.starttime as f64 / ticks;
                let g = ConstGauge::new(start);
                g.encode(encoder.encode_descriptor(
                    "process_start_time_seconds",
                    "Start time of the process since the unix epoch, in seconds",
                    None,
                    g.metric_type(),
                )?)?;
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = &mut encoder;
        Ok(())
    }
}

/// The Content-Type of [`crate::Engine::metrics_text`]'s answer.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl crate::Engine {
    /// Exposes the adapters' request counts on `/metrics` from now on (set once, at start,
    /// with the [`UpstreamCounts`] the adapters were given; a second call changes nothing and
    /// returns false).
    pub fn count_upstream(&self, counts: Arc<UpstreamCounts>) -> bool {
        self.inner.metrics.upstream.set(counts).is_ok()
    }

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
        match inner.store.queue_lengths().await {
            Ok(lengths) => {
                // Queues that emptied since the last scrape disappear rather than stay at
                // their last length.
                m.queue_length.clear();
                let mut all = 0;
                for q in lengths {
                    all += q.entries;
                    m.queue_length
                        .get_or_create(&QueueLabel {
                            repo: q.repo,
                            target: q.target,
                        })
                        .set(q.entries);
                }
                m.queue_entries.set(all);
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
        m.leases_held.set(level(inner.leases.held_count()));
        m.encode()
    }
}
