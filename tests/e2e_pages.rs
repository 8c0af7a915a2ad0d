//! End to end, the web pages (SPEC §9, issue 13 items 1–3 and 9): the index, the merge queue
//! with an ETA range, and the pull-request page with its builds, blockers, reports and why it
//! left the queue; each page's JSON twin says the same; each queued pull request's title and
//! author (from its webhooks and from greg's reads of the provider); unknown repositories and
//! pull requests get the 404 page (JSON 404 under `/api`); hostile text is escaped. Snapshots
//! of the three pages' HTML (`tests/snapshots/e2e_pages__*.snap`) under a manual clock.
//!
//! `GREG_PRINT_API=1` prints every JSON answer (docs/api.md quotes them).

use greg_core::{BuildOutcome, PrNumber};
use greg_engine::ManualClock;
use greg_testkit::tester::{JENKINS_TOKEN, MERGE_JOB, TEST_JOB};
use greg_testkit::{GregTester, NewPr, TesterOptions, fake_sha};
use serde_json::{Value, json};

const MIN: i64 = 60_000;

async fn get_json(t: &GregTester, path: &str) -> anyhow::Result<(u16, Value)> {
    let resp = t.client().get(format!("{}{path}", t.url)).send().await?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await?;
    if std::env::var_os("GREG_PRINT_API").is_some() {
        println!(
            "GET {path} → {status}\n{}",
            serde_json::to_string_pretty(&body)?
        );
    }
    Ok((status, body))
}

/// A page as a browser asks for it.
async fn get_page(t: &GregTester, path: &str) -> anyhow::Result<(u16, String)> {
    let resp = t
        .client()
        .get(format!("{}{path}", t.url))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

/// Reads every unread greg comment on `pr`.
fn drain(t: &mut GregTester, pr: PrNumber) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(c) = t.expect_comment(pr) {
        out.push(c);
    }
    out
}

/// The newest queue entry of pull request `pr` as `GET /api/pr/...` shows it.
async fn last_exit(t: &GregTester, pr: PrNumber) -> anyhow::Result<Value> {
    let (status, body) = get_json(t, &format!("/api/pr/acme/demo/{pr}")).await?;
    anyhow::ensure!(status == 200, "GET /api/pr answered {status}: {body}");
    Ok(body["pull_request"]["queue"][0].clone())
}

