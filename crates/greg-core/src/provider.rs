//! The two plug-in boundaries: [`Provider`] (GitHub; Bitbucket Cloud and Server next) and
//! [`Builder`] (Jenkins). Everything else in greg is concrete.
//!
//! Contract for implementers:
//! - Inbound webhook handling is split in two pure steps, `verify_webhook` then
//!   `parse_webhook`; neither does IO, so the HTTP layer can answer before any network call.
//! - Every outbound call maps HTTP failures onto [`crate::Error`] in one function.
//! - Implementations are `Display` (e.g. `github(https://api.github.com)`) for logs, and never
//!   print credentials.

use crate::build::{BuildParams, BuildState, BuildUpdate};
use crate::error::Result;
use crate::event::{Event, Inbound, ReviewState, Unresolved};
use crate::ids::{BuildNumber, CommentId, JobName, Login, PrNumber, QueueItemId, RepoName, Sha};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Request headers of an inbound delivery, names compared case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Builds a header list from `(name, value)` pairs.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// The first value of a header, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why an inbound delivery was refused. Each maps to one HTTP answer (SPEC §3); the message
/// is one line and never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// 401: missing or wrong signature.
    #[error("{0}")]
    Unauthorized(String),
    /// 400: the body is not the JSON the event promises (with the JSON path when known).
    #[error("{0}")]
    Malformed(String),
    /// 400: a required header is missing (event name, delivery id).
    #[error("{0}")]
    MissingHeader(String),
}

/// Open or closed, as the provider reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestState {
    Open,
    Closed,
    Merged,
}

/// A pull request as greg needs it for the rules and for builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub number: PrNumber,
    pub state: PullRequestState,
    pub draft: bool,
    pub title: String,
    pub author: Login,
    /// Head commit.
    pub head_sha: Sha,
    /// Head branch name (`BRANCH`).
    pub head_ref: String,
    /// Repository the head lives in; `None` when the fork was deleted.
    pub head_repo: Option<RepoName>,
    /// Target branch name.
    pub base_ref: String,
    pub base_repo: RepoName,
    /// Provider's conflict check: `Some(false)` = conflicts, `None` = not computed yet.
    pub mergeable: Option<bool>,
    /// Web page of the pull request.
    pub html_url: Option<String>,
}

/// A review as listed by the provider (GitHub `GET .../pulls/{n}/reviews`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub reviewer: Login,
    pub state: ReviewState,
    /// The head the review was given on.
    pub commit: Option<Sha>,
}

/// A user's permission on a repository, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    /// Write or better: may command greg.
    pub fn can_write(&self) -> bool {
        *self >= Permission::Write
    }
}

/// Commit status states (GitHub's four).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitState {
    Pending,
    Success,
    Failure,
    Error,
}

impl CommitState {
    /// Lower-case name, as GitHub spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
            CommitState::Error => "error",
        }
    }
}

/// A commit status greg sets (GitHub `POST /repos/{o}/{r}/statuses/{sha}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitStatus {
    pub state: CommitState,
    /// `greg/test`, `greg/merge`, `greg/try`.
    pub context: String,
    /// One line, at most 140 characters (GitHub's limit).
    pub description: String,
    /// Link to the build.
    pub target_url: Option<String>,
}

/// What merging a head into a branch did (GitHub `POST /repos/{owner}/{repo}/merges`: 201,
/// 204, 409).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeResult {
    /// A merge commit was made; the branch now points at it.
    Merged(Sha),
    /// The head is already contained in the branch; nothing was made.
    UpToDate,
    /// The head does not merge cleanly into the branch.
    Conflict,
}

/// What a fast-forward of a branch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FastForward {
    /// The branch now points at the requested commit.
    Done,
    /// The branch has moved to a commit the requested one does not descend from; it was
    /// left alone (the compare-and-swap failed).
    Moved,
}

