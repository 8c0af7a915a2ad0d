//! The Bitbucket side of `greg demo --provider bitbucket-cloud|bitbucket-server`: greg
//! configured with `providers.bitbucket` (`flavor: cloud` or `server`) against the fake
//! Bitbucket of that flavor and the fake Jenkins of greg-testkit, over one world, on loopback.

use greg_core::{CommitState, Permission, PrNumber, RepoName, Sha};
use greg_engine::{Engine, EngineOptions, SystemClock};
use greg_testkit::tester::{MERGE_JOB, TEST_JOB};
use greg_testkit::{
    BitbucketDelivery, BitbucketFlavor as Flavor, FakeBitbucketCloud, FakeBitbucketServer,
    FakeJenkins, GREG_PARAMETERS, NewPr, Outcome, World,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `?token=` of `/repo?provider=bitbucket`.
const INCOMING_TOKEN: &str = "bb-incoming";
/// The webhook secret deliveries are signed with (`X-Hub-Signature`).
const HOOK_SECRET: &str = "bitbucket hook secret";
/// The bot's app password / HTTP access token.
const API_PASSWORD: &str = "bb-api-token";
/// `?token=` of `/build?builder=jenkins`.
const JENKINS_TOKEN: &str = "jk-incoming";

/// greg, a fake Bitbucket of one flavor and a fake Jenkins.
pub(super) struct BitbucketSide {
    pub flavor: Flavor,
    pub world: World,
    pub repo: RepoName,
    pub engine: Engine,
    /// greg's base URL.
    pub url: String,
    /// The fake Bitbucket's base URL.
    pub bitbucket_url: String,
    /// The fake Jenkins' base URL.
    pub jenkins_url: String,
    client: reqwest::Client,
    database: PathBuf,
    /// Requests already printed: to Bitbucket, to Jenkins.
    seen: (usize, usize),
    /// Comments of greg already read, per pull request.
    read: std::collections::HashMap<PrNumber, usize>,
    /// The requests greg made while starting.
    pub startup_calls: Vec<super::Call>,
    _fake: Box<dyn std::any::Any>,
    _jenkins: FakeJenkins,
}

impl BitbucketSide {
    /// Starts the fakes, then greg (its HTTP server runs until the process ends). The fake
    /// Jenkins builds run to the outcome the demo scripts.
    pub async fn start(flavor: Flavor) -> anyhow::Result<Self> {
        let world = World::new("greg-bot");
        let (fake, bitbucket_url, repo, source): (Box<dyn std::any::Any>, _, _, _) = match flavor {
            Flavor::Cloud => {
                let f = FakeBitbucketCloud::start(world.clone())?;
                let url = f.url.clone();
                (
                    Box::new(f),
                    url,
                    RepoName::new("acme", "demo"),
                    "git@bitbucket.org:",
                )
            }
            Flavor::Server => {
                let f = FakeBitbucketServer::start(world.clone())?;
                let url = f.url.clone();
                (
                    Box::new(f),
                    url,
                    RepoName::new("ACME", "demo"),
                    "ssh://git@bitbucket.example.com:7999/",
                )
            }
        };
        let jenkins = FakeJenkins::start(world.clone())?;
        let bb = world.bitbucket();
        bb.set_password(Some(API_PASSWORD));
        bb.create_repo(&repo)?;
        world.create_job(TEST_JOB, GREG_PARAMETERS)?;
        world.create_job(MERGE_JOB, GREG_PARAMETERS)?;
        world.set_jenkins_credentials(Some(("greg", "jenkins-api-token")));
        world.script_outcome(TEST_JOB, None, Outcome::Manual);
        world.script_outcome(MERGE_JOB, None, Outcome::Manual);
        let database = temp_database();
        let yaml = config_yaml(
            flavor,
            &bitbucket_url,
            &jenkins.url,
            &database,
            &repo,
            source,
        );
        let config = greg_config::Config::from_yaml_str(&yaml, &|_| None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let options = EngineOptions {
            poll_interval: Duration::from_secs(3600),
            completed_grace: Duration::from_secs(3600),
            ..EngineOptions::default()
        };
        let engine =
            greg_server::wiring::start_engine(config, Arc::new(SystemClock), options).await?;
        engine.wait_idle().await;
        let (server, addr) = greg_server::bind(engine.clone(), "127.0.0.1:0", Some(1))?;
        tokio::spawn(server);
        let url = format!("http://{addr}");
        world.set_notification_url(Some(&format!(
            "{url}/build?builder=jenkins&token={JENKINS_TOKEN}"
        )));
        let jenkins_url = jenkins.url.clone();
        let mut side = Self {
            flavor,
            world,
            repo,
            engine,
            url,
            bitbucket_url,
            jenkins_url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            database,
            seen: (0, 0),
            read: std::collections::HashMap::new(),
            startup_calls: Vec::new(),
            _fake: fake,
            _jenkins: jenkins,
        };
        // What greg asked at start (Cloud: whose credentials these are) is shown in the
        // header, not in the first step.
        side.startup_calls = side.new_calls();
        Ok(side)
    }

    /// `cloud` or `server`, as config.yaml says.
    pub fn flavor_name(&self) -> &'static str {
        match self.flavor {
            Flavor::Cloud => "Cloud",
            Flavor::Server => "Server",
        }
    }

    /// Sends a delivery as Bitbucket would (token, signature); status and answer.
    pub async fn send(&self, d: &BitbucketDelivery) -> anyhow::Result<(u16, String)> {
        let url = format!(
            "{}/repo?provider=bitbucket&token={INCOMING_TOKEN}",
            self.url
        );
        let resp = d.send(&self.client, &url, Some(HOOK_SECRET)).await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }

    /// Waits until greg has processed everything and the fake Jenkins is quiet.
    pub async fn settle(&self) -> anyhow::Result<()> {
        for _ in 0..200 {
            self.world.settle(Duration::from_secs(30)).await?;
            self.engine.wait_idle().await;
            self.world.settle(Duration::from_secs(30)).await?;
            if self.engine.is_idle() {
                return Ok(());
            }
        }
        anyhow::bail!("greg and the fake Jenkins never settled")
    }

    pub fn set_permission(&self, login: &str, p: Permission) -> anyhow::Result<()> {
        Ok(self
            .world
            .bitbucket()
            .set_permission(&self.repo, login, p)?)
    }

    /// `author` pushes `head` to `branch`; the delivery.
    pub fn push_branch(
        &self,
        branch: &str,
        head: &Sha,
        author: &str,
    ) -> anyhow::Result<BitbucketDelivery> {
        let bb = self.world.bitbucket();
        let before = bb.push_branch(&self.repo, branch, head)?;
        Ok(bb.push_webhook(self.flavor, &self.repo, branch, before.as_ref(), author)?)
    }

    /// `author` opens a pull request from `branch` at `head`; its number and the delivery.
    pub fn open_pr(
        &self,
        author: &str,
        branch: &str,
        head: &Sha,
        title: &str,
    ) -> anyhow::Result<(PrNumber, BitbucketDelivery)> {
        let bb = self.world.bitbucket();
        let pr = bb.open_pr(
            &self.repo,
            NewPr::new(author, branch, head.clone()).title(title),
        )?;
        let event = match self.flavor {
            Flavor::Cloud => "pullrequest:created",
            Flavor::Server => "pr:opened",
        };
        let d = bb.pull_request_webhook(self.flavor, &self.repo, pr.id, event, None)?;
        Ok((pr.id, d))
    }

    pub fn comment(
        &self,
        pr: PrNumber,
        author: &str,
        body: &str,
    ) -> anyhow::Result<BitbucketDelivery> {
        let bb = self.world.bitbucket();
        let c = bb.comment(&self.repo, pr, author, body)?;
        Ok(bb.comment_webhook(self.flavor, &self.repo, &c)?)
    }

    pub fn approve(&self, pr: PrNumber, reviewer: &str) -> anyhow::Result<BitbucketDelivery> {
        let bb = self.world.bitbucket();
        bb.approve(&self.repo, pr, reviewer)?;
        Ok(bb.review_webhook(self.flavor, &self.repo, pr, reviewer)?)
    }

    /// The state of greg's build status `key` on `sha`.
    pub fn status(&self, sha: &Sha, key: &str) -> Option<CommitState> {
        self.world
            .bitbucket()
            .status(&self.repo, sha, key)
            .and_then(|s| s.commit_state())
    }

    /// The next comment greg posted on `pr` that the demo has not shown.
    pub fn next_comment(&mut self, pr: PrNumber) -> anyhow::Result<String> {
        let comments = self.world.bitbucket().bot_comments(&self.repo, pr);
        let read = self.read.entry(pr).or_insert(0);
        let c = comments
            .get(*read)
            .ok_or_else(|| anyhow::anyhow!("greg posted no further comment on #{pr}"))?;
        *read += 1;
        Ok(c.text.clone())
    }

    /// The requests greg made since the last call: Bitbucket's first, then Jenkins' (the two
    /// fakes keep separate logs, so the order across them is not known).
    pub fn new_calls(&mut self) -> Vec<super::Call> {
        let name = match self.flavor {
            Flavor::Cloud => "Bitbucket Cloud ",
            Flavor::Server => "Bitbucket Server",
        };
        let bitbucket = self.world.bitbucket().requests();
        let jenkins = self.world.requests();
        let mut calls: Vec<super::Call> = bitbucket
            .iter()
            .skip(self.seen.0)
            .map(|r| super::Call {
                server: name,
                method: r.method.clone(),
                path: r.path.clone(),
                status: r.status,
                json: r.json.clone(),
            })
            .collect();
        calls.extend(jenkins.iter().skip(self.seen.1).map(|r| super::Call {
            server: "Jenkins         ",
            method: r.method.clone(),
            path: r.path.clone(),
            status: r.status,
            json: r.json.clone(),
        }));
        self.seen = (bitbucket.len(), jenkins.len());
        calls
    }

    /// Checks every comment of greg was shown, and removes the demo's database.
    pub async fn finish(self) -> anyhow::Result<()> {
        self.settle().await?;
        let prs: Vec<PrNumber> = self.world.read(|s| {
            s.bitbucket
                .repos
                .values()
                .flat_map(|r| r.pulls.keys().map(|n| PrNumber(*n)))
                .collect()
        });
        for pr in prs {
            let n = self.world.bitbucket().bot_comments(&self.repo, pr).len();
            let read = self.read.get(&pr).copied().unwrap_or(0);
            anyhow::ensure!(
                n <= read,
                "greg posted {} unshown comment(s) on #{pr}",
                n - read
            );
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.database.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }
}

/// A fresh SQLite file in the temporary directory.
fn temp_database() -> PathBuf {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("greg-demo-{}-{n}.db", std::process::id()))
}

/// The configuration greg runs with in the demo: Bitbucket of `flavor` at `api_url`, Jenkins
/// at `jenkins_url`, one repository in merge_mode builder.
fn config_yaml(
    flavor: Flavor,
    api_url: &str,
    jenkins_url: &str,
    database: &std::path::Path,
    repo: &RepoName,
    source: &str,
) -> String {
    let flavor = match flavor {
        Flavor::Cloud => "cloud",
        Flavor::Server => "server",
    };
    format!(
        r#"server:
  listen: 127.0.0.1:0
  database: sqlite://{database}
  bot_name: greg
  build_poll_after_secs: 1
providers:
  bitbucket:
    flavor: {flavor}
    username: greg-bot
    password: {API_PASSWORD}
    incoming_token: {INCOMING_TOKEN}
    webhook_secret: "{HOOK_SECRET}"
    source: "{source}"
    api_url: {api_url}
builders:
  jenkins:
    url: {jenkins_url}
    username: greg
    password: jenkins-api-token
    incoming_token: {JENKINS_TOKEN}
repos:
  - provider: bitbucket
    organizations: ["{owner}"]
    names: ["{name}"]
    jobs:
      test: {{name: {TEST_JOB}, builder: jenkins}}
      merge: {{name: {MERGE_JOB}, builder: jenkins}}
"#,
        database = database.display(),
        owner = repo.owner,
        name = repo.name,
    )
}
