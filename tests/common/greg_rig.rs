//! The rig for tests on the real `greg` binary (`e2e_crash.rs`, `e2e_crash_pipeline.rs`,
//! `e2e_faults_pipeline.rs`, `e2e_ops.rs`): `greg serve` as a child process on a configuration
//! file and a SQLite database that survive it, the fake GitHub and Jenkins it talks to, and
//! the domain verbs these tests speak (comment, approve a pull request, "@greg please",
//! finish merge builds, check the landing, SIGKILL or SIGTERM greg, run another subcommand).
//!
//! Each test binary includes it with `#[path = "common/greg_rig.rs"] mod greg_rig;` and uses
//! only part of it.
#![allow(dead_code)]

use greg_core::{BuildOutcome, CommitState, Permission, PrNumber, PullRequestState, RepoName, Sha};
use greg_testkit::tester::{
    GITHUB_TOKEN, JENKINS_TOKEN, MERGE_JOB, TEST_JOB, WEBHOOK_SECRET, tester_config_yaml,
};
use greg_testkit::{
    FakeBuild, FakeGithub, FakeJenkins, GREG_PARAMETERS, HoldMode, NewPr, Outcome, Server,
    TesterOptions, World, WorldState, fake_sha,
};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The staging refs of master's merge queue (`greg/staging/master/<candidate>`, SPEC §10).
pub const STAGING: &str = "greg/staging/master/";
/// How long any one wait of a crash test may take (generous: CI runs test binaries in
/// parallel on two cores).
pub const WAIT: Duration = Duration::from_secs(60);

/// The builds of the merge job Jenkins is running.
fn running_merge_builds(s: &WorldState) -> impl Iterator<Item = &FakeBuild> {
    s.jenkins
        .jobs
        .values()
        .flat_map(|j| j.builds.values())
        .filter(|b| b.job.as_str() == MERGE_JOB && b.building)
}

/// One step of a staging merge at which a test cuts greg off (SIGKILL, SIGSTOP): the request
/// the fake GitHub or Jenkins holds there, what it does once released, and whether the merge
/// build finishes before it.
#[derive(Debug, Clone, Copy)]
pub struct MergeStep {
    pub server: Server,
    pub method: &'static str,
    /// A regex on the request's path.
    pub path: &'static str,
    pub mode: HoldMode,
    pub after_build: bool,
}

impl MergeStep {
    /// The staging ref exists; the merge into it never reached GitHub.
    pub const STAGED: MergeStep = MergeStep {
        server: Server::Github,
        method: "POST",
        path: "/merges$",
        mode: HoldMode::Drop,
        after_build: false,
    };
    /// Jenkins queued the build; greg never read the answer.
    pub const TRIGGERED: MergeStep = MergeStep {
        server: Server::Jenkins,
        method: "POST",
        path: "/job/demo-merge/buildWithParameters$",
        mode: HoldMode::Apply,
        after_build: false,
    };
    /// The green callback arrived; the fast-forward never reached GitHub.
    pub const BEFORE_FAST_FORWARD: MergeStep = MergeStep {
        server: Server::Github,
        method: "PATCH",
        path: "/git/refs/heads/master$",
        mode: HoldMode::Drop,
        after_build: true,
    };
    /// GitHub moved master; greg never read the answer.
    pub const AFTER_FAST_FORWARD: MergeStep = MergeStep {
        mode: HoldMode::Apply,
        ..MergeStep::BEFORE_FAST_FORWARD
    };
}

/// A `greg serve` child process and how to reach it.
pub struct Greg {
    pub child: Child,
    pub url: String,
}

impl Greg {
    /// Kills greg with SIGKILL (`Child::kill` on Unix) and reaps it.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Sends SIGTERM and waits (at most 30 s) for the exit code.
    pub fn terminate(mut self) -> anyhow::Result<Option<i32>> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid} failed");
        for _ in 0..3000 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        anyhow::bail!("greg did not exit within 30 s of SIGTERM")
    }
}

impl Drop for Greg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fakes, the configuration file and the database greg restarts on, in a directory of
/// their own (removed when the rig is dropped).
pub struct Rig {
    pub world: World,
    _github: FakeGithub,
    _jenkins: FakeJenkins,
    pub repo: RepoName,
    pub dir: PathBuf,
    pub database: String,
    pub config: PathBuf,
    pub log: PathBuf,
    pub client: reqwest::Client,
    pub port: u16,
}

