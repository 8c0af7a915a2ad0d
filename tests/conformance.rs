//! Provider conformance: one set of checks, written once against `&dyn Provider`, run for
//! every provider greg has, each against its stateful fake over real HTTP:
//!
//! | provider | client | fake |
//! |---|---|---|
//! | `github` | `greg_github::GithubProvider` | `greg_testkit::FakeGithub` |
//! | `bitbucket_cloud` | `greg_bitbucket::BitbucketProvider` (flavor cloud) | `greg_testkit::FakeBitbucketCloud` |
//! | `bitbucket_server` | `greg_bitbucket::BitbucketProvider` (flavor server) | `greg_testkit::FakeBitbucketServer` |
//!
//! A check passing means the client and the fake agree on the vendor's wire format (each fake
//! cites the vendor's reference for what it answers; each client cites it for what it sends),
//! and that the provider keeps the trait's contract. What the vendors cannot do is gated by
//! [`Provider::capabilities`]: an operation a provider does not claim must answer
//! `NotSupported { implementer }` naming it.
//!
//! Each check is a plain `async fn(&Harness)`; the [`Harness`] is the small per-provider driver
//! that sets the world up (opens pull requests, approves, grants, injects faults) and reads it
//! back, in the provider's own terms (Cloud logins are account ids).

use greg_bitbucket::{BitbucketConfig, BitbucketProvider};
use greg_core::{
    CommentId, CommitState, CommitStatus, Error, Event, FastForward, Headers, Inbound, MergeResult,
    Permission, PrNumber, Provider, PullRequestState, RepoName, ReviewState, Secret, Sha,
    approvals_from_reviews,
};
use greg_github::{GithubConfig, GithubProvider};
use greg_testkit::{
    BitbucketFlavor, FakeBitbucketCloud, FakeBitbucketServer, FakeGithub, NewPr, Server, World,
    fake_sha,
};
use std::panic::AssertUnwindSafe;
use std::time::Duration;

const PASSWORD: &str = "conformance-secret";
const HOOK_SECRET: &str = "hook-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Github,
    Cloud,
    Server,
}

/// One provider, its fake and the world behind it.
struct Harness {
    kind: Kind,
    world: World,
    repo: RepoName,
    github: Option<(FakeGithub, GithubProvider)>,
    cloud: Option<(FakeBitbucketCloud, BitbucketProvider)>,
    server: Option<(FakeBitbucketServer, BitbucketProvider)>,
}

impl Harness {
    async fn start(kind: Kind) -> Self {
        greg_testkit::install_crypto_provider();
        let bot = match kind {
            Kind::Cloud => "557058:greg-bot",
            _ => "greg-bot",
        };
        let world = World::new(bot);
        let mut h = Harness {
            kind,
            world: world.clone(),
            repo: RepoName::new("acme", "demo"),
            github: None,
            cloud: None,
            server: None,
        };
        match kind {
            Kind::Github => {
                let fake = FakeGithub::start(world.clone()).expect("fake github");
                world.create_repo(&h.repo).expect("repo");
                world.update(|s| s.github.token = Some(PASSWORD.to_owned()));
                let mut cfg = GithubConfig::new("greg-bot", Secret::new(PASSWORD));
                cfg.api_url = fake.url.clone();
                cfg.webhook_secret = Some(Secret::new(HOOK_SECRET));
                let p = GithubProvider::new(cfg).expect("github provider");
                h.github = Some((fake, p));
            }
            Kind::Cloud => {
                let fake = FakeBitbucketCloud::start(world.clone()).expect("fake cloud");
                let bb = world.bitbucket();
                bb.create_repo(&h.repo).expect("repo");
                bb.set_password(Some(PASSWORD));
                let mut cfg = BitbucketConfig::cloud("greg-bot", Secret::new(PASSWORD));
                cfg.api_url = fake.url.clone();
                cfg.webhook_secret = Some(Secret::new(HOOK_SECRET));
                let p = BitbucketProvider::new(cfg).expect("cloud provider");
                p.identify().await.expect("GET /2.0/user");
                h.cloud = Some((fake, p));
            }
            Kind::Server => {
                h.repo = RepoName::new("PRJ", "demo");
                let fake = FakeBitbucketServer::start(world.clone()).expect("fake server");
                let bb = world.bitbucket();
                bb.create_repo(&h.repo).expect("repo");
                bb.set_password(Some(PASSWORD));
                let mut cfg = BitbucketConfig::server(&fake.url, "greg-bot", Secret::new(PASSWORD));
                cfg.webhook_secret = Some(Secret::new(HOOK_SECRET));
                let p = BitbucketProvider::new(cfg).expect("server provider");
                h.server = Some((fake, p));
            }
        }
        h
    }

    fn provider(&self) -> &dyn Provider {
        match (&self.github, &self.cloud, &self.server) {
            (Some((_, p)), _, _) => p,
            (_, Some((_, p)), _) => p,
            (_, _, Some((_, p))) => p,
            _ => unreachable!("a harness always has one provider"),
        }
    }