/// What a provider can do beyond the operations every provider has. The engine chooses its
/// strategy from these flags (docs/providers.md has the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// [`Provider::fast_forward`] moves a branch to a given commit (GitHub: yes; Bitbucket
    /// Cloud and Server have no such REST operation).
    pub fast_forward: bool,
    /// [`Provider::set_branch`], [`Provider::merge_into_branch`] and
    /// [`Provider::delete_branch`] work, so staging refs can be made through the API.
    pub staging_refs: bool,
    /// [`Provider::merge_pull_request`] merges a pull request only if its head is the
    /// expected sha.
    pub merge_pull_request: bool,
    /// [`Provider::add_reaction`] puts an emoji reaction on a comment (GitHub: yes; Bitbucket
    /// has no reactions in its REST API). Without it, `comments: false` still answers commands
    /// with comments.
    pub reactions: bool,
}

/// An emoji reaction greg puts on a command's comment (`repos[].comments: false`): it was
/// seen, it was carried out, it was refused. GitHub's `content` names: `eyes`, `rocket`,
/// `confused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reaction {
    /// 👀: the command was recognised and is being handled.
    Eyes,
    /// 🚀: the command was carried out.
    Rocket,
    /// 😕: the command was refused (permission, rules, or it could not be parsed).
    Confused,
}

impl Reaction {
    /// GitHub's name of the reaction (`content` of `POST .../reactions`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Reaction::Eyes => "eyes",
            Reaction::Rocket => "rocket",
            Reaction::Confused => "confused",
        }
    }
}

/// One recent delivery of a repository webhook, as the provider recorded it (GitHub: an item
/// of `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries`,
/// <https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// The webhook it was sent by.
    pub hook_id: u64,
    /// The provider's id of this delivery attempt (what a redelivery names).
    pub id: u64,
    /// The delivery GUID (`X-GitHub-Delivery`): the id greg deduplicates deliveries on.
    pub guid: String,
    /// The event name (`issue_comment`, `pull_request`, ...).
    pub event: String,
    /// The HTTP status greg answered; 0 when greg could not be reached at all.
    pub status_code: u16,
    /// When it was delivered, in milliseconds since the Unix epoch.
    pub delivered_ms: i64,
    /// True when this attempt was itself a redelivery.
    pub redelivery: bool,
}

/// A comment on a pull request, as [`Provider::comments`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// The provider's id of the comment.
    pub id: CommentId,
    /// Who wrote it.
    pub author: Login,
    /// The Markdown body.
    pub body: String,
}

/// The error the default staging operations return.
fn not_supported<T>(operation: &'static str) -> Result<T> {
    Err(crate::Error::NotSupported {
        operation,
        implementer: "this provider",
    })
}

