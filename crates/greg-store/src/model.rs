//! The records the store reads and writes: deliveries of the durable inbox, builds, and the
//! merge queue's entries and tree closures, and the ids of CI reports.

use crate::StoreError;
use greg_core::{BuildContext, BuildNumber, JobName, PrNumber, QueueItemId};
use greg_core::{Login, RepoName, Sha};
use serde::{Deserialize, Serialize};

/// An accepted delivery to write to the inbox before answering 202.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Who sent it: `github` (the `?provider=` name) or `jenkins` (the `?builder=` name).
    pub source: String,
    /// The sender's delivery id (GitHub: `X-GitHub-Delivery`). Unique per `source`; a second
    /// delivery with the same id is stored once.
    pub delivery_id: String,
    /// The repository as `owner/name`, or `""` when the delivery names none; the engine
    /// serializes processing per key.
    pub repo_key: String,
    /// The event name, for logs (GitHub: `X-GitHub-Event`, e.g. `pull_request`).
    pub event: String,
    /// The normalized event as JSON (a serialized `greg_core::Inbound`), stored verbatim.
    pub payload: String,
    /// When greg accepted it, unix milliseconds.
    pub received_ms: i64,
}

impl NewDelivery {
    /// Checks what the store would reject, so that a server batching deliveries can refuse
    /// one bad delivery without failing the whole batch.
    ///
    /// # Errors
    /// [`StoreError::InvalidText`] when a field contains a NUL character.
    pub fn validate(&self) -> Result<(), StoreError> {
        crate::row::text("delivery source", &self.source)?;
        crate::row::text("delivery id", &self.delivery_id)?;
        crate::row::text("delivery repo_key", &self.repo_key)?;
        crate::row::text("delivery event", &self.event)?;
        crate::row::text("delivery payload", &self.payload)?;
        Ok(())
    }
}

/// What happened to one delivery of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Inserted {
    /// Stored as new, with its inbox sequence number (increasing in insertion order).
    New(i64),
    /// A delivery with the same `(source, delivery_id)` was already stored (earlier, or
    /// earlier in the same batch); nothing was written.
    Duplicate,
}

/// A stored delivery, as read back from the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Inbox sequence number; processing order.
    pub seq: i64,
    /// As written: [`NewDelivery::source`].
    pub source: String,
    /// As written: [`NewDelivery::delivery_id`].
    pub delivery_id: String,
    /// As written: [`NewDelivery::repo_key`].
    pub repo_key: String,
    /// As written: [`NewDelivery::event`].
    pub event: String,
    /// As written, byte for byte: [`NewDelivery::payload`].
    pub payload: String,
    /// When greg accepted it, unix milliseconds.
    pub received_ms: i64,
    /// Processing attempts counted by [`Store::start_delivery`](crate::Store::start_delivery).
    pub attempts: i64,
}

/// How processing a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Processed.
    Done,
    /// Given up on; the error is kept on the row for the operator.
    Failed {
        /// Why, in one line, without secrets.
        error: String,
    },
}

/// A build to record before it is triggered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBuild {
    /// The repository the head belongs to (the pull request's target repository).
    pub repo: RepoName,
    /// The pull request, for pull-request builds; `None` for a push to a branch.
    pub pr: Option<PrNumber>,
    /// The head being built.
    pub sha: Sha,
    /// Why it builds; with `repo` and `sha` the key of one active build.
    pub context: BuildContext,
    /// The builder's configured name (`jenkins`).
    pub builder: String,
    /// The job to trigger.
    pub job: JobName,
    /// The `BRANCH` parameter: the source branch.
    pub branch: String,
    /// The `TARGET` parameter, for merge and try builds.
    pub target: Option<String>,
    /// Unix milliseconds; becomes `created_ms` and `updated_ms`.
    pub now_ms: i64,
}

