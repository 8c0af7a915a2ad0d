//! [`BitbucketProvider`]: greg's [`Provider`] for Bitbucket Cloud and Server/Data Center, on
//! reqwest, with greg's own request and response structs. The flavor-specific calls live in
//! `client/cloud.rs` and `client/server.rs`; this module holds the type, the HTTP plumbing and
//! the trait implementation that dispatches on the flavor.
//!
//! Requests are not retried here: the engine decides from [`greg_core::Error::is_retryable`],
//! so a `POST` of a comment is never sent twice behind its back. Redirects are never
//! followed (a redirect would carry the credentials to wherever it points); one is reported as
//! an error naming `api_url`.

mod cloud;
mod comments;
mod server;
mod staging;

pub(crate) use cloud::Page as CloudPage;
pub(crate) use server::Page as ServerPage;

use crate::config::{BitbucketConfig, Flavor};
use crate::error::{Operation, from_status, from_transport};
use crate::event::{Parsed, UnresolvedEvent};
use crate::routes::Route;
use crate::webhook;
use crate::wire;
use async_trait::async_trait;
use greg_core::{
    Capabilities, CommentId, CommitState, CommitStatus, Error, Event, FastForward, Headers,
    Inbound, Login, MergeResult, Permission, PrNumber, Provider, PullRequest, RepoName, Result,
    Review, Secret, Sha, Unresolved, WebhookError,
};
use reqwest::header::ACCEPT;
use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;
use url::Url;

/// Time allowed to open a connection to Bitbucket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole request, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer greg reads from Bitbucket, in bytes.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Longest commit status description greg sends, in characters (greg-core's
/// [`CommitStatus::description`] contract, GitHub's limit; both Bitbucket flavors accept it).
pub const MAX_DESCRIPTION_CHARS: usize = 140;

/// The Bitbucket [`Provider`]: webhook verification and parsing (pure), and the REST calls
/// greg makes (pull request, reviews, permission, comments, build statuses), on Cloud's REST
/// 2.0 or Server's REST 1.0 according to [`Flavor`].
///
/// `Display` prints `bitbucket-cloud(<api_url>)` or `bitbucket-server(<api_url>)`; neither
/// `Display` nor `Debug` print the password or the webhook secret. Cheap to share behind an
/// `Arc`.
pub struct BitbucketProvider {
    name: String,
    flavor: Flavor,
    /// The API root, path ending in `/`.
    pub(crate) base: Url,
    username: String,
    password: Secret,
    webhook_secret: Option<Secret>,
    /// Server: the configured username. Cloud: the account id, once [`Self::identify`] ran.
    bot_login: OnceLock<Login>,
    http: reqwest::Client,
    /// Cloud: abbreviated heads already looked up, `(repository, abbreviation) → full id`. A
    /// commit id never changes, so a command that reads the pull request and then its reviews
    /// looks its head up once. Emptied when it reaches [`RESOLVED_CAPACITY`] entries.
    resolved: std::sync::Mutex<std::collections::HashMap<(RepoName, String), Sha>>,
    /// Where each answer is counted for `/metrics` ([`Self::count_requests`]).
    upstream: Option<std::sync::Arc<greg_core::UpstreamCounts>>,
}

/// Most abbreviated heads [`BitbucketProvider`] remembers (a few hundred KiB at most).
const RESOLVED_CAPACITY: usize = 4096;

/// A successful answer: its status, headers and body.
pub(crate) struct Reply {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl BitbucketProvider {
    /// Checks `cfg` and builds the HTTP client; no network access.
    ///
    /// When the process has no rustls crypto provider installed yet, this installs ring's
    /// (greg's one provider) as the process default, since reqwest is built without one.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `providers.<name>.name`, `.api_url`, `.username` or
    /// `.password` (see [`BitbucketConfig`]); the message never contains the password.
    pub fn new(cfg: BitbucketConfig) -> Result<Self> {
        let base = cfg.base_url()?;
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Fails only when another thread installed one meanwhile, which is as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let name = cfg.name.trim().to_owned();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("greg/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::InvalidConfig {
                key: format!("providers.{name}"),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        let username = cfg.username.trim().to_owned();
        let bot_login = OnceLock::new();
        if cfg.flavor == Flavor::Server && !username.is_empty() {
            let _ = bot_login.set(Login(username.clone()));
        }
        Ok(Self {
            name,
            flavor: cfg.flavor,
            base,
            username,
            password: cfg.password,
            webhook_secret: cfg.webhook_secret.filter(|s| !s.is_empty()),
            bot_login,
            http,
            resolved: std::sync::Mutex::default(),
            upstream: None,
        })
    }

    /// A remembered full id of an abbreviated head (Cloud).
    pub(crate) fn remembered(&self, key: &(RepoName, String)) -> Option<Sha> {
        // A poisoned lock only means another lookup panicked; the map itself is still valid.
        let map = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).cloned()
    }

