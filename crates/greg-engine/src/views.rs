//! Read models of the web pages (SPEC §9) that `api.rs` does not already have: the
//! repositories greg serves (`/`, `/api/repos`) and one pull request (`/pr/…`,
//! `/api/pr/…`): its builds, what blocks it, its CI reports per built commit and its queue
//! history with why each entry left. Built from the store only: a page view never calls the
//! provider (so the blockers are those greg's stored state shows; "@greg ok" asks the provider
//! for the full list).

use crate::Engine;
use crate::api::{BuildView, QueueView};
use greg_core::{Blocker, BuildContext, CommitState, Login, PrNumber, RepoName, Sha};
use greg_report::{FailedTest, JobReport, Totals};
use greg_store::{QueueEntry, QueueExit, QueueState, StoreError};
use serde::Serialize;

/// Most builds the pull-request page lists.
pub const PR_BUILDS: i64 = 100;
/// Most queue entries the pull-request page lists.
pub const PR_QUEUE_ENTRIES: i64 = 50;
/// Most built commits whose reports the pull-request page shows.
pub const PR_REPORT_COMMITS: usize = 10;
/// Most recent landings the index lists per repository.
pub const RECENT_LANDINGS: i64 = 5;
/// How far back the index looks for landings: a week, in milliseconds.
pub const LANDINGS_SINCE_MS: i64 = 7 * 24 * 3600 * 1000;

/// One repository on the index page.
#[derive(Debug, Clone, Serialize)]
pub struct RepoSummary {
    /// The configured provider that serves it (`github`, `bitbucket`).
    pub provider: String,
    /// `owner/name` (lower case, as stored).
    pub repo: String,
    /// Per target branch with active entries: how many merges are queued (in flight
    /// included) and how many try or test entries.
    pub queues: Vec<TargetSummary>,
    /// Builds pending, queued or running, every context.
    pub builds_running: usize,
    /// The latest landings of the past week, newest first.
    pub recent_landings: Vec<LandingView>,
}

/// One target branch's queue, counted.
#[derive(Debug, Clone, Serialize)]
pub struct TargetSummary {
    /// The target branch.
    pub target: String,
    /// Merge entries (waiting or in flight).
    pub merges: usize,
    /// Of those, in flight.
    pub in_flight: usize,
    /// Try and test_merged entries.
    pub others: usize,
}

/// A pull request that landed.
#[derive(Debug, Clone, Serialize)]
pub struct LandingView {
    /// The pull request.
    pub pr: PrNumber,
    /// The target branch.
    pub target: String,
    /// The commit the target moved to, when known.
    pub commit: Option<Sha>,
    /// Unix milliseconds of the landing.
    pub landed_ms: i64,
}

/// A build on the pull-request page.
#[derive(Debug, Clone, Serialize)]
pub struct PrBuildView {
    /// The build.
    #[serde(flatten)]
    pub build: BuildView,
    /// Trigger to result, milliseconds; `None` while it runs.
    pub duration_ms: Option<i64>,
}

/// One job's latest report on a commit.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    /// The job's name.
    pub job: String,
    /// `success`, `failure`, `error`, `pending`.
    pub status: &'static str,
    /// The job's page.
    pub build_url: Option<String>,
    /// As reported, milliseconds.
    pub duration_ms: Option<u64>,
    /// Its JUnit totals.
    pub tests: Option<Totals>,
}

/// A failed test of a job's latest report.
#[derive(Debug, Clone, Serialize)]
pub struct FailedTestView {
    /// The job that ran it.
    pub job: String,
    /// The test.
    #[serde(flatten)]
    pub test: FailedTest,
}

/// The CI reports (SPEC §8) of one built commit.
#[derive(Debug, Clone, Serialize)]
pub struct CommitReports {
    /// The commit.
    pub sha: Sha,
    /// The failed tests of the jobs' latest reports, first job first.
    pub failed: Vec<FailedTestView>,
    /// Each job's latest report, in order of its first report.
    pub jobs: Vec<JobRow>,
    /// Sum of the jobs' totals; `None` when no report had tests.
    pub totals: Option<Totals>,
}

