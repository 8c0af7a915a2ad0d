//! The GitHub side of the world: repositories with branches and a commit graph, pull requests,
//! issue comments, reviews, commit statuses and collaborator permissions, plus the domain verbs
//! tests use to act as the people around greg (open a pull request, push to it, approve it,
//! comment on it).
//!
//! Every call greg makes through [`crate::FakeGithub`] is made as [`GithubState::bot`], the
//! token's user: its comments and statuses are authored by the bot.

use super::{World, WorldError};
use greg_core::{
    CommentId, CommitState, Login, Permission, PrNumber, PullRequest, PullRequestState, RepoName,
    ReviewState, Sha,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// A deterministic, valid 40-digit sha derived from `seed` (the first 160 bits of
/// SHA-256(seed)), so tests can name commits: `fake_sha("feature-1")`.
pub fn fake_sha(seed: &str) -> Sha {
    let digest = Sha256::digest(seed.as_bytes());
    let hex = hex::encode(&digest[..20]);
    // Not input-derived: 40 lower-case hex digits are always a valid sha.
    Sha::parse(&hex).expect("40 hex digits are a sha")
}

/// A stable numeric id for a login (GitHub user ids are stable per account); derived from the
/// lower-cased login so it needs no registry.
pub fn user_id(login: &str) -> u64 {
    let digest = Sha256::digest(login.to_ascii_lowercase().as_bytes());
    let mut n = [0u8; 8];
    n.copy_from_slice(&digest[..8]);
    1_000 + u64::from_be_bytes(n) % 100_000_000
}

/// The GitHub side of [`super::WorldState`].
#[derive(Debug)]
pub struct GithubState {
    /// The login of the token's user: author of greg's comments and statuses.
    pub bot: Login,
    /// Base URL of the fake's API (`http://127.0.0.1:PORT`), set by [`crate::FakeGithub::start`];
    /// used in the `url`/`html_url` fields of responses.
    pub api_url: String,
    /// When set, `Authorization` must carry exactly this token (`token X` or `Bearer X`);
    /// when `None` any `Authorization` header is accepted.
    pub token: Option<String>,
    /// When set, the fake serves this GitHub App's JWT-authenticated routes (see
    /// [`crate::FakeApp`]).
    pub app: Option<crate::FakeApp>,
    /// Repositories by name.
    pub repos: BTreeMap<RepoName, Repo>,
    /// The OAuth web flow (sign-in to greg's pages).
    pub oauth: FakeOauth,
    next_id: u64,
}

/// The fake's OAuth app and web flow: who signs in next, the codes handed out and the user
/// tokens they were exchanged for.
#[derive(Debug, Default)]
pub struct FakeOauth {
    /// The OAuth app's `(client_id, client_secret)`; `None`: any client is accepted.
    pub app: Option<(String, String)>,
    /// The user `GET /login/oauth/authorize` signs in (the person at the browser);
    /// `None`: the authorize page answers 403.
    pub user: Option<Login>,
    /// Codes not yet exchanged → their user.
    pub codes: HashMap<String, Login>,
    /// User tokens → their user.
    pub tokens: HashMap<String, Login>,
    /// Every token handed out, for tests that check none leaks.
    pub issued: Vec<String>,
    /// Counter for codes and tokens.
    pub next: u64,
}

impl GithubState {
    pub(super) fn new(bot: &str) -> Self {
        Self {
            bot: Login::from(bot),
            api_url: "http://github.invalid".to_owned(),
            token: None,
            app: None,
            repos: BTreeMap::new(),
            oauth: FakeOauth::default(),
            next_id: 1_000_000,
        }
    }

    /// A fresh id for a repository, pull request, comment, review or status.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The repository, or [`WorldError::UnknownRepo`].
    pub fn repo(&self, repo: &RepoName) -> Result<&Repo, WorldError> {
        self.repos
            .get(repo)
            .ok_or_else(|| WorldError::UnknownRepo(repo.clone()))
    }

    /// The repository, mutably, or [`WorldError::UnknownRepo`].
    pub fn repo_mut(&mut self, repo: &RepoName) -> Result<&mut Repo, WorldError> {
        self.repos
            .get_mut(repo)
            .ok_or_else(|| WorldError::UnknownRepo(repo.clone()))
    }
}

/// One commit of the model's graph: only its parents and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCommit {
    /// Parent commits, first parent first (two for a merge commit).
    pub parents: Vec<Sha>,
    /// The commit message.
    pub message: String,
}

