//! Report benchmark (issue 10 item 10): 1,000 reports for 100 pull requests (10 jobs each; the
//! `unit` job of 20 of them fails with real Surefire failures) sent to greg in-process on
//! loopback, against the fake GitHub of greg-testkit.
//!
//! Run: `cargo bench --bench reports` (release build). `GREG_BENCH_DATABASE` picks the store
//! (default: a fresh SQLite file; e.g. `postgres://postgres@127.0.0.1:5432/test`, whose
//! `public` schema must be empty or greg's), `GREG_BENCH_CONNECTIONS` the concurrent senders
//! (default 16), `GREG_BENCH_DEBOUNCE_MS` the wait before a render (default: greg's, 1,000).
//! Reports go out in a shuffled order (a fixed seed), so every pull request's
//! jobs arrive interleaved with the others'; half of them name their pull request (`pr`), the
//! other half let greg find it from the commit (GitHub's commit→pulls).
//!
//! Figures printed:
//! - accepted reports/s: 1,000 over the time from the first send to the last 202;
//! - processed: the time until every comment shows every report (all `report_comments` rows
//!   with `done == wanted`, greg idle), and reports/s over it;
//! - comment writes per pull request: POSTs and PATCHes of comments on the fake GitHub;
//! - time from a report's 202 to the first comment write that shows it (its job row with its
//!   status), p50, p90, p99 and max, from the fake's request log.
//!
//! Results: docs/benchmarks.md.

#[path = "common/runtime.rs"]
mod runtime;

use anyhow::{Context as _, bail};
use greg_core::{PrNumber, Sha};
use greg_testkit::tester::JENKINS_TOKEN;
use greg_testkit::{GregTester, NewPr, Server, TesterOptions, fake_sha};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const PRS: u64 = 100;
const JOBS: usize = 10;
const FAILING_PRS: u64 = 20;
const JUNIT_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/greg-report/tests/data/junit"
);

fn main() -> ExitCode {
    runtime::main(run())
}

/// One report to send and when its 202 came back.
struct Sent {
    pr: PrNumber,
    job: String,
    status: &'static str,
    accepted_at: Instant,
}

