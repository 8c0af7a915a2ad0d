//! The Bitbucket side of the world, served by both [`crate::FakeBitbucketCloud`] and
//! [`crate::FakeBitbucketServer`]: repositories with branches and a commit graph, pull
//! requests with reviewers, participants and their verdicts, comments with versions, build
//! statuses, webhooks and permissions; its own request log and one-shot faults; and the
//! domain verbs tests use to act as the people around greg, on the [`Bitbucket`] handle
//! ([`World::bitbucket`]).
//!
//! Identity: a [`Login`] is what greg sees as the user's login on the flavor that serves it:
//! the `account_id` on Cloud (tests use ids such as `557058:alice`), the username (`name`) on
//! Server. Every call greg makes through a fake is made as [`BitbucketState::bot`].
//!
//! Approvals follow the vendors: a verdict stays when new commits are pushed (neither flavor
//! withdraws approvals unless a repository setting says so, which is not modelled); Server
//! remembers the head the reviewer last reviewed (`lastReviewedCommit`), Cloud only when the
//! verdict was given (`participated_on`), and its activity log says when each head arrived.

use super::github::{FakeCommit, add_commit, fake_sha, is_ancestor};
use super::{World, WorldError};
use greg_core::{
    CommentId, CommitState, Login, Permission, PrNumber, PullRequestState, RepoName, ReviewState,
    Sha,
};
use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Which Bitbucket a fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Bitbucket Cloud, REST 2.0 ([`crate::FakeBitbucketCloud`]).
    Cloud,
    /// Bitbucket Server / Data Center, REST 1.0 ([`crate::FakeBitbucketServer`]).
    Server,
}

/// The Bitbucket side of [`super::WorldState`].
#[derive(Debug)]
pub struct BitbucketState {
    /// The login of the credentials' user: author of greg's comments and statuses.
    pub bot: Login,
    /// Base URL of the fake Cloud API (`http://127.0.0.1:PORT`), set when it starts.
    pub cloud_url: String,
    /// Base URL of the fake Server (`http://127.0.0.1:PORT`), set when it starts.
    pub server_url: String,
    /// When set, requests must carry this secret as the basic-auth password (any username)
    /// or as a bearer token; when `None`, any `Authorization` header is accepted.
    pub password: Option<String>,
    /// When set, no page holds more than this many items, whatever the client asks for (to
    /// exercise pagination with few objects).
    pub max_page: Option<usize>,
    /// Repositories by name (`workspace/slug` on Cloud, `PROJECT/slug` on Server).
    pub repos: BTreeMap<RepoName, BbRepo>,
    /// Every request either Bitbucket fake received, oldest first.
    pub requests: Vec<BbRequest>,
    /// Armed one-shot faults, see [`Bitbucket::fail_next`].
    pub faults: Vec<BbFault>,
    next_id: u64,
}

impl BitbucketState {
    pub(super) fn new(bot: &str) -> Self {
        Self {
            bot: Login::from(bot),
            cloud_url: "http://bitbucket-cloud.invalid".to_owned(),
            server_url: "http://bitbucket-server.invalid".to_owned(),
            password: None,
            max_page: None,
            repos: BTreeMap::new(),
            requests: Vec::new(),
            faults: Vec::new(),
            next_id: 100,
        }
    }

    /// A fresh id for a comment, status or hook.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The repository, or [`WorldError::UnknownRepo`].
    pub fn repo(&self, repo: &RepoName) -> Result<&BbRepo, WorldError> {
        self.repos
            .get(repo)
            .ok_or_else(|| WorldError::UnknownRepo(repo.clone()))
    }

    /// The repository, mutably, or [`WorldError::UnknownRepo`].
    pub fn repo_mut(&mut self, repo: &RepoName) -> Result<&mut BbRepo, WorldError> {
        self.repos
            .get_mut(repo)
            .ok_or_else(|| WorldError::UnknownRepo(repo.clone()))
    }
}

/// A repository.
#[derive(Debug, Clone)]
pub struct BbRepo {
    /// A numeric id (Server's `id`; Cloud's `uuid` is derived from the name).
    pub id: u64,
    /// `workspace/slug` or `PROJECT/slug`.
    pub name: RepoName,
    /// The default branch (`master` unless created otherwise).
    pub default_branch: String,
    /// Branch name (without `refs/heads/`) → tip.
    pub branches: BTreeMap<String, Sha>,
    /// Every commit the model knows, with its parents.
    pub commits: HashMap<Sha, FakeCommit>,
    /// Pull requests by id.
    pub pulls: BTreeMap<u64, BbPullRequest>,
    /// Pull-request comments, oldest first.
    pub comments: Vec<BbComment>,
    /// Build statuses, one per (commit, key): a status posted again with the same key
    /// replaces the earlier one, as both flavors do.
    pub statuses: Vec<BbStatus>,
    /// Effective permissions; a login not listed has none.
    pub permissions: HashMap<Login, Permission>,
    /// Heads whose merge into any branch conflicts.
    pub conflicting_heads: HashSet<Sha>,
    /// Repository webhooks, oldest first.
    pub hooks: Vec<BbHook>,
    /// Merge checks that veto every pull-request merge into a branch, by target branch
    /// ([`Bitbucket::veto_merges`]).
    pub merge_vetoes: BTreeMap<String, Vec<BbVeto>>,
}

