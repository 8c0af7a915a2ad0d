//! Read models for the JSON API (hail's endpoints, docs/api.md): the merge queues, what is
//! being built for which pull request, what is ready to merge, review state, and passing heads.
//! Built from the store only (no provider calls), so the API is cheap and never spends the
//! provider's rate limit. greg-server serializes these as JSON.

use crate::Engine;
use crate::eta::{self, BuildStats, Eta, Shape, Slot};
use crate::queue;
use greg_core::{BuildContext, Login, PrNumber, RepoName, Sha};
use greg_store::{BuildRecord, PullRequestTitle, QueueEntry, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;

/// A build as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BuildView {
    /// Store id.
    pub id: i64,
    /// `test`, `merge` or `try`.
    pub context: &'static str,
    /// The commit built (a pull request's head, or a staging commit).
    pub sha: Sha,
    /// The job.
    pub job: String,
    /// Jenkins' build number, once started.
    pub number: Option<u64>,
    /// The build page, once known.
    pub url: Option<String>,
    /// `pending`, `queued`, `running`, `success`, `failure`, `aborted`, `error`,
    /// `timed_out`, `superseded`.
    pub state: &'static str,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// Unix milliseconds of the last change.
    pub updated_ms: i64,
}

impl From<&BuildRecord> for BuildView {
    fn from(b: &BuildRecord) -> Self {
        Self {
            id: b.id,
            context: b.context.as_str(),
            sha: b.sha.clone(),
            job: b.job.to_string(),
            number: b.number.map(|n| n.0),
            url: b.url.clone(),
            state: b.state.as_str(),
            created_ms: b.created_ms,
            updated_ms: b.updated_ms,
        }
    }
}

/// One entry of a merge queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueueEntryView {
    /// 1-based place among the queue's merges (the one in flight is 1); `None` for try entries.
    pub position: Option<usize>,
    /// The pull request.
    pub pr: PrNumber,
    /// Its title as greg last saw it (a webhook or a read from the provider); `None` (JSON
    /// `null`) when greg never saw it.
    pub title: Option<String>,
    /// Who opened it; `None` like `title`.
    pub author: Option<Login>,
    /// `merge` or `try`.
    pub kind: &'static str,
    /// `waiting`, `staging`, `building`, `landing`.
    pub state: &'static str,
    /// The approved head (the approval is bound to it).
    pub head: Sha,
    /// `p=N` (higher first).
    pub priority: i32,
    /// Who asked.
    pub approved_by: Login,
    /// Unix milliseconds of the request.
    pub approved_ms: i64,
    /// How many times it was staged (more than 1: the target moved, or greg restarted).
    pub attempts: i32,
    /// The target tip the staging commit was made from.
    pub base: Option<Sha>,
    /// The staging commit being built.
    pub staging: Option<Sha>,
    /// The staging build, when one exists.
    pub build: Option<BuildView>,
    /// The merge-pipeline candidate it is in (SPEC §10; see [`QueueView::candidates`]).
    pub candidate: Option<i64>,
    /// When it should land (a try or test_merged entry: finish), as a range of milliseconds
    /// from now, from the target's recent merge builds and what stands ahead of it
    /// (`crate::eta`); `None` (JSON `null`): unknown, no merge build of the target finished
    /// yet.
    pub eta: Option<Eta>,
}

/// A candidate of the merge pipeline (SPEC §10): pull requests built together on one staging
/// commit, on top of its parent candidate's commit (or the target tip).
#[derive(Debug, Clone, Serialize)]
pub struct CandidateView {
    /// Its id: its first entry's id, the `<n>` of its staging ref.
    pub id: i64,
    /// `greg/staging/<target>/<n>`.
    pub staging_ref: String,
    /// The candidate it is built on; `None`: the target tip.
    pub parent: Option<i64>,
    /// Its own pull requests, in queue order (it also contains every pull request of its
    /// parents).
    pub pull_requests: Vec<PrNumber>,
    /// `staging`, `building` or `landing` (built green, landing when the candidates before it
    /// have).
    pub state: &'static str,
    /// The commit it was built on.
    pub base: Option<Sha>,
    /// Its staging commit.
    pub staging: Option<Sha>,
    /// Its build, when one was started.
    pub build: Option<BuildView>,
}

