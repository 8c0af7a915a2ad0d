//! Mergeability (SPEC §5) as a pure function: given what greg knows about a pull request,
//! return *every* blocker, so "@greg ok" can list them all at once.
//!
//! Design note.
//! - Approvals are bound to the head they approved: an approval of an older head is reported
//!   as stale and never counts (Greg counted them; homu once merged a stale commit this way).
//! - The bot account and the pull request's author never count as approvers.
//! - The head's `greg/test` status must be `success`; pending, failure, error and missing are
//!   each a blocker (Greg accepted any state, a bug not copied).
//! - A conflict is a blocker only when the provider says so (`mergeable == Some(false)`);
//!   "not computed yet" is not, since the merge build will find out.

use crate::event::ReviewState;
use crate::ids::{Login, RepoName, Sha};
use crate::provider::{CommitState, PullRequest, PullRequestState, Review};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Where an approval came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalSource {
    /// A native provider review (GitHub APPROVED review).
    Review,
    /// An "@greg lgtm" comment.
    Comment,
}

/// One person's approval of one head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub login: Login,
    pub sha: Sha,
    pub source: ApprovalSource,
}

/// Everything the rule needs, gathered by the engine.
#[derive(Debug, Clone)]
pub struct MergeInput<'a> {
    /// The configured repository (the pull request's target repository).
    pub repo: &'a RepoName,
    pub pr: &'a PullRequest,
    pub allow_forks: bool,
    /// `None`: every target branch is allowed.
    pub target_branches: Option<&'a [String]>,
    /// Configured reviewers plus those named by "@greg review", deduplicated by the caller.
    pub required_reviewers: &'a [Login],
    pub required_approvals: u32,
    /// Approvals from reviews and comments (any head; the rule filters).
    pub approvals: &'a [Approval],
    /// False when the repository has no test job: then the head's test status is not a rule.
    pub test_required: bool,
    /// State of `greg/test` on the head; `None` when greg never built it.
    pub test_status: Option<CommitState>,
    /// The bot's own login, never an approver.
    pub bot: Option<&'a Login>,
}

/// One reason a pull request may not merge. `Display` is the line "@greg ok" prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "blocker", rename_all = "snake_case")]
pub enum Blocker {
    /// Head lives in another repository and forks are not allowed.
    Fork {
        head_repo: Option<RepoName>,
    },
    Closed,
    Merged,
    Draft,
    Conflicts,
    TargetNotAllowed {
        branch: String,
    },
    /// A required reviewer has not approved the current head (`stale`: approved an older one).
    ReviewerMissing {
        login: Login,
        stale: bool,
    },
    NotEnoughApprovals {
        have: u32,
        need: u32,
    },
    TestMissing,
    TestPending,
    TestFailed {
        state: CommitState,
    },
}

impl Blocker {
    /// True when this blocker takes an already queued pull request out of the merge queue
    /// (SPEC §5: the rules hold until the merge lands): the approvals and reviewers, a draft,
    /// a closed or merged pull request, a fork, a target that is not allowed. The head's test
    /// status and the provider's conflict flag do not: the staging merge and its build are
    /// the proof those stand for, and a test status goes back to pending whenever the target
    /// moves (`test_merged`).
    pub fn drops_queued(&self) -> bool {
        match self {
            Blocker::Fork { .. }
            | Blocker::Closed
            | Blocker::Merged
            | Blocker::Draft
            | Blocker::TargetNotAllowed { .. }
            | Blocker::ReviewerMissing { .. }
            | Blocker::NotEnoughApprovals { .. } => true,
            Blocker::Conflicts
            | Blocker::TestMissing
            | Blocker::TestPending
            | Blocker::TestFailed { .. } => false,
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::Fork { head_repo: Some(r) } => {
                write!(
                    f,
                    "the head is in another repository ({r}) and forks are not allowed"
                )
            }
            Blocker::Fork { head_repo: None } => {
                write!(
                    f,
                    "the head repository was deleted and forks are not allowed"
                )
            }
            Blocker::Closed => write!(f, "the pull request is closed"),
            Blocker::Merged => write!(f, "the pull request is already merged"),
            Blocker::Draft => write!(f, "the pull request is a draft"),
            Blocker::Conflicts => write!(f, "the pull request has merge conflicts"),
            Blocker::TargetNotAllowed { branch } => {
                write!(
                    f,
                    "the target branch `{branch}` is not one greg merges into"
                )
            }
            Blocker::ReviewerMissing {
                login,
                stale: false,
            } => {
                write!(f, "@{login} has not approved")
            }
            Blocker::ReviewerMissing { login, stale: true } => {
                write!(
                    f,
                    "@{login} approved an older head; the current head needs a new approval"
                )
            }
            Blocker::NotEnoughApprovals { have, need } => {
                let s = if *need == 1 { "" } else { "s" };
                write!(
                    f,
                    "{have} of {need} required approval{s} on the current head"
                )
            }
            Blocker::TestMissing => write!(f, "the head has not been tested"),
            Blocker::TestPending => write!(f, "the test build of the head is still running"),
            Blocker::TestFailed { state } => {
                write!(f, "the test build of the head ended in {}", state.as_str())
            }
        }
    }
}

