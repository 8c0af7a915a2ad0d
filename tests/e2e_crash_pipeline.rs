//! Crash safety of the merge pipeline (SPEC §10, issue 11 item 2), end to end on the real
//! `greg` binary: with several candidates in flight (`merge_queue: {window: 3}`) and with
//! batches (`merge_queue: {window: 2, batch_size: 2}`), greg is killed with SIGKILL at each
//! step of the pipeline — after the first candidate's staging ref is made, after a merge build
//! is triggered, after the results and before the fast-forward, after the fast-forward and
//! before clean-up — then restarted on the same database, and the merge builds are finished
//! green as Jenkins would. Each test proves that every pull request lands exactly once (one
//! "Merged" comment, merged, its head merged once into master), that master only ever pointed
//! at commits whose merge build was green, that master's tip contains every head, and that no
//! staging ref is left behind.
//!
//! The kill hits an exact step as in `e2e_crash.rs`: the fake GitHub (or Jenkins) holds the
//! first matching request, greg is killed while it waits on it, and the request is released
//! as never received (`HoldMode::Drop`) or as done with the answer lost (`HoldMode::Apply`).

#[path = "common/greg_rig.rs"]
mod greg_rig;

use greg_rig::{Rig, STAGING, WAIT};
use greg_testkit::tester::MERGE_JOB;
use greg_testkit::{HoldMode, Server};
use std::time::Duration;

/// A queue configuration, how many approved pull requests it gets and how many candidates
/// they make (all in flight at once).
struct Queue {
    merge_queue: &'static str,
    prs: usize,
    candidates: usize,
}

/// Three candidates of one pull request each, built at once.
const WINDOW_3: Queue = Queue {
    merge_queue: "{window: 3}",
    prs: 3,
    candidates: 3,
};

/// Two candidates of two pull requests each, built at once.
const WINDOW_2_BATCH_2: Queue = Queue {
    merge_queue: "{window: 2, batch_size: 2}",
    prs: 4,
    candidates: 2,
};

/// Where greg is killed: the request held while greg waits on it.
#[derive(Clone, Copy)]
enum Kill {
    /// The first candidate's staging ref exists; the merge into it never reached GitHub.
    AfterStagingRef,
    /// Jenkins queued a merge build; greg died before it read the answer.
    AfterBuildTriggered,
    /// Green results arrived; the fast-forward of master never reached GitHub.
    BeforeFastForward,
    /// GitHub moved master; greg died before it read the answer.
    AfterFastForward,
}

impl Kill {
    /// (server, method, path, what the release does, whether merge builds must go green first).
    fn hold(self) -> (Server, &'static str, &'static str, HoldMode, bool) {
        match self {
            Kill::AfterStagingRef => (Server::Github, "POST", "/merges$", HoldMode::Drop, false),
            Kill::AfterBuildTriggered => (
                Server::Jenkins,
                "POST",
                "/job/demo-merge/buildWithParameters$",
                HoldMode::Apply,
                false,
            ),
            Kill::BeforeFastForward => (
                Server::Github,
                "PATCH",
                "/git/refs/heads/master$",
                HoldMode::Drop,
                true,
            ),
            Kill::AfterFastForward => (
                Server::Github,
                "PATCH",
                "/git/refs/heads/master$",
                HoldMode::Apply,
                true,
            ),
        }
    }
}

/// Approves `queue.prs` pull requests, arms the hold of `kill`, says "@greg please" on each
/// in order, kills greg once it waits on the held request, releases it, restarts greg on the
/// same database, finishes merge builds green until everything landed, and checks the outcome.
async fn crash_pipeline(name: &str, queue: &Queue, kill: Kill) -> anyhow::Result<()> {
    let rig = Rig::with_repo_yaml(
        name,
        &format!(
            "    merge_mode: staging\n    merge_queue: {}\n",
            queue.merge_queue
        ),
    )?;
    let greg = rig.start_greg().await?;
    let mut prs = Vec::new();
    for i in 1..=queue.prs {
        prs.push(rig.approved_pr_on(&greg, &format!("feature-{i}")).await?);
    }
    let start = rig.branch("master").expect("master");

    let (server, method, path, mode, after_build) = kill.hold();
    let hold = rig.world.hold_next(server, method, path, mode)?;
    for (pr, _) in &prs {
        rig.please(&greg, *pr).await?;
    }
    if after_build {
        // Every candidate is in flight; then merge builds go green, as Jenkins would, until
        // greg fast-forwards master.
        rig.world
            .wait_for("every candidate's merge build", WAIT, |s| {
                let running = s
                    .jenkins
                    .jobs
                    .values()
                    .flat_map(|j| j.builds.values())
                    .filter(|b| b.job.as_str() == MERGE_JOB && b.building)
                    .count();
                (running == queue.candidates).then_some(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}; log:\n{}", rig.log_text()))?;
        assert_eq!(
            rig.world.branches_under(&rig.repo, STAGING).len(),
            queue.candidates,
            "one staging ref per candidate"
        );
        let deadline = std::time::Instant::now() + WAIT;
        while rig
            .world
            .wait_held(hold, Duration::from_millis(50))
            .await
            .is_err()
        {
            for b in rig.running_merges() {
                rig.world.finish_build(
                    b.job.as_str(),
                    b.number,
                    greg_core::BuildOutcome::Success,
                )?;
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "greg never fast-forwarded master; log:\n{}",
                rig.log_text()
            );
        }
    }
    rig.world
        .wait_held(hold, WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("{e}; log:\n{}", rig.log_text()))?;
    greg.kill()?;
    rig.world.release(hold);

    let greg = rig.start_greg().await?;
    let numbers: Vec<_> = prs.iter().map(|(pr, _)| *pr).collect();
    rig.drive_all_to_landing(&numbers).await?;
    rig.assert_all_landed_exactly_once(&prs, &start);
    greg.kill()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_3_killed_after_the_staging_ref_is_made() -> anyhow::Result<()> {
    crash_pipeline("w3-staged", &WINDOW_3, Kill::AfterStagingRef).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_3_killed_after_a_merge_build_is_triggered() -> anyhow::Result<()> {
    crash_pipeline("w3-triggered", &WINDOW_3, Kill::AfterBuildTriggered).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_3_killed_after_the_results_and_before_the_fast_forward() -> anyhow::Result<()> {
    crash_pipeline("w3-before-ff", &WINDOW_3, Kill::BeforeFastForward).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_3_killed_after_the_fast_forward_and_before_clean_up() -> anyhow::Result<()> {
    crash_pipeline("w3-after-ff", &WINDOW_3, Kill::AfterFastForward).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_2_killed_after_the_staging_ref_is_made() -> anyhow::Result<()> {
    crash_pipeline("b2-staged", &WINDOW_2_BATCH_2, Kill::AfterStagingRef).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_2_killed_after_a_merge_build_is_triggered() -> anyhow::Result<()> {
    crash_pipeline("b2-triggered", &WINDOW_2_BATCH_2, Kill::AfterBuildTriggered).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_2_killed_after_the_results_and_before_the_fast_forward() -> anyhow::Result<()> {
    crash_pipeline("b2-before-ff", &WINDOW_2_BATCH_2, Kill::BeforeFastForward).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_2_killed_after_the_fast_forward_and_before_clean_up() -> anyhow::Result<()> {
    crash_pipeline("b2-after-ff", &WINDOW_2_BATCH_2, Kill::AfterFastForward).await
}
