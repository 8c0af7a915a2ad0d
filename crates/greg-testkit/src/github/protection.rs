//! Protected branches of [`super::FakeGithub`]: the world verbs that protect a branch, and the
//! refusals GitHub answers when a push (`PATCH .../git/refs/heads/{branch}`) or a pull-request
//! merge (`PUT .../pulls/{n}/merge`) breaks a rule.
//!
//! The bodies are GitHub's own:
//! - a push without the required statuses: 422 `{"message": "Required status check \"ci\" is
//!   expected.", "documentation_url": "https://docs.github.com/articles/about-protected-branches"}`
//!   ("is pending." while the status is pending, as in bors-ng/bors-ng#866; "N of M required
//!   status checks are expected." for several, as in kevgo/prettifier#28);
//! - a push to a branch that takes changes only through pull requests: 403 "Changes must be
//!   made through a pull request." (git's `GH006` text, e.g. supportpal/github-gh-cli#47);
//! - a pull-request merge without the required statuses on its head: 405 with the same
//!   required-status message (<https://docs.github.com/en/rest/pulls/pulls#merge-a-pull-request>:
//!   "405 Method Not Allowed if merge cannot be performed").
//!
//! A login in [`BranchProtection::bypass`] is let through, as GitHub's bypass list does.

use super::json;
use crate::http::Reply;
use crate::world::github::{BranchProtection, Repo};
use crate::world::{World, WorldError};
use greg_core::{CommitState, Login, RepoName, Sha};

/// Where GitHub's protected-branch refusals point.
const PROTECTED_DOCS: &str = "https://docs.github.com/articles/about-protected-branches";

impl BranchProtection {
    /// "Require status checks to pass": each of `contexts` must be `success` on the new tip.
    pub fn required_checks(contexts: &[&str]) -> Self {
        Self {
            required_checks: contexts.iter().map(|c| (*c).to_owned()).collect(),
            ..Self::default()
        }
    }

    /// "Require a pull request before merging": pushes are refused with 403.
    pub fn pull_request_only() -> Self {
        Self {
            require_pull_request: true,
            ..Self::default()
        }
    }

    /// Lets `login` bypass the rules.
    pub fn bypass(mut self, login: &str) -> Self {
        self.bypass.push(Login::from(login));
        self
    }

    /// GitHub's message for the required checks `sha` lacks in `repo`, `None` when all pass.
    fn missing_checks(&self, repo: &Repo, sha: &Sha) -> Option<String> {
        let (_, latest) = repo.combined_status(sha);
        let state_of = |context: &str| {
            latest
                .iter()
                .find(|s| s.context == context)
                .map(|s| s.state)
        };
        let unmet: Vec<(&str, Option<CommitState>)> = self
            .required_checks
            .iter()
            .map(|c| (c.as_str(), state_of(c)))
            .filter(|(_, state)| *state != Some(CommitState::Success))
            .collect();
        match unmet.as_slice() {
            [] => None,
            [(context, state)] if self.required_checks.len() == 1 => {
                let how = match state {
                    None => "expected",
                    Some(CommitState::Pending) => "pending",
                    Some(_) => "failing",
                };
                Some(format!("Required status check \"{context}\" is {how}."))
            }
            _ => Some(format!(
                "{} of {} required status checks are expected.",
                unmet.len(),
                self.required_checks.len()
            )),
        }
    }

    /// GitHub's refusal of a push of `sha` to the branch by `actor`, `None` when allowed.
    pub(super) fn refuse_push(&self, repo: &Repo, sha: &Sha, actor: &Login) -> Option<Reply> {
        if self.bypass.contains(actor) {
            return None;
        }
        if self.require_pull_request {
            let message = "Changes must be made through a pull request.";
            return Some(Reply::json(403, &json::error(message, 403, PROTECTED_DOCS)));
        }
        let message = self.missing_checks(repo, sha)?;
        Some(Reply::json(
            422,
            &json::error(&message, 422, PROTECTED_DOCS),
        ))
    }

    /// GitHub's refusal of a pull-request merge of `head` by `actor`, `None` when allowed.
    pub(super) fn refuse_merge(&self, repo: &Repo, head: &Sha, actor: &Login) -> Option<Reply> {
        if self.bypass.contains(actor) {
            return None;
        }
        let message = self.missing_checks(repo, head)?;
        Some(Reply::json(
            405,
            &json::error(&message, 405, PROTECTED_DOCS),
        ))
    }
}

impl World {
    /// Protects `branch` of `repo` on the fake GitHub (replacing an earlier protection): pushes
    /// and pull-request merges that break `protection` get GitHub's refusals (module
    /// documentation). The branch need not exist yet.
    ///
    /// # Errors
    /// [`WorldError::UnknownRepo`].
    pub fn protect_branch(
        &self,
        repo: &RepoName,
        branch: &str,
        protection: BranchProtection,
    ) -> Result<(), WorldError> {
        self.update(|s| {
            let r = s.github.repo_mut(repo)?;
            r.protections.insert(branch.to_owned(), protection);
            Ok(())
        })
    }

    /// Removes the protection of `branch` (nothing when it had none).
    ///
    /// # Errors
    /// [`WorldError::UnknownRepo`].
    pub fn unprotect_branch(&self, repo: &RepoName, branch: &str) -> Result<(), WorldError> {
        self.update(|s| {
            let r = s.github.repo_mut(repo)?;
            r.protections.remove(branch);
            Ok(())
        })
    }
}
