//! greg's own minimal serde structs for the GitHub JSON it reads, shared by webhook payloads
//! and REST responses. Only the fields greg uses are declared; unknown fields are ignored, so
//! schema additions on GitHub's side do not break parsing (octocrab's typed payloads lag).
//!
//! Shapes: <https://docs.github.com/en/webhooks/webhook-events-and-payloads> and the
//! `pull-request` schema of tests/data/github/openapi-subset.json. Wire types never leave
//! this crate.

use greg_core::{Login, PrNumber, PullRequest, PullRequestState, RepoName, Sha};
use serde::Deserialize;

/// A repository object; only `full_name` (`owner/name`) is read.
#[derive(Debug, Deserialize)]
pub(crate) struct Repo {
    pub full_name: FullName,
}

/// `owner/name`, validated by [`RepoName::parse`] while deserializing, so a bad value is
/// reported with its JSON path.
#[derive(Debug)]
pub(crate) struct FullName(pub RepoName);

impl<'de> Deserialize<'de> for FullName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        RepoName::parse(&raw).map(FullName).ok_or_else(|| {
            let shown: String = raw.chars().take(80).collect();
            serde::de::Error::custom(format!("not an owner/name repository name: {shown:?}"))
        })
    }
}

/// A user object; only `login` is read.
#[derive(Debug, Deserialize)]
pub(crate) struct User {
    pub login: String,
}

impl User {
    pub fn into_login(self) -> Login {
        Login(self.login)
    }
}

/// GitHub's pull-request `state`: `merged` is a separate boolean.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PrState {
    Open,
    Closed,
}

/// A pull request as both the `pull_request` webhook and `GET .../pulls/{n}` carry it.
#[derive(Debug, Deserialize)]
pub(crate) struct WirePullRequest {
    pub number: u64,
    pub state: PrState,
    /// Absent in payloads from before 2019 (and in `pull_request_review` payloads of that era).
    pub merged: Option<bool>,
    /// Absent in payloads from before draft pull requests existed.
    pub draft: Option<bool>,
    pub title: String,
    pub user: User,
    pub head: Head,
    pub base: Base,
    /// `null` while GitHub is still computing it.
    pub mergeable: Option<bool>,
    pub html_url: Option<String>,
}

/// `pull_request.head`; `repo` is `null` when the fork was deleted.
#[derive(Debug, Deserialize)]
pub(crate) struct Head {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: Sha,
    pub repo: Option<Repo>,
}

/// `pull_request.base`: the target branch and repository.
#[derive(Debug, Deserialize)]
pub(crate) struct Base {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub repo: Repo,
}

impl WirePullRequest {
    /// The normalized pull request: `state` is `merged` when GitHub says closed and merged.
    pub fn into_core(self) -> PullRequest {
        let merged = self.merged.unwrap_or(false);
        let state = match self.state {
            PrState::Open => PullRequestState::Open,
            PrState::Closed if merged => PullRequestState::Merged,
            PrState::Closed => PullRequestState::Closed,
        };
        PullRequest {
            number: PrNumber(self.number),
            state,
            draft: self.draft.unwrap_or(false),
            title: self.title,
            author: self.user.into_login(),
            head_sha: self.head.sha,
            head_ref: self.head.git_ref,
            head_repo: self.head.repo.map(|r| r.full_name.0),
            base_ref: self.base.git_ref,
            base_repo: self.base.repo.full_name.0,
            mergeable: self.mergeable,
            html_url: self.html_url,
        }
    }
}

/// Why a JSON document could not be read as the expected type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError {
    /// Where it went wrong: `pull_request.head.sha`, or `(top level)`.
    pub path: String,
    /// True when the text is not JSON at all (truncated, not UTF-8, trailing characters).
    pub syntax: bool,
    /// serde_json's message, with line and column.
    pub message: String,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.syntax {
            write!(f, "not valid JSON (in {}): {}", self.path, self.message)
        } else {
            write!(f, "at {}: {}", self.path, self.message)
        }
    }
}

/// Deserializes `body` as `T`, reporting failures with the JSON path (dotted, e.g.
/// `pull_request.head.sha`) and serde_json's message.
///
/// The document is parsed once with plain serde_json; only a document that fails is parsed
/// again with path tracking, which costs about half as much again as the parse itself and
/// is worth it only for the error message.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, JsonError> {
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        Err(_) => Err(from_json_tracked::<T>(body)
            .err()
            .unwrap_or_else(|| JsonError {
                path: "(top level)".to_owned(),
                syntax: true,
                message: "the document could not be read".to_owned(),
            })),
    }
}

/// [`from_json`]'s second pass: the same parse, tracking the path of the failure.
fn from_json_tracked<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, JsonError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        JsonError {
            path: if path == "." {
                "(top level)".to_owned()
            } else {
                path
            },
            syntax: inner.is_eof() || inner.is_syntax(),
            message: inner.to_string(),
        }
    })?;
    // Trailing characters after the document are an error, as in `serde_json::from_slice`.
    de.end().map_err(|e| JsonError {
        path: "(top level)".to_owned(),
        syntax: true,
        message: e.to_string(),
    })?;
    Ok(value)
}
