//! End to end, the report comment (SPEC §8, issue 10): CI jobs send their results to
//! `POST /api/reports`, and the pull request on the fake GitHub ends with one comment that
//! shows every job, edited in place, never duplicated; bad reports are refused with nothing
//! stored; `comments: false` reports through the commit status `greg/report`.

use greg_core::{PrNumber, Sha};
use greg_testkit::tester::JENKINS_TOKEN;
use greg_testkit::{GregTester, Server, TesterOptions, fake_sha};
use serde_json::{Value, json};
use std::time::Duration;

const MARKER: &str = "<!-- greg:report -->";

/// A real JUnit file written by another project's tool (crates/greg-report/tests/data/junit,
/// attributions in its SOURCES.md).
fn junit(name: &str) -> anyhow::Result<Value> {
    let path = format!(
        "{}/crates/greg-report/tests/data/junit/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let xml = std::fs::read_to_string(&path)?;
    Ok(json!({ "name": format!("reports/{name}"), "xml": xml }))
}

fn report(sha: &Sha, pr: Option<PrNumber>, job: &str, status: &str, junit: Vec<Value>) -> Value {
    let mut body = json!({
        "repo": "acme/demo",
        "sha": sha.as_str(),
        "job": job,
        "status": status,
        "build_url": format!("https://ci.example/job/{job}/7/"),
        "duration_ms": 61_000,
        "junit": junit,
    });
    if let Some(pr) = pr {
        body["pr"] = json!(pr.0);
    }
    body
}

/// POSTs raw bytes as a report with `token`; returns status and answer.
async fn post_raw(t: &GregTester, token: &str, body: Vec<u8>) -> anyhow::Result<(u16, String)> {
    let resp = t
        .client()
        .post(format!(
            "{}/api/reports?builder=jenkins&token={token}",
            t.url
        ))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

async fn post(t: &GregTester, body: &Value) -> anyhow::Result<(u16, String)> {
    post_raw(t, JENKINS_TOKEN, serde_json::to_vec(body)?).await
}

/// Sends a report and checks greg stored it (202 `accepted: …`).
async fn accepted(t: &GregTester, body: &Value) -> anyhow::Result<()> {
    let (status, answer) = post(t, body).await?;
    anyhow::ensure!(
        status == 202 && answer.starts_with("accepted: report of "),
        "greg answered {status} {answer:?}"
    );
    Ok(())
}

/// Waits until every report is shown (the refreshes run in the background).
async fn settled(t: &GregTester) -> anyhow::Result<()> {
    t.settle().await?;
    t.engine.wait_idle().await;
    Ok(())
}

fn report_comments(t: &GregTester, pr: PrNumber) -> Vec<String> {
    t.world
        .bot_comments(&t.repo, pr)
        .into_iter()
        .filter(|c| c.body.starts_with(MARKER))
        .map(|c| c.body)
        .collect()
}

fn comment_edits(t: &GregTester) -> usize {
    t.world
        .requests_matching(Server::Github, "PATCH", r"/issues/comments/\d+$")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_jobs_reporting_at_once_end_in_one_comment_that_shows_them_all() -> anyhow::Result<()>
{
    let t = GregTester::start().await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    let unit = report(
        &head,
        None,
        "unit",
        "failure",
        vec![junit("surefire-TEST-surefire.MyTest.xml")?],
    );
    let lint = report(&head, Some(pr), "lint", "success", vec![]);
    let py = report(
        &head,
        Some(pr),
        "python",
        "success",
        vec![junit("python-xunit-pytest.xml")?],
    );
    let (a, b, c) = tokio::join!(post(&t, &unit), post(&t, &lint), post(&t, &py));
    for answer in [a?, b?, c?] {
        assert_eq!(answer.0, 202, "{answer:?}");
        assert!(answer.1.starts_with("accepted: report of "), "{answer:?}");
    }
    settled(&t).await?;

    let comments = report_comments(&t, pr);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    let body = &comments[0];
    assert!(body.contains("| unit | ❌ failure | 1m 1s |"), "{body}");
    assert!(body.contains("| lint | ✅ success |"), "{body}");
    assert!(body.contains("| python | ✅ success |"), "{body}");
    // No `report.expect` and no report on master's tip: the jobs seen are the jobs expected.
    assert!(
        body.contains("**3 of 3 expected jobs reported.**"),
        "{body}"
    );
    // The failed Surefire test is named with its message.
    assert!(body.contains("surefire.MyTest"), "{body}");
    let row = t
        .engine
        .store()
        .report_comment(&t.repo, pr)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no report-comment row"))?;
    assert_eq!(row.wanted, 3);
    assert_eq!(row.done, 3);
    assert_eq!(row.holder, None);
    assert_eq!(row.head_sha, head);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_report_again_is_a_duplicate_and_an_equal_one_edits_nothing() -> anyhow::Result<()>
{
    let t = GregTester::start().await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    let unit = report(
        &head,
        Some(pr),
        "unit",
        "success",
        vec![junit("nextest-tests-junit.xml")?],
    );
    accepted(&t, &unit).await?;
    settled(&t).await?;
    assert_eq!(report_comments(&t, pr).len(), 1);
    let edits = comment_edits(&t);

    // The same bytes: the inbox drops it.
    let again = post(&t, &unit).await?;
    assert_eq!(
        again,
        (
            202,
            "duplicate: this delivery was already accepted\n".to_owned()
        )
    );
    // Equal content in other bytes (a re-run with the same result): stored, rendered, and the
    // content hash skips the edit.
    let rerun = serde_json::to_vec_pretty(&unit)?;
    let (status, answer) = post_raw(&t, JENKINS_TOKEN, rerun).await?;
    assert_eq!(status, 202, "{answer}");
    settled(&t).await?;
    assert_eq!(
        comment_edits(&t),
        edits,
        "an equal report edited the comment"
    );
    assert_eq!(report_comments(&t, pr).len(), 1);
    let row = t.engine.store().report_comment(&t.repo, pr).await?;
    assert_eq!(row.map(|r| (r.wanted, r.done)), Some((2, 2)));

    // A different result is an edit of the same comment.
    let failed = report(&head, Some(pr), "unit", "failure", vec![]);
    accepted(&t, &failed).await?;
    settled(&t).await?;
    assert_eq!(comment_edits(&t), edits + 1);
    let comments = report_comments(&t, pr);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].contains("| unit | ❌ failure |"),
        "{}",
        comments[0]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_without_a_pull_request_is_shown_on_the_one_whose_head_it_built()
-> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    accepted(&t, &report(&head, None, "unit", "success", vec![])).await?;
    // A commit no pull request has as its head (a branch build): stored for the commit only.
    let branch = fake_sha("some-branch-commit");
    accepted(&t, &report(&branch, None, "unit", "success", vec![])).await?;
    settled(&t).await?;
    assert_eq!(report_comments(&t, pr).len(), 1);
    let stored = t
        .engine
        .store()
        .reports_for_commit(&t.repo, &branch)
        .await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].pr, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reports_are_refused_with_their_reason_and_nothing_is_stored() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    let good = report(&head, Some(pr), "unit", "success", vec![]);

    let (status, answer) = post_raw(&t, "wrong", serde_json::to_vec(&good)?).await?;
    assert_eq!(
        (status, answer.as_str()),
        (401, "unauthorized: wrong ?token=\n")
    );

    let mut bad_xml = good.clone();
    bad_xml["junit"] =
        json!([{ "name": "target/surefire-reports/TEST-a.xml", "xml": "<testsuite><testcase" }]);
    let (status, answer) = post(&t, &bad_xml).await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("target/surefire-reports/TEST-a.xml"),
        "{answer}"
    );

    let mut unknown = good.clone();
    unknown["repo"] = json!("acme/elsewhere");
    let (status, answer) = post(&t, &unknown).await?;
    assert_eq!(status, 404, "{answer}");
    assert!(answer.contains("acme/elsewhere"), "{answer}");

    let mut short = good.clone();
    short["sha"] = json!(&head.as_str()[..7]);
    let (status, answer) = post(&t, &short).await?;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("sha"), "{answer}");

    let mut huge = good.clone();
    huge["summary_md"] = json!("x".repeat(11 * 1024 * 1024));
    let (status, answer) = post(&t, &huge).await?;
    assert_eq!(status, 413, "{answer}");

    let (status, answer) = post_raw(&t, JENKINS_TOKEN, b"{\"repo\": 1}".to_vec()).await?;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("repo"), "{answer}");

    let resp = t
        .client()
        .post(format!(
            "{}/api/reports?builder=nope&token={JENKINS_TOKEN}",
            t.url
        ))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&good)?)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 404);
    // No answer repeats the token.
    assert!(!resp.text().await?.contains(JENKINS_TOKEN));

    settled(&t).await?;
    assert!(report_comments(&t, pr).is_empty());
    assert!(
        t.engine
            .store()
            .reports_for_commit(&t.repo, &head)
            .await?
            .is_empty()
    );
    assert_eq!(t.engine.store().report_comment(&t.repo, pr).await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_comments_off_the_report_is_the_commit_status_greg_report() -> anyhow::Result<()> {
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: "    comments: false\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    let unit = report(
        &head,
        Some(pr),
        "unit",
        "failure",
        vec![junit("surefire-TEST-surefire.MyTest.xml")?],
    );
    accepted(&t, &unit).await?;
    settled(&t).await?;
    assert!(t.world.bot_comments(&t.repo, pr).is_empty());
    let status = t
        .status(&head, "greg/report")
        .ok_or_else(|| anyhow::anyhow!("no greg/report status"))?;
    assert_eq!(status.state, greg_core::CommitState::Failure);
    let description = status.description.unwrap_or_default();
    assert!(description.starts_with("1/1 jobs"), "{description}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_that_could_not_be_posted_is_posted_by_the_sweeper() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    // GitHub fails the comment POST three times (the quick attempts of one render are not
    // retried: the render gives up, keeps its lease until it expires, and the sweeper renders).
    for _ in 0..3 {
        t.world
            .fail_next(Server::Github, r"/issues/\d+/comments$", 502, None)?;
    }
    accepted(&t, &report(&head, Some(pr), "unit", "success", vec![])).await?;
    settled(&t).await?;
    let mut waited = Duration::ZERO;
    while report_comments(&t, pr).is_empty() && waited < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
        t.engine.wait_idle().await;
    }
    assert_eq!(report_comments(&t, pr).len(), 1, "after {waited:?}");
    let row = t.engine.store().report_comment(&t.repo, pr).await?;
    assert_eq!(row.map(|r| (r.wanted, r.done)), Some((1, 1)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_report_comment_is_posted_again_once() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    accepted(&t, &report(&head, Some(pr), "unit", "success", vec![])).await?;
    settled(&t).await?;
    let first = t
        .world
        .bot_comments(&t.repo, pr)
        .into_iter()
        .find(|c| c.body.starts_with(MARKER))
        .ok_or_else(|| anyhow::anyhow!("no report comment"))?;
    let url = format!(
        "{}/repos/acme/demo/issues/comments/{}",
        t.github.url, first.id.0
    );
    let resp = t
        .client()
        .delete(url)
        .header("authorization", "token gh-api-token")
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 204);
    accepted(&t, &report(&head, Some(pr), "lint", "success", vec![])).await?;
    settled(&t).await?;
    let comments = report_comments(&t, pr);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert!(comments[0].contains("lint") && comments[0].contains("unit"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_report_page_shows_every_job_and_no_markup_from_a_summary() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    let mut unit = report(
        &head,
        Some(pr),
        "unit",
        "failure",
        vec![junit("surefire-TEST-surefire.MyTest.xml")?],
    );
    unit["summary_md"] = json!("Coverage **83 %** <script>alert(1)</script>");
    accepted(&t, &unit).await?;
    settled(&t).await?;
    let page = t
        .client()
        .get(format!("{}/report/github/acme/demo/{}", t.url, pr.0))
        .send()
        .await?;
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
    );
    let html = page.text().await?;
    assert!(html.contains("<strong>83 %</strong>"), "{html}");
    assert!(html.contains("surefire.MyTest"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    let missing = t
        .client()
        .get(format!("{}/report/github/acme/demo/999", t.url))
        .send()
        .await?;
    assert_eq!(missing.status().as_u16(), 404);
    let other = t
        .client()
        .get(format!("{}/report/github/acme/elsewhere/1", t.url))
        .send()
        .await?;
    assert_eq!(other.status().as_u16(), 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_comment_compares_with_the_target_and_waits_for_the_jobs_it_ran() -> anyhow::Result<()>
{
    let t = GregTester::start().await?;
    // master's tip was built by two jobs.
    let m1 = t.push_branch("master", "master-2").await?;
    for (job, file) in [
        ("unit", "nextest-tests-junit.xml"),
        ("lint", "jest-junit.xml"),
    ] {
        let body = report(&m1, None, job, "success", vec![junit(file)?]);
        accepted(&t, &body).await?;
    }
    settled(&t).await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    let unit = report(
        &head,
        Some(pr),
        "unit",
        "success",
        vec![junit("nextest-tests-junit.xml")?],
    );
    accepted(&t, &unit).await?;
    settled(&t).await?;
    let body = report_comments(&t, pr).pop().unwrap_or_default();
    assert!(
        body.contains("**1 of 2 expected jobs reported.** Waiting for: `lint`."),
        "{body}"
    );
    assert!(
        body.contains(&format!("Change against `master` at `{}`", m1.short())),
        "{body}"
    );

    // master moves on and its CI has not reported yet: the comparison stays with the latest
    // commit of master that has reports.
    t.push_branch("master", "master-3").await?;
    let lint = report(
        &head,
        Some(pr),
        "lint",
        "success",
        vec![junit("jest-junit.xml")?],
    );
    accepted(&t, &lint).await?;
    settled(&t).await?;
    let body = report_comments(&t, pr).pop().unwrap_or_default();
    assert!(
        body.contains("**2 of 2 expected jobs reported.**"),
        "{body}"
    );
    assert!(
        body.contains(&format!("Change against `master` at `{}`", m1.short())),
        "{body}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_finish_together_make_one_comment_write() -> anyhow::Result<()> {
    let mut opts = TesterOptions::default();
    opts.engine.report_debounce = Duration::from_millis(500);
    let t = GregTester::start_with(opts).await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    let bodies: Vec<Value> = ["unit", "lint", "docs", "python"]
        .iter()
        .map(|job| report(&head, Some(pr), job, "success", vec![]))
        .collect();
    for body in &bodies {
        accepted(&t, body).await?;
    }
    settled(&t).await?;
    let posts = t
        .world
        .requests_matching(Server::Github, "POST", r"/issues/\d+/comments$")
        .len();
    assert_eq!(
        (posts, comment_edits(&t)),
        (1, 0),
        "one write for four reports"
    );
    let comments = report_comments(&t, pr);
    assert!(
        comments[0].contains("**4 of 4 expected jobs reported.**"),
        "{}",
        comments[0]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expected_jobs_of_the_configuration_are_named_until_they_report() -> anyhow::Result<()>
{
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: "    report:\n      expect: [unit, lint, \"docs (pdf)\"]\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    accepted(&t, &report(&head, Some(pr), "unit", "success", vec![])).await?;
    settled(&t).await?;
    let body = report_comments(&t, pr).pop().unwrap_or_default();
    assert!(
        body.contains("**1 of 3 expected jobs reported.** Waiting for: `lint`, `docs (pdf)`."),
        "{body}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_pruned_after_the_retention_and_not_before() -> anyhow::Result<()> {
    let t = GregTester::start_with(TesterOptions {
        clock: Some(greg_engine::ManualClock::new(1_700_000_000_000)),
        ..TesterOptions::default()
    })
    .await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    let mut unit = report(&head, Some(pr), "unit", "success", vec![]);
    unit["metadata"] = json!({ "coverage.json": { "lines": 0.83 } });
    accepted(&t, &unit).await?;
    settled(&t).await?;
    let store = t.engine.store();
    assert_eq!(store.reports_for_commit(&t.repo, &head).await?.len(), 1);
    assert_eq!(store.report_metadata(&t.repo, &head).await?.len(), 1);
    // server.report_retention_days defaults to 90.
    t.advance(89 * 24 * 3600 * 1000)?;
    t.engine.prune_deliveries().await?;
    assert_eq!(store.reports_for_commit(&t.repo, &head).await?.len(), 1);
    t.advance(2 * 24 * 3600 * 1000)?;
    t.engine.prune_deliveries().await?;
    assert!(store.reports_for_commit(&t.repo, &head).await?.is_empty());
    assert!(store.report_metadata(&t.repo, &head).await?.is_empty());
    assert_eq!(store.report_comment(&t.repo, pr).await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_twin_shows_the_jobs_and_the_metadata_of_the_commit_and_the_pull_request()
-> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (pr, first) = t.open_pr("carol", "feature").await?;
    let mut unit = report(
        &first,
        Some(pr),
        "unit",
        "success",
        vec![junit("jest-junit.xml")?],
    );
    unit["metadata"] = json!({ "coverage.json": { "lines": 0.81 } });
    accepted(&t, &unit).await?;
    let second = t.push_to_pr(pr, "feature-2").await?;
    let mut unit = report(&second, Some(pr), "unit", "failure", vec![]);
    unit["metadata"] =
        json!({ "coverage.json": { "lines": 0.79 }, "size.json": { "bytes": 1234 } });
    accepted(&t, &unit).await?;
    settled(&t).await?;

    let resp = t
        .client()
        .get(format!("{}/api/reports/github/acme/demo/{}", t.url, pr.0))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    let answer: Value = resp.json().await?;
    let view = &answer["report"];
    assert_eq!(view["head_sha"], second.as_str());
    assert_eq!(view["reports_received"], 2);
    assert_eq!(view["reports_shown"], 2);
    assert_eq!(view["jobs"][0]["job"], "unit");
    assert_eq!(view["jobs"][0]["status"], "failure");
    assert_eq!(view["commit_metadata"]["coverage.json"]["lines"], 0.79);
    assert_eq!(view["commit_metadata"]["size.json"]["bytes"], 1234);
    let per_pr = view["pull_request_metadata"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shas: Vec<&str> = per_pr.iter().filter_map(|m| m["sha"].as_str()).collect();
    assert_eq!(shas, [first.as_str(), second.as_str(), second.as_str()]);

    let missing = t
        .client()
        .get(format!("{}/api/reports/github/acme/demo/999", t.url))
        .send()
        .await?;
    assert_eq!(missing.status().as_u16(), 404);
    let body: Value = missing.json().await?;
    assert_eq!(body["error"], "no report for acme/demo#999");
    Ok(())
}
