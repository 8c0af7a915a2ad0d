//! Webhook ingestion and processing benchmark (issue 2 item 14, issue 12 items 3 and 4): greg
//! in-process on loopback, fed signed GitHub deliveries by an in-process load generator, with
//! the durable inbox on (a SQLite file in WAL mode, or PostgreSQL, written before every 202).
//!
//! Run: `cargo bench --bench ingest` (release build). Scenarios, in order: `synchronize`
//! (tests/data/github/pull_request.synchronize.json), `comment`
//! (tests/data/github/issue_comment.created.on-pull-request.json), `mixed` (the two
//! alternating) and `spread` (the comment on 64 repositories: connection i sends it with
//! `repository.full_name` = `acme/demo-{i mod 64}`, so 64 lanes run at once); name some after
//! `--` to run only those. In the first three `repository.full_name` is set to the configured
//! repository; everything else is sent as recorded (compact JSON). Every request carries a
//! fresh `X-GitHub-Delivery` id; a request counts as accepted only when it is answered 202 with
//! an `accepted: delivery N queued` body, anything else is an error.
//!
//! Each scenario starts a fresh greg (new database, same fake GitHub from greg-testkit as
//! `api_url`) configured for its repositories without jobs, so processing is cheap and never
//! calls Jenkins. greg runs as `greg serve` does: a multi-threaded tokio runtime for the engine
//! and actix-web workers (one per core unless `GREG_BENCH_WORKERS` says otherwise). The load
//! generator runs on its own runtime: `GREG_BENCH_CONNECTIONS` (64) keep-alive connections,
//! each a closed loop (send, read the whole answer, send the next), `GREG_BENCH_WARMUP_SECS`
//! (2) of warm-up, then `GREG_BENCH_SECS` (10) measured. A request counts in the figures when
//! it started and finished inside the measured window. Both sides share the machine's cores,
//! as wrk does in `bench/wrk.sh`.
//!
//! Processed, not only accepted (issue 12 item 3): a sampler thread with its own database
//! connection reads every 250 ms how many deliveries are stored (`MAX(seq)`) and how many are
//! processed (`COUNT(*) … WHERE state <> 'pending'`), during the load and until greg is idle.
//! Printed: processed/s inside the measured window, the backlog (stored − processed) at the end
//! of the window, the time greg needed after the load to process its backlog (`drained`) and
//! the rate at which it did (`drain/s`).
//!
//! The limit (issue 12 item 4): after greg, the same load (connections, payloads, warm-up,
//! window) drives a bare actix-web handler in this binary, with as many workers as greg, that
//! checks `X-Hub-Signature-256` as greg-github does (HMAC-SHA256 of the body, hex,
//! constant-time compare with `hmac`'s `verify_slice`) and answers `202 accepted: delivery N
//! queued`. greg's accepted/s is printed as a fraction of the limit's. `GREG_BENCH_LIMIT=0`
//! skips it.
//!
//! Store: a fresh SQLite file per scenario by default; `GREG_BENCH_DATABASE` (a PostgreSQL
//! URL, e.g. `postgres://postgres@127.0.0.1:5432/test`) runs greg on PostgreSQL instead, in
//! the schema `GREG_BENCH_SCHEMA` (default `greg_bench_ingest`), which the bench drops and
//! creates again before each scenario.
//!
//! The client is a minimal HTTP/1.1 writer and reader (benches/common/http.rs). Results:
//! docs/benchmarks.md.

#[path = "common/env.rs"]
mod env;
#[path = "common/http.rs"]
mod http;

use anyhow::{Context as _, anyhow, bail};
use greg_engine::{Engine, EngineOptions, SystemClock};
use http::{COMMENT_JSON, Conn, Fixture, SYNCHRONIZE_JSON};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository greg is configured for in the one-repository scenarios.
const REPO: &str = "acme/demo";
/// How many repositories the `spread` scenario uses.
const SPREAD_REPOS: usize = 64;
const INCOMING_TOKEN: &str = "bench-incoming";
const WEBHOOK_SECRET: &str = "bench webhook secret";
/// How long to wait after the load for greg to process its backlog.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);
/// How often the sampler counts stored and processed deliveries.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` runs the binary without it, and a
    // benchmark is not a test: say so and succeed.
    if !args.iter().any(|a| a == "--bench") {
        println!("ingest: a benchmark; run it with `cargo bench --bench ingest`");
        return ExitCode::SUCCESS;
    }
    let filter: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match run(&filter) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ingest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Benchmark settings, from the environment.
