//! What merge_mode staging and reconciliation need from Bitbucket: open pull requests, branch
//! tips, greg's own branches (create, delete), and merging a pull request only if its head is
//! the expected commit.
//!
//! References:
//! - Cloud: pull requests <https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pullrequests/>
//!   (`GET .../pullrequests?state=OPEN`, `POST .../pullrequests/{id}/merge` with
//!   `{merge_strategy, message, close_source_branch}`; 200 when merged, 202 with a
//!   `Location` of the merge task to poll when the merge outlasts the request), refs
//!   <https://developer.atlassian.com/cloud/bitbucket/rest/api-group-refs/>
//!   (`GET`/`DELETE .../refs/branches/{name}`, `POST .../refs/branches` with
//!   `{name, target: {hash}}`).
//! - Server/Data Center: pull requests and branches in the REST 1.0 reference
//!   <https://developer.atlassian.com/server/bitbucket/rest/> (`GET .../pull-requests?state=OPEN`,
//!   `POST .../pull-requests/{id}/merge?version=N`, 409 with
//!   `PullRequestOutOfDateException` when the version is stale, `GET .../branches?filterText=`),
//!   and the branch-utils plugin's `POST`/`DELETE /rest/branch-utils/1.0/.../branches`
//!   (`{name, startPoint}`; `{name, dryRun}`).
//!
//! Neither flavor can move a branch to a given commit or merge two commits server-side; the
//! trait answers `NotSupported` for those (client.rs).

use super::cloud::Page as CloudPage;
use super::server::Page as ServerPage;
use super::{BitbucketProvider, decode, protocol};
use crate::error::Operation;
use crate::routes::{self, MAX_PAGES, cloud_next};
use crate::wire::cloud::PullRequest as CloudPullRequest;
use crate::wire::server::PullRequest as ServerPullRequest;
use greg_core::{Error, PrNumber, PullRequest, PullRequestState, RepoName, Result, Sha};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use url::Url;

/// How often greg asks about a Cloud merge that answered 202, and how long it waits between.
const MERGE_POLLS: u32 = 10;
const MERGE_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Cloud `GET .../refs/branches/{name}`: `target.hash` is the tip.
#[derive(Debug, Deserialize)]
struct CloudBranch {
    target: CloudTarget,
}

#[derive(Debug, Deserialize, Serialize)]
struct CloudTarget {
    hash: Sha,
}

/// Cloud `POST .../refs/branches` body.
#[derive(Debug, Serialize)]
struct CloudNewBranch<'a> {
    name: &'a str,
    target: CloudTarget,
}

/// Cloud `POST .../pullrequests/{id}/merge` body (`pullrequest_merge_parameters`).
#[derive(Debug, Serialize)]
pub(crate) struct CloudMergeBody<'a> {
    pub message: &'a str,
    /// The source branch belongs to the author; greg never deletes it.
    pub close_source_branch: bool,
    /// A merge commit, as greg's builds test.
    pub merge_strategy: &'static str,
}

/// Cloud merge task status (`GET .../merge/task-status/{task_id}`): `PENDING` or `SUCCESS`.
#[derive(Debug, Deserialize)]
struct CloudTask {
    task_status: String,
}

/// A Server branch (`GET .../branches` values): `id` is `refs/heads/<name>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerBranch {
    id: String,
    latest_commit: Sha,
}

/// Server branch-utils `POST` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerNewBranch<'a> {
    name: &'a str,
    start_point: &'a Sha,
}

/// Server branch-utils `DELETE` body: the full ref name.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerDeleteBranch {
    name: String,
    dry_run: bool,
}

/// What a Server merge needs from the pull request: its `version` (optimistic locking), its
/// state and its head.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerMergeState {
    version: u64,
    state: String,
    from_ref: ServerHead,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerHead {
    latest_commit: Sha,
}

/// Server merge body (`RestPullRequestMergeRequest`; the version also goes in the query, as
/// servers before Data Center 7 read it there).
#[derive(Debug, Serialize)]
pub(crate) struct ServerMergeBody<'a> {
    pub message: &'a str,
    pub version: u64,
}

/// `PreconditionFailed` for a pull request whose head is not the expected one.
fn head_moved(what: &str, found: &Sha, expected: &Sha) -> Error {
    Error::PreconditionFailed {
        message: format!(
            "{what}: the head is {}, not {}: not merged",
            found.short(),
            expected.short()
        ),
    }
}

