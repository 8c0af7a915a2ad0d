//! Who may see and administer a repository, asked with greg's own credentials for the web
//! pages (SPEC §9): the repository's `private` flag (`GET /repos/{owner}/{repo}`) and its
//! admins (`GET /repos/{owner}/{repo}/collaborators?permission=admin`). A user's read access
//! is [`Provider::permission`](greg_core::Provider::permission) (the collaborator-permission
//! API).

use super::{GithubProvider, decode};
use crate::routes;
use crate::wire::User;
use greg_core::{Login, RepoName, Result};
use http::Method;
use serde::Deserialize;

/// The part of a `repository` greg reads here.
#[derive(Deserialize)]
struct WireVisibility {
    private: bool,
}

impl GithubProvider {
    /// Whether `repo` is private (`GET /repos/{owner}/{repo}`, its `private` flag).
    ///
    /// # Errors
    /// [`greg_core::Error::NotFound`] when greg's credentials cannot see it; others per
    /// [`crate::error::from_status`].
    pub async fn repository_private(&self, repo: &RepoName) -> Result<bool> {
        let what = format!("repository {repo}");
        let reply = self
            .send(&what, Method::GET, &routes::repository(repo), None::<&()>)
            .await?;
        Ok(decode::<WireVisibility>(&what, &reply.body)?.private)
    }

    /// The people with admin permission on `repo`, all pages
    /// (`GET /repos/{owner}/{repo}/collaborators?permission=admin`; organization owners
    /// included, as GitHub lists them), in GitHub's order.
    ///
    /// # Errors
    /// [`greg_core::Error::PermissionDenied`] when greg's credentials may not list
    /// collaborators (they need push access); others per [`crate::error::from_status`].
    pub async fn admins(&self, repo: &RepoName) -> Result<Vec<Login>> {
        let what = format!("admins of {repo}");
        let users: Vec<User> = self
            .get_all_pages(&what, |page| routes::admin_collaborators(repo, page))
            .await?;
        Ok(users.into_iter().map(User::into_login).collect())
    }
}
