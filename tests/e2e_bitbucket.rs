//! End to end on Bitbucket: the Greg flow (test build on a new pull request with its status
//! relayed, "@greg ok", "@greg please" with merge_mode builder, the merge result relayed) on
//! Bitbucket Cloud and on Bitbucket Server, through the real greg server, against the fake
//! Bitbucket of each flavor and the fake Jenkins (greg-testkit, one world). Also: Cloud's
//! abbreviated heads are resolved before any status or build, a push of several branches is
//! several events, and deliveries with a bad `?token=` or signature are refused and not stored.

use greg_core::{BuildNumber, BuildOutcome, CommitState, Permission, PrNumber, RepoName, Sha};
use greg_engine::{Engine, EngineOptions, SystemClock};
use greg_testkit::{
    BitbucketDelivery, BitbucketFlavor as Flavor, FakeBitbucketCloud, FakeBitbucketServer,
    FakeBuild, FakeJenkins, GREG_PARAMETERS, NewPr, Outcome, World, fake_sha,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const TEST_JOB: &str = "demo-test";
const MERGE_JOB: &str = "demo-merge";
const INCOMING_TOKEN: &str = "bb-incoming";
const HOOK_SECRET: &str = "bitbucket hook secret";
const API_PASSWORD: &str = "bb-api-token";
const JENKINS_TOKEN: &str = "jk-incoming";

/// greg configured for one Bitbucket flavor (`provider: bitbucket`), a fake Bitbucket of that
/// flavor and a fake Jenkins, on loopback. Verbs act on the world, send the delivery Bitbucket
/// would send, and wait until greg and Jenkins are quiet.
struct Bb {
    flavor: Flavor,
    world: World,
    repo: RepoName,
    engine: Engine,
    url: String,
    client: reqwest::Client,
    server: actix_web::dev::ServerHandle,
    read_comments: HashMap<PrNumber, usize>,
    /// The fake Bitbucket, kept alive for the test.
    _fake: Box<dyn std::any::Any>,
    _jenkins: FakeJenkins,
    _dir: tempfile::TempDir,
}

impl Bb {
    async fn start(flavor: Flavor) -> anyhow::Result<Self> {
        Self::start_with(flavor, "", API_PASSWORD).await
    }

    /// Starts everything; `repo_yaml` is appended to the repository's `repos[]` entry, and
    /// the fake Bitbucket accepts `password` only (greg is configured with [`API_PASSWORD`]).
    async fn start_with(flavor: Flavor, repo_yaml: &str, password: &str) -> anyhow::Result<Self> {
        greg_testkit::install_crypto_provider();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let world = World::new("greg-bot");
        let (fake, api_url, repo, source): (Box<dyn std::any::Any>, _, _, _) = match flavor {
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
        bb.set_password(Some(password));
        bb.create_repo(&repo)?;
        world.create_job(TEST_JOB, GREG_PARAMETERS)?;
        world.create_job(MERGE_JOB, GREG_PARAMETERS)?;
        world.set_jenkins_credentials(Some(("greg", "jenkins-api-token")));
        world.script_outcome(TEST_JOB, None, Outcome::Manual);
        world.script_outcome(MERGE_JOB, None, Outcome::Manual);
        let dir = tempfile::tempdir()?;
        let database = format!("sqlite://{}", dir.path().join("greg.db").display());
        let yaml = format!(
            r#"server:
  listen: 127.0.0.1:0
  database: {database}
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
    url: {jenkins}
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
{repo_yaml}"#,
            flavor = match flavor {
                Flavor::Cloud => "cloud",
                Flavor::Server => "server",
            },
            jenkins = jenkins.url,
            owner = repo.owner,
            name = repo.name,
        );
        let config = greg_config::Config::from_yaml_str(&yaml, &|_| None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let options = EngineOptions {
            poll_interval: Duration::from_secs(3600),
            completed_grace: Duration::from_secs(3600),
            max_attempts: 3,
            retry_delay: Duration::from_millis(20),
            effect_tick: Duration::from_millis(50),
            ..EngineOptions::default()
        };
        let engine =
            greg_server::wiring::start_engine(config, Arc::new(SystemClock), options).await?;
        engine.wait_idle().await;
        let (server, addr) = greg_server::bind(engine.clone(), "127.0.0.1:0", Some(1))?;
        let handle = server.handle();
        tokio::spawn(server);
        let url = format!("http://{addr}");
        world.set_notification_url(Some(&format!(
            "{url}/build?builder=jenkins&token={JENKINS_TOKEN}"
        )));
        Ok(Self {
            flavor,
            world,
            repo,
            engine,
            url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            server: handle,
            read_comments: HashMap::new(),
            _fake: fake,
            _jenkins: jenkins,
            _dir: dir,
        })
    }

    fn bb(&self) -> greg_testkit::Bitbucket {
        self.world.bitbucket()
    }

    fn hook_url(&self, token: &str) -> String {
        format!("{}/repo?provider=bitbucket&token={token}", self.url)
    }

    /// Posts a delivery with the given token and signing secret; status and answer.
    async fn send_with(
        &self,
        d: &BitbucketDelivery,
        token: &str,
        secret: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let resp = d.send(&self.client, &self.hook_url(token), secret).await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }

    /// Sends a delivery as Bitbucket would (token, signature), expects it accepted, settles.
    async fn deliver(&self, d: BitbucketDelivery) -> anyhow::Result<()> {
        let (status, body) = self
            .send_with(&d, INCOMING_TOKEN, Some(HOOK_SECRET))
            .await?;
        anyhow::ensure!(
            status == 202 && body.starts_with("accepted"),
            "greg answered {status} {body:?} to {}",
            d.event
        );
        self.settle().await
    }

    async fn settle(&self) -> anyhow::Result<()> {
        for _ in 0..200 {
            self.world.settle(Duration::from_secs(30)).await?;
            self.engine.wait_idle().await;
            // Jenkins quiet again after greg went idle, and greg still idle: both are done.
            self.world.settle(Duration::from_secs(30)).await?;
            if self.engine.is_idle() {
                return Ok(());
            }
        }
        anyhow::bail!("greg and the fake Jenkins never settled")
    }

    fn pr_event(&self, what: &str) -> &'static str {
        match (self.flavor, what) {
            (Flavor::Cloud, "opened") => "pullrequest:created",
            (Flavor::Cloud, _) => "pullrequest:updated",
            (Flavor::Server, "opened") => "pr:opened",
            (Flavor::Server, _) => "pr:from_ref_updated",
        }
    }

    /// The delivery of `author` opening a pull request from `branch` (not sent).
    fn open_pr_delivery(
        &self,
        author: &str,
        branch: &str,
    ) -> anyhow::Result<(PrNumber, Sha, BitbucketDelivery)> {
        let head = fake_sha(&format!("{branch}-1"));
        let pr = self
            .bb()
            .open_pr(&self.repo, NewPr::new(author, branch, head.clone()))?;
        let d = self.bb().pull_request_webhook(
            self.flavor,
            &self.repo,
            pr.id,
            self.pr_event("opened"),
            None,
        )?;
        Ok((pr.id, head, d))
    }

    async fn open_pr(&self, author: &str, branch: &str) -> anyhow::Result<(PrNumber, Sha)> {
        let (pr, head, d) = self.open_pr_delivery(author, branch)?;
        self.deliver(d).await?;
        Ok((pr, head))
    }

    async fn push_to_pr(&self, pr: PrNumber, seed: &str) -> anyhow::Result<Sha> {
        let head = fake_sha(seed);
        self.bb().push_to_pr(&self.repo, pr, &head)?;
        let d = self.bb().pull_request_webhook(
            self.flavor,
            &self.repo,
            pr,
            self.pr_event("pushed"),
            None,
        )?;
        self.deliver(d).await?;
        Ok(head)
    }

    async fn comment(&self, pr: PrNumber, author: &str, text: &str) -> anyhow::Result<()> {
        let c = self.bb().comment(&self.repo, pr, author, text)?;
        let d = self.bb().comment_webhook(self.flavor, &self.repo, &c)?;
        self.deliver(d).await
    }

    async fn approve(&self, pr: PrNumber, reviewer: &str) -> anyhow::Result<()> {
        self.bb().approve(&self.repo, pr, reviewer)?;
        let d = self
            .bb()
            .review_webhook(self.flavor, &self.repo, pr, reviewer)?;
        self.deliver(d).await
    }

    fn set_permission(&self, login: &str, p: Permission) -> anyhow::Result<()> {
        Ok(self.bb().set_permission(&self.repo, login, p)?)
    }

    fn running_build(&self, job: &str) -> anyhow::Result<FakeBuild> {
        self.world
            .builds(job)
            .into_iter()
            .rev()
            .find(|b| b.building)
            .ok_or_else(|| anyhow::anyhow!("no running build of {job}"))
    }

    async fn finish_build(&self, job: &str, outcome: BuildOutcome) -> anyhow::Result<BuildNumber> {
        let b = self.running_build(job)?;
        self.world.finish_build(b.job.as_str(), b.number, outcome)?;
        self.settle().await?;
        Ok(b.number)
    }

    /// The state of the build status greg set on `sha` under `key` (`greg/test`).
    fn status(&self, sha: &Sha, key: &str) -> Option<CommitState> {
        self.bb()
            .status(&self.repo, sha, key)
            .and_then(|s| s.commit_state())
    }

    /// The next comment greg posted on `pr` that the test has not read.
    fn expect_comment(&mut self, pr: PrNumber) -> anyhow::Result<String> {
        let comments = self.bb().bot_comments(&self.repo, pr);
        let read = self.read_comments.entry(pr).or_insert(0);
        let c = comments
            .get(*read)
            .ok_or_else(|| anyhow::anyhow!("greg posted no further comment on #{pr}"))?;
        *read += 1;
        Ok(c.text.clone())
    }

    /// Fails on a greg comment the test did not read.
    fn expect_no_comment(&self, pr: PrNumber) -> anyhow::Result<()> {
        let comments = self.bb().bot_comments(&self.repo, pr);
        let read = self.read_comments.get(&pr).copied().unwrap_or(0);
        match comments.get(read) {
            Some(c) => anyhow::bail!("unexpected greg comment on #{pr}: {:?}", c.text),
            None => Ok(()),
        }
    }

    /// Paths of the requests greg made to the fake Bitbucket, in order.
    fn bitbucket_calls(&self) -> Vec<String> {
        self.bb()
            .requests()
            .into_iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.settle().await?;
        let prs: Vec<PrNumber> = self.world.read(|s| {
            s.bitbucket
                .repos
                .values()
                .flat_map(|r| r.pulls.keys().map(|n| PrNumber(*n)))
                .collect()
        });
        for pr in prs {
            self.expect_no_comment(pr)?;
        }
        self.server.stop(true).await;
        Ok(())
    }
}

/// The Greg flow on one flavor: test build and status on open, "@greg ok" before and after an
/// approval, "@greg please" runs the merge job, and its result is relayed.
async fn greg_flow(flavor: Flavor) -> anyhow::Result<()> {
    let mut t = Bb::start(flavor).await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;

    // Opening the pull request starts one test build of its full head, with Greg's parameters,
    // and greg/test is in progress on that head.
    let (pr, head) = t.open_pr("carol", "fix-typo").await?;
    let build = t.running_build(TEST_JOB)?;
    assert_eq!(build.param("COMMIT"), Some(head.as_str()));
    assert_eq!(build.param("CONTEXT"), Some("test"));
    assert_eq!(build.param("BRANCH"), Some("fix-typo"));
    let source = match flavor {
        Flavor::Cloud => "git@bitbucket.org:acme/demo.git",
        Flavor::Server => "ssh://git@bitbucket.example.com:7999/ACME/demo.git",
    };
    assert_eq!(build.param("SOURCE"), Some(source));
    assert_eq!(t.status(&head, "greg/test"), Some(CommitState::Pending));

    // The test build passes: SUCCESSFUL, linked to the build.
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    let status = t
        .bb()
        .status(&t.repo, &head, "greg/test")
        .expect("a greg/test status");
    assert_eq!(status.commit_state(), Some(CommitState::Success));
    assert!(status.url.contains("/job/demo-test/"), "{status:?}");

    // "@greg ok" without an approval: not ready, the approval listed.
    t.comment(pr, "alice", "@greg ok").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("Not ready to merge"), "{answer}");
    assert!(answer.contains("0 of 1 required approval"), "{answer}");

    // Bob approves in Bitbucket; "@greg ok" is now ready.
    t.approve(pr, "bob").await?;
    t.comment(pr, "alice", "@greg ok").await?;
    let answer = t.expect_comment(pr)?;
    assert!(answer.contains("Ready to merge"), "{answer}");

    // "@greg please": the merge job runs with the pull request, its head and its target.
    t.comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("Merging"));
    let merge = t.running_build(MERGE_JOB)?;
    assert_eq!(merge.param("CONTEXT"), Some("merge"));
    assert_eq!(merge.param("PR"), Some(pr.to_string().as_str()));
    assert_eq!(merge.param("COMMIT"), Some(head.as_str()));
    assert_eq!(merge.param("TARGET"), Some("master"));
    assert_eq!(merge.param("SOURCE"), Some(source));
    assert_eq!(t.status(&head, "greg/merge"), Some(CommitState::Pending));

    // The merge job succeeds: greg/merge SUCCESSFUL, and nothing more to say.
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(t.status(&head, "greg/merge"), Some(CommitState::Success));
    t.expect_no_comment(pr)?;

    // A second pull request whose merge build fails: FAILED, and a comment saying so.
    let (pr2, head2) = t.open_pr("dave", "feature-x").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.approve(pr2, "bob").await?;
    t.comment(pr2, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr2)?.contains("Merging"));
    t.finish_build(MERGE_JOB, BuildOutcome::Failure).await?;
    assert_eq!(t.status(&head2, "greg/merge"), Some(CommitState::Failure));
    let failed = t.expect_comment(pr2)?;
    assert!(failed.contains("failed"), "{failed}");
    assert!(failed.contains("/job/demo-merge/"), "{failed}");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_pull_request_is_tested_checked_approved_and_merged() -> anyhow::Result<()> {
    greg_flow(Flavor::Cloud).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_pull_request_is_tested_checked_approved_and_merged() -> anyhow::Result<()> {
    greg_flow(Flavor::Server).await
}

/// Cloud names the head by 12 digits: greg looks the full commit up before it sets any
/// status or starts any build, and again for a push to the pull request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_abbreviated_heads_are_resolved_before_any_status_or_build() -> anyhow::Result<()> {
    let t = Bb::start(Flavor::Cloud).await?;
    let (pr, head, d) = t.open_pr_delivery("carol", "fix")?;
    let abbreviated = &head.as_str()[..12];
    assert_eq!(
        d.payload["pullrequest"]["source"]["commit"]["hash"], abbreviated,
        "the delivery abbreviates the head"
    );
    t.deliver(d).await?;
    let calls = t.bitbucket_calls();
    let lookup = format!("GET /2.0/repositories/acme/demo/commit/{abbreviated}");
    let status = format!("POST /2.0/repositories/acme/demo/commit/{head}/statuses/build");
    let looked_up = calls.iter().position(|c| *c == lookup);
    let first_status = calls.iter().position(|c| c.contains("/statuses/"));
    assert!(looked_up.is_some(), "no lookup in {calls:#?}");
    assert!(looked_up < first_status, "{calls:#?}");
    assert_eq!(calls.get(first_status.unwrap_or(0)), Some(&status));
    assert_eq!(
        t.running_build(TEST_JOB)?.param("COMMIT"),
        Some(head.as_str())
    );

    // A push to the pull request: the new head, resolved the same way, is tested.
    let new_head = t.push_to_pr(pr, "fix-2").await?;
    let tested: Vec<String> = t
        .world
        .builds(TEST_JOB)
        .iter()
        .filter_map(|b| b.param("COMMIT").map(str::to_owned))
        .collect();
    assert_eq!(tested, [head.to_string(), new_head.to_string()]);
    assert_eq!(t.status(&new_head, "greg/test"), Some(CommitState::Pending));
    t.finish().await
}