/// One queue entry of the pull request, active or finished.
#[derive(Debug, Clone, Serialize)]
pub struct QueueHistoryView {
    /// Store id.
    pub id: i64,
    /// `merge`, `try` or `test`.
    pub kind: &'static str,
    /// The target branch.
    pub target: String,
    /// The approved head.
    pub head: Sha,
    /// Who asked.
    pub approved_by: Login,
    /// Unix milliseconds of the request.
    pub approved_ms: i64,
    /// `waiting`, `staging`, `building`, `landing`, `landed`, `failed`, `cancelled`.
    pub state: &'static str,
    /// Unix milliseconds of the last change (for a finished entry: when it left).
    pub updated_ms: i64,
    /// Why it left, structured; `None` while active, and for entries that left before greg
    /// recorded exits (then see `reason`).
    pub exit: Option<QueueExit>,
    /// The last outcome in words, as greg recorded it.
    pub reason: Option<String>,
    /// Why it left, in one sentence for people (`None` while active).
    pub left: Option<String>,
}

/// What greg's stored state shows blocks the pull request.
#[derive(Debug, Clone, Serialize)]
pub struct BlockersView {
    /// The newest head greg built or queued.
    pub head: Option<Sha>,
    /// The blockers, in words; empty when the stored state shows none.
    pub blockers: Vec<String>,
}

/// Everything the pull-request page shows.
#[derive(Debug, Clone, Serialize)]
pub struct PrView {
    /// `owner/name`.
    pub repo: String,
    /// The pull request.
    pub pr: PrNumber,
    /// Its title as greg last saw it; `None` (JSON `null`) when greg never saw it.
    pub title: Option<String>,
    /// Who opened it; `None` like `title`.
    pub author: Option<Login>,
    /// Every build greg ran for it, newest first.
    pub builds: Vec<PrBuildView>,
    /// What blocks it.
    pub blockers: BlockersView,
    /// Its queue entries, newest first.
    pub queue: Vec<QueueHistoryView>,
    /// The CI reports per built commit, newest commit first.
    pub reports: Vec<CommitReports>,
}

/// Why an entry left, in words (`None` while it is active).
pub fn left_words(e: &QueueEntry) -> Option<String> {
    if e.state.is_active() {
        return None;
    }
    let link = |u: &Option<String>| u.as_ref().map(|u| format!(" ({u})")).unwrap_or_default();
    Some(match &e.exit {
        Some(QueueExit::Landed { commit }) => format!("landed as {}", commit.short()),
        Some(QueueExit::Passed { build_url }) => format!("the build passed{}", link(build_url)),
        Some(QueueExit::BuildFailed { result, build_url }) => {
            format!("{result}{}", link(build_url))
        }
        Some(QueueExit::Conflict { detail }) if detail.is_empty() => {
            "merge conflict with the target".to_owned()
        }
        Some(QueueExit::Conflict { detail }) => format!("merge conflict: {detail}"),
        Some(QueueExit::UpToDate) => "already in the target".to_owned(),
        Some(QueueExit::NewHead { head }) => format!("new commits were pushed ({})", head.short()),
        Some(QueueExit::Closed) => "the pull request was closed".to_owned(),
        Some(QueueExit::Cancelled { by }) => format!("cancelled by @{by}"),
        Some(QueueExit::RulesBroken { blockers }) => {
            format!("no longer mergeable: {}", blockers.join("; "))
        }
        Some(QueueExit::Refused { reason }) => format!("refused: {reason}"),
        Some(QueueExit::Other { reason }) => reason.clone(),
        None => e
            .reason
            .clone()
            .unwrap_or_else(|| e.state.as_str().to_owned()),
    })
}

/// The latest report of each job, in order of the job's first report.
fn latest_per_job(reports: &[JobReport]) -> Vec<&JobReport> {
    let mut order: Vec<&str> = Vec::new();
    for r in reports {
        if !order.contains(&r.job.as_str()) {
            order.push(&r.job);
        }
    }
    order
        .iter()
        .filter_map(|job| reports.iter().rev().find(|r| r.job == *job))
        .collect()
}

/// The reports of one commit, as the page shows them.
pub fn commit_reports(sha: Sha, reports: &[JobReport]) -> CommitReports {
    let latest = latest_per_job(reports);
    let mut failed = Vec::new();
    let mut jobs = Vec::new();
    let mut totals: Option<Totals> = None;
    for r in &latest {
        if let Some(t) = &r.tests {
            for f in &t.failures {
                failed.push(FailedTestView {
                    job: r.job.clone(),
                    test: f.clone(),
                });
            }
            totals = Some(match totals {
                Some(sum) => [sum, t.totals].into_iter().sum(),
                None => t.totals,
            });
        }
        jobs.push(JobRow {
            job: r.job.clone(),
            status: r.status.as_str(),
            build_url: r.build_url.clone(),
            duration_ms: r.duration_ms,
            tests: r.tests.as_ref().map(|t| t.totals),
        });
    }
    CommitReports {
        sha,
        failed,
        jobs,
        totals,
    }
}