/// Where a build greg started stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuildRunState {
    /// Row created, trigger not yet confirmed by the builder.
    Pending,
    /// In the builder's queue (a queue item is known).
    Queued,
    /// Running (a build number is known).
    Running,
    /// Finished green.
    Success,
    /// Finished red.
    Failure,
    /// Stopped in the builder by someone other than greg.
    Aborted,
    /// Stopped or dropped because a newer head replaced it.
    Superseded,
    /// No result arrived in time.
    TimedOut,
    /// greg could not trigger or follow it.
    Error,
}

impl BuildRunState {
    /// Every state, in declaration order.
    pub const ALL: [BuildRunState; 9] = [
        BuildRunState::Pending,
        BuildRunState::Queued,
        BuildRunState::Running,
        BuildRunState::Success,
        BuildRunState::Failure,
        BuildRunState::Aborted,
        BuildRunState::Superseded,
        BuildRunState::TimedOut,
        BuildRunState::Error,
    ];

    /// The stored name: `pending`, `queued`, `running`, `success`, `failure`, `aborted`,
    /// `superseded`, `timed_out`, `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BuildRunState::Pending => "pending",
            BuildRunState::Queued => "queued",
            BuildRunState::Running => "running",
            BuildRunState::Success => "success",
            BuildRunState::Failure => "failure",
            BuildRunState::Aborted => "aborted",
            BuildRunState::Superseded => "superseded",
            BuildRunState::TimedOut => "timed_out",
            BuildRunState::Error => "error",
        }
    }

    /// Parses [`as_str`](Self::as_str) output; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Pending, queued or running: the build still holds its `(repo, sha, context)` key.
    /// The schema's `builds_one_active` index lists the same three states.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            BuildRunState::Pending | BuildRunState::Queued | BuildRunState::Running
        )
    }
}

impl std::fmt::Display for BuildRunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRecord {
    /// Store id.
    pub id: i64,
    /// As in [`NewBuild::repo`].
    pub repo: RepoName,
    /// As in [`NewBuild::pr`].
    pub pr: Option<PrNumber>,
    /// As in [`NewBuild::sha`].
    pub sha: Sha,
    /// As in [`NewBuild::context`].
    pub context: BuildContext,
    /// As in [`NewBuild::builder`].
    pub builder: String,
    /// As in [`NewBuild::job`].
    pub job: JobName,
    /// As in [`NewBuild::branch`].
    pub branch: String,
    /// As in [`NewBuild::target`].
    pub target: Option<String>,
    /// Where it stands.
    pub state: BuildRunState,
    /// The builder's queue item, once the trigger was accepted.
    pub queue_item: Option<QueueItemId>,
    /// The build number, once the build started.
    pub number: Option<BuildNumber>,
    /// The build page.
    pub url: Option<String>,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// Unix milliseconds of the last change.
    pub updated_ms: i64,
}

/// The result of [`Store::insert_build`](crate::Store::insert_build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildInsert {
    /// A new build record, in state [`BuildRunState::Pending`].
    Created(BuildRecord),
    /// An active build with the same `(repo, sha, context)` already exists; nothing written.
    Exists(BuildRecord),
}

impl BuildInsert {
    /// The record, created or existing.
    pub fn record(&self) -> &BuildRecord {
        match self {
            BuildInsert::Created(r) | BuildInsert::Exists(r) => r,
        }
    }

    /// The record, created or existing.
    pub fn into_record(self) -> BuildRecord {
        match self {
            BuildInsert::Created(r) | BuildInsert::Exists(r) => r,
        }
    }
}

/// Fields to change on a build; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildChange {
    /// The new state; a finished build ignores an active one (see
    /// [`Store::update_build`](crate::Store::update_build)).
    pub state: Option<BuildRunState>,
    /// The queue item the builder answered the trigger with.
    pub queue_item: Option<QueueItemId>,
    /// The build number, once known.
    pub number: Option<BuildNumber>,
    /// The build page, once known.
    pub url: Option<String>,
}

/// What a queue entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// "@greg please": build the staging merge, then land it on the target.
    Merge,
    /// "@greg try": build the staging merge; land nothing.
    Try,
    /// `test_merged: true`: the test build of a pull request's head merged with the current
    /// target; lands nothing, reported as `greg/test` on the head.
    Test,
}

