//! [`GithubProvider`]: greg's [`Provider`] for GitHub, on octocrab's HTTP stack with greg's
//! own request and response structs (bodies exactly as GitHub's REST reference documents them,
//! <https://docs.github.com/en/rest>; schemas in tests/data/github/openapi-subset.json).
//!
//! Requests are not retried here: the engine decides from [`greg_core::Error::is_retryable`],
//! so a `POST` of a comment is never sent twice behind its back.

use crate::app::{Credentials, Installations};
use crate::config::GithubConfig;
use crate::error::{GithubAnswer, Operation, chain, from_octocrab, from_status, one_line};
use crate::routes::{self, MAX_PAGES};
use crate::webhook;
use crate::wire::{self, User, WirePullRequest};
use async_trait::async_trait;
use greg_core::UpstreamCounts;
use greg_core::{
    Capabilities, Comment, CommentId, CommitState, CommitStatus, Error, FastForward, Headers,
    Inbound, Login, MergeResult, Permission, PrNumber, Provider, PullRequest, PullRequestState,
    Reaction, RepoName, Result, Review, Secret, Sha, WebhookDelivery, WebhookError,
};
use http::{HeaderMap, Method};
use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Time allowed to open a connection to GitHub.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for each read or write on an open connection.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// GitHub's limit on a commit status description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 140;

/// The GitHub [`Provider`]: webhook verification and parsing (pure), and the REST calls greg
/// makes (pull request, reviews, permission, comments, commit statuses).
///
/// Cheap to share behind an `Arc`. The HTTP client is built on the first request, so
/// [`new`](Self::new) needs no async runtime; its connection worker then lives on the Tokio
/// runtime of that first request, which must outlive the provider's use.
pub struct GithubProvider {
    name: String,
    api_url: String,
    base_uri: http::Uri,
    bot_login: Option<Login>,
    pub(crate) credentials: Credentials,
    webhook_secret: Option<Secret>,
    /// The token client, or the app's JWT client.
    client: OnceLock<Result<Arc<Octocrab>>>,
    /// With an app: the installation clients.
    pub(crate) installations: Installations,
    /// Where each answer is counted for `/metrics` ([`Self::count_requests`]).
    upstream: Option<Arc<UpstreamCounts>>,
}

impl GithubProvider {
    /// Checks `cfg` and prepares the provider; no network access.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `name`, `api_url`, `password` (an empty token, or one
    /// with a line break) or `app` (see [`GithubConfig::app`]); the message never contains
    /// the token or the key.
    pub fn new(cfg: GithubConfig) -> Result<Self> {
        let (base_uri, credentials) = cfg.validate()?;
        let username = cfg.username.trim();
        Ok(Self {
            name: cfg.name.trim().to_owned(),
            api_url: cfg.api_url.trim().trim_end_matches('/').to_owned(),
            base_uri,
            bot_login: (!username.is_empty()).then(|| Login(username.to_owned())),
            credentials,
            webhook_secret: cfg.webhook_secret.filter(|s| !s.is_empty()),
            client: OnceLock::new(),
            installations: Installations::default(),
            upstream: None,
        })
    }

    /// The REST API root this provider talks to, without a trailing slash.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Replaces the body of an issue or pull-request comment
    /// (`PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}`, body `{"body": ...}`).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the comment was deleted; others per [`crate::error::from_status`].
    pub async fn update_comment(&self, repo: &RepoName, id: CommentId, body: &str) -> Result<()> {
        let what = format!("comment {id} in {repo}");
        self.send(
            &what,
            Method::PATCH,
            &routes::issue_comment(repo, id),
            Some(&CommentBody { body }),
        )
        .await?;
        Ok(())
    }

    /// Puts a reaction on an issue or pull-request comment as the token's user
    /// (`POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions`, body
    /// `{"content": "eyes"}`). GitHub answers 200 with the existing reaction when the user
    /// already reacted so: the call is idempotent.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the comment was deleted; others per [`crate::error::from_status`].
    pub async fn react(&self, repo: &RepoName, id: CommentId, reaction: Reaction) -> Result<()> {
        let what = format!("reaction to comment {id} in {repo}");
        self.send(
            &what,
            Method::POST,
            &routes::comment_reactions(repo, id),
            Some(&ReactionBody {
                content: reaction.as_str(),
            }),
        )
        .await?;
        Ok(())
    }

