//! Builds as greg sees them: the parameters it sends (SPEC §6), the notifications it gets
//! back, and the states a build record goes through.

use crate::ids::{BuildNumber, JobName, PrNumber, QueueItemId, Sha};
use serde::{Deserialize, Serialize};

/// Why a build runs; sent to the job as `CONTEXT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildContext {
    /// Test a head (push or pull-request head). Commit status `greg/test`.
    Test,
    /// The merge job (merge_mode builder: the job merges). Commit status `greg/merge`.
    Merge,
    /// Test the merge result without landing it.
    Try,
}

impl BuildContext {
    /// `test`, `merge` or `try`: the `CONTEXT` parameter and the store key.
    pub fn as_str(&self) -> &'static str {
        match self {
            BuildContext::Test => "test",
            BuildContext::Merge => "merge",
            BuildContext::Try => "try",
        }
    }

    /// Parses [`as_str`](Self::as_str) output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "test" => Some(BuildContext::Test),
            "merge" => Some(BuildContext::Merge),
            "try" => Some(BuildContext::Try),
            _ => None,
        }
    }

    /// The commit-status context greg reports under: `greg/test`, `greg/merge`, `greg/try`.
    pub fn status_context(&self) -> &'static str {
        match self {
            BuildContext::Test => "greg/test",
            BuildContext::Merge => "greg/merge",
            BuildContext::Try => "greg/try",
        }
    }
}

/// The parameters of SPEC §6, Greg's names, all sent as strings to `buildWithParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildParams {
    /// `SOURCE`: git URL, the provider's `source` prefix + `owner/repo.git`.
    pub source: String,
    /// `COMMIT`: full sha to build.
    pub commit: Sha,
    /// `CONTEXT`.
    pub context: BuildContext,
    /// `REPORT`: whether greg reports the result (always true for builds greg starts).
    pub report: bool,
    /// `BRANCH`: the source branch.
    pub branch: String,
    /// `PR`: merge and try builds only.
    pub pr: Option<PrNumber>,
    /// `TARGET` and `TARGET_BRANCH` (both sent): merge and try builds only.
    pub target: Option<String>,
}

impl BuildParams {
    /// The parameters as `(NAME, value)` pairs in Greg's names, in a stable order.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("SOURCE", self.source.clone()),
            ("COMMIT", self.commit.to_string()),
            ("CONTEXT", self.context.as_str().to_owned()),
            ("REPORT", self.report.to_string()),
            ("BRANCH", self.branch.clone()),
        ];
        if let Some(pr) = self.pr {
            v.push(("PR", pr.to_string()));
        }
        if let Some(t) = &self.target {
            v.push(("TARGET", t.clone()));
            v.push(("TARGET_BRANCH", t.clone()));
        }
        v
    }
}

/// The Notification plugin's phases (`Phase.java`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildPhase {
    Queued,
    Started,
    Completed,
    Finalized,
}

impl BuildPhase {
    /// Lower-case phase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            BuildPhase::Queued => "queued",
            BuildPhase::Started => "started",
            BuildPhase::Completed => "completed",
            BuildPhase::Finalized => "finalized",
        }
    }
}

/// A finished build's result (Jenkins `Result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildOutcome {
    Success,
    Unstable,
    Failure,
    Aborted,
    NotBuilt,
}

impl BuildOutcome {
    /// Parses Jenkins' upper-case result names; unknown names are `None`.
    pub fn from_jenkins(s: &str) -> Option<Self> {
        match s {
            "SUCCESS" => Some(Self::Success),
            "UNSTABLE" => Some(Self::Unstable),
            "FAILURE" => Some(Self::Failure),
            "ABORTED" => Some(Self::Aborted),
            "NOT_BUILT" => Some(Self::NotBuilt),
            _ => None,
        }
    }
}

/// A build notification, normalized (Jenkins Notification plugin JSON; field list in
/// tests/data/SOURCES.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildUpdate {
    pub job: JobName,
    pub number: BuildNumber,
    pub queue_item: Option<QueueItemId>,
    pub phase: BuildPhase,
    /// Present once the build has a result (COMPLETED, FINALIZED).
    pub outcome: Option<BuildOutcome>,
    /// Absolute URL of the build page, when Jenkins knows its root URL.
    pub url: Option<String>,
    /// The `COMMIT` and `CONTEXT` parameters when the job echoes them.
    pub commit: Option<Sha>,
    pub context: Option<BuildContext>,
}

/// Where a build greg started stands, as read back from the builder by polling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuildState {
    /// Still in the builder's queue; `why` is the builder's own reason it has not started
    /// (Jenkins' queue item `why`: "Waiting for next available executor", "Build is blocked"),
    /// when it gave one.
    Queued { why: Option<String> },
    /// The queue item was cancelled before it ran.
    Cancelled,
    /// Running, with its number and page.
    Running { number: BuildNumber, url: String },
    /// Finished.
    Finished {
        number: BuildNumber,
        url: String,
        outcome: BuildOutcome,
        /// The `COMMIT` parameter the build ran with, as the builder reports it (Jenkins: the
        /// `ParametersAction` of the build JSON); `None` when the builder did not say.
        commit: Option<Sha>,
    },
}
