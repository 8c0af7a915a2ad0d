//! greg-testkit: a stateful fake GitHub and a fake Jenkins, served over real HTTP from one
//! in-memory [`World`], for greg's end-to-end tests and for `greg demo`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use greg_testkit::{FakeGithub, FakeJenkins, NewPr, World, fake_sha};
//! use greg_core::RepoName;
//!
//! let world = World::new("greg-bot");
//! let github = FakeGithub::start(world.clone())?; // greg's providers.github.api_url
//! let jenkins = FakeJenkins::start(world.clone())?; // greg's builders.jenkins.url
//! let repo = RepoName::new("acme", "demo");
//! world.create_repo(&repo)?;
//! world.create_job("demo-test", greg_testkit::GREG_PARAMETERS)?;
//! world.set_notification_url(Some("http://127.0.0.1:8080/build?builder=jenkins&token=t"));
//! let pr = world.open_pr(&repo, NewPr::new("carol", "fix", fake_sha("fix-1")))?;
//! // ... send greg the webhook, then:
//! world.wait_for("a test build", std::time::Duration::from_secs(5), |s| {
//!     s.jenkins.jobs.values().flat_map(|j| j.builds.values()).next().cloned()
//! }).await?;
//! # Ok(()) }
//! ```
//!
//! # Fidelity
//!
//! What is modelled, on the wire as the vendors do it:
//! - GitHub REST: pull requests (get, list), reviews (paginated with `Link`), collaborator
//!   permission (`permission` legacy role + `role_name`), issue comments (create, edit, delete,
//!   list), commit statuses and the combined status (GitHub's state rule), repository, branch,
//!   git refs (get, create, fast-forward-checked update, delete), `POST /merges` and
//!   `PUT /pulls/{n}/merge` (405 when not mergeable, 409 on a stale `sha`), `GET /user`,
//!   `GET /orgs/{org}/repos` and `GET /users/{username}/repos` (paginated), repository webhooks
//!   (list, create, update, delete; `config.secret` reads back as `"********"`; a second hook
//!   with the same URL is a 422). Response bodies
//!   carry every field the OpenAPI schemas require (checked by this crate's tests against
//!   tests/data/github/openapi-subset.json). `Authorization` is required (401 otherwise);
//!   unknown routes answer GitHub's 404 body.
//! - Jenkins: crumb issuer and the crumb check, basic auth, `buildWithParameters` (201 +
//!   `Location` of the queue item; undeclared parameters dropped as Jenkins does), queue items
//!   (waiting, left with `executable`, cancelled), builds, `stop`, `queue/cancelItem`, job
//!   `config.xml` read and write (parameters and notification endpoints are re-read from it),
//!   folder jobs, and Notification-plugin callbacks (QUEUED and STARTED when a build starts,
//!   COMPLETED and FINALIZED when it ends; field list per tests/data/SOURCES.md).
//! - Automatic CI ([`World::auto_ci`]): every build of a job finishes by itself after a fixed
//!   wall-clock duration, failing when its `COMMIT` contains a breaking head; and the history
//!   of every GitHub branch ([`World::branch_history`]).
//! - Faults: one-shot 500/502/403-rate-limit/429 answers ([`World::fail_next`]); lost
//!   callbacks ([`World::drop_callbacks`]); held queues ([`World::hold_queue`]).
//!
//! What is NOT modelled: webhook deliveries (the fake GitHub never calls greg, even with a
//! hook configured; tests send deliveries themselves), the organization/user distinction
//! (both listings answer for any owner with repositories), plain issues (only pull requests have comments), labels, teams, check runs,
//! GitHub Apps and installation tokens, rate-limit accounting (only injected faults), ETags and
//! conditional requests, case-insensitive repository names, GitHub's asynchronous mergeability
//! computation (`mergeable` is whatever the test sets), merge methods (squash and rebase merge
//! like a merge commit), file contents and diffs; in Jenkins: pipelines, executors and
//! blocked items, quiet periods, queue items expiring, console logs, artifacts, SCM data in
//! notifications (`scm` is `{}`), XML/TCP/UDP notification endpoints and credential-id URLs.
//! Times come from a logical clock ([`world::CLOCK_START_MS`], one second per fact).

#![warn(missing_docs)]

pub mod bitbucket;
pub mod github;
mod http;
pub mod jenkins;
pub mod openapi;
mod sink;
pub mod tester;
pub mod webhook;
pub mod world;

pub use bitbucket::webhook::BitbucketDelivery;
pub use bitbucket::{FakeBitbucketCloud, FakeBitbucketServer};
pub use github::{FakeApp, FakeGithub};
pub use jenkins::FakeJenkins;
pub use openapi::{OpenApi, Operation, Violation};
pub use sink::{Received, RequestSink};
pub use tester::{GregTester, TesterOptions};
pub use webhook::{WebhookDelivery, sign};
pub use world::bitbucket::{
    BbComment, BbHook, BbParticipant, BbPullRequest, BbRequest, BbStatus, Bitbucket,
    Flavor as BitbucketFlavor,
};
pub use world::github::{fake_sha, user_id};
pub use world::jenkins::GREG_PARAMETERS;
pub use world::{
    AutoCi, Comment, Delivery, FakeBuild, FakePullRequest, FakeReview, HoldMode, LoggedRequest,
    NewPr, Outcome, QueueItem, SentNotification, Server, Status, World, WorldError, WorldState,
};

/// Installs rustls' ring crypto provider as the process default if none is installed yet
/// (reqwest is built with `rustls-no-provider` and panics when building a client without one).
/// Idempotent; call it before building a `reqwest::Client` in tests.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: some provider is then installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