#[derive(Debug, Clone)]
struct Settings {
    connections: usize,
    warmup: Duration,
    duration: Duration,
    /// actix-web workers; `None`: one per core, as `greg serve`.
    workers: Option<usize>,
    client_threads: usize,
    /// A PostgreSQL URL; `None`: a fresh SQLite file per scenario.
    database: Option<String>,
    /// The PostgreSQL schema the bench recreates per scenario.
    schema: String,
    /// Also drive the bare HMAC handler (the limit).
    limit: bool,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let workers = match std::env::var("GREG_BENCH_WORKERS") {
            Ok(_) => Some(usize::try_from(env::positive("GREG_BENCH_WORKERS", 1)?)?),
            Err(_) => None,
        };
        let database = std::env::var("GREG_BENCH_DATABASE")
            .ok()
            .filter(|v| !v.trim().is_empty());
        if let Some(url) = &database
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            bail!("GREG_BENCH_DATABASE: expected a postgres:// URL (SQLite is the default)");
        }
        let schema =
            std::env::var("GREG_BENCH_SCHEMA").unwrap_or_else(|_| "greg_bench_ingest".to_owned());
        if schema.is_empty()
            || !schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            bail!("GREG_BENCH_SCHEMA: expected lower-case letters, digits and _");
        }
        Ok(Self {
            connections: usize::try_from(env::positive("GREG_BENCH_CONNECTIONS", 64)?)?,
            warmup: Duration::from_secs(env::positive("GREG_BENCH_WARMUP_SECS", 2)?),
            duration: Duration::from_secs(env::positive("GREG_BENCH_SECS", 10)?),
            workers,
            client_threads: usize::try_from(env::positive("GREG_BENCH_CLIENT_THREADS", 1)?)?,
            database,
            schema,
            limit: std::env::var("GREG_BENCH_LIMIT").map_or(true, |v| v.trim() != "0"),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Synchronize,
    Comment,
    Mixed,
    Spread,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Synchronize,
        Scenario::Comment,
        Scenario::Mixed,
        Scenario::Spread,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Synchronize => "synchronize",
            Scenario::Comment => "comment",
            Scenario::Mixed => "mixed",
            Scenario::Spread => "spread",
        }
    }

    /// The repositories greg is configured for.
    fn repos(self) -> Vec<String> {
        match self {
            Scenario::Spread => (0..SPREAD_REPOS)
                .map(|i| format!("acme/demo-{i}"))
                .collect(),
            _ => vec![REPO.to_owned()],
        }
    }
}

/// The deliveries a scenario sends, and how connections pick them.
struct Fixtures {
    list: Vec<Fixture>,
    /// `true`: connection i always sends `list[i mod len]`; `false`: each connection cycles
    /// through the list request by request.
    per_connection: bool,
}

impl Fixtures {
    fn pick(&self, connection: usize, n: u64) -> &Fixture {
        let i = if self.per_connection {
            connection
        } else {
            connection + n as usize
        };
        &self.list[i % self.list.len()]
    }
}

fn fixtures(scenario: Scenario, addr: SocketAddr) -> anyhow::Result<Fixtures> {
    let fixture = |json, event, repo: &str| {
        Fixture::new(json, event, repo, INCOMING_TOKEN, WEBHOOK_SECRET, addr)
    };
    let sync = || fixture(SYNCHRONIZE_JSON, "pull_request", REPO);
    let comment = || fixture(COMMENT_JSON, "issue_comment", REPO);
    let (list, per_connection) = match scenario {
        Scenario::Synchronize => (vec![sync()?], false),
        Scenario::Comment => (vec![comment()?], false),
        Scenario::Mixed => (vec![sync()?, comment()?], false),
        Scenario::Spread => (
            scenario
                .repos()
                .iter()
                .map(|r| fixture(COMMENT_JSON, "issue_comment", r))
                .collect::<anyhow::Result<_>>()?,
            true,
        ),
    };
    Ok(Fixtures {
        list,
        per_connection,
    })
}