async fn staging_with_clock() -> anyhow::Result<GregTester> {
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: "    merge_mode: staging\n".to_owned(),
        clock: Some(ManualClock::new(1_700_000_000_000)),
        ..TesterOptions::default()
    })
    .await?;
    t.set_permission("alice", greg_core::Permission::Write)?;
    t.set_permission("bob", greg_core::Permission::Write)?;
    Ok(t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_page_shows_an_eta_once_a_merge_build_finished() -> anyhow::Result<()> {
    let mut t = staging_with_clock().await?;
    let (one, _) = t.ready_pr("one").await?;
    let (two, _) = t.ready_pr("two").await?;
    t.post_comment(one, "alice", "@greg please").await?;
    t.post_comment(two, "alice", "@greg please").await?;
    let queued = t.expect_comment(two)?;
    assert!(
        queued.contains("position 2") && queued.contains("Expected landing: unknown"),
        "no history, no number: {queued}"
    );

    // No merge build finished yet: the ETA is unknown, on the page and in its twin.
    let (status, api) = get_json(&t, "/api/queue/acme/demo").await?;
    assert_eq!(status, 200);
    let entries = api["queues"][0]["entries"].clone();
    assert_eq!(entries[0]["eta"], Value::Null);
    assert_eq!(entries[1]["eta"], Value::Null);
    let (status, page) = get_page(&t, "/queue/acme/demo").await?;
    assert_eq!(status, 200);
    assert!(page.contains("Merge queue of acme/demo"), "{page}");
    assert!(page.contains(&format!("href=\"/pr/acme/demo/{one}\"")));
    assert_eq!(page.matches("<td class=\"eta\">unknown</td>").count(), 2);

    // #1's merge build takes ten minutes; #2 starts building at once.
    t.advance(10 * MIN)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(t.expect_comment(one)?.contains("Merged"));
    let (_, api) = get_json(&t, "/api/queue/acme/demo").await?;
    let entry = &api["queues"][0]["entries"][0];
    assert_eq!(entry["pr"], two.0);
    assert_eq!(entry["state"], "building");
    assert_eq!(
        entry["eta"],
        json!({ "low_ms": 10 * MIN, "high_ms": 10 * MIN, "based_on_builds": 1 })
    );
    t.advance(4 * MIN)?;
    let (_, page) = get_page(&t, "/queue/acme/demo").await?;
    assert!(page.contains("<td class=\"eta\">6 min</td>"), "{page}");
    assert!(
        page.contains("<td class=\"wide\">14 min</td>"),
        "time in queue: {page}"
    );

    // A third request waits behind #2: its comment gives the range.
    let (three, _) = t.ready_pr("three").await?;
    t.post_comment(three, "alice", "@greg please").await?;
    let queued = t.expect_comment(three)?;
    assert!(
        queued.contains("Expected to land in 16 min (from the last 1 merge builds"),
        "{queued}"
    );
    let (_, api) = get_json(&t, "/api/queue/acme/demo").await?;
    assert_eq!(
        api["queues"][0]["entries"][1]["eta"],
        json!({ "low_ms": 16 * MIN, "high_ms": 16 * MIN, "based_on_builds": 1 })
    );
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    drain(&mut t, two);
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    drain(&mut t, three);

    // The index lists the repository and its landings, as its twin does.
    let (status, repos) = get_json(&t, "/api/repos").await?;
    assert_eq!(status, 200);
    let repo = &repos["repositories"][0];
    assert_eq!(repo["repo"], "acme/demo");
    assert_eq!(repo["provider"], "github");
    let landed: Vec<u64> = repo["recent_landings"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l["pr"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(landed, vec![three.0, two.0, one.0]);
    let (status, index) = get_page(&t, "/").await?;
    assert_eq!(status, 200);
    assert!(
        index.contains("<a href=\"/queue/acme/demo\">acme/demo</a>"),
        "{index}"
    );
    for pr in [one, two, three] {
        assert!(index.contains(&format!("href=\"/pr/acme/demo/{pr}\">#{pr}</a>")));
    }
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pull_request_page_says_why_each_entry_left_the_queue() -> anyhow::Result<()> {
    let mut t = staging_with_clock().await?;

    // Landed.
    let (landed, _) = t.ready_pr("landed").await?;
    t.post_comment(landed, "alice", "@greg please").await?;
    t.advance(5 * MIN)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    drain(&mut t, landed);
    let exit = last_exit(&t, landed).await?;
    assert_eq!(exit["state"], "landed");
    assert_eq!(exit["exit"]["kind"], "landed");

    // A failed build, with its link.
    let (red, _) = t.ready_pr("red").await?;
    t.post_comment(red, "alice", "@greg please").await?;
    let url = t.running_build(MERGE_JOB)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Failure).await?;
    drain(&mut t, red);
    let exit = last_exit(&t, red).await?;
    assert_eq!(exit["state"], "failed");
    assert_eq!(exit["exit"]["kind"], "build_failed");
    let build_url = exit["exit"]["build_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(build_url.contains(&format!("/{}/", url.number.0)), "{exit}");
    let (status, page) = get_page(&t, &format!("/pr/acme/demo/{red}")).await?;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("build failed ({build_url})")),
        "{page}"
    );
    assert!(
        page.contains("<td class=\"state failure\">failure</td>"),
        "{page}"
    );

    // Cancelled by someone.
    let (cancelled, _) = t.ready_pr("cancelled").await?;
    t.post_comment(cancelled, "alice", "@greg please").await?;
    t.post_comment(cancelled, "bob", "@greg cancel").await?;
    drain(&mut t, cancelled);
    let exit = last_exit(&t, cancelled).await?;
    assert_eq!(exit["exit"], json!({ "kind": "cancelled", "by": "bob" }));
    assert_eq!(exit["left"], "cancelled by @bob");
    let (_, page) = get_page(&t, &format!("/pr/acme/demo/{cancelled}")).await?;
    assert!(page.contains("cancelled by @bob"), "{page}");

    // A push to the pull request.
    let (pushed, _) = t.ready_pr("pushed").await?;
    t.post_comment(pushed, "alice", "@greg please").await?;
    let new_head = t.push_to_pr(pushed, "pushed-2").await?;
    drain(&mut t, pushed);
    let exit = last_exit(&t, pushed).await?;
    assert_eq!(
        exit["exit"],
        json!({ "kind": "new_head", "head": new_head.as_str() })
    );
    // The new head's test build runs: that blocks it.
    let (_, pr_json) = get_json(&t, &format!("/api/pr/acme/demo/{pushed}")).await?;
    assert_eq!(
        pr_json["pull_request"]["blockers"]["head"],
        new_head.as_str()
    );
    assert_eq!(
        pr_json["pull_request"]["blockers"]["blockers"],
        json!(["the test build of the head is still running"])
    );

    // The page and its twin list the same builds and entries.
    let (_, page) = get_page(&t, &format!("/pr/acme/demo/{red}")).await?;
    let (_, twin) = get_json(&t, &format!("/api/pr/acme/demo/{red}")).await?;
    let builds = twin["pull_request"]["builds"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        builds.len(),
        2,
        "its test build and its merge build: {twin}"
    );
    for b in &builds {
        let short = &b["sha"].as_str().unwrap_or_default()[..7];
        assert!(page.contains(short), "{short} on the page");
        assert!(
            b["duration_ms"].is_i64(),
            "finished builds have a duration: {b}"
        );
    }
    assert_eq!(
        page.matches("<td class=\"left\">").count(),
        twin["pull_request"]["queue"].as_array().map_or(0, Vec::len)
    );
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_forward_the_provider_refuses_shows_the_providers_reason() -> anyhow::Result<()> {
    use greg_testkit::world::github::BranchProtection;
    let mut t = staging_with_clock().await?;
    t.world.protect_branch(
        &t.repo,
        "master",
        BranchProtection::required_checks(&["ci"]),
    )?;
    let (pr, _) = t.ready_pr("refused").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    drain(&mut t, pr);
    let exit = last_exit(&t, pr).await?;
    assert_eq!(exit["exit"]["kind"], "refused");
    let reason = exit["exit"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("Required status check"), "{exit}");
    let (_, page) = get_page(&t, &format!("/pr/acme/demo/{pr}")).await?;
    assert!(page.contains("refused: "), "{page}");
    assert!(page.contains("Required status check"), "{page}");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_repositories_and_pull_requests_are_404_and_hostile_text_is_escaped()
-> anyhow::Result<()> {
    let mut t = GregTester::start().await?;

    // `GET /` keeps its one line for probes and scripts.
    let text = t
        .client()
        .get(format!("{}/", t.url))
        .send()
        .await?
        .text()
        .await?;
    assert!(text.starts_with("I am Greg (greg "), "{text}");

    for path in [
        "/queue/acme/other",
        "/pr/acme/other/1",
        "/pr/acme/demo/999",
        "/pr/acme/demo/x",
    ] {
        let (status, page) = get_page(&t, path).await?;
        assert_eq!(status, 404, "{path}");
        assert!(page.contains("<h1>Not found</h1>"), "{path}: {page}");
    }
    let (status, body) = get_json(&t, "/api/pr/acme/demo/999").await?;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "greg holds nothing for acme/demo#999");
    let (status, body) = get_json(&t, "/api/pr/acme/other/1").await?;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "repository acme/other is not configured");

    // A failed test whose name and message are markup.
    let (pr, head) = t.open_pr("carol", "hostile").await?;
    let xml = r#"<?xml version="1.0"?><testsuite name="s" tests="1" failures="1"><testcase classname="&lt;script&gt;alert(1)&lt;/script&gt;" name="t"><failure message="&lt;img src=x onerror=alert(2)&gt;">boom</failure></testcase></testsuite>"#;
    let body = json!({
        "repo": "acme/demo", "sha": head.as_str(), "pr": pr.0, "job": "unit",
        "status": "failure", "build_url": "https://ci.example/job/unit/7/",
        "junit": [{ "name": "reports/TEST-x.xml", "xml": xml }],
    });
    let resp = t
        .client()
        .post(format!(
            "{}/api/reports?builder=jenkins&token={JENKINS_TOKEN}",
            t.url
        ))
        .json(&body)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 202, "{}", resp.text().await?);
    t.settle().await?;
    t.engine.wait_idle().await;
    let (status, page) = get_page(&t, &format!("/pr/acme/demo/{pr}")).await?;
    assert_eq!(status, 200);
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(
        page.contains("&#60;script&#62;alert(1)") || page.contains("&lt;script&gt;alert(1)"),
        "{page}"
    );
    let (_, twin) = get_json(&t, &format!("/api/pr/acme/demo/{pr}")).await?;
    assert_eq!(
        twin["pull_request"]["reports"][0]["failed"][0]["id"],
        "<script>alert(1)</script>::t"
    );
    drain(&mut t, pr);
    t.finish().await
}

/// `author` opens a pull request titled `title` from `branch`; its test build passes and bob
/// approves it.
async fn titled_pr(
    t: &GregTester,
    author: &str,
    branch: &str,
    title: &str,
) -> anyhow::Result<PrNumber> {
    let head = fake_sha(&format!("{branch}-1"));
    let pr = t
        .world
        .open_pr(&t.repo, NewPr::new(author, branch, head).title(title))?;
    t.deliver(t.world.pull_request_webhook(&t.repo, pr.number, "opened")?)
        .await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.approve(pr.number, "bob").await?;
    Ok(pr.number)
}

/// The queue entry of `pr` in `GET /api/queue/acme/demo`.
async fn queued(t: &GregTester, pr: PrNumber) -> anyhow::Result<Value> {
    let (status, api) = get_json(t, "/api/queue/acme/demo").await?;
    anyhow::ensure!(status == 200, "GET /api/queue answered {status}: {api}");
    let entries = api["queues"][0]["entries"].as_array().cloned();
    entries
        .unwrap_or_default()
        .into_iter()
        .find(|e| e["pr"] == pr.0)
        .ok_or_else(|| anyhow::anyhow!("#{pr} is not queued: {api}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_shows_each_pull_requests_title_and_author_escaped() -> anyhow::Result<()> {
    let mut t = staging_with_clock().await?;
    let blocker = titled_pr(&t, "carol", "first", "Go first").await?;
    let pr = titled_pr(&t, "octocat", "frob", "Fix the frobnicator").await?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    assert!(t.expect_comment(pr)?.contains("Ready to merge"));
    t.post_comment(blocker, "alice", "@greg please").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    drain(&mut t, blocker);
    drain(&mut t, pr);

    // From the `opened` webhook: the twin and the page show both.
    let entry = queued(&t, pr).await?;
    assert_eq!(entry["title"], "Fix the frobnicator");
    assert_eq!(entry["author"], "octocat");
    let (status, page) = get_page(&t, "/queue/acme/demo").await?;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!(
            "<a href=\"/pr/acme/demo/{pr}\">#{pr}</a> Fix the frobnicator <span class=\"muted\">by octocat</span>"
        )),
        "{page}"
    );
    assert!(
        page.contains("Go first <span class=\"muted\">by carol</span>"),
        "{page}"
    );
    let (_, twin) = get_json(&t, &format!("/api/pr/acme/demo/{pr}")).await?;
    assert_eq!(twin["pull_request"]["title"], "Fix the frobnicator");
    assert_eq!(twin["pull_request"]["author"], "octocat");

    // A title edited without a webhook: "@greg ok" reads the pull request again, and the
    // hostile title is shown as text.
    let hostile = "<script>alert(1)</script> & \"quotes\"";
    t.world
        .edit_pr(&t.repo, pr, |p| p.title = hostile.to_owned())?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    drain(&mut t, pr);
    assert_eq!(queued(&t, pr).await?["title"], hostile);
    let (_, page) = get_page(&t, "/queue/acme/demo").await?;
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        page.contains("&#60;script&#62;alert(1)") || page.contains("&lt;script&gt;alert(1)"),
        "{page}"
    );
    let (_, page) = get_page(&t, &format!("/pr/acme/demo/{pr}")).await?;
    assert!(!page.contains("<script>"), "{page}");

    // GitHub's `edited` delivery with `changes.title`: the new title replaces it.
    t.world.edit_pr(&t.repo, pr, |p| {
        p.title = "Fix the frobnicator, again".to_owned()
    })?;
    let mut edited = t.world.pull_request_webhook(&t.repo, pr, "edited")?;
    edited.payload["changes"] = json!({ "title": { "from": hostile } });
    t.deliver(edited).await?;
    assert_eq!(queued(&t, pr).await?["title"], "Fix the frobnicator, again");
    t.expect_no_comment(pr)?;
    t.finish().await
}