/// True when `ancestor` is `descendant` or reachable from it through the parents in `commits`
/// (the fake GitHub's and the fake Bitbucket's commit graphs).
pub(crate) fn is_ancestor(
    commits: &HashMap<Sha, FakeCommit>,
    ancestor: &Sha,
    descendant: &Sha,
) -> bool {
    let mut seen = HashSet::new();
    let mut todo = VecDeque::from([descendant.clone()]);
    while let Some(sha) = todo.pop_front() {
        if &sha == ancestor {
            return true;
        }
        if !seen.insert(sha.clone()) {
            continue;
        }
        if let Some(c) = commits.get(&sha) {
            todo.extend(c.parents.iter().cloned());
        }
    }
    false
}

/// Records a commit in `commits` if unknown.
pub(crate) fn add_commit(
    commits: &mut HashMap<Sha, FakeCommit>,
    sha: &Sha,
    parents: Vec<Sha>,
    message: &str,
) {
    commits.entry(sha.clone()).or_insert_with(|| FakeCommit {
        parents,
        message: message.to_owned(),
    });
}

/// A repository.
#[derive(Debug, Clone)]
pub struct Repo {
    /// GitHub's numeric repository id.
    pub id: u64,
    /// `owner/name`.
    pub name: RepoName,
    /// The default branch (`master` unless created otherwise).
    pub default_branch: String,
    /// Branch name (without `refs/heads/`) → tip, with every value each branch had.
    pub branches: Branches,
    /// Every commit the model knows, with its parents.
    pub commits: HashMap<Sha, FakeCommit>,
    /// Pull requests by number.
    pub pulls: BTreeMap<u64, FakePullRequest>,
    /// Issue comments on pull requests, oldest first.
    pub comments: Vec<Comment>,
    /// Reviews, oldest first.
    pub reviews: Vec<FakeReview>,
    /// Commit statuses, oldest first.
    pub statuses: Vec<Status>,
    /// Collaborator permissions.
    pub permissions: HashMap<Login, Permission>,
    /// Permission of any login not in `permissions` (default `Read`, as on a public repository).
    pub default_permission: Permission,
    /// A private repository (`"private": true`; see [`World::make_private`]).
    pub private: bool,
    /// Heads whose merge into any base conflicts.
    pub conflicting_heads: HashSet<Sha>,
    /// Repository webhooks, oldest first.
    pub hooks: Vec<super::hooks::FakeHook>,
    /// Protected branches by name ([`World::protect_branch`]).
    pub protections: BTreeMap<String, BranchProtection>,
    /// Every delivery sent to one of `hooks`, oldest first ([`World::send_to_hook`]).
    pub deliveries: Vec<HookDelivery>,
    /// Reactions on issue comments, oldest first; one per (comment, user, content), as GitHub
    /// keeps them.
    pub reactions: Vec<FakeReaction>,
    /// Comments deleted through the API (`DELETE .../issues/comments/{id}`), in order.
    pub deleted_comments: Vec<Comment>,
}

/// A reaction on an issue comment (`POST .../issues/comments/{id}/reactions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeReaction {
    /// GitHub's reaction id.
    pub id: u64,
    /// The comment reacted to.
    pub comment: CommentId,
    /// Who reacted (the bot for reactions made through the API).
    pub user: Login,
    /// GitHub's `content`: `+1`, `-1`, `laugh`, `confused`, `heart`, `hooray`, `rocket`, `eyes`.
    pub content: String,
}

/// The branches of a repository: name (without `refs/heads/`) → tip, and every value each
/// branch had, in order. Reads go through `Deref` to the map of tips; every change goes through
/// [`Branches::insert`] or [`Branches::remove`], which record it, so every way a branch moves
/// (a test's push, a pull request's head, `PATCH .../git/refs` fast-forward or force, a merge)
/// shows in [`Branches::history`].
#[derive(Debug, Clone, Default)]
pub struct Branches {
    tips: BTreeMap<String, Sha>,
    history: HashMap<String, Vec<Sha>>,
}

impl std::ops::Deref for Branches {
    type Target = BTreeMap<String, Sha>;

    fn deref(&self) -> &Self::Target {
        &self.tips
    }
}

impl Branches {
    /// Moves (or creates) `branch` to `tip`; returns the old tip. The history records `tip`
    /// unless the branch already pointed at it.
    pub fn insert(&mut self, branch: String, tip: Sha) -> Option<Sha> {
        let history = self.history.entry(branch.clone()).or_default();
        let old = self.tips.insert(branch, tip.clone());
        if old.as_ref() != Some(&tip) {
            history.push(tip);
        }
        old
    }

    /// Deletes `branch`; returns its last tip. Its history stays (a branch created again
    /// continues it).
    pub fn remove(&mut self, branch: &str) -> Option<Sha> {
        self.tips.remove(branch)
    }

    /// Every value `branch` had, oldest first (its creation included, deletions left out);
    /// empty for a branch that never existed.
    pub fn history(&self, branch: &str) -> &[Sha] {
        self.history.get(branch).map_or(&[], Vec::as_slice)
    }
}