/// greg's configuration: the repositories without jobs, no builder.
fn config_yaml(database: &str, github_url: &str, repos: &[String]) -> String {
    let mut owners: Vec<&str> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for r in repos {
        let (owner, name) = r.split_once('/').unwrap_or((r, r));
        if !owners.contains(&owner) {
            owners.push(owner);
        }
        names.push(name);
    }
    format!(
        r#"server:
  listen: 127.0.0.1:0
  database: "{database}"
  bot_name: greg
providers:
  github:
    username: greg-bot
    password: bench-api-token
    incoming_token: {INCOMING_TOKEN}
    webhook_secret: "{WEBHOOK_SECRET}"
    source: "git@github.com:"
    api_url: {github_url}
repos:
  - provider: github
    organizations: [{}]
    names: [{}]
"#,
        owners.join(", "),
        names.join(", ")
    )
}

/// A fresh database for one scenario: a SQLite file in `dir`, or the PostgreSQL schema dropped
/// and created again. Returns greg's URL.
fn fresh_database(
    settings: &Settings,
    dir: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<String> {
    let Some(url) = &settings.database else {
        return Ok(format!("sqlite://{}", dir.join("greg.db").display()));
    };
    let schema = &settings.schema;
    runtime.block_on(async {
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(url)
            .await
            .context("GREG_BENCH_DATABASE")?;
        // `schema` is checked to be [a-z0-9_]+ (Settings::from_env).
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&mut c)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut c)
            .await?;
        c.close().await?;
        anyhow::Ok(())
    })?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}options[search_path]={schema}"))
}

/// A running greg: its runtime, engine and HTTP server.
struct Greg {
    runtime: tokio::runtime::Runtime,
    engine: Engine,
    server: actix_web::dev::ServerHandle,
    addr: SocketAddr,
    database: String,
}

impl Greg {
    fn start(
        settings: &Settings,
        dir: &std::path::Path,
        github_url: &str,
        repos: &[String],
    ) -> anyhow::Result<Self> {
        // As `greg serve`: a multi-threaded runtime, one worker per core.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("greg")
            .build()?;
        let database = fresh_database(settings, dir, &runtime)?;
        let config =
            greg_config::Config::from_yaml_str(&config_yaml(&database, github_url, repos), &|_| {
                None
            })
            .map_err(|e| anyhow!("bench config: {e}"))?;
        let (engine, server, addr) = runtime.block_on(async {
            let engine = greg_server::wiring::start_engine(
                config,
                Arc::new(SystemClock),
                EngineOptions::default(),
            )
            .await?;
            let (server, addr) =
                greg_server::bind(engine.clone(), "127.0.0.1:0", settings.workers)?;
            let handle = server.handle();
            tokio::spawn(server);
            anyhow::Ok((engine, handle, addr))
        })?;
        Ok(Self {
            runtime,
            engine,
            server,
            addr,
            database,
        })
    }

    /// Waits until the engine has processed everything accepted; `None` after [`DRAIN_LIMIT`].
    fn drain(&self) -> Option<Duration> {
        let started = Instant::now();
        self.runtime
            .block_on(async { tokio::time::timeout(DRAIN_LIMIT, self.engine.wait_idle()).await })
            .ok()
            .map(|()| started.elapsed())
    }

