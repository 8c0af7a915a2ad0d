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

use greg_core::{BuildOutcome, CommitState, Permission, PrNumber, PullRequestState, RepoName, Sha};
use greg_testkit::tester::{
    GITHUB_TOKEN, JENKINS_TOKEN, MERGE_JOB, TEST_JOB, WEBHOOK_SECRET, tester_config_yaml,
};
use greg_testkit::{
    FakeGithub, FakeJenkins, GREG_PARAMETERS, HoldMode, NewPr, Outcome, Server, TesterOptions,
    World, fake_sha,
};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The staging refs of master's merge queue (`greg/staging/master/<candidate>`, SPEC §10).
const STAGING: &str = "greg/staging/master/";
const WAIT: Duration = Duration::from_secs(30);

/// A `greg serve` child process and how to reach it.
struct Greg {
    child: Child,
    url: String,
}

impl Greg {
    /// Kills greg with SIGKILL (`Child::kill` on Unix) and reaps it.
    fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Greg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fakes, the configuration file and the database greg restarts on.
struct Rig {
    world: World,
    _github: FakeGithub,
    _jenkins: FakeJenkins,
    repo: RepoName,
    config: PathBuf,
    log: PathBuf,
    client: reqwest::Client,
    port: u16,
}

impl Rig {
    fn new(name: &str) -> anyhow::Result<Self> {
        Self::with_options(
            name,
            TesterOptions {
                repo_yaml: "    merge_mode: staging\n".to_owned(),
                ..TesterOptions::default()
            },
        )
    }

