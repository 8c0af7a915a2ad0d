//! End to end, merge-queue throughput (SPEC §10): with a speculative window, a queue of approved
//! pull requests lands in a few build durations instead of one per pull request, the pull
//! requests that break the build are found (alone, by bisection when batched) and never land,
//! and the target only ever points at commits whose merge build was green.
//!
//! The merge job runs under the fake Jenkins' automatic CI model: every merge build finishes by
//! itself after [`RUN`], failing when its commit contains a breaking head. Each test sets up the
//! world, approves the pull requests, then checks only what the world shows: pull requests,
//! statuses, comments, the target's history and the builds Jenkins ran.

use greg_core::{BuildOutcome, CommitState, PrNumber, PullRequestState, Sha};
use greg_testkit::tester::MERGE_JOB;
use greg_testkit::{AutoCi, GregTester, TesterOptions, fake_sha};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The wall-clock duration of every merge build.
const RUN: Duration = Duration::from_millis(1500);
/// How long a whole queue may take before the test gives up.
const DEADLINE: Duration = Duration::from_secs(60);

/// One scenario: the queue's YAML, how many pull requests, which of them (1-based, in queue
/// order) break the build, and the wall time allowed from the last approval, in builds.
struct Scenario {
    merge_queue: &'static str,
    prs: usize,
    breaking: &'static [usize],
    max_runs: u32,
}

/// A pull request of the play.
struct Pr {
    number: PrNumber,
    head: Sha,
    breaks: bool,
}

/// The head `GregTester::ready_pr` gives the pull request from `branch`.
fn head_of(branch: &str) -> Sha {
    fake_sha(&format!("{branch}-1"))
}

fn branch(i: usize) -> String {
    format!("feature-{i:02}")
}

async fn start(s: &Scenario) -> anyhow::Result<GregTester> {
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: format!(
            "    merge_mode: staging\n    merge_queue: {}\n",
            s.merge_queue
        ),
        ..TesterOptions::default()
    })
    .await?;
    t.set_permission("alice", greg_core::Permission::Write)?;
    t.set_permission("bob", greg_core::Permission::Write)?;
    t.world.auto_ci(
        MERGE_JOB,
        AutoCi {
            duration: RUN,
            breaking: s.breaking.iter().map(|i| head_of(&branch(*i))).collect(),
            flaky: Vec::new(),
        },
    );
    Ok(t)
}

fn is_ancestor(t: &GregTester, ancestor: &Sha, descendant: &Sha) -> bool {
    t.world.read(|s| {
        s.github
            .repos
            .get(&t.repo)
            .is_some_and(|r| r.is_ancestor(ancestor, descendant))
    })
}

fn parents(t: &GregTester, commit: &Sha) -> Vec<Sha> {
    t.world.read(|s| {
        s.github
            .repos
            .get(&t.repo)
            .and_then(|r| r.commits.get(commit))
            .map_or_else(Vec::new, |c| c.parents.clone())
    })
}

/// The commits of merge builds that finished with `outcome`.
fn merge_commits(t: &GregTester, outcome: BuildOutcome) -> HashSet<Sha> {
    t.builds(MERGE_JOB)
        .iter()
        .filter(|b| b.result == Some(outcome))
        .filter_map(|b| Sha::parse(b.param("COMMIT")?).ok())
        .collect()
}

/// Every comment greg posted on `pr`, read (so `finish` does not count them as unread).
fn read_all_comments(t: &mut GregTester, pr: PrNumber) -> Vec<String> {
    std::iter::from_fn(|| t.expect_comment(pr).ok()).collect()
}