    fn bitbucket_client(&self) -> Option<&BitbucketProvider> {
        self.cloud
            .as_ref()
            .map(|(_, p)| p)
            .or(self.server.as_ref().map(|(_, p)| p))
    }

    fn flavor(&self) -> BitbucketFlavor {
        match self.kind {
            Kind::Server => BitbucketFlavor::Server,
            _ => BitbucketFlavor::Cloud,
        }
    }

    /// The implementer named in `NotSupported` answers.
    fn implementer(&self) -> &'static str {
        match self.kind {
            Kind::Github => "github",
            Kind::Cloud => "bitbucket-cloud",
            Kind::Server => "bitbucket-server",
        }
    }

    /// A person's login as the provider writes it (Cloud: an account id).
    fn user(&self, name: &str) -> String {
        match self.kind {
            Kind::Cloud => format!("557058:{name}"),
            _ => name.to_owned(),
        }
    }

    fn open_pr(&self, author: &str, branch: &str, head: &Sha) -> PrNumber {
        let new = NewPr::new(&self.user(author), branch, head.clone());
        match self.kind {
            Kind::Github => self.world.open_pr(&self.repo, new).expect("open").number,
            _ => {
                self.world
                    .bitbucket()
                    .open_pr(&self.repo, new)
                    .expect("open")
                    .id
            }
        }
    }

    fn push(&self, pr: PrNumber, head: &Sha) {
        match self.kind {
            Kind::Github => self.world.push_to_pr(&self.repo, pr, head).map(drop),
            _ => self
                .world
                .bitbucket()
                .push_to_pr(&self.repo, pr, head)
                .map(drop),
        }
        .expect("push");
    }

    fn verdict(&self, pr: PrNumber, user: &str, state: ReviewState) {
        let login = self.user(user);
        match self.kind {
            Kind::Github => self
                .world
                .review(&self.repo, pr, &login, state, "")
                .map(drop),
            _ => self
                .world
                .bitbucket()
                .set_verdict(&self.repo, pr, &login, Some(state))
                .map(drop),
        }
        .expect("verdict");
    }

    fn grant(&self, user: &str, permission: Permission) {
        let login = self.user(user);
        match self.kind {
            Kind::Github => self.world.set_permission(&self.repo, &login, permission),
            _ => self
                .world
                .bitbucket()
                .set_permission(&self.repo, &login, permission),
        }
        .expect("grant");
    }

    fn comment(&self, pr: PrNumber, user: &str, text: &str) {
        let login = self.user(user);
        match self.kind {
            Kind::Github => self.world.comment(&self.repo, pr, &login, text).map(drop),
            _ => self
                .world
                .bitbucket()
                .comment(&self.repo, pr, &login, text)
                .map(drop),
        }
        .expect("comment");
    }

    /// The bot's comments on `pr`, as the world holds them.
    fn bot_comments(&self, pr: PrNumber) -> Vec<(CommentId, String)> {
        match self.kind {
            Kind::Github => self
                .world
                .bot_comments(&self.repo, pr)
                .into_iter()
                .map(|c| (c.id, c.body))
                .collect(),
            _ => self
                .world
                .bitbucket()
                .bot_comments(&self.repo, pr)
                .into_iter()
                .map(|c| (c.id, c.text))
                .collect(),
        }
    }

    /// The status `context` on `sha`, as the world holds it: state, description, link.
    fn status(&self, sha: &Sha, context: &str) -> Option<(CommitState, String, String)> {
        match self.kind {
            Kind::Github => self.world.latest_status(&self.repo, sha, context).map(|s| {
                (
                    s.state,
                    s.description.unwrap_or_default(),
                    s.target_url.unwrap_or_default(),
                )
            }),
            _ => self
                .world
                .bitbucket()
                .status(&self.repo, sha, context)
                .and_then(|s| Some((s.commit_state()?, s.description.unwrap_or_default(), s.url))),
        }
    }

    fn branch(&self, name: &str) -> Option<Sha> {
        match self.kind {
            Kind::Github => self.world.branch(&self.repo, name),
            _ => self.world.bitbucket().branch(&self.repo, name),
        }
    }

    fn push_branch(&self, name: &str, sha: &Sha) {
        match self.kind {
            Kind::Github => self.world.push_branch(&self.repo, name, sha),
            _ => self.world.bitbucket().push_branch(&self.repo, name, sha),
        }
        .expect("push branch");
    }

    /// True when `sha` is `tip` or one of its ancestors in the world's commit graph.
    fn contains(&self, tip: &Sha, sha: &Sha) -> bool {
        match self.kind {
            Kind::Github => self
                .world
                .read(|s| s.github.repos[&self.repo].is_ancestor(sha, tip)),
            _ => self
                .world
                .read(|s| s.bitbucket.repos[&self.repo].is_ancestor(sha, tip)),
        }
    }

    fn pr_state(&self, pr: PrNumber) -> PullRequestState {
        match self.kind {
            Kind::Github => self.world.pull_request(&self.repo, pr).expect("pr").state,
            _ => {
                self.world
                    .bitbucket()
                    .pull_request(&self.repo, pr)
                    .expect("pr")
                    .state
            }
        }
    }

    fn decline(&self, pr: PrNumber) {
        match self.kind {
            Kind::Github => self
                .world
                .edit_pr(&self.repo, pr, |p| p.state = PullRequestState::Closed)
                .map(drop),
            _ => self.world.bitbucket().decline(&self.repo, pr, "carol"),
        }
        .expect("decline");
    }

    /// Arms a one-shot `status` on the next read of a pull request.
    fn fail_next_pull_request(&self, status: u16, retry_after: Option<u64>) {
        match self.kind {
            Kind::Github => {
                self.world
                    .fail_next(Server::Github, r"/pulls/\d+$", status, retry_after)
            }
            Kind::Cloud => self.world.bitbucket().fail_next(
                BitbucketFlavor::Cloud,
                r"/pullrequests/\d+$",
                status,
                retry_after,
            ),
            Kind::Server => self.world.bitbucket().fail_next(
                BitbucketFlavor::Server,
                r"/pull-requests/\d+$",
                status,
                retry_after,
            ),
        }
        .expect("regex");
    }

    /// Makes the fake require another secret than the one the client sends.
    fn rotate_credentials(&self) {
        match self.kind {
            Kind::Github => self
                .world
                .update(|s| s.github.token = Some("rotated".to_owned())),
            _ => self.world.bitbucket().set_password(Some("rotated")),
        }
    }

    /// Edits one of the bot's comments through the concrete client.
    async fn edit_comment(&self, pr: PrNumber, id: CommentId, body: &str) -> greg_core::Result<()> {
        match (&self.github, self.bitbucket_client()) {
            (Some((_, p)), _) => p.update_comment(&self.repo, id, body).await,
            (_, Some(p)) => p.update_comment(&self.repo, pr, id, body).await,
            _ => unreachable!("a harness always has one provider"),
        }
    }

    /// Deletes one of the bot's comments, where the client can (`None`: it has no such call).
    async fn delete_comment(&self, pr: PrNumber, id: CommentId) -> Option<greg_core::Result<()>> {
        let p = self.bitbucket_client()?;
        Some(p.delete_comment(&self.repo, pr, id).await)
    }

    /// The provider's webhook fixtures in tests/data: `(file, headers, body)`. The event
    /// header comes from the file name (tests/data/SOURCES.md: `<event>[.<variant>].json`),
    /// or, for Server, from the body's `eventKey` when it has one.
    fn fixtures(&self) -> Vec<(String, Headers, Vec<u8>)> {
        let dir = match self.kind {
            Kind::Github => "github",
            Kind::Cloud => "bitbucket-cloud",
            Kind::Server => "bitbucket-server",
        };
        let root = format!("{}/tests/data/{dir}", env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<_> = std::fs::read_dir(&root)
            .expect("fixture dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter(|p| !p.ends_with("openapi-subset.json"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let body = std::fs::read(&path).expect("fixture");
                let stem = name.split('.').next().unwrap_or("").to_owned();
                let by_name = stem.replacen('_', ":", 1);
                let headers = match self.kind {
                    Kind::Github => vec![
                        ("X-GitHub-Event".to_owned(), stem),
                        ("X-GitHub-Delivery".to_owned(), format!("fixture-{name}")),
                    ],
                    Kind::Cloud => vec![
                        ("X-Event-Key".to_owned(), by_name),
                        ("X-Request-UUID".to_owned(), format!("fixture-{name}")),
                    ],
                    Kind::Server => {
                        let key = serde_json::from_slice::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| v.get("eventKey")?.as_str().map(str::to_owned));
                        vec![
                            ("X-Event-Key".to_owned(), key.unwrap_or(by_name)),
                            ("X-Request-Id".to_owned(), format!("fixture-{name}")),
                        ]
                    }
                };
                (name, Headers::new(headers), body)
            })
            .collect()
    }

    /// Deliveries the fake world builds for `pr` (opened; a comment by alice; alice's
    /// approval; a push to `branch`), as `(headers with the signature, body)`.
    fn world_deliveries(&self, pr: PrNumber, branch: &str) -> Vec<(Headers, Vec<u8>)> {
        let alice = self.user("alice");
        match self.kind {
            Kind::Github => {
                let comment = self
                    .world
                    .comment(&self.repo, pr, &alice, "@greg ok")
                    .expect("comment");
                let review = self.world.approve(&self.repo, pr, &alice).expect("review");
                [
                    self.world
                        .pull_request_webhook(&self.repo, pr, "opened")
                        .expect("pr"),
                    self.world.comment_webhook(&self.repo, &comment).expect("c"),
                    self.world.review_webhook(&self.repo, &review).expect("r"),
                    self.world
                        .push_webhook(&self.repo, branch, None, &alice)
                        .expect("push"),
                ]
                .iter()
                .map(|d| (Headers::new(d.headers(Some(HOOK_SECRET))), d.body()))
                .collect()
            }
            _ => {
                let bb = self.world.bitbucket();
                let flavor = self.flavor();
                let opened = match self.kind {
                    Kind::Cloud => "pullrequest:created",
                    _ => "pr:opened",
                };
                let comment = bb
                    .comment(&self.repo, pr, &alice, "@greg ok")
                    .expect("comment");
                bb.approve(&self.repo, pr, &alice).expect("approve");
                [
                    bb.pull_request_webhook(flavor, &self.repo, pr, opened, None)
                        .expect("pr"),
                    bb.comment_webhook(flavor, &self.repo, &comment)
                        .expect("comment"),
                    bb.review_webhook(flavor, &self.repo, pr, &alice)
                        .expect("review"),
                    bb.push_webhook(flavor, &self.repo, branch, None, &alice)
                        .expect("push"),
                ]
                .iter()
                .map(|d| (Headers::new(d.headers(Some(HOOK_SECRET))), d.body()))
                .collect()
            }
        }
    }

    /// Parses a delivery into complete events: through the trait, and for Cloud's abbreviated
    /// heads through `BitbucketProvider::parse` and `resolve` (the lookup the engine makes in
    /// the repository's lane through `Provider::resolve`, docs/providers.md).
    async fn events(&self, headers: &Headers, body: &[u8]) -> Vec<Event> {
        if let Some((_, p)) = &self.cloud {
            return match p.parse(headers, body).expect("parses") {
                greg_bitbucket::Parsed::Events { events } => events,
                greg_bitbucket::Parsed::Unresolved { event } => {
                    vec![p.resolve(*event).await.expect("resolves")]
                }
                greg_bitbucket::Parsed::Ignored { reason } => panic!("ignored: {reason}"),
            };
        }
        match self
            .provider()
            .parse_webhook(headers, body)
            .expect("parses")
        {
            Inbound::Event(e) => vec![e],
            other => panic!("not an event: {other:?}"),
        }
    }
}

