//! The domain verbs of [`Bitbucket`], the handle on the world's Bitbucket state
//! ([`World::bitbucket`](crate::World::bitbucket)): what the people around greg do (create a
//! repository, open a pull request, push to it, approve it, comment on it), what tests arrange
//! (permissions, conflicts, page sizes, credentials, one-shot faults) and what they read back
//! (comments, statuses, branches, hooks, the request log). Every verb locks the world once and
//! never panics; unknown objects are [`WorldError`]s.

use crate::world::WorldError;
use crate::world::bitbucket::{
    BbComment, BbFault, BbHook, BbParticipant, BbPullRequest, BbRepo, BbRequest, BbStatus, BbVeto,
    Bitbucket, BitbucketState, Flavor, uuid,
};
use crate::world::github::{NewPr, fake_sha};
use greg_core::{
    CommentId, Login, Permission, PrNumber, PullRequestState, RepoName, ReviewState, Sha,
};
use regex::Regex;
use std::collections::{BTreeMap, HashMap, HashSet};

impl Bitbucket {
    /// The bot's login (the credentials' user).
    pub fn bot(&self) -> Login {
        self.read(|b| b.bot.clone())
    }

    /// Requires `password` as the basic-auth password or bearer token (`None`: any
    /// `Authorization` header is accepted).
    pub fn set_password(&self, password: Option<&str>) {
        self.update(|b, _| b.password = password.map(str::to_owned));
    }

    /// Caps every page at `n` items (`None`: the client's page size, within the vendor's).
    pub fn set_max_page(&self, n: Option<usize>) {
        self.update(|b, _| b.max_page = n.map(|n| n.max(1)));
    }

    /// Creates `repo` with its default branch `master` at `fake_sha("<repo>@master")`; the
    /// bot administers it (Cloud's permission listing needs that).
    pub fn create_repo(&self, repo: &RepoName) -> Result<(), WorldError> {
        self.create_repo_with(
            repo,
            "master",
            &fake_sha(&format!("bitbucket {repo}@master")),
        )
    }

    /// Creates `repo` with `default_branch` at `tip`; the bot administers it.
    pub fn create_repo_with(
        &self,
        repo: &RepoName,
        default_branch: &str,
        tip: &Sha,
    ) -> Result<(), WorldError> {
        self.update(|b, _| {
            if b.repos.contains_key(repo) {
                return Err(WorldError::AlreadyExists(format!("repository {repo}")));
            }
            let id = b.next_id();
            let mut r = BbRepo {
                id,
                name: repo.clone(),
                default_branch: default_branch.to_owned(),
                branches: BTreeMap::new(),
                commits: HashMap::new(),
                pulls: BTreeMap::new(),
                comments: Vec::new(),
                statuses: Vec::new(),
                permissions: HashMap::from([(b.bot.clone(), Permission::Admin)]),
                conflicting_heads: HashSet::new(),
                hooks: Vec::new(),
                merge_vetoes: BTreeMap::new(),
            };
            r.add_commit(tip, Vec::new(), "Initial commit");
            r.branches.insert(default_branch.to_owned(), tip.clone());
            b.repos.insert(repo.clone(), r);
            Ok(())
        })
    }

    /// Grants `login` a permission on `repo` (`Permission::None` revokes it).
    pub fn set_permission(
        &self,
        repo: &RepoName,
        login: &str,
        permission: Permission,
    ) -> Result<(), WorldError> {
        self.update(|b, _| {
            let r = b.repo_mut(repo)?;
            if permission == Permission::None {
                r.permissions.remove(&Login::from(login));
            } else {
                r.permissions.insert(Login::from(login), permission);
            }
            Ok(())
        })
    }