    /// Deletes an issue or pull-request comment
    /// (`DELETE /repos/{owner}/{repo}/issues/comments/{comment_id}`, 204). A comment that is
    /// already gone (404) is `Ok`.
    ///
    /// # Errors
    /// Per [`crate::error::from_status`].
    pub async fn remove_comment(&self, repo: &RepoName, id: CommentId) -> Result<()> {
        let what = format!("comment {id} in {repo}");
        match self
            .send(
                &what,
                Method::DELETE,
                &routes::issue_comment(repo, id),
                None::<&()>,
            )
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The combined commit status of `git_ref` (a sha, branch or tag): GitHub's overall state
    /// and the latest status of every context, all pages
    /// (`GET /repos/{owner}/{repo}/commits/{ref}/status`).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown ref; [`Error::Protocol`] for a state or sha GitHub
    /// does not document.
    pub async fn combined_status(&self, repo: &RepoName, git_ref: &str) -> Result<CombinedStatus> {
        let what = format!("combined status of {git_ref} in {repo}");
        // GitHub repeats `state` and `sha` on every page; the first page's are kept.
        let mut first: Option<(CommitState, Sha)> = None;
        let mut statuses = Vec::new();
        for page in 1..=MAX_PAGES {
            let reply = self
                .send(
                    &what,
                    Method::GET,
                    &routes::combined_status(repo, git_ref, page),
                    None::<&()>,
                )
                .await?;
            let wire: WireCombinedStatus = decode(&what, &reply.body)?;
            if first.is_none() {
                first = Some((commit_state(&what, "state", &wire.state)?, wire.sha));
            }
            let on_page = wire.statuses.len();
            for status in wire.statuses {
                statuses.push(status.into_core(&what)?);
            }
            let complete = wire.total_count.is_some_and(|t| statuses.len() >= t);
            if complete || on_page == 0 || !routes::has_next_page(reply.link(), on_page) {
                let (state, sha) = first.ok_or_else(|| protocol(&what, "no page was read"))?;
                return Ok(CombinedStatus {
                    state,
                    sha,
                    statuses,
                });
            }
        }
        Err(protocol(&what, &format!("more than {MAX_PAGES} pages")))
    }

    /// The token client or the app's JWT client, built on first use (see the type's
    /// documentation).
    pub(crate) fn client(&self) -> Result<Arc<Octocrab>> {
        self.client
            .get_or_init(|| self.build_client().map(Arc::new))
            .clone()
    }

    fn build_client(&self) -> Result<Octocrab> {
        let accept = "application/vnd.github+json".to_owned();
        let builder = Octocrab::builder()
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(IO_TIMEOUT))
            .set_write_timeout(Some(IO_TIMEOUT))
            .add_header(http::header::ACCEPT, accept);
        let builder = match &self.credentials {
            Credentials::Token(token) => builder.personal_token(token.expose().to_owned()),
            Credentials::App { id, key, .. } => builder.app(*id, key.clone()),
        };
        builder
            .base_uri(self.base_uri.clone())
            .and_then(|b| b.build())
            .map_err(|e| Error::InvalidConfig {
                key: "api_url".to_owned(),
                message: format!(
                    "cannot set up the HTTP client for {}: {}",
                    self.api_url,
                    one_line(&chain(&e))
                ),
            })
    }

    /// Counts every answer (status, `X-RateLimit-Remaining`) in `counts`, for `/metrics`.
    #[must_use]
    pub fn count_requests(mut self, counts: Arc<UpstreamCounts>) -> Self {
        self.upstream = Some(counts);
        self
    }

    /// Sends one request and returns the successful reply, or the mapped error
    /// ([`Operation::Other`]).
    ///
    /// `what` names the object for error messages; `path` comes from [`routes`].
    pub(crate) async fn send<B: Serialize + ?Sized>(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Reply> {
        self.send_as(Operation::Other, what, method, path, body)
            .await
    }

    /// [`send`](Self::send) for an operation whose failures [`from_status`] reads in its own
    /// way (see [`Operation`]).
    pub(crate) async fn send_as<B: Serialize + ?Sized>(
        &self,
        op: Operation,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Reply> {
        let client = self.client_for(path).await?;
        let sent = match method {
            Method::GET => client._get(path).await,
            Method::POST => client._post(path, body).await,
            Method::PATCH => client._patch(path, body).await,
            Method::DELETE => client._delete(path, body).await,
            Method::PUT => client._put(path, body).await,
            other => {
                return Err(protocol(
                    what,
                    &format!("method {other} is not used by greg"),
                ));
            }
        };
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                if let Some(u) = &self.upstream {
                    u.record(&self.name, None, None);
                }
                return Err(from_octocrab(what, e));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(u) = &self.upstream {
            let remaining = headers
                .get("x-ratelimit-remaining")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            u.record(&self.name, Some(status.as_u16()), remaining);
        }
        let text = client
            .body_to_string(response)
            .await
            .map_err(|e| from_octocrab(what, e))?;
        tracing::debug!(
            provider = %self.name,
            %method,
            path,
            status = status.as_u16(),
            "GitHub answered"
        );
        if !status.is_success() {
            return Err(from_status(
                op,
                what,
                status,
                &headers,
                &GithubAnswer::parse(status, &text),
            ));
        }
        Ok(Reply {
            headers,
            body: text,
        })
    }
}

impl fmt::Display for GithubProvider {
    /// `github(<api_url>)`; never the token or the webhook secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "github({})", self.api_url)
    }
}

impl fmt::Debug for GithubProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubProvider")
            .field("name", &self.name)
            .field("api_url", &self.api_url)
            .field("bot_login", &self.bot_login)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for GithubProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn bot_login(&self) -> Option<&Login> {
        self.bot_login.as_ref()
    }