impl QueueKind {
    /// Every kind, in declaration order.
    pub const ALL: [QueueKind; 3] = [QueueKind::Merge, QueueKind::Try, QueueKind::Test];

    /// The stored name: `merge`, `try` or `test`.
    pub fn as_str(&self) -> &'static str {
        match self {
            QueueKind::Merge => "merge",
            QueueKind::Try => "try",
            QueueKind::Test => "test",
        }
    }

    /// Parses [`as_str`](Self::as_str) output; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

impl std::fmt::Display for QueueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a queue entry stands. Waiting, staging, building and landing are *active*: the
/// entry holds its `(repo, pr, kind)` key. Landed, failed and cancelled are *finished*, and
/// a finished entry never becomes active again (a new request is a new entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Approved, waiting for its turn (or for the tree to open).
    Waiting,
    /// Its staging merge commit is being made.
    Staging,
    /// The staging merge is building.
    Building,
    /// The build passed; the target is being fast-forwarded (merge only).
    Landing,
    /// Landed on the target (merge), or built green (try).
    Landed,
    /// The staging merge or its build failed, or landing was refused.
    Failed,
    /// Withdrawn: "@greg cancel", a new head, a closed pull request.
    Cancelled,
}

impl QueueState {
    /// Every state, in declaration order.
    pub const ALL: [QueueState; 7] = [
        QueueState::Waiting,
        QueueState::Staging,
        QueueState::Building,
        QueueState::Landing,
        QueueState::Landed,
        QueueState::Failed,
        QueueState::Cancelled,
    ];

    /// The stored name: `waiting`, `staging`, `building`, `landing`, `landed`, `failed`,
    /// `cancelled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            QueueState::Waiting => "waiting",
            QueueState::Staging => "staging",
            QueueState::Building => "building",
            QueueState::Landing => "landing",
            QueueState::Landed => "landed",
            QueueState::Failed => "failed",
            QueueState::Cancelled => "cancelled",
        }
    }

    /// Parses [`as_str`](Self::as_str) output; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Waiting, staging, building or landing: the entry still holds its `(repo, pr, kind)`
    /// key. The schema's `queue_one_active` index lists the same four states.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            QueueState::Waiting | QueueState::Staging | QueueState::Building | QueueState::Landing
        )
    }
}

impl std::fmt::Display for QueueState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored merge-queue entry: one "@greg please" or "@greg try" of one pull request, from
/// approval until it landed, failed or was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueEntry {
    /// Store id; breaks ties of priority and approval time.
    pub id: i64,
    /// The pull request's (target) repository.
    pub repo: RepoName,
    /// The pull request.
    pub pr: PrNumber,
    /// Merge or try.
    pub kind: QueueKind,
    /// The target branch name.
    pub target: String,
    /// The approved head; the approval is bound to it.
    pub head_sha: Sha,
    /// Who approved ("@greg please").
    pub approver: Login,
    /// The command as written, for the merge message (e.g. `please p=2`).
    pub command: String,
    /// Queue priority, higher first; 0 by default.
    pub priority: i32,
    /// Unix milliseconds of the approval; earlier first among equal priorities.
    pub approved_ms: i64,
    /// Where it stands.
    pub state: QueueState,
    /// The target tip the staging commit was made from.
    pub base_sha: Option<Sha>,
    /// The staging merge commit.
    pub staging_sha: Option<Sha>,
    /// `builds.id` of the staging build.
    pub build_id: Option<i64>,
    /// How many times it was (re)staged.
    pub attempts: i32,
    /// The last outcome, in words: why it failed or was cancelled, or the landed sha.
    pub reason: Option<String>,
    /// Why it left its queue, structured (schema 9); `None` while active, and for entries
    /// that finished before schema 9 or whose stored exit does not decode (then `reason`
    /// says why in words).
    pub exit: Option<QueueExit>,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// Unix milliseconds of the last change.
    pub updated_ms: i64,
    /// The merge-pipeline candidate (SPEC §10) the entry is in: the id of the candidate's
    /// first entry; `None` while it waits (and for try and test entries).
    pub candidate: Option<i64>,
    /// The candidate that candidate is built on; `None`: the target tip.
    pub parent: Option<i64>,
    /// Its bisection group: the entries of one half of a split batch share it.
    pub group: Option<i64>,
}