impl BitbucketProvider {
    pub(super) async fn cloud_open_pull_requests(
        &self,
        repo: &RepoName,
    ) -> Result<Vec<PullRequest>> {
        let what = format!("open pull requests of {repo}");
        let mut out = Vec::new();
        let mut url: Url = routes::cloud::open_pull_requests(repo).url(&self.base)?;
        for _ in 0..MAX_PAGES {
            let page: CloudPage<CloudPullRequest> = self.get_json(&what, url).await?;
            for (i, wire) in page.values.into_iter().enumerate() {
                let path = format!("values[{i}]");
                let pr = self.cloud_complete(&what, repo, wire, &path).await?;
                if pr.state == PullRequestState::Open {
                    out.push(pr);
                }
            }
            match page.next {
                None => return Ok(out),
                Some(next) => {
                    url = cloud_next(&self.base, &next).map_err(|e| protocol(&what, &e))?
                }
            }
        }
        Err(protocol(&what, &format!("more than {MAX_PAGES} pages")))
    }

    pub(super) async fn server_open_pull_requests(
        &self,
        repo: &RepoName,
    ) -> Result<Vec<PullRequest>> {
        let what = format!("open pull requests of {repo}");
        let mut out = Vec::new();
        let mut start = 0;
        for _ in 0..MAX_PAGES {
            let route = routes::server::open_pull_requests(repo, start);
            let page: ServerPage<ServerPullRequest> = self.get_route(&what, &route).await?;
            let next = page.next(start);
            out.extend(
                page.values
                    .into_iter()
                    .map(ServerPullRequest::into_core)
                    .filter(|pr| pr.state == PullRequestState::Open),
            );
            match next {
                Some(n) => start = n,
                None => return Ok(out),
            }
        }
        Err(protocol(&what, &format!("more than {MAX_PAGES} pages")))
    }