    /// Remembers the full id of an abbreviated head (Cloud).
    pub(crate) fn remember(&self, key: (RepoName, String), full: Sha) {
        let mut map = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= RESOLVED_CAPACITY {
            map.clear();
        }
        map.insert(key, full);
    }

    /// Cloud or Server.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// `bitbucket-cloud` or `bitbucket-server`: the `implementer` of
    /// [`Error::NotSupported`] answers.
    pub fn implementer(&self) -> &'static str {
        match self.flavor {
            Flavor::Cloud => "bitbucket-cloud",
            Flavor::Server => "bitbucket-server",
        }
    }

    /// [`Error::NotSupported`] for `operation`, naming this flavor.
    fn not_supported<T>(&self, operation: &'static str) -> Result<T> {
        Err(Error::NotSupported {
            operation,
            implementer: self.implementer(),
        })
    }

    /// The API root this provider talks to, without a trailing slash.
    pub fn api_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// Parses a delivery into greg-bitbucket's own [`Parsed`] (several pushed branches,
    /// unresolved Cloud events), as the `Provider` impl does before converting to greg-core;
    /// see [`webhook::parse`]. Pure.
    ///
    /// # Errors
    /// As [`webhook::parse`].
    pub fn parse(
        &self,
        headers: &Headers,
        body: &[u8],
    ) -> std::result::Result<Parsed, WebhookError> {
        webhook::parse(self.flavor, headers, body)
    }

    /// Learns the bot's own login and remembers it for [`Provider::bot_login`].
    ///
    /// Server: the configured username, no request (an empty username is an
    /// [`Error::InvalidConfig`] naming `username`: Server has no "who am I" REST resource).
    /// Cloud: the `account_id` (else `uuid`) of `GET /2.0/user`, the account the credentials
    /// belong to; until this has run, Cloud's `bot_login` is `None`, since the configured
    /// username is not the id comments are attributed to.
    ///
    /// # Errors
    /// As [`crate::error::from_status`]; [`Error::Protocol`] when the account has no id.
    pub async fn identify(&self) -> Result<Login> {
        if let Some(login) = self.bot_login.get() {
            return Ok(login.clone());
        }
        let login = match self.flavor {
            Flavor::Server => {
                return Err(Error::InvalidConfig {
                    key: format!("providers.{}.username", self.name),
                    message:
                        "Bitbucket Server needs the bot's username to recognise its own comments"
                            .to_owned(),
                });
            }
            Flavor::Cloud => self.cloud_identify().await?,
        };
        Ok(self.bot_login.get_or_init(|| login).clone())
    }

    /// The full commit id of `revision` (an abbreviated hash, a branch or a tag) in `repo`:
    /// Cloud `GET /2.0/repositories/{workspace}/{repo_slug}/commit/{revision}` (`hash`),
    /// Server `GET /rest/api/1.0/projects/{key}/repos/{slug}/commits/{revision}` (`id`).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown revision (and, on Cloud, an ambiguous abbreviation);
    /// [`Error::Protocol`] when the answer is not a full commit id.
    pub async fn resolve_commit(&self, repo: &RepoName, revision: &str) -> Result<Sha> {
        match self.flavor {
            Flavor::Cloud => self.cloud_resolve_commit(repo, revision).await,
            Flavor::Server => self.server_resolve_commit(repo, revision).await,
        }
    }