/// A merge or try request to put in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueueEntry {
    /// The pull request's (target) repository.
    pub repo: RepoName,
    /// The pull request.
    pub pr: PrNumber,
    /// Merge or try; with `repo` and `pr` the key of one active entry.
    pub kind: QueueKind,
    /// The target branch name.
    pub target: String,
    /// The approved head.
    pub head_sha: Sha,
    /// Who approved.
    pub approver: Login,
    /// The command as written (e.g. `please p=2`).
    pub command: String,
    /// Queue priority, higher first.
    pub priority: i32,
    /// Unix milliseconds; becomes `approved_ms`, `created_ms` and `updated_ms`.
    pub now_ms: i64,
}

/// The result of [`Store::enqueue`](crate::Store::enqueue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueInsert {
    /// A new entry, in state [`QueueState::Waiting`].
    Created(QueueEntry),
    /// An active entry with the same `(repo, pr, kind)` already exists; nothing written.
    Exists(QueueEntry),
}

impl QueueInsert {
    /// The entry, created or existing.
    pub fn entry(&self) -> &QueueEntry {
        match self {
            QueueInsert::Created(e) | QueueInsert::Exists(e) => e,
        }
    }

    /// The entry, created or existing.
    pub fn into_entry(self) -> QueueEntry {
        match self {
            QueueInsert::Created(e) | QueueInsert::Exists(e) => e,
        }
    }
}

/// Why a queue entry left its queue, as stored in `queue_entries.exit` (JSON, tagged by
/// `kind`, e.g. `{"kind": "cancelled", "by": "alice"}`) and shown by the pull-request page
/// and `GET /api/pr/...`. Written with the change that finishes the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueueExit {
    /// The target reached the staging commit `commit` (or the provider merged the pull
    /// request, then `commit` is its head).
    Landed {
        /// The commit the target now points at (or the merged head).
        commit: Sha,
    },
    /// A try or test_merged build passed (nothing lands).
    Passed {
        /// The build page, when known.
        build_url: Option<String>,
    },
    /// The staging build failed, was aborted, timed out or could not be run.
    BuildFailed {
        /// What happened, in words (`build failed`, `build timed out`, `no job to run`…).
        result: String,
        /// The build page, when known.
        build_url: Option<String>,
    },
    /// The head does not merge cleanly into the target.
    Conflict {
        /// The provider's words.
        detail: String,
    },
    /// The head was already in the target: nothing to merge.
    UpToDate,
    /// New commits were pushed: the approval was bound to the old head.
    NewHead {
        /// The new head.
        head: Sha,
    },
    /// The pull request was closed.
    Closed,
    /// Someone withdrew the request ("@greg cancel", "r-").
    Cancelled {
        /// Who.
        by: Login,
    },
    /// The rules of SPEC §5 stopped holding (an approval withdrawn, changes requested, a
    /// failed test status, a draft…).
    RulesBroken {
        /// Every blocker, in words.
        blockers: Vec<String>,
    },
    /// The provider refused a step for good (a protected branch, a merge check), or a step
    /// kept failing past the retry window.
    Refused {
        /// The provider's reason.
        reason: String,
    },
    /// Anything else (a newer request replaced it, the pull request was retargeted…), in
    /// words.
    Other {
        /// What happened.
        reason: String,
    },
}

impl QueueExit {
    /// The exit as stored: JSON.
    pub fn to_json(&self) -> String {
        // Serializing a enum of strings cannot fail; the fallback keeps the reason anyway.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"kind":"other","reason":""}"#.to_owned())
    }

