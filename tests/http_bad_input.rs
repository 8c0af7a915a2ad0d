//! Bad input on greg's HTTP surface (SPEC §3; issue 2 item 13: the original Greg answered 500 to
//! every one of these). Each case checks the status code, that the answer is one line with a
//! reason (a snapshot of "status reason"), that no secret appears in it, and that nothing was
//! processed: no request reached the fake GitHub or the fake Jenkins, no build started, nothing
//! waits in the inbox. Every test ends by sending one good delivery, which must be the first the
//! inbox ever stored (`accepted: delivery 1 queued`), and by checking that greg's logs (captured
//! at TRACE for greg's crates, DEBUG for the libraries) hold no secret.

use greg_core::RepoName;
use greg_testkit::tester::{GITHUB_TOKEN, JENKINS_TOKEN, MERGE_JOB, TEST_JOB, WEBHOOK_SECRET};
use greg_testkit::{GregTester, NewPr, WebhookDelivery, fake_sha, sign};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Every credential of the tester's configuration: none may appear in an answer or a log.
const SECRETS: [&str; 5] = [
    GITHUB_TOKEN,
    WEBHOOK_SECRET,
    JENKINS_TOKEN,
    "gh-api-token",
    "jenkins-api-token",
];

/// A wrong token the tests send; greg must not echo it either.
const WRONG_TOKEN: &str = "not-the-token-0xdeadbeef";

// ---------------------------------------------------------------------------------------------
// Log capture: one global subscriber per test binary, installed before any GregTester (whose own
// `try_init` then does nothing), writing into a shared buffer.

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

/// The captured logs of this test binary (all tests share them).
fn logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        // The fakes are test machinery, not greg: their logs are left out.
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,greg=trace,greg_server=trace,greg_engine=trace,greg_github=trace,\
             greg_jenkins=trace,greg_store=trace,greg_config=trace,greg_testkit=off",
        );
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(buffer.clone())
            .try_init()
            .expect("the log capture is the first subscriber of this test binary");
        buffer
    })
}

async fn start() -> anyhow::Result<GregTester> {
    logs();
    let t = GregTester::start().await?;
    t.settle().await?;
    // At start-up greg reconciles each configured repository: one list of its open pull
    // requests, and nothing else (the world has none). Bad input must add no call after it.
    let startup: Vec<String> = t
        .world
        .requests()
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    anyhow::ensure!(
        startup == ["GET /repos/acme/demo/pulls?state=open&per_page=100&page=1"],
        "greg called the fakes at start-up: {startup:#?}"
    );
    t.world.clear_requests();
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// Requests.

/// One raw request to greg.
#[derive(Clone)]
struct Req {
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    /// A GitHub delivery of `event` with `body`, to `/repo` with the right token, signed.
    fn github(t: &GregTester, event: &str, body: Vec<u8>) -> Self {
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), "GitHub-Hookshot/test".to_owned()),
            ("x-github-event".to_owned(), event.to_owned()),
            (
                "x-github-delivery".to_owned(),
                "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned(),
            ),
            (
                "x-hub-signature-256".to_owned(),
                sign(WEBHOOK_SECRET, &body),
            ),
        ];
        Self {
            url: t.repo_hook_url(),
            headers,
            body,
        }
    }

    /// A world-built delivery as [`Req::github`].
    fn delivery(t: &GregTester, d: &WebhookDelivery) -> Self {
        Self::github(t, &d.event, d.body())
    }

    /// A Jenkins notification to `/build` with the right token.
    fn jenkins(t: &GregTester, body: Vec<u8>) -> Self {
        Self {
            url: format!("{}/build?builder=jenkins&token={JENKINS_TOKEN}", t.url),
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body,
        }
    }

    fn url(mut self, url: String) -> Self {
        self.url = url;
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self
    }

    fn header(self, name: &str, value: &str) -> Self {
        let mut r = self.without(name);
        r.headers.push((name.to_owned(), value.to_owned()));
        r
    }

    async fn send(&self, t: &GregTester) -> anyhow::Result<(u16, String)> {
        let mut req = t.client().post(&self.url).body(self.body.clone());
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let resp = req.send().await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }
}

fn fixture(path: &str) -> anyhow::Result<Vec<u8>> {
    let full = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).map_err(|e| anyhow::anyhow!("{full}: {e}"))
}

fn fixture_json(path: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&fixture(path)?)?)
}

// ---------------------------------------------------------------------------------------------
// Checks.

