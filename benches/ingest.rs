//! Webhook ingestion benchmark (issue 2, item 14): greg in-process on loopback, fed signed
//! GitHub deliveries by an in-process load generator, with the durable inbox on (SQLite file
//! in WAL mode, written before every 202).
//!
//! Run: `cargo bench --bench ingest` (release build). Scenarios, in order: `synchronize`
//! (tests/data/github/pull_request.synchronize.json), `comment`
//! (tests/data/github/issue_comment.created.on-pull-request.json) and `mixed` (the two
//! alternating); name some after `--` to run only those. `repository.full_name` of both
//! fixtures is set to the configured repository, everything else is sent as recorded (compact
//! JSON). Every request carries a fresh `X-GitHub-Delivery` id; a request counts as accepted
//! only when it is answered 202 with an `accepted: delivery N queued` body, anything else is an
//! error.
//!
//! Each scenario starts a fresh greg (new database file, same fake GitHub from greg-testkit as
//! `api_url`) configured for one repository without jobs, so processing is cheap and never
//! calls Jenkins. greg runs as `greg serve` does: a multi-threaded tokio runtime for the engine
//! and actix-web workers (one per core unless `GREG_BENCH_WORKERS` says otherwise). The load
//! generator runs on its own runtime: `GREG_BENCH_CONNECTIONS` (64) keep-alive connections,
//! each a closed loop (send, read the whole answer, send the next), `GREG_BENCH_WARMUP_SECS`
//! (2) of warm-up, then `GREG_BENCH_SECS` (10) measured. A request counts in the figures when
//! it started and finished inside the measured window. Both sides share the machine's cores,
//! as wrk does in `bench/wrk.sh`.
//!
//! The client is a minimal HTTP/1.1 writer and reader (request bytes prepared once per
//! fixture, only the delivery id changes; the answer read by `Content-Length`), so that it takes
//! as little CPU from greg as it can. Results: docs/benchmarks.md.

use anyhow::{Context as _, anyhow, bail};
use greg_engine::{Engine, EngineOptions, SystemClock};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The repository greg is configured for; both fixtures are rewritten to name it.
const REPO: &str = "acme/demo";
const INCOMING_TOKEN: &str = "bench-incoming";
const WEBHOOK_SECRET: &str = "bench webhook secret";
const SYNCHRONIZE_JSON: &str = include_str!("../tests/data/github/pull_request.synchronize.json");
const COMMENT_JSON: &str =
    include_str!("../tests/data/github/issue_comment.created.on-pull-request.json");
/// How long to wait after the load for greg to process its backlog.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// The largest answer head the client accepts.
const MAX_HEAD: usize = 16 * 1024;

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
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        fn var(name: &str, default: u64) -> anyhow::Result<u64> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .with_context(|| format!("{name}: expected a positive integer, got `{v}`")),
                Err(_) => Ok(default),
            }
        }
        let workers = match std::env::var("GREG_BENCH_WORKERS") {
            Ok(_) => Some(usize::try_from(var("GREG_BENCH_WORKERS", 1)?)?),
            Err(_) => None,
        };
        Ok(Self {
            connections: usize::try_from(var("GREG_BENCH_CONNECTIONS", 64)?)?,
            warmup: Duration::from_secs(var("GREG_BENCH_WARMUP_SECS", 2)?),
            duration: Duration::from_secs(var("GREG_BENCH_SECS", 10)?),
            workers,
            client_threads: usize::try_from(var("GREG_BENCH_CLIENT_THREADS", 1)?)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Synchronize,
    Comment,
    Mixed,
}

impl Scenario {
    const ALL: [Scenario; 3] = [Scenario::Synchronize, Scenario::Comment, Scenario::Mixed];

    fn name(self) -> &'static str {
        match self {
            Scenario::Synchronize => "synchronize",
            Scenario::Comment => "comment",
            Scenario::Mixed => "mixed",
        }
    }
}

/// One signed delivery, ready to send but for its delivery id.
struct Fixture {
    /// The request line and every header but `X-GitHub-Delivery`, ending in `\r\n`.
    head: Vec<u8>,
    body: Vec<u8>,
}