fn status(state: CommitState, description: &str, url: Option<&str>) -> CommitStatus {
    CommitStatus {
        state,
        context: "greg/test".to_owned(),
        description: description.to_owned(),
        target_url: url.map(str::to_owned),
    }
}

// --- the checks ---------------------------------------------------------------------------

/// The provider reads a pull request as the world holds it, and knows the bot's login.
async fn pull_request_round_trip(h: &Harness) {
    let p = h.provider();
    let head = fake_sha("pr-1");
    let pr = h.open_pr("carol", "feature/x", &head);
    let got = p.pull_request(&h.repo, pr).await.expect("pull request");
    assert_eq!(got.number, pr);
    assert_eq!(got.state, PullRequestState::Open);
    assert_eq!(
        got.head_sha, head,
        "a full head, looked up where the vendor abbreviates"
    );
    assert_eq!(
        (got.head_ref.as_str(), got.base_ref.as_str()),
        ("feature/x", "master")
    );
    assert_eq!(got.author.as_str(), h.user("carol"));
    assert_eq!(got.base_repo, h.repo);
    assert_eq!(got.head_repo.as_ref(), Some(&h.repo));
    let bot = h.world.read(|s| match h.kind {
        Kind::Github => s.github.bot.clone(),
        _ => s.bitbucket.bot.clone(),
    });
    assert_eq!(p.bot_login(), Some(&bot));
    let missing = p
        .pull_request(&h.repo, PrNumber(999))
        .await
        .expect_err("404");
    assert!(matches!(missing, Error::NotFound { .. }), "{missing:?}");
}

