//! An automatic CI model for one job ([`World::auto_ci`]): every build of the job, once
//! started, finishes by itself after a fixed wall-clock duration, `FAILURE` when the commit it
//! builds contains a breaking head, `SUCCESS` otherwise. It stands in for a test suite in
//! throughput tests of the merge queue, where scripting each build by hand is not possible.
//!
//! - The commit is the build's `COMMIT` parameter; "contains" is ancestry in the fake GitHub's
//!   (or the fake Bitbucket's) commit graph, a commit containing itself. A `COMMIT` that is not
//!   a sha, or is empty, contains nothing: the build passes.
//! - The outcome is decided when the build starts (the graph then holds the commit), and the
//!   completion goes through [`World::finish_build`] (notifications COMPLETED then FINALIZED),
//!   as a manual finish does, so greg hears of it the same way.
//! - A build stopped meanwhile (`POST .../stop`, i.e. finished `ABORTED`), finished by the test
//!   or kept running ([`World::keep_running`]) is left alone when its time is up.
//! - The run is not counted by [`World::settle`] (nor by `GregTester::settle`): a running
//!   build is work in Jenkins, not a pending delivery, just as a `Manual` build is. Wait for
//!   outcomes with [`World::wait_for`].
//! - An auto CI job ignores the job's scripted outcomes ([`World::script_outcome`]).

use super::{DriverCmd, JenkinsState};
use crate::world::{World, WorldState};
use greg_core::{BuildOutcome, JobName, Sha};
use std::collections::HashSet;
use std::time::Duration;

/// How an automatic CI job runs its builds (see [`World::auto_ci`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoCi {
    /// Wall-clock time from a build's start to its completion.
    pub duration: Duration,
    /// Heads that break the build: a build of a commit that contains any of them fails.
    pub breaking: Vec<Sha>,
    /// Heads that break the build once: the first build (of this job, since
    /// [`World::auto_ci`]) whose commit contains one of them fails, later ones pass (a flaky
    /// test). A breaking head wins over a flaky one.
    pub flaky: Vec<Sha>,
}

/// [`AutoCi`] with what it has seen: the flaky heads that already failed a build.
#[derive(Debug, Clone)]
pub(crate) struct AutoCiRun {
    ci: AutoCi,
    flaked: HashSet<Sha>,
}

/// True when `commit` contains `head`: equal, or `head` is an ancestor of `commit` in a
/// repository's commit graph of either fake provider.
fn contains(s: &WorldState, commit: &Sha, head: &Sha) -> bool {
    commit == head
        || s.github.repos.values().any(|r| r.is_ancestor(head, commit))
        || s.bitbucket
            .repos
            .values()
            .any(|r| r.is_ancestor(head, commit))
}

/// For a build of `job` at `commit` (its `COMMIT` parameter) that starts now: its outcome and
/// its duration when `job` runs under auto CI, `None` otherwise. Records a flaky head's
/// failure.
pub(super) fn decide(
    s: &mut WorldState,
    job: &JobName,
    commit: Option<&str>,
) -> Option<(BuildOutcome, Duration)> {
    let run = s.jenkins.auto_ci.get(job)?;
    let duration = run.ci.duration;
    let Some(commit) = commit.and_then(|c| Sha::parse(c).ok()) else {
        return Some((BuildOutcome::Success, duration));
    };
    if run.ci.breaking.iter().any(|h| contains(s, &commit, h)) {
        return Some((BuildOutcome::Failure, duration));
    }
    let flaky: Vec<Sha> = run
        .ci
        .flaky
        .iter()
        .filter(|h| !run.flaked.contains(*h) && contains(s, &commit, h))
        .cloned()
        .collect();
    if flaky.is_empty() {
        return Some((BuildOutcome::Success, duration));
    }
    if let Some(run) = s.jenkins.auto_ci.get_mut(job) {
        run.flaked.extend(flaky);
    }
    Some((BuildOutcome::Failure, duration))
}

impl JenkinsState {
    /// Schedules an auto CI completion. Not counted in `in_flight`: see the module docs.
    pub(super) fn schedule_auto_finish(&mut self, cmd: DriverCmd) {
        if let Some(tx) = &self.driver {
            // A driver that is gone (the fake stopped) runs nothing; the build stays running.
            let _ = tx.send(cmd);
        }
    }
}

