//! End to end, the trustworthy core (issue 9): a callback is a hint and never lands anything
//! Jenkins itself does not report green for the staging commit; the rules hold until the
//! merge lands (a dismissed approval or "not lgtm" takes a queued pull request out, a retarget
//! moves it to the new base's queue); an outcome is announced once even when a step after it
//! fails; a build Jenkins does not start is reported with Jenkins' reason. Each test sets up
//! the fake GitHub and Jenkins, acts as people and Jenkins would, and checks what greg left
//! behind.

use greg_core::{BuildOutcome, BuildPhase, CommitState, Permission, ReviewState, Sha};
use greg_testkit::tester::{JENKINS_TOKEN, MERGE_JOB, TEST_JOB};
use greg_testkit::world::Server;
use greg_testkit::{GregTester, TesterOptions};

/// The staging refs of master's merge queue (`greg/staging/master/<candidate>`, SPEC §10).
const STAGING: &str = "greg/staging/master/";

fn master(t: &GregTester) -> Option<Sha> {
    t.world.branch(&t.repo, "master")
}

fn merge_state(t: &GregTester, sha: &Sha) -> Option<CommitState> {
    t.status(sha, "greg/merge").map(|s| s.state)
}

/// Posts a Notification-plugin callback claiming `claimed` for the running merge build, as
/// anyone who read the job's config.xml (and so the `?token=`) could.
async fn forge_callback(
    t: &GregTester,
    build: &greg_testkit::FakeBuild,
    claimed: &str,
) -> anyhow::Result<()> {
    let mut payload = t.world.read(|s| {
        s.jenkins
            .notification_payload(build, BuildPhase::Finalized, 1)
    });
    payload["build"]["status"] = serde_json::Value::from(claimed);
    let url = format!("{}/build?builder=jenkins&token={JENKINS_TOKEN}", t.url);
    let resp = t.client().post(url).json(&payload).send().await?;
    assert_eq!(resp.status().as_u16(), 202, "the callback is accepted");
    t.settle().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_success_while_jenkins_still_builds_lands_nothing() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    let build = t.running_build(MERGE_JOB)?;
    t.world.keep_running(build.job.as_str(), build.number)?;
    let _ = &head;
    let start = master(&t);

    forge_callback(&t, &build, "SUCCESS").await?;
    assert_eq!(master(&t), start, "nothing landed on a forged callback");
    assert_eq!(merge_state(&t, &head), Some(CommitState::Pending));
    t.expect_no_comment(pr)?;

    // Jenkins really finishes: now it lands.
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_ne!(master(&t), start);
    assert!(t.expect_comment(pr)?.contains("Merged"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_success_of_a_failed_build_fails_the_merge_with_jenkins_result()
-> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    let build = t.running_build(MERGE_JOB)?;
    t.world
        .finish_build_quietly(build.job.as_str(), build.number, BuildOutcome::Failure)?;
    let start = master(&t);

    forge_callback(&t, &build, "SUCCESS").await?;
    assert_eq!(master(&t), start, "the red staging commit did not land");
    assert_eq!(merge_state(&t, &head), Some(CommitState::Failure));
    let said = t.expect_comment(pr)?;
    assert!(said.contains("failed"), "{said}");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_for_a_build_of_another_commit_is_ignored() -> anyhow::Result<()> {
    let t = GregTester::start_staging().await?;
    let (pr, _head) = t.ready_pr("feature").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    let build = t.running_build(MERGE_JOB)?;
    // In Jenkins' eyes the build ran another commit (a stale or replayed build number).
    t.world.set_build_param(
        build.job.as_str(),
        build.number,
        "COMMIT",
        greg_testkit::fake_sha("elsewhere").as_str(),
    )?;
    t.world
        .finish_build_quietly(build.job.as_str(), build.number, BuildOutcome::Success)?;
    let start = master(&t);
    forge_callback(&t, &build, "SUCCESS").await?;
    assert_eq!(
        master(&t),
        start,
        "a green build of another commit lands nothing"
    );
    t.expect_no_comment(pr)?;
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dismissed_approval_takes_a_queued_pull_request_out_and_stops_its_build()
-> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    let build = t.running_build(MERGE_JOB)?;

    // An admin dismisses bob's approval.
    let review = t.world.update(|s| {
        let r = s.github.repos.get_mut(&t.repo)?;
        let review = r.reviews.iter_mut().rev().find(|rv| rv.pr == pr)?;
        review.state = ReviewState::Dismissed;
        Some(review.clone())
    });
    let _ = &head;
    let review = review.expect("bob's review");
    t.deliver(t.world.review_webhook(&t.repo, &review)?).await?;

    let said = t.expect_comment(pr)?;
    assert!(said.contains("may no longer merge"), "{said}");
    assert!(said.contains("approval"), "{said}");
    assert_eq!(merge_state(&t, &head), Some(CommitState::Failure));
    let stopped = t
        .builds(MERGE_JOB)
        .into_iter()
        .find(|b| b.number == build.number)
        .expect("the build");
    assert!(!stopped.building, "its merge build was stopped");
    assert_eq!(newest_staging_ref(&t.world, &t.repo), None);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_lgtm_takes_a_queued_pull_request_out() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, _) = t.open_pr("carol", "feature").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.post_comment(pr, "bob", "@greg lgtm").await?;
    let (other, _) = t.ready_pr("other").await?;
    // #2 holds the queue, #1 waits behind it.
    t.post_comment(other, "alice", "@greg please").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("position 2"));

    t.post_comment(pr, "bob", "@greg not lgtm").await?;
    let said = t.expect_comment(pr)?;
    assert!(said.contains("may no longer merge"), "{said}");
    // The queue goes on with #2 alone.
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(t.expect_comment(other)?.contains("Merged"));
    assert!(t.builds(MERGE_JOB).len() == 1, "#1 was never staged");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_502_on_the_staging_ref_delete_gives_exactly_one_merged_comment() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, _) = t.ready_pr("feature").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    t.world.fail_next(
        Server::Github,
        "/git/refs/heads/greg/staging/master/[0-9]+$",
        502,
        None,
    )?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(t.expect_comment(pr)?.contains("Merged"));
    t.expect_no_comment(pr)?;
    assert_eq!(
        newest_staging_ref(&t.world, &t.repo),
        None,
        "the delete was retried"
    );
    let deletes = t.world.requests_matching(
        Server::Github,
        "DELETE",
        "/git/refs/heads/greg/staging/master/[0-9]+$",
    );
    assert_eq!(deletes.len(), 2, "one refused, one retried");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_retargeted_while_queued_moves_to_the_new_base_queue() -> anyhow::Result<()>
{
    let mut t = GregTester::start_staging().await?;
    let release = t.push_branch("release", "release-base").await?;
    let (blocker, _) = t.ready_pr("first").await?;
    let (pr, head) = t.ready_pr("feature").await?;
    t.post_comment(blocker, "alice", "@greg please").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("position 2"));

    t.world
        .edit_pr(&t.repo, pr, |p| p.base_ref = "release".to_owned())?;
    let delivery = t
        .world
        .pull_request_retargeted_webhook(&t.repo, pr, "master")?;
    t.deliver(delivery).await?;
    let said = t.expect_comment(pr)?;
    assert!(said.contains("joined the queue of `release`"), "{said}");
    // It does not wait behind master's queue: its own staging build runs on release.
    let builds = t.builds(MERGE_JOB);
    let on_release = builds
        .iter()
        .find(|b| b.param("TARGET_BRANCH") == Some("release"))
        .expect("a merge build into release");
    assert!(on_release.building);
    let _ = (release, head);
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await.ok();
    t.settle().await?;
    while t.expect_comment(pr).is_ok() {}
    while t.expect_comment(blocker).is_ok() {}
    t.finish().await
}