/// A comment greg posts is in the world under the bot's name; editing it changes it there;
/// deleting it (where the client can) removes it.
async fn comment_round_trip(h: &Harness) {
    let p = h.provider();
    let pr = h.open_pr("carol", "fix", &fake_sha("c-1"));
    h.comment(pr, "alice", "@greg ok");
    let id = p
        .post_comment(&h.repo, pr, "Not ready to merge: *greg/test* is pending")
        .await
        .expect("post");
    assert_eq!(
        h.bot_comments(pr),
        [(id, "Not ready to merge: *greg/test* is pending".to_owned())]
    );
    h.edit_comment(pr, id, "Ready to merge")
        .await
        .expect("edit");
    assert_eq!(h.bot_comments(pr), [(id, "Ready to merge".to_owned())]);
    // Server locks comments by version: a second edit must read the new one.
    h.edit_comment(pr, id, "Ready to merge (2)")
        .await
        .expect("edit again");
    assert_eq!(h.bot_comments(pr), [(id, "Ready to merge (2)".to_owned())]);
    if let Some(deleted) = h.delete_comment(pr, id).await {
        deleted.expect("delete");
        assert_eq!(h.bot_comments(pr), []);
        let again = h.delete_comment(pr, id).await.expect("bitbucket");
        assert!(matches!(again, Err(Error::NotFound { .. })), "{again:?}");
    }
    let gone = p
        .post_comment(&h.repo, PrNumber(999), "x")
        .await
        .expect_err("no such pull request");
    assert!(matches!(gone, Error::NotFound { .. }), "{gone:?}");
}