/// A merge check's veto: Server's `vetoes[]{summaryMessage, detailedMessage}`
/// (<https://developer.atlassian.com/server/bitbucket/rest/> "Merge pull request"); Cloud
/// shows the `summary` in `error.fields.merge_checks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BbVeto {
    /// Server's `summaryMessage` (Cloud's merge check text).
    pub summary: String,
    /// Server's `detailedMessage`.
    pub detail: String,
}

impl BbRepo {
    /// True when `ancestor` is `descendant` or reachable from it through parents.
    pub fn is_ancestor(&self, ancestor: &Sha, descendant: &Sha) -> bool {
        is_ancestor(&self.commits, ancestor, descendant)
    }

    /// Records a commit if unknown.
    pub fn add_commit(&mut self, sha: &Sha, parents: Vec<Sha>, message: &str) {
        add_commit(&mut self.commits, sha, parents, message);
    }

    /// The commit a revision names: a full sha, a unique prefix of at least 7 digits, or a
    /// branch name.
    pub fn resolve(&self, revision: &str) -> Option<Sha> {
        if let Some(tip) = self.branches.get(revision) {
            return Some(tip.clone());
        }
        let rev = revision.to_ascii_lowercase();
        if rev.len() < 7 || !rev.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut found = self.commits.keys().filter(|s| s.as_str().starts_with(&rev));
        match (found.next(), found.next()) {
            (Some(one), None) => Some(one.clone()),
            _ => None,
        }
    }

    /// Merges `head` into branch `base` with a new merge commit: `Ok(None)` when `head` is
    /// already contained, the new tip otherwise. Errors on an unknown base or head, or a
    /// scripted conflict.
    pub fn merge(
        &mut self,
        base: &str,
        head: &Sha,
        message: &str,
    ) -> Result<Option<Sha>, WorldError> {
        let tip = self
            .branches
            .get(base)
            .cloned()
            .ok_or_else(|| WorldError::UnknownBranch(self.name.clone(), base.to_owned()))?;
        if !self.commits.contains_key(head) {
            return Err(WorldError::Git(format!("Commit {head} does not exist")));
        }
        if self.is_ancestor(head, &tip) {
            return Ok(None);
        }
        if self.conflicting_heads.contains(head) {
            return Err(WorldError::Git("Merge conflict".to_owned()));
        }
        let merge = fake_sha(&format!("bitbucket merge {tip} {head}"));
        self.add_commit(&merge, vec![tip, head.clone()], message);
        self.branches.insert(base.to_owned(), merge.clone());
        Ok(Some(merge))
    }

    /// The pull request, or [`WorldError::UnknownPr`].
    pub fn pull(&self, pr: PrNumber) -> Result<&BbPullRequest, WorldError> {
        self.pulls
            .get(&pr.0)
            .ok_or_else(|| WorldError::UnknownPr(self.name.clone(), pr))
    }

    /// The pull request, mutably, or [`WorldError::UnknownPr`].
    pub fn pull_mut(&mut self, pr: PrNumber) -> Result<&mut BbPullRequest, WorldError> {
        let name = self.name.clone();
        self.pulls
            .get_mut(&pr.0)
            .ok_or(WorldError::UnknownPr(name, pr))
    }

    /// The effective permission of `login` (none when not granted).
    pub fn permission(&self, login: &Login) -> Permission {
        self.permissions
            .get(login)
            .copied()
            .unwrap_or(Permission::None)
    }
}

/// A reviewer or participant of a pull request and their verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BbParticipant {
    /// Who.
    pub user: Login,
    /// Named as a reviewer (role `REVIEWER`), else a participant who commented or reviewed.
    pub reviewer: bool,
    /// `Approved` or `ChangesRequested` (Server `NEEDS_WORK`); `None` when they have none.
    pub verdict: Option<ReviewState>,
    /// The head they last reviewed (Server `lastReviewedCommit`).
    pub last_reviewed_commit: Option<Sha>,
    /// When they last gave or withdrew a verdict, epoch milliseconds (Cloud
    /// `participated_on`).
    pub participated_on: u64,
}