/// A failed lookup is retried like any provider call; a head Bitbucket no longer knows
/// (force-pushed away) drops the delivery without a status or a build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_lookups_retry_on_errors_and_drop_vanished_heads() -> anyhow::Result<()> {
    let t = Bb::start(Flavor::Cloud).await?;
    t.bb()
        .fail_next(Flavor::Cloud, "/commit/[0-9a-f]{12}$", 503, None)?;
    let (_, head) = t.open_pr("carol", "flaky").await?;
    assert_eq!(
        t.running_build(TEST_JOB)?.param("COMMIT"),
        Some(head.as_str())
    );

    t.bb()
        .fail_next(Flavor::Cloud, "/commit/[0-9a-f]{12}$", 404, None)?;
    let (_, gone) = t.open_pr("dave", "gone").await?;
    assert_eq!(t.world.builds(TEST_JOB).len(), 1, "no build for {gone}");
    assert_eq!(t.status(&gone, "greg/test"), None);
    let pending = t.engine.store().pending_deliveries(100).await?;
    assert!(pending.is_empty(), "{pending:?}");
    t.finish().await
}

/// A push that moved two branches is two events, each stored and tested; the same delivery
/// again is a duplicate.
async fn push_of_two_branches(flavor: Flavor) -> anyhow::Result<()> {
    let t = Bb::start(flavor).await?;
    let bb = t.bb();
    let one = fake_sha("one-1");
    let two = fake_sha("two-1");
    bb.push_branch(&t.repo, "one", &one)?;
    bb.push_branch(&t.repo, "two", &two)?;
    let mut d = bb.push_webhook(flavor, &t.repo, "one", None, "alice")?;
    let second = bb.push_webhook(flavor, &t.repo, "two", None, "alice")?;
    let changes = |v: &mut serde_json::Value| -> Option<Vec<serde_json::Value>> {
        let list = match flavor {
            Flavor::Cloud => v.get_mut("push")?.get_mut("changes")?,
            Flavor::Server => v.get_mut("changes")?,
        };
        list.as_array_mut().map(std::mem::take)
    };
    let mut second = second.payload;
    let mut both = changes(&mut d.payload).expect("changes");
    both.extend(changes(&mut second).expect("changes"));
    match flavor {
        Flavor::Cloud => d.payload["push"]["changes"] = both.into(),
        Flavor::Server => d.payload["changes"] = both.into(),
    }

    let (status, answer) = t.send_with(&d, INCOMING_TOKEN, Some(HOOK_SECRET)).await?;
    assert_eq!(
        (status, answer.as_str()),
        (202, "accepted: deliveries 1, 2 queued\n")
    );
    t.settle().await?;
    let tested: Vec<String> = t
        .world
        .builds(TEST_JOB)
        .iter()
        .filter_map(|b| b.param("COMMIT").map(str::to_owned))
        .collect();
    assert_eq!(tested, [one.to_string(), two.to_string()]);
    assert_eq!(t.status(&two, "greg/test"), Some(CommitState::Pending));

    let (status, answer) = t.send_with(&d, INCOMING_TOKEN, Some(HOOK_SECRET)).await?;
    assert_eq!(
        (status, answer.as_str()),
        (202, "duplicate: this delivery was already accepted\n")
    );
    t.settle().await?;
    assert_eq!(t.world.builds(TEST_JOB).len(), 2);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_push_of_two_branches_is_two_events() -> anyhow::Result<()> {
    push_of_two_branches(Flavor::Cloud).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_push_of_two_branches_is_two_events() -> anyhow::Result<()> {
    push_of_two_branches(Flavor::Server).await
}

/// A wrong or missing `?token=`, a wrong secret and a missing signature are 401, and nothing
/// is stored or done; the same delivery, sent right, is the first the inbox stores.
async fn bad_credentials_are_refused(flavor: Flavor) -> anyhow::Result<()> {
    let t = Bb::start(flavor).await?;
    let calls_at_start = t.bb().requests().len();
    let (_, _, d) = t.open_pr_delivery("carol", "fix")?;
    let cases = [
        ("wrong token", "not-the-token", Some(HOOK_SECRET)),
        ("no token", "", Some(HOOK_SECRET)),
        ("wrong secret", INCOMING_TOKEN, Some("not the secret")),
        ("unsigned", INCOMING_TOKEN, None),
    ];
    for (case, token, secret) in cases {
        let (status, answer) = t.send_with(&d, token, secret).await?;
        assert_eq!(status, 401, "{case}: {answer}");
        assert!(answer.starts_with("unauthorized: "), "{case}: {answer}");
        for s in [INCOMING_TOKEN, HOOK_SECRET, API_PASSWORD] {
            assert!(!answer.contains(s), "{case}: {answer}");
        }
        t.settle().await?;
        let pending = t.engine.store().pending_deliveries(100).await?;
        assert!(pending.is_empty(), "{case}: {pending:?}");
        assert_eq!(t.bb().requests().len(), calls_at_start, "{case}");
        assert!(t.world.builds(TEST_JOB).is_empty(), "{case}");
    }
    let (status, answer) = t.send_with(&d, INCOMING_TOKEN, Some(HOOK_SECRET)).await?;
    assert_eq!(
        (status, answer.as_str()),
        (202, "accepted: delivery 1 queued\n")
    );
    t.settle().await?;
    assert_eq!(t.world.builds(TEST_JOB).len(), 1);
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_bad_token_or_signature_is_refused_and_not_stored() -> anyhow::Result<()> {
    bad_credentials_are_refused(Flavor::Cloud).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_bad_token_or_signature_is_refused_and_not_stored() -> anyhow::Result<()> {
    bad_credentials_are_refused(Flavor::Server).await
}

/// merge_mode staging on Bitbucket, which cannot make or move refs: the merge job builds the
/// approved head (merged with TARGET by the job), and on green greg merges the pull request
/// through the API at that head (docs/design.md).
async fn staging_lands_through_the_pull_request_merge(flavor: Flavor) -> anyhow::Result<()> {
    let mut t = Bb::start_with(flavor, "    merge_mode: staging\n", API_PASSWORD).await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    let (pr, head) = t.open_pr("carol", "fix").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.approve(pr, "bob").await?;
    let master = t.bb().branch(&t.repo, "master");

    t.comment(pr, "alice", "@greg please").await?;
    t.expect_no_comment(pr)?;
    let merge = t.running_build(MERGE_JOB)?;
    assert_eq!(merge.param("CONTEXT"), Some("merge"));
    assert_eq!(merge.param("COMMIT"), Some(head.as_str()));
    assert_eq!(merge.param("TARGET"), Some("master"));
    assert_eq!(t.status(&head, "greg/merge"), Some(CommitState::Pending));
    assert_eq!(
        t.bb().branch(&t.repo, "master"),
        master,
        "nothing lands before the build"
    );

    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert_eq!(t.status(&head, "greg/merge"), Some(CommitState::Success));
    let landed = t.bb().pull_request(&t.repo, pr).expect("the pull request");
    assert_eq!(landed.state, greg_core::PullRequestState::Merged);
    assert_ne!(t.bb().branch(&t.repo, "master"), master, "master moved");
    let merged = t.expect_comment(pr)?;
    assert!(merged.contains("Merged"), "{merged}");
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_staging_lands_through_the_pull_request_merge() -> anyhow::Result<()> {
    staging_lands_through_the_pull_request_merge(Flavor::Cloud).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_staging_lands_through_the_pull_request_merge() -> anyhow::Result<()> {
    staging_lands_through_the_pull_request_merge(Flavor::Server).await
}

/// test_merged needs refs Bitbucket cannot make: greg refuses to start, naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_merged_on_bitbucket_is_refused_at_start() -> anyhow::Result<()> {
    for flavor in [Flavor::Cloud, Flavor::Server] {
        let Err(e) = Bb::start_with(flavor, "    test_merged: true\n", API_PASSWORD).await else {
            panic!("{flavor:?}: greg started with test_merged");
        };
        let message = format!("{e:#}");
        assert!(message.starts_with("repos[0].test_merged: "), "{message}");
        assert!(message.contains("remove test_merged"), "{message}");
    }
    Ok(())
}

/// A window or batch above 1 builds candidates on staging refs Bitbucket cannot make: greg
/// refuses to start, naming the key (SPEC §10; serial staging still lands through the pull
/// request merge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_merge_queue_on_bitbucket_is_refused_at_start() -> anyhow::Result<()> {
    for flavor in [Flavor::Cloud, Flavor::Server] {
        for queue in ["window: 4", "batch_size: 2"] {
            let yaml = format!("    merge_mode: staging\n    merge_queue: {{{queue}}}\n");
            let Err(e) = Bb::start_with(flavor, &yaml, API_PASSWORD).await else {
                panic!("{flavor:?}: greg started with merge_queue {queue}");
            };
            let message = format!("{e:#}");
            assert!(message.starts_with("repos[0].merge_queue: "), "{message}");
            assert!(
                message.contains("use batch_size: 1 and window: 1"),
                "{message}"
            );
        }
    }
    Ok(())
}

/// On Cloud, greg learns its own account id at start (`GET /2.0/user`), so its own comments
/// are never read as commands, although they mention @greg.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_bot_identity_is_learnt_at_start() -> anyhow::Result<()> {
    let mut t = Bb::start(Flavor::Cloud).await?;
    assert_eq!(
        t.bitbucket_calls().first().map(String::as_str),
        Some("GET /2.0/user")
    );
    let (pr, _) = t.open_pr("carol", "fix").await?;
    t.comment(pr, "greg-bot", "@greg please").await?;
    assert!(t.world.builds(MERGE_JOB).is_empty());
    assert_eq!(
        t.expect_comment(pr)?,
        "@greg please",
        "only the comment itself"
    );
    t.finish().await
}

/// Bitbucket Cloud credentials that do not work stop greg at start, naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_credentials_refused_at_start_stop_greg() -> anyhow::Result<()> {
    let Err(e) = Bb::start_with(Flavor::Cloud, "", "another password").await else {
        panic!("greg started with refused credentials");
    };
    let message = format!("{e:#}");
    assert!(
        message.starts_with("providers.bitbucket: unauthenticated: "),
        "{message}"
    );
    assert!(!message.contains(API_PASSWORD), "{message}");
    Ok(())
}

/// `greg demo --provider bitbucket-cloud|bitbucket-server` plays the whole story and exits 0;
/// on Cloud it shows the head lookups.
#[cfg(feature = "demo")]
#[test]
fn the_demo_runs_on_both_flavors() {
    for (provider, shows) in [
        (
            "bitbucket-cloud",
            "GET /2.0/repositories/acme/demo/commit/d81be83aa248 -> 200",
        ),
        (
            "bitbucket-server",
            "POST /rest/api/1.0/projects/ACME/repos/demo/pull-requests/1/comments -> 201",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_greg"))
            .args(["demo", "--provider", provider])
            .env_remove("RUST_LOG")
            .output()
            .expect("greg runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{provider}: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("Demo finished: every step happened as expected."),
            "{provider}: {stdout}"
        );
        assert!(stdout.contains(shows), "{provider}: {stdout}");
    }
}

/// A commit id never changes: once greg has looked a Cloud head up, a command that reads the
/// pull request and its reviews does not look it up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_looks_each_abbreviated_head_up_once() -> anyhow::Result<()> {
    let mut t = Bb::start(Flavor::Cloud).await?;
    let (pr, head) = t.open_pr("carol", "fix").await?;
    t.set_permission("alice", Permission::Write)?;
    t.comment(pr, "alice", "@greg ok").await?;
    assert!(t.expect_comment(pr)?.contains("Not ready to merge"));
    let lookup = format!(
        "GET /2.0/repositories/acme/demo/commit/{}",
        &head.as_str()[..12]
    );
    let lookups = t.bitbucket_calls().iter().filter(|c| **c == lookup).count();
    assert_eq!(lookups, 1, "{:#?}", t.bitbucket_calls());
    t.finish().await
}

/// A merge check vetoes the pull-request merge after a green build: the entry fails once,
/// with the veto's text, and the queue moves on (it used to loop, commenting each time).
async fn a_merge_veto_fails_once_and_the_queue_moves_on(flavor: Flavor) -> anyhow::Result<()> {
    let mut t = Bb::start_with(flavor, "    merge_mode: staging\n", API_PASSWORD).await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    let (first, head1) = t.open_pr("carol", "first").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.approve(first, "bob").await?;
    let (second, _) = t.open_pr("carol", "second").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.approve(second, "bob").await?;
    t.bb().veto_merges(
        &t.repo,
        "master",
        &[(
            "Not all required builds are successful yet",
            "You need 1 more successful build before this pull request can be merged.",
        )],
    )?;
    t.comment(first, "alice", "@greg please").await?;
    t.comment(second, "alice", "@greg please").await?;
    assert!(t.expect_comment(second)?.contains("position 2"));
    let master = t.bb().branch(&t.repo, "master");

    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    let said = t.expect_comment(first)?;
    assert!(said.contains("refused to merge"), "{said}");
    assert!(said.contains("Not all required builds"), "{said}");
    t.expect_no_comment(first)?;
    assert_eq!(t.status(&head1, "greg/merge"), Some(CommitState::Failure));
    assert_eq!(t.bb().branch(&t.repo, "master"), master);

    // The next one is already building; the check is satisfied now and it lands.
    t.bb().veto_merges(&t.repo, "master", &[])?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(t.expect_comment(second)?.contains("Merged"));
    t.expect_no_comment(first)?;
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_merge_veto_fails_once_and_the_queue_moves_on() -> anyhow::Result<()> {
    a_merge_veto_fails_once_and_the_queue_moves_on(Flavor::Cloud).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_merge_veto_fails_once_and_the_queue_moves_on() -> anyhow::Result<()> {
    a_merge_veto_fails_once_and_the_queue_moves_on(Flavor::Server).await
}

/// The report comment on one flavor (SPEC §8, issue 10 item 3): two jobs report, one after the
/// other, and the pull request holds one greg comment showing both, edited in place (on
/// Server under its comment version lock).
async fn one_report_comment(flavor: Flavor) -> anyhow::Result<()> {
    let bb = Bb::start(flavor).await?;
    let (pr, head) = bb.open_pr("carol", "feature").await?;
    for (job, status) in [("unit", "failure"), ("lint", "success")] {
        let body = serde_json::json!({
            "repo": bb.repo.to_string(), "provider": "bitbucket", "sha": head.as_str(),
            "job": job, "status": status,
            "build_url": format!("https://ci.example/job/{job}/1/"),
        });
        let resp = bb
            .client
            .post(format!(
                "{}/api/reports?builder=jenkins&token={JENKINS_TOKEN}",
                bb.url
            ))
            .json(&body)
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 202, "{}", resp.text().await?);
        bb.settle().await?;
    }
    let reports: Vec<_> = bb
        .bb()
        .bot_comments(&bb.repo, pr)
        .into_iter()
        .filter(|c| c.text.starts_with("<!-- greg:report -->"))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let text = &reports[0].text;
    assert!(text.contains("| unit | ❌ failure |"), "{text}");
    assert!(text.contains("| lint | ✅ success |"), "{text}");
    if flavor == Flavor::Server {
        assert_eq!(reports[0].version, 1, "one edit under the version lock");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_report_comment_is_one_comment_edited_in_place() -> anyhow::Result<()> {
    one_report_comment(Flavor::Cloud).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_report_comment_is_one_comment_edited_in_place() -> anyhow::Result<()> {
    one_report_comment(Flavor::Server).await
}
