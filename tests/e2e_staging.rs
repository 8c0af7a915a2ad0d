//! End to end, merge_mode staging (SPEC §6, issue 3): the merge queue lands pull requests in
//! order, the target only ever moves to a staging commit whose merge build was green, a push
//! during a merge build drops the pull request, a target moved by someone else leads to a
//! rebuild, conflicts and red builds leave the queue, and upstream faults are retried without
//! losing or repeating a landing. Each test sets up the fake GitHub and Jenkins, acts as people
//! and Jenkins would, and checks the branches, statuses, comments and builds greg left behind.

use greg_core::{BuildOutcome, CommitState, Permission, PrNumber, Sha};
use greg_testkit::tester::{MERGE_JOB, TEST_JOB};
use greg_testkit::world::Server;
use greg_testkit::{GregTester, TesterOptions};
use std::collections::HashSet;

/// The staging refs of master's merge queue (`greg/staging/master/<candidate>`, SPEC §10).
const STAGING: &str = "greg/staging/master/";

fn master(t: &GregTester) -> Option<Sha> {
    t.world.branch(&t.repo, "master")
}

fn staging_ref(t: &GregTester) -> Option<Sha> {
    newest_staging_ref(&t.world, &t.repo)
}

fn state(t: &GregTester, sha: &Sha, context: &str) -> Option<CommitState> {
    t.status(sha, context).map(|s| s.state)
}

/// The running merge build, checked to build a staging commit on top of the current master
/// that merges `head`.
fn running_staging_build(t: &GregTester, head: &Sha) -> anyhow::Result<Sha> {
    let build = t.running_build(MERGE_JOB)?;
    assert_eq!(build.param("CONTEXT"), Some("merge"));
    let commit = Sha::parse(build.param("COMMIT").unwrap_or_default())?;
    assert_eq!(
        staging_ref(t).as_ref(),
        Some(&commit),
        "COMMIT is the staging ref"
    );
    let parents = t.world.read(|s| {
        s.github
            .repos
            .get(&t.repo)
            .and_then(|r| r.commits.get(&commit))
            .map(|c| c.parents.clone())
    });
    assert_eq!(
        parents,
        Some(vec![master(t).expect("master exists"), head.clone()]),
        "the staging commit merges the approved head into the current master"
    );
    Ok(commit)
}

/// Every sha master was moved to through the API, in order (the fast-forwards greg made).
fn fast_forwards(t: &GregTester) -> Vec<Sha> {
    t.world
        .requests_matching(Server::Github, "PATCH", "/git/refs/heads/master$")
        .iter()
        .filter_map(|r| r.json.as_ref()?.get("sha")?.as_str().map(str::to_owned))
        .filter_map(|s| Sha::parse(&s).ok())
        .collect()
}

/// The commits a merge build finished green on.
fn green_merge_commits(t: &GregTester) -> HashSet<Sha> {
    t.builds(MERGE_JOB)
        .iter()
        .filter(|b| b.result == Some(BuildOutcome::Success))
        .filter_map(|b| Sha::parse(b.param("COMMIT")?).ok())
        .collect()
}