    fn stop(self) {
        self.runtime.block_on(async {
            self.server.stop(true).await;
            self.engine.store().close().await;
        });
        self.runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

/// The limit: a bare actix-web server whose one route checks the signature and answers 202.
struct Limit {
    runtime: tokio::runtime::Runtime,
    server: actix_web::dev::ServerHandle,
    addr: SocketAddr,
}

/// The limit's state: the key and the next sequence number it answers.
struct LimitState {
    secret: Vec<u8>,
    seq: AtomicI64,
}

/// `POST /repo`: `X-Hub-Signature-256` checked as greg-github's `verify_signature` checks it,
/// then `202 accepted: delivery N queued`; 401 when it does not match.
async fn limit_repo(
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    state: actix_web::web::Data<LimitState>,
) -> actix_web::HttpResponse {
    use hmac::Mac as _;
    let verified = req
        .headers()
        .get("X-Hub-Signature-256")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.trim().strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok())
        .is_some_and(|digest| {
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&state.secret).is_ok_and(|mut mac| {
                mac.update(&body);
                mac.verify_slice(&digest).is_ok()
            })
        });
    if !verified {
        return actix_web::HttpResponse::Unauthorized().body("unauthorized: signature\n");
    }
    let seq = state.seq.fetch_add(1, Ordering::Relaxed) + 1;
    actix_web::HttpResponse::Accepted().body(format!("accepted: delivery {seq} queued\n"))
}

impl Limit {
    fn start(settings: &Settings) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("limit")
            .build()?;
        let state = actix_web::web::Data::new(LimitState {
            secret: WEBHOOK_SECRET.as_bytes().to_vec(),
            seq: AtomicI64::new(0),
        });
        let (server, addr) = runtime.block_on(async {
            let mut server = actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(state.clone())
                    .route("/repo", actix_web::web::post().to(limit_repo))
            })
            .backlog(2048)
            .disable_signals();
            if let Some(w) = settings.workers {
                server = server.workers(w);
            }
            let server = server.bind("127.0.0.1:0")?;
            let addr = *server.addrs().first().context("no address")?;
            let server = server.run();
            let handle = server.handle();
            tokio::spawn(server);
            anyhow::Ok((handle, addr))
        })?;
        Ok(Self {
            runtime,
            server,
            addr,
        })
    }

    fn stop(self) {
        self.runtime.block_on(self.server.stop(true));
        self.runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

/// Counts of the inbox at one instant.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    /// Deliveries stored (the highest inbox sequence number; a fresh database has no gaps).
    stored: i64,
    /// Deliveries no longer pending (done or failed).
    processed: i64,
}

/// A thread that samples the inbox every [`SAMPLE_EVERY`] through its own connection.
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

const STORED_SQL: &str = "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM deliveries";
const PROCESSED_SQL: &str = "SELECT COUNT(*) FROM deliveries WHERE state <> 'pending'";

impl Sampler {
    fn start(database: &str) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (database, stop2, samples2) = (database.to_owned(), stop.clone(), samples.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sampler".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let count = async |pool: &sqlx::AnyPool| -> anyhow::Result<(i64, i64)> {
                        let stored: i64 = sqlx::query_scalar(STORED_SQL).fetch_one(pool).await?;
                        let processed: i64 =
                            sqlx::query_scalar(PROCESSED_SQL).fetch_one(pool).await?;
                        Ok((stored, processed))
                    };
                    sqlx::any::install_default_drivers();
                    let pool = sqlx::pool::PoolOptions::<sqlx::Any>::new()
                        .max_connections(1)
                        .connect(&database)
                        .await;
                    let pool = match pool {
                        Ok(p) => {
                            let _ = ready_tx.send(Ok(()));
                            p
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(anyhow!("sampler: {e}")));
                            return Ok(());
                        }
                    };
                    let mut next = Instant::now();
                    while !stop2.load(Ordering::Relaxed) {
                        let at = Instant::now();
                        let (stored, processed) = count(&pool).await?;
                        if let Ok(mut s) = samples2.lock() {
                            s.push(Sample {
                                at,
                                stored,
                                processed,
                            });
                        }
                        next += SAMPLE_EVERY;
                        tokio::time::sleep_until(next.into()).await;
                    }
                    pool.close().await;
                    anyhow::Ok(())
                })
            })?;
        ready_rx.recv().context("sampler thread")??;
        Ok(Self {
            stop,
            samples,
            thread,
        })
    }

    fn stop(self) -> anyhow::Result<Vec<Sample>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow!("sampler panicked"))??;
        Ok(std::mem::take(
            &mut *self.samples.lock().map_err(|_| anyhow!("poisoned"))?,
        ))
    }
}