impl Fixture {
    /// Rewrites `repository.full_name` of the vendor payload `json` to [`REPO`], signs it with
    /// [`WEBHOOK_SECRET`] and prepares the request head for `addr`.
    fn new(json: &str, event: &str, addr: SocketAddr) -> anyhow::Result<Self> {
        let mut payload: serde_json::Value = serde_json::from_str(json)?;
        let name = payload
            .pointer_mut("/repository/full_name")
            .context("the fixture has no repository.full_name")?;
        *name = serde_json::Value::from(REPO);
        let body = serde_json::to_vec(&payload)?;
        let signature = greg_testkit::sign(WEBHOOK_SECRET, &body);
        let head = format!(
            "POST /repo?provider=github&token={INCOMING_TOKEN} HTTP/1.1\r\n\
             Host: {addr}\r\n\
             User-Agent: GitHub-Hookshot/bench\r\n\
             Content-Type: application/json\r\n\
             X-GitHub-Event: {event}\r\n\
             X-Hub-Signature-256: {signature}\r\n\
             Content-Length: {}\r\n",
            body.len()
        );
        Ok(Self {
            head: head.into_bytes(),
            body,
        })
    }

    /// The whole request with delivery id `id`, into `out`.
    fn write_request(&self, id: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"X-GitHub-Delivery: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
    }
}

fn fixtures(scenario: Scenario, addr: SocketAddr) -> anyhow::Result<Vec<Fixture>> {
    let sync = || Fixture::new(SYNCHRONIZE_JSON, "pull_request", addr);
    let comment = || Fixture::new(COMMENT_JSON, "issue_comment", addr);
    Ok(match scenario {
        Scenario::Synchronize => vec![sync()?],
        Scenario::Comment => vec![comment()?],
        Scenario::Mixed => vec![sync()?, comment()?],
    })
}