    fn verify_webhook(
        &self,
        headers: &Headers,
        body: &[u8],
    ) -> std::result::Result<(), WebhookError> {
        webhook::verify_signature(self.webhook_secret.as_ref(), headers, body)
    }

    fn parse_webhook(
        &self,
        headers: &Headers,
        body: &[u8],
    ) -> std::result::Result<Inbound, WebhookError> {
        webhook::parse_event(headers, body)
    }

    fn delivery_id(&self, headers: &Headers) -> Option<String> {
        webhook::delivery_id(headers)
    }

    async fn pull_request(&self, repo: &RepoName, pr: PrNumber) -> Result<PullRequest> {
        let what = format!("pull request {repo}#{pr}");
        let reply = self
            .send(
                &what,
                Method::GET,
                &routes::pull_request(repo, pr),
                None::<&()>,
            )
            .await?;
        let wire: WirePullRequest = decode(&what, &reply.body)?;
        Ok(wire.into_core())
    }

    async fn reviews(&self, repo: &RepoName, pr: PrNumber) -> Result<Vec<Review>> {
        let what = format!("reviews of {repo}#{pr}");
        let items: Vec<WireReview> = self
            .get_all_pages(&what, |page| routes::reviews(repo, pr, page))
            .await?;
        Ok(items
            .into_iter()
            .filter_map(WireReview::into_core)
            .collect())
    }

    async fn permission(&self, repo: &RepoName, user: &Login) -> Result<Permission> {
        let what = format!("permission of {user} on {repo}");
        let reply = self
            .send(
                &what,
                Method::GET,
                &routes::permission(repo, user),
                None::<&()>,
            )
            .await;
        match reply {
            Ok(reply) => decode::<WirePermission>(&what, &reply.body)?.into_core(&what),
            // GitHub answers 404 for a login that is not a user; it cannot command greg.
            Err(Error::NotFound { .. }) => Ok(Permission::None),
            Err(e) => Err(e),
        }
    }

    async fn post_comment(&self, repo: &RepoName, pr: PrNumber, body: &str) -> Result<CommentId> {
        let what = format!("comment on {repo}#{pr}");
        let reply = self
            .send(
                &what,
                Method::POST,
                &routes::issue_comments(repo, pr),
                Some(&CommentBody { body }),
            )
            .await?;
        let created: WireCreated = decode(&what, &reply.body)?;
        Ok(CommentId(created.id))
    }

    async fn set_status(&self, repo: &RepoName, sha: &Sha, status: &CommitStatus) -> Result<()> {
        let what = format!("commit status {} on {repo}@{}", status.context, sha.short());
        self.send(
            &what,
            Method::POST,
            &routes::statuses(repo, sha),
            Some(&StatusBody::new(status)),
        )
        .await?;
        Ok(())
    }

    async fn edit_comment(
        &self,
        repo: &RepoName,
        _pr: PrNumber,
        id: CommentId,
        body: &str,
    ) -> Result<()> {
        self.update_comment(repo, id, body).await
    }