/// The merge queue of one (repository, target branch).
#[derive(Debug, Clone, Serialize)]
pub struct QueueView {
    /// `owner/name`.
    pub repo: String,
    /// The target branch.
    pub target: String,
    /// `@greg treeclosed=N`: merges below this priority wait.
    pub tree_closed_below: Option<i32>,
    /// By position: the merges in flight first, then the waiting merges in queue order, then
    /// try and test_merged entries.
    pub entries: Vec<QueueEntryView>,
    /// The candidates in flight, oldest first.
    pub candidates: Vec<CandidateView>,
}

/// What greg is doing for one pull request.
#[derive(Debug, Clone, Serialize)]
pub struct PullRequestView {
    /// `owner/name`.
    pub repo: String,
    /// The pull request.
    pub pr: PrNumber,
    /// The heads greg is building or merging (newest build first).
    pub heads: Vec<Sha>,
    /// Active builds.
    pub builds: Vec<BuildView>,
    /// Its queue entries.
    pub queue: Vec<QueueEntryView>,
}

/// Approvals recorded by greg ("@greg lgtm") and required reviewers ("@greg review") of one
/// pull request. Native provider reviews are read from the provider when a rule is checked and
/// are not stored, so they are not listed here.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewView {
    /// `owner/name`.
    pub repo: String,
    /// The pull request.
    pub pr: PrNumber,
    /// `lgtm` approvals: who, and the head they approved.
    pub approvals: Vec<ApprovalView>,
    /// Reviewers named by "@greg review" (the configured ones are in config.yaml).
    pub required_reviewers: Vec<Login>,
}

/// One recorded approval.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    /// Who approved.
    pub login: Login,
    /// The head approved.
    pub sha: Sha,
}

/// A head whose test build passed.
#[derive(Debug, Clone, Serialize)]
pub struct PassingView {
    /// `owner/name`.
    pub repo: String,
    /// The pull request, when the build was for one.
    pub pr: Option<PrNumber>,
    /// The commit that passed.
    pub sha: Sha,
    /// The build.
    pub build: BuildView,
}

/// The measured durations of the recent merge builds of `repo` into `target`; `None` when
/// none finished.
async fn build_stats(
    store: &greg_store::Store,
    repo: &RepoName,
    target: &str,
) -> Result<Option<BuildStats>, StoreError> {
    let builds = store
        .finished_merge_builds(repo, target, eta::SAMPLE)
        .await?;
    let durations: Vec<i64> = builds
        .iter()
        .map(|b| b.updated_ms.saturating_sub(b.created_ms))
        .collect();
    let failed = builds
        .iter()
        .filter(|b| b.state == greg_store::BuildRunState::Failure)
        .count();
    Ok(BuildStats::of(&durations, failed))
}

/// The merge pipeline's shape of `repo` (configured window and batch size).
fn shape_of(config: &greg_config::Config, repo: &RepoName) -> Shape {
    config
        .repos
        .iter()
        .find(|r| r.matches(&r.provider, repo))
        .map_or(
            Shape {
                window: 1,
                batch: 1,
            },
            |r| Shape {
                window: usize::try_from(r.merge_queue.window).unwrap_or(1),
                batch: usize::try_from(r.merge_queue.batch_size).unwrap_or(1),
            },
        )
}