/// The sample closest to `at`.
fn sample_at(samples: &[Sample], at: Instant) -> Option<Sample> {
    samples
        .iter()
        .copied()
        .min_by_key(|s| if s.at > at { s.at - at } else { at - s.at })
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    /// Latencies of accepted requests inside the measured window, in microseconds.
    latencies_us: Vec<u32>,
    /// Errors inside the measured window, by kind.
    errors: BTreeMap<String, u64>,
    /// Accepted requests over the whole run (warm-up included).
    accepted_total: u64,
    /// The highest inbox sequence number an answer named.
    max_seq: i64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.accepted_total += other.accepted_total;
        self.max_seq = self.max_seq.max(other.max_seq);
    }
}

/// The measured window: requests started at or after `from` and finished by `until` count.
#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    until: Instant,
}

/// One keep-alive connection in a closed loop until the window ends.
async fn connection(
    addr: SocketAddr,
    index: usize,
    run_id: u32,
    fixtures: Arc<Fixtures>,
    window: Window,
) -> Tally {
    let mut tally = Tally::default();
    let mut conn = Conn::new(addr);
    let mut request = Vec::with_capacity(64 * 1024);
    let mut n: u64 = 0;
    loop {
        let started = Instant::now();
        if started >= window.until {
            break;
        }
        let id = http::delivery_id(run_id, index, n);
        fixtures.pick(index, n).write_request(&id, &mut request);
        n += 1;
        let result = conn.send(&request).await;
        let finished = Instant::now();
        let measured = started >= window.from && finished <= window.until;
        let outcome = match result {
            Ok(answer) => answer.accepted_seq().map(|seq| {
                tally.max_seq = tally.max_seq.max(seq);
                tally.accepted_total += 1;
            }),
            Err(e) => Err(format!("connection: {}", e.kind())),
        };
        if measured {
            match outcome {
                Ok(()) => {
                    let us = finished.duration_since(started).as_micros();
                    tally
                        .latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                }
                Err(kind) => *tally.errors.entry(kind).or_default() += 1,
            }
        }
    }
    tally
}

/// Runs the load generator against `addr` on its own runtime; returns the merged tally, the
/// window and when the load ended.
fn load(
    settings: &Settings,
    addr: SocketAddr,
    fixtures: Arc<Fixtures>,
) -> anyhow::Result<(Tally, Window, Instant)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .enable_all()
        .thread_name("load")
        .build()?;
    let run_id = http::run_id();
    let from = Instant::now() + settings.warmup;
    let window = Window {
        from,
        until: from + settings.duration,
    };
    let tally = runtime.block_on(async {
        let tasks: Vec<_> = (0..settings.connections)
            .map(|i| tokio::spawn(connection(addr, i, run_id, fixtures.clone(), window)))
            .collect();
        let mut tally = Tally::default();
        for t in tasks {
            tally.merge(t.await?);
        }
        anyhow::Ok(tally)
    })?;
    let ended = Instant::now();
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok((tally, window, ended))
}

/// Latency and throughput of one server under the load.
struct Measured {
    accepted: usize,
    per_sec: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: BTreeMap<String, u64>,
    stored_ok: bool,
}

