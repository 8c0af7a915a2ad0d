//! `GregTester`: the end-to-end harness. It runs the real greg (config, store, engine, HTTP
//! server) against the fake GitHub and fake Jenkins, and speaks in domain verbs: `open_pr`,
//! `push_to_pr`, `post_comment`, `approve`, `finish_build`. Every verb sends the delivery the
//! vendor would send, then waits until greg and the fake Jenkins are quiet, so a test reads as
//! "state of the world, act, check outcomes".
//!
//! Unread side effects fail the test: every comment greg posts must be taken with
//! [`GregTester::expect_comment`] before [`GregTester::finish`], and every request greg sent to
//! the fake GitHub must validate against GitHub's OpenAPI description.

use crate::{
    Comment, FakeBuild, FakeGithub, FakeJenkins, GREG_PARAMETERS, NewPr, OpenApi, Outcome, Status,
    WebhookDelivery, World, fake_sha,
};
use anyhow::{Context as _, anyhow, bail};
use greg_core::{BuildNumber, BuildOutcome, Permission, PrNumber, RepoName, Sha};
use greg_engine::{Clock, Engine, EngineOptions, ManualClock, SystemClock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The incoming token for `/repo?provider=github`.
pub const GITHUB_TOKEN: &str = "gh-incoming";
/// The webhook secret greg verifies `X-Hub-Signature-256` with.
pub const WEBHOOK_SECRET: &str = "It's a Secret to Everybody";
/// The incoming token for `/build?builder=jenkins`.
pub const JENKINS_TOKEN: &str = "jk-incoming";
/// The OAuth app's client id with [`TesterOptions::sign_in`].
pub const OAUTH_CLIENT_ID: &str = "greg-oauth-client";
/// The OAuth app's client secret with [`TesterOptions::sign_in`]: never shown by greg.
pub const OAUTH_CLIENT_SECRET: &str = "oauth-client-secret-never-shown";
/// `server.session_secret` with [`TesterOptions::sign_in`]: never shown by greg.
pub const SESSION_SECRET: &str = "session-secret-never-shown-0123456789abcdef";
/// The test job and the merge job of the default repository.
pub const TEST_JOB: &str = "demo-test";
/// See [`TEST_JOB`].
pub const MERGE_JOB: &str = "demo-merge";

/// How to start a [`GregTester`].
#[derive(Debug, Clone)]
pub struct TesterOptions {
    /// The repository greg is configured for (created in the world).
    pub repo: RepoName,
    /// `server.database`; `None`: a fresh SQLite file in the temp directory.
    pub database: Option<String>,
    /// Extra YAML lines appended to the repository's entry in `repos[]` (indented 4 spaces).
    pub repo_yaml: String,
    /// Engine tunables (poll interval and so on).
    pub engine: EngineOptions,
    /// `server.build_poll_after_secs`.
    pub build_poll_after_secs: u64,
    /// `server.build_timeout_secs`; `None`: greg's default (2 hours).
    pub build_timeout_secs: Option<u64>,
    /// The engine's clock; `None`: the system clock. Give a [`ManualClock`] to move greg's
    /// time with [`GregTester::advance`] (build polling and timeouts) without sleeping; keep the
    /// same options (clones share the clock) when restarting greg.
    pub clock: Option<ManualClock>,
    /// Further `organizations` of the repository's entry, after `repo.owner` (for deliveries
    /// of repositories the world does not hold, such as the vendor fixtures).
    pub extra_organizations: Vec<String>,
    /// Further `names` of the repository's entry, after `repo.name`: exact names or `/regex/`.
    pub extra_names: Vec<String>,
    /// Sign-in (SPEC §9): `providers.github.oauth` with [`OAUTH_CLIENT_ID`] and
    /// [`OAUTH_CLIENT_SECRET`], `web_url` the fake GitHub (which knows the app), and
    /// `server.session_secret` [`SESSION_SECRET`].
    pub sign_in: bool,
    /// `server.public_pages`.
    pub public_pages: bool,
}

impl Default for TesterOptions {
    fn default() -> Self {
        Self {
            repo: RepoName::new("acme", "demo"),
            database: None,
            repo_yaml: String::new(),
            engine: EngineOptions {
                poll_interval: Duration::from_secs(3600),
                completed_grace: Duration::from_secs(3600),
                max_attempts: 3,
                retry_delay: Duration::from_millis(20),
                effect_tick: Duration::from_millis(50),
                report_lease: Duration::from_secs(2),
                report_sweep: Duration::from_millis(200),
                report_debounce: Duration::ZERO,
                claim_interval: Duration::from_millis(100),
            },
            build_poll_after_secs: 1,
            build_timeout_secs: None,
            clock: None,
            extra_organizations: Vec::new(),
            extra_names: Vec::new(),
            sign_in: false,
            public_pages: false,
        }
    }
}

/// greg, a fake GitHub and a fake Jenkins, wired together on loopback.
pub struct GregTester {
    /// The in-memory world behind both fakes.
    pub world: World,
    /// The fake GitHub (shared, so it survives a greg restart).
    pub github: Arc<FakeGithub>,
    /// The fake Jenkins.
    pub jenkins: Arc<FakeJenkins>,
    /// The running engine.
    pub engine: Engine,
    /// greg's base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The configured repository.
    pub repo: RepoName,
    /// The database URL greg runs on (reuse it to restart greg on the same store).
    pub database: String,
    client: reqwest::Client,
    server: actix_web::dev::ServerHandle,
    read_comments: HashMap<PrNumber, usize>,
    clock: Option<ManualClock>,
    finished: bool,
}

/// The configuration greg runs with under test.
pub fn tester_config_yaml(
    github_url: &str,
    jenkins_url: &str,
    database: &str,
    opts: &TesterOptions,
) -> String {
    format!(
        r#"server:
  listen: 127.0.0.1:0
  database: {database}
  bot_name: greg
  build_poll_after_secs: {poll}
{timeout}{server_extra}providers:
  github:
    username: greg-bot
    password: gh-api-token
    incoming_token: {GITHUB_TOKEN}
    webhook_secret: "{WEBHOOK_SECRET}"
    source: "git@github.com:"
    api_url: {github_url}
{github_extra}builders:
  jenkins:
    url: {jenkins_url}
    username: greg
    password: jenkins-api-token
    incoming_token: {JENKINS_TOKEN}
repos:
  - provider: github
    organizations: [{owners}]
    names: [{names}]
    jobs:
      test: {{name: {TEST_JOB}, builder: jenkins}}
      merge: {{name: {MERGE_JOB}, builder: jenkins}}
{extra}"#,
        poll = opts.build_poll_after_secs,
        timeout = opts
            .build_timeout_secs
            .map(|t| format!("  build_timeout_secs: {t}\n"))
            .unwrap_or_default(),
        owners = yaml_list(opts.repo.owner.as_str(), &opts.extra_organizations),
        names = yaml_list(opts.repo.name.as_str(), &opts.extra_names),
        extra = opts.repo_yaml,
        server_extra = server_extra(opts),
        github_extra = if opts.sign_in {
            format!(
                "    web_url: {github_url}\n    oauth: {{client_id: {OAUTH_CLIENT_ID}, \
                 client_secret: {OAUTH_CLIENT_SECRET}}}\n"
            )
        } else {
            String::new()
        },
    )
}

/// The `server:` lines of [`TesterOptions::sign_in`] and [`TesterOptions::public_pages`].
fn server_extra(opts: &TesterOptions) -> String {
    let mut lines = String::new();
    if opts.sign_in {
        lines.push_str(&format!("  session_secret: {SESSION_SECRET}\n"));
    }
    if opts.public_pages {
        lines.push_str("  public_pages: true\n");
    }
    lines
}

/// `first, extra...` for a YAML flow sequence, each item double-quoted (names may be `/regex/`).
fn yaml_list(first: &str, extra: &[String]) -> String {
    std::iter::once(first)
        .chain(extra.iter().map(String::as_str))
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn temp_database() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = std::env::temp_dir().join(format!("greg-test-{}-{n}.db", std::process::id()));
    format!("sqlite://{}", path.display())
}

impl GregTester {
    /// Starts the fakes and greg with the default options.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(TesterOptions::default()).await
    }

    /// Starts the fakes and greg.
    pub async fn start_with(opts: TesterOptions) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        // Logs under test: RUST_LOG=greg_engine=debug cargo test ... shows greg's side.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let world = World::new("greg-bot");
        let github = Arc::new(FakeGithub::start(world.clone())?);
        let jenkins = Arc::new(FakeJenkins::start(world.clone())?);
        world.create_repo(&opts.repo)?;
        if opts.sign_in {
            world.set_oauth_app(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET);
        }
        world.create_job(TEST_JOB, GREG_PARAMETERS)?;
        world.create_job(MERGE_JOB, GREG_PARAMETERS)?;
        world.set_jenkins_credentials(Some(("greg", "jenkins-api-token")));
        // Builds run until the test finishes them (finish_build), unless a test scripts otherwise.
        world.script_outcome(TEST_JOB, None, Outcome::Manual);
        world.script_outcome(MERGE_JOB, None, Outcome::Manual);
        let database = opts.database.clone().unwrap_or_else(temp_database);
        Self::start_greg(world, github, jenkins, database, opts).await
    }

    /// Starts greg (again) against existing fakes: a restart on the same store.
    pub async fn start_greg(
        world: World,
        github: Arc<FakeGithub>,
        jenkins: Arc<FakeJenkins>,
        database: String,
        opts: TesterOptions,
    ) -> anyhow::Result<Self> {
        let yaml = tester_config_yaml(&github.url, &jenkins.url, &database, &opts);
        let config =
            greg_config::Config::from_yaml_str(&yaml, &|_| None).map_err(|e| anyhow!("{e}"))?;
        let clock: Arc<dyn Clock> = match &opts.clock {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(SystemClock),
        };
        let engine = greg_server::wiring::start_engine(config, clock, opts.engine.clone()).await?;
        // Let the start-up reconciliation finish before the test changes the world, so tests
        // see it as a past event rather than racing with it.
        engine.wait_idle().await;
        let (server, addr) = greg_server::bind(engine.clone(), "127.0.0.1:0", Some(1))?;
        let handle = server.handle();
        tokio::spawn(server);
        let url = format!("http://{addr}");
        world.set_notification_url(Some(&format!(
            "{url}/build?builder=jenkins&token={JENKINS_TOKEN}"
        )));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            world,
            github,
            jenkins,
            engine,
            url,
            repo: opts.repo,
            database,
            client,
            server: handle,
            read_comments: HashMap::new(),
            clock: opts.clock.clone(),
            finished: false,
        })
    }

    /// Stops greg as a crash would: its HTTP server, and its store (connections and the
    /// SQLite serving lock); the fakes keep running. Returns the parts for a restart.
    pub async fn stop_greg(mut self) -> (World, Arc<FakeGithub>, Arc<FakeJenkins>, String) {
        self.finished = true;
        self.server.stop(true).await;
        // As a crash would: the store's connections and its serving lock go with the process.
        self.engine.store().close().await;
        (
            self.world.clone(),
            self.github.clone(),
            self.jenkins.clone(),
            self.database.clone(),
        )
    }

    /// The URL webhooks go to.
    pub fn repo_hook_url(&self) -> String {
        format!("{}/repo?provider=github&token={GITHUB_TOKEN}", self.url)
    }

    /// An HTTP client for raw requests.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a delivery, signed with the configured secret; returns status and body.
    pub async fn send(&self, delivery: &WebhookDelivery) -> anyhow::Result<(u16, String)> {
        let resp = delivery
            .send(&self.client, &self.repo_hook_url(), Some(WEBHOOK_SECRET))
            .await?;
        let status = resp.status().as_u16();
        let body = resp.text().await?;
        Ok((status, body))
    }

    /// Sends a delivery (built from the world, e.g. [`World::pull_request_webhook`]), checks
    /// greg accepted it (202 `accepted`), then settles.
    pub async fn deliver(&self, delivery: WebhookDelivery) -> anyhow::Result<()> {
        let (status, body) = self.send(&delivery).await?;
        if status != 202 || !body.starts_with("accepted") {
            bail!(
                "greg answered {status} {body:?} to the {} delivery",
                delivery.event
            );
        }
        self.settle().await
    }

    /// Waits until greg has processed everything and the fake Jenkins has nothing in flight.
    pub async fn settle(&self) -> anyhow::Result<()> {
        for _ in 0..200 {
            self.world.settle(Duration::from_secs(30)).await?;
            self.engine.wait_idle().await;
            if self.engine.has_pending_effects().await {
                // Effects waiting for their retry: the outbox ticker performs them.
                tokio::time::sleep(Duration::from_millis(25)).await;
                continue;
            }
            if self.engine.is_idle() && self.world.read(|s| s.jenkins.in_flight == 0) {
                return Ok(());
            }
        }
        bail!("greg and the fake Jenkins never settled")
    }

    /// Moves greg's [`ManualClock`] forward by `ms` milliseconds. Errors when the tester
    /// runs on the system clock ([`TesterOptions::clock`] is `None`).
    pub fn advance(&self, ms: i64) -> anyhow::Result<()> {
        let clock = self
            .clock
            .as_ref()
            .context("greg runs on the system clock; set TesterOptions::clock")?;
        clock.advance(ms);
        Ok(())
    }

    /// Has greg examine every active build now (follow queue items, poll builds that sent no
    /// callback for `build_poll_after_secs`, time out old ones), then settles.
    pub async fn poll_builds(&self) -> anyhow::Result<()> {
        self.engine.poll_builds().await;
        self.settle().await
    }

    /// greg with `merge_mode: staging` and the default options; alice and bob have write
    /// permission (they command and approve in the staging tests).
    pub async fn start_staging() -> anyhow::Result<Self> {
        let t = Self::start_with(TesterOptions {
            repo_yaml: "    merge_mode: staging\n".to_owned(),
            ..TesterOptions::default()
        })
        .await?;
        t.set_permission("alice", Permission::Write)?;
        t.set_permission("bob", Permission::Write)?;
        Ok(t)
    }

    /// carol opens a pull request from `branch`; its test build passes and bob approves it.
    /// Returns its number and head.
    pub async fn ready_pr(&self, branch: &str) -> anyhow::Result<(PrNumber, Sha)> {
        let (pr, head) = self.open_pr("carol", branch).await?;
        self.finish_build(TEST_JOB, BuildOutcome::Success).await?;
        self.approve(pr, "bob").await?;
        Ok((pr, head))
    }

    /// Opens a pull request from `head_ref` by `author`; returns its number and head.
    pub async fn open_pr(&self, author: &str, head_ref: &str) -> anyhow::Result<(PrNumber, Sha)> {
        let head = fake_sha(&format!("{head_ref}-1"));
        let pr = self
            .world
            .open_pr(&self.repo, NewPr::new(author, head_ref, head.clone()))?;
        self.deliver(
            self.world
                .pull_request_webhook(&self.repo, pr.number, "opened")?,
        )
        .await?;
        Ok((pr.number, head))
    }

    /// Pushes a new head (`seed` names it) to the pull request; returns the new head.
    pub async fn push_to_pr(&self, pr: PrNumber, seed: &str) -> anyhow::Result<Sha> {
        let head = fake_sha(seed);
        self.world.push_to_pr(&self.repo, pr, &head)?;
        self.deliver(
            self.world
                .pull_request_webhook(&self.repo, pr, "synchronize")?,
        )
        .await?;
        Ok(head)
    }

    /// Pushes `sha` to `branch` of the repository (a push webhook).
    pub async fn push_branch(&self, branch: &str, seed: &str) -> anyhow::Result<Sha> {
        let sha = fake_sha(seed);
        let before = self.world.push_branch(&self.repo, branch, &sha)?;
        self.deliver(
            self.world
                .push_webhook(&self.repo, branch, before.as_ref(), "alice")?,
        )
        .await?;
        Ok(sha)
    }

    /// Posts a comment as `author` (a person; give them a permission first).
    pub async fn post_comment(&self, pr: PrNumber, author: &str, body: &str) -> anyhow::Result<()> {
        let comment: Comment = self.world.comment(&self.repo, pr, author, body)?;
        self.deliver(self.world.comment_webhook(&self.repo, &comment)?)
            .await
    }

    /// A native APPROVED review on the current head by `reviewer`.
    pub async fn approve(&self, pr: PrNumber, reviewer: &str) -> anyhow::Result<()> {
        let review = self.world.approve(&self.repo, pr, reviewer)?;
        self.deliver(self.world.review_webhook(&self.repo, &review)?)
            .await
    }

    /// Gives `login` a permission on the repository.
    pub fn set_permission(&self, login: &str, permission: Permission) -> anyhow::Result<()> {
        self.world.set_permission(&self.repo, login, permission)?;
        Ok(())
    }

    /// The builds of `job`, oldest first.
    pub fn builds(&self, job: &str) -> Vec<FakeBuild> {
        self.world.builds(job)
    }

    /// The latest build of `job` that is still running.
    pub fn running_build(&self, job: &str) -> anyhow::Result<FakeBuild> {
        self.builds(job)
            .into_iter()
            .rev()
            .find(|b| b.building)
            .with_context(|| format!("no running build of {job}"))
    }

    /// Finishes the running build of `job` with `outcome` (Jenkins sends COMPLETED and
    /// FINALIZED), then settles.
    pub async fn finish_build(
        &self,
        job: &str,
        outcome: BuildOutcome,
    ) -> anyhow::Result<BuildNumber> {
        let build = self.running_build(job)?;
        self.world
            .finish_build(build.job.as_str(), build.number, outcome)?;
        self.settle().await?;
        Ok(build.number)
    }

    /// The latest commit status greg set on `sha` under `context` (`greg/test`, `greg/merge`).
    pub fn status(&self, sha: &Sha, context: &str) -> Option<Status> {
        self.world.latest_status(&self.repo, sha, context)
    }

    /// Takes the next comment greg posted on `pr` that the test has not read yet.
    pub fn expect_comment(&mut self, pr: PrNumber) -> anyhow::Result<String> {
        let comments = self.world.bot_comments(&self.repo, pr);
        let read = self.read_comments.entry(pr).or_insert(0);
        let c = comments
            .get(*read)
            .with_context(|| format!("greg posted no further comment on #{pr} ({read} read)"))?;
        *read += 1;
        Ok(c.body.clone())
    }

    /// Checks there is no unread greg comment on `pr`.
    pub fn expect_no_comment(&self, pr: PrNumber) -> anyhow::Result<()> {
        let n = self.world.bot_comments(&self.repo, pr).len();
        let read = self.read_comments.get(&pr).copied().unwrap_or(0);
        if n > read {
            bail!(
                "unexpected greg comment on #{pr}: {:?}",
                self.world.bot_comments(&self.repo, pr)[read].body
            );
        }
        Ok(())
    }

    /// Ends the test: fails on unread greg comments and on any request to the fake GitHub that
    /// GitHub's OpenAPI description would reject.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        self.finished = true;
        self.settle().await?;
        self.server.stop(true).await;
        let mut unread = Vec::new();
        let prs: Vec<PrNumber> = self.world.read(|s| {
            s.github
                .repos
                .values()
                .flat_map(|r| r.pulls.keys().map(|n| PrNumber(*n)))
                .collect()
        });
        for pr in prs {
            let n = self.world.bot_comments(&self.repo, pr).len();
            let read = self.read_comments.get(&pr).copied().unwrap_or(0);
            for c in self
                .world
                .bot_comments(&self.repo, pr)
                .iter()
                .skip(read.min(n))
            {
                unread.push(format!("#{pr}: {}", c.body));
            }
        }
        if !unread.is_empty() {
            bail!("unread greg comments:\n{}", unread.join("\n"));
        }
        let api = OpenApi::github_subset()?;
        let violations = self.github.validate_log(&api);
        if !violations.is_empty() {
            bail!("requests to the fake GitHub that GitHub would reject:\n{violations:#?}");
        }
        Ok(())
    }
}

impl Drop for GregTester {
    fn drop(&mut self) {
        // Not a panic: a test that fails with `?` drops the tester on its way out, and a panic
        // here would hide the real error.
        if !self.finished && !std::thread::panicking() {
            eprintln!("GregTester dropped without finish(): unread side effects were not checked");
        }
    }
}