/// The stored reports of commit `sha`, in arrival order; a report that does not decode is
/// left out (logged).
async fn stored_reports(
    engine: &Engine,
    repo: &RepoName,
    sha: &Sha,
) -> Result<Vec<JobReport>, StoreError> {
    let rows = engine.store().reports_for_commit(repo, sha).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match serde_json::from_str::<JobReport>(&r.report_json) {
            Ok(report) => Some(report),
            Err(e) => {
                tracing::error!(report = r.id.0, error = %e, "A stored report does not decode; left out");
                None
            }
        })
        .collect())
}

impl Engine {
    /// The engine's clock, unix milliseconds (the pages show how long ago things happened
    /// on the same clock the store's times were written with; sign-in sessions expire by it,
    /// so tests with a manual clock can age them).
    pub fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }

    /// The repositories greg holds state for (builds or queue entries) and serves (a
    /// configured provider matches them), with their queues, running builds and recent
    /// landings, by `owner/name`.
    ///
    /// # Errors
    /// The store failed.
    pub async fn repo_summaries(&self) -> Result<Vec<RepoSummary>, StoreError> {
        let store = self.store();
        let now = self.inner.now_ms();
        let active = store.active_queue_entries().await?;
        let builds = store.active_builds().await?;
        let mut out = Vec::new();
        for repo in store.known_repos().await? {
            let Some(cfg) = self
                .config()
                .repos
                .iter()
                .find(|r| r.matches(&r.provider, &repo))
            else {
                continue;
            };
            let mut queues: Vec<TargetSummary> = Vec::new();
            for e in active.iter().filter(|e| e.repo == repo) {
                let i = match queues.iter().position(|q| q.target == e.target) {
                    Some(i) => i,
                    None => {
                        queues.push(TargetSummary {
                            target: e.target.clone(),
                            merges: 0,
                            in_flight: 0,
                            others: 0,
                        });
                        queues.len() - 1
                    }
                };
                let q = &mut queues[i];
                if e.kind == greg_store::QueueKind::Merge {
                    q.merges += 1;
                    q.in_flight += usize::from(crate::queue::in_flight(e.state));
                } else {
                    q.others += 1;
                }
            }
            let recent_landings = store
                .finished_queue_entries(&repo, now - LANDINGS_SINCE_MS, 4 * RECENT_LANDINGS)
                .await?
                .into_iter()
                .filter(|e| e.state == QueueState::Landed)
                .take(usize::try_from(RECENT_LANDINGS).unwrap_or(5))
                .map(|e| LandingView {
                    pr: e.pr,
                    commit: match &e.exit {
                        Some(QueueExit::Landed { commit }) => Some(commit.clone()),
                        _ => e.staging_sha.clone(),
                    },
                    target: e.target,
                    landed_ms: e.updated_ms,
                })
                .collect();
            out.push(RepoSummary {
                provider: cfg.provider.clone(),
                repo: repo.to_string(),
                queues,
                builds_running: builds.iter().filter(|b| b.repo == repo).count(),
                recent_landings,
            });
        }
        out.sort_by(|a, b| a.repo.cmp(&b.repo));
        Ok(out)
    }

    /// Pull request `pr` of `repo` as its page shows it; `None` when greg holds nothing for
    /// it (no build, no queue entry, no report).
    ///
    /// # Errors
    /// The store failed.
    pub async fn pr_view(
        &self,
        repo: &RepoName,
        pr: PrNumber,
    ) -> Result<Option<PrView>, StoreError> {
        let store = self.store();
        let records = store.builds_for_pr(repo, pr, PR_BUILDS).await?;
        let entries = store
            .queue_entries_for_pr(repo, pr, PR_QUEUE_ENTRIES)
            .await?;
        let report_row = store.report_comment(repo, pr).await?;
        if records.is_empty() && entries.is_empty() && report_row.is_none() {
            return Ok(None);
        }
        let builds = records
            .iter()
            .map(|b| PrBuildView {
                build: BuildView::from(b),
                duration_ms: (!b.state.is_active()).then(|| b.updated_ms - b.created_ms),
            })
            .collect();
        // Commits built for the pull request, newest first, then the report comment's head.
        let mut commits: Vec<Sha> = Vec::new();
        for b in &records {
            if !commits.contains(&b.sha) {
                commits.push(b.sha.clone());
            }
        }
        if let Some(row) = &report_row
            && !commits.contains(&row.head_sha)
        {
            commits.insert(0, row.head_sha.clone());
        }
        let mut reports = Vec::new();
        for sha in commits {
            let stored = stored_reports(self, repo, &sha).await?;
            if !stored.is_empty() {
                reports.push(commit_reports(sha, &stored));
            }
            if reports.len() == PR_REPORT_COMMITS {
                break;
            }
        }
        let head = records
            .iter()
            .find(|b| b.context == BuildContext::Test)
            .map(|b| b.sha.clone())
            .or_else(|| entries.first().map(|e| e.head_sha.clone()));
        let mut blockers = Vec::new();
        if let Some(head) = &head {
            let test = store
                .commit_status(repo, head, BuildContext::Test.status_context())
                .await?;
            let blocker = match test {
                None => Some(Blocker::TestMissing),
                Some(CommitState::Success) => None,
                Some(CommitState::Pending) => Some(Blocker::TestPending),
                Some(state) => Some(Blocker::TestFailed { state }),
            };
            blockers.extend(blocker.map(|b| b.to_string()));
            if let Some(QueueExit::RulesBroken { blockers: words }) = entries
                .first()
                .filter(|e| &e.head_sha == head)
                .and_then(|e| e.exit.as_ref())
            {
                for w in words {
                    if !blockers.contains(w) {
                        blockers.push(w.clone());
                    }
                }
            }
        }
        let queue = entries
            .iter()
            .map(|e| QueueHistoryView {
                id: e.id,
                kind: e.kind.as_str(),
                target: e.target.clone(),
                head: e.head_sha.clone(),
                approved_by: e.approver.clone(),
                approved_ms: e.approved_ms,
                state: e.state.as_str(),
                updated_ms: e.updated_ms,
                exit: e.exit.clone(),
                reason: e.reason.clone(),
                left: left_words(e),
            })
            .collect();
        let title = store.pull_request_title(repo, pr).await?;
        Ok(Some(PrView {
            repo: repo.to_string(),
            pr,
            title: title.as_ref().map(|t| t.title.clone()),
            author: title.map(|t| t.author),
            builds,
            blockers: BlockersView { head, blockers },
            queue,
            reports,
        }))
    }

    /// The merge queues of `repo` ([`Engine::queue_view`]) for the queue page.
    ///
    /// # Errors
    /// The store failed.
    pub async fn queue_page(&self, repo: &RepoName) -> Result<Vec<QueueView>, StoreError> {
        self.queue_view(repo).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use greg_report::{FailureKind, JobStatus, TestRun};

    fn report(job: &str, status: JobStatus, failures: &[&str], received_ms: u64) -> JobReport {
        let failures: Vec<FailedTest> = failures
            .iter()
            .map(|id| FailedTest {
                id: (*id).to_owned(),
                kind: FailureKind::Failure,
                message: Some("boom".to_owned()),
                output: None,
            })
            .collect();
        JobReport {
            job: job.to_owned(),
            status,
            build_url: None,
            duration_ms: Some(1000),
            summary_md: None,
            tests: Some(TestRun {
                totals: Totals {
                    tests: 3,
                    passed: 3 - failures.len() as u64,
                    failed: failures.len() as u64,
                    errors: 0,
                    skipped: 0,
                },
                duration_ms: None,
                failures,
                cases: Vec::new(),
                flaky: Vec::new(),
            }),
            received_ms,
            files: Vec::new(),
        }
    }

    #[test]
    fn a_rerun_replaces_the_jobs_earlier_report() {
        let sha = Sha::parse(&"a".repeat(40)).expect("a sha");
        let reports = vec![
            report("unit", JobStatus::Failure, &["t::one"], 1),
            report("lint", JobStatus::Success, &[], 2),
            report("unit", JobStatus::Failure, &["t::two"], 3),
        ];
        let view = commit_reports(sha, &reports);
        let jobs: Vec<&str> = view.jobs.iter().map(|j| j.job.as_str()).collect();
        assert_eq!(jobs, vec!["unit", "lint"]);
        let failed: Vec<&str> = view.failed.iter().map(|f| f.test.id.as_str()).collect();
        assert_eq!(failed, vec!["t::two"]);
        assert_eq!(view.totals.map(|t| (t.tests, t.failed)), Some((6, 1)));
    }
}