/// The ETA of `entry`, a waiting merge of `queue` (its target's active entries in queue
/// order), for the "queued" comment; `None`: unknown.
pub(crate) async fn waiting_eta(
    inner: &crate::Inner,
    repo: &RepoName,
    queue: &[QueueEntry],
    entry: &QueueEntry,
) -> Result<Option<Eta>, StoreError> {
    let stats = build_stats(&inner.store, repo, &entry.target).await?;
    if stats.is_none() {
        return Ok(None);
    }
    let now = inner.now_ms();
    let merges: Vec<&QueueEntry> = queue
        .iter()
        .filter(|e| e.kind == greg_store::QueueKind::Merge)
        .collect();
    let mut candidates: Vec<i64> = merges
        .iter()
        .filter(|e| queue::in_flight(e.state))
        .map(|e| e.candidate.unwrap_or(e.id))
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let mut slots = Vec::new();
    for e in merges.iter().filter(|e| queue::in_flight(e.state)) {
        let build = match e.build_id {
            Some(id) => inner.store.build(id).await?,
            None => None,
        };
        let elapsed = build
            .filter(|b| b.state.is_active())
            .map_or(0, |b| now.saturating_sub(b.created_ms));
        slots.push(Slot::InFlight {
            candidate: candidates
                .iter()
                .position(|c| *c == e.candidate.unwrap_or(e.id))
                .unwrap_or(0),
            elapsed_ms: elapsed,
            landing: e.state == greg_store::QueueState::Landing,
        });
    }
    let place = merges
        .iter()
        .filter(|e| e.state == greg_store::QueueState::Waiting)
        .position(|e| e.id == entry.id)
        .unwrap_or(0);
    slots.push(Slot::Waiting(place));
    let shape = shape_of(&inner.config, repo);
    Ok(eta::merge_etas(stats, shape, &slots).pop().flatten())
}

impl Engine {
    /// The view of entry `e` at its place among `positions`, with its pull request's title
    /// from `titles` (the stored titles of its queue).
    async fn entry_view(
        &self,
        e: &QueueEntry,
        positions: &[(i64, usize)],
        titles: &[PullRequestTitle],
    ) -> Result<QueueEntryView, StoreError> {
        let store = self.store();
        let build = match e.build_id {
            Some(id) => store.build(id).await?.as_ref().map(BuildView::from),
            None => None,
        };
        let title = titles.iter().find(|t| t.pr == e.pr);
        Ok(QueueEntryView {
            position: positions
                .iter()
                .find(|(id, _)| *id == e.id)
                .map(|(_, p)| *p),
            pr: e.pr,
            title: title.map(|t| t.title.clone()),
            author: title.map(|t| t.author.clone()),
            kind: e.kind.as_str(),
            state: e.state.as_str(),
            head: e.head_sha.clone(),
            priority: e.priority,
            approved_by: e.approver.clone(),
            approved_ms: e.approved_ms,
            attempts: e.attempts,
            base: e.base_sha.clone(),
            staging: e.staging_sha.clone(),
            build,
            candidate: e.candidate,
            eta: None,
        })
    }

    /// The measured durations of the recent merge builds of `repo` into `target`; `None`
    /// when none finished.
    ///
    /// # Errors
    /// The store failed.
    pub async fn build_stats(
        &self,
        repo: &RepoName,
        target: &str,
    ) -> Result<Option<BuildStats>, StoreError> {
        build_stats(self.store(), repo, target).await
    }