    /// Moves (or creates) `branch` to `sha`; an unknown `sha` becomes a new commit whose
    /// parent is the old tip (or the default branch's tip). Returns the old tip.
    pub fn push_branch(
        &self,
        repo: &RepoName,
        branch: &str,
        sha: &Sha,
    ) -> Result<Option<Sha>, WorldError> {
        self.update(|b, _| {
            let r = b.repo_mut(repo)?;
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

    /// The tip of `branch`, if the repository and branch exist.
    pub fn branch(&self, repo: &RepoName, branch: &str) -> Option<Sha> {
        self.read(|b| b.repos.get(repo)?.branches.get(branch).cloned())
    }

    /// Opens a pull request (the head commit is recorded, parent: the target's tip, and a
    /// same-repository head branch is moved to it). Errors on an unknown repository or target
    /// branch, or an id already taken.
    pub fn open_pr(&self, repo: &RepoName, new: NewPr) -> Result<BbPullRequest, WorldError> {
        self.update(|b, now| {
            let r = b.repo_mut(repo)?;
            let base_ref = new.base_ref.unwrap_or_else(|| r.default_branch.clone());
            let base_tip = r
                .branches
                .get(&base_ref)
                .cloned()
                .ok_or_else(|| WorldError::UnknownBranch(repo.clone(), base_ref.clone()))?;
            let id = match new.number {
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
            let pr = BbPullRequest {
                id,
                title: new.title,
                description: new.body,
                author: new.author,
                head_ref: new.head_ref,
                head_sha: new.head_sha.clone(),
                head_repo,
                base_ref,
                state: PullRequestState::Open,
                draft: new.draft,
                version: 0,
                participants: Vec::new(),
                updates: vec![(now, new.head_sha)],
                merge_commit: None,
                closed_by: None,
                created_at: now,
                updated_at: now,
            };
            r.pulls.insert(id.0, pr.clone());
            Ok(pr)
        })
    }

    /// Pushes a new head to a pull request: records the commit (parent: the old head), moves
    /// a same-repository head branch, bumps the version, returns the old head. Verdicts stay.
    pub fn push_to_pr(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        new_head: &Sha,
    ) -> Result<Sha, WorldError> {
        self.update(|b, now| {
            let r = b.repo_mut(repo)?;
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
            p.version += 1;
            p.updated_at = now;
            p.updates.push((now, new_head.clone()));
            Ok(old)
        })
    }

    /// Changes a pull request in place (title, draft, target, ...), bumping its version.
    pub fn edit_pr<R>(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        f: impl FnOnce(&mut BbPullRequest) -> R,
    ) -> Result<R, WorldError> {
        self.update(|b, now| {
            let p = b.repo_mut(repo)?.pull_mut(pr)?;
            p.version += 1;
            p.updated_at = now;
            Ok(f(p))
        })
    }

    /// Declines (closes) a pull request.
    pub fn decline(&self, repo: &RepoName, pr: PrNumber, by: &str) -> Result<(), WorldError> {
        self.edit_pr(repo, pr, |p| {
            p.state = PullRequestState::Closed;
            p.closed_by = Some(Login::from(by));
        })
    }

    /// Makes every merge of `head` conflict (`true`) or not.
    pub fn set_conflicting(
        &self,
        repo: &RepoName,
        head: &Sha,
        conflicting: bool,
    ) -> Result<(), WorldError> {
        self.update(|b, _| {
            let r = b.repo_mut(repo)?;
            if conflicting {
                r.conflicting_heads.insert(head.clone());
            } else {
                r.conflicting_heads.remove(head);
            }
            Ok(())
        })
    }

    /// Makes a merge check veto every pull-request merge into `branch` of `repo` (replacing
    /// earlier vetoes there): each `(summary, detail)` is one veto. Server answers the merge
    /// 409 `PullRequestMergeVetoedException` with `vetoes[]` (and `GET .../merge` lists
    /// them); Cloud answers 400 with the summaries in `error.fields.merge_checks`. An empty
    /// list lifts the vetoes.
    ///
    /// # Errors
    /// [`WorldError::UnknownRepo`].
    pub fn veto_merges(
        &self,
        repo: &RepoName,
        branch: &str,
        vetoes: &[(&str, &str)],
    ) -> Result<(), WorldError> {
        self.update(|b, _| {
            let r = b.repo_mut(repo)?;
            if vetoes.is_empty() {
                r.merge_vetoes.remove(branch);
            } else {
                let list = vetoes
                    .iter()
                    .map(|(summary, detail)| BbVeto {
                        summary: (*summary).to_owned(),
                        detail: (*detail).to_owned(),
                    })
                    .collect();
                r.merge_vetoes.insert(branch.to_owned(), list);
            }
            Ok(())
        })
    }

    /// Names `user` a reviewer of the pull request.
    pub fn add_reviewer(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        user: &str,
    ) -> Result<(), WorldError> {
        self.update(|b, now| {
            let p = b.repo_mut(repo)?.pull_mut(pr)?;
            let login = Login::from(user);
            match p.participants.iter_mut().find(|x| x.user == login) {
                Some(x) => x.reviewer = true,
                None => p.participants.push(BbParticipant {
                    user: login,
                    reviewer: true,
                    verdict: None,
                    last_reviewed_commit: None,
                    participated_on: now,
                }),
            }
            p.version += 1;
            Ok(())
        })
    }

    /// Gives (or with `None` withdraws) `user`'s verdict on the current head: an approval,
    /// or a change request (Server `NEEDS_WORK`). The user joins as a participant when not a
    /// reviewer.
    pub fn set_verdict(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        user: &str,
        verdict: Option<ReviewState>,
    ) -> Result<BbParticipant, WorldError> {
        self.update(|b, now| {
            let p = b.repo_mut(repo)?.pull_mut(pr)?;
            let login = Login::from(user);
            let head = p.head_sha.clone();
            let i = match p.participants.iter().position(|x| x.user == login) {
                Some(i) => i,
                None => {
                    p.participants.push(BbParticipant {
                        user: login,
                        reviewer: false,
                        verdict: None,
                        last_reviewed_commit: None,
                        participated_on: now,
                    });
                    p.participants.len() - 1
                }
            };
            let x = &mut p.participants[i];
            x.verdict = verdict;
            x.last_reviewed_commit = Some(head);
            x.participated_on = now;
            Ok(x.clone())
        })
    }

    /// `user` approves the current head.
    pub fn approve(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        user: &str,
    ) -> Result<BbParticipant, WorldError> {
        self.set_verdict(repo, pr, user, Some(ReviewState::Approved))
    }

    /// `user` requests changes on the current head (Server: needs work).
    pub fn request_changes(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        user: &str,
    ) -> Result<BbParticipant, WorldError> {
        self.set_verdict(repo, pr, user, Some(ReviewState::ChangesRequested))
    }

    /// A comment by `author` on a pull request (a person, or greg through a fake).
    pub fn comment(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        author: &str,
        text: &str,
    ) -> Result<BbComment, WorldError> {
        self.update(|b, now| {
            let id = b.next_id();
            let r = b.repo_mut(repo)?;
            r.pull(pr)?;
            let c = BbComment {
                id: CommentId(id),
                pr,
                author: Login::from(author),
                text: text.to_owned(),
                version: 0,
                created_at: now,
                updated_at: now,
            };
            r.comments.push(c.clone());
            Ok(c)
        })
    }

    /// Plants a webhook on `repo`; returns it.
    pub fn add_hook(
        &self,
        repo: &RepoName,
        url: &str,
        events: &[&str],
        secret: Option<&str>,
    ) -> Result<BbHook, WorldError> {
        self.update(|b, _| {
            let id = b.next_id();
            let hook = BbHook {
                id,
                uuid: uuid(&format!("hook {id}")),
                name: "hook".to_owned(),
                url: url.to_owned(),
                events: events.iter().map(|e| (*e).to_owned()).collect(),
                active: true,
                secret: secret.map(str::to_owned),
            };
            b.repo_mut(repo)?.hooks.push(hook.clone());
            Ok(hook)
        })
    }

    /// A copy of a pull request.
    pub fn pull_request(&self, repo: &RepoName, pr: PrNumber) -> Option<BbPullRequest> {
        self.read(|b| b.repos.get(repo)?.pulls.get(&pr.0).cloned())
    }

    /// The comments on a pull request, oldest first.
    pub fn comments(&self, repo: &RepoName, pr: PrNumber) -> Vec<BbComment> {
        self.read(|b| {
            b.repos.get(repo).map_or_else(Vec::new, |r| {
                r.comments.iter().filter(|c| c.pr == pr).cloned().collect()
            })
        })
    }

    /// The comments the bot wrote on a pull request, oldest first.
    pub fn bot_comments(&self, repo: &RepoName, pr: PrNumber) -> Vec<BbComment> {
        let bot = self.bot();
        self.comments(repo, pr)
            .into_iter()
            .filter(|c| c.author == bot)
            .collect()
    }

    /// The build statuses on `sha`, oldest first.
    pub fn statuses(&self, repo: &RepoName, sha: &Sha) -> Vec<BbStatus> {
        self.read(|b| {
            b.repos.get(repo).map_or_else(Vec::new, |r| {
                r.statuses
                    .iter()
                    .filter(|s| &s.sha == sha)
                    .cloned()
                    .collect()
            })
        })
    }

    /// The build status with `key` on `sha`.
    pub fn status(&self, repo: &RepoName, sha: &Sha, key: &str) -> Option<BbStatus> {
        self.statuses(repo, sha).into_iter().find(|s| s.key == key)
    }

    /// The webhooks of `repo`, oldest first.
    pub fn hooks(&self, repo: &RepoName) -> Vec<BbHook> {
        self.read(|b| {
            b.repos
                .get(repo)
                .map(|r| r.hooks.clone())
                .unwrap_or_default()
        })
    }

    /// Arms a one-shot fault: the next request to the `flavor` fake whose path matches
    /// `path_regex` is answered with `status` and the flavor's error body (`retry_after` adds
    /// `Retry-After`). Faults fire in the order they were armed. Errors when the regex does
    /// not compile.
    pub fn fail_next(
        &self,
        flavor: Flavor,
        path_regex: &str,
        status: u16,
        retry_after: Option<u64>,
    ) -> Result<(), regex::Error> {
        let path = Regex::new(path_regex)?;
        self.update(|b, _| {
            b.faults.push(BbFault {
                flavor,
                path,
                status,
                retry_after,
            })
        });
        Ok(())
    }

    /// A copy of the request log.
    pub fn requests(&self) -> Vec<BbRequest> {
        self.read(|b| b.requests.clone())
    }

    /// The logged requests to `flavor` with `method` whose path matches `path_regex` (an
    /// invalid regex matches nothing).
    pub fn requests_matching(
        &self,
        flavor: Flavor,
        method: &str,
        path_regex: &str,
    ) -> Vec<BbRequest> {
        let Ok(re) = Regex::new(path_regex) else {
            return Vec::new();
        };
        self.read(|b| {
            b.requests
                .iter()
                .filter(|r| {
                    r.flavor == flavor
                        && r.method.eq_ignore_ascii_case(method)
                        && re.is_match(&r.path)
                })
                .cloned()
                .collect()
        })
    }

    /// Takes the first armed fault matching this request.
    pub(crate) fn take_fault(&self, flavor: Flavor, path: &str) -> Option<BbFault> {
        self.world.update(|s| {
            let faults = &mut s.bitbucket.faults;
            let i = faults
                .iter()
                .position(|f| f.flavor == flavor && f.path.is_match(path))?;
            Some(faults.remove(i))
        })
    }

    /// Appends a request to the log.
    pub(crate) fn log_request(&self, mut entry: BbRequest) {
        self.world.update(|s| {
            entry.seq = s.bitbucket.requests.len() as u64;
            s.bitbucket.requests.push(entry);
        });
    }

    /// Runs `f` on the state with the clock's next tick, for the fakes' handlers.
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut BitbucketState, u64) -> R) -> R {
        self.update(f)
    }
}