/// The checks every answer gets: one line ending in a newline, a reason, no secret (nor the
/// wrong token a test sent).
fn check_answer(case: &str, body: &str) {
    assert!(
        body.ends_with('\n') && body.lines().count() == 1,
        "{case}: not one line: {body:?}"
    );
    let reason = body.trim_end();
    assert!(
        reason.len() > 12 && reason.contains(": "),
        "{case}: no reason: {body:?}"
    );
    for secret in SECRETS.iter().chain([&WRONG_TOKEN]) {
        assert!(!body.contains(secret), "{case}: {secret:?} in {body:?}");
    }
}

/// Nothing was processed: no request reached the fakes, no build started, nothing is pending.
async fn assert_nothing_processed(t: &GregTester, case: &str) -> anyhow::Result<()> {
    t.settle().await?;
    let requests = t.world.requests();
    assert!(
        requests.is_empty(),
        "{case}: greg called the fakes: {requests:#?}"
    );
    assert!(
        t.builds(TEST_JOB).is_empty() && t.builds(MERGE_JOB).is_empty(),
        "{case}: a build started"
    );
    let pending = t.engine.store().pending_deliveries(100).await?;
    assert!(pending.is_empty(), "{case}: pending deliveries {pending:?}");
    Ok(())
}

/// Sends `req`, expects `status`, checks the answer and that nothing was processed, and
/// snapshots "status reason" under `case`. Returns the answer.
async fn expect(t: &GregTester, case: &str, req: &Req, status: u16) -> anyhow::Result<String> {
    let (got, body) = req.send(t).await?;
    assert_eq!(got, status, "{case}: answered {got} {body:?}");
    check_answer(case, &body);
    assert_nothing_processed(t, case).await?;
    insta::assert_snapshot!(case, format!("{got} {}", body.trim_end()));
    Ok(body)
}

/// Ends a test: one good delivery must be the first the inbox ever stored (so no case stored
/// anything), then the tester's own checks, then no secret in the logs.
async fn finish(t: GregTester) -> anyhow::Result<()> {
    let pr = t
        .world
        .open_pr(&t.repo, NewPr::new("carol", "good", fake_sha("good-1")))?;
    let good = t.world.pull_request_webhook(&t.repo, pr.number, "opened")?;
    let (status, body) = t.send(&good).await?;
    assert_eq!(
        (status, body.as_str()),
        (202, "accepted: delivery 1 queued\n"),
        "an earlier case stored a delivery"
    );
    t.settle().await?;
    assert_eq!(
        t.builds(TEST_JOB).len(),
        1,
        "the good delivery was processed"
    );
    t.finish().await?;
    assert_no_secret_logged();
    Ok(())
}