impl Rig {
    /// A rig for `merge_mode: staging` with the default queue (serial).
    pub fn new(name: &str) -> anyhow::Result<Self> {
        Self::with_repo_yaml(name, "    merge_mode: staging\n")
    }

    /// A rig whose repository entry gets `repo_yaml` (lines indented 4 spaces), e.g.
    /// `merge_mode: staging` and a `merge_queue`.
    pub fn with_repo_yaml(name: &str, repo_yaml: &str) -> anyhow::Result<Self> {
        Self::with_options(
            name,
            TesterOptions {
                repo_yaml: repo_yaml.to_owned(),
                ..TesterOptions::default()
            },
        )
    }

    pub fn with_options(name: &str, opts: TesterOptions) -> anyhow::Result<Self> {
        Self::with_server_yaml(name, opts, "")
    }

    /// A rig with `opts` whose `server:` section also gets `server_yaml` (lines indented 2
    /// spaces, e.g. `  admin_token: ...`).
    pub fn with_server_yaml(
        name: &str,
        opts: TesterOptions,
        server_yaml: &str,
    ) -> anyhow::Result<Self> {
        Self::on_database(name, opts, server_yaml, None)
    }

    /// A rig on `database` (a PostgreSQL URL, for replicas), or a SQLite file of its own
    /// when `None`.
    pub fn on_database(
        name: &str,
        opts: TesterOptions,
        server_yaml: &str,
        database: Option<&str>,
    ) -> anyhow::Result<Self> {
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
            "greg-rig-{name}-{}-{}",
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
        let database = match database {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}", dir.join("greg.db").display()),
        };
        let yaml = tester_config_yaml(&github.url, &jenkins.url, &database, &opts)
            .replace(
                "listen: 127.0.0.1:0",
                &format!("listen: 127.0.0.1:{port}\n  public_url: http://127.0.0.1:{port}"),
            )
            .replacen("server:\n", &format!("server:\n{server_yaml}"), 1);
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
            log: dir.join("greg.log"),
            dir,
            database,
            config,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            port,
        })
    }

    /// Starts `greg serve` and waits until `/healthz` answers.
    pub async fn start_greg(&self) -> anyhow::Result<Greg> {
        self.spawn(&self.config, &self.log, self.port, None).await
    }

    /// Runs `greg serve --config config`, logging to `log`, named `hostname` as a lease holder
    /// when given; waits until `/healthz` answers on `port`.
    async fn spawn(
        &self,
        config: &std::path::Path,
        log: &std::path::Path,
        port: u16,
        hostname: Option<&str>,
    ) -> anyhow::Result<Greg> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_greg"));
        command
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("GREG_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(name) = hostname {
            command.env("HOSTNAME", name);
        }
        let greg = Greg {
            child: command.spawn()?,
            url: format!("http://127.0.0.1:{port}"),
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

    pub fn log_text(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        for i in 0..8 {
            if let Ok(t) = std::fs::read_to_string(self.dir.join(format!("greg-{i}.log"))) {
                text.push_str(&format!("\n===== replica {i} =====\n{t}"));
            }
        }
        text
    }

    /// Starts replica `i` of greg: the rig's configuration listening on a port of its own
    /// (its `public_url`, where Jenkins sends callbacks, stays the rig's port: put a
    /// [`Balancer`] there), logging to `greg-<i>.log`; waits until `/healthz` answers.
    pub async fn start_replica(&self, i: usize) -> anyhow::Result<Greg> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let yaml = std::fs::read_to_string(&self.config)?.replace(
            &format!("listen: 127.0.0.1:{}", self.port),
            &format!("listen: 127.0.0.1:{port}"),
        );
        let config = self.dir.join(format!("config-{i}.yaml"));
        std::fs::write(&config, yaml)?;
        let log = self.dir.join(format!("greg-{i}.log"));
        self.spawn(&config, &log, port, Some(&format!("replica-{i}")))
            .await
    }

    /// Runs `greg` with `args` and this rig's configuration; returns (exit code, stdout, stderr).
    pub fn greg(&self, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
        let out = Command::new(env!("CARGO_BIN_EXE_greg"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("GREG_CONFIG")
            .env("RUST_LOG", "warn")
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// Posts a comment as `author` and delivers its webhook; checks the 202.
    pub async fn comment(
        &self,
        greg: &Greg,
        pr: PrNumber,
        author: &str,
        body: &str,
    ) -> anyhow::Result<()> {
        let c = self.world.comment(&self.repo, pr, author, body)?;
        self.send(greg, self.world.comment_webhook(&self.repo, &c)?)
            .await
    }

    /// carol's pull request from `feature` (head `fake_sha("feature-1")`), no webhook sent.
    pub fn open_pr(&self) -> anyhow::Result<PrNumber> {
        Ok(self
            .world
            .open_pr(
                &self.repo,
                NewPr::new("carol", "feature", fake_sha("feature-1")),
            )?
            .number)
    }

    /// The bodies of greg's comments on `pr`, oldest first.
    pub fn bot_comments(&self, pr: PrNumber) -> Vec<String> {
        self.world
            .bot_comments(&self.repo, pr)
            .into_iter()
            .map(|c| c.body)
            .collect()
    }

    /// Waits (at most 30 s) until greg has posted `n` comments on `pr`.
    pub async fn wait_comments(&self, pr: PrNumber, n: usize) -> anyhow::Result<()> {
        for _ in 0..1500 {
            if self.bot_comments(pr).len() >= n {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!(
            "greg posted {} comments, not {n}; log: {}",
            self.bot_comments(pr).len(),
            self.log_text()
        )
    }

    pub async fn send(
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

    pub fn branch(&self, name: &str) -> Option<Sha> {
        self.world.branch(&self.repo, name)
    }

    pub fn status(&self, sha: &Sha, context: &str) -> Option<CommitState> {
        self.world
            .latest_status(&self.repo, sha, context)
            .map(|s| s.state)
    }

    /// carol's pull request from `feature`, test build green, approved by bob.
    pub async fn approved_pr(&self, greg: &Greg) -> anyhow::Result<(PrNumber, Sha)> {
        self.approved_pr_on(greg, "feature").await
    }

    /// carol's pull request from `branch` (head `fake_sha("<branch>-1")`), its test build
    /// finished green, approved by bob. Ready for "@greg please" from alice.
    pub async fn approved_pr_on(
        &self,
        greg: &Greg,
        branch: &str,
    ) -> anyhow::Result<(PrNumber, Sha)> {
        let head = fake_sha(&format!("{branch}-1"));
        let pr = self
            .world
            .open_pr(&self.repo, NewPr::new("carol", branch, head.clone()))?
            .number;
        self.send(
            greg,
            self.world.pull_request_webhook(&self.repo, pr, "opened")?,
        )
        .await?;
        let commit = head.to_string();
        let build = self
            .world
            .wait_for("the test build", WAIT, |s| {
                s.jenkins
                    .jobs
                    .values()
                    .flat_map(|j| j.builds.values())
                    .find(|b| {
                        b.building
                            && b.job.as_str() == TEST_JOB
                            && b.param("COMMIT") == Some(commit.as_str())
                    })
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

    pub async fn please(&self, greg: &Greg, pr: PrNumber) -> anyhow::Result<()> {
        self.comment(greg, pr, "alice", "@greg please").await
    }

    /// The running merge builds.
    pub fn running_merges(&self) -> Vec<FakeBuild> {
        self.world
            .read(|s| running_merge_builds(s).cloned().collect())
    }

    /// The first running merge build, once Jenkins has one (waits up to [`WAIT`]).
    pub async fn running_merge_build(&self) -> anyhow::Result<FakeBuild> {
        self.world
            .wait_for("the merge build", WAIT, |s| {
                running_merge_builds(s).next().cloned()
            })
            .await
    }

    /// Finishes the running merge build green (as Jenkins would), once Jenkins has one.
    pub async fn finish_merge_build(&self) -> anyhow::Result<()> {
        let build = self.running_merge_build().await?;
        self.world
            .finish_build(build.job.as_str(), build.number, BuildOutcome::Success)?;
        Ok(())
    }

    /// Arms `step`'s hold, says `please` on `pr` through `greg`, finishes the merge build when
    /// the step comes after it, and waits until greg is blocked on the held request. Returns
    /// the hold, for `World::release`.
    pub async fn please_until_held(
        &self,
        greg: &Greg,
        pr: PrNumber,
        step: MergeStep,
    ) -> anyhow::Result<u64> {
        let hold = self
            .world
            .hold_next(step.server, step.method, step.path, step.mode)?;
        self.please(greg, pr).await?;
        if step.after_build {
            self.finish_merge_build().await?;
        }
        self.world.wait_held(hold, WAIT).await?;
        Ok(hold)
    }

    /// Finishes merge builds green (as Jenkins would) until the pull request is merged.
    pub async fn drive_to_landing(&self, pr: PrNumber) -> anyhow::Result<()> {
        self.drive_all_to_landing(&[pr]).await
    }

    /// Finishes merge builds green (as Jenkins would) until every pull request of `prs` is
    /// merged with its "Merged" comment, no staging ref is left and no merge build runs.
    pub async fn drive_all_to_landing(&self, prs: &[PrNumber]) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let merged = prs.iter().all(|pr| {
                self.world.pull_request(&self.repo, *pr).map(|p| p.state)
                    == Some(PullRequestState::Merged)
            });
            let staging_gone = newest_staging_ref(&self.world, &self.repo).is_none();
            let comment = prs.iter().all(|pr| self.merged_comments(*pr) > 0);
            if merged && staging_gone && comment && self.running_merges().is_empty() {
                return Ok(());
            }
            for b in self.running_merges() {
                self.world
                    .finish_build(b.job.as_str(), b.number, BuildOutcome::Success)?;
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "the pull requests did not land (merged {merged}, staging refs gone {staging_gone}, comments {comment}); log:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// See [`assert_pipeline_outcome`], with no pull request expected to fail.
    pub fn assert_all_landed_exactly_once(&self, good: &[(PrNumber, Sha)], start: &Sha) {
        assert_pipeline_outcome(&self.world, &self.repo, good, &[], start);
    }

    pub fn merged_comments(&self, pr: PrNumber) -> usize {
        merged_comments(&self.world, &self.repo, pr)
    }

    /// The outcome every crash test must show: master moved exactly once, to a staging commit
    /// that merges the approved head and whose merge build was green; no staging ref left.
    pub fn assert_landed_exactly_once(&self, pr: PrNumber, head: &Sha, start: &Sha) {
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

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest staging ref of master's merge queue (the highest candidate number), if any.
pub fn newest_staging_ref(
    world: &greg_testkit::World,
    repo: &greg_core::RepoName,
) -> Option<greg_core::Sha> {
    world.newest_branch_under(repo, STAGING)
}

/// The commits of the merge builds that Jenkins finished `SUCCESS` (their `COMMIT`).
pub fn green_merge_commits(world: &World) -> Vec<Sha> {
    world.read(|s| {
        s.jenkins
            .jobs
            .values()
            .flat_map(|j| j.builds.values())
            .filter(|b| b.job.as_str() == MERGE_JOB && b.result == Some(BuildOutcome::Success))
            .filter_map(|b| Sha::parse(b.param("COMMIT")?).ok())
            .collect()
    })
}

pub fn is_ancestor(world: &World, repo: &RepoName, ancestor: &Sha, descendant: &Sha) -> bool {
    world.read(|s| {
        s.github
            .repos
            .get(repo)
            .is_some_and(|r| r.is_ancestor(ancestor, descendant))
    })
}

pub fn parents(world: &World, repo: &RepoName, commit: &Sha) -> Vec<Sha> {
    world.read(|s| {
        s.github
            .repos
            .get(repo)
            .and_then(|r| r.commits.get(commit))
            .map_or_else(Vec::new, |c| c.parents.clone())
    })
}

/// The heads merged into the target between `start` and `tip`: the second parents of the
/// merge commits on the first-parent line from `tip` down to `start`, oldest first.
pub fn merged_heads(world: &World, repo: &RepoName, start: &Sha, tip: &Sha) -> Vec<Sha> {
    let mut heads = Vec::new();
    let mut at = tip.clone();
    while &at != start {
        let parents = parents(world, repo, &at);
        let Some(first) = parents.first().cloned() else {
            break;
        };
        heads.extend(parents.into_iter().skip(1));
        at = first;
    }
    heads.reverse();
    heads
}

/// The "Merged" comments greg posted on `pr`.
pub fn merged_comments(world: &World, repo: &RepoName, pr: PrNumber) -> usize {
    world
        .bot_comments(repo, pr)
        .iter()
        .filter(|c| c.body.contains("Merged"))
        .count()
}

/// The outcome every pipeline crash or fault run must show, for pull requests (number, head)
/// all approved on master at `start`: master only ever moved by fast-forward, to commits
/// whose merge build was green and that contain no bad head; its tip merges every good head
/// exactly once, in queue order; each good pull request is merged, with a green merge status
/// and one "Merged" comment; each bad one is open, with a failed merge status and no "Merged"
/// comment; no staging ref is left behind.
pub fn assert_pipeline_outcome(
    world: &World,
    repo: &RepoName,
    good: &[(PrNumber, Sha)],
    bad: &[(PrNumber, Sha)],
    start: &Sha,
) {
    let history = world.branch_history(repo, "master");
    let green = green_merge_commits(world);
    assert_eq!(history.first(), Some(start), "{history:#?}");
    for pair in history.windows(2) {
        assert!(
            is_ancestor(world, repo, &pair[0], &pair[1]),
            "master only fast-forwards: {history:#?}"
        );
    }
    for tip in history.iter().skip(1) {
        assert!(
            green.contains(tip),
            "master pointed at {tip}, which no merge build passed: {history:#?}"
        );
        for (pr, head) in bad {
            assert!(
                !is_ancestor(world, repo, head, tip),
                "#{pr}'s breaking head reached master at {tip}"
            );
        }
    }
    let master = world.branch(repo, "master").expect("master");
    assert_eq!(history.last(), Some(&master));
    let heads: Vec<Sha> = good.iter().map(|(_, h)| h.clone()).collect();
    assert_eq!(
        merged_heads(world, repo, start, &master),
        heads,
        "master merges every good head once, in queue order"
    );
    assert_eq!(
        world.branches_under(repo, STAGING),
        Vec::<(String, Sha)>::new(),
        "no staging ref left behind"
    );
    let merge_status = |head: &Sha| {
        world
            .latest_status(repo, head, "greg/merge")
            .map(|s| s.state)
    };
    for (pr, head) in good {
        assert_eq!(
            world.pull_request(repo, *pr).map(|p| p.state),
            Some(PullRequestState::Merged),
            "#{pr}"
        );
        assert_eq!(merge_status(head), Some(CommitState::Success), "#{pr}");
        assert_eq!(
            merged_comments(world, repo, *pr),
            1,
            "#{pr}: one 'Merged' comment"
        );
    }
    for (pr, head) in bad {
        assert_eq!(
            world.pull_request(repo, *pr).map(|p| p.state),
            Some(PullRequestState::Open),
            "#{pr}"
        );
        assert_eq!(merge_status(head), Some(CommitState::Failure), "#{pr}");
        assert_eq!(merged_comments(world, repo, *pr), 0, "#{pr} never lands");
    }
}

/// A TCP load balancer in front of greg replicas, as nginx or HAProxy would stand: each
/// connection goes to the next backend in turn; a backend that refuses the connection (it
/// died) is skipped for the next one. Runs until dropped.
pub struct Balancer {
    backends: std::sync::Arc<std::sync::Mutex<Vec<std::net::SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Listens on `port` (the rig's port: its `public_url`) with no backend yet.
    pub async fn start(port: u16) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let backends = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shared = backends.clone();
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            while let Ok((mut inbound, _)) = listener.accept().await {
                let list: Vec<std::net::SocketAddr> =
                    shared.lock().map(|b| b.clone()).unwrap_or_default();
                next = next.wrapping_add(1);
                tokio::spawn(async move {
                    for k in 0..list.len() {
                        let addr = list[(next + k) % list.len()];
                        let connect = tokio::time::timeout(
                            Duration::from_millis(500),
                            tokio::net::TcpStream::connect(addr),
                        );
                        if let Ok(Ok(mut outbound)) = connect.await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Ok(Self { backends, task })
    }

    /// Sends connections to `greg` too.
    pub fn add(&self, greg: &Greg) -> anyhow::Result<()> {
        let addr: std::net::SocketAddr = greg.url.trim_start_matches("http://").parse()?;
        if let Ok(mut b) = self.backends.lock() {
            b.push(addr);
        }
        Ok(())
    }

    /// Stops sending connections to `greg` (taken out of rotation, as a health check would).
    pub fn remove(&self, greg: &Greg) {
        let addr = greg.url.trim_start_matches("http://");
        if let Ok(mut b) = self.backends.lock() {
            b.retain(|a| a.to_string() != addr);
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