/// A pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BbPullRequest {
    /// The id (Bitbucket numbers pull requests per repository from 1).
    pub id: PrNumber,
    /// Title.
    pub title: String,
    /// Description (may be empty).
    pub description: String,
    /// Who opened it.
    pub author: Login,
    /// Source branch.
    pub head_ref: String,
    /// Source commit.
    pub head_sha: Sha,
    /// The source repository; `None` for a deleted fork.
    pub head_repo: Option<RepoName>,
    /// Target branch.
    pub base_ref: String,
    /// Open, merged, or closed (declined).
    pub state: PullRequestState,
    /// Draft pull request.
    pub draft: bool,
    /// Server's optimistic-locking version: bumped by every change to the pull request
    /// itself (push, edit, merge, decline), not by verdicts or comments.
    pub version: u64,
    /// Reviewers and participants, in the order they joined.
    pub participants: Vec<BbParticipant>,
    /// When each head arrived (epoch ms, head), oldest first: Cloud's activity log.
    pub updates: Vec<(u64, Sha)>,
    /// The merge commit, once merged.
    pub merge_commit: Option<Sha>,
    /// Who merged or declined it.
    pub closed_by: Option<Login>,
    /// Epoch milliseconds.
    pub created_at: u64,
    /// Last change, epoch milliseconds.
    pub updated_at: u64,
}

impl BbPullRequest {
    /// The participant entry of `user`, if any.
    pub fn participant(&self, user: &Login) -> Option<&BbParticipant> {
        self.participants.iter().find(|p| &p.user == user)
    }

    /// The reviewers, in order.
    pub fn reviewers(&self) -> impl Iterator<Item = &BbParticipant> {
        self.participants.iter().filter(|p| p.reviewer)
    }
}

/// A pull-request comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BbComment {
    /// The comment id.
    pub id: CommentId,
    /// The pull request it is on.
    pub pr: PrNumber,
    /// Who wrote it (the bot for comments posted through a fake).
    pub author: Login,
    /// Raw Markdown.
    pub text: String,
    /// Server's optimistic-locking version: 0 when created, bumped by each edit.
    pub version: u64,
    /// Epoch milliseconds.
    pub created_at: u64,
    /// Last edit, epoch milliseconds.
    pub updated_at: u64,
}

/// A build status, as both flavors store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BbStatus {
    /// The status id (Cloud's `uuid` is derived from it).
    pub id: u64,
    /// The commit it is on.
    pub sha: Sha,
    /// Its key, e.g. `greg/test`; unique per commit.
    pub key: String,
    /// `INPROGRESS`, `SUCCESSFUL`, `FAILED`, `STOPPED` (Cloud) or `CANCELLED`, `UNKNOWN`
    /// (Server).
    pub state: String,
    /// Display name.
    pub name: Option<String>,
    /// Link to the build (required by both flavors).
    pub url: String,
    /// One line.
    pub description: Option<String>,
    /// Who set it.
    pub creator: Login,
    /// Epoch milliseconds.
    pub created_at: u64,
    /// Last change, epoch milliseconds.
    pub updated_at: u64,
}

impl BbStatus {
    /// The state as greg's [`CommitState`]: `INPROGRESS` → pending, `SUCCESSFUL` → success,
    /// `FAILED` → failure; `None` for stopped, cancelled and unknown builds.
    pub fn commit_state(&self) -> Option<CommitState> {
        match self.state.as_str() {
            "INPROGRESS" => Some(CommitState::Pending),
            "SUCCESSFUL" => Some(CommitState::Success),
            "FAILED" => Some(CommitState::Failure),
            _ => None,
        }
    }
}

/// A repository webhook. The secret is kept in clear so tests can check what greg set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BbHook {
    /// Server's numeric id.
    pub id: u64,
    /// Cloud's id: a `{uuid}` with braces.
    pub uuid: String,
    /// Server `name`, Cloud `description`.
    pub name: String,
    /// Delivery URL.
    pub url: String,
    /// Subscribed events.
    pub events: Vec<String>,
    /// `active`.
    pub active: bool,
    /// The HMAC secret, when set.
    pub secret: Option<String>,
}

/// One request as a Bitbucket fake received it, with the status it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct BbRequest {
    /// Position in the log, from 0.
    pub seq: u64,
    /// The fake that received it.
    pub flavor: Flavor,
    /// Upper-case HTTP method.
    pub method: String,
    /// Percent-encoded path as sent, without the query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The body parsed as JSON, when it was JSON.
    pub json: Option<Value>,
    /// The status the fake answered.
    pub status: u16,
    /// True when an armed [`BbFault`] produced the answer.
    pub faulted: bool,
}

