//! Memory benchmark (issue 12 item 5): the resident set (`VmRSS` of /proc/<pid>/status) of
//! the real `greg serve` binary on a SQLite file, against the fake GitHub and Jenkins of
//! greg-testkit (configured as tests/common/greg_rig.rs configures them: one repository
//! `acme/demo` with a test and a merge job).
//!
//! Phases (name some after `--` to run only those):
//! - `idle`: a fresh database; RSS once greg answers `/healthz` and its CPU time has stopped
//!   growing (start-up and the first reconciliation done).
//! - `prs`: 10,000 open pull requests tracked (`GREG_BENCH_PRS`): the fake GitHub holds them
//!   open, and the store is filled through greg_store before greg starts, per pull request: a
//!   finished (green) test build of its head, the `greg/test` commit status, and a waiting merge
//!   queue entry for `master` (the tree closed, so the queue stays as it is and greg calls no
//!   builder). At start greg reconciles: lists the 10,000 open pull requests from the fake
//!   GitHub and checks each against its queue entry and status. RSS once the CPU time has stopped
//!   growing, then again after `GET /metrics` (the queue levels).
//! - `soak`: a fresh database; `issue_comment` deliveries (the comment fixture, no command) at
//!   `GREG_BENCH_RATE` per second (1000) for `GREG_BENCH_SOAK_SECS` (600) over
//!   `GREG_BENCH_CONNECTIONS` (16) keep-alive connections, each request at its scheduled time
//!   (an open loop: a late answer delays only its own connection); RSS every 10 s. Reported:
//!   first, min, max, last, and whether every sample after the first stays within ±10 % of the
//!   first (taken 10 s into the load).
//!
//! The binary: `GREG_BIN`, or `greg` beside this bench's build directory (target/release/greg:
//! run `cargo build --release` first). greg logs at `info` to a file, as deployed.
//!
//! Run: `cargo build --release && cargo bench --bench memory`. Results: docs/benchmarks.md.

#[path = "common/env.rs"]
mod env;
#[path = "common/http.rs"]
mod http;