/// `text` with what differs between runs replaced: the ports of greg and the fakes, greg's
/// version.
fn scrub(text: &str) -> String {
    const HOST: &str = "127.0.0.1:";
    let text = text.replace(
        &format!("greg {}", env!("CARGO_PKG_VERSION")),
        "greg [version]",
    );
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find(HOST) {
        out.push_str(&rest[..i + HOST.len()]);
        out.push_str("[port]");
        rest = rest[i + HOST.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_the_index_queue_and_pull_request_pages() -> anyhow::Result<()> {
    let mut t = staging_with_clock().await?;
    // #1 landed after a five-minute merge build; #2 is being merged; #3 waits behind it at a
    // higher priority than #4; #5 left the queue when its build failed.
    let one = titled_pr(&t, "octocat", "frob", "Fix the frobnicator").await?;
    let two = titled_pr(&t, "dave", "faster-builds", "Cache the <dependencies>").await?;
    let three = titled_pr(&t, "carol", "docs-typo", "Docs: fix a typo").await?;
    let four = titled_pr(&t, "erin", "new-api", "A new API").await?;
    let five = titled_pr(&t, "frank", "red", "Break the build").await?;
    t.post_comment(one, "alice", "@greg please").await?;
    t.advance(5 * MIN)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    t.post_comment(five, "alice", "@greg please").await?;
    t.advance(2 * MIN)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Failure).await?;
    t.post_comment(two, "alice", "@greg please").await?;
    t.post_comment(three, "alice", "@greg please p=1").await?;
    t.post_comment(four, "alice", "@greg please").await?;
    t.advance(3 * MIN)?;
    for pr in [one, two, three, four, five] {
        drain(&mut t, pr);
    }

    let (status, index) = get_page(&t, "/").await?;
    assert_eq!(status, 200);
    insta::assert_snapshot!("index_page", scrub(&index));
    let (status, queue) = get_page(&t, "/queue/acme/demo").await?;
    assert_eq!(status, 200);
    insta::assert_snapshot!("queue_page", scrub(&queue));
    let (status, pr) = get_page(&t, &format!("/pr/acme/demo/{five}")).await?;
    assert_eq!(status, 200);
    insta::assert_snapshot!("pr_page", scrub(&pr));
    t.finish().await
}
