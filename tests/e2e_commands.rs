//! End to end, comment commands (SPEC §4–§5, issue 2 items 5 and 6): who may command greg,
//! reviewers and "lgtm" bound to the head they approved, help and "did you mean", retest,
//! cancel, try, merging into another branch, and the comments greg must not act on (its own,
//! code blocks, quotes). Each test sets up the world, comments as a person would, and checks
//! what greg left behind: comments, commit statuses, builds and their parameters.

use greg_core::{BuildOutcome, CommitState, Permission, PrNumber, Sha};
use greg_testkit::tester::{MERGE_JOB, TEST_JOB};
use greg_testkit::{GregTester, TesterOptions};

fn state(t: &GregTester, sha: &Sha, context: &str) -> Option<CommitState> {
    t.status(sha, context).map(|s| s.state)
}

/// alice and bob may write; carol opens a pull request whose test build passes.
async fn green_pr(t: &GregTester) -> anyhow::Result<(PrNumber, Sha)> {
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    let (pr, head) = t.open_pr("carol", "feature").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    Ok((pr, head))
}

/// [`green_pr`], approved by bob.
async fn green_approved_pr(t: &GregTester) -> anyhow::Result<(PrNumber, Sha)> {
    let (pr, head) = green_pr(t).await?;
    t.approve(pr, "bob").await?;
    Ok((pr, head))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_write_permission_is_refused_politely() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, head) = green_approved_pr(&t).await?;
    t.set_permission("mallory", Permission::Read)?;

    t.post_comment(pr, "mallory", "@greg please").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("Sorry @mallory"), "{answer}");
    assert!(answer.contains("write access"), "{answer}");
    assert!(t.builds(MERGE_JOB).is_empty());
    assert_eq!(state(&t, &head, "greg/merge"), None);

    t.post_comment(pr, "mallory", "@greg retest").await?;
    assert!(t.expect_comment(pr)?.contains("Sorry @mallory"));
    assert_eq!(t.builds(TEST_JOB).len(), 1);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_reviewer_without_write_permission_may_review_but_not_merge()
