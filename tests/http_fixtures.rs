//! Every captured GitHub delivery under tests/data/github/ (issue 2 item 10), posted to greg's
//! `/repo` correctly signed, with `X-GitHub-Event` from the file name (`<event>.<action>...json`,
//! tests/data/SOURCES.md). greg is configured for every repository the fixtures name, so the
//! answer shows what greg makes of the payload itself: `accepted` for the deliveries greg acts on,
//! `ignored: <reason>` for the rest (a snapshot table). The fixture repositories do not exist in
//! the fake world, so greg's calls about them fail with 404: the test checks that greg then
//! finishes every delivery, goes quiet (no retry loop) and keeps serving.

use greg_core::RepoName;
use greg_testkit::tester::{GITHUB_TOKEN, JENKINS_TOKEN, MERGE_JOB, TEST_JOB, WEBHOOK_SECRET};
use greg_testkit::{GregTester, NewPr, TesterOptions, fake_sha, sign};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Every credential of the tester's configuration: none may appear in greg's logs.
const SECRETS: [&str; 5] = [
    GITHUB_TOKEN,
    WEBHOOK_SECRET,
    JENKINS_TOKEN,
    "gh-api-token",
    "jenkins-api-token",
];

// Log capture: one global subscriber for this test binary, installed before the GregTester
// (whose own `try_init` then does nothing), writing into a shared buffer.

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

fn logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,greg_engine=debug,greg_server=debug,greg_testkit=off",
            ))
            .with_ansi(false)
            .with_writer(buffer.clone())
            .try_init()
            .expect("the log capture is the first subscriber of this test binary");
        buffer
    })
}

/// One fixture: its file name, event (from the file name) and body as stored.
struct Fixture {
    file: String,
    event: String,
    body: Vec<u8>,
    repository: Option<RepoName>,
}

/// Every tests/data/github/*.json except the OpenAPI description, sorted by file name.
fn fixtures() -> anyhow::Result<Vec<Fixture>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/github");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_owned();
        if !file.ends_with(".json") || file == "openapi-subset.json" {
            continue;
        }
        let body = std::fs::read(&path)?;
        let json: Value = serde_json::from_slice(&body)?;
        let repository = json["repository"]["full_name"]
            .as_str()
            .and_then(RepoName::parse);
        let event = file.split('.').next().unwrap_or_default().to_owned();
        out.push(Fixture {
            file,
            event,
            body,
            repository,
        });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

/// Posts one fixture, signed, with a delivery id of its own.
async fn post(t: &GregTester, f: &Fixture, n: usize) -> anyhow::Result<(u16, String)> {
    let resp = t
        .client()
        .post(t.repo_hook_url())
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/fixture")
        .header("x-github-event", &f.event)
        .header(
            "x-github-delivery",
            format!("00000000-f1f7-4000-8000-{n:012x}"),
        )
        .header("x-hub-signature-256", sign(WEBHOOK_SECRET, &f.body))
        .body(f.body.clone())
        .send()
        .await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

/// `accepted: delivery N queued` without the sequence number (it follows the table order).
fn stable(answer: &str) -> String {
    let answer = answer.trim_end();
    match answer.strip_prefix("accepted: delivery ") {
        Some(rest) if rest.ends_with(" queued") => "accepted: delivery queued".to_owned(),
        _ => answer.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_github_fixture_is_accepted_or_ignored_with_a_reason() -> anyhow::Result<()> {
    logs();
    let fixtures = fixtures()?;
    assert!(fixtures.len() >= 20, "only {} fixtures", fixtures.len());
    let repos: BTreeSet<RepoName> = fixtures
        .iter()
        .filter_map(|f| f.repository.clone())
        .collect();
    let opts = TesterOptions {
        extra_organizations: repos.iter().map(|r| r.owner.clone()).collect(),
        extra_names: repos.iter().map(|r| r.name.clone()).collect(),
        ..TesterOptions::default()
    };
    let t = GregTester::start_with(opts).await?;
    for r in &repos {
        assert!(
            t.engine.config().repo("github", r).is_some(),
            "{r} is not configured"
        );
    }

    let mut table = String::new();
    for (n, f) in fixtures.iter().enumerate() {
        let (status, answer) = post(&t, f, n).await?;
        assert!(
            answer.ends_with('\n') && answer.lines().count() == 1,
            "{}: {answer:?}",
            f.file
        );
        let accepted = status == 202 && answer.starts_with("accepted: delivery ");
        let ignored = status == 202 && answer.starts_with("ignored: ");
        assert!(accepted || ignored, "{}: {status} {answer:?}", f.file);
        table.push_str(&format!("{:<58} {status} {}\n", f.file, stable(&answer)));
    }
    insta::assert_snapshot!("answers", table);

    // greg processes everything and goes quiet: every delivery finished, no retry loop.
    t.settle().await?;
    let pending = t.engine.store().pending_deliveries(100).await?;
    assert!(pending.is_empty(), "still pending: {pending:#?}");
    let requests = t.world.requests().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.settle().await?;
    assert_eq!(
        t.world.requests().len(),
        requests,
        "greg kept calling the fakes after settling"
    );

    // What the deliveries did, as greg logged it: one line per delivery that failed.
    // Only calls about the repositories the world lacks may fail, and only with 404.
    let log = logs().text();
    let failed = failed_deliveries(&log);
    for line in &failed {
        assert!(line.contains(": not found: "), "{line}");
    }
    insta::assert_snapshot!("failed_deliveries", failed.join("\n"));
    for secret in SECRETS {
        if let Some(line) = log.lines().find(|l| l.contains(secret)) {
            panic!("{secret:?} logged: {line}");
        }
    }

    // greg still serves: a pull request of its own repository gets its test build.
    let before = t.builds(TEST_JOB).len();
    let pr = t
        .world
        .open_pr(&t.repo, NewPr::new("carol", "after", fake_sha("after-1")))?;
    let (status, answer) = t
        .send(&t.world.pull_request_webhook(&t.repo, pr.number, "opened")?)
        .await?;
    assert!(status == 202 && answer.starts_with("accepted"), "{answer}");
    t.settle().await?;
    assert_eq!(t.builds(TEST_JOB).len(), before + 1);
    assert!(t.builds(MERGE_JOB).is_empty());
    t.finish().await
}

/// The "Delivery failed" lines of the log, reduced to `event repo: error`, sorted.
fn failed_deliveries(log: &str) -> Vec<String> {
    let mut out: Vec<String> = log
        .lines()
        .filter(|l| l.contains("Delivery failed"))
        .map(|l| {
            let field = |name: &str| {
                l.split_once(&format!("{name}="))
                    .map(|(_, rest)| {
                        rest.split([' ', '}', ':'])
                            .next()
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .unwrap_or_default()
            };
            let error = l
                .split_once("error=")
                .map(|(_, rest)| rest.rsplit_once(" attempt=").map_or(rest, |(e, _)| e))
                .unwrap_or_default();
            format!(
                "{} {}: {}",
                field("event"),
                field("repo"),
                without_port(error)
            )
        })
        .collect();
    out.sort();
    out
}

/// `text` with the port of every `127.0.0.1:PORT` replaced by `PORT` (the fakes' ports vary).
fn without_port(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some((before, after)) = rest.split_once("127.0.0.1:") {
        out.push_str(before);
        out.push_str("127.0.0.1:PORT");
        rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}