    async fn comments(&self, repo: &RepoName, pr: PrNumber) -> Result<Vec<Comment>> {
        let what = format!("comments of {repo}#{pr}");
        let items: Vec<WireComment> = self
            .get_all_pages(&what, |page| routes::issue_comments_page(repo, pr, page))
            .await?;
        Ok(items
            .into_iter()
            .map(|c| Comment {
                id: CommentId(c.id),
                author: c.user.into_login(),
                body: c.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn pull_requests_for_commit(
        &self,
        repo: &RepoName,
        sha: &Sha,
    ) -> Result<Vec<PullRequest>> {
        let what = format!("pull requests of {repo}@{}", sha.short());
        let items: Vec<WirePullRequest> = self
            .get_all_pages(&what, |page| routes::commit_pulls(repo, sha, page))
            .await?;
        let mut pulls: Vec<PullRequest> =
            items.into_iter().map(WirePullRequest::into_core).collect();
        // GitHub lists every pull request that contains the commit; the ones it heads come
        // first, open before closed.
        pulls.sort_by_key(|p| (&p.head_sha != sha, p.state != PullRequestState::Open));
        Ok(pulls)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            fast_forward: true,
            staging_refs: true,
            merge_pull_request: true,
            reactions: true,
        }
    }

    async fn add_reaction(
        &self,
        repo: &RepoName,
        _pr: PrNumber,
        comment: CommentId,
        reaction: Reaction,
    ) -> Result<()> {
        self.react(repo, comment, reaction).await
    }

    async fn delete_comment(
        &self,
        repo: &RepoName,
        _pr: PrNumber,
        comment: CommentId,
    ) -> Result<()> {
        self.remove_comment(repo, comment).await
    }

    async fn open_pull_requests(&self, repo: &RepoName) -> Result<Vec<PullRequest>> {
        self.list_open_pulls(repo).await
    }

    async fn branch_tip(&self, repo: &RepoName, branch: &str) -> Result<Option<Sha>> {
        self.read_branch_tip(repo, branch).await
    }

    async fn set_branch(&self, repo: &RepoName, branch: &str, sha: &Sha) -> Result<()> {
        self.create_or_move_branch(repo, branch, sha).await
    }

    async fn merge_into_branch(
        &self,
        repo: &RepoName,
        branch: &str,
        head: &Sha,
        message: &str,
    ) -> Result<MergeResult> {
        self.merge_branch(repo, branch, head, message).await
    }

    async fn fast_forward(&self, repo: &RepoName, branch: &str, to: &Sha) -> Result<FastForward> {
        self.fast_forward_branch(repo, branch, to).await
    }

    async fn delete_branch(&self, repo: &RepoName, branch: &str) -> Result<()> {
        self.remove_branch(repo, branch).await
    }

    async fn merge_pull_request(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        head: &Sha,
        message: &str,
    ) -> Result<()> {
        self.merge_pull(repo, pr, head, message).await
    }

    async fn webhook_deliveries(&self, repo: &RepoName, url: &str) -> Result<Vec<WebhookDelivery>> {
        self.list_webhook_deliveries(repo, url).await
    }

    async fn redeliver_webhook(
        &self,
        repo: &RepoName,
        hook_id: u64,
        delivery_id: u64,
    ) -> Result<()> {
        self.redeliver(repo, hook_id, delivery_id).await
    }
}

/// A combined commit status (`GET /repos/{owner}/{repo}/commits/{ref}/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CombinedStatus {
    /// GitHub's overall verdict: `failure` if any context failed or errored, `pending` if any
    /// is pending or there are none, else `success`.
    pub state: CommitState,
    /// The commit the ref resolved to.
    pub sha: Sha,
    /// The latest status of each context; `description` is empty when GitHub has none.
    pub statuses: Vec<CommitStatus>,
}

/// A successful reply: headers (for `Link`) and the body text.
pub(crate) struct Reply {
    headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn link(&self) -> Option<&str> {
        self.headers.get(http::header::LINK)?.to_str().ok()
    }
}

/// Body of `POST .../issues/{n}/comments` and `PATCH .../issues/comments/{id}`.
#[derive(Debug, Serialize)]
struct CommentBody<'a> {
    body: &'a str,
}

/// Body of `POST .../issues/comments/{id}/reactions`.
#[derive(Debug, Serialize)]
struct ReactionBody {
    content: &'static str,
}

/// Body of `POST .../statuses/{sha}`: `state` and `context` always, `description` cut to
/// [`MAX_DESCRIPTION_CHARS`], `target_url` only when there is one.
#[derive(Debug, Serialize)]
struct StatusBody<'a> {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_url: Option<&'a str>,
    description: String,
    context: &'a str,
}

impl<'a> StatusBody<'a> {
    fn new(status: &'a CommitStatus) -> Self {
        Self {
            state: status.state.as_str(),
            target_url: status.target_url.as_deref().filter(|u| !u.is_empty()),
            description: status_description(&status.description),
            context: &status.context,
        }
    }
}