-> anyhow::Result<()> {
    let mut t = GregTester::start_with(TesterOptions {
        repo_yaml: "    reviewers: [dave]\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    let (pr, head) = green_pr(&t).await?;
    t.set_permission("dave", Permission::Read)?;

    t.post_comment(pr, "dave", "@greg ok").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("Not ready to merge"), "{answer}");
    assert!(answer.contains("@dave has not approved"), "{answer}");

    t.post_comment(pr, "dave", "@greg lgtm").await?;
    t.expect_no_comment(pr)?;
    // SPEC §4: merging acts on the branch and needs write permission; dave's approval counts
    // for a writer's "please".
    t.post_comment(pr, "dave", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("needs write access"));
    assert!(t.builds(MERGE_JOB).is_empty());
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("Merging"));
    let merge = t.running_build(MERGE_JOB)?;
    assert_eq!(merge.param("COMMIT"), Some(head.as_str()));
    assert_eq!(merge.param("CONTEXT"), Some("merge"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_and_lgtm_are_bound_to_the_head_they_approved() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, _) = green_pr(&t).await?;

    t.post_comment(pr, "alice", "@greg review @dave").await?;
    let noted = t.expect_comment(pr)?;
    assert!(noted.contains("@dave"), "{noted}");
    t.post_comment(pr, "alice", "@greg ok").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("Not ready to merge"), "{answer}");
    assert!(answer.contains("@dave has not approved"), "{answer}");

    // dave has no write permission, but a reviewer named by "@greg review" may approve.
    t.post_comment(pr, "dave", "@greg lgtm").await?;
    t.expect_no_comment(pr)?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    assert!(t.expect_comment(pr)?.contains("Ready to merge"));

    // A new head: dave's approval is for the old one.
    t.push_to_pr(pr, "feature-2").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("Not ready to merge"), "{answer}");
    assert!(answer.contains("@dave approved an older head"), "{answer}");
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(
        t.expect_comment(pr)?
            .contains("@dave approved an older head")
    );
    assert!(t.builds(MERGE_JOB).is_empty());

    t.post_comment(pr, "dave", "@greg lgtm").await?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    assert!(t.expect_comment(pr)?.contains("Ready to merge"));

    // "not lgtm" withdraws the approval.
    t.post_comment(pr, "dave", "@greg not lgtm").await?;
    t.expect_no_comment(pr)?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("@dave has not approved"), "{answer}");
    assert!(answer.contains("0 of 1 required approval"), "{answer}");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_and_did_you_mean() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, _) = t.open_pr("carol", "feature").await?;
    t.set_permission("alice", Permission::Write)?;

    t.post_comment(pr, "alice", "@greg help").await?;
    let help = t.expect_comment(pr)?;
    for command in [
        "`@greg ok`",
        "`@greg please",
        "`@greg retest`",
        "`@greg cancel`",
    ] {
        assert!(help.contains(command), "{command} missing from {help}");
    }

    t.post_comment(pr, "alice", "@greg pleas").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("did you mean `please`"), "{answer}");
    assert!(t.builds(MERGE_JOB).is_empty());
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retest_runs_a_finished_head_again_but_not_a_running_one() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, head) = green_pr(&t).await?;
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Success));

    t.post_comment(pr, "alice", "@greg retest").await?;
    t.expect_no_comment(pr)?;
    let builds = t.builds(TEST_JOB);
    assert_eq!(builds.len(), 2, "{builds:#?}");
    assert!(builds[1].building);
    assert_eq!(builds[1].param("COMMIT"), Some(head.as_str()));
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Pending));

    t.post_comment(pr, "alice", "@greg retest").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("already running"), "{answer}");
    assert_eq!(t.builds(TEST_JOB).len(), 2);

    t.finish_build(TEST_JOB, BuildOutcome::Failure).await?;
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Failure));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_merge_build_and_fails_greg_merge() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, head) = green_approved_pr(&t).await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("Merging"));
    let merge = t.running_build(MERGE_JOB)?;

    t.post_comment(pr, "bob", "@greg cancel").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("withdrawn by @bob"), "{answer}");
    assert!(answer.contains("Stopped 1 build"), "{answer}");
    let stopped = t.world.build(MERGE_JOB, merge.number).expect("the build");
    assert_eq!(stopped.result, Some(BuildOutcome::Aborted));
    let status = t.status(&head, "greg/merge").expect("a greg/merge status");
    assert_eq!(status.state, CommitState::Failure);
    assert!(
        status.description.unwrap_or_default().contains("cancelled"),
        "the status says why"
    );
    // The test status is untouched.
    assert_eq!(state(&t, &head, "greg/test"), Some(CommitState::Success));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_runs_the_merge_job_with_context_try() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, head) = green_pr(&t).await?;

    t.post_comment(pr, "alice", "@greg try").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("Trying"), "{answer}");
    let build = t.running_build(MERGE_JOB)?;
    assert_eq!(build.param("CONTEXT"), Some("try"));
    assert_eq!(build.param("COMMIT"), Some(head.as_str()));
    assert_eq!(build.param("PR"), Some(pr.to_string().as_str()));
    assert_eq!(build.param("TARGET"), Some("master"));
    assert_eq!(build.param("TARGET_BRANCH"), Some("master"));
    assert_eq!(state(&t, &head, "greg/try"), Some(CommitState::Pending));
    assert_eq!(state(&t, &head, "greg/merge"), None);

    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(state(&t, &head, "greg/try"), Some(CommitState::Success));
    let result = t.expect_comment(pr)?;
    assert!(result.contains("Try build"), "{result}");
    assert!(result.contains("success"), "{result}");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn please_with_a_branch_merges_into_that_branch() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, head) = green_approved_pr(&t).await?;

    t.post_comment(pr, "alice", "@greg please branch=release")
        .await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("into `release`"), "{answer}");
    let merge = t.running_build(MERGE_JOB)?;
    assert_eq!(merge.param("COMMIT"), Some(head.as_str()));
    assert_eq!(merge.param("TARGET"), Some("release"));
    assert_eq!(merge.param("TARGET_BRANCH"), Some("release"));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn please_with_a_branch_outside_target_branches_is_refused() -> anyhow::Result<()> {
    let mut t = GregTester::start_with(TesterOptions {
        repo_yaml: "    target_branches: [master]\n".to_owned(),
        ..TesterOptions::default()
    })
    .await?;
    let (pr, head) = green_approved_pr(&t).await?;

    t.post_comment(pr, "alice", "@greg please branch=release")
        .await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("Not ready to merge"), "{answer}");
    assert!(
        answer.contains("`release` is not one greg merges into"),
        "{answer}"
    );
    assert!(t.builds(MERGE_JOB).is_empty());
    assert_eq!(state(&t, &head, "greg/merge"), None);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bots_own_comments_trigger_nothing() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, _) = green_approved_pr(&t).await?;
    t.post_comment(pr, "alice", "@greg help").await?;
    t.expect_comment(pr)?;

    // GitHub sends greg's own comment back as a webhook.
    let help = t
        .world
        .bot_comments(&t.repo, pr)
        .pop()
        .expect("greg's help comment");
    t.deliver(t.world.comment_webhook(&t.repo, &help)?).await?;
    t.expect_no_comment(pr)?;

    // A comment by the bot account with plain commands: still nothing.
    t.post_comment(pr, "greg-bot", "@greg please\n@greg retest\ngreg please")
        .await?;
    t.expect_comment(pr)?; // the comment just posted, as the bot
    t.expect_no_comment(pr)?;
    assert!(t.builds(MERGE_JOB).is_empty());
    assert_eq!(t.builds(TEST_JOB).len(), 1);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_in_code_and_quotes_do_nothing() -> anyhow::Result<()> {
    let t = GregTester::start().await?;
    let (pr, _) = green_approved_pr(&t).await?;
    for body in [
        "```\n@greg please\n```",
        "    @greg please",
        "> @greg please",
        "Say `@greg retest` to build again.",
        "> quoting\n>\n> @greg retest",
    ] {
        t.post_comment(pr, "alice", body).await?;
        t.expect_no_comment(pr)?;
    }
    assert!(t.builds(MERGE_JOB).is_empty());
    assert_eq!(t.builds(TEST_JOB).len(), 1);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greg_is_addressed_by_name_by_login_and_as_the_readme_spells_it() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, _) = green_approved_pr(&t).await?;

    t.post_comment(pr, "alice", "@GREG OK").await?;
    assert!(t.expect_comment(pr)?.contains("Ready to merge"));
    t.post_comment(pr, "alice", "@greg-bot ok").await?;
    assert!(t.expect_comment(pr)?.contains("Ready to merge"));
    // Two commands in one comment: two answers, in order.
    t.post_comment(pr, "alice", "@greg p=5\n@greg ok").await?;
    assert!(t.expect_comment(pr)?.contains("priority 5"));
    assert!(t.expect_comment(pr)?.contains("Ready to merge"));

    t.post_comment(pr, "alice", "Looks good.\nGreg please")
        .await?;
    assert!(t.expect_comment(pr)?.contains("Merging"));
    assert_eq!(t.builds(MERGE_JOB).len(), 1);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lgtm_from_someone_who_may_not_command_is_refused() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, _) = green_pr(&t).await?;
    t.post_comment(pr, "mallory", "@greg lgtm").await?;
    assert!(t.expect_comment(pr)?.contains("Sorry @mallory"));
    t.post_comment(pr, "alice", "@greg ok").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("0 of 1 required approval"), "{answer}");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_approval_counts_only_from_someone_with_write_permission() -> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    let (pr, _) = green_pr(&t).await?;
    t.set_permission("mallory", Permission::Read)?;
    t.approve(pr, "mallory").await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("0 of 1 required approval"), "{answer}");
    assert!(t.builds(MERGE_JOB).is_empty());

    t.approve(pr, "bob").await?;
    t.post_comment(pr, "alice", "@greg ok").await?;
    assert!(t.expect_comment(pr)?.contains("Ready to merge"));
    t.finish().await
}
