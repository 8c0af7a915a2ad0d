//! End to end, the JSON API (issue 3 item 8, docs/api.md): with one pull request being merged
//! and one waiting in the queue, each endpoint answers what greg is doing, from its store; bad
//! input gets a JSON error.

use greg_core::{BuildOutcome, Permission};
use greg_testkit::tester::TEST_JOB;
use greg_testkit::{GregTester, TesterOptions};
use serde_json::Value;

async fn get(t: &GregTester, path: &str) -> anyhow::Result<(u16, Value)> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_the_queue_builds_reviews_and_passing_heads() -> anyhow::Result<()> {
    let mut t = GregTester::start_with(TesterOptions {
        repo_yaml: "    merge_mode: staging\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    let (one, head1) = t.open_pr("carol", "one").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    let (two, head2) = t.open_pr("carol", "two").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.approve(one, "bob").await?;
    t.post_comment(two, "bob", "@greg lgtm").await?;
    t.post_comment(two, "alice", "@greg review @dave").await?;
    t.expect_comment(two)?;
    t.post_comment(one, "alice", "@greg please").await?;
    t.approve(two, "dave").await?;
    t.set_permission("dave", Permission::Write)?;
    t.post_comment(two, "alice", "@greg please p=3").await?;
    t.expect_comment(two)?;

    let (status, queue) = get(&t, "/api/queue/acme/demo").await?;
    assert_eq!(status, 200);
    assert_eq!(queue["repo"], "acme/demo");
    let q = &queue["queues"][0];
    assert_eq!(q["target"], "master");
    assert_eq!(q["tree_closed_below"], Value::Null);
    let entries = q["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["pr"], one.0);
    assert_eq!(entries[0]["position"], 1);
    assert_eq!(entries[0]["state"], "building");
    assert_eq!(entries[0]["head"], head1.as_str());
    assert_eq!(entries[0]["build"]["state"], "running");
    assert_eq!(entries[0]["build"]["context"], "merge");
    assert_eq!(entries[0]["build"]["sha"], entries[0]["staging"]);
    assert_eq!(entries[1]["pr"], two.0);
    assert_eq!(entries[1]["position"], 2);
    assert_eq!(entries[1]["state"], "waiting");
    assert_eq!(entries[1]["priority"], 3);
    assert_eq!(entries[1]["approved_by"], "alice");
    // The serial queue: one candidate in flight, on the target tip, holding #1.
    let candidates = q["candidates"].as_array().cloned().unwrap_or_default();
    assert_eq!(candidates.len(), 1);
    assert_eq!(candidates[0]["id"], entries[0]["candidate"]);
    assert_eq!(candidates[0]["parent"], Value::Null);
    assert_eq!(candidates[0]["pull_requests"], serde_json::json!([one.0]));
    assert_eq!(candidates[0]["staging"], entries[0]["staging"]);
    assert_eq!(
        candidates[0]["staging_ref"],
        format!("greg/staging/master/{}", candidates[0]["id"])
    );
    assert_eq!(candidates[0]["build"]["state"], "running");

    let (status, st) = get(&t, "/api/status").await?;
    assert_eq!(status, 200);
    let prs = st["pull_requests"].as_array().cloned().unwrap_or_default();
    assert_eq!(prs.len(), 2);
    assert_eq!(prs[0]["pr"], one.0);
    assert_eq!(prs[0]["builds"][0]["context"], "merge");
    assert_eq!(prs[1]["heads"][0], head2.as_str());

    let (_, ready) = get(&t, "/api/ready-for-merge").await?;
    assert_eq!(
        ready["queues"][0]["entries"].as_array().map(Vec::len),
        Some(2)
    );

    let (_, reviews) = get(&t, "/api/review-status").await?;
    let two_reviews = reviews["pull_requests"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["pr"] == two.0).cloned())
        .unwrap_or_default();
    assert_eq!(two_reviews["approvals"][0]["login"], "bob");
    assert_eq!(two_reviews["approvals"][0]["sha"], head2.as_str());
    assert_eq!(two_reviews["required_reviewers"][0], "dave");

    let (_, passing) = get(&t, "/api/passing?limit=10").await?;
    let heads: Vec<&str> = passing["passing"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["sha"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(heads, vec![head2.as_str(), head1.as_str()], "newest first");

    let (status, missing) = get(&t, "/api/queue/acme/other").await?;
    assert_eq!(status, 404);
    assert_eq!(missing["error"], "repository acme/other is not configured");
    let (status, bad) = get(&t, "/api/passing?limit=0").await?;
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().is_some_and(|e| e.contains("limit")));
    t.finish().await
}