/// A source provider: where the code, pull requests, comments and statuses live.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Display {
    /// The provider name used in config and in `?provider=` (e.g. `github`).
    fn name(&self) -> &str;

    /// The bot's own login, when known from the configuration (its comments are ignored, and
    /// users may address it by it).
    fn bot_login(&self) -> Option<&Login>;

    /// Checks the delivery's signature when a webhook secret is configured. Pure; constant
    /// time. `Ok(())` when no secret is configured.
    fn verify_webhook(
        &self,
        headers: &Headers,
        body: &[u8],
    ) -> std::result::Result<(), WebhookError>;

    /// Parses a verified delivery into a normalized event (several for a delivery that carries
    /// several, an [`Event::Unresolved`] for one that needs a lookup), or `Ignored`. Pure.
    fn parse_webhook(
        &self,
        headers: &Headers,
        body: &[u8],
    ) -> std::result::Result<Inbound, WebhookError>;

    /// The delivery id header (GitHub `X-GitHub-Delivery`), used to drop repeats.
    fn delivery_id(&self, headers: &Headers) -> Option<String>;

    /// Reads a pull request.
    async fn pull_request(&self, repo: &RepoName, pr: PrNumber) -> Result<PullRequest>;

    /// Lists the reviews of a pull request, oldest first (all pages).
    async fn reviews(&self, repo: &RepoName, pr: PrNumber) -> Result<Vec<Review>>;

    /// The permission of `user` on `repo`.
    async fn permission(&self, repo: &RepoName, user: &Login) -> Result<Permission>;

    /// Posts a comment on a pull request; returns its id.
    async fn post_comment(&self, repo: &RepoName, pr: PrNumber, body: &str) -> Result<CommentId>;

    /// Sets a commit status on `sha`.
    async fn set_status(&self, repo: &RepoName, sha: &Sha, status: &CommitStatus) -> Result<()>;

    /// Completes an [`Event::Unresolved`] this provider's `parse_webhook` made, with the API
    /// calls it needs (Bitbucket Cloud: the full head commit of an abbreviated hash). Called in
    /// the repository's lane, so statuses and builds only ever see complete events.
    ///
    /// Errors: retryable ones ([`crate::Error::is_retryable`]) retry the delivery;
    /// [`crate::Error::NotFound`] (the commit is gone: a force-push since) drops it; the rest
    /// fail it. Default: [`crate::Error::NotSupported`], for providers whose events are
    /// always complete.
    async fn resolve(&self, unresolved: &Unresolved) -> Result<Event> {
        let _ = unresolved;
        not_supported("resolving an event")
    }

    /// What this provider supports beyond the required operations.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Lists the open pull requests of `repo` (all pages), for reconciliation. `mergeable` is
    /// `None` in list answers.
    async fn open_pull_requests(&self, repo: &RepoName) -> Result<Vec<PullRequest>> {
        let _ = repo;
        not_supported("listing pull requests")
    }

    /// The tip of `branch` (a name without `refs/heads/`), `None` when it does not exist.
    async fn branch_tip(&self, repo: &RepoName, branch: &str) -> Result<Option<Sha>> {
        let _ = (repo, branch);
        not_supported("reading a branch")
    }

    /// Creates `branch` at `sha`, or moves it there (forced) when it exists. Only for greg's
    /// own staging refs.
    async fn set_branch(&self, repo: &RepoName, branch: &str, sha: &Sha) -> Result<()> {
        let _ = (repo, branch, sha);
        not_supported("creating a staging ref")
    }

    /// Merges `head` into `branch` with a merge commit whose message is `message`.
    async fn merge_into_branch(
        &self,
        repo: &RepoName,
        branch: &str,
        head: &Sha,
        message: &str,
    ) -> Result<MergeResult> {
        let _ = (repo, branch, head, message);
        not_supported("merging into a staging ref")
    }

    /// Moves `branch` to `to` only when `to` descends from the branch's current tip (a
    /// fast-forward; never forced). [`FastForward::Moved`] when it does not.
    async fn fast_forward(&self, repo: &RepoName, branch: &str, to: &Sha) -> Result<FastForward> {
        let _ = (repo, branch, to);
        not_supported("fast-forwarding a branch")
    }

    /// Deletes `branch`; deleting a branch that does not exist is `Ok`.
    async fn delete_branch(&self, repo: &RepoName, branch: &str) -> Result<()> {
        let _ = (repo, branch);
        not_supported("deleting a branch")
    }

    /// Merges pull request `pr` through the provider, only if its head is still `head`
    /// (the alternative to a fast-forward where the provider cannot move a branch).
    /// [`crate::Error::PreconditionFailed`] when the head moved, [`crate::Error::Conflict`]
    /// when it cannot be merged.
    async fn merge_pull_request(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        head: &Sha,
        message: &str,
    ) -> Result<()> {
        let _ = (repo, pr, head, message);
        not_supported("merging a pull request")
    }

    /// The recent deliveries (newest first, the provider's own window: GitHub keeps 3 days) of
    /// the repository webhook whose URL starts with `url` (greg's `/repo` endpoint), so that
    /// deliveries that failed while greg was down can be asked for again.
    /// [`crate::Error::NotFound`] when no such webhook exists; [`crate::Error::PermissionDenied`]
    /// without admin rights on the repository.
    async fn webhook_deliveries(&self, repo: &RepoName, url: &str) -> Result<Vec<WebhookDelivery>> {
        let _ = (repo, url);
        not_supported("listing webhook deliveries")
    }

    /// Replaces the body of comment `id` on pull request `pr` (the report comment of SPEC §8,
    /// edited in place). [`crate::Error::NotFound`] when the comment is gone (deleted by a
    /// person): the caller posts a new one. Bitbucket Server locks comments by version; its
    /// adapter reads the current version first and retries once on a version conflict.
    async fn edit_comment(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        id: CommentId,
        body: &str,
    ) -> Result<()> {
        let _ = (repo, pr, id, body);
        not_supported("editing a comment")
    }

    /// Puts `reaction` on comment `comment` of pull request `pr` as greg's user. Idempotent:
    /// the same reaction twice is one reaction (GitHub answers the existing one), so a
    /// repeated delivery does not add a second. [`crate::Error::NotFound`] when the comment
    /// is gone. Default: [`crate::Error::NotSupported`] (see [`Capabilities::reactions`]).
    async fn add_reaction(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        comment: CommentId,
        reaction: Reaction,
    ) -> Result<()> {
        let _ = (repo, pr, comment, reaction);
        not_supported("reacting to a comment")
    }

    /// Deletes comment `comment` of pull request `pr` (`repos[].delete_commands`). A comment
    /// that is already gone is `Ok`. Bitbucket Server locks comments by version; its adapter
    /// reads the current version first. Default: [`crate::Error::NotSupported`].
    async fn delete_comment(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        comment: CommentId,
    ) -> Result<()> {
        let _ = (repo, pr, comment);
        not_supported("deleting a comment")
    }

    /// The comments on pull request `pr`, oldest first (all pages), so that greg finds its own
    /// report comment again by its hidden marker when the stored id is lost.
    async fn comments(&self, repo: &RepoName, pr: PrNumber) -> Result<Vec<Comment>> {
        let _ = (repo, pr);
        not_supported("listing comments")
    }

    /// The pull requests whose head is `sha` (open ones first). GitHub answers it in one call
    /// (`GET /repos/{owner}/{repo}/commits/{sha}/pulls`); the default scans
    /// [`Provider::open_pull_requests`] for a head equal to `sha`, as notify_pr did.
    async fn pull_requests_for_commit(
        &self,
        repo: &RepoName,
        sha: &Sha,
    ) -> Result<Vec<PullRequest>> {
        let open = self.open_pull_requests(repo).await?;
        Ok(open.into_iter().filter(|p| &p.head_sha == sha).collect())
    }

    /// Asks the provider to send delivery `delivery_id` of webhook `hook_id` again (GitHub:
    /// `POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts`).
    async fn redeliver_webhook(
        &self,
        repo: &RepoName,
        hook_id: u64,
        delivery_id: u64,
    ) -> Result<()> {
        let _ = (repo, hook_id, delivery_id);
        not_supported("redelivering a webhook delivery")
    }
}