/// A one-shot failure armed with [`Bitbucket::fail_next`].
#[derive(Debug, Clone)]
pub struct BbFault {
    /// The fake it applies to.
    pub flavor: Flavor,
    /// Matched against the request path (without the query).
    pub path: Regex,
    /// Status to answer, with the flavor's error body.
    pub status: u16,
    /// Seconds for the `Retry-After` header, if any.
    pub retry_after: Option<u64>,
}

/// The Bitbucket verbs on a [`World`]; get one with [`World::bitbucket`]. Every verb locks
/// the world once and never panics; unknown objects are [`WorldError`]s.
#[derive(Debug, Clone)]
pub struct Bitbucket {
    pub(crate) world: World,
}

impl Bitbucket {
    /// The world this handle acts on.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Runs `f` on the Bitbucket state, read-only.
    pub fn read<R>(&self, f: impl FnOnce(&BitbucketState) -> R) -> R {
        self.world.read(|s| f(&s.bitbucket))
    }

    /// Runs `f` on the Bitbucket state with the logical clock's next tick (epoch ms).
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut BitbucketState, u64) -> R) -> R {
        self.world.update(|s| {
            let now = s.tick();
            f(&mut s.bitbucket, now)
        })
    }
}

/// A deterministic `{8-4-4-4-12}` UUID (with braces, as Cloud writes them) derived from
/// `seed`.
pub fn uuid(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = hex::encode(&Sha256::digest(seed.as_bytes())[..16]);
    format!(
        "{{{}-{}-{}-{}-{}}}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Epoch milliseconds as Cloud writes dates: `2024-01-01T00:00:00.000000+00:00`.
pub fn cloud_date(ms: u64) -> String {
    let (date, time, micros) = civil(ms);
    format!("{date}T{time}.{micros:06}+00:00")
}

/// Epoch milliseconds as Server writes event dates: `2024-01-01T00:00:00+0000`.
pub fn server_date(ms: u64) -> String {
    let (date, time, _) = civil(ms);
    format!("{date}T{time}+0000")
}

/// `(YYYY-MM-DD, HH:MM:SS, microseconds)` of epoch milliseconds, UTC (Howard Hinnant's
/// `civil_from_days`).
fn civil(ms: u64) -> (String, String, u64) {
    let secs = ms / 1000;
    let micros = (ms % 1000) * 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
        micros,
    )
}

impl World {
    /// The Bitbucket verbs on this world (both Bitbucket fakes serve its Bitbucket state).
    pub fn bitbucket(&self) -> Bitbucket {
        Bitbucket {
            world: self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewPr;

    #[test]
    fn dates_are_written_as_each_flavor_writes_them() {
        assert_eq!(
            cloud_date(super::super::CLOCK_START_MS),
            "2024-01-01T00:00:00.000000+00:00"
        );
        assert_eq!(server_date(1_530_818_490_000), "2018-07-05T19:21:30+0000");
        assert_eq!(
            cloud_date(1_709_164_800_123),
            "2024-02-29T00:00:00.123000+00:00"
        );
        assert_eq!(uuid("x").len(), 38);
    }

    #[test]
    fn verdicts_bind_to_the_head_and_survive_a_push() {
        let world = World::default();
        let bb = world.bitbucket();
        let repo = RepoName::new("PRJ", "demo");
        bb.create_repo(&repo).expect("repo");
        let pr = bb
            .open_pr(&repo, NewPr::new("carol", "fix", fake_sha("h1")))
            .expect("open");
        bb.approve(&repo, pr.id, "alice").expect("approve");
        bb.push_to_pr(&repo, pr.id, &fake_sha("h2")).expect("push");
        let now = bb.pull_request(&repo, pr.id).expect("pr");
        let alice = now.participant(&Login::from("alice")).expect("alice");
        assert_eq!(alice.verdict, Some(ReviewState::Approved));
        assert_eq!(alice.last_reviewed_commit, Some(fake_sha("h1")));
        assert_eq!(now.version, 1);
        assert_eq!(now.updates.len(), 2);
        assert_eq!(bb.branch(&repo, "fix"), Some(fake_sha("h2")));
        let r = bb.read(|b| b.repos[&repo].clone());
        assert_eq!(
            r.resolve(&fake_sha("h2").as_str()[..12]),
            Some(fake_sha("h2"))
        );
        assert_eq!(r.resolve("fix"), Some(fake_sha("h2")));
        assert!(r.is_ancestor(&fake_sha("h1"), &fake_sha("h2")));
    }
}
