//! `/metrics` (SPEC §9, issue 13 items 6 and 7): greg's counters in the OpenMetrics text, and a
//! real Prometheus (Debian's `prometheus`, installed by .ci/run) scraping greg and answering a
//! greg metric through its HTTP query API.
//!
//! The Prometheus test runs when `GREG_TEST_PROMETHEUS` names the binary (.ci/run sets it) or
//! `prometheus` is on the PATH; otherwise it prints `skipped` and passes.

use greg_core::{BuildOutcome, Permission};
use greg_testkit::tester::{JENKINS_TOKEN, TEST_JOB};
use greg_testkit::{GregTester, TesterOptions};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Labelled families that appear only once a queue exists or a build ran.
const LATER_FAMILIES: [&str; 6] = [
    "greg_merges",
    "greg_queue_length",
    "greg_builds_started",
    "greg_builds_finished",
    "greg_upstream_requests",
    "greg_upstream_rate_limit_remaining",
];

async fn scrape(t: &GregTester) -> anyhow::Result<(String, String)> {
    let resp = t.client().get(format!("{}/metrics", t.url)).send().await?;
    anyhow::ensure!(resp.status().as_u16() == 200, "status {}", resp.status());
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((content_type, resp.text().await?))
}

/// The value of the sample `name` (with its labels, as written) in an exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_greg_did() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    let body = json!({"repo": "acme/demo", "sha": head.as_str(), "pr": pr.0, "job": "unit",
        "status": "success"});
    let resp = t
        .client()
        .post(format!(
            "{}/api/reports?builder=jenkins&token={JENKINS_TOKEN}",
            t.url
        ))
        .json(&body)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 202);
    // The same report again: a duplicate.
    let again = t
        .client()
        .post(format!(
            "{}/api/reports?builder=jenkins&token={JENKINS_TOKEN}",
            t.url
        ))
        .json(&body)
        .send()
        .await?;
    assert!(again.text().await?.starts_with("duplicate"));
    t.settle().await?;
    t.engine.wait_idle().await;

    let (content_type, text) = scrape(&t).await?;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    // The pull request's webhook and the report came from GitHub's side, the build's
    // callbacks from Jenkins.
    assert_eq!(
        sample(&text, "greg_deliveries_accepted_total{source=\"github\"}"),
        Some(2.0),
        "{text}"
    );
    assert!(
        sample(&text, "greg_deliveries_accepted_total{source=\"jenkins\"}").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    let done = sample(&text, "greg_deliveries_processed_total{outcome=\"done\"}").unwrap_or(0.0);
    assert!(done >= 3.0, "{text}");
    assert_eq!(
        sample(&text, "greg_delivery_processing_seconds_count"),
        Some(done),
        "{text}"
    );
    assert_eq!(
        sample(&text, "greg_reports_total{status=\"success\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "greg_deliveries_duplicate_total{source=\"github\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "greg_report_comment_writes_total{outcome=\"create\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "greg_inbox_pending_deliveries"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(sample(&text, "greg_active_builds"), Some(0.0), "{text}");
    assert_eq!(
        sample(&text, "greg_queue_events_not_applicable"),
        Some(0.0),
        "{text}"
    );
    // Every metric the docs and the Grafana dashboard name exists (by family name).
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    let root = env!("CARGO_MANIFEST_DIR");
    // The metrics section of operations.md (other sections name other `greg_` things, such
    // as the `greg_session` cookie), and the dashboard.
    let operations = std::fs::read_to_string(format!("{root}/docs/operations.md"))?;
    let section = operations
        .split("\n## ")
        .find(|s| s.starts_with("9. Metrics"))
        .unwrap_or_default()
        .to_owned();
    assert!(section.contains("greg_queue_length"), "no metrics section");
    let docs = section + &std::fs::read_to_string(format!("{root}/docs/grafana-dashboard.json"))?;
    let mut named = 0;
    for word in docs.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        let Some(rest) = word.strip_prefix("greg_") else {
            continue;
        };
        if rest.is_empty() || rest.contains("yaml") {
            continue;
        }
        let family = ["_total", "_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| word.strip_suffix(suffix))
            .unwrap_or(word);
        // A labelled family appears with its first series; this world has no queue and no
        // merge build (metrics_show_each_queue_the_builds_and_the_process checks those).
        if !families.contains(&family) && LATER_FAMILIES.contains(&family) {
            continue;
        }
        assert!(
            families.contains(&family),
            "{word} is documented but not exposed"
        );
        named += 1;
    }
    assert!(named >= 12, "{named} metric names found in the docs");
    // No secret in the exposition.
    assert!(!text.contains(JENKINS_TOKEN) && !text.contains("gh-api-token"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_each_queue_the_builds_and_the_process() -> anyhow::Result<()> {
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: "    merge_mode: staging\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    t.set_permission("alice", Permission::Write)?;
    let (one, _) = t.open_pr("carol", "one").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    let (two, _) = t.open_pr("carol", "two").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Failure).await?;
    t.approve(one, "alice").await?;
    t.approve(two, "alice").await?;
    t.post_comment(one, "alice", "@greg please").await?;
    t.post_comment(two, "alice", "@greg please").await?;
    t.settle().await?;
    t.engine.wait_idle().await;

    let (_, text) = scrape(&t).await?;
    // #1 is being merged (its merge build runs), #2 waits behind it (its red test build
    // does not keep it out of a staging queue).
    let queued = sample(
        &text,
        "greg_queue_length{repo=\"acme/demo\",target=\"master\"}",
    );
    assert!(matches!(queued, Some(n) if n >= 1.0), "{text}");
    assert_eq!(sample(&text, "greg_queue_entries"), queued, "{text}");
    assert_eq!(
        sample(&text, "greg_builds_started_total{context=\"test\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "greg_builds_started_total{context=\"merge\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "greg_builds_finished_total{context=\"test\",result=\"success\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "greg_builds_finished_total{context=\"test\",result=\"failure\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // Every request to the fake GitHub and Jenkins is counted by service and status.
    for service in ["github", "jenkins"] {
        let ok: f64 = text
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "greg_upstream_requests_total{{service=\"{service}\",status=\"2"
                ))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(ok >= 2.0, "{service}: {text}");
    }
    // The process metrics keep their standard names (no greg_ prefix) and real values.
    let rss = sample(&text, "process_resident_memory_bytes").unwrap_or(0.0);
    assert!(rss > 1_000_000.0, "{text}");
    assert!(
        sample(&text, "process_cpu_seconds_total").unwrap_or(0.0) > 0.0,
        "{text}"
    );
    assert!(
        sample(&text, "process_open_fds").unwrap_or(0.0) >= 3.0,
        "{text}"
    );
    assert!(
        sample(&text, "process_start_time_seconds").unwrap_or(0.0) > 1.7e9,
        "{text}"
    );

    // The merge lands: the queue empties and its series disappears.
    t.finish_build(greg_testkit::tester::MERGE_JOB, BuildOutcome::Success)
        .await?;
    t.settle().await?;
    t.engine.wait_idle().await;
    let (_, text) = scrape(&t).await?;
    let left = sample(
        &text,
        "greg_queue_length{repo=\"acme/demo\",target=\"master\"}",
    );
    assert_ne!(left, queued, "{text}");
    assert_eq!(
        sample(&text, "greg_merges_total{result=\"landed\"}"),
        Some(1.0),
        "{text}"
    );
    // The comments greg posted are not this test's subject.
    drop(t);
    Ok(())
}

/// A Prometheus child process, killed when dropped.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_binary() -> Option<String> {
    if let Ok(bin) = std::env::var("GREG_TEST_PROMETHEUS")
        && !bin.is_empty()
    {
        return Some(bin);
    }
    let found = Command::new("sh")
        .args(["-c", "command -v prometheus"])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    (found.status.success() && !path.is_empty()).then_some(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_greg_and_answers_a_greg_metric() -> anyhow::Result<()> {
    let Some(bin) = prometheus_binary() else {
        println!("skipped: no prometheus binary (GREG_TEST_PROMETHEUS unset, none on PATH)");
        return Ok(());
    };
    let t = GregTester::start().await?;
    t.open_pr("carol", "feature").await?;
    let target = t.url.trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: greg\n    metrics_path: /metrics\n    static_configs:\n      \
             - targets: ['{target}']\n"
        ),
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
    let _prometheus = Prometheus(
        Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=greg_deliveries_accepted_total%7Bsource%3D%22github%22%7D"
    );
    let mut last = String::new();
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(resp) = t.client().get(&query).send().await else {
            continue;
        };
        let Ok(answer) = resp.json::<Value>().await else {
            continue;
        };
        last = answer.to_string();
        let value = answer["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value {
            assert_eq!(v, 1.0, "{answer}");
            assert_eq!(answer["data"]["result"][0]["metric"]["job"], "greg");
            return Ok(());
        }
    }
    anyhow::bail!(
        "Prometheus never answered the metric; last answer {last}; log: {}",
        std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
    )
}
