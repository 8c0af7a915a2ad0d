//! Crash safety of staging merges, end to end on the real `greg` binary (issue 3 item 6): greg
//! is killed with SIGKILL at each step of a staging merge — after the staging ref is made,
//! after the build is triggered, after the build result arrives and before the fast-forward,
//! after the fast-forward and before clean-up — then restarted on the same database. Each test
//! checks that the pull request lands exactly once, on a commit that was built green, with no
//! staging ref left behind.
//!
//! How the kill hits an exact step: the fake GitHub (or Jenkins) holds the next matching
//! request (`World::hold_next`), the test waits until greg is blocked on it, kills greg, then
//! releases the request as never received (`HoldMode::Drop`) or as done by the vendor with
//! the answer lost (`HoldMode::Apply`).

#[path = "common/greg_rig.rs"]
mod greg_rig;

use greg_core::{BuildOutcome, PullRequestState};
use greg_rig::{MergeStep, Rig, WAIT};
use greg_testkit::tester::{GITHUB_TOKEN, TEST_JOB, WEBHOOK_SECRET};
use greg_testkit::{NewPr, TesterOptions, fake_sha};
use std::time::Duration;

/// Runs one crash scenario: greg is killed while it waits on `step`'s held request (armed
/// before `please`), the request is released, greg restarts, and the pull request must land
/// exactly once.
async fn crash_and_recover(name: &str, step: MergeStep) -> anyhow::Result<()> {
    let rig = Rig::new(name)?;
    let greg = rig.start_greg().await?;
    let (pr, head) = rig.approved_pr(&greg).await?;
    let start = rig.branch("master").expect("master");

    let hold = rig.please_until_held(&greg, pr, step).await?;
    greg.kill()?;
    rig.world.release(hold);

    let greg = rig.start_greg().await?;
    rig.drive_to_landing(pr).await?;
    rig.assert_landed_exactly_once(pr, &head, &start);
    greg.kill()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_staging_ref_is_made() -> anyhow::Result<()> {
    crash_and_recover("staged", MergeStep::STAGED).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_build_is_triggered() -> anyhow::Result<()> {
    crash_and_recover("triggered", MergeStep::TRIGGERED).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_result_and_before_the_fast_forward() -> anyhow::Result<()> {
    crash_and_recover("before-ff", MergeStep::BEFORE_FAST_FORWARD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_fast_forward_and_before_clean_up() -> anyhow::Result<()> {
    crash_and_recover("after-ff", MergeStep::AFTER_FAST_FORWARD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_lost_while_greg_is_down_lands_within_seconds_of_the_restart() -> anyhow::Result<()>
{
    // Polling as configured by default: a silent build is read after 5 minutes.
    let rig = Rig::with_options(
        "lost-callback",
        TesterOptions {
            repo_yaml: "    merge_mode: staging\n".to_owned(),
            build_poll_after_secs: 300,
            ..TesterOptions::default()
        },
    )?;
    let greg = rig.start_greg().await?;
    let (pr, head) = rig.approved_pr(&greg).await?;
    let start = rig.branch("master").expect("master");
    rig.please(&greg, pr).await?;
    let build = rig.running_merge_build().await?;
    greg.kill()?;
    // Jenkins finishes while greg is down: its callbacks find nobody.
    rig.world
        .finish_build(build.job.as_str(), build.number, BuildOutcome::Success)?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let restarted = std::time::Instant::now();
    let greg = rig.start_greg().await?;
    let repo = rig.repo.clone();
    rig.world
        .wait_for("the landing", Duration::from_secs(10), |s| {
            let r = s.github.repos.get(&repo)?;
            (r.pull(pr).ok()?.state == PullRequestState::Merged).then_some(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}; log:\n{}", rig.log_text()))?;
    let took = restarted.elapsed();
    println!("landed {took:?} after the restart");
    assert!(took < Duration::from_secs(10));
    rig.drive_to_landing(pr).await?;
    rig.assert_landed_exactly_once(pr, &head, &start);
    greg.kill()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_sent_while_greg_is_down_is_redelivered_at_start() -> anyhow::Result<()> {
    let rig = Rig::new("redelivery")?;
    let hook_url = format!(
        "http://127.0.0.1:{}/repo?provider=github&token={GITHUB_TOKEN}",
        rig.port
    );
    let hook = rig.world.add_hook(
        &rig.repo,
        &hook_url,
        &[
            "pull_request",
            "issue_comment",
            "push",
            "pull_request_review",
        ],
        Some(WEBHOOK_SECRET),
    )?;
    let greg = rig.start_greg().await?;
    greg.kill()?;

    // GitHub keeps deliveries three days: the fake's clock runs from now, as GitHub's does.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    rig.world
        .update(|s| s.set_clock_ms(u64::try_from(now_ms).unwrap_or(u64::MAX)));
    // carol opens a pull request while greg is down: GitHub cannot deliver it.
    let head = fake_sha("opened-while-down");
    let pr = rig
        .world
        .open_pr(&rig.repo, NewPr::new("carol", "down", head.clone()))?
        .number;
    let opened = rig.world.pull_request_webhook(&rig.repo, pr, "opened")?;
    let status = rig.world.send_to_hook(&rig.repo, hook, &opened).await?;
    assert_eq!(status, 0, "greg was not reachable");

    // At start greg lists its webhook's deliveries and asks for the missed one again.
    let greg = rig.start_greg().await?;
    let commit = head.to_string();
    rig.world
        .wait_for("the test build of the missed pull request", WAIT, |s| {
            s.jenkins
                .jobs
                .values()
                .flat_map(|j| j.builds.values())
                .find(|b| b.job.as_str() == TEST_JOB && b.param("COMMIT") == Some(commit.as_str()))
                .cloned()
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}; log:\n{}", rig.log_text()))?;
    // The test build may also come from the start-up reconciliation of open pull requests;
    // the redelivery is checked on its own, once it is recorded.
    let attempts = || -> Vec<(bool, u16)> {
        rig.world
            .hook_deliveries(&rig.repo, hook)
            .iter()
            .filter(|d| d.guid == opened.delivery_id)
            .map(|d| (d.redelivery, d.status_code))
            .collect()
    };
    let deadline = std::time::Instant::now() + WAIT;
    while attempts().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let attempts = attempts();
    assert_eq!(
        attempts,
        vec![(false, 0), (true, 202)],
        "missed, then redelivered"
    );
    greg.kill()
}
