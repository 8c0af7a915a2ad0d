//! Bitbucket Cloud JSON shared by webhook payloads and REST 2.0 responses.
//!
//! Shapes: the `pullrequest`, `repository`, `account` and `comment` schemas of
//! <https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pullrequests/>, and the
//! captured deliveries in tests/data/bitbucket-cloud/ (tests/data/SOURCES.md).
//!
//! Identity: since Atlassian's 2019 privacy changes a Cloud user object has no `username`;
//! `account_id` (Atlassian account id) is the stable, unique identifier, and greg uses it as
//! the [`Login`]. `nickname` is mutable and not unique, so it is never used for decisions.
//! Payloads from before the change carry only `uuid`, which is used when `account_id` is
//! absent (the REST API accepts both in place of a user).

use crate::event::{AbbreviatedSha, PendingPullRequest};
use greg_core::{Login, PrNumber, PullRequestState, RepoName};
use serde::Deserialize;

/// A repository object; only `full_name` (`workspace/slug`) is read.
#[derive(Debug, Deserialize)]
pub(crate) struct Repo {
    pub full_name: FullName,
}

/// `workspace/slug`, validated by [`RepoName::parse`] while deserializing, so a bad value is
/// reported with its JSON path.
#[derive(Debug, Clone)]
pub(crate) struct FullName(pub RepoName);

impl<'de> Deserialize<'de> for FullName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        RepoName::parse(&raw).map(FullName).ok_or_else(|| {
            let shown: String = raw.chars().take(80).collect();
            serde::de::Error::custom(format!("not a workspace/slug repository name: {shown:?}"))
        })
    }
}

/// An account object. Either id may be missing in old or anonymised payloads; see
/// [`User::login`].
#[derive(Debug, Deserialize)]
pub(crate) struct User {
    pub account_id: Option<String>,
    pub uuid: Option<String>,
}

impl User {
    /// `account_id`, else `uuid` (see the module documentation); `None` when neither is a
    /// non-empty string.
    pub fn login(&self) -> Option<Login> {
        [&self.account_id, &self.uuid]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
            .map(|s| Login(s.to_owned()))
    }
}

/// The login of a user who must be known, or a message naming `path`.
pub(crate) fn required_login(user: Option<&User>, path: &str) -> Result<Login, String> {
    match user {
        None => Err(format!("at {path}: missing or null")),
        Some(u) => u
            .login()
            .ok_or_else(|| format!("at {path}: neither account_id nor uuid is set")),
    }
}

/// `pullrequest.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum PrState {
    Open,
    Merged,
    Declined,
    Superseded,
}

impl PrState {
    pub fn into_core(self) -> PullRequestState {
        match self {
            PrState::Open => PullRequestState::Open,
            PrState::Merged => PullRequestState::Merged,
            PrState::Declined | PrState::Superseded => PullRequestState::Closed,
        }
    }
}

/// A pull request as both the `pullrequest:*` webhooks and
/// `GET /2.0/repositories/{workspace}/{repo_slug}/pullrequests/{id}` carry it.
#[derive(Debug, Deserialize)]
pub(crate) struct PullRequest {
    pub id: u64,
    pub title: String,
    pub state: PrState,
    /// Absent in payloads from before draft pull requests (2024).
    pub draft: Option<bool>,
    pub author: Option<User>,
    pub source: Endpoint,
    pub destination: Endpoint,
    /// Read leniently: `links.html.href` is the web page, for people only.
    #[serde(default)]
    pub links: serde_json::Value,
}

/// `source` or `destination`: branch, commit (abbreviated hash) and repository. The
/// repository is `null` when a fork was deleted.
#[derive(Debug, Deserialize)]
pub(crate) struct Endpoint {
    pub branch: Branch,
    pub commit: Option<Commit>,
    pub repository: Option<Repo>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Branch {
    pub name: String,
}

/// A commit reference; in pull-request objects `hash` has 12 digits.
#[derive(Debug, Deserialize)]
pub(crate) struct Commit {
    pub hash: AbbreviatedSha,
}

/// A pull request without its full head, with the abbreviated head and where to look it up.
pub(crate) struct Pending {
    pub pull_request: PendingPullRequest,
    pub head: AbbreviatedSha,
    pub head_repo: RepoName,
}

impl PullRequest {
    /// The normalized pull request minus its full head. `path` is the JSON path of this
    /// object (`pullrequest` in webhooks, `(top level)` in REST answers) for messages, and
    /// `repo` the repository it was read from, used when `destination.repository` is absent.
    pub fn into_pending(self, path: &str, repo: &RepoName) -> Result<Pending, String> {
        let head = self
            .source
            .commit
            .ok_or_else(|| format!("at {path}.source.commit: missing or null"))?
            .hash;
        let author = required_login(self.author.as_ref(), &format!("{path}.author"))?;
        let base_repo = self
            .destination
            .repository
            .map(|r| r.full_name.0)
            .unwrap_or_else(|| repo.clone());
        let head_repo = self.source.repository.map(|r| r.full_name.0);
        Ok(Pending {
            head_repo: head_repo.clone().unwrap_or_else(|| base_repo.clone()),
            head,
            pull_request: PendingPullRequest {
                number: PrNumber(self.id),
                state: self.state.into_core(),
                draft: self.draft.unwrap_or(false),
                title: self.title,
                author,
                head_ref: self.source.branch.name,
                head_repo,
                base_ref: self.destination.branch.name,
                base_repo,
                html_url: self
                    .links
                    .pointer("/html/href")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::from_json;

    #[test]
    fn logins_prefer_the_account_id_then_the_uuid() {
        let both: User = serde_json::from_str(
            r#"{"account_id":"557058:dc38","uuid":"{bf34}","nickname":"lkysow"}"#,
        )
        .expect("user");
        assert_eq!(both.login(), Some(Login::from("557058:dc38")));
        let old: User =
            serde_json::from_str(r#"{"username":"stephenc","uuid":"{f70f}"}"#).expect("user");
        assert_eq!(old.login(), Some(Login::from("{f70f}")));
        let none: User =
            serde_json::from_str(r#"{"account_id":" ","nickname":"x"}"#).expect("user");
        assert_eq!(none.login(), None);
        assert_eq!(
            required_login(Some(&none), "comment.user"),
            Err("at comment.user: neither account_id nor uuid is set".to_owned())
        );
        assert_eq!(
            required_login(None, "pullrequest.author"),
            Err("at pullrequest.author: missing or null".to_owned())
        );
    }

    #[test]
    fn repository_names_are_workspace_slash_slug() {
        let err = from_json::<Repo>(br#"{"full_name":"no-slash"}"#).expect_err("bad");
        assert_eq!(err.path, "full_name");
        assert!(err.message.contains("not a workspace/slug"), "{err}");
    }
}