/// Spells the repository of a delivery `Acme/Demo`, as GitHub does after a rename of the
/// owner's display case (GitHub compares names case-insensitively).
fn shouted(mut d: greg_testkit::WebhookDelivery) -> greg_testkit::WebhookDelivery {
    if let Some(r) = d.payload.get_mut("repository") {
        r["name"] = serde_json::Value::from("Demo");
        r["full_name"] = serde_json::Value::from("Acme/Demo");
        r["owner"]["login"] = serde_json::Value::from("Acme");
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_repository_under_two_spellings_is_one_lane_and_one_build() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    // The same head, announced again with the repository spelled differently.
    let again = shouted(t.world.pull_request_webhook(&t.repo, pr, "synchronize")?);
    t.deliver(again).await?;
    let builds: Vec<_> = t
        .builds(TEST_JOB)
        .into_iter()
        .filter(|b| b.param("COMMIT") == Some(head.as_str()))
        .collect();
    assert_eq!(builds.len(), 1, "one build for one head of one repository");
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.approve(pr, "bob").await?;

    // A command spelled for `Acme/Demo` joins the queue of `acme/demo`.
    let c = t.world.comment(&t.repo, pr, "alice", "@greg please")?;
    t.deliver(shouted(t.world.comment_webhook(&t.repo, &c)?))
        .await?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(t.expect_comment(pr)?.contains("Merged"));
    t.finish().await
}

/// A protected master that refuses greg's fast-forward: the first pull request fails once,
/// with GitHub's reason quoted and what to change, and the queue goes on at once. Once greg's
/// account may bypass the rule (the advice), the next pull request lands.
async fn refused_then_bypassed(
    protection: greg_testkit::world::github::BranchProtection,
    bypassed: greg_testkit::world::github::BranchProtection,
    reason: &str,
) -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    t.world.protect_branch(&t.repo, "master", protection)?;
    let (first, head1) = t.ready_pr("first").await?;
    let (second, _) = t.ready_pr("second").await?;
    t.post_comment(first, "alice", "@greg please").await?;
    t.post_comment(second, "alice", "@greg please").await?;
    assert!(t.expect_comment(second)?.contains("position 2"));
    let start = master(&t);

    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), start, "the refused fast-forward moved nothing");
    let said = t.expect_comment(first)?;
    assert!(said.contains("refused the fast-forward"), "{said}");
    assert!(said.contains(reason), "GitHub's reason is quoted: {said}");
    assert!(said.contains("bypass"), "it says what to change: {said}");
    t.expect_no_comment(first)?;
    assert_eq!(merge_state(&t, &head1), Some(CommitState::Failure));

    // The queue moved on at once: the second pull request's merge build runs.
    let running = t.running_build(MERGE_JOB)?;
    t.world.protect_branch(&t.repo, "master", bypassed)?;
    assert!(running.building);
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_ne!(master(&t), start);
    assert!(t.expect_comment(second)?.contains("Merged"));
    t.expect_no_comment(first)?;
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_status_check_refusing_the_fast_forward_fails_once_and_the_queue_moves_on()
-> anyhow::Result<()> {
    use greg_testkit::world::github::BranchProtection;
    refused_then_bypassed(
        BranchProtection::required_checks(&["ci"]),
        BranchProtection::required_checks(&["ci"]).bypass("greg-bot"),
        "Required status check",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_only_rule_refusing_the_fast_forward_fails_once_and_the_queue_moves_on()
-> anyhow::Result<()> {
    use greg_testkit::world::github::BranchProtection;
    refused_then_bypassed(
        BranchProtection::pull_request_only(),
        BranchProtection::pull_request_only().bypass("greg-bot"),
        "through a pull request",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requiring_greg_merge_on_a_protected_target_lets_greg_land() -> anyhow::Result<()> {
    use greg_testkit::world::github::BranchProtection;
    let mut t = GregTester::start_staging().await?;
    t.world.protect_branch(
        &t.repo,
        "master",
        BranchProtection::required_checks(&["greg/merge"]),
    )?;
    let (pr, _) = t.ready_pr("feature").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    let start = master(&t);
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_ne!(master(&t), start);
    assert!(t.expect_comment(pr)?.contains("Merged"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_landing_that_keeps_failing_gives_up_after_the_retry_window_and_the_queue_moves_on()
-> anyhow::Result<()> {
    let mut t = GregTester::start_with(TesterOptions {
        repo_yaml: "    merge_mode: staging\n".to_owned(),
        clock: Some(greg_engine::ManualClock::new(1_700_000_000_000)),
        ..TesterOptions::default()
    })
    .await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    let (first, head1) = t.ready_pr("first").await?;
    let (second, _) = t.ready_pr("second").await?;
    t.post_comment(first, "alice", "@greg please").await?;
    t.post_comment(second, "alice", "@greg please").await?;
    assert!(t.expect_comment(second)?.contains("position 2"));
    let start = master(&t);

    // GitHub answers every fast-forward of master with 502, for good.
    for _ in 0..12 {
        t.world
            .fail_next(Server::Github, "/git/refs/heads/master$", 502, None)?;
    }
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), start);
    t.expect_no_comment(first)?;
    assert_eq!(merge_state(&t, &head1), Some(CommitState::Pending));

    // An hour later (server.retry_window_secs), the next attempt gives up: the entry fails
    // with a comment, and the second pull request starts at once.
    t.advance(61 * 60 * 1000)?;
    t.engine.reconcile().await;
    t.settle().await?;
    let said = t.expect_comment(first)?;
    assert!(said.contains("kept failing for 61 minutes"), "{said}");
    assert_eq!(merge_state(&t, &head1), Some(CommitState::Failure));
    assert_eq!(master(&t), start);
    let running = t.running_build(MERGE_JOB)?;
    assert!(running.building, "the queue moved on");
    t.world.update(|s| s.faults.clear());
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(t.expect_comment(second)?.contains("Merged"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_turned_back_into_a_draft_leaves_the_queue() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.running_build(MERGE_JOB).is_ok());
    t.world.edit_pr(&t.repo, pr, |p| p.draft = true)?;
    let draft = t
        .world
        .pull_request_webhook(&t.repo, pr, "converted_to_draft")?;
    t.deliver(draft).await?;
    let said = t.expect_comment(pr)?;
    assert!(said.contains("may no longer merge"), "{said}");
    assert!(said.contains("draft"), "{said}");
    assert_eq!(merge_state(&t, &head), Some(CommitState::Failure));
    assert!(
        t.running_build(MERGE_JOB).is_err(),
        "its merge build was stopped"
    );
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_jenkins_does_not_start_is_reported_with_jenkins_reason() -> anyhow::Result<()> {
    let mut t = GregTester::start_with(TesterOptions {
        clock: Some(greg_engine::ManualClock::new(1_700_000_000_000)),
        ..TesterOptions::default()
    })
    .await?;
    // No executor is free: the build waits in Jenkins' queue.
    t.world.hold_queue(true);
    let (pr, head) = t.open_pr("carol", "feature").await?;
    t.advance(5 * 60 * 1000)?;
    t.poll_builds().await?;
    t.expect_no_comment(pr)?;

    // Past server.build_start_timeout_secs (600): the pull request is told why, once.
    t.advance(6 * 60 * 1000)?;
    t.poll_builds().await?;
    let said = t.expect_comment(pr)?;
    assert!(said.contains("has not started after 11 minutes"), "{said}");
    assert!(
        said.contains("Waiting for next available executor"),
        "{said}"
    );
    assert!(said.contains(head.short()), "{said}");
    t.advance(60 * 1000)?;
    t.poll_builds().await?;
    t.expect_no_comment(pr)?;
    t.world.hold_queue(false);
    t.settle().await?;
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_already_in_the_target_leaves_the_next_entrys_staging_ref_alone()
-> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (first, head1) = t.ready_pr("first").await?;
    let (second, head2) = t.ready_pr("second").await?;
    // Someone pushed #1's head to master by hand: its merge has nothing to merge.
    t.world.push_branch(&t.repo, "master", &head1)?;
    // Both wait behind a closed tree, #1 first; opening it starts both in one go.
    t.post_comment(second, "alice", "@greg treeclosed=100")
        .await?;
    while t.expect_comment(second).is_ok() {}
    t.post_comment(first, "alice", "@greg r+ p=5").await?;
    t.post_comment(second, "alice", "@greg please").await?;
    while t.expect_comment(first).is_ok() {}
    while t.expect_comment(second).is_ok() {}
    t.post_comment(second, "bob", "@greg treeopen").await?;
    while t.expect_comment(second).is_ok() {}

    assert!(t.expect_comment(first)?.contains("already in"));
    // #2's merge build runs on its staging commit, and the ref #1 made at the same place
    // was deleted only while it was #1's: #2's ref is still there.
    let build = t.running_build(MERGE_JOB)?;
    let commit = build.param("COMMIT").map(str::to_owned);
    assert_eq!(
        newest_staging_ref(&t.world, &t.repo).map(|s| s.to_string()),
        commit,
        "the staging ref carries #2's staging commit"
    );
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(t.expect_comment(second)?.contains("Merged"));
    let _ = head2;
    t.finish().await
}

/// The newest staging ref of master's merge queue (the highest candidate number), if any.
fn newest_staging_ref(
    world: &greg_testkit::World,
    repo: &greg_core::RepoName,
) -> Option<greg_core::Sha> {
    world.newest_branch_under(repo, STAGING)
}