/// A status greg sets is in the world: the same context replaces the earlier one, a long
/// description is cut to one line of at most 140 characters, and a status without a build
/// link still has one where the vendor requires it.
async fn status_round_trip(h: &Harness) {
    let p = h.provider();
    let head = fake_sha("s-1");
    let pr = h.open_pr("carol", "fix", &head);
    let _ = pr;
    p.set_status(
        &h.repo,
        &head,
        &status(CommitState::Pending, "Build queued", None),
    )
    .await
    .expect("pending");
    let (state, description, _) = h.status(&head, "greg/test").expect("status");
    assert_eq!(
        (state, description.as_str()),
        (CommitState::Pending, "Build queued")
    );
    let long = "x".repeat(300);
    p.set_status(
        &h.repo,
        &head,
        &status(CommitState::Success, &long, Some("http://jenkins/job/t/1/")),
    )
    .await
    .expect("success");
    let (state, description, url) = h.status(&head, "greg/test").expect("status");
    assert_eq!(state, CommitState::Success);
    assert!(description.chars().count() <= 140, "{description}");
    assert_eq!(url, "http://jenkins/job/t/1/");
    p.set_status(
        &h.repo,
        &head,
        &status(CommitState::Failure, "Build #2 failed", None),
    )
    .await
    .expect("failure");
    assert_eq!(
        h.status(&head, "greg/test").map(|s| s.0),
        Some(CommitState::Failure)
    );
    if h.kind != Kind::Github {
        assert_eq!(
            h.world.bitbucket().statuses(&h.repo, &head).len(),
            1,
            "one status per key"
        );
    }
}

/// Verdicts are bound to the head they were given on: an approval before a push approves the
/// old head, not the new one.
async fn reviews_are_bound_to_their_head(h: &Harness) {
    let p = h.provider();
    let (h1, h2) = (fake_sha("r-1"), fake_sha("r-2"));
    let pr = h.open_pr("carol", "fix", &h1);
    h.verdict(pr, "alice", ReviewState::Approved);
    h.push(pr, &h2);
    h.verdict(pr, "bob", ReviewState::ChangesRequested);
    h.verdict(pr, "dave", ReviewState::Approved);
    let reviews = p.reviews(&h.repo, pr).await.expect("reviews");
    let has = |user: &str, state: ReviewState, commit: &Sha| {
        reviews.iter().any(|r| {
            r.reviewer.as_str() == h.user(user)
                && r.state == state
                && r.commit.as_ref() == Some(commit)
        })
    };
    assert!(has("alice", ReviewState::Approved, &h1), "{reviews:?}");
    assert!(
        has("bob", ReviewState::ChangesRequested, &h2),
        "{reviews:?}"
    );
    assert!(has("dave", ReviewState::Approved, &h2), "{reviews:?}");
    let current: Vec<String> = approvals_from_reviews(&reviews)
        .into_iter()
        .filter(|a| a.sha == h2)
        .map(|a| a.login.0)
        .collect();
    assert_eq!(current, [h.user("dave")]);
}

/// Permissions are effective ones; a stranger cannot command greg.
async fn permissions(h: &Harness) {
    let p = h.provider();
    h.grant("alice", Permission::Write);
    h.grant("bob", Permission::Admin);
    h.grant("dave", Permission::Read);
    let of = |user: &str| {
        let login = greg_core::Login(h.user(user));
        async move { p.permission(&h.repo, &login).await.expect("permission") }
    };
    assert_eq!(of("alice").await, Permission::Write);
    assert_eq!(of("bob").await, Permission::Admin);
    assert_eq!(of("dave").await, Permission::Read);
    assert!(!of("eve").await.can_write());
}

/// A pull request is merged only at the head greg expects.
async fn merge_precondition(h: &Harness) {
    let p = h.provider();
    let caps = p.capabilities();
    let (h1, h2) = (fake_sha("m-1"), fake_sha("m-2"));
    let pr = h.open_pr("carol", "fix", &h1);
    h.push(pr, &h2);
    let before = h.branch("master").expect("master");
    let stale = p.merge_pull_request(&h.repo, pr, &h1, "Merge #1").await;
    if !caps.merge_pull_request {
        assert!(
            matches!(stale, Err(Error::NotSupported { .. })),
            "{stale:?}"
        );
        return;
    }
    assert!(
        matches!(stale, Err(Error::PreconditionFailed { .. })),
        "{stale:?}"
    );
    assert_eq!(h.pr_state(pr), PullRequestState::Open);
    assert_eq!(h.branch("master"), Some(before));
    p.merge_pull_request(&h.repo, pr, &h2, "Merge #1")
        .await
        .expect("merge at the right head");
    assert_eq!(h.pr_state(pr), PullRequestState::Merged);
    let tip = h.branch("master").expect("master");
    assert!(h.contains(&tip, &h2), "the target now contains the head");
}

