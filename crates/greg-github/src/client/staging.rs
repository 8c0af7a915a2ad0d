//! The git operations of staging merges (SPEC §6, merge_mode staging): branch tips, staging
//! refs, merge commits, fast-forwards, open pull requests for reconciliation, and the
//! pull-request merge. Bodies and answers as GitHub's REST reference documents them
//! (<https://docs.github.com/en/rest/git/refs>, <https://docs.github.com/en/rest/branches/branches#merge-a-branch>,
//! <https://docs.github.com/en/rest/pulls/pulls>); schemas in tests/data/github/openapi-subset.json.

use super::{GithubProvider, decode};
use crate::error::Operation;
use crate::routes;
use crate::wire::WirePullRequest;
use greg_core::{Error, FastForward, MergeResult, PrNumber, PullRequest, RepoName, Result, Sha};
use http::Method;
use serde::{Deserialize, Serialize};

/// `POST .../git/refs` body.
#[derive(Serialize)]
struct CreateRef<'a> {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: &'a Sha,
}

/// `PATCH .../git/refs/{ref}` body.
#[derive(Serialize)]
struct UpdateRef<'a> {
    sha: &'a Sha,
    force: bool,
}

/// `POST .../merges` body.
#[derive(Serialize)]
struct MergeBody<'a> {
    base: &'a str,
    head: &'a Sha,
    commit_message: &'a str,
}

/// `PUT .../pulls/{n}/merge` body: `sha` makes GitHub refuse (409) when the head moved.
#[derive(Serialize)]
struct PullMergeBody<'a> {
    sha: &'a Sha,
    commit_message: &'a str,
    merge_method: &'static str,
}

/// A git reference answer (`GET .../git/ref/{ref}`): `object.sha` is the tip.
#[derive(Deserialize)]
struct WireRef {
    object: WireObject,
}

#[derive(Deserialize)]
struct WireObject {
    sha: Sha,
}

/// A commit answer (`POST .../merges` 201): `sha` is the merge commit.
#[derive(Deserialize)]
struct WireCommit {
    sha: Sha,
}

impl GithubProvider {
    pub(super) async fn list_open_pulls(&self, repo: &RepoName) -> Result<Vec<PullRequest>> {
        let what = format!("open pull requests of {repo}");
        let items: Vec<WirePullRequest> = self
            .get_all_pages(&what, |page| routes::open_pulls(repo, page))
            .await?;
        Ok(items.into_iter().map(WirePullRequest::into_core).collect())
    }

    pub(super) async fn read_branch_tip(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<Sha>> {
        let what = format!("branch {branch} of {repo}");
        let reply = self
            .send(
                &what,
                Method::GET,
                &routes::branch_ref(repo, branch),
                None::<&()>,
            )
            .await;
        match reply {
            Ok(reply) => Ok(Some(decode::<WireRef>(&what, &reply.body)?.object.sha)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn create_or_move_branch(
        &self,
        repo: &RepoName,
        branch: &str,
        sha: &Sha,
    ) -> Result<()> {
        let what = format!("staging ref {branch} of {repo}");
        let create = CreateRef {
            git_ref: format!("refs/heads/{branch}"),
            sha,
        };
        match self
            .send(&what, Method::POST, &routes::git_refs(repo), Some(&create))
            .await
        {
            Ok(_) => Ok(()),
            // 422 "Reference already exists": a staging ref left by an earlier attempt.
            Err(Error::PreconditionFailed { .. }) => {
                let update = UpdateRef { sha, force: true };
                self.send(
                    &what,
                    Method::PATCH,
                    &routes::branch_refs(repo, branch),
                    Some(&update),
                )
                .await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn merge_branch(
        &self,
        repo: &RepoName,
        branch: &str,
        head: &Sha,
        message: &str,
    ) -> Result<MergeResult> {
        let what = format!("merge of {} into {branch} of {repo}", head.short());
        let body = MergeBody {
            base: branch,
            head,
            commit_message: message,
        };
        match self
            .send(&what, Method::POST, &routes::merges(repo), Some(&body))
            .await
        {
            // 204 No Content: the head is already in the branch.
            Ok(reply) if reply.body.trim().is_empty() => Ok(MergeResult::UpToDate),
            Ok(reply) => Ok(MergeResult::Merged(
                decode::<WireCommit>(&what, &reply.body)?.sha,
            )),
            Err(Error::Conflict { .. }) => Ok(MergeResult::Conflict),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn fast_forward_branch(
        &self,
        repo: &RepoName,
        branch: &str,
        to: &Sha,
    ) -> Result<FastForward> {
        let what = format!("fast-forward of {branch} of {repo} to {}", to.short());
        let update = UpdateRef {
            sha: to,
            force: false,
        };
        match self
            .send_as(
                Operation::FastForward,
                &what,
                Method::PATCH,
                &routes::branch_refs(repo, branch),
                Some(&update),
            )
            .await
        {
            Ok(_) => Ok(FastForward::Done),
            // 422 "Update is not a fast forward": the branch moved away from the staging base.
            // A protected branch is `Refused` (crate::error::from_status).
            Err(Error::PreconditionFailed { .. }) => Ok(FastForward::Moved),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn remove_branch(&self, repo: &RepoName, branch: &str) -> Result<()> {
        let what = format!("branch {branch} of {repo}");
        match self
            .send(
                &what,
                Method::DELETE,
                &routes::branch_refs(repo, branch),
                None::<&()>,
            )
            .await
        {
            // 422 "Reference does not exist" or 404: already gone.
            Ok(_) | Err(Error::NotFound { .. }) | Err(Error::PreconditionFailed { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn merge_pull(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        head: &Sha,
        message: &str,
    ) -> Result<()> {
        let what = format!("merge of pull request {repo}#{pr}");
        let body = PullMergeBody {
            sha: head,
            commit_message: message,
            merge_method: "merge",
        };
        // 409 "Head branch was modified" is `PreconditionFailed`, a rule `Refused`, a conflict
        // `Conflict` (crate::error::from_status).
        self.send_as(
            Operation::MergePull,
            &what,
            Method::PUT,
            &routes::pull_merge(repo, pr),
            Some(&body),
        )
        .await?;
        Ok(())
    }
}
