//! End to end, durable retries and dead letters (SPEC §11 "Retries"): a command whose
//! handling keeps failing is not lost; the lane moves on meanwhile; the retry runs when due;
//! after the retry window the delivery is dead-lettered, listed by the API, and the person who
//! gave the command is told once; a redelivery runs it again. greg runs on a manual clock, so
//! the tests move time instead of waiting.

use greg_core::Permission;
use greg_engine::{ManualClock, Redelivered};
use greg_testkit::{GregTester, Server, TesterOptions};
use serde_json::Value;

/// alice's permission, which "@greg ok" reads first.
const PERMISSION: &str = "/collaborators/alice/permission$";
const MINUTE: i64 = 60_000;

async fn start() -> anyhow::Result<GregTester> {
    let t = GregTester::start_with(TesterOptions {
        clock: Some(ManualClock::new(1_700_000_000_000)),
        ..TesterOptions::default()
    })
    .await?;
    t.set_permission("alice", Permission::Write)?;
    Ok(t)
}

/// Makes the next `n` reads of alice's permission fail with `status`.
fn fail_permission(t: &GregTester, n: usize, status: u16) -> anyhow::Result<()> {
    for _ in 0..n {
        t.world
            .fail_next(Server::Github, PERMISSION, status, None)?;
    }
    Ok(())
}