    /// Completes an [`UnresolvedEvent`] (a Cloud pull-request event whose payload abbreviates
    /// the head) by looking the full head up in the event's head repository, so statuses and
    /// builds always name a full sha.
    ///
    /// # Errors
    /// As [`Self::resolve_commit`]; [`Error::Protocol`] when the commit found does not start
    /// with the abbreviated hash.
    pub async fn resolve(&self, event: UnresolvedEvent) -> Result<Event> {
        let head = match (event.head.full(), self.flavor) {
            (Some(full), _) => full,
            // An abbreviation: remembered, so the command that follows does not look it up again.
            (None, Flavor::Cloud) => {
                self.cloud_resolve_abbreviated(&event.head_repo, event.head.as_str())
                    .await?
            }
            (None, Flavor::Server) => {
                self.resolve_commit(&event.head_repo, event.head.as_str())
                    .await?
            }
        };
        event.complete(head).map_err(|e| Error::Protocol {
            message: e.to_string(),
        })
    }

    /// A request with the configured credentials: basic auth with a username, else a bearer
    /// token. Server requests that change something carry `X-Atlassian-Token: no-check`, the
    /// header Bitbucket Server's XSRF protection asks REST clients to send
    /// (<https://developer.atlassian.com/server/bitbucket/rest/> "Authentication").
    pub(crate) fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let changes = method != Method::GET;
        let mut request = self
            .http
            .request(method, url)
            .header(ACCEPT, "application/json");
        if changes && self.flavor == Flavor::Server {
            request = request.header("X-Atlassian-Token", "no-check");
        }
        if self.username.is_empty() {
            request.bearer_auth(self.password.expose())
        } else {
            request.basic_auth(&self.username, Some(self.password.expose()))
        }
    }

    /// Counts every answer's status in `counts`, for `/metrics`.
    #[must_use]
    pub fn count_requests(mut self, counts: std::sync::Arc<greg_core::UpstreamCounts>) -> Self {
        self.upstream = Some(counts);
        self
    }

    /// Sends a request and reads the whole answer (at most [`MAX_BODY`] bytes); a non-2xx
    /// answer is mapped by [`from_status`] as [`Operation::Other`].
    pub(crate) async fn send(&self, what: &str, request: RequestBuilder) -> Result<Reply> {
        self.send_as(Operation::Other, what, request).await
    }

    /// [`send`](Self::send) for an operation whose failures [`from_status`] reads in its own
    /// way (see [`Operation`]).
    pub(crate) async fn send_as(
        &self,
        op: Operation,
        what: &str,
        request: RequestBuilder,
    ) -> Result<Reply> {
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(u) = &self.upstream {
                    u.record(&self.name, None, None);
                }
                return Err(from_transport(what, &e));
            }
        };
        let status = response.status();
        if let Some(u) = &self.upstream {
            u.record(&self.name, Some(status.as_u16()), None);
        }
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| from_transport(what, &e))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(protocol(
                    what,
                    &format!("Bitbucket answered more than {MAX_BODY} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            provider = %self.name,
            what,
            status = status.as_u16(),
            "Bitbucket answered"
        );
        if !status.is_success() {
            return Err(from_status(op, what, status, &headers, &body));
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// `method route`, with a JSON body when given; the raw answer.
    pub(crate) async fn call<B: Serialize + ?Sized>(
        &self,
        what: &str,
        method: Method,
        route: &Route,
        body: Option<&B>,
    ) -> Result<Reply> {
        self.call_as(Operation::Other, what, method, route, body)
            .await
    }

    /// [`call`](Self::call) for an operation whose failures [`from_status`] reads in its own
    /// way (see [`Operation`]).
    pub(crate) async fn call_as<B: Serialize + ?Sized>(
        &self,
        op: Operation,
        what: &str,
        method: Method,
        route: &Route,
        body: Option<&B>,
    ) -> Result<Reply> {
        let mut request = self.request(method, route.url(&self.base)?);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send_as(op, what, request).await
    }

    /// `GET url`, decoded as `T`.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, what: &str, url: Url) -> Result<T> {
        let reply = self.send(what, self.request(Method::GET, url)).await?;
        decode(what, &reply.body)
    }

    /// `GET route`, decoded as `T`.
    pub(crate) async fn get_route<T: DeserializeOwned>(
        &self,
        what: &str,
        route: &Route,
    ) -> Result<T> {
        self.get_json(what, route.url(&self.base)?).await
    }

    /// `POST route` with a JSON body, the answer decoded as `T`.
    pub(crate) async fn post_route<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        what: &str,
        route: &Route,
        body: &B,
    ) -> Result<T> {
        let request = self
            .request(Method::POST, route.url(&self.base)?)
            .json(body);
        let reply = self.send(what, request).await?;
        decode(what, &reply.body)
    }
}

