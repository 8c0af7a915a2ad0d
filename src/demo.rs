//! `greg demo`: greg, a fake GitHub and a fake Jenkins in one process on loopback ports, and
//! two pull requests played through them. Each step prints the delivery greg received, the
//! calls greg made, and the outcome; the command exits 0 only if every step happened as
//! expected.

use greg_core::{CommitState, Permission, PrNumber, Sha};
use greg_testkit::tester::{MERGE_JOB, TEST_JOB, TesterOptions};
use greg_testkit::{GregTester, NewPr, Outcome, Server, WebhookDelivery, fake_sha};
use std::process::ExitCode;

/// Runs the demo; exit code 0 when every expectation held.
pub async fn run() -> ExitCode {
    match play().await {
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

struct Demo {
    t: GregTester,
    seen_requests: usize,
    step: usize,
}

impl Demo {
    /// Sends a delivery, waits for greg to finish with it, prints what happened.
    async fn deliver(&mut self, what: &str, delivery: WebhookDelivery) -> anyhow::Result<()> {
        self.step += 1;
        println!("\n{}. {what}", self.step);
        let (status, answer) = self.t.send(&delivery).await?;
        println!(
            "   delivery: {} ({}) -> greg answered {status} {}",
            delivery.event,
            delivery.delivery_id,
            answer.trim()
        );
        if status != 202 {
            anyhow::bail!(
                "greg refused the {} delivery: {status} {answer}",
                delivery.event
            );
        }
        self.t.settle().await?;
        self.print_calls();
        Ok(())
    }

    /// Prints every request greg made to the fakes since the last step.
    fn print_calls(&mut self) {
        let requests = self.t.world.requests();
        for r in requests.iter().skip(self.seen_requests) {
            let server = match r.server {
                Server::Github => "GitHub ",
                Server::Jenkins => "Jenkins",
            };
            let detail = match (&r.json, r.path.contains("/statuses/")) {
                (Some(j), true) => format!(
                    "  [{} {}: {}]",
                    j["context"].as_str().unwrap_or(""),
                    j["state"].as_str().unwrap_or(""),
                    j["description"].as_str().unwrap_or("")
                ),
                _ => String::new(),
            };
            println!(
                "   greg called {server} {} {} -> {}{detail}",
                r.method, r.path, r.status
            );
        }
        self.seen_requests = requests.len();
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
        self.t.status(sha, context).map(|s| s.state)
    }

    fn last_comment(&mut self, pr: PrNumber) -> anyhow::Result<String> {
        let c = self.t.expect_comment(pr)?;
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
        let repo = self.t.repo.clone();
        let head = fake_sha(&format!("{branch}-1"));
        let before = self.t.world.push_branch(&repo, branch, &head)?;
        let push = self
            .t
            .world
            .push_webhook(&repo, branch, before.as_ref(), author)?;
        self.deliver(
            &format!("{author} pushes branch `{branch}` ({})", head.short()),
            push,
        )
        .await?;
        let pr = self.t.world.open_pr(
            &repo,
            NewPr::new(author, branch, head.clone()).title(&format!("Work on {branch}")),
        )?;
        let opened = self
            .t
            .world
            .pull_request_webhook(&repo, pr.number, "opened")?;
        self.deliver(
            &format!("{author} opens pull request #{} from `{branch}`", pr.number),
            opened,
        )
        .await?;
        let builds = self
            .t
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
        Ok((pr.number, head))
    }

    async fn comment(&mut self, pr: PrNumber, author: &str, body: &str) -> anyhow::Result<()> {
        let repo = self.t.repo.clone();
        let c = self.t.world.comment(&repo, pr, author, body)?;
        let d = self.t.world.comment_webhook(&repo, &c)?;
        self.deliver(&format!("{author} comments \"{body}\" on #{pr}"), d)
            .await
    }

    async fn approve(&mut self, pr: PrNumber, reviewer: &str) -> anyhow::Result<()> {
        let repo = self.t.repo.clone();
        let review = self.t.world.approve(&repo, pr, reviewer)?;
        let d = self.t.world.review_webhook(&repo, &review)?;
        self.deliver(&format!("{reviewer} approves #{pr} on GitHub"), d)
            .await
    }
}

async fn play() -> anyhow::Result<()> {
    let t = GregTester::start_with(TesterOptions::default()).await?;
    println!(
        "greg demo: greg at {}, fake GitHub at {}, fake Jenkins at {}",
        t.url, t.github.url, t.jenkins.url
    );
    println!(
        "repository acme/demo: test job `{TEST_JOB}`, merge job `{MERGE_JOB}`, merge_mode builder, 1 approval required"
    );
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    // The fake Jenkins runs every build to a scripted end.
    t.world.script_outcome(TEST_JOB, None, Outcome::Success);
    t.world.script_outcome(MERGE_JOB, None, Outcome::Success);
    let mut d = Demo {
        t,
        seen_requests: 0,
        step: 0,
    };

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
    let merge = d.t.builds(MERGE_JOB).into_iter().last();
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
    d.t.world
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
    d.t.finish().await
}