    pub(super) async fn cloud_branch_tip(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<Sha>> {
        let what = format!("branch {branch} of {repo}");
        match self
            .get_route::<CloudBranch>(&what, &routes::cloud::branch(repo, branch))
            .await
        {
            Ok(b) => Ok(Some(b.target.hash)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The branch whose ref id is exactly `refs/heads/<branch>` among those the name filter
    /// returns (a substring match), all pages.
    pub(super) async fn server_branch_tip(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<Sha>> {
        let what = format!("branch {branch} of {repo}");
        let wanted = format!("refs/heads/{branch}");
        let mut start = 0;
        for _ in 0..MAX_PAGES {
            let route = routes::server::branches(repo, branch, start);
            let page: ServerPage<ServerBranch> = self.get_route(&what, &route).await?;
            let next = page.next(start);
            if let Some(b) = page.values.into_iter().find(|b| b.id == wanted) {
                return Ok(Some(b.latest_commit));
            }
            match next {
                Some(n) => start = n,
                None => return Ok(None),
            }
        }
        Err(protocol(&what, &format!("more than {MAX_PAGES} pages")))
    }

    /// `set_branch`: nothing when the branch is already at `sha`; else delete it if it exists,
    /// and create it at `sha`.
    pub(super) async fn replace_branch(
        &self,
        repo: &RepoName,
        branch: &str,
        sha: &Sha,
    ) -> Result<()> {
        use greg_core::Provider as _;
        match self.branch_tip(repo, branch).await? {
            Some(tip) if tip == *sha => return Ok(()),
            Some(_) => self.delete_branch(repo, branch).await?,
            None => {}
        }
        let what = format!("branch {branch} of {repo}");
        match self.flavor {
            crate::Flavor::Cloud => {
                let body = CloudNewBranch {
                    name: branch,
                    target: CloudTarget { hash: sha.clone() },
                };
                self.call(
                    &what,
                    Method::POST,
                    &routes::cloud::branches(repo),
                    Some(&body),
                )
                .await?;
            }
            crate::Flavor::Server => {
                let body = ServerNewBranch {
                    name: branch,
                    start_point: sha,
                };
                self.call(
                    &what,
                    Method::POST,
                    &routes::server::branch_utils(repo),
                    Some(&body),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// `DELETE .../refs/branches/{name}`; a branch that is already gone is `Ok`.
    pub(super) async fn cloud_delete_branch(&self, repo: &RepoName, branch: &str) -> Result<()> {
        let what = format!("branch {branch} of {repo}");
        match self
            .call(
                &what,
                Method::DELETE,
                &routes::cloud::branch(repo, branch),
                None::<&()>,
            )
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// branch-utils `DELETE` of `refs/heads/<branch>`, after checking that it exists (the
    /// reference does not say what deleting a missing branch answers); a branch that is
    /// already gone is `Ok`.
    pub(super) async fn server_delete_branch(&self, repo: &RepoName, branch: &str) -> Result<()> {
        if self.server_branch_tip(repo, branch).await?.is_none() {
            return Ok(());
        }
        let what = format!("branch {branch} of {repo}");
        let body = ServerDeleteBranch {
            name: format!("refs/heads/{branch}"),
            dry_run: false,
        };
        match self
            .call(
                &what,
                Method::DELETE,
                &routes::server::branch_utils(repo),
                Some(&body),
            )
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads the pull request (full head), checks it, merges it. Cloud answers 400 when a
    /// merge check or a conflict blocks the merge: [`Error::Refused`] with the merge checks'
    /// messages, or [`Error::Conflict`] (and 409 is possible too: a conflict).
    pub(super) async fn cloud_merge(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        head: &Sha,
        message: &str,
    ) -> Result<()> {
        let what = format!("merge of pull request {repo}#{pr}");
        let current = self.cloud_pull_request(repo, pr).await?;
        match current.state {
            PullRequestState::Merged if current.head_sha == *head => return Ok(()),
            PullRequestState::Open => {}
            other => {
                return Err(Error::Conflict {
                    message: format!("{what}: the pull request is {other:?}, not open"),
                });
            }
        }
        if current.head_sha != *head {
            return Err(head_moved(&what, &current.head_sha, head));
        }
        let body = CloudMergeBody {
            message,
            close_source_branch: false,
            merge_strategy: "merge_commit",
        };
        // 400: a merge check blocks the merge (`Refused`) or a conflict does (`Conflict`);
        // crate::error::from_status tells them apart.
        let reply = self
            .call_as(
                Operation::CloudMerge,
                &what,
                Method::POST,
                &routes::cloud::merge(repo, pr),
                Some(&body),
            )
            .await?;
        if reply.status == reqwest::StatusCode::ACCEPTED {
            let location = reply
                .headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok());
            return self.cloud_wait_for_merge(&what, location).await;
        }
        Ok(())
    }

    /// Polls a Cloud merge task until it reports `SUCCESS`.
    async fn cloud_wait_for_merge(&self, what: &str, location: Option<&str>) -> Result<()> {
        let Some(location) = location else {
            return Err(protocol(what, "202 without a Location to poll"));
        };
        let url = cloud_next(&self.base, location).map_err(|e| protocol(what, &e))?;
        for _ in 0..MERGE_POLLS {
            let task: CloudTask = self.get_json(what, url.clone()).await?;
            if task.task_status == "SUCCESS" {
                return Ok(());
            }
            tokio::time::sleep(MERGE_POLL_INTERVAL).await;
        }
        Err(Error::Transient {
            message: format!("{what}: Bitbucket is still merging"),
        })
    }

    /// Reads the pull request's version and head, checks the head, and merges with that
    /// version: Bitbucket refuses (409, out-of-date) when anything changed since the read,
    /// which greg reports as [`Error::PreconditionFailed`]; a merge-check veto (409) is
    /// [`Error::Refused`] with the vetoes' messages, a conflict (409) [`Error::Conflict`].
    pub(super) async fn server_merge(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        head: &Sha,
        message: &str,
    ) -> Result<()> {
        let what = format!("merge of pull request {repo}#{pr}");
        let reply = self
            .call(
                &what,
                Method::GET,
                &routes::server::pull_request(repo, pr),
                None::<&()>,
            )
            .await?;
        let current: ServerMergeState = decode(&what, &reply.body)?;
        let found = &current.from_ref.latest_commit;
        match current.state.as_str() {
            "MERGED" if found == head => return Ok(()),
            "OPEN" => {}
            other => {
                return Err(Error::Conflict {
                    message: format!(
                        "{what}: the pull request is {}, not open",
                        crate::wire::printable(other)
                    ),
                });
            }
        }
        if found != head {
            return Err(head_moved(&what, found, head));
        }
        let body = ServerMergeBody {
            message,
            version: current.version,
        };
        // 409: a stale version is `PreconditionFailed`, a merge-check veto `Refused`, a
        // conflict `Conflict` (crate::error::from_status).
        self.call_as(
            Operation::ServerMerge,
            &what,
            Method::POST,
            &routes::server::merge(repo, pr, current.version),
            Some(&body),
        )
        .await?;
        Ok(())
    }
}