/// greg's configuration: one repository without jobs, no builder.
fn config_yaml(database: &str, github_url: &str) -> String {
    let (owner, name) = REPO.split_once('/').unwrap_or((REPO, REPO));
    format!(
        r#"server:
  listen: 127.0.0.1:0
  database: {database}
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
    organizations: [{owner}]
    names: [{name}]
"#
    )
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
    fn start(settings: &Settings, dir: &std::path::Path, github_url: &str) -> anyhow::Result<Self> {
        // As `greg serve`: a multi-threaded runtime, one worker per core.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("greg")
            .build()?;
        let database = format!("sqlite://{}", dir.join("greg.db").display());
        let config =
            greg_config::Config::from_yaml_str(&config_yaml(&database, github_url), &|_| None)
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

/// One answer as the client read it.
struct Answer {
    status: u16,
    body: Vec<u8>,
    close: bool,
}

/// One keep-alive connection in a closed loop until the window ends.
async fn connection(
    addr: SocketAddr,
    index: usize,
    run_id: u32,
    fixtures: Arc<Vec<Fixture>>,
    window: Window,
) -> Tally {
    let mut tally = Tally::default();
    let mut stream: Option<TcpStream> = None;
    let mut request = Vec::with_capacity(64 * 1024);
    let mut pending = Vec::with_capacity(4 * 1024);
    let mut n: u64 = 0;
    loop {
        let started = Instant::now();
        if started >= window.until {
            break;
        }
        // A GUID-shaped id, unique per run, connection and request.
        let id = format!("{run_id:08x}-{index:04x}-4000-8000-{n:012x}");
        let fixture = &fixtures[(index + n as usize) % fixtures.len()];
        n += 1;
        fixture.write_request(&id, &mut request);
        let result = async {
            let s = match stream.as_mut() {
                Some(s) => s,
                None => {
                    let s = TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    stream.insert(s)
                }
            };
            s.write_all(&request).await?;
            read_answer(s, &mut pending).await
        }
        .await;
        let finished = Instant::now();
        let measured = started >= window.from && finished <= window.until;
        let outcome = match result {
            Ok(answer) => {
                if answer.close {
                    stream = None;
                }
                let text = String::from_utf8_lossy(&answer.body);
                match text.strip_prefix("accepted: delivery ") {
                    Some(rest) if answer.status == 202 => {
                        let seq = rest.split_whitespace().next().and_then(|s| s.parse().ok());
                        tally.max_seq = tally.max_seq.max(seq.unwrap_or(0));
                        tally.accepted_total += 1;
                        Ok(())
                    }
                    _ => Err(format!(
                        "{} {}",
                        answer.status,
                        text.lines().next().unwrap_or("").trim()
                    )),
                }
            }
            Err(e) => {
                stream = None;
                pending.clear();
                Err(format!("connection: {}", e.kind()))
            }
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

/// Reads one HTTP/1.1 answer (status line, headers, `Content-Length` body) from `stream`;
/// `pending` keeps bytes read past it.
async fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>) -> std::io::Result<Answer> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let head_len = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if pending.len() > MAX_HEAD {
            return Err(invalid("answer head too large"));
        }
        if stream.read_buf(pending).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    };
    let head = std::str::from_utf8(&pending[..head_len]).map_err(|_| invalid("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let mut length = None;
    let mut close = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let length = length.ok_or_else(|| invalid("answer without Content-Length"))?;
    while pending.len() < head_len + length {
        if stream.read_buf(pending).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    let body = pending[head_len..head_len + length].to_vec();
    pending.drain(..head_len + length);
    Ok(Answer {
        status,
        body,
        close,
    })
}

/// Runs the load generator against `addr` on its own runtime; returns the merged tally.
fn load(settings: &Settings, addr: SocketAddr, fixtures: Vec<Fixture>) -> anyhow::Result<Tally> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .enable_all()
        .thread_name("load")
        .build()?;
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    let fixtures = Arc::new(fixtures);
    let tally = runtime.block_on(async {
        let from = Instant::now() + settings.warmup;
        let window = Window {
            from,
            until: from + settings.duration,
        };
        let tasks: Vec<_> = (0..settings.connections)
            .map(|i| tokio::spawn(connection(addr, i, run_id, fixtures.clone(), window)))
            .collect();
        let mut tally = Tally::default();
        for t in tasks {
            tally.merge(t.await?);
        }
        anyhow::Ok(tally)
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(tally)
}

/// One line of the result table.
struct Row {
    scenario: Scenario,
    body_bytes: Vec<usize>,
    accepted: usize,
    per_sec: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: BTreeMap<String, u64>,
    drained: Option<Duration>,
    stored_ok: bool,
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
    let greg = Greg::start(settings, dir.path(), github_url)?;
    eprintln!(
        "ingest: {}: greg on {} with {}, load for {:?} + {:?} warm-up",
        scenario.name(),
        greg.addr,
        greg.database,
        settings.duration,
        settings.warmup
    );
    let fixtures = fixtures(scenario, greg.addr)?;
    let body_bytes = fixtures.iter().map(|f| f.body.len()).collect();
    let mut tally = load(settings, greg.addr, fixtures)?;
    let drained = greg.drain();
    greg.stop();
    tally.latencies_us.sort_unstable();
    let sorted = &tally.latencies_us;
    Ok(Row {
        scenario,
        body_bytes,
        accepted: sorted.len(),
        per_sec: sorted.len() as f64 / settings.duration.as_secs_f64(),
        p50_ms: quantile_ms(sorted, 0.50),
        p90_ms: quantile_ms(sorted, 0.90),
        p99_ms: quantile_ms(sorted, 0.99),
        max_ms: quantile_ms(sorted, 1.0),
        errors: tally.errors,
        drained,
        // Inbox sequence numbers count from 1 without gaps in a fresh database, so the highest
        // one answered is the number of rows: every accepted answer was a new stored row.
        stored_ok: i64::try_from(tally.accepted_total).ok() == Some(tally.max_seq),
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
        bail!("no scenario named {filter:?}; expected synchronize, comment or mixed");
    }
    // The fake GitHub runs on its own thread; processing here never calls it, but greg's
    // provider is configured against it rather than against the real API.
    let github = greg_testkit::FakeGithub::start(greg_testkit::World::new("greg-bot"))?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut rows = Vec::new();
    for scenario in scenarios {
        rows.push(run_scenario(&settings, scenario, &github.url)?);
    }
    println!();
    println!(
        "ingest: {cores} cores; actix workers: {}; load: {} connections on {} thread(s), {:?} measured after {:?} warm-up",
        settings
            .workers
            .map_or_else(|| format!("{cores} (one per core)"), |w| w.to_string()),
        settings.connections,
        settings.client_threads,
        settings.duration,
        settings.warmup,
    );
    println!(
        "{:<12} {:>11} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}  {:<14} body bytes",
        "scenario",
        "accepted",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "drained"
    );
    let mut failed = false;
    for r in &rows {
        let errors: u64 = r.errors.values().sum();
        let drained = r.drained.map_or_else(
            || format!("> {DRAIN_LIMIT:?}"),
            |d| format!("{:.1} s", d.as_secs_f64()),
        );
        println!(
            "{:<12} {:>11} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}  {:<14} {:?}",
            r.scenario.name(),
            r.accepted,
            r.per_sec,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            errors,
            drained,
            r.body_bytes,
        );
        for (kind, n) in &r.errors {
            println!("    error: {n} x {kind}");
        }
        if !r.stored_ok {
            println!("    error: accepted answers and stored rows disagree");
            failed = true;
        }
        failed |= errors > 0;
    }
    println!(
        "target: >= 5000 accepted/s and p99 < 20 ms; `drained`: time after the load until greg had processed every accepted delivery"
    );
    if failed {
        bail!("some requests were not accepted");
    }
    Ok(())
}
