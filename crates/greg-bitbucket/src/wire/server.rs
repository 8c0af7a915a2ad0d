//! Bitbucket Server/Data Center JSON shared by webhook payloads and REST 1.0 responses.
//!
//! Shapes: "Event payload" (<https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html>),
//! the REST 1.0 reference (<https://developer.atlassian.com/server/bitbucket/rest/>), and the
//! captured deliveries in tests/data/bitbucket-server/ (tests/data/SOURCES.md).
//!
//! Identity: a user's `name` (the username, what `GET /rest/api/1.0/users?filter=` matches)
//! is greg's [`Login`]. Repositories are named `PROJECT_KEY/slug` (`~user/slug` for a
//! personal repository).

use greg_core::{Login, PrNumber, PullRequest as CorePullRequest, PullRequestState, RepoName, Sha};
use serde::Deserialize;

/// A repository: `project.key` and `slug` give the [`RepoName`] `KEY/slug`, validated while
/// deserializing so a bad value is reported with its JSON path.
#[derive(Debug, Clone)]
pub(crate) struct Repo(pub RepoName);

impl<'de> Deserialize<'de> for Repo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            slug: String,
            project: Project,
        }
        #[derive(Deserialize)]
        struct Project {
            key: String,
        }
        let raw = Raw::deserialize(d)?;
        let ok = |s: &str| !s.is_empty() && !s.contains('/');
        if !ok(&raw.project.key) || !ok(&raw.slug) {
            let shown: String = format!("{}/{}", raw.project.key, raw.slug)
                .chars()
                .take(80)
                .collect();
            return Err(serde::de::Error::custom(format!(
                "project key and slug must be non-empty and contain no '/': {shown:?}"
            )));
        }
        Ok(Repo(RepoName::new(raw.project.key, raw.slug)))
    }
}

/// A user; only `name` is read.
#[derive(Debug, Deserialize)]
pub(crate) struct User {
    pub name: String,
}

impl User {
    pub fn into_login(self) -> Login {
        Login(self.name)
    }
}

/// A pull-request participant (author, reviewer or other participant).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Participant {
    pub user: User,
}

/// `pullRequest.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum PrState {
    Open,
    Merged,
    Declined,
}

/// A pull request as both the `pr:*` webhooks and
/// `GET /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/pull-requests/{id}`
/// carry it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PullRequest {
    pub id: u64,
    pub title: String,
    pub state: PrState,
    /// Data Center 8.18+; absent before.
    pub draft: Option<bool>,
    pub author: Participant,
    pub from_ref: FromRef,
    pub to_ref: ToRef,
    /// Read leniently (see [`web_link`]): some deliveries carry `"self": [null]`.
    #[serde(default)]
    pub links: serde_json::Value,
}

/// The source: branch and head commit; `repository` is absent when a fork was deleted.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FromRef {
    /// `refs/heads/feature`.
    pub id: String,
    /// `feature`.
    pub display_id: Option<String>,
    pub latest_commit: Sha,
    pub repository: Option<Repo>,
}

/// The target: branch and repository. Its `latestCommit` is not read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToRef {
    pub id: String,
    pub display_id: Option<String>,
    pub repository: Repo,
}

/// `links.self[0].href`, the web page of the object, when it is a string. Links are for
/// people, so an odd `links` object (tests/data/bitbucket-server/pr_reviewer_approved.go-scm.json
/// has `"self": [null]`) is never a reason to refuse a payload.
pub(crate) fn web_link(links: &serde_json::Value) -> Option<String> {
    links
        .pointer("/self/0/href")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

/// A branch name from a ref id (`refs/heads/x` → `x`), else the display id, else the id.
pub(crate) fn branch_name(id: &str, display_id: Option<&str>) -> String {
    id.strip_prefix("refs/heads/")
        .or(display_id)
        .unwrap_or(id)
        .to_owned()
}

impl PullRequest {
    /// The repository the pull request targets (its own repository).
    pub fn repo(&self) -> &RepoName {
        &self.to_ref.repository.0
    }

    /// The normalized pull request; `mergeable` is `None` (the pull request object does not
    /// say; `GET .../pull-requests/{id}/merge` would).
    pub fn into_core(self) -> CorePullRequest {
        let state = match self.state {
            PrState::Open => PullRequestState::Open,
            PrState::Merged => PullRequestState::Merged,
            PrState::Declined => PullRequestState::Closed,
        };
        CorePullRequest {
            number: PrNumber(self.id),
            state,
            draft: self.draft.unwrap_or(false),
            title: self.title,
            author: self.author.user.into_login(),
            head_sha: self.from_ref.latest_commit,
            head_ref: branch_name(&self.from_ref.id, self.from_ref.display_id.as_deref()),
            head_repo: self.from_ref.repository.map(|r| r.0),
            base_ref: branch_name(&self.to_ref.id, self.to_ref.display_id.as_deref()),
            base_repo: self.to_ref.repository.0,
            mergeable: None,
            html_url: web_link(&self.links),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::from_json;

    #[test]
    fn repository_names_are_project_key_slash_slug() {
        let repo: Repo =
            serde_json::from_str(r#"{"slug":"test-repo","project":{"key":"~username"}}"#)
                .expect("personal repo");
        assert_eq!(repo.0, RepoName::new("~username", "test-repo"));
        let err = from_json::<Repo>(br#"{"slug":"a/b","project":{"key":"P"}}"#).expect_err("slash");
        assert!(err.message.contains("contain no '/'"), "{err}");
        let err = from_json::<Repo>(br#"{"slug":"a","project":{}}"#).expect_err("no key");
        assert!(err.to_string().contains("missing field `key`"), "{err}");
    }

    #[test]
    fn branch_names_come_from_ref_ids() {
        assert_eq!(
            branch_name("refs/heads/feature/x", Some("feature/x")),
            "feature/x"
        );
        assert_eq!(branch_name("refs/tags/v1", Some("v1")), "v1");
        assert_eq!(branch_name("odd", None), "odd");
    }
}
