//! End to end, `test_merged: true` (hail's rule, issue 3 item 3): each pull request's test
//! build builds its head merged with the current target, not the bare head; when the target
//! moves, the `greg/test` statuses go back to pending and the pull requests are tested again,
//! approved ones first, at most `max_test_builds` at a time.

use greg_core::{BuildOutcome, CommitState, Permission, Sha};
use greg_testkit::tester::{MERGE_JOB, TEST_JOB};
use greg_testkit::{GregTester, TesterOptions};

fn parents(t: &GregTester, sha: &Sha) -> Option<Vec<Sha>> {
    t.world.read(|s| {
        s.github
            .repos
            .get(&t.repo)
            .and_then(|r| r.commits.get(sha))
            .map(|c| c.parents.clone())
    })
}

/// The running test build of a merge (its BRANCH is greg's test ref; a push to master also
/// starts a plain test build of master's tip, which is not one of these).
fn running_test_commit(t: &GregTester) -> anyhow::Result<Sha> {
    let builds = t.builds(TEST_JOB);
    let build = builds
        .iter()
        .find(|b| {
            b.building
                && b.param("BRANCH")
                    .is_some_and(|b| b.starts_with("greg/test/"))
        })
        .ok_or_else(|| anyhow::anyhow!("no running test build of a merge"))?;
    assert_eq!(build.param("CONTEXT"), Some("test"));
    Ok(Sha::parse(build.param("COMMIT").unwrap_or_default())?)
}

/// Finishes the running test build of a merge with `outcome`.
async fn finish_merged_test(t: &GregTester, outcome: BuildOutcome) -> anyhow::Result<()> {
    let commit = running_test_commit(t)?;
    let build = t
        .builds(TEST_JOB)
        .into_iter()
        .find(|b| b.building && b.param("COMMIT") == Some(commit.as_str()))
        .ok_or_else(|| anyhow::anyhow!("vanished"))?;
    t.world
        .finish_build(build.job.as_str(), build.number, outcome)?;
    t.settle().await
}

fn state(t: &GregTester, sha: &Sha) -> Option<CommitState> {
    t.status(sha, "greg/test").map(|s| s.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_build_builds_the_head_merged_with_the_target() -> anyhow::Result<()> {
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: "    test_merged: true\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    let master = t.world.branch(&t.repo, "master").expect("master");
    let (_pr, head) = t.open_pr("carol", "feature").await?;

    let commit = running_test_commit(&t)?;
    assert_ne!(commit, head, "not the bare head");
    assert_eq!(
        parents(&t, &commit),
        Some(vec![master.clone(), head.clone()])
    );
    assert_eq!(state(&t, &head), Some(CommitState::Pending));

    finish_merged_test(&t, BuildOutcome::Success).await?;
    assert_eq!(state(&t, &head), Some(CommitState::Success));
    let desc = t
        .status(&head, "greg/test")
        .and_then(|s| s.description)
        .unwrap_or_default();
    assert!(desc.contains("merged into master"), "{desc}");
    assert_eq!(
        t.world.branch(&t.repo, "greg/test/1"),
        None,
        "test ref cleaned up"
    );
    assert_eq!(
        t.world.branch(&t.repo, "master"),
        Some(master),
        "nothing lands"
    );
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_target_sends_statuses_back_to_pending_and_retests_approved_first()
-> anyhow::Result<()> {
    let mut t = GregTester::start_with(TesterOptions {
        repo_yaml: "    merge_mode: staging\n    test_merged: true\n    max_test_builds: 1\n"
            .to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    let (one, head1) = t.open_pr("carol", "one").await?;
    let (two, head2) = t.open_pr("carol", "two").await?;
    // The cap: one test build at a time, oldest first.
    assert_eq!(t.builds(TEST_JOB).iter().filter(|b| b.building).count(), 1);
    assert_eq!(
        parents(&t, &running_test_commit(&t)?).map(|p| p[1].clone()),
        Some(head1.clone())
    );
    finish_merged_test(&t, BuildOutcome::Success).await?;
    assert_eq!(
        parents(&t, &running_test_commit(&t)?).map(|p| p[1].clone()),
        Some(head2.clone())
    );
    finish_merged_test(&t, BuildOutcome::Success).await?;
    assert_eq!(state(&t, &head1), Some(CommitState::Success));
    assert_eq!(state(&t, &head2), Some(CommitState::Success));

    // #2 is approved and asked to merge behind a closed tree: it waits in the merge queue
    // (open, it would land at once on its green tested merge, built once).
    t.post_comment(two, "alice", "@greg treeclosed=100").await?;
    t.approve(two, "bob").await?;
    t.post_comment(two, "alice", "@greg please").await?;
    assert!(t.builds(MERGE_JOB).is_empty());
    while t.expect_comment(two).is_ok() {}

    // Someone pushes to master: both statuses go pending, the approved #2 is tested first.
    let moved = t.push_branch("master", "hotfix").await?;
    assert_eq!(state(&t, &head1), Some(CommitState::Pending));
    assert_eq!(state(&t, &head2), Some(CommitState::Pending));
    let first = running_test_commit(&t)?;
    assert_eq!(
        parents(&t, &first),
        Some(vec![moved.clone(), head2.clone()])
    );
    finish_merged_test(&t, BuildOutcome::Success).await?;
    let second = running_test_commit(&t)?;
    assert_eq!(
        parents(&t, &second),
        Some(vec![moved.clone(), head1.clone()])
    );
    finish_merged_test(&t, BuildOutcome::Failure).await?;
    assert_eq!(state(&t, &head1), Some(CommitState::Failure));
    assert_eq!(state(&t, &head2), Some(CommitState::Success));
    assert!(t.world.pull_request(&t.repo, one).is_some());
    t.finish().await
}

/// No build twice for one tree (SPEC §10): a pull request whose test_merged build of its head
/// on the current tip is green lands on that very commit, without a merge build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_test_of_the_merge_on_the_current_tip_lands_without_building_again()
-> anyhow::Result<()> {
    let mut t = GregTester::start_with(TesterOptions {
        repo_yaml: "    merge_mode: staging\n    test_merged: true\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    let tip = t.world.branch(&t.repo, "master").expect("master");
    let (pr, head) = t.open_pr("carol", "fix").await?;
    let tested = running_test_commit(&t)?;
    finish_merged_test(&t, BuildOutcome::Success).await?;
    assert_eq!(state(&t, &head), Some(CommitState::Success));

    t.approve(pr, "bob").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    t.settle().await?;
    assert!(t.builds(MERGE_JOB).is_empty(), "no merge build was started");
    assert_eq!(
        t.world.branch(&t.repo, "master"),
        Some(tested.clone()),
        "master is the commit the test build built green"
    );
    assert_eq!(parents(&t, &tested), Some(vec![tip, head.clone()]));
    assert!(t.expect_comment(pr)?.contains("Merged"));
    assert_eq!(
        t.status(&head, "greg/merge").map(|s| s.state),
        Some(CommitState::Success)
    );
    t.finish().await
}