/// One line of at most [`MAX_DESCRIPTION_CHARS`] characters (never split inside a
/// character); a cut description ends with `…`.
pub(crate) fn status_description(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.trim();
    if line.chars().count() <= MAX_DESCRIPTION_CHARS {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(MAX_DESCRIPTION_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// An item of `GET .../pulls/{n}/reviews`.
#[derive(Debug, Deserialize)]
struct WireReview {
    user: Option<User>,
    state: String,
    commit_id: Option<Sha>,
}

impl WireReview {
    /// `None` for reviews greg cannot count: pending (not submitted), by a deleted account, or
    /// in a state GitHub does not document.
    fn into_core(self) -> Option<Review> {
        let state = webhook::review_state(&self.state);
        if state.is_none() {
            tracing::debug!(state = %self.state, "Skipping a review in a state greg does not count");
        }
        Some(Review {
            reviewer: self.user?.into_login(),
            state: state?,
            commit: self.commit_id,
        })
    }
}

/// `GET .../collaborators/{username}/permission`: `permission` is the legacy level
/// (`admin`, `write`, `read`, `none`), `role_name` the role (`maintain`, `triage`, or a custom
/// role name).
#[derive(Debug, Deserialize)]
struct WirePermission {
    permission: String,
    role_name: Option<String>,
}

impl WirePermission {
    fn into_core(self, what: &str) -> Result<Permission> {
        self.role_name
            .as_deref()
            .and_then(permission_level)
            .or_else(|| permission_level(&self.permission))
            .ok_or_else(|| {
                protocol(
                    what,
                    &format!("unknown permission {:?}", one_line(&self.permission)),
                )
            })
    }
}

fn permission_level(raw: &str) -> Option<Permission> {
    match raw.to_ascii_lowercase().as_str() {
        "admin" => Some(Permission::Admin),
        "maintain" => Some(Permission::Maintain),
        "write" | "push" => Some(Permission::Write),
        "triage" => Some(Permission::Triage),
        "read" | "pull" => Some(Permission::Read),
        "none" => Some(Permission::None),
        _ => None,
    }
}

/// The `id` of a created object (an issue comment).
#[derive(Debug, Deserialize)]
struct WireCreated {
    id: u64,
}

/// An issue comment as listed by `GET .../issues/{n}/comments`; `body` may be absent with
/// some media types.
#[derive(Debug, Deserialize)]
struct WireComment {
    id: u64,
    user: User,
    body: Option<String>,
}

/// `GET .../commits/{ref}/status`.
#[derive(Debug, Deserialize)]
struct WireCombinedStatus {
    state: String,
    sha: Sha,
    total_count: Option<usize>,
    statuses: Vec<WireStatus>,
}

#[derive(Debug, Deserialize)]
struct WireStatus {
    state: String,
    context: String,
    description: Option<String>,
    target_url: Option<String>,
}

impl WireStatus {
    fn into_core(self, what: &str) -> Result<CommitStatus> {
        Ok(CommitStatus {
            state: commit_state(what, "statuses[].state", &self.state)?,
            context: self.context,
            description: self.description.unwrap_or_default(),
            target_url: self.target_url,
        })
    }
}

fn commit_state(what: &str, field: &str, raw: &str) -> Result<CommitState> {
    match raw {
        "pending" => Ok(CommitState::Pending),
        "success" => Ok(CommitState::Success),
        "failure" => Ok(CommitState::Failure),
        "error" => Ok(CommitState::Error),
        other => Err(protocol(
            what,
            &format!("unknown commit state {:?} in {field}", one_line(other)),
        )),
    }
}

impl GithubProvider {
    /// Every item of a paged list call: `GET route(page)` for pages 1, 2, … until a page is
    /// empty or its `Link` header announces no next page, at most [`MAX_PAGES`] pages
    /// ([`Error::Protocol`] beyond).
    pub(crate) async fn get_all_pages<T: DeserializeOwned>(
        &self,
        what: &str,
        route: impl Fn(usize) -> String,
    ) -> Result<Vec<T>> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let reply = self
                .send(what, Method::GET, &route(page), None::<&()>)
                .await?;
            let items: Vec<T> = decode(what, &reply.body)?;
            let on_page = items.len();
            all.extend(items);
            if on_page == 0 || !routes::has_next_page(reply.link(), on_page) {
                return Ok(all);
            }
        }
        Err(protocol(what, &format!("more than {MAX_PAGES} pages")))
    }
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, body: &str) -> Result<T> {
    wire::from_json(body.as_bytes()).map_err(|e| protocol(what, &e.to_string()))
}

pub(crate) fn protocol(what: &str, message: &str) -> Error {
    Error::Protocol {
        message: format!("{what}: {message}"),
    }
}

mod access;
mod staging;

#[cfg(test)]
mod tests;