/// The protection of one branch, as GitHub enforces it on `PATCH .../git/refs/heads/{branch}`
/// (a push) and on `PUT .../pulls/{n}/merge`
/// (<https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-protected-branches/about-protected-branches>).
/// Build it with [`BranchProtection::required_checks`] or
/// [`BranchProtection::pull_request_only`], then [`BranchProtection::bypass`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BranchProtection {
    /// Status contexts that must be `success` on the new tip ("Require status checks to pass").
    pub required_checks: Vec<String>,
    /// "Require a pull request before merging": a push is refused (403), a pull-request merge
    /// is not.
    pub require_pull_request: bool,
    /// Logins the rules do not apply to (GitHub's bypass list); every fake request is made as
    /// [`GithubState::bot`].
    pub bypass: Vec<Login>,
}

/// One delivery the world sent to a repository webhook: what GitHub's
/// `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries` lists
/// (<https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook>).
#[derive(Debug, Clone, PartialEq)]
pub struct HookDelivery {
    /// The delivery's id (what a redelivery names).
    pub id: u64,
    /// The webhook it was sent by.
    pub hook_id: u64,
    /// `X-GitHub-Delivery`: the same GUID on a redelivery.
    pub guid: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`, when it has one.
    pub action: Option<String>,
    /// The status greg answered; 0 when greg could not be reached.
    pub status_code: u16,
    /// When it was sent, epoch milliseconds of the logical clock.
    pub delivered_ms: u64,
    /// True for a redelivery.
    pub redelivery: bool,
    /// The payload sent, for redeliveries.
    pub payload: serde_json::Value,
}

impl Repo {
    /// True when `ancestor` is `descendant` or reachable from it through parents.
    pub fn is_ancestor(&self, ancestor: &Sha, descendant: &Sha) -> bool {
        is_ancestor(&self.commits, ancestor, descendant)
    }

    /// Records a commit if unknown.
    pub fn add_commit(&mut self, sha: &Sha, parents: Vec<Sha>, message: &str) {
        add_commit(&mut self.commits, sha, parents, message);
    }

    /// GitHub's rule when a branch moves: every open pull request into `branch` whose head is
    /// now contained in the branch is closed as merged, merged by `by` at `now`, with the new
    /// tip as its merge commit. Returns the numbers closed.
    pub fn mark_contained_merged(&mut self, branch: &str, by: &Login, now: u64) -> Vec<PrNumber> {
        let Some(tip) = self.branches.get(branch).cloned() else {
            return Vec::new();
        };
        let contained: Vec<u64> = self
            .pulls
            .values()
            .filter(|p| p.state == PullRequestState::Open && p.base_ref == branch)
            .filter(|p| self.is_ancestor(&p.head_sha, &tip))
            .map(|p| p.number.0)
            .collect();
        for n in &contained {
            if let Some(pr) = self.pulls.get_mut(n) {
                pr.state = PullRequestState::Merged;
                pr.merge_commit_sha = Some(tip.clone());
                pr.merged_by = Some(by.clone());
                pr.merged_at = Some(now);
                pr.closed_at = Some(now);
                pr.updated_at = now;
            }
        }
        contained.into_iter().map(PrNumber).collect()
    }

    /// The pull request, or [`WorldError::UnknownPr`].
    pub fn pull(&self, pr: PrNumber) -> Result<&FakePullRequest, WorldError> {
        self.pulls
            .get(&pr.0)
            .ok_or_else(|| WorldError::UnknownPr(self.name.clone(), pr))
    }

    /// The pull request, mutably, or [`WorldError::UnknownPr`].
    pub fn pull_mut(&mut self, pr: PrNumber) -> Result<&mut FakePullRequest, WorldError> {
        let name = self.name.clone();
        self.pulls
            .get_mut(&pr.0)
            .ok_or(WorldError::UnknownPr(name, pr))
    }

    /// The permission of `login` (explicit grant, else the default).
    pub fn permission(&self, login: &Login) -> Permission {
        self.permissions
            .get(login)
            .copied()
            .unwrap_or(self.default_permission)
    }

    /// The newest status per context on `sha`, in order of first appearance (what the combined
    /// status lists), and the combined state: `failure` when any is error or failure, else
    /// `pending` when any is pending or there are none, else `success` (GitHub's rule).
    pub fn combined_status(&self, sha: &Sha) -> (CommitState, Vec<&Status>) {
        let mut latest: Vec<&Status> = Vec::new();
        for s in self.statuses.iter().filter(|s| &s.sha == sha) {
            match latest.iter_mut().find(|l| l.context == s.context) {
                Some(l) => *l = s,
                None => latest.push(s),
            }
        }
        let state = if latest
            .iter()
            .any(|s| matches!(s.state, CommitState::Error | CommitState::Failure))
        {
            CommitState::Failure
        } else if latest.is_empty() || latest.iter().any(|s| s.state == CommitState::Pending) {
            CommitState::Pending
        } else {
            CommitState::Success
        };
        (state, latest)
    }

    /// Merges `head` into branch `base` with a new merge commit, GitHub's `POST /merges`:
    /// `Ok(None)` when `head` is already contained (nothing to merge), the new tip otherwise.
    /// Errors on an unknown base, an unknown head or a scripted conflict.
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
            return Err(WorldError::Git(format!("Head {head} does not exist")));
        }
        if self.is_ancestor(head, &tip) {
            return Ok(None);
        }
        if self.conflicting_heads.contains(head) {
            return Err(WorldError::Git("Merge conflict".to_owned()));
        }
        let merge = fake_sha(&format!("merge {tip} {head}"));
        self.add_commit(&merge, vec![tip, head.clone()], message);
        self.branches.insert(base.to_owned(), merge.clone());
        Ok(Some(merge))
    }
}

/// A pull request in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePullRequest {
    /// GitHub's global id (`id`), distinct from the number.
    pub id: u64,
    /// The pull-request (issue) number.
    pub number: PrNumber,
    /// Title.
    pub title: String,
    /// Description; empty renders as `null`.
    pub body: String,
    /// Who opened it.
    pub author: Login,
    /// Head branch name.
    pub head_ref: String,
    /// Head commit.
    pub head_sha: Sha,
    /// `None`: the fork was deleted.
    pub head_repo: Option<RepoName>,
    /// Target branch name.
    pub base_ref: String,
    /// Open, closed or merged.
    pub state: PullRequestState,
    /// Draft pull request.
    pub draft: bool,
    /// GitHub's conflict check: `Some(false)` conflicts, `None` not computed yet.
    pub mergeable: Option<bool>,
    /// The commit the merge created, once merged.
    pub merge_commit_sha: Option<Sha>,
    /// Who merged it.
    pub merged_by: Option<Login>,
    /// Epoch milliseconds (logical clock).
    pub created_at: u64,
    /// Last change, epoch milliseconds.
    pub updated_at: u64,
    /// When it was closed (merged or not), epoch milliseconds.
    pub closed_at: Option<u64>,
    /// When it was merged, epoch milliseconds.
    pub merged_at: Option<u64>,
}

impl FakePullRequest {
    /// The pull request as greg-core describes it, for comparing with what greg read.
    pub fn to_core(&self, repo: &RepoName, api_url: &str) -> PullRequest {
        PullRequest {
            number: self.number,
            state: self.state,
            draft: self.draft,
            title: self.title.clone(),
            author: self.author.clone(),
            head_sha: self.head_sha.clone(),
            head_ref: self.head_ref.clone(),
            head_repo: self.head_repo.clone(),
            base_ref: self.base_ref.clone(),
            base_repo: repo.clone(),
            mergeable: self.mergeable,
            html_url: Some(format!("{api_url}/{repo}/pull/{}", self.number)),
        }
    }
}

/// What [`World::open_pr`] needs; build it with [`NewPr::new`] and the setters.
#[derive(Debug, Clone)]
pub struct NewPr {
    /// `None`: the next free number.
    pub number: Option<PrNumber>,
    /// Title (default `Merge <head_ref>`).
    pub title: String,
    /// Description (default empty).
    pub body: String,
    /// Who opens it.
    pub author: Login,
    /// Head branch name.
    pub head_ref: String,
    /// Head commit.
    pub head_sha: Sha,
    /// `None`: the repository itself. `Some(None)`: a deleted fork.
    pub head_repo: Option<Option<RepoName>>,
    /// `None`: the repository's default branch.
    pub base_ref: Option<String>,
    /// Open as a draft.
    pub draft: bool,
}

impl NewPr {
    /// A pull request by `author` from branch `head_ref` at `head_sha` into the default branch.
    pub fn new(author: &str, head_ref: &str, head_sha: Sha) -> Self {
        Self {
            number: None,
            title: format!("Merge {head_ref}"),
            body: String::new(),
            author: Login::from(author),
            head_ref: head_ref.to_owned(),
            head_sha,
            head_repo: None,
            base_ref: None,
            draft: false,
        }
    }

    /// Uses this number instead of the next free one.
    pub fn number(mut self, n: u64) -> Self {
        self.number = Some(PrNumber(n));
        self
    }

    /// Sets the title.
    pub fn title(mut self, t: &str) -> Self {
        self.title = t.to_owned();
        self
    }

    /// Sets the target branch.
    pub fn base(mut self, b: &str) -> Self {
        self.base_ref = Some(b.to_owned());
        self
    }

    /// Opens it as a draft.
    pub fn draft(mut self) -> Self {
        self.draft = true;
        self
    }

    /// The head lives in another repository (`None`: a deleted fork).
    pub fn from_fork(mut self, fork: Option<RepoName>) -> Self {
        self.head_repo = Some(fork);
        self
    }
}

/// An issue comment on a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// GitHub's comment id.
    pub id: CommentId,
    /// The pull request it is on.
    pub pr: PrNumber,
    /// Who wrote it (the bot for comments posted through the API).
    pub author: Login,
    /// Raw Markdown.
    pub body: String,
    /// Epoch milliseconds.
    pub created_at: u64,
    /// Last edit, epoch milliseconds.
    pub updated_at: u64,
}

/// A pull-request review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeReview {
    /// GitHub's review id.
    pub id: u64,
    /// The pull request reviewed.
    pub pr: PrNumber,
    /// Who reviewed.
    pub reviewer: Login,
    /// The verdict.
    pub state: ReviewState,
    /// The head the review was given on.
    pub commit_id: Sha,
    /// Review text (may be empty).
    pub body: String,
    /// Epoch milliseconds.
    pub submitted_at: u64,
}

/// A commit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// GitHub's status id.
    pub id: u64,
    /// The commit it is on.
    pub sha: Sha,
    /// pending, success, failure or error.
    pub state: CommitState,
    /// Its context, e.g. `greg/test`.
    pub context: String,
    /// One line, at most 140 characters.
    pub description: Option<String>,
    /// Link to the build.
    pub target_url: Option<String>,
    /// Who set it (the bot for statuses posted through the API).
    pub creator: Login,
    /// Epoch milliseconds.
    pub created_at: u64,
}

impl World {
    /// Creates `repo` with its default branch `master` at `fake_sha("<repo>@master")`.
    pub fn create_repo(&self, repo: &RepoName) -> Result<(), WorldError> {
        self.create_repo_with(repo, "master", &fake_sha(&format!("{repo}@master")))
    }

    /// Creates `repo` with `default_branch` at `tip`.
    pub fn create_repo_with(
        &self,
        repo: &RepoName,
        default_branch: &str,
        tip: &Sha,
    ) -> Result<(), WorldError> {
        self.update(|s| {
            if s.github.repos.contains_key(repo) {
                return Err(WorldError::AlreadyExists(format!("repository {repo}")));
            }
            let id = s.github.next_id();
            let mut r = Repo {
                id,
                name: repo.clone(),
                default_branch: default_branch.to_owned(),
                branches: Branches::default(),
                commits: HashMap::new(),
                pulls: BTreeMap::new(),
                comments: Vec::new(),
                reviews: Vec::new(),
                statuses: Vec::new(),
                permissions: HashMap::new(),
                default_permission: Permission::Read,
                private: false,
                conflicting_heads: HashSet::new(),
                hooks: Vec::new(),
                protections: BTreeMap::new(),
                deliveries: Vec::new(),
                reactions: Vec::new(),
                deleted_comments: Vec::new(),
            };
            r.add_commit(tip, Vec::new(), "Initial commit");
            r.branches.insert(default_branch.to_owned(), tip.clone());
            s.github.repos.insert(repo.clone(), r);
            Ok(())
        })
    }

    /// Makes `repo` private: `"private": true`, and no permission for anyone not granted one
    /// with [`set_permission`](Self::set_permission).
    pub fn make_private(&self, repo: &RepoName) -> Result<(), WorldError> {
        self.update(|s| {
            let r = s.github.repo_mut(repo)?;
            r.private = true;
            r.default_permission = Permission::None;
            Ok(())
        })
    }

    /// Registers the OAuth app greg's sign-in uses: the fake's token endpoint then accepts
    /// only these client credentials.
    pub fn set_oauth_app(&self, client_id: &str, client_secret: &str) {
        self.update(|s| {
            s.github.oauth.app = Some((client_id.to_owned(), client_secret.to_owned()));
        });
    }

    /// The person at the browser: the next `GET /login/oauth/authorize` signs in `login`
    /// (`None`: nobody, the authorize page answers 403).
    pub fn sign_in_as(&self, login: Option<&str>) {
        self.update(|s| s.github.oauth.user = login.map(Login::from));
    }

    /// Every OAuth user token the fake handed out.
    pub fn oauth_tokens(&self) -> Vec<String> {
        self.read(|s| s.github.oauth.issued.clone())
    }

    /// Grants `login` a permission on `repo`.
    pub fn set_permission(
        &self,
        repo: &RepoName,
        login: &str,
        permission: Permission,
    ) -> Result<(), WorldError> {
        self.update(|s| {
            s.github
                .repo_mut(repo)?
                .permissions
                .insert(Login::from(login), permission);
            Ok(())
        })
    }

    /// Moves (or creates) `branch` to `sha`; an unknown `sha` becomes a new commit whose parent
    /// is the old tip (or the default branch's tip for a new branch). Returns the old tip.
    pub fn push_branch(
        &self,
        repo: &RepoName,
        branch: &str,
        sha: &Sha,
    ) -> Result<Option<Sha>, WorldError> {
        self.update(|s| {
            let r = s.github.repo_mut(repo)?;
            let old = r.branches.get(branch).cloned();
            let parent = old
                .clone()
                .or_else(|| r.branches.get(&r.default_branch).cloned());
            r.add_commit(
                sha,
                parent.into_iter().collect(),
                &format!("Push to {branch}"),
            );
            r.branches.insert(branch.to_owned(), sha.clone());
            Ok(old)
        })
    }

    /// Deletes `branch`; returns its last tip.
    pub fn delete_branch(&self, repo: &RepoName, branch: &str) -> Result<Sha, WorldError> {
        self.update(|s| {
            let r = s.github.repo_mut(repo)?;
            r.branches
                .remove(branch)
                .ok_or_else(|| WorldError::UnknownBranch(repo.clone(), branch.to_owned()))
        })
    }

    /// Every value `branch` of `repo` had, oldest first: its creation, then every push,
    /// fast-forward, force move and merge, in order (deletions left out; see
    /// [`Branches::history`]). Empty for an unknown repository or a branch that never existed.
    pub fn branch_history(&self, repo: &RepoName, branch: &str) -> Vec<Sha> {
        self.read(|s| {
            s.github
                .repos
                .get(repo)
                .map_or_else(Vec::new, |r| r.branches.history(branch).to_vec())
        })
    }

    /// The tip of `branch`, if the repository and branch exist.
    pub fn branch(&self, repo: &RepoName, branch: &str) -> Option<Sha> {
        self.read(|s| s.github.repos.get(repo)?.branches.get(branch).cloned())
    }

    /// The tip of the newest branch under `prefix` (the one whose name ends in the highest
    /// number: with `greg/staging/master/`, the newest candidate's staging ref), if any.
    pub fn newest_branch_under(&self, repo: &RepoName, prefix: &str) -> Option<Sha> {
        self.branches_under(repo, prefix)
            .into_iter()
            .max_by_key(|(name, _)| {
                name.rsplit('/')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .map(|(_, tip)| tip)
    }

    /// The branches whose names start with `prefix` (`greg/staging/master/`: the staging refs
    /// of one merge queue), by name, with their tips.
    pub fn branches_under(&self, repo: &RepoName, prefix: &str) -> Vec<(String, Sha)> {
        self.read(|s| {
            s.github.repos.get(repo).map_or_else(Vec::new, |r| {
                r.branches
                    .iter()
                    .filter(|(name, _)| name.starts_with(prefix))
                    .map(|(name, tip)| (name.clone(), tip.clone()))
                    .collect()
            })
        })
    }

    /// Opens a pull request. The head commit is recorded (parent: the base tip) and, for a
    /// same-repository pull request, the head branch is moved to it. Errors on an unknown
    /// repository or base branch, or a number already taken.
    pub fn open_pr(&self, repo: &RepoName, new: NewPr) -> Result<FakePullRequest, WorldError> {
        self.update(|s| {
            let now = s.tick();
            let id = s.github.next_id();
            let r = s.github.repo_mut(repo)?;
            let base_ref = new.base_ref.unwrap_or_else(|| r.default_branch.clone());
            let base_tip = r
                .branches
                .get(&base_ref)
                .cloned()
                .ok_or_else(|| WorldError::UnknownBranch(repo.clone(), base_ref.clone()))?;
            let number = match new.number {
                Some(n) if r.pulls.contains_key(&n.0) => {
                    return Err(WorldError::AlreadyExists(format!(
                        "pull request {repo}#{n}"
                    )));
                }
                Some(n) => n,
                None => PrNumber(r.pulls.keys().next_back().map_or(1, |n| n + 1)),
            };
            let head_repo = new.head_repo.unwrap_or_else(|| Some(repo.clone()));
            r.add_commit(&new.head_sha, vec![base_tip], &new.title);
            if head_repo.as_ref() == Some(repo) {
                r.branches
                    .insert(new.head_ref.clone(), new.head_sha.clone());
            }
            let pr = FakePullRequest {
                id,
                number,
                title: new.title,
                body: new.body,
                author: new.author,
                head_ref: new.head_ref,
                head_sha: new.head_sha,
                head_repo,
                base_ref,
                state: PullRequestState::Open,
                draft: new.draft,
                mergeable: Some(true),
                merge_commit_sha: None,
                merged_by: None,
                created_at: now,
                updated_at: now,
                closed_at: None,
                merged_at: None,
            };
            r.pulls.insert(number.0, pr.clone());
            Ok(pr)
        })
    }

    /// Pushes a new head to a pull request (GitHub then sends `synchronize`): records the
    /// commit (parent: the old head), moves the head branch, returns the old head.
    pub fn push_to_pr(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        new_head: &Sha,
    ) -> Result<Sha, WorldError> {
        self.update(|s| {
            let now = s.tick();
            let r = s.github.repo_mut(repo)?;
            let (old, head_ref, same_repo) = {
                let p = r.pull(pr)?;
                (
                    p.head_sha.clone(),
                    p.head_ref.clone(),
                    p.head_repo.as_ref() == Some(repo),
                )
            };
            r.add_commit(new_head, vec![old.clone()], "Push to pull request");
            if same_repo {
                r.branches.insert(head_ref, new_head.clone());
            }
            let p = r.pull_mut(pr)?;
            p.head_sha = new_head.clone();
            p.updated_at = now;
            Ok(old)
        })
    }

    /// Changes a pull request in place (close, reopen, draft, retarget, mergeable, ...) and
    /// bumps its `updated_at`.
    pub fn edit_pr<R>(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        f: impl FnOnce(&mut FakePullRequest) -> R,
    ) -> Result<R, WorldError> {
        self.update(|s| {
            let now = s.tick();
            let p = s.github.repo_mut(repo)?.pull_mut(pr)?;
            p.updated_at = now;
            Ok(f(p))
        })
    }

    /// Sets GitHub's conflict check; `Some(false)` also makes merges of the head conflict.
    pub fn set_mergeable(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        mergeable: Option<bool>,
    ) -> Result<(), WorldError> {
        self.update(|s| {
            let r = s.github.repo_mut(repo)?;
            let head = r.pull(pr)?.head_sha.clone();
            if mergeable == Some(false) {
                r.conflicting_heads.insert(head);
            } else {
                r.conflicting_heads.remove(&head);
            }
            r.pull_mut(pr)?.mergeable = mergeable;
            Ok(())
        })
    }

    /// A native review by `reviewer` on the current head.
    pub fn review(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        reviewer: &str,
        state: ReviewState,
        body: &str,
    ) -> Result<FakeReview, WorldError> {
        self.update(|s| {
            let now = s.tick();
            let id = s.github.next_id();
            let r = s.github.repo_mut(repo)?;
            let commit_id = r.pull(pr)?.head_sha.clone();
            let review = FakeReview {
                id,
                pr,
                reviewer: Login::from(reviewer),
                state,
                commit_id,
                body: body.to_owned(),
                submitted_at: now,
            };
            r.reviews.push(review.clone());
            Ok(review)
        })
    }

    /// A native APPROVED review by `reviewer` on the current head.
    pub fn approve(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        reviewer: &str,
    ) -> Result<FakeReview, WorldError> {
        self.review(repo, pr, reviewer, ReviewState::Approved, "")
    }

    /// A comment by `author` on a pull request (a person, or greg via the fake's API).
    pub fn comment(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        author: &str,
        body: &str,
    ) -> Result<Comment, WorldError> {
        self.update(|s| {
            let now = s.tick();
            let id = s.github.next_id();
            let r = s.github.repo_mut(repo)?;
            r.pull(pr)?;
            let c = Comment {
                id: CommentId(id),
                pr,
                author: Login::from(author),
                body: body.to_owned(),
                created_at: now,
                updated_at: now,
            };
            r.comments.push(c.clone());
            Ok(c)
        })
    }

    /// Records a commit status on `sha` by `creator`.
    pub fn add_status(
        &self,
        repo: &RepoName,
        sha: &Sha,
        state: CommitState,
        context: &str,
        creator: &str,
    ) -> Result<Status, WorldError> {
        self.update(|s| {
            let now = s.tick();
            let id = s.github.next_id();
            let st = Status {
                id,
                sha: sha.clone(),
                state,
                context: context.to_owned(),
                description: None,
                target_url: None,
                creator: Login::from(creator),
                created_at: now,
            };
            s.github.repo_mut(repo)?.statuses.push(st.clone());
            Ok(st)
        })
    }

    /// A copy of a pull request.
    pub fn pull_request(&self, repo: &RepoName, pr: PrNumber) -> Option<FakePullRequest> {
        self.read(|s| s.github.repos.get(repo)?.pulls.get(&pr.0).cloned())
    }

    /// The comments on a pull request, oldest first (empty when unknown).
    pub fn comments(&self, repo: &RepoName, pr: PrNumber) -> Vec<Comment> {
        self.read(|s| {
            s.github.repos.get(repo).map_or_else(Vec::new, |r| {
                r.comments.iter().filter(|c| c.pr == pr).cloned().collect()
            })
        })
    }

    /// The reactions' `content` on comment `comment`, oldest first.
    pub fn reactions(&self, repo: &RepoName, comment: CommentId) -> Vec<String> {
        self.read(|s| {
            s.github.repos.get(repo).map_or_else(Vec::new, |r| {
                r.reactions
                    .iter()
                    .filter(|x| x.comment == comment)
                    .map(|x| x.content.clone())
                    .collect()
            })
        })
    }

    /// The comments deleted through the API on a pull request, in order of deletion.
    pub fn deleted_comments(&self, repo: &RepoName, pr: PrNumber) -> Vec<Comment> {
        self.read(|s| {
            s.github.repos.get(repo).map_or_else(Vec::new, |r| {
                r.deleted_comments
                    .iter()
                    .filter(|c| c.pr == pr)
                    .cloned()
                    .collect()
            })
        })
    }

    /// The comments the bot wrote on a pull request, oldest first.
    pub fn bot_comments(&self, repo: &RepoName, pr: PrNumber) -> Vec<Comment> {
        let bot = self.read(|s| s.github.bot.clone());
        self.comments(repo, pr)
            .into_iter()
            .filter(|c| c.author == bot)
            .collect()
    }

    /// The reviews of a pull request, oldest first.
    pub fn reviews(&self, repo: &RepoName, pr: PrNumber) -> Vec<FakeReview> {
        self.read(|s| {
            s.github.repos.get(repo).map_or_else(Vec::new, |r| {
                r.reviews.iter().filter(|c| c.pr == pr).cloned().collect()
            })
        })
    }

    /// Every status on `sha`, oldest first.
    pub fn statuses(&self, repo: &RepoName, sha: &Sha) -> Vec<Status> {
        self.read(|s| {
            s.github.repos.get(repo).map_or_else(Vec::new, |r| {
                r.statuses
                    .iter()
                    .filter(|st| &st.sha == sha)
                    .cloned()
                    .collect()
            })
        })
    }

    /// The newest status on `sha` under `context`.
    pub fn latest_status(&self, repo: &RepoName, sha: &Sha, context: &str) -> Option<Status> {
        self.statuses(repo, sha)
            .into_iter()
            .rev()
            .find(|s| s.context == context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeGithub;

    async fn patch_ref(url: &str, branch: &str, sha: &Sha, force: bool) -> u16 {
        crate::install_crypto_provider();
        let resp = reqwest::Client::new()
            .patch(format!("{url}/repos/acme/demo/git/refs/heads/{branch}"))
            .header("authorization", "token t")
            .json(&serde_json::json!({"sha": sha.as_str(), "force": force}))
            .send()
            .await
            .expect("send");
        resp.status().as_u16()
    }

    #[tokio::test]
    async fn a_branch_history_records_pushes_merges_fast_forwards_and_force_moves_in_order() {
        let world = World::default();
        let github = FakeGithub::start(world.clone()).expect("github");
        let repo = RepoName::new("acme", "demo");
        world.create_repo(&repo).expect("repo");
        let start = world.branch(&repo, "master").expect("master");

        let pushed = fake_sha("pushed");
        world.push_branch(&repo, "master", &pushed).expect("push");
        // A push of the tip it already has is no move.
        world.push_branch(&repo, "master", &pushed).expect("push");
        let merged = world
            .update(|s| s.github.repo_mut(&repo)?.merge("master", &start, "no-op"))
            .expect("merge");
        assert_eq!(merged, None, "an ancestor merges as nothing");
        let side = fake_sha("side");
        world.push_branch(&repo, "side", &side).expect("side");
        let merge = world
            .update(|s| {
                s.github
                    .repo_mut(&repo)?
                    .merge("master", &side, "merge side")
            })
            .expect("merge")
            .expect("a merge commit");

        // Over HTTP: a fast-forward, a refused non-fast-forward, a force move.
        let ahead = fake_sha("ahead");
        world
            .update(|s| {
                s.github
                    .repo_mut(&repo)
                    .map(|r| r.add_commit(&ahead, vec![merge.clone()], "ahead"))
            })
            .expect("commit");
        assert_eq!(patch_ref(&github.url, "master", &ahead, false).await, 200);
        assert_eq!(patch_ref(&github.url, "master", &start, false).await, 422);
        assert_eq!(patch_ref(&github.url, "master", &start, true).await, 200);

        assert_eq!(
            world.branch_history(&repo, "master"),
            vec![start.clone(), pushed, merge, ahead, start]
        );
        assert_eq!(world.branch_history(&repo, "side"), vec![side.clone()]);

        // A deleted branch keeps its history; created again, it continues it.
        world.delete_branch(&repo, "side").expect("delete");
        assert_eq!(world.branch_history(&repo, "side"), vec![side.clone()]);
        let again = fake_sha("side-2");
        world.push_branch(&repo, "side", &again).expect("push");
        assert_eq!(world.branch_history(&repo, "side"), vec![side, again]);
        assert!(world.branch_history(&repo, "never").is_empty());
        assert!(
            world
                .branch_history(&RepoName::new("acme", "unknown"), "master")
                .is_empty()
        );
    }
}