/// Folds a provider's review list into approvals: per reviewer, the latest review that is not
/// a plain comment decides; only an `Approved` one with a known commit yields an approval.
pub fn approvals_from_reviews(reviews: &[Review]) -> Vec<Approval> {
    let mut latest: HashMap<&Login, &Review> = HashMap::new();
    let mut order: Vec<&Login> = Vec::new();
    for r in reviews {
        if r.state == ReviewState::Commented {
            continue;
        }
        if !latest.contains_key(&r.reviewer) {
            order.push(&r.reviewer);
        }
        latest.insert(&r.reviewer, r);
    }
    order
        .into_iter()
        .filter_map(|login| {
            let r = latest.get(login)?;
            match (&r.state, &r.commit) {
                (ReviewState::Approved, Some(sha)) => Some(Approval {
                    login: r.reviewer.clone(),
                    sha: sha.clone(),
                    source: ApprovalSource::Review,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Returns every blocker; an empty list means the pull request may merge.
pub fn mergeability(input: &MergeInput<'_>) -> Vec<Blocker> {
    let pr = input.pr;
    let mut blockers = Vec::new();

    if !input.allow_forks && pr.head_repo.as_ref() != Some(input.repo) {
        blockers.push(Blocker::Fork {
            head_repo: pr.head_repo.clone(),
        });
    }
    match pr.state {
        PullRequestState::Open => {}
        PullRequestState::Closed => blockers.push(Blocker::Closed),
        PullRequestState::Merged => blockers.push(Blocker::Merged),
    }
    if pr.draft {
        blockers.push(Blocker::Draft);
    }
    if pr.mergeable == Some(false) {
        blockers.push(Blocker::Conflicts);
    }
    if let Some(allowed) = input.target_branches
        && !allowed.iter().any(|b| b == &pr.base_ref)
    {
        blockers.push(Blocker::TargetNotAllowed {
            branch: pr.base_ref.clone(),
        });
    }

    let counts = |a: &Approval| Some(&a.login) != input.bot && a.login != pr.author;
    let current: Vec<&Login> = {
        let mut v: Vec<&Login> = Vec::new();
        for a in input
            .approvals
            .iter()
            .filter(|a| counts(a) && a.sha == pr.head_sha)
        {
            if !v.contains(&&a.login) {
                v.push(&a.login);
            }
        }
        v
    };
    for login in input.required_reviewers {
        if !current.contains(&login) {
            let stale = input
                .approvals
                .iter()
                .any(|a| &a.login == login && a.sha != pr.head_sha);
            blockers.push(Blocker::ReviewerMissing {
                login: login.clone(),
                stale,
            });
        }
    }
    let have = u32::try_from(current.len()).unwrap_or(u32::MAX);
    if have < input.required_approvals {
        blockers.push(Blocker::NotEnoughApprovals {
            have,
            need: input.required_approvals,
        });
    }

    match input.test_status {
        _ if !input.test_required => {}
        Some(CommitState::Success) => {}
        Some(CommitState::Pending) => blockers.push(Blocker::TestPending),
        Some(state) => blockers.push(Blocker::TestFailed { state }),
        None => blockers.push(Blocker::TestMissing),
    }
    blockers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PrNumber;

    fn sha(c: char) -> Sha {
        Sha::parse(&c.to_string().repeat(40)).expect("valid sha")
    }

    fn repo() -> RepoName {
        RepoName::new("acme", "demo")
    }

    fn pr() -> PullRequest {
        PullRequest {
            number: PrNumber(7),
            state: PullRequestState::Open,
            draft: false,
            title: "Fix".into(),
            author: Login::from("carol"),
            head_sha: sha('b'),
            head_ref: "fix".into(),
            head_repo: Some(repo()),
            base_ref: "master".into(),
            base_repo: repo(),
            mergeable: Some(true),
            html_url: None,
        }
    }

    fn approval(login: &str, c: char) -> Approval {
        Approval {
            login: Login::from(login),
            sha: sha(c),
            source: ApprovalSource::Review,
        }
    }

    fn check(
        pr: &PullRequest,
        approvals: &[Approval],
        reviewers: &[Login],
        test: Option<CommitState>,
    ) -> Vec<String> {
        let repo = repo();
        let bot = Login::from("greg-bot");
        let input = MergeInput {
            repo: &repo,
            pr,
            allow_forks: false,
            target_branches: None,
            required_reviewers: reviewers,
            required_approvals: 1,
            approvals,
            test_required: true,
            test_status: test,
            bot: Some(&bot),
        };
        mergeability(&input).iter().map(|b| b.to_string()).collect()
    }

    #[test]
    fn approved_and_green_head_is_mergeable() {
        assert!(
            check(
                &pr(),
                &[approval("alice", 'b')],
                &[],
                Some(CommitState::Success)
            )
            .is_empty()
        );
    }

    #[test]
    fn approval_of_an_older_head_does_not_count() {
        let got = check(
            &pr(),
            &[approval("alice", 'a')],
            &[Login::from("alice")],
            Some(CommitState::Success),
        );
        assert_eq!(
            got,
            [
                "@alice approved an older head; the current head needs a new approval",
                "0 of 1 required approval on the current head"
            ]
        );
    }

    #[test]
    fn pending_or_failed_test_blocks_unlike_greg() {
        let a = [approval("alice", 'b')];
        assert_eq!(
            check(&pr(), &a, &[], Some(CommitState::Pending)),
            ["the test build of the head is still running"]
        );
        assert_eq!(
            check(&pr(), &a, &[], Some(CommitState::Failure)),
            ["the test build of the head ended in failure"]
        );
        assert_eq!(
            check(&pr(), &a, &[], None),
            ["the head has not been tested"]
        );
    }

    #[test]
    fn every_blocker_is_listed() {
        let mut p = pr();
        p.state = PullRequestState::Closed;
        p.draft = true;
        p.mergeable = Some(false);
        p.head_repo = Some(RepoName::new("mallory", "demo"));
        let got = check(
            &p,
            &[approval("carol", 'b'), approval("greg-bot", 'b')],
            &[Login::from("bob")],
            Some(CommitState::Error),
        );
        assert_eq!(
            got,
            [
                "the head is in another repository (mallory/demo) and forks are not allowed",
                "the pull request is closed",
                "the pull request is a draft",
                "the pull request has merge conflicts",
                "@bob has not approved",
                "0 of 1 required approval on the current head",
                "the test build of the head ended in error",
            ]
        );
    }

    #[test]
    fn latest_non_comment_review_decides() {
        let r = |login: &str, state, c| Review {
            reviewer: Login::from(login),
            state,
            commit: Some(sha(c)),
        };
        let reviews = [
            r("alice", ReviewState::Approved, 'a'),
            r("alice", ReviewState::Commented, 'b'),
            r("bob", ReviewState::Approved, 'b'),
            r("bob", ReviewState::ChangesRequested, 'b'),
            r("dave", ReviewState::ChangesRequested, 'a'),
            r("dave", ReviewState::Approved, 'b'),
        ];
        let got: Vec<_> = approvals_from_reviews(&reviews)
            .into_iter()
            .map(|a| (a.login.0, a.sha.short().to_owned()))
            .collect();
        assert_eq!(
            got,
            [
                ("alice".to_owned(), "aaaaaaa".to_owned()),
                ("dave".to_owned(), "bbbbbbb".to_owned())
            ]
        );
    }
}