fn assert_no_secret_logged() {
    let text = logs().text();
    assert!(
        text.contains("Webhook refused") || text.contains("Webhook answered"),
        "the log capture saw nothing of greg's answers"
    );
    for secret in SECRETS.iter().chain([&WRONG_TOKEN]) {
        if let Some(line) = text.lines().find(|l| l.contains(secret)) {
            panic!("{secret:?} logged: {line}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cases.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_and_healthz_answer() -> anyhow::Result<()> {
    let t = start().await?;
    let resp = t.client().get(format!("{}/", t.url)).send().await?;
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().await?;
    assert_eq!(
        body,
        format!("I am Greg (greg {})\n", env!("CARGO_PKG_VERSION"))
    );
    let resp = t.client().get(format!("{}/healthz", t.url)).send().await?;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await?, "ok\n");
    assert_nothing_processed(&t, "index").await?;
    finish(t).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_hook_refuses_missing_or_wrong_credentials() -> anyhow::Result<()> {
    let t = start().await?;
    let pr = t
        .world
        .open_pr(&t.repo, NewPr::new("carol", "fix", fake_sha("fix-1")))?;
    let good = Req::delivery(
        &t,
        &t.world.pull_request_webhook(&t.repo, pr.number, "opened")?,
    );
    let base = format!("{}/repo?provider=github", t.url);

    expect(
        &t,
        "repo_wrong_token",
        &good.clone().url(format!("{base}&token={WRONG_TOKEN}")),
        401,
    )
    .await?;
    expect(
        &t,
        "repo_missing_token",
        &good.clone().url(base.clone()),
        401,
    )
    .await?;
    expect(
        &t,
        "repo_empty_token",
        &good.clone().url(format!("{base}&token=")),
        401,
    )
    .await?;
    // The Jenkins token does not open the GitHub hook.
    expect(
        &t,
        "repo_token_of_the_jenkins_hook",
        &good.clone().url(format!("{base}&token={JENKINS_TOKEN}")),
        401,
    )
    .await?;
    expect(
        &t,
        "repo_missing_signature",
        &good.clone().without("x-hub-signature-256"),
        401,
    )
    .await?;
    expect(
        &t,
        "repo_wrong_signature",
        &good.clone().header(
            "x-hub-signature-256",
            &sign("not the webhook secret", &good.body),
        ),
        401,
    )
    .await?;
    let other_body = fixture("github/pull_request.opened.json")?;
    expect(
        &t,
        "repo_signature_of_a_different_body",
        &good
            .clone()
            .header("x-hub-signature-256", &sign(WEBHOOK_SECRET, &other_body)),
        401,
    )
    .await?;
    let sha1 = sign(WEBHOOK_SECRET, &good.body).replacen("sha256=", "sha1=", 1);
    expect(
        &t,
        "repo_signature_not_sha256",
        &good.clone().header("x-hub-signature-256", &sha1),
        401,
    )
    .await?;
    // The right token and signature, but the body changed after signing.
    let mut tampered = good.clone();
    tampered.body = String::from_utf8(good.body.clone())?
        .replacen("\"opened\"", "\"closed\"", 1)
        .into_bytes();
    assert_ne!(tampered.body, good.body);
    expect(&t, "repo_body_changed_after_signing", &tampered, 401).await?;
    finish(t).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_hook_refuses_malformed_bodies() -> anyhow::Result<()> {
    let t = start().await?;

    // A real delivery cut in half, correctly signed: 400 naming where the JSON stopped.
    let opened = fixture("github/pull_request.opened.json")?;
    let half = opened[..opened.len() / 2].to_vec();
    let body = expect(
        &t,
        "repo_truncated_json",
        &Req::github(&t, "pull_request", half),
        400,
    )
    .await?;
    assert!(body.contains("not valid JSON (in "), "{body}");

    // A wrong type at one field: 400 with the JSON path.
    let mut v = fixture_json("github/pull_request.opened.json")?;
    v["pull_request"]["number"] = json!("x");
    let body = expect(
        &t,
        "repo_wrong_type_at_a_field",
        &Req::github(&t, "pull_request", serde_json::to_vec(&v)?),
        400,
    )
    .await?;
    assert!(body.contains("at pull_request.number:"), "{body}");

    // A missing field greg needs.
    let mut v = fixture_json("github/push.json")?;
    if let Some(o) = v.as_object_mut() {
        o.remove("after");
    }
    expect(
        &t,
        "repo_missing_field",
        &Req::github(&t, "push", serde_json::to_vec(&v)?),
        400,
    )
    .await?;

    // A value with a line break: the answer stays one line.
    let mut v = fixture_json("github/pull_request.opened.json")?;
    v["pull_request"]["head"]["sha"] = json!("abc\nINJECTED: line two");
    expect(
        &t,
        "repo_value_with_a_line_break",
        &Req::github(&t, "pull_request", serde_json::to_vec(&v)?),
        400,
    )
    .await?;

    expect(
        &t,
        "repo_empty_body",
        &Req::github(&t, "pull_request", Vec::new()),
        400,
    )
    .await?;
    expect(
        &t,
        "repo_not_json_for_an_unused_event",
        &Req::github(&t, "sponsorship", b"<html>".to_vec()),
        400,
    )
    .await?;

    // The form-encoded body GitHub sends when the hook's content type is
    // application/x-www-form-urlencoded: 415 with the fix.
    let payload = String::from_utf8(fixture("github/ping.json")?)?;
    let form = format!("payload={}", form_encode(&payload));
    let body = expect(
        &t,
        "repo_form_encoded",
        &Req::github(&t, "ping", form.into_bytes())
            .header("content-type", "application/x-www-form-urlencoded"),
        415,
    )
    .await?;
    assert!(body.contains("application/json"), "{body}");
    expect(
        &t,
        "repo_text_plain",
        &Req::github(&t, "ping", fixture("github/ping.json")?).header("content-type", "text/plain"),
        415,
    )
    .await?;

    // Missing headers, on a delivery greg would otherwise accept.
    let pr = t
        .world
        .open_pr(&t.repo, NewPr::new("carol", "fix", fake_sha("fix-1")))?;
    let good = Req::delivery(
        &t,
        &t.world.pull_request_webhook(&t.repo, pr.number, "opened")?,
    );
    expect(
        &t,
        "repo_missing_delivery_id",
        &good.clone().without("x-github-delivery"),
        400,
    )
    .await?;
    expect(
        &t,
        "repo_missing_event_header",
        &good.clone().without("x-github-event"),
        400,
    )
    .await?;
    finish(t).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_hook_ignores_irrelevant_deliveries() -> anyhow::Result<()> {
    let t = start().await?;
    let sponsorship = json!({"action": "created", "sponsorship": {"privacy_level": "public"}});
    expect(
        &t,
        "repo_unknown_event",
        &Req::github(&t, "sponsorship", serde_json::to_vec(&sponsorship)?),
        202,
    )
    .await?;
    expect(
        &t,
        "repo_ping",
        &Req::github(&t, "ping", fixture("github/ping.json")?),
        202,
    )
    .await?;
    let other = RepoName::new("other", "repo");
    t.world.create_repo(&other)?;
    let pr = t
        .world
        .open_pr(&other, NewPr::new("carol", "fix", fake_sha("other-1")))?;
    let body = expect(
        &t,
        "repo_unconfigured_repository",
        &Req::delivery(
            &t,
            &t.world.pull_request_webhook(&other, pr.number, "opened")?,
        ),
        202,
    )
    .await?;
    assert!(body.contains("other/repo"), "{body}");
    expect(
        &t,
        "repo_comment_on_a_plain_issue",
        &Req::github(
            &t,
            "issue_comment",
            fixture("github/issue_comment.created.json")?,
        ),
        202,
    )
    .await?;
    finish(t).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_provider_and_builder_are_not_found() -> anyhow::Result<()> {
    let t = start().await?;
    let ping = Req::github(&t, "ping", fixture("github/ping.json")?);
    expect(
        &t,
        "unknown_provider",
        &ping.clone().url(format!(
            "{}/repo?provider=gitlab&token={GITHUB_TOKEN}",
            t.url
        )),
        404,
    )
    .await?;
    expect(
        &t,
        "missing_provider",
        &ping
            .clone()
            .url(format!("{}/repo?token={GITHUB_TOKEN}", t.url)),
        404,
    )
    .await?;
    let notification = fixture("jenkins/notification/wiki-example.completed.json")?;
    expect(
        &t,
        "unknown_builder",
        &Req::jenkins(&t, notification.clone()).url(format!(
            "{}/build?builder=travis&token={JENKINS_TOKEN}",
            t.url
        )),
        404,
    )
    .await?;
    expect(
        &t,
        "missing_builder",
        &Req::jenkins(&t, notification).url(format!("{}/build?token={JENKINS_TOKEN}", t.url)),
        404,
    )
    .await?;
    finish(t).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_callback_refuses_bad_input() -> anyhow::Result<()> {
    let t = start().await?;
    let notification = fixture("jenkins/notification/wiki-example.completed.json")?;
    let base = format!("{}/build?builder=jenkins", t.url);
    expect(
        &t,
        "build_wrong_token",
        &Req::jenkins(&t, notification.clone()).url(format!("{base}&token={WRONG_TOKEN}")),
        401,
    )
    .await?;
    expect(
        &t,
        "build_missing_token",
        &Req::jenkins(&t, notification.clone()).url(base.clone()),
        401,
    )
    .await?;
    expect(
        &t,
        "build_token_of_the_github_hook",
        &Req::jenkins(&t, notification.clone()).url(format!("{base}&token={GITHUB_TOKEN}")),
        401,
    )
    .await?;
    let half = notification[..notification.len() / 2].to_vec();
    expect(&t, "build_truncated_json", &Req::jenkins(&t, half), 400).await?;
    let mut v: Value = serde_json::from_slice(&notification)?;
    v["build"]["number"] = json!("eighteen");
    let body = expect(
        &t,
        "build_wrong_type_at_a_field",
        &Req::jenkins(&t, serde_json::to_vec(&v)?),
        400,
    )
    .await?;
    assert!(body.contains("build.number"), "{body}");
    v["build"]["number"] = json!(18);
    v["build"]["phase"] = json!("NONE");
    expect(
        &t,
        "build_phase_none",
        &Req::jenkins(&t, serde_json::to_vec(&v)?),
        202,
    )
    .await?;
    // An unknown phase with a line break: 400, and the answer stays one line.
    v["build"]["phase"] = json!("DONE\nINJECTED: line two");
    expect(
        &t,
        "build_unknown_phase_with_a_line_break",
        &Req::jenkins(&t, serde_json::to_vec(&v)?),
        400,
    )
    .await?;
    expect(
        &t,
        "build_form_encoded",
        &Req::jenkins(&t, b"name=asgard".to_vec())
            .header("content-type", "application/x-www-form-urlencoded"),
        415,
    )
    .await?;
    finish(t).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_ten_mib_are_refused() -> anyhow::Result<()> {
    let t = start().await?;
    // A delivery greg would accept but for its size: a real pull request padded to 11 MiB,
    // correctly signed.
    let pr = t
        .world
        .open_pr(&t.repo, NewPr::new("carol", "big", fake_sha("big-1")))?;
    let mut big = t.world.pull_request_webhook(&t.repo, pr.number, "opened")?;
    big.payload["padding"] = json!(" ".repeat(11 * 1024 * 1024));
    let req = Req::delivery(&t, &big);
    let addr = t.url.trim_start_matches("http://").to_owned();
    let path = format!("/repo?provider=github&token={GITHUB_TOKEN}");
    for (case, chunked) in [
        ("repo_over_10_mib_with_content_length", false),
        ("repo_over_10_mib_chunked", true),
    ] {
        let (status, body) = raw_post(&addr, &path, &req.headers, &req.body, chunked).await?;
        assert_eq!(status, 413, "{case}: answered {status} {body:?}");
        check_answer(case, &body);
        assert_nothing_processed(&t, case).await?;
        insta::assert_snapshot!(case, format!("{status} {}", body.trim_end()));
    }
    let path = format!("/build?builder=jenkins&token={JENKINS_TOKEN}");
    let headers = [("content-type".to_owned(), "application/json".to_owned())];
    let (status, body) = raw_post(&addr, &path, &headers, &req.body, true).await?;
    assert_eq!(status, 413, "build_over_10_mib_chunked: {body:?}");
    check_answer("build_over_10_mib_chunked", &body);
    assert_nothing_processed(&t, "build_over_10_mib_chunked").await?;
    finish(t).await
}

/// A body of exactly the limit is read and accepted: the limit is 10 MiB, not less.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_exactly_ten_mib_is_accepted() -> anyhow::Result<()> {
    logs();
    let t = GregTester::start().await?;
    let pr = t
        .world
        .open_pr(&t.repo, NewPr::new("carol", "big", fake_sha("big-1")))?;
    let mut big = t.world.pull_request_webhook(&t.repo, pr.number, "opened")?;
    let limit = 10 * 1024 * 1024;
    big.payload["padding"] = json!("");
    let pad = limit - big.body().len();
    big.payload["padding"] = json!(" ".repeat(pad));
    assert_eq!(big.body().len(), limit);
    let (status, body) = t.send(&big).await?;
    assert_eq!(
        (status, body.as_str()),
        (202, "accepted: delivery 1 queued\n")
    );
    t.settle().await?;
    assert_eq!(t.builds(TEST_JOB).len(), 1);
    t.finish().await
}

/// `application/x-www-form-urlencoded` encoding of `s` (RFC 3986 unreserved kept, space as +).
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// POSTs `body` over a raw HTTP/1.1 connection, with a Content-Length or chunked (no length at
/// all), while reading the answer concurrently: greg may answer and close before the body is
/// sent. Returns the status and the answer body.
async fn raw_post(
    addr: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    chunked: bool,
) -> anyhow::Result<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if chunked {
        head.push_str("transfer-encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    }
    let body = body.to_vec();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(64 * 1024) {
            if chunked {
                wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
            }
            wr.write_all(chunk).await?;
            if chunked {
                wr.write_all(b"\r\n").await?;
            }
        }
        if chunked {
            wr.write_all(b"0\r\n\r\n").await?;
        }
        wr.flush().await?;
        // Keep the write half open until the answer is read (dropping it sends FIN).
        std::future::pending::<()>().await;
        std::io::Result::Ok(())
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if complete_response(&answer) {
                        break Ok(());
                    }
                }
                // greg may reset the connection right after its answer; what arrived counts.
                Err(_) if !answer.is_empty() => break Ok(()),
                Err(e) => break Err(e),
            }
        }
    })
    .await;
    writer.abort();
    read??;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no complete answer: {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status line: {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// True when `raw` holds a whole response with a Content-Length body.
fn complete_response(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .is_some_and(|n| body.len() >= n)
}