    /// Fills in the ETA of every entry of `view` (one target's queue).
    async fn add_etas(&self, repo: &RepoName, view: &mut QueueView) -> Result<(), StoreError> {
        let stats = self.build_stats(repo, &view.target).await?;
        let shape = shape_of(self.config(), repo);
        let now = self.inner.now_ms();
        let elapsed = |b: &Option<BuildView>| {
            b.as_ref()
                .filter(|b| matches!(b.state, "pending" | "queued" | "running"))
                .map_or(0, |b| now.saturating_sub(b.created_ms))
        };
        let mut slots = Vec::new();
        let mut merges = Vec::new();
        let mut waiting = 0;
        for (i, e) in view.entries.iter().enumerate() {
            if e.kind != "merge" {
                continue;
            }
            let slot = match e.state {
                "waiting" => {
                    waiting += 1;
                    Slot::Waiting(waiting - 1)
                }
                state => Slot::InFlight {
                    candidate: view
                        .candidates
                        .iter()
                        .position(|c| Some(c.id) == e.candidate || c.pull_requests.contains(&e.pr))
                        .unwrap_or(0),
                    elapsed_ms: elapsed(&e.build),
                    landing: state == "landing",
                },
            };
            slots.push(slot);
            merges.push(i);
        }
        for (i, found) in merges
            .into_iter()
            .zip(eta::merge_etas(stats, shape, &slots))
        {
            view.entries[i].eta = found;
        }
        for e in view.entries.iter_mut().filter(|e| e.kind != "merge") {
            e.eta = eta::single_build_eta(stats, elapsed(&e.build));
        }
        Ok(())
    }

