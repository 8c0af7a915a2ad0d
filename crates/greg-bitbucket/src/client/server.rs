//! Bitbucket Server/Data Center REST 1.0 calls
//! (<https://developer.atlassian.com/server/bitbucket/rest/>).
//!
//! Approvals. A Server participant carries `status` (`APPROVED`, `NEEDS_WORK`, `UNAPPROVED`)
//! and `lastReviewedCommit`, the head they last reviewed; greg binds the verdict to that
//! commit. Bitbucket moves `lastReviewedCommit` when a reviewer views newer commits, and keeps
//! an approval across new commits unless the repository's pull-request settings withdraw
//! approvals on new commits, which greg's documentation recommends (docs/providers.md).
//!
//! Permissions. `GET /rest/api/1.0/users` filtered by a repository permission returns the
//! users who hold it however granted (directly, through a group, the project or globally),
//! needing no administrator rights, unlike `.../permissions/users`, which lists direct grants
//! only.

use super::{BitbucketProvider, protocol};
use crate::routes::{self, MAX_PAGES};
use crate::wire::server::{PullRequest as WirePullRequest, User};
use greg_core::{
    CommentId, Login, Permission, PrNumber, PullRequest, RepoName, Result, Review, ReviewState, Sha,
};
use serde::{Deserialize, Serialize};

/// A page of a Server paged API (<https://developer.atlassian.com/server/bitbucket/rest/>
/// "Paged APIs": `values`, `isLastPage`, `nextPageStart`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page<T> {
    pub values: Vec<T>,
    #[serde(default = "last_page")]
    pub is_last_page: bool,
    pub next_page_start: Option<u64>,
}

impl<T> Page<T> {
    /// The `start` of the next page, `None` after the last one (or when the server announces
    /// a start that would not move forward).
    pub fn next(&self, start: u64) -> Option<u64> {
        match self.next_page_start {
            Some(next) if !self.is_last_page && next > start => Some(next),
            _ => None,
        }
    }
}

fn last_page() -> bool {
    true
}

/// `GET .../commits/{id}`: only `id` (the full hash) is read.
#[derive(Debug, Deserialize)]
struct WireCommit {
    id: Sha,
}

/// The reviewers and participants of `GET .../pull-requests/{id}`.
#[derive(Debug, Deserialize)]
struct WireParticipants {
    #[serde(default)]
    reviewers: Vec<Participant>,
    #[serde(default)]
    participants: Vec<Participant>,
}

/// A reviewer or participant; `lastReviewedCommit` is read leniently (a value that is not a
/// full hash binds the verdict to nothing, so it does not count).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Participant {
    user: User,
    status: Option<String>,
    last_reviewed_commit: Option<String>,
}

/// Body of `POST .../pull-requests/{id}/comments`: `{"text": <Markdown>}`.
#[derive(Debug, Serialize)]
pub(crate) struct CommentBody<'a> {
    pub text: &'a str,
}

/// The `id` of a created comment (its `version` is needed only to edit it).
#[derive(Debug, Deserialize)]
struct Created {
    id: u64,
}

impl BitbucketProvider {
    pub(super) async fn server_resolve_commit(
        &self,
        repo: &RepoName,
        revision: &str,
    ) -> Result<Sha> {
        let what = format!("commit {revision} in {repo}");
        let commit: WireCommit = self
            .get_route(&what, &routes::server::commit(repo, revision))
            .await?;
        Ok(commit.id)
    }

    pub(super) async fn server_pull_request(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<PullRequest> {
        let what = format!("pull request {repo}#{pr}");
        let wire: WirePullRequest = self
            .get_route(&what, &routes::server::pull_request(repo, pr))
            .await?;
        Ok(wire.into_core())
    }

    pub(super) async fn server_reviews(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<Vec<Review>> {
        let what = format!("reviews of {repo}#{pr}");
        let wire: WireParticipants = self
            .get_route(&what, &routes::server::pull_request(repo, pr))
            .await?;
        Ok(wire
            .reviewers
            .into_iter()
            .chain(wire.participants)
            .filter_map(Participant::into_review)
            .collect())
    }

    /// `REPO_WRITE`, then `REPO_ADMIN` or `REPO_READ`: two requests.
    pub(super) async fn server_permission(
        &self,
        repo: &RepoName,
        user: &Login,
    ) -> Result<Permission> {
        if user.as_str().trim().is_empty() {
            return Ok(Permission::None);
        }
        Ok(if self.server_holds(repo, user, "REPO_WRITE").await? {
            if self.server_holds(repo, user, "REPO_ADMIN").await? {
                Permission::Admin
            } else {
                Permission::Write
            }
        } else if self.server_holds(repo, user, "REPO_READ").await? {
            Permission::Read
        } else {
            Permission::None
        })
    }

    /// Whether `user` holds at least `permission` on `repo`: an exact (case-insensitive) name
    /// among the users the filter returns, all pages.
    async fn server_holds(&self, repo: &RepoName, user: &Login, permission: &str) -> Result<bool> {
        let what = format!("{permission} of {user} on {repo}");
        let mut start = 0;
        for _ in 0..MAX_PAGES {
            let route =
                routes::server::users_with_permission(user.as_str(), permission, repo, start);
            let page: Page<User> = self.get_route(&what, &route).await?;
            if page.values.iter().any(|u| Login(u.name.clone()) == *user) {
                return Ok(true);
            }
            match page.next(start) {
                Some(next) => start = next,
                None => return Ok(false),
            }
        }
        Err(protocol(&what, &format!("more than {MAX_PAGES} pages")))
    }

    pub(super) async fn server_post_comment(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        body: &str,
    ) -> Result<CommentId> {
        let what = format!("comment on {repo}#{pr}");
        let created: Created = self
            .post_route(
                &what,
                &routes::server::comments(repo, pr),
                &CommentBody { text: body },
            )
            .await?;
        Ok(CommentId(created.id))
    }
}

impl Participant {
    /// `APPROVED` → approved, `NEEDS_WORK` → changes requested, bound to `lastReviewedCommit`;
    /// `UNAPPROVED` (no verdict, or a withdrawn one) → nothing.
    fn into_review(self) -> Option<Review> {
        let state = match self.status.as_deref() {
            Some("APPROVED") => ReviewState::Approved,
            Some("NEEDS_WORK") => ReviewState::ChangesRequested,
            _ => return None,
        };
        Some(Review {
            reviewer: self.user.into_login(),
            state,
            commit: self
                .last_reviewed_commit
                .as_deref()
                .and_then(|c| Sha::parse(c).ok()),
        })
    }
}
