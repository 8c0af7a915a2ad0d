//! End to end: upstream faults while greg relays results. A failed relay is retried, and the
//! result is never lost.

use greg_core::{BuildOutcome, CommitState};
use greg_testkit::tester::TEST_JOB;
use greg_testkit::{GregTester, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_is_relayed_even_when_github_fails_the_first_status() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (_pr, head) = t.open_pr("carol", "flaky-github").await?;
    assert_eq!(
        t.status(&head, "greg/test").map(|s| s.state),
        Some(CommitState::Pending)
    );

    // GitHub answers the next status write with a 502; greg retries the delivery.
    t.world.fail_next(Server::Github, "/statuses/", 502, None)?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;

    let status = t.status(&head, "greg/test").expect("a status");
    assert_eq!(status.state, CommitState::Success, "{status:?}");
    let faulted = t.world.requests().iter().filter(|r| r.faulted).count();
    assert_eq!(faulted, 1, "the fault fired once");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_status_write_is_retried_after_the_delay() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (_pr, head) = t.open_pr("carol", "rate-limited").await?;
    t.world
        .fail_next(Server::Github, "/statuses/", 429, Some(1))?;
    t.finish_build(TEST_JOB, BuildOutcome::Failure).await?;
    assert_eq!(
        t.status(&head, "greg/test").map(|s| s.state),
        Some(CommitState::Failure)
    );
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pending_status_does_not_lose_the_build() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    // The pending status write fails once: the delivery is retried, and the head gets exactly
    // one build and its pending status.
    t.world.fail_next(Server::Github, "/statuses/", 500, None)?;
    let (_pr, head) = t.open_pr("carol", "flaky-pending").await?;
    let builds: Vec<_> = t
        .builds(TEST_JOB)
        .into_iter()
        .filter(|b| b.param("COMMIT") == Some(head.as_str()))
        .collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert_eq!(
        t.status(&head, "greg/test").map(|s| s.state),
        Some(CommitState::Pending)
    );
    t.finish().await
}
