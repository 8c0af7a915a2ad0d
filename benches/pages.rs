//! Queue page benchmark (issue 13 item 11): the merge queue page of a repository with 500
//! queued pull requests, rendered by greg in-process on loopback.
//!
//! The store is filled before greg starts: 500 merge entries waiting for `master` of
//! `acme/demo` (the tree closed to them, so greg leaves them waiting and calls no provider),
//! and 50 finished merge builds, so every entry carries an ETA range. Then `GET
//! /queue/acme/demo` (as a browser asks, `Accept: text/html`) and its twin `GET
//! /api/queue/acme/demo` are each fetched 20 times to warm up and 200 times measured, one at a
//! time.
//!
//! Run: `cargo bench --bench pages` (release build). `GREG_BENCH_DATABASE` picks the store
//! (default: a fresh SQLite file; PostgreSQL: an empty schema, as for `benches/reports.rs`).
//! Prints p50, p90, p99 and max per route, and the page's size. Results:
//! docs/benchmarks.md.

#[path = "common/runtime.rs"]
mod runtime;

use anyhow::{Context as _, bail};
use greg_core::{BuildContext, JobName, Login, PrNumber, RepoName};
use greg_store::{BuildChange, BuildInsert, BuildRunState, NewBuild, NewQueueEntry, QueueKind};
use greg_testkit::{GregTester, TesterOptions, fake_sha};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const QUEUED: u64 = 500;
const HISTORY: u64 = 50;
const WARM_UP: usize = 20;
const RUNS: usize = 200;

fn main() -> ExitCode {
    runtime::main(run())
}

fn temp_sqlite() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = std::env::temp_dir().join(format!("greg-bench-pages-{n}.db"));
    format!("sqlite://{}", path.display())
}

/// Fills the store: the queue, its closed tree, and the build history.
async fn fill(database: &str) -> anyhow::Result<()> {
    let store = greg_store::Store::connect(database).await?;
    let repo = RepoName::new("acme", "demo");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let now = i64::try_from(now)?;
    for n in 0..HISTORY {
        let b = NewBuild {
            repo: repo.clone(),
            pr: Some(PrNumber(10_000 + n)),
            sha: fake_sha(&format!("history-{n}")),
            context: BuildContext::Merge,
            builder: "jenkins".to_owned(),
            job: JobName("demo-merge".to_owned()),
            branch: format!("greg/staging/master/{n}"),
            target: Some("master".to_owned()),
            now_ms: now - 3_600_000 + i64::try_from(n)? * 60_000,
        };
        let BuildInsert::Created(created) = store.insert_build(&b).await? else {
            bail!("history build {n} existed");
        };
        let state = if n % 7 == 0 {
            BuildRunState::Failure
        } else {
            BuildRunState::Success
        };
        let change = BuildChange {
            state: Some(state),
            ..Default::default()
        };
        let took = 300_000 + i64::try_from(n % 10)? * 30_000;
        store
            .update_build(created.id, &change, b.now_ms + took)
            .await?;
    }
    for n in 0..QUEUED {
        let e = NewQueueEntry {
            repo: repo.clone(),
            pr: PrNumber(n + 1),
            kind: QueueKind::Merge,
            target: "master".to_owned(),
            head_sha: fake_sha(&format!("queued-{n}")),
            approver: Login("alice".to_owned()),
            command: "please".to_owned(),
            priority: i32::try_from(n % 3)?,
            now_ms: now - 60_000 + i64::try_from(n)?,
        };
        store.enqueue(&e).await?;
    }
    store
        .set_tree_closure(&repo, "master", 100, &Login("alice".to_owned()), now)
        .await?;
    Ok(())
}

/// Fetches `path` `RUNS` times after `WARM_UP`; returns the sorted latencies and the size of
/// the last answer.
async fn measure(
    t: &GregTester,
    path: &str,
    accept: &str,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut times = Vec::with_capacity(RUNS);
    let mut size = 0;
    for i in 0..WARM_UP + RUNS {
        let started = Instant::now();
        let resp = t
            .client()
            .get(format!("{}{path}", t.url))
            .header("accept", accept)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let took = started.elapsed();
        if !status.is_success() {
            bail!("GET {path} answered {status}");
        }
        size = body.len();
        if i >= WARM_UP {
            times.push(took);
        }
    }
    times.sort();
    Ok((times, size))
}

fn pct(sorted: &[Duration], p: usize) -> f64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1) - 1;
    sorted
        .get(rank.min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

async fn run() -> anyhow::Result<()> {
    let database = std::env::var("GREG_BENCH_DATABASE").unwrap_or_else(|_| temp_sqlite());
    fill(&database).await.context("filling the store")?;
    let t = GregTester::start_with(TesterOptions {
        database: Some(database),
        repo_yaml: "    merge_mode: staging\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    t.settle().await?;
    let (page, page_size) = measure(&t, "/queue/acme/demo", "text/html").await?;
    let (api, api_size) = measure(&t, "/api/queue/acme/demo", "application/json").await?;
    let check = t
        .client()
        .get(format!("{}/api/queue/acme/demo", t.url))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    let entries = check["queues"][0]["entries"].as_array().map_or(0, Vec::len);
    let with_eta = check["queues"][0]["entries"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|e| !e["eta"].is_null()).count());
    println!("queue of {entries} entries, {with_eta} with an ETA; {RUNS} requests each");
    for (name, times, size) in [("page", &page, page_size), ("api", &api, api_size)] {
        println!(
            "{name}: {size} bytes; p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pct(times, 50),
            pct(times, 90),
            pct(times, 99),
            pct(times, 100)
        );
    }
    if entries != usize::try_from(QUEUED)? {
        bail!("the queue shows {entries} entries, not {QUEUED}");
    }
    t.finish().await
}