/// Staging operations do what `capabilities()` claims, and answer `NotSupported` naming the
/// provider otherwise.
async fn staging_operations(h: &Harness) {
    let p = h.provider();
    let caps = p.capabilities();
    let repo = &h.repo;
    let master = h.branch("master").expect("master");
    assert_eq!(p.branch_tip(repo, "master").await, Ok(Some(master.clone())));
    assert_eq!(p.branch_tip(repo, "greg/nothing").await, Ok(None));

    let head = fake_sha("st-1");
    h.open_pr("carol", "feature", &head);
    let not_supported = |r: &Error| matches!(r, Error::NotSupported { implementer, .. } if *implementer == h.implementer());
    let staging = "greg/staging/master";
    match p.set_branch(repo, staging, &master).await {
        Ok(()) => {
            assert_eq!(h.branch(staging), Some(master.clone()));
            // Moving it (forced) works too, and setting it where it is changes nothing.
            p.set_branch(repo, staging, &head).await.expect("move");
            assert_eq!(h.branch(staging), Some(head.clone()));
            p.set_branch(repo, staging, &head).await.expect("same");
            p.set_branch(repo, staging, &master).await.expect("back");
        }
        Err(e) => assert!(!caps.staging_refs && not_supported(&e), "{e:?}"),
    }
    let merged = p
        .merge_into_branch(repo, staging, &head, "Merge feature")
        .await;
    let staged = match merged {
        Ok(MergeResult::Merged(sha)) => {
            assert!(caps.staging_refs);
            assert_eq!(h.branch(staging), Some(sha.clone()));
            assert!(h.contains(&sha, &head) && h.contains(&sha, &master));
            Some(sha)
        }
        Ok(other) => panic!("expected a merge commit, got {other:?}"),
        Err(e) => {
            assert!(!caps.staging_refs && not_supported(&e), "{e:?}");
            None
        }
    };
    let target = staged.clone().unwrap_or(head.clone());
    match p.fast_forward(repo, "master", &target).await {
        Ok(FastForward::Done) => {
            assert!(caps.fast_forward);
            assert_eq!(h.branch("master"), Some(target.clone()));
            // The target moved on meanwhile: the compare-and-swap leaves it alone.
            let elsewhere = fake_sha("st-elsewhere");
            h.push_branch("master", &elsewhere);
            assert_eq!(
                p.fast_forward(repo, "master", &target).await,
                Ok(FastForward::Moved)
            );
            assert_eq!(h.branch("master"), Some(elsewhere));
        }
        Ok(FastForward::Moved) => panic!("master had not moved"),
        Err(e) => {
            assert!(!caps.fast_forward && not_supported(&e), "{e:?}");
            assert_eq!(h.branch("master"), Some(master.clone()));
        }
    }
    match p.delete_branch(repo, staging).await {
        Ok(()) => {
            assert_eq!(h.branch(staging), None);
            p.delete_branch(repo, staging).await.expect("idempotent");
        }
        Err(e) => assert!(!caps.staging_refs && not_supported(&e), "{e:?}"),
    }
}

/// Reconciliation lists exactly the open pull requests, all pages, with full heads.
async fn open_pull_requests(h: &Harness) {
    if h.kind != Kind::Github {
        // One pull request per page, to follow every `next` / `nextPageStart`.
        h.world.bitbucket().set_max_page(Some(1));
    }
    let heads: Vec<Sha> = (0..4).map(|i| fake_sha(&format!("open-{i}"))).collect();
    let prs: Vec<PrNumber> = heads
        .iter()
        .enumerate()
        .map(|(i, head)| h.open_pr("carol", &format!("f{i}"), head))
        .collect();
    h.decline(prs[1]);
    let mut open: Vec<(PrNumber, Sha)> = match h.provider().open_pull_requests(&h.repo).await {
        Ok(list) => list.into_iter().map(|p| (p.number, p.head_sha)).collect(),
        Err(e) => panic!("{e:?}"),
    };
    open.sort();
    assert_eq!(
        open,
        [
            (prs[0], heads[0].clone()),
            (prs[2], heads[2].clone()),
            (prs[3], heads[3].clone()),
        ]
    );
}

/// Every vendor fixture of the provider parses, or is refused with a clear one-line error;
/// none panics. Only the hand-anonymised `.bbpr` captures may be refused.
async fn webhook_fixtures(h: &Harness) {
    let p = h.provider();
    let fixtures = h.fixtures();
    assert!(fixtures.len() >= 10, "{} fixtures", fixtures.len());
    for (name, headers, body) in fixtures {
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| p.parse_webhook(&headers, &body)));
        let Ok(outcome) = outcome else {
            panic!("{name}: the parser panicked");
        };
        match outcome {
            Ok(_) => {}
            Err(e) => {
                let text = e.to_string();
                assert!(
                    !text.is_empty() && !text.contains('\n'),
                    "{name}: unclear error {text:?}"
                );
                assert!(name.contains(".bbpr."), "{name}: refused: {text}");
            }
        }
        assert!(p.delivery_id(&headers).is_some(), "{name}");
    }
}

