//! End to end, builds (SPEC §6, issue 2 item 7): superseding, one build per (repository, sha,
//! context), duplicate deliveries, relaying results, lost callbacks, restarts, forks, closed
//! pull requests, target branches and timeouts. Each test sets up the world, acts as GitHub,
//! Jenkins or a person would, and checks what greg left behind: commit statuses, comments,
//! builds and their parameters.

use greg_core::{
    BuildOutcome, BuildPhase, CommitState, Event, Permission, PullRequestAction, PullRequestEvent,
    PullRequestState, RepoName,
};
use greg_engine::ManualClock;
use greg_testkit::tester::{MERGE_JOB, TEST_JOB};
use greg_testkit::{Delivery, GregTester, NewPr, TesterOptions, fake_sha};
use std::time::{Duration, Instant};

/// Options with a manual clock, so build polling and timeouts are driven without sleeping.
fn manual_clock_options() -> TesterOptions {
    TesterOptions {
        clock: Some(ManualClock::new(1_700_000_000_000)),
        ..TesterOptions::default()
    }
}

fn state(t: &GregTester, sha: &greg_core::Sha, context: &str) -> Option<CommitState> {
    t.status(sha, context).map(|s| s.state)
}

/// A green, approved pull request: opened by carol, test build passed, approved by bob.
async fn green_approved_pr(
    t: &GregTester,
) -> anyhow::Result<(greg_core::PrNumber, greg_core::Sha)> {
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.approve(pr, "bob").await?;
    Ok((pr, head))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_the_pull_request_supersedes_the_running_test_build() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (pr, old_head) = t.open_pr("carol", "fix").await?;
    let first = t.running_build(TEST_JOB)?;
    assert_eq!(first.param("COMMIT"), Some(old_head.as_str()));

    let new_head = t.push_to_pr(pr, "fix-2").await?;

    // The old build was stopped in Jenkins.
    let builds = t.builds(TEST_JOB);
    assert_eq!(builds.len(), 2, "{builds:#?}");
    let stopped = &builds[0];
    assert_eq!(stopped.number, first.number);
    assert!(!stopped.building);
    assert_eq!(stopped.result, Some(BuildOutcome::Aborted));
    // Its head's greg/test says why, and the late ABORTED callbacks did not overwrite it.
    let old = t
        .status(&old_head, "greg/test")
        .expect("a status on the old head");
    assert_eq!(old.state, CommitState::Error);
    let desc = old.description.unwrap_or_default();
    assert!(desc.starts_with("superseded"), "{desc}");
    assert!(desc.contains(new_head.short()), "{desc}");
    // The new head has one running test build and greg/test pending.
    let new = &builds[1];
    assert!(new.building);
    assert_eq!(new.param("COMMIT"), Some(new_head.as_str()));
    assert_eq!(new.param("CONTEXT"), Some("test"));
    assert_eq!(
        state(&t, &new_head, "greg/test"),
        Some(CommitState::Pending)
    );

    // The new head's result is relayed; the old head keeps its "superseded".
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    assert_eq!(
        state(&t, &new_head, "greg/test"),
        Some(CommitState::Success)
    );
    assert_eq!(state(&t, &old_head, "greg/test"), Some(CommitState::Error));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_and_a_synchronize_of_one_head_give_one_build() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (pr, first_head) = t.open_pr("carol", "fix").await?;

    // GitHub sends both a push (to the head branch) and a synchronize for one new head.
    let head = fake_sha("fix-2");
    t.world.push_to_pr(&t.repo, pr, &head)?;
    t.deliver(
        t.world
            .push_webhook(&t.repo, "fix", Some(&first_head), "carol")?,
    )
    .await?;
    t.deliver(t.world.pull_request_webhook(&t.repo, pr, "synchronize")?)
        .await?;

    let of_head: Vec<_> = t
        .builds(TEST_JOB)
        .into_iter()
        .filter(|b| b.param("COMMIT") == Some(head.as_str()))
        .collect();
    assert_eq!(of_head.len(), 1, "{of_head:#?}");
    assert!(of_head[0].building);
    assert_eq!(
        state(&t, &first_head, "greg/test"),
        Some(CommitState::Error)
    );

    // The build the push started belongs to the pull request: the next head supersedes it.
    let third = t.push_to_pr(pr, "fix-3").await?;
    let b = t
        .world
        .build(TEST_JOB, of_head[0].number)
        .expect("the build exists");
    assert_eq!(b.result, Some(BuildOutcome::Aborted), "{b:#?}");
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Error));
    assert_eq!(state(&t, &third, "greg/test"), Some(CommitState::Pending));
    assert_eq!(
        t.builds(TEST_JOB).iter().filter(|b| b.building).count(),
        1,
        "only the newest head is building"
    );
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_delivery_is_answered_duplicate_and_processed_once() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    t.set_permission("alice", Permission::Write)?;
    let (pr, _) = t.open_pr("carol", "fix").await?;

    let comment = t.world.comment(&t.repo, pr, "alice", "@greg ok")?;
    let delivery = t.world.comment_webhook(&t.repo, &comment)?;
    let (status, body) = t.send(&delivery).await?;
    assert_eq!(status, 202);
    assert!(body.starts_with("accepted"), "{body}");
    t.settle().await?;
    let (status, body) = t.send(&delivery).await?;
    assert_eq!(status, 202);
    assert!(body.starts_with("duplicate"), "{body}");
    t.settle().await?;

    // One answer to one comment.
    assert!(t.expect_comment(pr)?.contains("Not ready to merge"));
    t.expect_no_comment(pr)?;

    // The same for a pull_request delivery: one build.
    let opened = t.world.pull_request_webhook(&t.repo, pr, "reopened")?;
    t.send(&opened).await?;
    let (_, body) = t.send(&opened).await?;
    assert!(body.starts_with("duplicate"), "{body}");
    t.settle().await?;
    assert_eq!(t.builds(TEST_JOB).len(), 1);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_test_build_fails_the_status_and_blocks_the_merge() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    t.set_permission("alice", Permission::Write)?;
    let (pr, head) = t.open_pr("carol", "fix").await?;
    let n = t.finish_build(TEST_JOB, BuildOutcome::Failure).await?;

    let status = t.status(&head, "greg/test").expect("a greg/test status");
    assert_eq!(status.state, CommitState::Failure);
    let url = status.target_url.unwrap_or_default();
    assert!(url.ends_with(&format!("/job/{TEST_JOB}/{n}/")), "{url}");

    t.post_comment(pr, "alice", "@greg please").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("Not ready to merge"), "{answer}");
    assert!(
        answer.contains("the test build of the head ended in failure"),
        "{answer}"
    );
    assert!(t.builds(MERGE_JOB).is_empty());
    assert_eq!(state(&t, &head, "greg/merge"), None);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_merge_build_fails_greg_merge_and_says_so() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, head) = green_approved_pr(&t).await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("Merging"));

    let n = t.finish_build(MERGE_JOB, BuildOutcome::Failure).await?;
    let status = t.status(&head, "greg/merge").expect("a greg/merge status");
    assert_eq!(status.state, CommitState::Failure);
    let url = status.target_url.unwrap_or_default();
    assert!(url.ends_with(&format!("/job/{MERGE_JOB}/{n}/")), "{url}");
    let comment = t.expect_comment(pr)?;
    assert!(comment.contains("failed"), "{comment}");
    assert!(comment.contains(&url), "{comment}");

    // Asking again runs the merge job again; asking while it runs does not.
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("Merging"));
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("already running"));
    assert_eq!(t.builds(MERGE_JOB).len(), 2);
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Pending));
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Success));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_comments_off_a_failed_merge_is_reported_by_status_only() -> anyhow::Result<()> {
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: "    comments: false\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    let (pr, head) = green_approved_pr(&t).await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Pending));
    t.finish_build(MERGE_JOB, BuildOutcome::Failure).await?;
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Failure));
    assert!(t.world.bot_comments(&t.repo, pr).is_empty());
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_callbacks_are_made_up_for_by_polling() -> anyhow::Result<()> {
    let t = GregTester::start_with(manual_clock_options()).await?;
    t.world.drop_callbacks(true);
    let (_, head) = t.open_pr("carol", "fix").await?;
    let build = t.running_build(TEST_JOB)?;
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Pending));

    // The first poll follows the queue item to the build number (no callback said it).
    t.poll_builds().await?;
    t.world
        .finish_build(TEST_JOB, build.number, BuildOutcome::Success)?;
    // A build heard from less than build_poll_after_secs ago is not polled yet.
    t.poll_builds().await?;
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Pending));

    t.advance(2_000)?;
    t.poll_builds().await?;
    let status = t.status(&head, "greg/test").expect("a status");
    assert_eq!(status.state, CommitState::Success);
    let url = status.target_url.unwrap_or_default();
    assert!(
        url.ends_with(&format!("/job/{TEST_JOB}/{}/", build.number)),
        "{url}"
    );
    assert!(
        t.world
            .notifications()
            .iter()
            .all(|n| n.delivery == Delivery::Dropped)
    );
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_without_finalized_is_acted_on_after_the_grace_period() -> anyhow::Result<()> {
    let mut opts = TesterOptions::default();
    opts.engine.completed_grace = Duration::from_millis(300);
    let t = GregTester::start_with(opts).await?;
    t.world.drop_finalized(true);
    let (_, head) = t.open_pr("carol", "fix").await?;

    let finished_at = Instant::now();
    t.finish_build(TEST_JOB, BuildOutcome::Failure).await?;
    let repo = t.repo.clone();
    let sha = head.clone();
    t.world
        .wait_for("greg/test to leave pending", Duration::from_secs(10), |s| {
            let r = s.github.repos.get(&repo)?;
            r.statuses
                .iter()
                .rev()
                .find(|st| st.sha == sha && st.context == "greg/test")
                .filter(|st| st.state != CommitState::Pending)
                .map(|st| st.state)
        })
        .await?;
    // greg waited for FINALIZED before settling for COMPLETED's result.
    assert!(finished_at.elapsed() >= Duration::from_millis(300));
    t.settle().await?;
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Failure));
    let phases: Vec<(BuildPhase, bool)> = t
        .world
        .notifications()
        .iter()
        .map(|n| (n.phase, n.delivery == Delivery::Dropped))
        .collect();
    assert!(
        phases.contains(&(BuildPhase::Completed, false)),
        "{phases:?}"
    );
    assert!(
        phases.contains(&(BuildPhase::Finalized, true)),
        "{phases:?}"
    );
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_arrives_while_greg_is_down_is_relayed_after_restart() -> anyhow::Result<()> {
    let opts = manual_clock_options();
    let clock = opts.clock.clone().expect("a manual clock");
    let t = GregTester::start_with(opts.clone()).await?;
    let (_, head) = t.open_pr("carol", "fix").await?;
    let build = t.running_build(TEST_JOB)?;

    let (world, github, jenkins, database) = t.stop_greg().await;
    world.finish_build(TEST_JOB, build.number, BuildOutcome::Success)?;
    world.settle(Duration::from_secs(30)).await?;
    let lost: Vec<_> = world
        .notifications()
        .into_iter()
        .filter(|n| n.number == build.number && n.phase == BuildPhase::Finalized)
        .collect();
    assert!(
        matches!(lost.as_slice(), [n] if matches!(n.delivery, Delivery::Failed { .. })),
        "{lost:#?}"
    );

    let t = GregTester::start_greg(world, github, jenkins, database, opts).await?;
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Pending));
    clock.advance(2_000);
    t.poll_builds().await?;
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Success));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_stored_before_a_crash_is_processed_after_restart() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let repo = t.repo.clone();
    let api = t.github.url.clone();
    let (world, github, jenkins, database) = t.stop_greg().await;

    // The pull request was opened and its delivery stored, but greg died before processing it.
    let head = fake_sha("fix-1");
    let pr = world.open_pr(&repo, NewPr::new("carol", "fix", head.clone()))?;
    let event = Event::PullRequest(PullRequestEvent {
        repo: repo.clone(),
        action: PullRequestAction::Opened,
        pull_request: pr.to_core(&repo, &api),
    });
    let store = greg_store::Store::connect(&database).await?;
    let inserted = store
        .insert_deliveries(&[greg_store::NewDelivery {
            source: "github".to_owned(),
            delivery_id: "before-the-crash".to_owned(),
            repo_key: repo.to_string(),
            event: "pull_request".to_owned(),
            payload: serde_json::to_string(&event)?,
            received_ms: 1,
        }])
        .await?;
    assert!(matches!(
        inserted.as_slice(),
        [greg_store::Inserted::New(_)]
    ));
    store.close().await;

    let t =
        GregTester::start_greg(world, github, jenkins, database, TesterOptions::default()).await?;
    t.settle().await?;
    let builds = t.builds(TEST_JOB);
    assert_eq!(builds.len(), 1, "{builds:#?}");
    assert_eq!(builds[0].param("COMMIT"), Some(head.as_str()));
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Pending));
    assert!(t.engine.store().pending_deliveries(10).await?.is_empty());
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_from_a_fork_is_not_built_unless_forks_are_allowed() -> anyhow::Result<()> {
    let fork = RepoName::new("mallory", "demo");
    let t = GregTester::start().await?;
    let head = fake_sha("fork-1");
    let pr = t.world.open_pr(
        &t.repo,
        NewPr::new("mallory", "patch", head.clone()).from_fork(Some(fork.clone())),
    )?;
    t.deliver(t.world.pull_request_webhook(&t.repo, pr.number, "opened")?)
        .await?;
    assert!(t.builds(TEST_JOB).is_empty());
    assert_eq!(state(&t, &head, "greg/test"), None);
    t.finish().await?;

    let t = GregTester::start_with(TesterOptions {
        repo_yaml: "    allow_forks: true\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    let pr = t.world.open_pr(
        &t.repo,
        NewPr::new("mallory", "patch", head.clone()).from_fork(Some(fork)),
    )?;
    t.deliver(t.world.pull_request_webhook(&t.repo, pr.number, "opened")?)
        .await?;
    let build = t.running_build(TEST_JOB)?;
    assert_eq!(
        build.param("SOURCE"),
        Some("git@github.com:mallory/demo.git")
    );
    assert_eq!(build.param("COMMIT"), Some(head.as_str()));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_pull_request_stops_its_builds() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    let (pr, head) = t.open_pr("carol", "fix").await?;
    let test = t.running_build(TEST_JOB)?;

    // Closed while its test build runs: the build is stopped, greg/test says why.
    t.world
        .edit_pr(&t.repo, pr, |p| p.state = PullRequestState::Closed)?;
    t.deliver(t.world.pull_request_webhook(&t.repo, pr, "closed")?)
        .await?;
    let stopped = t.world.build(TEST_JOB, test.number).expect("the build");
    assert_eq!(stopped.result, Some(BuildOutcome::Aborted));
    let status = t.status(&head, "greg/test").expect("a greg/test status");
    assert_eq!(status.state, CommitState::Error);
    let desc = status.description.unwrap_or_default();
    assert!(desc.contains("closed"), "{desc}");

    // Reopened: the head, never tested to the end, is tested again.
    t.world
        .edit_pr(&t.repo, pr, |p| p.state = PullRequestState::Open)?;
    t.deliver(t.world.pull_request_webhook(&t.repo, pr, "reopened")?)
        .await?;
    let retest = t.running_build(TEST_JOB)?;
    assert_eq!(retest.param("COMMIT"), Some(head.as_str()));
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Pending));
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;

    // Closed while its merge build runs: the same for greg/merge.
    t.approve(pr, "bob").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("Merging"));
    let merge = t.running_build(MERGE_JOB)?;
    t.world
        .edit_pr(&t.repo, pr, |p| p.state = PullRequestState::Closed)?;
    t.deliver(t.world.pull_request_webhook(&t.repo, pr, "closed")?)
        .await?;
    let stopped = t.world.build(MERGE_JOB, merge.number).expect("the build");
    assert_eq!(stopped.result, Some(BuildOutcome::Aborted));
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Error));
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Success));
    t.expect_no_comment(pr)?;
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_pushes_to_target_branches_are_built() -> anyhow::Result<()> {
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: "    target_branches: [master]\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    let feature = t.push_branch("feature", "feature-1").await?;
    assert!(t.builds(TEST_JOB).is_empty());
    assert_eq!(state(&t, &feature, "greg/test"), None);

    let master = t.push_branch("master", "master-2").await?;
    let build = t.running_build(TEST_JOB)?;
    assert_eq!(build.param("COMMIT"), Some(master.as_str()));
    assert_eq!(build.param("BRANCH"), Some("master"));
    assert_eq!(build.param("CONTEXT"), Some("test"));
    assert_eq!(build.param("PR"), Some(""));
    assert_eq!(state(&t, &master, "greg/test"), Some(CommitState::Pending));
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    assert_eq!(state(&t, &master, "greg/test"), Some(CommitState::Success));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_without_a_result_past_the_timeout_is_timed_out() -> anyhow::Result<()> {
    let mut t = GregTester::start_with(TesterOptions {
        build_timeout_secs: Some(60),
        ..manual_clock_options()
    })
    .await?;
    let (pr, head) = t.open_pr("carol", "fix").await?;
    let build = t.running_build(TEST_JOB)?;

    // Polled before the timeout: still running, nothing said.
    t.advance(2_000)?;
    t.poll_builds().await?;
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Pending));
    assert!(
        t.world
            .build(TEST_JOB, build.number)
            .is_some_and(|b| b.building)
    );

    t.advance(60_000)?;
    t.poll_builds().await?;
    let status = t.status(&head, "greg/test").expect("a status");
    assert_eq!(status.state, CommitState::Error);
    assert!(
        status.description.unwrap_or_default().contains("timed out"),
        "the status says why"
    );
    let b = t.world.build(TEST_JOB, build.number).expect("the build");
    assert_eq!(b.result, Some(BuildOutcome::Aborted), "stopped in Jenkins");
    let comment = t.expect_comment(pr)?;
    assert!(comment.contains("timed out"), "{comment}");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_during_the_merge_build_stops_it_and_says_so() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, old_head) = green_approved_pr(&t).await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("Merging"));
    let merge = t.running_build(MERGE_JOB)?;

    let new_head = t.push_to_pr(pr, "feature-2").await?;
    let stopped = t
        .world
        .build(MERGE_JOB, merge.number)
        .expect("the merge build");
    assert_eq!(stopped.result, Some(BuildOutcome::Aborted));
    assert_eq!(state(&t, &old_head, "greg/merge"), Some(CommitState::Error));
    let comment = t.expect_comment(pr)?;
    assert!(comment.contains("head moved"), "{comment}");
    assert!(comment.contains(new_head.short()), "{comment}");
    // Only the new head's test build runs; nothing merges it without a new request.
    assert_eq!(t.builds(MERGE_JOB).len(), 1);
    assert_eq!(
        state(&t, &new_head, "greg/test"),
        Some(CommitState::Pending)
    );
    assert_eq!(state(&t, &new_head, "greg/merge"), None);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_test_build_of_an_old_head_is_cancelled() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    t.world.hold_queue(true);
    let (pr, old_head) = t.open_pr("carol", "fix").await?;
    let new_head = t.push_to_pr(pr, "fix-2").await?;

    let items = t
        .world
        .read(|s| s.jenkins.queue.values().cloned().collect::<Vec<_>>());
    assert_eq!(items.len(), 2, "{items:#?}");
    let commit = |i: &greg_testkit::QueueItem| {
        i.params
            .iter()
            .find(|(k, _)| k == "COMMIT")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(commit(&items[0]).as_deref(), Some(old_head.as_str()));
    assert!(items[0].cancelled, "the old head's queue item is cancelled");
    assert_eq!(commit(&items[1]).as_deref(), Some(new_head.as_str()));
    assert!(!items[1].cancelled);
    assert!(t.builds(TEST_JOB).is_empty());
    assert_eq!(state(&t, &old_head, "greg/test"), Some(CommitState::Error));
    assert_eq!(
        state(&t, &new_head, "greg/test"),
        Some(CommitState::Pending)
    );

    // The new head's build starts and reports as usual.
    t.world.start_queued(items[1].id)?;
    t.settle().await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    assert_eq!(
        state(&t, &new_head, "greg/test"),
        Some(CommitState::Success)
    );
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_recorded_but_never_triggered_before_a_crash_is_triggered_after_restart()
-> anyhow::Result<()> {
    let opts = manual_clock_options();
    let clock = opts.clock.clone().expect("a manual clock");
    let t = GregTester::start_with(opts.clone()).await?;
    let repo = t.repo.clone();
    let (world, github, jenkins, database) = t.stop_greg().await;

    // greg wrote the build row, then died before Jenkins answered the trigger.
    let head = fake_sha("fix-1");
    let pr = world.open_pr(&repo, NewPr::new("carol", "fix", head.clone()))?;
    let store = greg_store::Store::connect(&database).await?;
    let inserted = store
        .insert_build(&greg_store::NewBuild {
            repo: repo.clone(),
            pr: Some(pr.number),
            sha: head.clone(),
            context: greg_core::BuildContext::Test,
            builder: "jenkins".to_owned(),
            job: greg_core::JobName::from(TEST_JOB),
            branch: "fix".to_owned(),
            target: Some("master".to_owned()),
            now_ms: greg_engine::Clock::now_ms(&clock),
        })
        .await?;
    assert!(matches!(inserted, greg_store::BuildInsert::Created(_)));
    store.close().await;

    let t = GregTester::start_greg(world, github, jenkins, database, opts).await?;
    // Builds last heard of before the start are looked at right away, so the trigger may go
    // out at start or at the first poll (which one depends on scheduling): either way once.
    clock.advance(2_000);
    t.poll_builds().await?;
    let build = t.running_build(TEST_JOB)?;
    assert_eq!(t.builds(TEST_JOB).len(), 1, "triggered once");
    assert_eq!(build.param("COMMIT"), Some(head.as_str()));
    assert_eq!(build.param("BRANCH"), Some("fix"));
    assert_eq!(build.param("CONTEXT"), Some("test"));
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Pending));
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Success));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_jenkins_lost_still_times_out() -> anyhow::Result<()> {
    let mut t = GregTester::start_with(TesterOptions {
        build_timeout_secs: Some(60),
        ..manual_clock_options()
    })
    .await?;
    t.world.drop_callbacks(true);
    let (pr, head) = t.open_pr("carol", "fix").await?;
    t.poll_builds().await?; // queue item -> build number
    let build = t.running_build(TEST_JOB)?;
    // Jenkins forgets the build (discarded, or a restart without its records): 404 from now on.
    t.world.update(|s| {
        s.jenkins
            .jobs
            .values_mut()
            .for_each(|j| j.builds.retain(|n, _| *n != build.number.0));
    });

    t.advance(61_000)?;
    t.poll_builds().await?;
    let status = t.status(&head, "greg/test").expect("a status");
    assert_eq!(status.state, CommitState::Error);
    assert!(
        status.description.unwrap_or_default().contains("timed out"),
        "the status says why"
    );
    assert!(t.expect_comment(pr)?.contains("timed out"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merge_build_that_merged_the_pull_request_is_still_relayed() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, head) = green_approved_pr(&t).await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("Merging"));
    let merge = t.running_build(MERGE_JOB)?;

    // The merge job pushed the merge: GitHub closes the pull request as merged while the job
    // is still running its last steps.
    t.world.edit_pr(&t.repo, pr, |p| {
        p.state = PullRequestState::Merged;
    })?;
    t.deliver(t.world.pull_request_webhook(&t.repo, pr, "closed")?)
        .await?;
    assert!(
        t.world
            .build(MERGE_JOB, merge.number)
            .is_some_and(|b| b.building),
        "the merge build was not stopped"
    );
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Pending));

    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Success));
    t.finish().await
}