async fn run() -> anyhow::Result<()> {
    let connections: usize = std::env::var("GREG_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let database = std::env::var("GREG_BENCH_DATABASE").ok();
    let mut opts = TesterOptions {
        database: database.clone(),
        ..TesterOptions::default()
    };
    // The report settings greg runs with (the tester shortens them for tests).
    let defaults = greg_engine::EngineOptions::default();
    opts.engine.report_lease = defaults.report_lease;
    opts.engine.report_sweep = defaults.report_sweep;
    opts.engine.report_debounce = std::env::var("GREG_BENCH_DEBOUNCE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(defaults.report_debounce, Duration::from_millis);
    let debounce = opts.engine.report_debounce;
    let t = GregTester::start_with(opts).await?;
    let failing =
        std::fs::read_to_string(format!("{JUNIT_DIR}/surefire-TEST-surefire.MyTest.xml"))?;
    let passing = std::fs::read_to_string(format!("{JUNIT_DIR}/jest-junit.xml"))?;

    let mut heads: HashMap<PrNumber, Sha> = HashMap::new();
    for n in 0..PRS {
        let head = fake_sha(&format!("bench-head-{n}"));
        let pr = t
            .world
            .open_pr(&t.repo, NewPr::new("carol", &format!("b{n}"), head.clone()))?;
        heads.insert(pr.number, head);
    }
    let mut work: Vec<(PrNumber, String, &'static str, Vec<u8>)> = Vec::new();
    let mut prs: Vec<PrNumber> = heads.keys().copied().collect();
    prs.sort();
    for (i, pr) in prs.iter().enumerate() {
        let head = &heads[pr];
        for j in 0..JOBS {
            let job = if j == 0 {
                "unit".to_owned()
            } else {
                format!("job-{j}")
            };
            let fails = j == 0 && (i as u64) < FAILING_PRS;
            let (status, xml) = if fails {
                ("failure", &failing)
            } else {
                ("success", &passing)
            };
            let mut body = json!({
                "repo": t.repo.to_string(), "sha": head.as_str(), "job": job, "status": status,
                "build_url": format!("https://ci.example/job/{job}/{}/", pr.0),
                "duration_ms": 60_000 + 1_000 * j as u64,
                "junit": [{"name": format!("{job}/junit.xml"), "xml": xml}],
            });
            if j % 2 == 0 {
                body["pr"] = Value::from(pr.0);
            }
            work.push((*pr, job, status, serde_json::to_vec(&body)?));
        }
    }
    shuffle(&mut work, 0x5eed);
    let total = work.len();
    let url = format!(
        "{}/api/reports?builder=jenkins&token={JENKINS_TOKEN}",
        t.url
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(60))
        .build()?;
    let queue = std::sync::Arc::new(std::sync::Mutex::new(work));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..connections {
        let (queue, client, url) = (queue.clone(), client.clone(), url.clone());
        senders.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some((pr, job, status, body)) = next else {
                    return Ok::<_, anyhow::Error>(sent);
                };
                let resp = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let code = resp.status().as_u16();
                let text = resp.text().await?;
                if code != 202 || !text.starts_with("accepted") {
                    bail!("report refused: {code} {text}");
                }
                sent.push(Sent {
                    pr,
                    job,
                    status,
                    accepted_at: Instant::now(),
                });
            }
        }));
    }
    let mut sent = Vec::with_capacity(total);
    for s in senders {
        sent.extend(s.await.context("sender panicked")??);
    }
    let accepted_in = started.elapsed();

    // Processed: every pull request's comment shows every report.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        t.engine.wait_idle().await;
        let mut behind = 0;
        for pr in &prs {
            match t.engine.store().report_comment(&t.repo, *pr).await? {
                Some(row) if row.done == JOBS as u64 && row.wanted == JOBS as u64 => {}
                _ => behind += 1,
            }
        }
        if behind == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{behind} pull requests still behind after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let processed_in = started.elapsed();

    // Comment writes, by pull request, from the fake's log.
    let mut comment_pr: HashMap<u64, PrNumber> = HashMap::new();
    for pr in &prs {
        for c in t.world.bot_comments(&t.repo, *pr) {
            comment_pr.insert(c.id.0, *pr);
        }
    }
    let mut writes: HashMap<PrNumber, Vec<(Instant, String)>> = HashMap::new();
    for r in t.world.requests() {
        if r.server != Server::Github {
            continue;
        }
        let body = r
            .json
            .as_ref()
            .and_then(|j| j["body"].as_str())
            .unwrap_or_default()
            .to_owned();
        let segments: Vec<&str> = r.path.split('/').collect();
        let pr = match (r.method.as_str(), segments.as_slice()) {
            ("POST", [.., "issues", n, "comments"]) => n.parse().ok().map(PrNumber),
            ("PATCH", [.., "comments", id]) => id
                .parse::<u64>()
                .ok()
                .and_then(|id| comment_pr.get(&id).copied()),
            _ => None,
        };
        if let Some(pr) = pr {
            writes.entry(pr).or_default().push((r.at, body));
        }
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(sent.len());
    for s in &sent {
        let row = format!(
            "| {} | {} {} |",
            s.job,
            if s.status == "failure" { "❌" } else { "✅" },
            s.status
        );
        let shown = writes.get(&s.pr).and_then(|w| {
            w.iter()
                .filter(|(at, body)| *at >= s.accepted_at && body.contains(&row))
                .map(|(at, _)| *at)
                .min()
                // The write that showed it may have been under way when the 202 came back.
                .or_else(|| {
                    w.iter()
                        .filter(|(_, b)| b.contains(&row))
                        .map(|(at, _)| *at)
                        .min()
                })
        });
        match shown {
            Some(at) => latencies.push(at.saturating_duration_since(s.accepted_at)),
            None => bail!("#{}: no comment write shows {row}", s.pr),
        }
    }
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i]
    };
    let write_counts: Vec<usize> = prs
        .iter()
        .map(|p| writes.get(p).map_or(0, Vec::len))
        .collect();
    let all_writes: usize = write_counts.iter().sum();
    let max_writes = write_counts.iter().copied().max().unwrap_or(0);
    let comments: usize = prs
        .iter()
        .map(|p| t.world.bot_comments(&t.repo, *p).len())
        .sum();

    println!(
        "store: {}",
        if database
            .as_deref()
            .is_some_and(|d| d.starts_with("postgres"))
        {
            "PostgreSQL"
        } else {
            "SQLite file"
        }
    );
    println!("report_debounce: {} ms", debounce.as_millis());
    println!(
        "reports: {total} for {PRS} pull requests ({JOBS} jobs each, {FAILING_PRS} with failed tests), {connections} senders"
    );
    println!(
        "accepted: {:.2} s, {:.0} reports/s",
        accepted_in.as_secs_f64(),
        total as f64 / accepted_in.as_secs_f64()
    );
    println!(
        "processed (every comment shows every report): {:.2} s, {:.0} reports/s",
        processed_in.as_secs_f64(),
        total as f64 / processed_in.as_secs_f64()
    );
    println!(
        "comments: {comments} ({} per pull request); comment writes: {all_writes}, {:.1} per pull request, at most {max_writes}",
        comments as f64 / PRS as f64,
        all_writes as f64 / PRS as f64
    );
    println!(
        "202 → comment shows it: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.90).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
    if comments != PRS as usize {
        bail!("{comments} report comments for {PRS} pull requests");
    }
    Ok(())
}

/// Fisher–Yates with a fixed xorshift seed: the same order every run.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = (seed % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