fn pr_state(t: &GregTester, pr: PrNumber) -> Option<greg_core::PullRequestState> {
    t.world.pull_request(&t.repo, pr).map(|p| p.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_of_pull_requests_lands_in_priority_order_on_green_staging_commits()
-> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (one, head1) = t.ready_pr("one").await?;
    let (two, head2) = t.ready_pr("two").await?;
    let (three, head3) = t.ready_pr("three").await?;
    let start = master(&t).expect("master");

    t.post_comment(one, "alice", "@greg please").await?;
    t.expect_no_comment(one)?;
    assert_eq!(state(&t, &head1, "greg/merge"), Some(CommitState::Pending));
    let staging1 = running_staging_build(&t, &head1)?;
    assert_eq!(
        master(&t),
        Some(start.clone()),
        "nothing lands before the build"
    );

    t.post_comment(two, "alice", "@greg please").await?;
    assert!(t.expect_comment(two)?.contains("position 2"));
    t.post_comment(three, "alice", "@greg r+ p=5").await?;
    assert!(t.expect_comment(three)?.contains("position 2"));
    assert_eq!(t.builds(MERGE_JOB).len(), 1, "one merge at a time");

    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), Some(staging1.clone()));
    assert!(t.expect_comment(one)?.contains("Merged"));
    assert_eq!(state(&t, &head1, "greg/merge"), Some(CommitState::Success));
    assert_eq!(pr_state(&t, one), Some(greg_core::PullRequestState::Merged));

    // Priority 5 goes before the older request of priority 0.
    let staging3 = running_staging_build(&t, &head3)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), Some(staging3.clone()));
    assert!(t.expect_comment(three)?.contains("Merged"));

    let staging2 = running_staging_build(&t, &head2)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), Some(staging2.clone()));
    assert!(t.expect_comment(two)?.contains("Merged"));

    assert_eq!(fast_forwards(&t), vec![staging1, staging3, staging2]);
    let green = green_merge_commits(&t);
    assert!(fast_forwards(&t).iter().all(|s| green.contains(s)));
    assert_eq!(staging_ref(&t), None, "no staging ref left behind");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_one_pull_request_costs_at_most_twenty_github_requests() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    t.world.clear_requests();

    t.post_comment(pr, "bob", "@greg please").await?;
    running_staging_build(&t, &head)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(t.expect_comment(pr)?.contains("Merged"));

    let calls: Vec<String> = t
        .world
        .requests()
        .iter()
        .filter(|r| r.server == Server::Github)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    println!(
        "GitHub requests for one pull request landed through staging: {}\n{}",
        calls.len(),
        calls.join("\n")
    );
    // The command (permission, pull request, reviews: 3), the rules again before staging (3),
    // staging (tip, ref, merge, pending status: 4), the rules again before landing (3), the
    // landing (tip, staging status, fast-forward: 3), then head status, comment, and the
    // staging ref read and deleted (4): 20 at most.
    assert!(calls.len() <= 20, "{} requests: {calls:#?}", calls.len());
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_during_the_merge_build_drops_the_pull_request_and_stops_its_build()
-> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    let (other, other_head) = t.ready_pr("other").await?;
    let start = master(&t).expect("master");
    t.post_comment(pr, "alice", "@greg please").await?;
    t.post_comment(other, "alice", "@greg please").await?;
    assert!(t.expect_comment(other)?.contains("position 2"));
    running_staging_build(&t, &head)?;

    let new_head = t.push_to_pr(pr, "feature-2").await?;
    let dropped = t.expect_comment(pr)?;
    assert!(dropped.contains("left the merge queue"), "{dropped}");
    let first = &t.builds(MERGE_JOB)[0];
    assert!(!first.building, "the merge build was stopped");
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Error));
    assert_eq!(master(&t), Some(start), "nothing landed");
    // The new head gets its test build; the queue moved on to the other pull request.
    assert!(
        t.builds(TEST_JOB)
            .iter()
            .any(|b| b.param("COMMIT") == Some(new_head.as_str()))
    );
    let staging = running_staging_build(&t, &other_head)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), Some(staging));
    assert!(t.expect_comment(other)?.contains("Merged"));
    assert_eq!(pr_state(&t, pr), Some(greg_core::PullRequestState::Open));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_moved_by_someone_else_is_merged_again_and_rebuilt() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    let first = running_staging_build(&t, &head)?;

    // Someone pushes to master during the merge build; greg hears of it.
    let moved = t.push_branch("master", "hotfix").await?;
    assert!(
        !t.builds(MERGE_JOB)[0].building,
        "the stale build was stopped"
    );
    let second = running_staging_build(&t, &head)?;
    assert_ne!(first, second);
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), Some(second.clone()));
    let parents = t.world.read(|s| {
        s.github
            .repos
            .get(&t.repo)
            .and_then(|r| r.commits.get(&second))
            .map(|c| c.parents[0].clone())
    });
    assert_eq!(parents, Some(moved));
    assert!(t.expect_comment(pr)?.contains("Merged"));
    assert_eq!(fast_forwards(&t), vec![second]);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_moved_without_a_webhook_fails_the_compare_and_swap_and_rebuilds()
-> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    let first = running_staging_build(&t, &head)?;

    // The push webhook is lost: greg learns of the move only when the fast-forward fails.
    let moved = greg_testkit::fake_sha("hotfix");
    t.world.push_branch(&t.repo, "master", &moved)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(
        master(&t),
        Some(moved.clone()),
        "the green but stale commit did not land"
    );
    let second = running_staging_build(&t, &head)?;
    assert_ne!(first, second);
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), Some(second.clone()));
    assert!(t.expect_comment(pr)?.contains("Merged"));
    let green = green_merge_commits(&t);
    // greg reads the target before it fast-forwards: the green but stale first commit was
    // never offered; the second landed, and it was green.
    assert_eq!(fast_forwards(&t), vec![second]);
    assert!(!fast_forwards(&t).contains(&first));
    assert!(fast_forwards(&t).iter().all(|s| green.contains(s)));
    assert_eq!(staging_ref(&t), None);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_is_reported_and_the_pull_request_leaves_the_queue() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    let (next, next_head) = t.ready_pr("next").await?;
    t.world.set_mergeable(&t.repo, pr, Some(false))?;
    // GitHub's conflict flag lags; greg finds out when it merges.
    t.world.set_mergeable(&t.repo, pr, None)?;
    t.world.update(|s| {
        if let Some(r) = s.github.repos.get_mut(&t.repo) {
            r.conflicting_heads.insert(head.clone());
        }
    });

    t.post_comment(pr, "alice", "@greg please").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("does not merge cleanly"), "{answer}");
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Failure));
    assert!(t.builds(MERGE_JOB).is_empty());
    assert_eq!(staging_ref(&t), None);

    t.post_comment(next, "alice", "@greg please").await?;
    running_staging_build(&t, &next_head)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(t.expect_comment(next)?.contains("Merged"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_staging_build_lands_nothing_and_the_next_pull_request_goes() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    let (next, next_head) = t.ready_pr("next").await?;
    let start = master(&t).expect("master");
    t.post_comment(pr, "alice", "@greg please").await?;
    t.post_comment(next, "alice", "@greg please").await?;
    t.expect_comment(next)?;
    running_staging_build(&t, &head)?;

    t.finish_build(MERGE_JOB, BuildOutcome::Failure).await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("build failed"), "{answer}");
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Failure));
    assert_eq!(master(&t), Some(start));

    let staging = running_staging_build(&t, &next_head)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), Some(staging));
    assert!(t.expect_comment(next)?.contains("Merged"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_takes_the_pull_request_out_of_the_queue_and_stops_its_build() -> anyhow::Result<()>
{
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    let start = master(&t).expect("master");
    t.post_comment(pr, "alice", "@greg please").await?;
    running_staging_build(&t, &head)?;

    t.post_comment(pr, "bob", "@greg r-").await?;
    assert!(t.expect_comment(pr)?.contains("withdrawn by @bob"));
    assert!(!t.builds(MERGE_JOB)[0].building);
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Failure));
    assert_eq!(staging_ref(&t), None);
    assert_eq!(master(&t), Some(start));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_builds_the_staging_merge_and_lands_nothing() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    let start = master(&t).expect("master");

    t.post_comment(pr, "alice", "@greg try").await?;
    assert!(t.expect_comment(pr)?.contains("Trying"));
    let build = t.running_build(MERGE_JOB)?;
    assert_eq!(build.param("CONTEXT"), Some("try"));
    assert_ne!(
        build.param("COMMIT"),
        Some(head.as_str()),
        "it builds the merge, not the head"
    );
    assert_eq!(
        t.world
            .branch(&t.repo, &format!("greg/try/{pr}"))
            .map(|s| s.to_string())
            .as_deref(),
        build.param("COMMIT")
    );
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(t.expect_comment(pr)?.contains("ended in success"));
    assert_eq!(state(&t, &head, "greg/try"), Some(CommitState::Success));
    assert_eq!(master(&t), Some(start));
    assert_eq!(t.world.branch(&t.repo, &format!("greg/try/{pr}")), None);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_are_retried_and_the_pull_request_lands_exactly_once() -> anyhow::Result<()>
{
    let mut t = GregTester::start_with(TesterOptions {
        repo_yaml: "    merge_mode: staging\n".to_owned(),
        engine: greg_engine::EngineOptions {
            retry_delay: std::time::Duration::from_millis(20),
            effect_tick: std::time::Duration::from_millis(50),
            ..Default::default()
        },
        ..TesterOptions::default()
    })
    .await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    let (pr, head) = t.ready_pr("feature").await?;
    t.world.fail_next(Server::Github, "/git/refs$", 502, None)?;
    t.world.fail_next(Server::Github, "/merges$", 500, None)?;
    t.world
        .fail_next(Server::Jenkins, "buildWithParameters", 503, None)?;
    t.post_comment(pr, "alice", "@greg please").await?;
    let staging = running_staging_build(&t, &head)?;
    assert_eq!(t.builds(MERGE_JOB).len(), 1);

    t.world
        .fail_next(Server::Github, "/git/refs/heads/master$", 429, Some(1))?;
    t.world
        .fail_next(Server::Github, "/issues/\\d+/comments$", 403, None)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), Some(staging.clone()));
    let merged = t.expect_comment(pr)?;
    assert!(merged.contains("Merged"), "{merged}");
    assert_eq!(fast_forwards(&t).last(), Some(&staging));
    assert_eq!(staging_ref(&t), None);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_tree_holds_merges_below_its_priority_until_it_opens() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (low, low_head) = t.ready_pr("low").await?;
    let (high, high_head) = t.ready_pr("high").await?;

    t.post_comment(low, "alice", "@greg treeclosed=5").await?;
    assert!(
        t.expect_comment(low)?
            .contains("closed for merges below priority 5")
    );
    t.post_comment(low, "alice", "@greg please").await?;
    assert!(t.expect_comment(low)?.contains("position 1"));
    assert!(t.builds(MERGE_JOB).is_empty(), "held by the closed tree");

    t.post_comment(high, "alice", "@greg please p=9").await?;
    t.expect_no_comment(high)?;
    let staging = running_staging_build(&t, &high_head)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), Some(staging));
    assert!(t.expect_comment(high)?.contains("Merged"));
    assert!(
        t.running_build(MERGE_JOB).is_err(),
        "the low one still waits"
    );

    t.post_comment(low, "bob", "@greg treeopen").await?;
    assert!(t.expect_comment(low)?.contains("is open"));
    let staging = running_staging_build(&t, &low_head)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), Some(staging));
    assert!(t.expect_comment(low)?.contains("Merged"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_event_for_the_same_head_leaves_the_merge_build_alone() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    let staging = running_staging_build(&t, &head)?;

    // GitHub redelivers, or a ready_for_review arrives, for the head already approved.
    t.deliver(
        t.world
            .pull_request_webhook(&t.repo, pr, "ready_for_review")?,
    )
    .await?;
    assert!(
        t.builds(MERGE_JOB)[0].building,
        "the staging build still runs"
    );
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(master(&t), Some(staging));
    assert!(t.expect_comment(pr)?.contains("Merged"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staging_build_without_a_result_times_out_and_the_queue_moves_on() -> anyhow::Result<()> {
    let mut t = GregTester::start_with(TesterOptions {
        repo_yaml: "    merge_mode: staging\n".to_owned(),
        build_timeout_secs: Some(60),
        clock: Some(greg_engine::ManualClock::new(1_700_000_000_000)),
        ..TesterOptions::default()
    })
    .await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    let (pr, head) = t.ready_pr("feature").await?;
    let (next, next_head) = t.ready_pr("next").await?;
    let start = master(&t).expect("master");
    t.post_comment(pr, "alice", "@greg please").await?;
    t.post_comment(next, "alice", "@greg please").await?;
    t.expect_comment(next)?;
    running_staging_build(&t, &head)?;

    t.advance(61_000)?;
    t.poll_builds().await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("timed out"), "{answer}");
    assert_eq!(state(&t, &head, "greg/merge"), Some(CommitState::Failure));
    assert_eq!(
        t.builds(MERGE_JOB)[0].result,
        Some(BuildOutcome::Aborted),
        "stopped in Jenkins"
    );
    assert_eq!(master(&t), Some(start));
    // The next pull request's staging build runs.
    running_staging_build(&t, &next_head)?;
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_drops_an_entry_whose_head_moved_without_a_webhook() -> anyhow::Result<()> {
    let mut t = GregTester::start_staging().await?;
    let (pr, head) = t.ready_pr("feature").await?;
    let start = master(&t).expect("master");
    t.post_comment(pr, "alice", "@greg please").await?;
    running_staging_build(&t, &head)?;

    // The synchronize webhook is lost.
    let new_head = greg_testkit::fake_sha("feature-2");
    t.world.push_to_pr(&t.repo, pr, &new_head)?;
    t.engine.reconcile().await;
    t.settle().await?;
    assert!(t.expect_comment(pr)?.contains("left the merge queue"));
    assert!(
        !t.builds(MERGE_JOB)[0].building,
        "the merge build was stopped"
    );
    // The new head was never built: reconciliation starts its test build.
    assert!(
        t.builds(TEST_JOB)
            .iter()
            .any(|b| b.building && b.param("COMMIT") == Some(new_head.as_str()))
    );
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await.ok();
    assert_eq!(master(&t), Some(start), "the unapproved head never lands");
    t.finish().await
}

/// The newest staging ref of master's merge queue (the highest candidate number), if any.
fn newest_staging_ref(
    world: &greg_testkit::World,
    repo: &greg_core::RepoName,
) -> Option<greg_core::Sha> {
    world.newest_branch_under(repo, STAGING)
}
