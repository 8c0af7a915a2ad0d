//! What the server stores for each received report (as JSON) and renders the comment from.
//!
//! A [`JobReport`] is one `POST /api/reports` of one job on one commit; a job re-run sends
//! another one, and the latest by arrival is the job's state ([`crate::comment`]).

use std::collections::BTreeSet;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

use crate::body::{JobStatus, ReportBody};
use crate::junit::{JunitError, parse_junit};

/// One job's report on one commit, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The job's name.
    pub job: String,
    /// The job's result.
    pub status: JobStatus,
    /// Link to the job's build page.
    pub build_url: Option<String>,
    /// How long the job took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Markdown shown under the job.
    pub summary_md: Option<String>,
    /// The job's JUnit files, merged; none when it sent none.
    pub tests: Option<TestRun>,
    /// When greg received the report, in milliseconds since the Unix epoch (the caller's clock).
    pub received_ms: u64,
    /// The job's files as kept in the server's object store (`reports.store`), linked from
    /// the job's row; empty without a store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<StoredFile>,
}

/// A file of a report kept in an object store, and where a browser reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    /// The file's name as the job sent it (`target/nextest/ci/junit.xml`).
    pub name: String,
    /// Its link: public, presigned or `file://` (greg-notify's `Store::link`).
    pub url: String,
}

/// The tests of one report: one or more JUnit files merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestRun {
    /// Counts, from the `<testcase>` elements (not from the suites' attributes).
    pub totals: Totals,
    /// Sum of the files' `time`, in milliseconds; none when no file had one.
    pub duration_ms: Option<u64>,
    /// The tests that failed or errored, in file order.
    pub failures: Vec<FailedTest>,
    /// Every test case's outcome, in file order (flaky detection across reports).
    pub cases: Vec<CaseOutcome>,
    /// Ids of tests that failed and then passed within this run: Surefire's and nextest's
    /// `<flakyFailure>`/`<flakyError>` (or rerun elements on a test that finally passed).
    pub flaky: Vec<String>,
}

impl TestRun {
    /// Appends `other` (another JUnit file of the same job).
    pub fn merge(&mut self, other: TestRun) {
        self.totals += other.totals;
        self.duration_ms = match (self.duration_ms, other.duration_ms) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        self.failures.extend(other.failures);
        self.cases.extend(other.cases);
        let mut seen: BTreeSet<String> = self.flaky.iter().cloned().collect();
        for id in other.flaky {
            if seen.insert(id.clone()) {
                self.flaky.push(id);
            }
        }
    }
}

/// Test counts. `tests = passed + failed + errors + skipped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Test cases.
    pub tests: u64,
    /// Passed (including flaky ones that finally passed).
    pub passed: u64,
    /// `<failure>`: an assertion failed.
    pub failed: u64,
    /// `<error>`: the test could not run to an assertion.
    pub errors: u64,
    /// `<skipped>` (pytest's xfail too).
    pub skipped: u64,
}

impl Add for Totals {
    type Output = Totals;
    fn add(self, o: Totals) -> Totals {
        Totals {
            tests: self.tests.saturating_add(o.tests),
            passed: self.passed.saturating_add(o.passed),
            failed: self.failed.saturating_add(o.failed),
            errors: self.errors.saturating_add(o.errors),
            skipped: self.skipped.saturating_add(o.skipped),
        }
    }
}

impl AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        *self = *self + o;
    }
}

impl std::iter::Sum for Totals {
    fn sum<I: Iterator<Item = Totals>>(iter: I) -> Totals {
        iter.fold(Totals::default(), Add::add)
    }
}

/// Whether a failed test failed or errored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// `<failure>`.
    Failure,
    /// `<error>`.
    Error,
}

/// A test that failed or errored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedTest {
    /// `classname::name`, or `name` when there is no classname (or it equals the name).
    pub id: String,
    /// Failure or error.
    pub kind: FailureKind,
    /// The `message` attribute, else the first line of the element's text; at most 1,000
    /// characters.
    pub message: Option<String>,
    /// The first 20 lines, at most 4 KiB, of the failure text, then the test's `system-out`
    /// and `system-err` (the suite's when the test has none, as Gradle writes them); ANSI
    /// escapes removed.
    pub output: Option<String>,
}

/// One test case's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseOutcome {
    /// Same id as [`FailedTest::id`].
    pub id: String,
    /// What happened.
    pub outcome: Outcome,
}

/// A test case's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Passed (possibly after retries).
    Passed,
    /// `<failure>`.
    Failed,
    /// `<error>`.
    Error,
    /// `<skipped>`.
    Skipped,
}

/// Builds the stored report of a body received at `received_ms` (milliseconds since the
/// epoch): parses every JUnit file (named as [`crate::JunitFile::name`]) and merges them.
///
/// # Errors
/// The first file that is not JUnit XML ([`JunitError`] names it).
pub fn job_report(body: &ReportBody, received_ms: u64) -> Result<JobReport, JunitError> {
    let mut tests: Option<TestRun> = None;
    for (index, file) in body.junit.iter().enumerate() {
        let run = parse_junit(&file.name(index), file.xml())?;
        match &mut tests {
            Some(all) => all.merge(run),
            None => tests = Some(run),
        }
    }
    Ok(JobReport {
        job: body.job.clone(),
        status: body.status,
        build_url: body.build_url.clone(),
        duration_ms: body.duration_ms,
        summary_md: body.summary_md.clone(),
        tests,
        received_ms,
        files: Vec::new(),
    })
}
