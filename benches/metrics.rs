//! `/metrics` scrape benchmark (issue 13 item 11): a Prometheus scrape of greg serving 1,000
//! repositories, each with a merge queue on two targets (2,000 `greg_queue_length` series),
//! over loopback HTTP to greg in-process (greg-testkit's tester, fake GitHub and Jenkins).
//!
//! Run: `cargo bench --bench metrics` (release build). `GREG_BENCH_DATABASE` picks the store
//! (default: a fresh SQLite file; e.g. `postgres://postgres@127.0.0.1:5432/test`, whose
//! `public` schema must be empty or greg's), `GREG_BENCH_REPOS` the repositories (default
//! 1,000), `GREG_BENCH_SCRAPES` the timed scrapes (default 200, after 10 untimed).
//!
//! Figures printed: series in the answer, answer size, and the time of one scrape (request
//! sent to the last byte read: the store's aggregate queries, the process metrics from
//! /proc, the encoding and HTTP) as p50, p90, p99 and max. Results: docs/benchmarks.md.

#[path = "common/runtime.rs"]
mod runtime;

use anyhow::Context as _;
use greg_core::{Login, PrNumber, RepoName};
use greg_store::{NewQueueEntry, QueueKind};
use greg_testkit::{GregTester, TesterOptions, fake_sha};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v} is not a number")),
        Err(_) => Ok(default),
    }
}

fn main() -> ExitCode {
    runtime::main(run())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run() -> anyhow::Result<()> {
    let repos = env_usize("GREG_BENCH_REPOS", 1000)?;
    let scrapes = env_usize("GREG_BENCH_SCRAPES", 200)?;
    let mut opts = TesterOptions::default();
    if let Ok(url) = std::env::var("GREG_BENCH_DATABASE") {
        opts.database = Some(url);
    }
    let t = GregTester::start_with(opts).await?;
    let store = t.engine.store();
    let now = 1_800_000_000_000_i64;
    let started = Instant::now();
    for r in 0..repos {
        let repo = RepoName::new(format!("org{}", r % 37), format!("service-{r:04}"));
        // 1 to 4 entries on master, 1 on release.
        for (n, target) in (0..(1 + r % 4))
            .map(|_| "master")
            .chain(std::iter::once("release"))
            .enumerate()
        {
            let entry = NewQueueEntry {
                repo: repo.clone(),
                pr: PrNumber(u64::try_from(n + 1)?),
                kind: QueueKind::Merge,
                target: target.to_owned(),
                head_sha: fake_sha(&format!("{r}-{n}")),
                approver: Login("alice".to_owned()),
                command: "please".to_owned(),
                priority: 0,
                now_ms: now,
            };
            store.enqueue(&entry).await?;
        }
    }
    println!(
        "store: {repos} repositories with queues on 2 targets, written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let url = format!("{}/metrics", t.url);
    let client = t.client().clone();
    let mut body = String::new();
    for _ in 0..10 {
        body = client
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
    }
    let series = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    let queue_series = body
        .lines()
        .filter(|l| l.starts_with("greg_queue_length{"))
        .count();
    anyhow::ensure!(
        queue_series == repos * 2,
        "{queue_series} queue series for {repos} repositories"
    );
    let mut times = Vec::with_capacity(scrapes);
    for _ in 0..scrapes {
        let t0 = Instant::now();
        let text = client
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        times.push(t0.elapsed());
        anyhow::ensure!(text.ends_with("# EOF\n"), "a scrape was cut short");
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "scrape: {series} series ({queue_series} queue lengths), {} bytes",
        body.len()
    );
    println!(
        "scrape time over {scrapes} scrapes: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(percentile(&times, 0.99)),
        ms(percentile(&times, 1.0)),
    );
    drop(t);
    Ok(())
}