use anyhow::{Context as _, bail};
use greg_core::{BuildContext, CommitState, JobName, Login, RepoName};
use greg_store::{BuildChange, BuildInsert, BuildRunState, NewBuild, NewQueueEntry, QueueKind};
use greg_testkit::tester::{GITHUB_TOKEN, MERGE_JOB, TEST_JOB, WEBHOOK_SECRET, tester_config_yaml};
use greg_testkit::{
    FakeGithub, FakeJenkins, GREG_PARAMETERS, NewPr, Outcome, TesterOptions, World, fake_sha,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const RSS_EVERY: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test --benches` runs the binary without `--bench`: not a test, say so.
    if !args.iter().any(|a| a == "--bench") {
        println!("memory: a benchmark; run it with `cargo bench --bench memory`");
        return ExitCode::SUCCESS;
    }
    let filter: Vec<String> = args.into_iter().filter(|a| !a.starts_with('-')).collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("memory: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&filter)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memory: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The `greg` binary: `GREG_BIN`, or `greg` in the profile directory above this bench's
/// `deps/`.
fn greg_bin() -> anyhow::Result<PathBuf> {
    if let Ok(bin) = std::env::var("GREG_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("greg"))
        .context("no directory above the bench binary")?;
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build --release` first, or set GREG_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// The fakes greg talks to, and greg's configuration in a directory of its own.
struct Rig {
    world: World,
    _github: FakeGithub,
    _jenkins: FakeJenkins,
    repo: RepoName,
    dir: tempfile::TempDir,
    database: String,
    port: u16,
}

impl Rig {
    fn new() -> anyhow::Result<Self> {
        greg_testkit::install_crypto_provider();
        let world = World::new("greg-bot");
        let github = FakeGithub::start(world.clone())?;
        let jenkins = FakeJenkins::start(world.clone())?;
        let opts = TesterOptions::default();
        let repo = opts.repo.clone();
        world.create_repo(&repo)?;
        world.create_job(TEST_JOB, GREG_PARAMETERS)?;
        world.create_job(MERGE_JOB, GREG_PARAMETERS)?;
        world.set_jenkins_credentials(Some(("greg", "jenkins-api-token")));
        world.script_outcome(TEST_JOB, None, Outcome::Manual);
        world.script_outcome(MERGE_JOB, None, Outcome::Manual);
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let database = format!("sqlite://{}", dir.path().join("greg.db").display());
        let yaml = tester_config_yaml(&github.url, &jenkins.url, &database, &opts).replace(
            "listen: 127.0.0.1:0",
            &format!("listen: 127.0.0.1:{port}\n  public_url: http://127.0.0.1:{port}"),
        );
        std::fs::write(dir.path().join("config.yaml"), yaml)?;
        Ok(Self {
            world,
            _github: github,
            _jenkins: jenkins,
            repo,
            dir,
            database,
            port,
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts `greg serve` and waits for `/healthz`, then for its CPU time to stop growing.
    async fn start_greg(&self, bin: &Path) -> anyhow::Result<Greg> {
        let log = std::fs::File::create(self.dir.path().join("greg.log"))?;
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(self.dir.path().join("config.yaml"))
            .env_remove("GREG_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let greg = Greg { child };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.url())).send().await
                && r.status().is_success()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "greg did not start; log: {}",
                    std::fs::read_to_string(self.dir.path().join("greg.log")).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        greg.settle(Duration::from_secs(300)).await?;
        Ok(greg)
    }
}

/// A `greg serve` child process.
struct Greg {
    child: Child,
}

impl Greg {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmRSS` in KiB.
    fn rss_kib(&self) -> anyhow::Result<u64> {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// User plus system CPU time in clock ticks (/proc/<pid>/stat fields 14 and 15).
    fn cpu_ticks(&self) -> anyhow::Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        let after = stat.rsplit_once(')').context("malformed stat")?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields after the command: state is field 3, so utime (14) is index 11.
        let utime: u64 = fields.get(11).context("no utime")?.parse()?;
        let stime: u64 = fields.get(12).context("no stime")?.parse()?;
        Ok(utime + stime)
    }

    /// Waits until greg used at most 2 clock ticks of CPU in each of two consecutive seconds.
    async fn settle(&self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut quiet = 0;
        let mut last = self.cpu_ticks()?;
        while quiet < 2 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = self.cpu_ticks()?;
            quiet = if now - last <= 2 { quiet + 1 } else { 0 };
            last = now;
            if started.elapsed() > limit {
                bail!("greg was still busy after {limit:?}");
            }
        }
        Ok(())
    }

    /// SIGTERM, then waits for the exit.
    fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.pid().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        for _ in 0..3000 {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("greg did not exit within 30 s of SIGTERM")
    }
}

impl Drop for Greg {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `kB` line of /proc/<pid>/status, in KiB.
fn proc_status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .with_context(|| format!("no {key} in /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("malformed status line")?
        .parse()?)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn now_ms() -> anyhow::Result<i64> {
    Ok(i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?)
}

/// Opens `prs` pull requests on the fake GitHub and fills the store for each: a green test
/// build of its head, the `greg/test` status, a waiting merge entry; the tree of `master`
/// closed.
async fn seed(rig: &Rig, prs: u64) -> anyhow::Result<()> {
    let store = greg_store::Store::connect(&rig.database).await?;
    let now = now_ms()?;
    let started = Instant::now();
    for n in 0..prs {
        let head = fake_sha(&format!("memory-head-{n}"));
        let branch = format!("feature-{n}");
        let pr = rig
            .world
            .open_pr(&rig.repo, NewPr::new("carol", &branch, head.clone()))?;
        let build = NewBuild {
            repo: rig.repo.clone(),
            pr: Some(pr.number),
            sha: head.clone(),
            context: BuildContext::Test,
            builder: "jenkins".to_owned(),
            job: JobName(TEST_JOB.to_owned()),
            branch,
            target: None,
            now_ms: now - 3_600_000,
        };
        let BuildInsert::Created(created) = store.insert_build(&build).await? else {
            bail!("build of pull request {} existed", pr.number);
        };
        let change = BuildChange {
            state: Some(BuildRunState::Success),
            ..Default::default()
        };
        store
            .update_build(created.id, &change, now - 3_000_000)
            .await?;
        store
            .set_commit_status(
                &rig.repo,
                &head,
                BuildContext::Test.status_context(),
                CommitState::Success,
                now - 3_000_000,
            )
            .await?;
        let entry = NewQueueEntry {
            repo: rig.repo.clone(),
            pr: pr.number,
            kind: QueueKind::Merge,
            target: "master".to_owned(),
            head_sha: head,
            approver: Login("alice".to_owned()),
            command: "please".to_owned(),
            priority: 0,
            now_ms: now - 60_000 + i64::try_from(n)?,
        };
        store.enqueue(&entry).await?;
        if (n + 1) % 2000 == 0 {
            eprintln!(
                "memory: {} pull requests seeded in {:.1} s",
                n + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    store
        .set_tree_closure(&rig.repo, "master", 100, &Login("alice".to_owned()), now)
        .await?;
    store.close().await;
    Ok(())
}

/// Sends comment deliveries at `rate` per second for `secs` over `connections` connections;
/// samples greg's RSS every [`RSS_EVERY`]. Returns the samples (seconds into the load, KiB)
/// and the number of accepted requests and errors.
async fn soak(
    rig: &Rig,
    greg: &Greg,
    rate: u64,
    secs: u64,
    connections: usize,
) -> anyhow::Result<(Vec<(u64, u64)>, u64, u64)> {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", rig.port).parse()?;
    let fixture = std::sync::Arc::new(http::Fixture::new(
        http::COMMENT_JSON,
        "issue_comment",
        &rig.repo.to_string(),
        GITHUB_TOKEN,
        WEBHOOK_SECRET,
        addr,
    )?);
    let run_id = http::run_id();
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs(secs);
    let interval = Duration::from_secs_f64(connections as f64 / rate as f64);
    let offset = Duration::from_secs_f64(1.0 / rate as f64);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let fixture = fixture.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = http::Conn::new(addr);
            let mut request = Vec::with_capacity(16 * 1024);
            let (mut accepted, mut errors) = (0u64, 0u64);
            let mut at = start + offset * u32::try_from(c).unwrap_or(0);
            let mut n = 0u64;
            while at < end {
                tokio::time::sleep_until(at).await;
                fixture.write_request(&http::delivery_id(run_id, c, n), &mut request);
                n += 1;
                match conn.send(&request).await {
                    Ok(a) if a.accepted_seq().is_ok() => accepted += 1,
                    _ => errors += 1,
                }
                at += interval;
            }
            (accepted, errors)
        }));
    }
    let mut samples = Vec::new();
    let mut next = start + RSS_EVERY;
    while next <= end {
        tokio::time::sleep_until(next).await;
        let s = (next - start).as_secs();
        let rss = greg.rss_kib()?;
        eprintln!("memory: soak {s:>4} s: VmRSS {:.1} MiB", mib(rss));
        samples.push((s, rss));
        next += RSS_EVERY;
    }
    let (mut accepted, mut errors) = (0, 0);
    for t in tasks {
        let (a, e) = t.await?;
        accepted += a;
        errors += e;
    }
    Ok((samples, accepted, errors))
}

async fn run(filter: &[String]) -> anyhow::Result<()> {
    let wants = |phase: &str| filter.is_empty() || filter.iter().any(|f| f == phase);
    if !["idle", "prs", "soak"].iter().any(|p| wants(p)) {
        bail!("no phase named {filter:?}; expected idle, prs or soak");
    }
    let bin = greg_bin()?;
    let mut lines = Vec::new();
    let mut failed = false;
    if wants("idle") {
        let rig = Rig::new()?;
        let greg = rig.start_greg(&bin).await?;
        let rss = greg.rss_kib()?;
        let hwm = proc_status_kib(greg.pid(), "VmHWM:")?;
        greg.stop()?;
        lines.push(format!(
            "idle:  VmRSS {:.1} MiB (peak VmHWM {:.1} MiB); target < 30 MiB",
            mib(rss),
            mib(hwm)
        ));
        eprintln!("memory: {}", lines.last().map_or("", String::as_str));
    }
    if wants("prs") {
        let prs = env::positive("GREG_BENCH_PRS", 10_000)?;
        let rig = Rig::new()?;
        seed(&rig, prs).await.context("seeding the store")?;
        let greg = rig.start_greg(&bin).await?;
        let rss = greg.rss_kib()?;
        let metrics = reqwest::get(format!("{}/metrics", rig.url())).await?;
        if !metrics.status().is_success() {
            bail!("GET /metrics answered {}", metrics.status());
        }
        let body = metrics.text().await?;
        let queued = body
            .lines()
            .find(|l| l.starts_with("greg_queue_length") || l.starts_with("greg_queue_entries"))
            .unwrap_or("(no queue line in /metrics)")
            .to_owned();
        let after = greg.rss_kib()?;
        let hwm = proc_status_kib(greg.pid(), "VmHWM:")?;
        let log = std::fs::read_to_string(rig.dir.path().join("greg.log")).unwrap_or_default();
        let warnings = log.lines().filter(|l| l.contains("WARN")).count();
        greg.stop()?;
        lines.push(format!(
            "{prs} PRs: VmRSS {:.1} MiB settled, {:.1} MiB after GET /metrics (peak VmHWM {:.1} MiB); target < 150 MiB; {queued}; {warnings} warnings in the log",
            mib(rss),
            mib(after),
            mib(hwm)
        ));
        eprintln!("memory: {}", lines.last().map_or("", String::as_str));
    }
    if wants("soak") {
        let rate = env::positive("GREG_BENCH_RATE", 1000)?;
        let secs = env::positive("GREG_BENCH_SOAK_SECS", 600)?;
        let connections = usize::try_from(env::positive("GREG_BENCH_CONNECTIONS", 16)?)?;
        let rig = Rig::new()?;
        let greg = rig.start_greg(&bin).await?;
        let before = greg.rss_kib()?;
        let (samples, accepted, errors) = soak(&rig, &greg, rate, secs, connections).await?;
        let drain_started = Instant::now();
        greg.settle(Duration::from_secs(600)).await?;
        let drained = drain_started.elapsed();
        let after = greg.rss_kib()?;
        greg.stop()?;
        let pending = {
            let store = greg_store::Store::connect(&rig.database).await?;
            let n = store.pending_delivery_count().await?;
            store.close().await;
            n
        };
        let Some(&(_, first)) = samples.first() else {
            bail!("the soak took no sample (GREG_BENCH_SOAK_SECS < 10?)");
        };
        let last = samples.last().map_or(first, |s| s.1);
        let min = samples.iter().map(|s| s.1).min().unwrap_or(first);
        let max = samples.iter().map(|s| s.1).max().unwrap_or(first);
        let flat = samples
            .iter()
            .all(|s| (s.1 as f64 - first as f64).abs() <= 0.10 * first as f64);
        let achieved = accepted as f64 / secs as f64;
        lines.push(format!(
            "soak {secs} s at {rate}/s ({achieved:.0}/s accepted, {errors} errors, {connections} connections): VmRSS before {:.1}, first (10 s) {:.1}, min {:.1}, max {:.1}, last {:.1}, after idle {:.1} MiB; {} within ±10 % of the first; idle again {:.1} s after the load, {pending} deliveries pending at stop",
            mib(before),
            mib(first),
            mib(min),
            mib(max),
            mib(last),
            mib(after),
            if flat { "flat: every sample" } else { "NOT flat: not every sample" },
            drained.as_secs_f64(),
        ));
        lines.push(format!(
            "soak samples (s: MiB): {}",
            samples
                .iter()
                .map(|(s, k)| format!("{s}: {:.1}", mib(*k)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        failed |= errors > 0;
    }
    println!();
    println!(
        "memory: greg {} serve on SQLite, {} cores",
        bin.display(),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    for l in &lines {
        println!("{l}");
    }
    if failed {
        bail!("some soak requests were not accepted");
    }
    Ok(())
}