impl World {
    /// Runs every build of `job` started from now on under the automatic CI model `ci` (see
    /// [`AutoCi`]): it finishes by itself `ci.duration` after it starts, `FAILURE` when its
    /// `COMMIT` contains one of `ci.breaking` (or, once, one of `ci.flaky`), `SUCCESS`
    /// otherwise. Replaces an earlier model of the job. Needs a running
    /// [`crate::FakeJenkins`] (the timers run on its runtime). Count the builds started with
    /// [`World::builds`].
    pub fn auto_ci(&self, job: &str, ci: AutoCi) {
        let job = JobName::from(job.trim_matches('/'));
        self.update(|s| {
            s.jenkins.auto_ci.insert(
                job,
                AutoCiRun {
                    ci,
                    flaked: HashSet::new(),
                },
            );
        });
    }

    /// Ends the automatic CI model of `job`: builds started from now on follow the scripted
    /// outcomes again (builds already running still finish by themselves).
    pub fn manual_ci(&self, job: &str) {
        let job = JobName::from(job.trim_matches('/'));
        self.update(|s| {
            s.jenkins.auto_ci.remove(&job);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::jenkins::GREG_PARAMETERS;
    use crate::{FakeJenkins, RequestSink, fake_sha};
    use greg_core::{BuildNumber, BuildPhase, RepoName};
    use std::time::Instant;

    const JOB: &str = "demo-merge";
    const RUN: Duration = Duration::from_millis(300);
    const WAIT: Duration = Duration::from_secs(10);

    struct Graph {
        master: Sha,
        good: Sha,
        bad: Sha,
        flaky: Sha,
    }

    /// master ← good, bad, flaky (each a head on master).
    fn world_with_heads() -> (World, Graph) {
        let world = World::default();
        let repo = RepoName::new("acme", "demo");
        world.create_repo(&repo).expect("repo");
        world.create_job(JOB, GREG_PARAMETERS).expect("job");
        let master = world.branch(&repo, "master").expect("master");
        let g = Graph {
            good: fake_sha("good"),
            bad: fake_sha("bad"),
            flaky: fake_sha("flaky"),
            master,
        };
        world
            .update(|s| {
                let r = s.github.repo_mut(&repo)?;
                for h in [&g.good, &g.bad, &g.flaky] {
                    r.add_commit(h, vec![g.master.clone()], "head");
                }
                Ok::<_, crate::WorldError>(())
            })
            .expect("graph");
        (world, g)
    }

    /// A merge commit of `parents` in the graph.
    fn merge(world: &World, parents: &[&Sha]) -> Sha {
        let seed: Vec<&str> = parents.iter().map(|p| p.as_str()).collect();
        let sha = fake_sha(&seed.join("+"));
        world.update(|s| {
            if let Some(r) = s.github.repos.values_mut().next() {
                r.add_commit(
                    &sha,
                    parents.iter().map(|p| (*p).clone()).collect(),
                    "merge",
                );
            }
        });
        sha
    }

    async fn trigger(world: &World, commit: &Sha) -> BuildNumber {
        let id = world
            .trigger(
                &JobName::from(JOB),
                &[("COMMIT".to_owned(), commit.to_string())],
            )
            .expect("trigger");
        // Started by the fake's driver after `start_after`.
        world
            .wait_for("the build to start", WAIT, |s| {
                s.jenkins.queue.get(&id.0)?.build
            })
            .await
            .expect("started")
    }

    async fn finished(world: &World, n: BuildNumber) -> BuildOutcome {
        world
            .wait_for("the build to finish", WAIT, |s| {
                s.jenkins
                    .jobs
                    .get(&JobName::from(JOB))?
                    .builds
                    .get(&n.0)?
                    .result
            })
            .await
            .expect("finished")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_build_fails_iff_its_commit_contains_a_breaking_head() {
        let (world, g) = world_with_heads();
        let _jenkins = FakeJenkins::start(world.clone()).expect("jenkins");
        world.auto_ci(
            JOB,
            AutoCi {
                duration: RUN,
                breaking: vec![g.bad.clone()],
                flaky: Vec::new(),
            },
        );
        let with_good = merge(&world, &[&g.master, &g.good]);
        let with_bad = merge(&world, &[&with_good, &g.bad]);
        let on_top_of_bad = merge(&world, &[&with_bad, &g.flaky]);

        let started = Instant::now();
        let mut builds = Vec::new();
        for c in [&with_good, &with_bad, &on_top_of_bad, &g.bad] {
            builds.push(trigger(&world, c).await);
        }
        // The running builds are not work greg waits for.
        world.settle(WAIT).await.expect("settled");
        assert!(
            world.builds(JOB).iter().all(|b| b.building),
            "nothing finishes before its time"
        );
        let mut outcomes = Vec::new();
        for n in &builds {
            outcomes.push(finished(&world, *n).await);
        }
        assert!(started.elapsed() >= RUN, "a build takes its duration");
        assert_eq!(
            outcomes,
            vec![
                BuildOutcome::Success,
                BuildOutcome::Failure,
                BuildOutcome::Failure,
                BuildOutcome::Failure,
            ]
        );
        assert_eq!(world.builds(JOB).len(), 4);
        // Not a sha, or no COMMIT at all: nothing breaks it.
        let id = world
            .trigger(
                &JobName::from(JOB),
                &[("COMMIT".to_owned(), "main".to_owned())],
            )
            .expect("trigger");
        let n = world
            .wait_for("the build to start", WAIT, |s| {
                s.jenkins.queue.get(&id.0)?.build
            })
            .await
            .expect("started");
        assert_eq!(finished(&world, n).await, BuildOutcome::Success);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_auto_build_notifies_like_a_manual_finish_and_a_stopped_one_never_finishes() {
        let (world, g) = world_with_heads();
        let _jenkins = FakeJenkins::start(world.clone()).expect("jenkins");
        let greg = RequestSink::start(202).expect("sink");
        world.set_notification_url(Some(&format!("{}/build", greg.url)));
        world.auto_ci(
            JOB,
            AutoCi {
                duration: RUN,
                ..AutoCi::default()
            },
        );
        let runs = trigger(&world, &g.good).await;
        let stopped = trigger(&world, &g.good).await;
        // What `POST .../stop` does.
        world
            .finish_build(JOB, stopped, BuildOutcome::Aborted)
            .expect("stop");
        assert_eq!(finished(&world, runs).await, BuildOutcome::Success);
        tokio::time::sleep(RUN * 2).await;
        world.settle(WAIT).await.expect("settled");

        let stopped_build = world.build(JOB, stopped).expect("build");
        assert_eq!(stopped_build.result, Some(BuildOutcome::Aborted));
        let phases = |n: BuildNumber| -> Vec<BuildPhase> {
            world
                .notifications()
                .iter()
                .filter(|x| x.number == n)
                .map(|x| x.phase)
                .collect()
        };
        let all = vec![
            BuildPhase::Queued,
            BuildPhase::Started,
            BuildPhase::Completed,
            BuildPhase::Finalized,
        ];
        assert_eq!(phases(runs), all);
        assert_eq!(phases(stopped), all, "one COMPLETED, the abort's");
        assert_eq!(
            world.build(JOB, runs).and_then(|b| b.result),
            Some(BuildOutcome::Success)
        );
        let completed = world
            .notifications()
            .into_iter()
            .find(|x| x.number == runs && x.phase == BuildPhase::Completed)
            .expect("COMPLETED");
        assert_eq!(completed.payload["build"]["status"], "SUCCESS");
        assert_eq!(
            completed.payload["build"]["parameters"]["COMMIT"],
            g.good.as_str()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flaky_head_fails_its_first_build_only_and_manual_ci_ends_the_model() {
        let (world, g) = world_with_heads();
        let _jenkins = FakeJenkins::start(world.clone()).expect("jenkins");
        world.script_outcome(JOB, None, crate::Outcome::Manual);
        world.auto_ci(
            JOB,
            AutoCi {
                duration: Duration::from_millis(50),
                breaking: Vec::new(),
                flaky: vec![g.flaky.clone()],
            },
        );
        let candidate = merge(&world, &[&g.master, &g.flaky]);
        let first = trigger(&world, &candidate).await;
        assert_eq!(finished(&world, first).await, BuildOutcome::Failure);
        let again = trigger(&world, &candidate).await;
        assert_eq!(finished(&world, again).await, BuildOutcome::Success);
        let other = trigger(&world, &g.good).await;
        assert_eq!(finished(&world, other).await, BuildOutcome::Success);

        world.manual_ci(JOB);
        let manual = trigger(&world, &g.good).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            world.build(JOB, manual).is_some_and(|b| b.building),
            "the scripted Manual outcome rules again"
        );
    }
}