    /// The candidates in flight among one queue's active `entries`, oldest first.
    async fn candidate_views(
        &self,
        target: &str,
        entries: &[QueueEntry],
    ) -> Result<Vec<CandidateView>, StoreError> {
        let mut out: Vec<CandidateView> = Vec::new();
        for e in entries
            .iter()
            .filter(|e| e.kind == greg_store::QueueKind::Merge && queue::in_flight(e.state))
        {
            let id = e.candidate.unwrap_or(e.id);
            if let Some(c) = out.iter_mut().find(|c| c.id == id) {
                c.pull_requests.push(e.pr);
                continue;
            }
            let build = match e.build_id {
                Some(b) => self.store().build(b).await?.as_ref().map(BuildView::from),
                None => None,
            };
            out.push(CandidateView {
                id,
                staging_ref: format!("{}staging/{target}/{id}", queue::STAGING_PREFIX),
                parent: e.candidate.and(e.parent),
                pull_requests: vec![e.pr],
                state: e.state.as_str(),
                base: e.base_sha.clone(),
                staging: e.staging_sha.clone(),
                build,
            });
        }
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    /// The merge queues of `repo`, one per target branch with active entries.
    ///
    /// # Errors
    /// The store failed.
    pub async fn queue_view(&self, repo: &RepoName) -> Result<Vec<QueueView>, StoreError> {
        let store = self.store();
        let mut by_target: BTreeMap<String, Vec<QueueEntry>> = BTreeMap::new();
        for e in store.active_queue_entries().await? {
            if &e.repo == repo {
                by_target.entry(e.target.clone()).or_default().push(e);
            }
        }
        let titles = store.queued_pull_request_titles(repo).await?;
        let mut views = Vec::new();
        for (target, entries) in by_target {
            let positions = queue::positions(&entries);
            let mut list = Vec::new();
            for e in &entries {
                list.push(self.entry_view(e, &positions, &titles).await?);
            }
            // By position (the merge in flight first), then try and test entries.
            list.sort_by_key(|e| e.position.unwrap_or(usize::MAX));
            let candidates = self.candidate_views(&target, &entries).await?;
            let mut view = QueueView {
                repo: repo.to_string(),
                tree_closed_below: store.tree_closure(repo, &target).await?.map(|c| c.priority),
                target,
                entries: list,
                candidates,
            };
            self.add_etas(repo, &mut view).await?;
            views.push(view);
        }
        Ok(views)
    }

    /// Every pull request greg is building or merging: its active builds and queue entries.
    ///
    /// # Errors
    /// The store failed.
    pub async fn status_view(&self) -> Result<Vec<PullRequestView>, StoreError> {
        let store = self.store();
        let mut prs: BTreeMap<(String, u64), PullRequestView> = BTreeMap::new();
        let mut slot = |repo: &RepoName, pr: PrNumber| {
            prs.entry((repo.to_string(), pr.0))
                .or_insert_with(|| PullRequestView {
                    repo: repo.to_string(),
                    pr,
                    heads: Vec::new(),
                    builds: Vec::new(),
                    queue: Vec::new(),
                })
                .builds
                .len()
        };
        let entries = store.active_queue_entries().await?;
        let builds = store.active_builds().await?;
        for b in &builds {
            if let Some(pr) = b.pr {
                slot(&b.repo, pr);
            }
        }
        for e in &entries {
            slot(&e.repo, e.pr);
        }
        for b in builds.iter().rev() {
            if let Some(v) = b.pr.and_then(|pr| prs.get_mut(&(b.repo.to_string(), pr.0))) {
                if b.context == BuildContext::Test && !v.heads.contains(&b.sha) {
                    v.heads.push(b.sha.clone());
                }
                v.builds.push(BuildView::from(b));
            }
        }
        // One query per repository for the titles of its queued pull requests.
        let mut titles: BTreeMap<String, Vec<PullRequestTitle>> = BTreeMap::new();
        for e in &entries {
            if titles.contains_key(&e.repo.key()) {
                continue;
            }
            let found = store.queued_pull_request_titles(&e.repo).await?;
            titles.insert(e.repo.key(), found);
        }
        for e in &entries {
            let key = e.repo.key();
            let queue_entries: Vec<QueueEntry> = entries
                .iter()
                .filter(|x| x.repo == e.repo && x.target == e.target)
                .cloned()
                .collect();
            let positions = queue::positions(&queue_entries);
            let repo_titles = titles.get(&key).map_or(&[][..], Vec::as_slice);
            let view = self.entry_view(e, &positions, repo_titles).await?;
            if let Some(v) = prs.get_mut(&(e.repo.to_string(), e.pr.0)) {
                if !v.heads.contains(&e.head_sha) {
                    v.heads.push(e.head_sha.clone());
                }
                v.queue.push(view);
            }
        }
        Ok(prs.into_values().collect())
    }

    /// The pull requests approved for merging and waiting in (or at the head of) a queue, in
    /// queue order per (repository, target).
    ///
    /// # Errors
    /// The store failed.
    pub async fn ready_for_merge_view(&self) -> Result<Vec<QueueView>, StoreError> {
        let mut repos: Vec<RepoName> = Vec::new();
        for e in self.store().active_queue_entries().await? {
            if !repos.contains(&e.repo) {
                repos.push(e.repo);
            }
        }
        let mut out = Vec::new();
        for repo in repos {
            for mut q in self.queue_view(&repo).await? {
                q.entries.retain(|e| e.kind == "merge");
                if !q.entries.is_empty() {
                    out.push(q);
                }
            }
        }
        Ok(out)
    }

    /// Review state of the pull requests greg is building or merging.
    ///
    /// # Errors
    /// The store failed.
    pub async fn review_status_view(&self) -> Result<Vec<ReviewView>, StoreError> {
        let store = self.store();
        let mut out = Vec::new();
        for v in self.status_view().await? {
            let Some(repo) = RepoName::parse(&v.repo) else {
                continue;
            };
            let approvals = store
                .approvals(&repo, v.pr)
                .await?
                .into_iter()
                .map(|a| ApprovalView {
                    login: a.login,
                    sha: a.sha,
                })
                .collect();
            out.push(ReviewView {
                required_reviewers: store.required_reviewers(&repo, v.pr).await?,
                repo: v.repo,
                pr: v.pr,
                approvals,
            });
        }
        Ok(out)
    }

    /// The most recent heads whose test build passed, newest first, at most `limit`.
    ///
    /// # Errors
    /// The store failed.
    pub async fn passing_view(&self, limit: i64) -> Result<Vec<PassingView>, StoreError> {
        Ok(self
            .store()
            .recent_builds(
                BuildContext::Test,
                greg_store::BuildRunState::Success,
                limit,
            )
            .await?
            .iter()
            .map(|b| PassingView {
                repo: b.repo.to_string(),
                pr: b.pr,
                sha: b.sha.clone(),
                build: BuildView::from(b),
            })
            .collect())
    }
}