    fn with_options(name: &str, opts: TesterOptions) -> anyhow::Result<Self> {
        greg_testkit::install_crypto_provider();
        let world = World::new("greg-bot");
        let github = FakeGithub::start(world.clone())?;
        let jenkins = FakeJenkins::start(world.clone())?;
        let repo = opts.repo.clone();
        world.create_repo(&repo)?;
        world.create_job(TEST_JOB, GREG_PARAMETERS)?;
        world.create_job(MERGE_JOB, GREG_PARAMETERS)?;
        world.set_jenkins_credentials(Some(("greg", "jenkins-api-token")));
        world.script_outcome(TEST_JOB, None, Outcome::Manual);
        world.script_outcome(MERGE_JOB, None, Outcome::Manual);
        world.set_permission(&repo, "alice", Permission::Write)?;
        world.set_permission(&repo, "bob", Permission::Write)?;
        let dir = std::env::temp_dir().join(format!(
            "greg-crash-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let database = format!("sqlite://{}", dir.join("greg.db").display());
        let yaml = tester_config_yaml(&github.url, &jenkins.url, &database, &opts).replace(
            "listen: 127.0.0.1:0",
            &format!("listen: 127.0.0.1:{port}\n  public_url: http://127.0.0.1:{port}"),
        );
        let config = dir.join("config.yaml");
        std::fs::write(&config, yaml)?;
        world.set_notification_url(Some(&format!(
            "http://127.0.0.1:{port}/build?builder=jenkins&token={JENKINS_TOKEN}"
        )));
        Ok(Self {
            world,
            _github: github,
            _jenkins: jenkins,
            repo,
            config,
            log: dir.join("greg.log"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            port,
        })
    }

    /// Starts `greg serve` and waits until `/healthz` answers.
    async fn start_greg(&self) -> anyhow::Result<Greg> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_greg"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env_remove("GREG_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let greg = Greg {
            child,
            url: format!("http://127.0.0.1:{}", self.port),
        };
        for _ in 0..500 {
            if let Ok(r) = self
                .client
                .get(format!("{}/healthz", greg.url))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(greg);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("greg did not start; log: {}", self.log_text())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn send(
        &self,
        greg: &Greg,
        d: greg_testkit::webhook::WebhookDelivery,
    ) -> anyhow::Result<()> {
        let url = format!("{}/repo?provider=github&token={GITHUB_TOKEN}", greg.url);
        let resp = d.send(&self.client, &url, Some(WEBHOOK_SECRET)).await?;
        anyhow::ensure!(
            resp.status().as_u16() == 202,
            "greg answered {}",
            resp.status()
        );
        Ok(())
    }

    fn branch(&self, name: &str) -> Option<Sha> {
        self.world.branch(&self.repo, name)
    }

    fn status(&self, sha: &Sha, context: &str) -> Option<CommitState> {
        self.world
            .latest_status(&self.repo, sha, context)
            .map(|s| s.state)
    }

    /// carol's pull request, test build green, approved by bob, "@greg please" by alice.
    async fn approved_pr(&self, greg: &Greg) -> anyhow::Result<(PrNumber, Sha)> {
        let head = fake_sha("feature-1");
        let pr = self
            .world
            .open_pr(&self.repo, NewPr::new("carol", "feature", head.clone()))?
            .number;
        self.send(
            greg,
            self.world.pull_request_webhook(&self.repo, pr, "opened")?,
        )
        .await?;
        let build = self
            .world
            .wait_for("the test build", WAIT, |s| {
                s.jenkins
                    .jobs
                    .values()
                    .flat_map(|j| j.builds.values())
                    .find(|b| b.building)
                    .cloned()
            })
            .await?;
        self.world
            .finish_build(build.job.as_str(), build.number, BuildOutcome::Success)?;
        let repo = self.repo.clone();
        let h = head.clone();
        self.world
            .wait_for("greg/test success", WAIT, |s| {
                s.github
                    .repos
                    .get(&repo)?
                    .statuses
                    .iter()
                    .rev()
                    .find(|st| {
                        st.sha == h && st.context == "greg/test" && st.state == CommitState::Success
                    })
                    .map(|_| ())
            })
            .await?;
        let review = self.world.approve(&self.repo, pr, "bob")?;
        self.send(greg, self.world.review_webhook(&self.repo, &review)?)
            .await?;
        Ok((pr, head))
    }

    async fn please(&self, greg: &Greg, pr: PrNumber) -> anyhow::Result<()> {
        let c = self
            .world
            .comment(&self.repo, pr, "alice", "@greg please")?;
        self.send(greg, self.world.comment_webhook(&self.repo, &c)?)
            .await
    }

    /// The running merge builds.
    fn running_merges(&self) -> Vec<greg_testkit::FakeBuild> {
        self.world.read(|s| {
            s.jenkins
                .jobs
                .values()
                .flat_map(|j| j.builds.values())
                .filter(|b| b.job.as_str() == MERGE_JOB && b.building)
                .cloned()
                .collect()
        })
    }

    /// Finishes merge builds green (as Jenkins would) until the pull request is merged.
    async fn drive_to_landing(&self, pr: PrNumber) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let merged = self.world.pull_request(&self.repo, pr).map(|p| p.state)
                == Some(PullRequestState::Merged);
            let staging_gone = newest_staging_ref(&self.world, &self.repo).is_none();
            let comment = self.merged_comments(pr) > 0;
            if merged && staging_gone && comment && self.running_merges().is_empty() {
                return Ok(());
            }
            for b in self.running_merges() {
                self.world
                    .finish_build(b.job.as_str(), b.number, BuildOutcome::Success)?;
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "the pull request did not land (merged {merged}, staging ref gone {staging_gone}, comment {comment}); log:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn merged_comments(&self, pr: PrNumber) -> usize {
        self.world
            .bot_comments(&self.repo, pr)
            .iter()
            .filter(|c| c.body.contains("Merged"))
            .count()
    }

    /// The outcome every crash test must show: master moved exactly once, to a staging commit
    /// that merges the approved head and whose merge build was green; no staging ref left.
    fn assert_landed_exactly_once(&self, pr: PrNumber, head: &Sha, start: &Sha) {
        let applied: Vec<Sha> = self
            .world
            .requests_matching(Server::Github, "PATCH", "/git/refs/heads/master$")
            .iter()
            .filter(|r| r.status == 200)
            .filter_map(|r| Sha::parse(r.json.as_ref()?.get("sha")?.as_str()?).ok())
            .collect();
        let master = self.branch("master").expect("master");
        assert_eq!(
            applied,
            vec![master.clone()],
            "one fast-forward, to master's tip"
        );
        let parents = self.world.read(|s| {
            s.github
                .repos
                .get(&self.repo)
                .and_then(|r| r.commits.get(&master))
                .map(|c| c.parents.clone())
        });
        assert_eq!(
            parents,
            Some(vec![start.clone(), head.clone()]),
            "master = start + the head, once"
        );
        let green = self.world.read(|s| {
            s.jenkins
                .jobs
                .values()
                .flat_map(|j| j.builds.values())
                .any(|b| {
                    b.job.as_str() == MERGE_JOB
                        && b.result == Some(BuildOutcome::Success)
                        && b.param("COMMIT") == Some(master.as_str())
                })
        });
        assert!(green, "master's commit was built green");
        assert_eq!(
            newest_staging_ref(&self.world, &self.repo),
            None,
            "no staging ref left behind"
        );
        assert_eq!(
            self.world.pull_request(&self.repo, pr).map(|p| p.state),
            Some(PullRequestState::Merged)
        );
        assert_eq!(self.status(head, "greg/merge"), Some(CommitState::Success));
        assert_eq!(self.merged_comments(pr), 1, "one 'Merged' comment");
    }
}

/// Runs one crash scenario: `arm` arms the hold (before `please` or before the merge build
/// finishes, per `after_build`), greg is killed while it waits on it, the request is
/// released, greg restarts, and the pull request must land exactly once.
async fn crash_and_recover(
    name: &str,
    server: Server,
    method: &str,
    path: &str,
    mode: HoldMode,
    after_build: bool,
) -> anyhow::Result<()> {
    let rig = Rig::new(name)?;
    let greg = rig.start_greg().await?;
    let (pr, head) = rig.approved_pr(&greg).await?;
    let start = rig.branch("master").expect("master");

    let hold = rig.world.hold_next(server, method, path, mode)?;
    rig.please(&greg, pr).await?;
    if after_build {
        let build = rig
            .world
            .wait_for("the merge build", WAIT, |s| {
                s.jenkins
                    .jobs
                    .values()
                    .flat_map(|j| j.builds.values())
                    .find(|b| b.building && b.job.as_str() == MERGE_JOB)
                    .cloned()
            })
            .await?;
        rig.world
            .finish_build(build.job.as_str(), build.number, BuildOutcome::Success)?;
    }
    rig.world.wait_held(hold, WAIT).await?;
    greg.kill()?;
    rig.world.release(hold);

    let greg = rig.start_greg().await?;
    rig.drive_to_landing(pr).await?;
    rig.assert_landed_exactly_once(pr, &head, &start);
    greg.kill()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_staging_ref_is_made() -> anyhow::Result<()> {
    // The staging ref exists; the merge into it never reached GitHub.
    crash_and_recover(
        "staged",
        Server::Github,
        "POST",
        "/merges$",
        HoldMode::Drop,
        false,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_build_is_triggered() -> anyhow::Result<()> {
    // Jenkins queued the build; greg died before it read the answer.
    crash_and_recover(
        "triggered",
        Server::Jenkins,
        "POST",
        "/job/demo-merge/buildWithParameters$",
        HoldMode::Apply,
        false,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_result_and_before_the_fast_forward() -> anyhow::Result<()> {
    // The green callback arrived; the fast-forward never reached GitHub.
    crash_and_recover(
        "before-ff",
        Server::Github,
        "PATCH",
        "/git/refs/heads/master$",
        HoldMode::Drop,
        true,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_fast_forward_and_before_clean_up() -> anyhow::Result<()> {
    // GitHub moved master; greg died before it read the answer.
    crash_and_recover(
        "after-ff",
        Server::Github,
        "PATCH",
        "/git/refs/heads/master$",
        HoldMode::Apply,
        true,
    )
    .await
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
    let build = rig
        .world
        .wait_for("the merge build", WAIT, |s| {
            s.jenkins
                .jobs
                .values()
                .flat_map(|j| j.builds.values())
                .find(|b| b.building && b.job.as_str() == MERGE_JOB)
                .cloned()
        })
        .await?;
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
    let attempts: Vec<(bool, u16)> = rig
        .world
        .hook_deliveries(&rig.repo, hook)
        .iter()
        .filter(|d| d.guid == opened.delivery_id)
        .map(|d| (d.redelivery, d.status_code))
        .collect();
    assert_eq!(
        attempts,
        vec![(false, 0), (true, 202)],
        "missed, then redelivered"
    );
    greg.kill()
}

/// The newest staging ref of master's merge queue (the highest candidate number), if any.
fn newest_staging_ref(
    world: &greg_testkit::World,
    repo: &greg_core::RepoName,
) -> Option<greg_core::Sha> {
    world
        .branches_under(repo, STAGING)
        .into_iter()
        .max_by_key(|(name, _)| {
            name.rsplit('/')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .map(|(_, tip)| tip)
}