/// Deliveries the fake world builds verify against the configured secret and parse into the
/// events the world describes (so the fake's payloads and the parser agree).
async fn world_webhooks(h: &Harness) {
    let p = h.provider();
    let head = fake_sha("wh-1");
    let pr = h.open_pr("carol", "fix", &head);
    let mut events = Vec::new();
    for (headers, body) in h.world_deliveries(pr, "fix") {
        p.verify_webhook(&headers, &body).expect("signature");
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert!(p.verify_webhook(&headers, &tampered).is_err());
        assert!(p.delivery_id(&headers).is_some());
        events.extend(h.events(&headers, &body).await);
    }
    let [
        Event::PullRequest(opened),
        Event::Comment(comment),
        Event::Review(review),
        Event::Push(push),
    ] = events.as_slice()
    else {
        panic!("unexpected events {events:?}");
    };
    assert_eq!(
        (opened.pull_request.number, &opened.pull_request.head_sha),
        (pr, &head)
    );
    assert_eq!(opened.repo, h.repo);
    assert_eq!(
        (comment.pr, comment.author.as_str(), comment.body.as_str()),
        (pr, h.user("alice").as_str(), "@greg ok")
    );
    assert_eq!(
        (
            review.state,
            review.commit.as_ref(),
            review.reviewer.as_str()
        ),
        (ReviewState::Approved, Some(&head), h.user("alice").as_str())
    );
    assert_eq!((push.branch.as_str(), &push.head), ("fix", &head));
}

/// HTTP failures map onto the shared taxonomy.
async fn error_mapping(h: &Harness) {
    let p = h.provider();
    let pr = h.open_pr("carol", "fix", &fake_sha("e-1"));
    let read = || p.pull_request(&h.repo, pr);
    h.fail_next_pull_request(401, None);
    assert!(matches!(read().await, Err(Error::Unauthenticated { .. })));
    h.fail_next_pull_request(403, None);
    let forbidden = read().await;
    match h.kind {
        // The fake GitHub's 403 is a rate limit (x-ratelimit-remaining: 0), as GitHub sends it.
        Kind::Github => assert!(
            matches!(forbidden, Err(Error::RateLimited { .. })),
            "{forbidden:?}"
        ),
        _ => assert!(
            matches!(forbidden, Err(Error::PermissionDenied { .. })),
            "{forbidden:?}"
        ),
    }
    h.fail_next_pull_request(404, None);
    assert!(matches!(read().await, Err(Error::NotFound { .. })));
    h.fail_next_pull_request(429, Some(7));
    assert_eq!(
        read().await,
        Err(Error::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        })
    );
    h.fail_next_pull_request(500, None);
    let server_error = read().await.expect_err("500");
    assert!(
        matches!(server_error, Error::Transient { .. }) && server_error.is_retryable(),
        "{server_error:?}"
    );
    // The faults were one-shot.
    assert_eq!(read().await.map(|p| p.number), Ok(pr));
    // Credentials the vendor no longer accepts.
    h.rotate_credentials();
    let refused = read().await.expect_err("401");
    assert!(
        matches!(refused, Error::Unauthenticated { .. }),
        "{refused:?}"
    );
    assert!(!refused.to_string().contains(PASSWORD), "{refused}");
}

