//! The state of a commit's reports, computed once from a [`CommentInput`] before rendering:
//! the latest report of each job, overall state, totals, failed and flaky tests.

use std::collections::{HashMap, HashSet};

use greg_core::provider::CommitState;

use crate::body::JobStatus;
use crate::comment::CommentInput;
use crate::model::{FailedTest, JobReport, Outcome, Totals};

/// The overall state of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    Success,
    Failure,
    Error,
    Pending,
}

impl Overall {
    pub fn emoji(self) -> &'static str {
        match self {
            Overall::Success => "✅",
            Overall::Failure => "❌",
            Overall::Error => "⚠️",
            Overall::Pending => "⏳",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Overall::Success => "all jobs passed",
            Overall::Failure => "failed",
            Overall::Error => "errored",
            Overall::Pending => "in progress",
        }
    }

    pub fn commit_state(self) -> CommitState {
        match self {
            Overall::Success => CommitState::Success,
            Overall::Failure => CommitState::Failure,
            Overall::Error => CommitState::Error,
            Overall::Pending => CommitState::Pending,
        }
    }
}

/// Emoji of a job's status in the jobs table.
pub fn status_emoji(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Success => "✅",
        JobStatus::Failure => "❌",
        JobStatus::Error => "⚠️",
        JobStatus::Pending => "⏳",
    }
}

/// A test that failed and then passed on the same commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flaky {
    pub id: String,
    /// Jobs that saw it fail or pass, in order of first sight.
    pub jobs: Vec<String>,
    /// Whether a retry inside one run (flakyFailure) showed it, rather than a later report.
    pub within_run: bool,
}

/// Everything the comment, the full report and the status summary show.
pub struct View<'a> {
    /// The latest report of each job, in order of the job's first report.
    pub latest: Vec<&'a JobReport>,
    pub overall: Overall,
    /// Jobs that reported (expected or not).
    pub reported: usize,
    /// |expected ∪ seen|.
    pub expected_total: usize,
    /// Expected jobs that have not reported, in `expected` order.
    pub missing: Vec<&'a str>,
    /// Sum over the latest report of each job; none when no latest report has tests.
    pub totals: Option<Totals>,
    /// (job, test): failures of the latest reports, minus flaky tests.
    pub failed: Vec<(&'a str, &'a FailedTest)>,
    pub flaky: Vec<Flaky>,
}

/// The latest report of each job (by position in `reports`, which is arrival order), in order
/// of each job's first report.
pub fn latest_per_job(reports: &[JobReport]) -> Vec<&JobReport> {
    let mut order: Vec<&str> = Vec::new();
    let mut last: HashMap<&str, &JobReport> = HashMap::new();
    for r in reports {
        if last.insert(r.job.as_str(), r).is_none() {
            order.push(r.job.as_str());
        }
    }
    order
        .iter()
        .filter_map(|job| last.get(job).copied())
        .collect()
}

impl<'a> View<'a> {
    pub fn new(input: &CommentInput<'a>) -> View<'a> {
        let latest = latest_per_job(input.reports);
        let seen: HashSet<&str> = latest.iter().map(|r| r.job.as_str()).collect();
        let mut missing: Vec<&str> = Vec::new();
        let mut expected_seen: HashSet<&str> = HashSet::new();
        for job in input.expected {
            if expected_seen.insert(job.as_str()) && !seen.contains(job.as_str()) {
                missing.push(job.as_str());
            }
        }
        let overall = if latest.iter().any(|r| r.status == JobStatus::Failure) {
            Overall::Failure
        } else if latest.iter().any(|r| r.status == JobStatus::Error) {
            Overall::Error
        } else if latest.is_empty()
            || !missing.is_empty()
            || latest.iter().any(|r| r.status == JobStatus::Pending)
        {
            Overall::Pending
        } else {
            Overall::Success
        };
        let totals = if latest.iter().any(|r| r.tests.is_some()) {
            Some(
                latest
                    .iter()
                    .filter_map(|r| r.tests.as_ref())
                    .map(|t| t.totals)
                    .sum(),
            )
        } else {
            None
        };
        let flaky = flaky_tests(input.reports);
        let flaky_ids: HashSet<&str> = flaky.iter().map(|f| f.id.as_str()).collect();
        let failed = latest
            .iter()
            .filter_map(|r| r.tests.as_ref().map(|t| (r.job.as_str(), t)))
            .flat_map(|(job, t)| t.failures.iter().map(move |f| (job, f)))
            .filter(|(_, f)| !flaky_ids.contains(f.id.as_str()))
            .collect();
        View {
            reported: latest.len(),
            expected_total: latest.len() + missing.len(),
            latest,
            overall,
            missing,
            totals,
            failed,
            flaky,
        }
    }
}

/// Tests that failed (or errored) in some report and passed in a later one, any job; then the
/// tests each run itself found flaky (retries), in order of detection.
fn flaky_tests(reports: &[JobReport]) -> Vec<Flaky> {
    let mut failed_in: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut out: Vec<Flaky> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut add = |id: &str, jobs: &[&str], within_run: bool, out: &mut Vec<Flaky>| {
        let i = *index.entry(id.to_string()).or_insert_with(|| {
            out.push(Flaky {
                id: id.to_string(),
                jobs: Vec::new(),
                within_run,
            });
            out.len() - 1
        });
        for job in jobs {
            if !out[i].jobs.iter().any(|j| j == job) {
                out[i].jobs.push(job.to_string());
            }
        }
    };
    for r in reports {
        let Some(tests) = &r.tests else { continue };
        for case in &tests.cases {
            match case.outcome {
                Outcome::Failed | Outcome::Error => {
                    let jobs = failed_in.entry(case.id.as_str()).or_default();
                    if !jobs.contains(&r.job.as_str()) {
                        jobs.push(r.job.as_str());
                    }
                }
                Outcome::Passed => {
                    if let Some(jobs) = failed_in.get(case.id.as_str()) {
                        let mut all = jobs.clone();
                        all.push(r.job.as_str());
                        add(&case.id, &all, false, &mut out);
                    }
                }
                Outcome::Skipped => {}
            }
        }
        for id in &tests.flaky {
            add(id, &[r.job.as_str()], true, &mut out);
        }
    }
    out
}
