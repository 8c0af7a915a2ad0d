//! End to end: the whole Greg flow on GitHub + Jenkins (merge_mode builder), through the real
//! greg server, against the fake GitHub and fake Jenkins.

use greg_core::{BuildOutcome, CommitState, Permission};
use greg_testkit::GregTester;
use greg_testkit::tester::{MERGE_JOB, TEST_JOB};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_request_is_tested_checked_approved_and_merged() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;

    // Opening the pull request starts one test build of its head, with Greg's parameters.
    let (pr, head) = t.open_pr("carol", "fix-typo").await?;
    let build = t.running_build(TEST_JOB)?;
    assert_eq!(build.param("COMMIT"), Some(head.as_str()));
    assert_eq!(build.param("CONTEXT"), Some("test"));
    assert_eq!(build.param("SOURCE"), Some("git@github.com:acme/demo.git"));
    assert_eq!(build.param("BRANCH"), Some("fix-typo"));
    assert_eq!(build.param("REPORT"), Some("true"));
    assert_eq!(
        t.status(&head, "greg/test").map(|s| s.state),
        Some(CommitState::Pending)
    );

    // "@greg ok" before approval and before the test finished: not ready, every blocker listed.
    t.post_comment(pr, "alice", "@greg ok").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("Not ready to merge"), "{answer}");
    assert!(answer.contains("0 of 1 required approval"), "{answer}");
    assert!(answer.contains("still running"), "{answer}");

    // The test build passes: greg/test success with the build URL.
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    let status = t.status(&head, "greg/test").expect("a greg/test status");
    assert_eq!(status.state, CommitState::Success);
    assert!(
        status
            .target_url
            .as_deref()
            .is_some_and(|u| u.contains("/job/demo-test/")),
        "{status:?}"
    );

    // A native approval, then "@greg ok" says ready.
    t.approve(pr, "bob").await?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    assert!(t.expect_comment(pr)?.contains("Ready to merge"));

    // "@greg please" runs the merge job with PR and TARGET.
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("Merging"));
    let merge = t.running_build(MERGE_JOB)?;
    assert_eq!(merge.param("CONTEXT"), Some("merge"));
    assert_eq!(merge.param("PR"), Some(pr.to_string().as_str()));
    assert_eq!(merge.param("TARGET"), Some("master"));
    assert_eq!(merge.param("TARGET_BRANCH"), Some("master"));
    assert_eq!(
        t.status(&head, "greg/merge").map(|s| s.state),
        Some(CommitState::Pending)
    );

    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(
        t.status(&head, "greg/merge").map(|s| s.state),
        Some(CommitState::Success)
    );
    t.expect_no_comment(pr)?;
    t.finish().await
}