async fn failed_list(t: &GregTester) -> anyhow::Result<Vec<Value>> {
    let v: Value = t
        .client()
        .get(format!("{}/api/deliveries?state=failed", t.url))
        .send()
        .await?
        .json()
        .await?;
    // docs/api.md quotes this answer: GREG_PRINT_API=1 cargo test --test e2e_retries -- --nocapture
    if std::env::var_os("GREG_PRINT_API").is_some() {
        println!("GET /api/deliveries?state=failed\n{v:#}");
    }
    Ok(v["deliveries"].as_array().cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_keeps_failing_is_retried_later_and_not_lost() -> anyhow::Result<()> {
    let mut t = start().await?;
    let (pr, _) = t.open_pr("carol", "feature").await?;

    // GitHub fails for longer than the quick attempts in the lane (3 under test).
    fail_permission(&t, 3, 503)?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    t.expect_no_comment(pr)?;
    assert!(failed_list(&t).await?.is_empty(), "not dead-lettered");

    // The lane moved on: the repository's next delivery runs meanwhile.
    t.post_comment(pr, "carol", "@greg help").await?;
    assert!(t.expect_comment(pr)?.contains("help"));

    // Minutes later, the scheduled retry runs alice's command.
    t.advance(5 * MINUTE)?;
    t.engine.run_due_retries().await;
    t.settle().await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("Not ready to merge"), "{answer}");
    // Done for good: nothing more is due, however late.
    t.advance(120 * MINUTE)?;
    t.engine.run_due_retries().await;
    t.settle().await?;
    t.expect_no_comment(pr)?;
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_failing_for_the_whole_window_is_dead_lettered_and_its_author_told_once()
-> anyhow::Result<()> {
    let mut t = start().await?;
    let (pr, _) = t.open_pr("carol", "feature").await?;
    fail_permission(&t, 3, 503)?;
    t.post_comment(pr, "alice", "@greg ok").await?;

    // Past the retry window (an hour): the next failure dead-letters the delivery. Posting the
    // notice fails once too; reconciliation posts it.
    t.advance(61 * MINUTE)?;
    fail_permission(&t, 3, 503)?;
    t.world
        .fail_next(Server::Github, r"/issues/\d+/comments$", 502, None)?;
    t.engine.run_due_retries().await;
    t.settle().await?;
    t.expect_no_comment(pr)?;

    let failed = failed_list(&t).await?;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let dead = &failed[0];
    assert_eq!(dead["event"], "comment");
    assert_eq!(dead["source"], "github");
    assert_eq!(dead["repo"], "acme/demo");
    assert_eq!(dead["attempts"], 6);
    let error = dead["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("github"), "{error}");
    for secret in ["gh-api-token", "gh-incoming", "jenkins-api-token"] {
        assert!(!error.contains(secret), "{error}");
    }
    let seq = dead["seq"].as_i64().unwrap_or_default();

    t.engine.reconcile().await;
    t.settle().await?;
    let notice = t.expect_comment(pr)?;
    assert!(notice.contains("@alice"), "{notice}");
    assert!(notice.contains("could not carry out"), "{notice}");
    assert!(notice.contains("github: unavailable"), "{notice}");
    assert!(
        notice.contains(&format!("greg redeliver {seq}")),
        "{notice}"
    );
    // Posted once.
    t.engine.reconcile().await;
    t.settle().await?;
    t.expect_no_comment(pr)?;

    // Without server.admin_token the admin API is off.
    let status = t
        .client()
        .post(format!("{}/api/deliveries/{seq}/redeliver", t.url))
        .bearer_auth("anything")
        .send()
        .await?
        .status();
    assert_eq!(status.as_u16(), 403);

    // A redelivery runs it again, now that GitHub answers.
    assert_eq!(t.engine.redeliver(seq).await?, Redelivered::Queued);
    t.settle().await?;
    assert!(t.expect_comment(pr)?.contains("Not ready to merge"));
    assert!(failed_list(&t).await?.is_empty());
    assert_eq!(t.engine.redeliver(seq).await?, Redelivered::NotFailed);
    assert_eq!(t.engine.redeliver(seq + 1000).await?, Redelivered::NotFound);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retryable_failure_is_dead_lettered_at_once() -> anyhow::Result<()> {
    let mut t = start().await?;
    let (pr, _) = t.open_pr("carol", "feature").await?;
    // GitHub refuses greg's credentials: retrying cannot help.
    fail_permission(&t, 1, 401)?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    let notice = t.expect_comment(pr)?;
    assert!(notice.contains("could not carry out"), "{notice}");
    assert!(notice.contains("credentials were refused"), "{notice}");
    let failed = failed_list(&t).await?;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["attempts"], 1);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_deliveries_are_pruned_after_the_retention_and_dead_letters_kept()
-> anyhow::Result<()> {
    let mut t = start().await?;
    let (pr, _) = t.open_pr("carol", "feature").await?;
    fail_permission(&t, 1, 401)?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    assert!(t.expect_comment(pr)?.contains("could not carry out"));
    assert_eq!(t.engine.prune_deliveries().await?, 0, "nothing is old yet");

    // delivery_retention_days defaults to 14.
    t.advance(15 * 24 * 60 * MINUTE)?;
    let pruned = t.engine.prune_deliveries().await?;
    assert!(
        pruned >= 1,
        "the pull_request delivery is pruned ({pruned})"
    );
    assert_eq!(failed_list(&t).await?.len(), 1, "the dead letter is kept");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_retry_survives_a_restart() -> anyhow::Result<()> {
    let opts = TesterOptions {
        clock: Some(ManualClock::new(1_700_000_000_000)),
        ..TesterOptions::default()
    };
    let t = GregTester::start_with(opts.clone()).await?;
    t.set_permission("alice", Permission::Write)?;
    let (pr, _) = t.open_pr("carol", "feature").await?;
    fail_permission(&t, 3, 503)?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    t.expect_no_comment(pr)?;

    // greg stops (gracefully) with the retry scheduled, and starts again on the same store.
    let old = t.engine.clone();
    let (world, github, jenkins, database) = t.stop_greg().await;
    assert!(old.shutdown(std::time::Duration::from_secs(5)).await);
    let mut t = GregTester::start_greg(world, github, jenkins, database, opts).await?;
    t.expect_no_comment(pr)?;
    t.advance(5 * MINUTE)?;
    t.engine.run_due_retries().await;
    t.settle().await?;
    assert!(t.expect_comment(pr)?.contains("Not ready to merge"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_retry_after_is_waited_out_of_the_lane() -> anyhow::Result<()> {
    let mut t = start().await?;
    let (pr, _) = t.open_pr("carol", "feature").await?;
    // Rate limited for a minute: the lane does not sleep through it.
    t.world
        .fail_next(Server::Github, PERMISSION, 429, Some(60))?;
    let started = std::time::Instant::now();
    t.post_comment(pr, "alice", "@greg ok").await?;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    t.expect_no_comment(pr)?;

    // Not yet due after 30 s; due after the minute GitHub asked for.
    t.advance(30_000)?;
    t.engine.run_due_retries().await;
    t.settle().await?;
    t.expect_no_comment(pr)?;
    t.advance(31_000)?;
    t.engine.run_due_retries().await;
    t.settle().await?;
    assert!(t.expect_comment(pr)?.contains("Not ready to merge"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_github_trouble_during_please_delays_the_merge_but_does_not_drop_it()
-> anyhow::Result<()> {
    let mut t = start().await?;
    t.set_permission("bob", Permission::Write)?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    t.finish_build(
        greg_testkit::tester::TEST_JOB,
        greg_core::BuildOutcome::Success,
    )
    .await?;
    t.approve(pr, "bob").await?;

    // GitHub answers 502 to everything "please" needs first, for a minute.
    for _ in 0..6 {
        t.world.fail_next(Server::Github, PERMISSION, 502, None)?;
    }
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(
        t.builds(greg_testkit::tester::MERGE_JOB).is_empty(),
        "nothing could start yet"
    );
    t.expect_no_comment(pr)?;

    // GitHub is back a minute later: the command runs from the stored delivery.
    t.advance(MINUTE + 1_000)?;
    t.engine.run_due_retries().await;
    t.settle().await?;
    t.advance(5 * MINUTE)?;
    t.engine.run_due_retries().await;
    t.settle().await?;
    let merge = t.running_build(greg_testkit::tester::MERGE_JOB)?;
    assert_eq!(merge.param("COMMIT"), Some(head.as_str()));
    assert!(t.expect_comment(pr)?.contains("merge"));
    assert!(failed_list(&t).await?.is_empty());
    t.finish_build(
        greg_testkit::tester::MERGE_JOB,
        greg_core::BuildOutcome::Success,
    )
    .await?;
    while t.expect_comment(pr).is_ok() {}
    t.finish().await
}