/// A build server that runs parameterized jobs (Jenkins).
#[async_trait]
pub trait Builder: Send + Sync + fmt::Display {
    /// The builder name used in config and in `?builder=` (e.g. `jenkins`).
    fn name(&self) -> &str;

    /// Parses a notification callback body. Pure.
    fn parse_notification(&self, body: &[u8]) -> std::result::Result<Inbound, WebhookError>;

    /// Queues a build of `job` with `params`; returns the queue item.
    async fn trigger(&self, job: &JobName, params: &BuildParams) -> Result<QueueItemId>;

    /// Reads where a queued build stands (follows the queue item to the build).
    async fn queue_item(&self, item: QueueItemId) -> Result<BuildState>;

    /// Reads a build by number.
    async fn build(&self, job: &JobName, number: BuildNumber) -> Result<BuildState>;

    /// Stops a running build (idempotent: stopping a finished build is `Ok`).
    async fn stop(&self, job: &JobName, number: BuildNumber) -> Result<()>;

    /// Cancels a queue item that has not started (idempotent).
    async fn cancel_queued(&self, item: QueueItemId) -> Result<()>;

    /// The web page of a build, for commit statuses before the build reports its own URL.
    fn build_url(&self, job: &JobName, number: BuildNumber) -> String;
}

/// Convenience for callers holding a build update: the normalized event wrapper.
impl From<BuildUpdate> for crate::event::Event {
    fn from(b: BuildUpdate) -> Self {
        crate::event::Event::Build(b)
    }
}