impl Measured {
    fn new(mut tally: Tally, settings: &Settings) -> Self {
        tally.latencies_us.sort_unstable();
        let sorted = &tally.latencies_us;
        Self {
            accepted: sorted.len(),
            per_sec: sorted.len() as f64 / settings.duration.as_secs_f64(),
            p50_ms: quantile_ms(sorted, 0.50),
            p90_ms: quantile_ms(sorted, 0.90),
            p99_ms: quantile_ms(sorted, 0.99),
            max_ms: quantile_ms(sorted, 1.0),
            errors: tally.errors,
            // Sequence numbers count from 1 without gaps in a fresh database, so the highest
            // one answered is the number of rows: every accepted answer was a new stored row.
            stored_ok: i64::try_from(tally.accepted_total).ok() == Some(tally.max_seq),
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// What the sampler saw of greg's processing.
struct Processing {
    /// Processed deliveries per second inside the measured window.
    per_sec: f64,
    /// Stored minus processed at the end of the window.
    backlog_at_end: i64,
    /// From the end of the load until greg was idle; `None` past [`DRAIN_LIMIT`].
    drained: Option<Duration>,
    /// Processed per second while draining.
    drain_per_sec: f64,
    /// Stored and processed once greg was idle.
    final_stored: i64,
    final_processed: i64,
}

/// One line of the result table: greg, and the limit when it ran.
struct Row {
    scenario: Scenario,
    body_bytes: Vec<usize>,
    greg: Measured,
    processing: Processing,
    limit: Option<Measured>,
}

/// The `q` quantile (0..=1) of sorted microseconds, in milliseconds (nearest rank).
fn quantile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

fn run_scenario(settings: &Settings, scenario: Scenario, github_url: &str) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let greg = Greg::start(settings, dir.path(), github_url, &scenario.repos())?;
    eprintln!(
        "ingest: {}: greg on {} with {}, load for {:?} + {:?} warm-up",
        scenario.name(),
        greg.addr,
        greg.database.replace("options[search_path]", "search_path"),
        settings.duration,
        settings.warmup
    );
    let fixtures = Arc::new(fixtures(scenario, greg.addr)?);
    let body_bytes = fixtures.list.iter().map(|f| f.body.len()).collect();
    let sampler = Sampler::start(&greg.database)?;
    let (tally, window, ended) = load(settings, greg.addr, fixtures)?;
    let drained = greg.drain();
    // One more sample after idle, then the counts.
    std::thread::sleep(SAMPLE_EVERY + Duration::from_millis(50));
    let samples = sampler.stop()?;
    greg.stop();
    let (Some(start), Some(end), Some(last)) = (
        sample_at(&samples, window.from),
        sample_at(&samples, window.until),
        samples.last().copied(),
    ) else {
        bail!("the sampler took no sample");
    };
    let span = end.at.saturating_duration_since(start.at).as_secs_f64();
    let at_load_end = sample_at(&samples, ended).unwrap_or(end);
    let processing = Processing {
        per_sec: if span > 0.0 {
            (end.processed - start.processed) as f64 / span
        } else {
            f64::NAN
        },
        backlog_at_end: end.stored - end.processed,
        drained,
        // Too short a drain (under one sampling period) gives no rate.
        drain_per_sec: drained
            .filter(|d| *d >= 2 * SAMPLE_EVERY)
            .map_or(f64::NAN, |d| {
                (last.processed - at_load_end.processed) as f64 / d.as_secs_f64()
            }),
        final_stored: last.stored,
        final_processed: last.processed,
    };
    let greg = Measured::new(tally, settings);
    let limit = if settings.limit {
        let limit = Limit::start(settings)?;
        eprintln!(
            "ingest: {}: limit (bare HMAC handler) on {}",
            scenario.name(),
            limit.addr
        );
        let fixtures = Arc::new(self::fixtures(scenario, limit.addr)?);
        let (tally, _, _) = load(settings, limit.addr, fixtures)?;
        limit.stop();
        Some(Measured::new(tally, settings))
    } else {
        None
    };
    Ok(Row {
        scenario,
        body_bytes,
        greg,
        processing,
        limit,
    })
}

fn run(filter: &[&str]) -> anyhow::Result<()> {
    greg_testkit::install_crypto_provider();
    // greg's own warnings and errors (RUST_LOG to see more); info logging per delivery is
    // measured by bench/wrk.sh, which runs `greg serve` as deployed.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let settings = Settings::from_env()?;
    let scenarios: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .filter(|s| filter.is_empty() || filter.contains(&s.name()))
        .collect();
    if scenarios.is_empty() {
        bail!("no scenario named {filter:?}; expected synchronize, comment, mixed or spread");
    }
    // The fake GitHub runs on its own thread; processing here never calls it, but greg's
    // provider is configured against it rather than against the real API.
    let world = greg_testkit::World::new("greg-bot");
    for scenario in &scenarios {
        for repo in scenario.repos() {
            let (owner, name) = repo.split_once('/').unwrap_or((&repo, &repo));
            let repo = greg_core::RepoName::new(owner, name);
            // The start-up reconciliation lists each repository's open pull requests (none).
            // An error: created for an earlier scenario already.
            let _ = world.create_repo(&repo);
        }
    }
    let github = greg_testkit::FakeGithub::start(world)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut rows = Vec::new();
    for scenario in scenarios {
        rows.push(run_scenario(&settings, scenario, &github.url)?);
    }
    println!();
    println!(
        "ingest: {cores} cores; store: {}; actix workers: {}; load: {} connections on {} thread(s), {:?} measured after {:?} warm-up",
        settings.database.as_ref().map_or_else(
            || "SQLite file (WAL)".to_owned(),
            |_| format!("PostgreSQL, schema {}", settings.schema)
        ),
        settings
            .workers
            .map_or_else(|| format!("{cores} (one per core)"), |w| w.to_string()),
        settings.connections,
        settings.client_threads,
        settings.duration,
        settings.warmup,
    );
    println!(
        "{:<12} {:<6} {:>9} {:>8} {:>7} {:>7} {:>7} {:>7} {:>6} {:>8} {:>8} {:>9} {:>8}  body bytes",
        "scenario",
        "server",
        "accepted",
        "acc/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "proc/s",
        "backlog",
        "drained",
        "drain/s",
    );
    let mut failed = false;
    for r in &rows {
        let p = &r.processing;
        let drained = p.drained.map_or_else(
            || format!("> {}s", DRAIN_LIMIT.as_secs()),
            |d| format!("{:.1} s", d.as_secs_f64()),
        );
        let line = |server: &str, m: &Measured, tail: String| {
            println!(
                "{:<12} {:<6} {:>9} {:>8.0} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>6} {tail}",
                r.scenario.name(),
                server,
                m.accepted,
                m.per_sec,
                m.p50_ms,
                m.p90_ms,
                m.p99_ms,
                m.max_ms,
                m.error_count(),
            );
        };
        let (smallest, largest) = (
            r.body_bytes.iter().min().copied().unwrap_or(0),
            r.body_bytes.iter().max().copied().unwrap_or(0),
        );
        let bodies = match r.body_bytes.len() {
            0..=2 => format!("{:?}", r.body_bytes),
            n => format!("{n} x {smallest}-{largest}"),
        };
        line(
            "greg",
            &r.greg,
            format!(
                "{:>8.0} {:>8} {:>9} {:>8}  {bodies}",
                p.per_sec,
                p.backlog_at_end,
                drained,
                if p.drain_per_sec.is_nan() {
                    "-".to_owned()
                } else {
                    format!("{:.0}", p.drain_per_sec)
                }
            ),
        );
        if let Some(limit) = &r.limit {
            line("limit", limit, String::new());
            println!(
                "{:<12} greg/limit: {:.1} % of the limit's accepted/s; p99 {:.2} ms vs {:.2} ms",
                r.scenario.name(),
                100.0 * r.greg.per_sec / limit.per_sec,
                r.greg.p99_ms,
                limit.p99_ms,
            );
        }
        for (server, m) in
            std::iter::once(("greg", &r.greg)).chain(r.limit.as_ref().map(|l| ("limit", l)))
        {
            for (kind, n) in &m.errors {
                println!("    {server} error: {n} x {kind}");
            }
            if !m.stored_ok {
                println!("    {server} error: accepted answers and sequence numbers disagree");
                failed = true;
            }
            failed |= m.error_count() > 0;
        }
        if p.drained.is_some() && p.final_processed != p.final_stored {
            println!(
                "    error: greg idle with {} of {} deliveries processed",
                p.final_processed, p.final_stored
            );
            failed = true;
        }
    }
    println!(
        "targets (issue 12): processed/s >= accepted/s; greg >= 50 % of the limit's accepted/s and p99 < 10 ms at 64 connections"
    );
    println!(
        "proc/s: processed per second inside the window; backlog: stored - processed at its end; drained: time after the load until greg was idle; drain/s: processed per second then"
    );
    if failed {
        bail!("some requests were not accepted or not processed");
    }
    Ok(())
}