/// Plays a scenario: every pull request made ready (test build green, approved by bob), then
/// "@greg please" from bob on each, in order; waits until every good one is merged and every
/// bad one has a failed merge status; checks the outcomes. Returns the tester for more checks.
async fn play(s: &Scenario) -> anyhow::Result<(GregTester, Vec<Pr>)> {
    let mut t = start(s).await?;
    let start_tip = t.world.branch(&t.repo, "master").expect("master");
    let mut prs = Vec::new();
    for i in 1..=s.prs {
        let (number, head) = t.ready_pr(&branch(i)).await?;
        assert_eq!(head, head_of(&branch(i)));
        prs.push(Pr {
            number,
            head,
            breaks: s.breaking.contains(&i),
        });
    }

    let mut last_approval = Instant::now();
    for pr in &prs {
        last_approval = Instant::now();
        t.post_comment(pr.number, "bob", "@greg please").await?;
    }
    // While they build, /api/queue shows the candidates in flight and what each contains
    // (item 8): more than one at a time, each with its own staging ref, the first on the
    // target tip and each later one on the one before.
    let queue: serde_json::Value = t
        .client()
        .get(format!("{}/api/queue/{}", t.url, t.repo))
        .send()
        .await?
        .json()
        .await?;
    let candidates = queue["queues"][0]["candidates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        candidates.len() > 1,
        "several candidates in flight: {queue}"
    );
    assert_eq!(candidates[0]["parent"], serde_json::Value::Null);
    for pair in candidates.windows(2) {
        assert_eq!(pair[1]["parent"], pair[0]["id"], "a chain: {queue}");
        assert!(
            pair[1]["staging_ref"]
                .as_str()
                .is_some_and(|r| r.starts_with("greg/staging/master/")),
            "{queue}"
        );
    }
    let listed: usize = candidates
        .iter()
        .map(|c| c["pull_requests"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(listed >= candidates.len(), "{queue}");
    let repo = t.repo.clone();
    let outcome = t
        .world
        .wait_for("every pull request to land or fail", DEADLINE, |w| {
            let r = w.github.repos.get(&repo)?;
            let done = prs.iter().all(|pr| {
                if pr.breaks {
                    r.statuses
                        .iter()
                        .rev()
                        .find(|st| st.sha == pr.head && st.context == "greg/merge")
                        .is_some_and(|st| st.state == CommitState::Failure)
                } else {
                    r.pulls
                        .get(&pr.number.0)
                        .is_some_and(|p| p.state == PullRequestState::Merged)
                }
            });
            done.then_some(())
        })
        .await;
    let elapsed = last_approval.elapsed();
    let builds = t.builds(MERGE_JOB).len();
    let good = prs.iter().filter(|p| !p.breaks).count();
    eprintln!(
        "merge_queue {}: {} pull requests ({} breaking) in {elapsed:?} from the last approval \
         ({:.1} builds of {RUN:?}); {builds} merge builds started, {:.2} builds per merge, \
         {} builds saved (a build of the same tree reused)",
        s.merge_queue,
        s.prs,
        s.breaking.len(),
        elapsed.as_secs_f64() / RUN.as_secs_f64(),
        builds as f64 / good as f64,
        t.engine.builds_reused(),
    );
    outcome?;
    t.settle().await?;

    // Good pull requests landed, once each, with greg's word; bad ones failed and never landed.
    for pr in &prs {
        let comments = read_all_comments(&mut t, pr.number);
        let merged = comments.iter().filter(|c| c.contains("Merged `")).count();
        let state = t.world.pull_request(&t.repo, pr.number).map(|p| p.state);
        if pr.breaks {
            assert_eq!(merged, 0, "#{} never lands: {comments:#?}", pr.number);
            assert_eq!(state, Some(PullRequestState::Open), "#{}", pr.number);
            assert_eq!(
                t.status(&pr.head, "greg/merge").map(|st| st.state),
                Some(CommitState::Failure),
                "#{}",
                pr.number
            );
            assert!(
                comments
                    .last()
                    .is_some_and(|c| c.to_lowercase().contains("fail")),
                "#{} is told its merge build failed: {comments:#?}",
                pr.number
            );
        } else {
            assert_eq!(merged, 1, "#{} lands once: {comments:#?}", pr.number);
            assert_eq!(state, Some(PullRequestState::Merged), "#{}", pr.number);
            assert_eq!(
                t.status(&pr.head, "greg/merge").map(|st| st.state),
                Some(CommitState::Success),
                "#{}",
                pr.number
            );
        }
    }

    // The target only ever moved forward, to commits built green, never to a bad head.
    let history = t.world.branch_history(&t.repo, "master");
    let green = merge_commits(&t, BuildOutcome::Success);
    assert_eq!(history.first(), Some(&start_tip), "{history:#?}");
    assert!(history.len() > 1, "the target moved");
    for pair in history.windows(2) {
        assert!(
            is_ancestor(&t, &pair[0], &pair[1]),
            "the target only fast-forwards: {history:#?}"
        );
    }
    for tip in &history[1..] {
        assert!(
            green.contains(tip),
            "the target pointed at {tip}, which no merge build passed"
        );
        for pr in prs.iter().filter(|p| p.breaks) {
            assert!(
                !is_ancestor(&t, &pr.head, tip),
                "#{}'s breaking head reached the target at {tip}",
                pr.number
            );
        }
    }
    let tip = history.last().expect("a tip");
    assert_eq!(t.world.branch(&t.repo, "master").as_ref(), Some(tip));
    for pr in prs.iter().filter(|p| !p.breaks) {
        assert!(
            is_ancestor(&t, &pr.head, tip),
            "#{} is in the target",
            pr.number
        );
    }

    // Each bad pull request failed alone: some failed merge build merged just its head into a
    // commit that was green (landed, or a green candidate). The fake's merge commits are
    // named by their parents, so "alone on top of a green candidate" is the same commit
    // whichever way greg made it.
    let failed: Vec<Sha> = merge_commits(&t, BuildOutcome::Failure)
        .into_iter()
        .collect();
    for pr in prs.iter().filter(|p| p.breaks) {
        let alone = failed.iter().any(|c| match parents(&t, c).as_slice() {
            [base, head] => head == &pr.head && (green.contains(base) || history.contains(base)),
            _ => false,
        });
        assert!(
            alone,
            "#{}'s head failed a merge build on its own",
            pr.number
        );
    }

    assert!(
        elapsed <= RUN * s.max_runs,
        "{} pull requests took {elapsed:?} from the last approval, more than {} builds of {RUN:?}",
        s.prs,
        s.max_runs
    );
    Ok((t, prs))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_of_eight_lands_eighteen_of_twenty_in_at_most_eight_build_durations()
-> anyhow::Result<()> {
    let (t, prs) = play(&Scenario {
        merge_queue: "{window: 8}",
        prs: 20,
        breaking: &[4, 13],
        max_runs: 8,
    })
    .await?;
    assert_eq!(prs.iter().filter(|p| !p.breaks).count(), 18);
    // Every pull request was in at least one candidate of its own.
    assert!(t.builds(MERGE_JOB).len() >= 20);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_four_bisect_down_to_the_one_breaking_pull_request() -> anyhow::Result<()> {
    let (t, prs) = play(&Scenario {
        merge_queue: "{window: 4, batch_size: 4}",
        prs: 12,
        breaking: &[6],
        max_runs: 8,
    })
    .await?;
    assert_eq!(prs.iter().filter(|p| !p.breaks).count(), 11);
    // Bisection: the second half of the red batch, on its green first half, is the batch
    // again; its known result is reused, not built a second time.
    assert!(
        t.engine.builds_reused() >= 1,
        "a known failure was reused during bisection"
    );
    t.finish().await
}
