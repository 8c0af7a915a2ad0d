//! Editing and deleting greg's own pull-request comments.
//!
//! - Cloud (<https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pullrequests/>):
//!   `PUT .../pullrequests/{id}/comments/{comment_id}` with `{"content": {"raw": ...}}`, and
//!   `DELETE` of the same path (204).
//! - Server/Data Center (<https://developer.atlassian.com/server/bitbucket/rest/>): comments
//!   are locked optimistically by their `version`: `PUT .../comments/{commentId}` with
//!   `{"text", "version"}` and `DELETE .../comments/{commentId}?version=N` are refused with 409
//!   when the version is not the current one. greg reads the comment first and sends the
//!   version it read, so a 409 means someone else changed the comment in between
//!   ([`greg_core::Error::Conflict`]; greg does not retry behind the caller's back).

use super::BitbucketProvider;
use super::cloud::{CommentBody, Raw};
use crate::Flavor;
use crate::routes;
use greg_core::{CommentId, PrNumber, RepoName, Result};
use reqwest::Method;
use serde::{Deserialize, Serialize};

/// Server `GET .../comments/{commentId}`: only `version` is read.
#[derive(Debug, Deserialize)]
struct ServerVersion {
    version: u64,
}

/// Server `PUT .../comments/{commentId}` body.
#[derive(Debug, Serialize)]
pub(crate) struct ServerEdit<'a> {
    pub text: &'a str,
    pub version: u64,
}

impl BitbucketProvider {
    /// Replaces the text of comment `id` on pull request `pr` (greg's own comments: Bitbucket
    /// lets only the author edit one).
    ///
    /// # Errors
    /// [`greg_core::Error::NotFound`] when the comment (or the pull request) is gone;
    /// [`greg_core::Error::Conflict`] on Server when the comment changed between greg's read
    /// and its write; [`greg_core::Error::PermissionDenied`] for someone else's comment; others
    /// per [`crate::error::from_status`].
    pub async fn update_comment(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        id: CommentId,
        body: &str,
    ) -> Result<()> {
        let what = format!("comment {id} on {repo}#{pr}");
        match self.flavor {
            Flavor::Cloud => {
                let body = CommentBody {
                    content: Raw { raw: body },
                };
                self.call(
                    &what,
                    Method::PUT,
                    &routes::cloud::comment(repo, pr, id),
                    Some(&body),
                )
                .await?;
            }
            Flavor::Server => {
                let version = self.server_comment_version(&what, repo, pr, id).await?;
                let body = ServerEdit {
                    text: body,
                    version,
                };
                self.call(
                    &what,
                    Method::PUT,
                    &routes::server::comment(repo, pr, id),
                    Some(&body),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Deletes comment `id` on pull request `pr`.
    ///
    /// # Errors
    /// As [`Self::update_comment`]; deleting a comment that is already gone is
    /// [`greg_core::Error::NotFound`].
    pub async fn delete_comment(&self, repo: &RepoName, pr: PrNumber, id: CommentId) -> Result<()> {
        let what = format!("comment {id} on {repo}#{pr}");
        let route = match self.flavor {
            Flavor::Cloud => routes::cloud::comment(repo, pr, id),
            Flavor::Server => {
                let version = self.server_comment_version(&what, repo, pr, id).await?;
                routes::server::comment_version(repo, pr, id, version)
            }
        };
        self.call(&what, Method::DELETE, &route, None::<&()>)
            .await?;
        Ok(())
    }

    async fn server_comment_version(
        &self,
        what: &str,
        repo: &RepoName,
        pr: PrNumber,
        id: CommentId,
    ) -> Result<u64> {
        let current: ServerVersion = self
            .get_route(what, &routes::server::comment(repo, pr, id))
            .await?;
        Ok(current.version)
    }
}
