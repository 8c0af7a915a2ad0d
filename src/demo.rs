//! `greg demo`: greg, a fake provider (GitHub, Bitbucket Cloud or Bitbucket Server) and a fake
//! Jenkins in one process on loopback ports, and two pull requests played through them. Each
//! step prints the delivery greg received, the calls greg made, and the outcome; the command
//! exits 0 only if every step happened as expected. The story is the same on every provider;
//! [`Side`] hides where they differ.

mod bitbucket;

use bitbucket::BitbucketSide;
use greg_core::{CommitState, Permission, PrNumber, RepoName, Sha};
use greg_testkit::tester::{MERGE_JOB, TEST_JOB, TesterOptions};
use greg_testkit::{
    BitbucketDelivery, BitbucketFlavor, GregTester, NewPr, Outcome, Server, WebhookDelivery, World,
    fake_sha,
};
use std::process::ExitCode;

/// Which provider `greg demo --provider` plays the story on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DemoProvider {
    /// GitHub (the fake GitHub of greg-testkit).
    #[default]
    Github,
    /// Bitbucket Cloud (REST 2.0; pull-request deliveries abbreviate heads).
    BitbucketCloud,
    /// Bitbucket Server / Data Center (REST 1.0).
    BitbucketServer,
}

/// Runs the demo on `provider`; exit code 0 when every expectation held.
pub async fn run(provider: DemoProvider) -> ExitCode {
    match play(provider).await {
        Ok(()) => {
            println!("\nDemo finished: every step happened as expected.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("\nDemo FAILED: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// One request greg made to a fake, as the demo prints it.
pub(crate) struct Call {
    /// Which fake, padded for alignment.
    server: &'static str,
    method: String,
    path: String,
    status: u16,
    /// The JSON body, when there was one.
    json: Option<serde_json::Value>,
}

impl std::fmt::Display for Call {
    /// `GitHub  POST /repos/.../statuses/<sha> -> 201  [greg/test pending: ...]`: the
    /// status's context (GitHub) or key (Bitbucket), state and description when there is one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} -> {}",
            self.server, self.method, self.path, self.status
        )?;
        let Some(j) = &self.json else { return Ok(()) };
        let key = j["context"].as_str().or_else(|| j["key"].as_str());
        match (key, j["state"].as_str()) {
            (Some(key), Some(state)) => write!(
                f,
                "  [{key} {state}: {}]",
                j["description"].as_str().unwrap_or("")
            ),
            _ => Ok(()),
        }
    }
}

/// A delivery of either provider.
enum Delivery {
    Github(WebhookDelivery),
    Bitbucket(BitbucketDelivery),
}

impl Delivery {
    fn event(&self) -> &str {
        match self {
            Delivery::Github(d) => &d.event,
            Delivery::Bitbucket(d) => &d.event,
        }
    }

    fn id(&self) -> &str {
        match self {
            Delivery::Github(d) => &d.delivery_id,
            Delivery::Bitbucket(d) => &d.delivery_id,
        }
    }
}

/// The provider side of the demo: greg and the fakes, and the people's verbs.
enum Side {
    Github {
        t: Box<GregTester>,
        /// Requests already printed.
        seen: usize,
    },
    Bitbucket(Box<BitbucketSide>),
}

impl Side {
    async fn start(provider: DemoProvider) -> anyhow::Result<Self> {
        let flavor = match provider {
            DemoProvider::Github => {
                let t = GregTester::start_with(TesterOptions::default()).await?;
                println!(
                    "greg demo: greg at {}, fake GitHub at {}, fake Jenkins at {}",
                    t.url, t.github.url, t.jenkins.url
                );
                return Ok(Side::Github {
                    t: Box::new(t),
                    seen: 0,
                });
            }
            DemoProvider::BitbucketCloud => BitbucketFlavor::Cloud,
            DemoProvider::BitbucketServer => BitbucketFlavor::Server,
        };
        let b = BitbucketSide::start(flavor).await?;
        println!(
            "greg demo: greg at {}, fake Bitbucket {} at {}, fake Jenkins at {}",
            b.url,
            b.flavor_name(),
            b.bitbucket_url,
            b.jenkins_url
        );
        for c in &b.startup_calls {
            println!("greg started and called {c}");
        }
        println!(
            "(the two fakes log separately: each step lists greg's calls to Bitbucket, then to Jenkins)"
        );
        Ok(Side::Bitbucket(Box::new(b)))
    }

    fn world(&self) -> &World {
        match self {
            Side::Github { t, .. } => &t.world,
            Side::Bitbucket(b) => &b.world,
        }
    }

    fn repo(&self) -> &RepoName {
        match self {
            Side::Github { t, .. } => &t.repo,
            Side::Bitbucket(b) => &b.repo,
        }
    }

    async fn send(&self, d: &Delivery) -> anyhow::Result<(u16, String)> {
        match (self, d) {
            (Side::Github { t, .. }, Delivery::Github(d)) => t.send(d).await,
            (Side::Bitbucket(b), Delivery::Bitbucket(d)) => b.send(d).await,
            _ => anyhow::bail!("a delivery of the other provider"),
        }
    }

    async fn settle(&self) -> anyhow::Result<()> {
        match self {
            Side::Github { t, .. } => t.settle().await,
            Side::Bitbucket(b) => b.settle().await,
        }
    }

    fn set_permission(&self, login: &str, p: Permission) -> anyhow::Result<()> {
        match self {
            Side::Github { t, .. } => t.set_permission(login, p),
            Side::Bitbucket(b) => b.set_permission(login, p),
        }
    }

    fn push_branch(&self, branch: &str, head: &Sha, author: &str) -> anyhow::Result<Delivery> {
        Ok(match self {
            Side::Github { t, .. } => {
                let before = t.world.push_branch(&t.repo, branch, head)?;
                Delivery::Github(
                    t.world
                        .push_webhook(&t.repo, branch, before.as_ref(), author)?,
                )
            }
            Side::Bitbucket(b) => Delivery::Bitbucket(b.push_branch(branch, head, author)?),
        })
    }

    fn open_pr(
        &self,
        author: &str,
        branch: &str,
        head: &Sha,
    ) -> anyhow::Result<(PrNumber, Delivery)> {
        let title = format!("Work on {branch}");
        Ok(match self {
            Side::Github { t, .. } => {
                let pr = t.world.open_pr(
                    &t.repo,
                    NewPr::new(author, branch, head.clone()).title(&title),
                )?;
                let d = t.world.pull_request_webhook(&t.repo, pr.number, "opened")?;
                (pr.number, Delivery::Github(d))
            }
            Side::Bitbucket(b) => {
                let (pr, d) = b.open_pr(author, branch, head, &title)?;
                (pr, Delivery::Bitbucket(d))
            }
        })
    }

    fn comment(&self, pr: PrNumber, author: &str, body: &str) -> anyhow::Result<Delivery> {
        Ok(match self {
            Side::Github { t, .. } => {
                let c = t.world.comment(&t.repo, pr, author, body)?;
                Delivery::Github(t.world.comment_webhook(&t.repo, &c)?)
            }
            Side::Bitbucket(b) => Delivery::Bitbucket(b.comment(pr, author, body)?),
        })
    }

    fn approve(&self, pr: PrNumber, reviewer: &str) -> anyhow::Result<Delivery> {
        Ok(match self {
            Side::Github { t, .. } => {
                let review = t.world.approve(&t.repo, pr, reviewer)?;
                Delivery::Github(t.world.review_webhook(&t.repo, &review)?)
            }
            Side::Bitbucket(b) => Delivery::Bitbucket(b.approve(pr, reviewer)?),
        })
    }

    fn status(&self, sha: &Sha, context: &str) -> Option<CommitState> {
        match self {
            Side::Github { t, .. } => t.status(sha, context).map(|s| s.state),
            Side::Bitbucket(b) => b.status(sha, context),
        }
    }

    fn next_comment(&mut self, pr: PrNumber) -> anyhow::Result<String> {
        match self {
            Side::Github { t, .. } => t.expect_comment(pr),
            Side::Bitbucket(b) => b.next_comment(pr),
        }
    }

    /// Every request greg made to the fakes since the last call.
    fn new_calls(&mut self) -> Vec<Call> {
        match self {
            Side::Github { t, seen } => {
                let requests = t.world.requests();
                let calls = requests
                    .iter()
                    .skip(*seen)
                    .map(|r| Call {
                        server: match r.server {
                            Server::Github => "GitHub ",
                            Server::Jenkins => "Jenkins",
                        },
                        method: r.method.clone(),
                        path: r.path.clone(),
                        status: r.status,
                        json: r.json.clone(),
                    })
                    .collect();
                *seen = requests.len();
                calls
            }
            Side::Bitbucket(b) => b.new_calls(),
        }
    }

    /// Checks that every comment greg posted was shown.
    async fn finish(self) -> anyhow::Result<()> {
        match self {
            Side::Github { t, .. } => t.finish().await,
            Side::Bitbucket(b) => b.finish().await,
        }
    }
}

struct Demo {
    side: Side,
    step: usize,
}

impl Demo {
    /// Sends a delivery, waits for greg to finish with it, prints what happened.
    async fn deliver(&mut self, what: &str, delivery: Delivery) -> anyhow::Result<()> {
        self.step += 1;
        println!("\n{}. {what}", self.step);
        let (status, answer) = self.side.send(&delivery).await?;
        println!(
            "   delivery: {} ({}) -> greg answered {status} {}",
            delivery.event(),
            delivery.id(),
            answer.trim()
        );
        if status != 202 {
            anyhow::bail!(
                "greg refused the {} delivery: {status} {answer}",
                delivery.event()
            );
        }
        self.side.settle().await?;
        self.print_calls();
        Ok(())
    }

    /// Prints every request greg made to the fakes since the last step.
    fn print_calls(&mut self) {
        for c in self.side.new_calls() {
            println!("   greg called {c}");
        }
    }

    fn outcome(&self, text: &str) {
        println!("   outcome: {text}");
    }

    fn expect(&self, ok: bool, what: &str) -> anyhow::Result<()> {
        if ok {
            println!("   ok: {what}");
            Ok(())
        } else {
            anyhow::bail!("expected {what}")
        }
    }

    fn status(&self, sha: &Sha, context: &str) -> Option<CommitState> {
        self.side.status(sha, context)
    }

    fn builds(&self, job: &str) -> Vec<greg_testkit::FakeBuild> {
        self.side.world().builds(job)
    }

    fn last_comment(&mut self, pr: PrNumber) -> anyhow::Result<String> {
        let c = self.side.next_comment(pr)?;
        for line in c
            .lines()
            .filter(|l| !l.starts_with("<!--") && !l.trim().is_empty())
        {
            println!("   greg commented: {line}");
        }
        Ok(c)
    }

    /// Pushes a branch and opens a pull request from it.
    async fn push_and_open(
        &mut self,
        author: &str,
        branch: &str,
    ) -> anyhow::Result<(PrNumber, Sha)> {
        let head = fake_sha(&format!("{branch}-1"));
        let push = self.side.push_branch(branch, &head, author)?;
        self.deliver(
            &format!("{author} pushes branch `{branch}` ({})", head.short()),
            push,
        )
        .await?;
        let (pr, opened) = self.side.open_pr(author, branch, &head)?;
        self.deliver(
            &format!("{author} opens pull request #{pr} from `{branch}`"),
            opened,
        )
        .await?;
        let builds = self
            .builds(TEST_JOB)
            .into_iter()
            .filter(|b| b.param("COMMIT") == Some(head.as_str()))
            .count();
        self.expect(
            builds == 1,
            "one test build for the head (the push and the pull request share it)",
        )?;
        self.expect(
            self.status(&head, "greg/test") == Some(CommitState::Success),
            "greg/test is success on the head",
        )?;
        Ok((pr, head))
    }

    async fn comment(&mut self, pr: PrNumber, author: &str, body: &str) -> anyhow::Result<()> {
        let d = self.side.comment(pr, author, body)?;
        self.deliver(&format!("{author} comments \"{body}\" on #{pr}"), d)
            .await
    }

    async fn approve(&mut self, pr: PrNumber, reviewer: &str) -> anyhow::Result<()> {
        let d = self.side.approve(pr, reviewer)?;
        self.deliver(&format!("{reviewer} approves #{pr}"), d).await
    }
}

async fn play(provider: DemoProvider) -> anyhow::Result<()> {
    let side = Side::start(provider).await?;
    println!(
        "repository {}: test job `{TEST_JOB}`, merge job `{MERGE_JOB}`, merge_mode builder, 1 approval required",
        side.repo()
    );
    side.set_permission("alice", Permission::Write)?;
    side.set_permission("bob", Permission::Write)?;
    // The fake Jenkins runs every build to a scripted end.
    side.world()
        .script_outcome(TEST_JOB, None, Outcome::Success);
    side.world()
        .script_outcome(MERGE_JOB, None, Outcome::Success);
    let mut d = Demo { side, step: 0 };

    println!("\n== Pull request 1: the happy path ==");
    let (pr, head) = d.push_and_open("carol", "fix-typo").await?;
    d.comment(pr, "alice", "@greg ok").await?;
    let answer = d.last_comment(pr)?;
    d.expect(
        answer.contains("Not ready to merge") && answer.contains("approval"),
        "\"Not ready to merge\" listing the missing approval",
    )?;
    d.approve(pr, "bob").await?;
    d.comment(pr, "alice", "@greg ok").await?;
    let answer = d.last_comment(pr)?;
    d.expect(answer.contains("Ready to merge"), "\"Ready to merge\"")?;
    d.comment(pr, "alice", "@greg please").await?;
    d.last_comment(pr)?;
    let merge = d.builds(MERGE_JOB).into_iter().last();
    d.expect(
        merge
            .as_ref()
            .is_some_and(|b| b.param("CONTEXT") == Some("merge") && b.param("PR") == Some("1")),
        "the merge job ran with CONTEXT=merge and PR=1",
    )?;
    d.expect(
        d.status(&head, "greg/merge") == Some(CommitState::Success),
        "greg/merge is success",
    )?;
    d.outcome("the merge job merged pull request 1 and greg reported it green");

    println!("\n== Pull request 2: the merge build fails ==");
    let head2 = fake_sha("feature-x-1");
    d.side
        .world()
        .script_outcome(MERGE_JOB, Some(&head2), Outcome::Failure);
    let (pr2, head2) = d.push_and_open("dave", "feature-x").await?;
    d.approve(pr2, "bob").await?;
    d.comment(pr2, "alice", "@greg please").await?;
    d.last_comment(pr2)?;
    d.expect(
        d.status(&head2, "greg/merge") == Some(CommitState::Failure),
        "greg/merge is failure",
    )?;
    let failed = d.last_comment(pr2)?;
    d.expect(
        failed.contains("failed"),
        "a comment telling that the merge failed, with the build link",
    )?;
    d.outcome("pull request 2 was not merged and its author was told why");
    d.side.finish().await
}