impl fmt::Display for BitbucketProvider {
    /// `bitbucket-cloud(<api_url>)` or `bitbucket-server(<api_url>)`; never a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bitbucket-{}({})", self.flavor, self.api_url())
    }
}

impl fmt::Debug for BitbucketProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BitbucketProvider")
            .field("name", &self.name)
            .field("flavor", &self.flavor)
            .field("api_url", &self.api_url())
            .field("username", &self.username)
            .field("password", &self.password)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .field("bot_login", &self.bot_login.get())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for BitbucketProvider {
    fn name(&self) -> &str {
        &self.name
    }

    /// Server: the configured username. Cloud: the account id learnt by
    /// [`BitbucketProvider::identify`]; `None` before it ran.
    fn bot_login(&self) -> Option<&Login> {
        self.bot_login.get()
    }

    fn verify_webhook(
        &self,
        headers: &Headers,
        body: &[u8],
    ) -> std::result::Result<(), WebhookError> {
        webhook::verify_signature(self.webhook_secret.as_ref(), headers, body)
    }

    /// [`webhook::parse`] carried by [`Parsed::into_inbound`]: a push of several branches
    /// gives [`Inbound::Events`], and a Cloud pull-request event, whose head needs a lookup,
    /// an [`Event::Unresolved`] that [`Provider::resolve`] completes.
    fn parse_webhook(
        &self,
        headers: &Headers,
        body: &[u8],
    ) -> std::result::Result<Inbound, WebhookError> {
        Ok(self.parse(headers, body)?.into_inbound())
    }

    fn delivery_id(&self, headers: &Headers) -> Option<String> {
        webhook::delivery_id(self.flavor, headers)
    }

    /// Reads back the [`UnresolvedEvent`] that [`Self::parse_webhook`] carried and completes
    /// it with [`BitbucketProvider::resolve`] (the full head, looked up in the head
    /// repository).
    ///
    /// Errors: as [`BitbucketProvider::resolve`]; [`Error::Protocol`] when `unresolved` was
    /// not made by this crate.
    async fn resolve(&self, unresolved: &Unresolved) -> Result<Event> {
        let event = UnresolvedEvent::from_core(unresolved).map_err(|e| Error::Protocol {
            message: format!(
                "{} of {} is not a Bitbucket unresolved event: {e}",
                unresolved.what, unresolved.repo
            ),
        })?;
        BitbucketProvider::resolve(self, event).await
    }

    /// Cloud: the pull request, then its head looked up by the abbreviated hash (two
    /// requests). Server: one request.
    async fn pull_request(&self, repo: &RepoName, pr: PrNumber) -> Result<PullRequest> {
        match self.flavor {
            Flavor::Cloud => self.cloud_pull_request(repo, pr).await,
            Flavor::Server => self.server_pull_request(repo, pr).await,
        }
    }

    /// The current verdicts of a pull request's reviewers and participants, each bound to the
    /// head it was given on (see docs/providers.md): Cloud from the participants and the
    /// activity log, Server from the participants' `lastReviewedCommit`.
    async fn reviews(&self, repo: &RepoName, pr: PrNumber) -> Result<Vec<Review>> {
        match self.flavor {
            Flavor::Cloud => self.cloud_reviews(repo, pr).await,
            Flavor::Server => self.server_reviews(repo, pr).await,
        }
    }

    /// Effective permission, however granted (user, group, project, workspace). Cloud needs
    /// the bot to be an administrator of the repository.
    async fn permission(&self, repo: &RepoName, user: &Login) -> Result<Permission> {
        match self.flavor {
            Flavor::Cloud => self.cloud_permission(repo, user).await,
            Flavor::Server => self.server_permission(repo, user).await,
        }
    }

    async fn post_comment(&self, repo: &RepoName, pr: PrNumber, body: &str) -> Result<CommentId> {
        match self.flavor {
            Flavor::Cloud => self.cloud_post_comment(repo, pr, body).await,
            Flavor::Server => self.server_post_comment(repo, pr, body).await,
        }
    }

    /// Cloud: one `PUT`. Server: read the comment's version, `PUT` with it, and on a 409 (the
    /// comment changed in between) read and try once more.
    async fn edit_comment(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        id: CommentId,
        body: &str,
    ) -> Result<()> {
        match self.update_comment(repo, pr, id, body).await {
            Err(greg_core::Error::Conflict { .. }) if self.flavor == Flavor::Server => {
                self.update_comment(repo, pr, id, body).await
            }
            other => other,
        }
    }

    /// A build status keyed by `status.context`: a later status with the same context replaces
    /// the earlier one, as on GitHub.
    async fn set_status(&self, repo: &RepoName, sha: &Sha, status: &CommitStatus) -> Result<()> {
        let body = BuildStatusBody {
            key: &status.context,
            state: build_state(status.state),
            url: match status
                .target_url
                .as_deref()
                .filter(|u| !u.trim().is_empty())
            {
                Some(url) => url.to_owned(),
                None => self.commit_page(repo, sha),
            },
            name: &status.context,
            description: status_description(&status.description),
        };
        let what = format!("build status {} on {repo}@{}", status.context, sha.short());
        let route = match self.flavor {
            Flavor::Cloud => crate::routes::cloud::build_status(repo, sha),
            Flavor::Server => crate::routes::server::builds(repo, sha),
        };
        let request = self
            .request(Method::POST, route.url(&self.base)?)
            .json(&body);
        self.send(&what, request).await?;
        Ok(())
    }

    /// Both flavors merge a pull request with a precondition on its head and create and
    /// delete branches; neither can merge two commits server-side nor move a branch to a
    /// given commit, so `fast_forward` and `staging_refs` are `false` (`set_branch`,
    /// `branch_tip` and `delete_branch` work all the same).
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            fast_forward: false,
            staging_refs: false,
            merge_pull_request: true,
            reactions: false,
        }
    }

    /// Cloud: `DELETE .../pullrequests/{id}/comments/{cid}`; Server: `DELETE
    /// .../pull-requests/{id}/comments/{cid}?version=N` with the version read first, read
    /// again once on a version conflict (someone edited it meanwhile). A comment already gone
    /// is `Ok`.
    async fn delete_comment(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        comment: CommentId,
    ) -> Result<()> {
        // `Self::delete_comment` is the inherent call (client/comments.rs): inherent
        // functions go before trait ones.
        let first = match Self::delete_comment(self, repo, pr, comment).await {
            Err(greg_core::Error::Conflict { .. }) if self.flavor == Flavor::Server => {
                Self::delete_comment(self, repo, pr, comment).await
            }
            other => other,
        };
        match first {
            Ok(()) | Err(greg_core::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Cloud: every page of `state=OPEN`, each head looked up by its abbreviation (one more
    /// request per pull request). Server: every page of `state=OPEN`.
    async fn open_pull_requests(&self, repo: &RepoName) -> Result<Vec<PullRequest>> {
        match self.flavor {
            Flavor::Cloud => self.cloud_open_pull_requests(repo).await,
            Flavor::Server => self.server_open_pull_requests(repo).await,
        }
    }

    async fn branch_tip(&self, repo: &RepoName, branch: &str) -> Result<Option<Sha>> {
        match self.flavor {
            Flavor::Cloud => self.cloud_branch_tip(repo, branch).await,
            Flavor::Server => self.server_branch_tip(repo, branch).await,
        }
    }

    /// Neither flavor moves a branch through REST, so an existing branch at another commit
    /// is deleted and created again (two requests; the branch is missing in between, which is
    /// harmless for greg's own staging refs).
    async fn set_branch(&self, repo: &RepoName, branch: &str, sha: &Sha) -> Result<()> {
        self.replace_branch(repo, branch, sha).await
    }

    /// No REST operation of either flavor merges two commits: `NotSupported`.
    async fn merge_into_branch(
        &self,
        repo: &RepoName,
        branch: &str,
        head: &Sha,
        message: &str,
    ) -> Result<MergeResult> {
        let _ = (repo, branch, head, message);
        self.not_supported("merging into a staging ref")
    }

    /// No REST operation of either flavor moves a branch to a given commit: `NotSupported`.
    async fn fast_forward(&self, repo: &RepoName, branch: &str, to: &Sha) -> Result<FastForward> {
        let _ = (repo, branch, to);
        self.not_supported("fast-forwarding a branch")
    }

    async fn delete_branch(&self, repo: &RepoName, branch: &str) -> Result<()> {
        match self.flavor {
            Flavor::Cloud => self.cloud_delete_branch(repo, branch).await,
            Flavor::Server => self.server_delete_branch(repo, branch).await,
        }
    }

    /// Server: the head is checked on the pull request read, and the merge carries the
    /// version read with it, so Bitbucket refuses it (409) when anything changed in between:
    /// atomic. Cloud: the merge takes no precondition; greg reads the pull request, compares
    /// the head and merges, which leaves a window of one request in which a push is merged
    /// unchecked (see docs/providers.md). A pull request already merged at `head` is `Ok`
    /// (a merge whose answer was lost).
    async fn merge_pull_request(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        head: &Sha,
        message: &str,
    ) -> Result<()> {
        match self.flavor {
            Flavor::Cloud => self.cloud_merge(repo, pr, head, message).await,
            Flavor::Server => self.server_merge(repo, pr, head, message).await,
        }
    }
}

impl BitbucketProvider {
    /// The web page of a commit, the link of a build status without a build URL (Cloud
    /// requires one): Cloud `https://bitbucket.org/{workspace}/{slug}/commits/{sha}` (the web
    /// host is the API host without `api.`), Server `{api_url}/projects/{key}/repos/{slug}/commits/{sha}`.
    fn commit_page(&self, repo: &RepoName, sha: &Sha) -> String {
        let mut web = self.base.clone();
        let segments: Vec<&str> = match self.flavor {
            Flavor::Cloud => {
                if let Some(host) = self
                    .base
                    .host_str()
                    .and_then(|h| h.strip_prefix("api."))
                    .map(str::to_owned)
                {
                    // Only fails for hosts that cannot change, which an http(s) URL is not.
                    let _ = web.set_host(Some(&host));
                }
                vec![&repo.owner, &repo.name, "commits", sha.as_str()]
            }
            Flavor::Server => vec![
                "projects",
                &repo.owner,
                "repos",
                &repo.name,
                "commits",
                sha.as_str(),
            ],
        };
        if let Ok(mut path) = web.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        web.into()
    }
}

/// Body of Cloud `POST .../commit/{sha}/statuses/build`
/// (<https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/>: `key`,
/// `state`, `url` required, `name` and `description` optional) and of Server
/// `POST .../commits/{sha}/builds`
/// (<https://developer.atlassian.com/server/bitbucket/how-tos/updating-build-status-for-commits/>:
/// the same fields).
#[derive(Debug, Serialize)]
pub(crate) struct BuildStatusBody<'a> {
    key: &'a str,
    state: &'static str,
    url: String,
    name: &'a str,
    description: String,
}

/// GitHub's four states on Bitbucket's: pending → `INPROGRESS`, success → `SUCCESSFUL`,
/// failure and error → `FAILED` (Cloud's `STOPPED` and Server's `CANCELLED` mean a build
/// that was stopped, not one that broke, and would not block a merge check).
pub(crate) fn build_state(state: CommitState) -> &'static str {
    match state {
        CommitState::Pending => "INPROGRESS",
        CommitState::Success => "SUCCESSFUL",
        CommitState::Failure | CommitState::Error => "FAILED",
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

/// Decodes an answer, reporting unexpected JSON as [`Error::Protocol`] with its path.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T> {
    wire::from_json(body).map_err(|e| protocol(what, &e.to_string()))
}

pub(crate) fn protocol(what: &str, message: &str) -> Error {
    Error::Protocol {
        message: format!("{what}: {message}"),
    }
}

#[cfg(test)]
mod tests;