    /// Reads a stored exit back; `None` when it does not decode (a kind this version does not
    /// know).
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// Fields to change on a queue entry; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueChange {
    /// The new state; a finished entry refuses an active one (see
    /// [`Store::update_queue_entry`](crate::Store::update_queue_entry)).
    pub state: Option<QueueState>,
    /// The target tip the staging commit was made from.
    pub base_sha: Option<Sha>,
    /// The staging merge commit.
    pub staging_sha: Option<Sha>,
    /// `builds.id` of the staging build.
    pub build_id: Option<i64>,
    /// A new queue priority.
    pub priority: Option<i32>,
    /// A new staging count.
    pub attempts: Option<i32>,
    /// The outcome, in words.
    pub reason: Option<String>,
    /// Why the entry left its queue (with a change to a finished state).
    pub exit: Option<QueueExit>,
    /// Set `base_sha`, `staging_sha`, `build_id`, `candidate` and `parent` to NULL (applied
    /// before the fields above and below, so a change can clear and set in one go).
    pub clear_staging: bool,
    /// Puts the entry in this candidate, built on [`QueueChange::parent`].
    pub candidate: Option<i64>,
    /// With [`QueueChange::candidate`] only: the candidate it is built on (`None`: the target
    /// tip).
    pub parent: Option<i64>,
    /// A new bisection group.
    pub group: Option<i64>,
}

/// One entry's part of [`Store::transition_queue_entries`](crate::Store::transition_queue_entries):
/// entry `id`, expected in state `from`, changed by `change`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMove {
    /// The entry.
    pub id: i64,
    /// The state it must still be in (compare-and-swap).
    pub from: QueueState,
    /// What changes.
    pub change: QueueChange,
}

/// A closed tree ("@greg treeclosed=N"): merges into `target` of priority below `priority`
/// wait until it is opened again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeClosure {
    /// The repository.
    pub repo: RepoName,
    /// The target branch name.
    pub target: String,
    /// Entries of at least this priority still merge.
    pub priority: i32,
    /// Who closed it.
    pub closed_by: Login,
    /// Unix milliseconds of the (last) closing.
    pub since_ms: i64,
}

/// The id of a stored CI report (`greg report`): its arrival order, unique across
/// repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ReportId(pub u64);

impl std::fmt::Display for ReportId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_states_round_trip() {
        for state in BuildRunState::ALL {
            assert_eq!(BuildRunState::parse(state.as_str()), Some(state));
        }
        assert_eq!(BuildRunState::parse("Running"), None);
        assert_eq!(BuildRunState::parse(""), None);
    }

    #[test]
    fn only_pending_queued_running_are_active() {
        let active: Vec<_> = BuildRunState::ALL
            .into_iter()
            .filter(BuildRunState::is_active)
            .map(|s| s.as_str())
            .collect();
        assert_eq!(active, ["pending", "queued", "running"]);
    }

    #[test]
    fn queue_kinds_and_states_round_trip() {
        for kind in QueueKind::ALL {
            assert_eq!(QueueKind::parse(kind.as_str()), Some(kind));
        }
        for state in QueueState::ALL {
            assert_eq!(QueueState::parse(state.as_str()), Some(state));
        }
        assert_eq!(QueueKind::parse("Merge"), None);
        assert_eq!(QueueState::parse("done"), None);
    }

    #[test]
    fn only_waiting_staging_building_landing_are_active() {
        let active: Vec<_> = QueueState::ALL
            .into_iter()
            .filter(QueueState::is_active)
            .map(|s| s.as_str())
            .collect();
        assert_eq!(active, ["waiting", "staging", "building", "landing"]);
    }

    #[test]
    fn queue_kinds_and_states_serialize_as_stored() {
        for kind in QueueKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::Value::from(kind.as_str()))
            );
        }
        for state in QueueState::ALL {
            assert_eq!(
                serde_json::to_value(state).ok(),
                Some(serde_json::Value::from(state.as_str()))
            );
        }
    }
}