/// A rule on the provider's side refuses a step for good (SPEC §6 "Every step of a merge
/// ends"): `Refused` with the provider's own reason, never retryable, nothing moved; the same
/// step goes through once the rule allows it. Merge conflicts stay `Conflict`.
async fn refused_for_good(h: &Harness) {
    let p = h.provider();
    let caps = p.capabilities();
    let refused = |r: &greg_core::Result<()>, message: &str| {
        assert_eq!(
            r,
            &Err(Error::Refused {
                message: message.to_owned()
            })
        );
        assert!(r.as_ref().is_err_and(|e| !e.is_retryable()));
    };
    let head = fake_sha("rf-1");
    let pr = h.open_pr("carol", "fix", &head);
    match h.kind {
        Kind::Github => {
            use greg_testkit::world::github::BranchProtection;
            // A protected branch rejects the fast-forward to a staging commit.
            let master = h.branch("master").expect("master");
            let staged = fake_sha("rf-staged");
            h.push_branch("greg/staging/master", &staged);
            let protect = |rule: BranchProtection| {
                h.world
                    .protect_branch(&h.repo, "master", rule)
                    .expect("protect")
            };
            protect(BranchProtection::required_checks(&["ci"]));
            let ff = p.fast_forward(&h.repo, "master", &staged).await.map(drop);
            refused(&ff, "Required status check \"ci\" is expected.");
            protect(BranchProtection::pull_request_only());
            let ff = p.fast_forward(&h.repo, "master", &staged).await.map(drop);
            refused(&ff, "Changes must be made through a pull request.");
            assert_eq!(h.branch("master"), Some(master));
            // ... and the pull-request merge without the required status on its head.
            protect(BranchProtection::required_checks(&["ci"]));
            let merge = p.merge_pull_request(&h.repo, pr, &head, "Merge #1").await;
            refused(&merge, "Required status check \"ci\" is expected.");
            assert_eq!(h.pr_state(pr), PullRequestState::Open);
            // greg's login on the bypass list: the fast-forward goes through.
            protect(BranchProtection::pull_request_only().bypass("greg-bot"));
            assert_eq!(
                p.fast_forward(&h.repo, "master", &staged).await,
                Ok(FastForward::Done)
            );
            h.world.unprotect_branch(&h.repo, "master").expect("lift");
        }
        Kind::Cloud | Kind::Server => {
            assert!(caps.merge_pull_request && !caps.fast_forward);
            let bb = h.world.bitbucket();
            let (summary, detail) = (
                "Not all required builds are successful yet",
                "You still need a minimum of one successful build before this pull request can be merged.",
            );
            bb.veto_merges(&h.repo, "master", &[(summary, detail)])
                .expect("veto");
            let merge = p.merge_pull_request(&h.repo, pr, &head, "Merge #1").await;
            let expected = match h.kind {
                // Cloud names the merge check only.
                Kind::Cloud => summary.to_owned(),
                _ => format!("{summary}: {detail}"),
            };
            refused(&merge, &expected);
            assert_eq!(h.pr_state(pr), PullRequestState::Open);
            bb.veto_merges(&h.repo, "master", &[]).expect("lift");
        }
    }
    // A real conflict is a conflict, not a refusal.
    let other = fake_sha("rf-2");
    let conflicting = h.open_pr("dave", "other", &other);
    match h.kind {
        Kind::Github => h.world.set_mergeable(&h.repo, conflicting, Some(false)),
        _ => h.world.bitbucket().set_conflicting(&h.repo, &other, true),
    }
    .expect("conflict");
    let merge = p
        .merge_pull_request(&h.repo, conflicting, &other, "Merge #2")
        .await;
    assert!(matches!(merge, Err(Error::Conflict { .. })), "{merge:?}");
    // With the rules lifted, the refused merge goes through.
    p.merge_pull_request(&h.repo, pr, &head, "Merge #1")
        .await
        .expect("merge");
    assert_eq!(h.pr_state(pr), PullRequestState::Merged);
}

/// Webhook deliveries can be listed and redelivered where the provider keeps them (GitHub);
/// elsewhere the default `NotSupported`.
async fn webhook_deliveries(h: &Harness) {
    let p = h.provider();
    let greg = "http://greg.invalid/repo";
    if h.kind != Kind::Github {
        let listed = p.webhook_deliveries(&h.repo, greg).await;
        assert!(
            matches!(listed, Err(Error::NotSupported { .. })),
            "{listed:?}"
        );
        let again = p.redeliver_webhook(&h.repo, 1, 1).await;
        assert!(
            matches!(again, Err(Error::NotSupported { .. })),
            "{again:?}"
        );
        return;
    }
    let none = p.webhook_deliveries(&h.repo, greg).await;
    assert!(matches!(none, Err(Error::NotFound { .. })), "{none:?}");
    let hook = h
        .world
        .add_hook(&h.repo, &format!("{greg}?provider=github"), &["push"], None)
        .expect("hook");
    h.push_branch("master", &fake_sha("dl-1"));
    let push = h
        .world
        .push_webhook(&h.repo, "master", None, "alice")
        .expect("push delivery");
    // greg was down: GitHub could not connect.
    h.world
        .record_hook_delivery(&h.repo, hook, &push, 0, false)
        .expect("record");
    let listed = p.webhook_deliveries(&h.repo, greg).await.expect("list");
    assert_eq!(listed.len(), 1);
    let d = &listed[0];
    assert_eq!(
        (
            d.hook_id,
            d.guid.as_str(),
            d.event.as_str(),
            d.status_code,
            d.redelivery
        ),
        (hook, push.delivery_id.as_str(), "push", 0, false)
    );
    p.redeliver_webhook(&h.repo, hook, d.id)
        .await
        .expect("redeliver");
    let again = h
        .world
        .wait_for("the redelivery", Duration::from_secs(5), |s| {
            s.github.repos[&h.repo]
                .deliveries
                .iter()
                .find(|d| d.redelivery)
                .map(|d| d.guid.clone())
        })
        .await
        .expect("redelivered");
    assert_eq!(again, push.delivery_id);
}

/// Runs `check` once per provider, as three tests in a module named after the check.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            use super::{Harness, Kind};

            #[tokio::test]
            async fn github() {
                super::$check(&Harness::start(Kind::Github).await).await;
            }

            #[tokio::test]
            async fn bitbucket_cloud() {
                super::$check(&Harness::start(Kind::Cloud).await).await;
            }

            #[tokio::test]
            async fn bitbucket_server() {
                super::$check(&Harness::start(Kind::Server).await).await;
            }
        }
    )*};
}

conformance!(
    pull_request_round_trip,
    comment_round_trip,
    status_round_trip,
    reviews_are_bound_to_their_head,
    permissions,
    merge_precondition,
    staging_operations,
    open_pull_requests,
    webhook_fixtures,
    world_webhooks,
    error_mapping,
    refused_for_good,
    webhook_deliveries,
);
