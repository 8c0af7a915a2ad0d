//! The one in-memory world both fakes serve: GitHub repositories, pull requests, comments,
//! reviews and commit statuses; Jenkins jobs, queue items and builds; and a log of every
//! request the fakes received.
//!
//! Design.
//! - [`World`] is a cheap handle (`Arc` inside) shared by the tests, [`crate::FakeGithub`] and
//!   [`crate::FakeJenkins`]. All state sits behind one `std::sync::Mutex` that is never held
//!   across an `.await`: every method locks, mutates, unlocks.
//! - Every mutation bumps a version on a `tokio::sync::watch` channel, so a test can
//!   [`World::wait_for`] a condition instead of sleeping.
//! - Time is logical: a clock that starts at 2024-01-01T00:00:00Z and advances one second per
//!   recorded fact, so timestamps are deterministic and strictly increasing.
//! - The domain verbs (`open_pr`, `push_to_pr`, `approve`, `finish_build`, ...) return
//!   [`WorldError`] for unknown repositories, pull requests, jobs or builds; they never panic.

pub mod bitbucket;
pub mod config_xml;
pub mod github;
pub mod hooks;
pub mod jenkins;
mod log;

pub use github::{
    Branches, Comment, FakeCommit, FakeOauth, FakePullRequest, FakeReview, GithubState, NewPr,
    Repo, Status,
};
pub use hooks::FakeHook;
pub use jenkins::{
    AutoCi, Delivery, FakeBuild, JenkinsState, JenkinsTiming, Job, Outcome, QueueItem,
    ScriptedOutcome, SentNotification,
};
pub use log::{Fault, Hold, HoldMode, HoldState, LoggedRequest, Server};

use greg_core::{BuildNumber, JobName, PrNumber, QueueItemId, RepoName};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Epoch milliseconds of the logical clock's start: 2024-01-01T00:00:00Z.
pub const CLOCK_START_MS: u64 = 1_704_067_200_000;

/// What a domain verb or a fake's handler could not do. Handlers map these onto the vendor's
/// HTTP answers (404, 409, 422, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    /// No such repository.
    #[error("unknown repository {0}")]
    UnknownRepo(RepoName),
    /// No such pull request in the repository.
    #[error("unknown pull request {0}#{1}")]
    UnknownPr(RepoName, PrNumber),
    /// No such branch in the repository.
    #[error("unknown branch `{1}` in {0}")]
    UnknownBranch(RepoName, String),
    /// No such comment.
    #[error("unknown comment {0}")]
    UnknownComment(u64),
    /// The object already exists (repository, pull request number, branch, job).
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// No such Jenkins job.
    #[error("unknown job `{0}`")]
    UnknownJob(JobName),
    /// No such build of the job.
    #[error("unknown build {0} #{1}")]
    UnknownBuild(JobName, BuildNumber),
    /// No such queue item.
    #[error("unknown queue item {0}")]
    UnknownQueueItem(QueueItemId),
    /// The build already has a result.
    #[error("build {0} #{1} has already finished")]
    BuildFinished(JobName, BuildNumber),
    /// The queue item already left the queue (started or cancelled).
    #[error("queue item {0} already left the queue")]
    QueueItemLeft(QueueItemId),
    /// A git operation that the model refuses (merge conflict, non-fast-forward update).
    #[error("{0}")]
    Git(String),
}

/// Everything the fakes know. Read it with [`World::read`], change it with [`World::update`]
/// or, better, with the domain verbs on [`World`].
#[derive(Debug)]
pub struct WorldState {
    /// The GitHub side.
    pub github: GithubState,
    /// The Jenkins side.
    pub jenkins: JenkinsState,
    /// The Bitbucket side (both flavors), see [`World::bitbucket`].
    pub bitbucket: bitbucket::BitbucketState,
    /// Every request either fake received, oldest first.
    pub requests: Vec<LoggedRequest>,
    /// Armed one-shot faults, see [`World::fail_next`].
    pub faults: Vec<Fault>,
    /// Standing faults, see [`World::fail_every`]: the fault, every how many matching
    /// requests it fires, and how many matched so far.
    pub fault_rates: Vec<(Fault, u64, u64)>,
    /// Armed and active request holds, see [`World::hold_next`].
    pub holds: Vec<Hold>,
    clock_ms: u64,
}

impl WorldState {
    fn new(bot: &str) -> Self {
        Self {
            github: GithubState::new(bot),
            jenkins: JenkinsState::default(),
            bitbucket: bitbucket::BitbucketState::new(bot),
            requests: Vec::new(),
            faults: Vec::new(),
            fault_rates: Vec::new(),
            holds: Vec::new(),
            clock_ms: CLOCK_START_MS,
        }
    }

    /// The logical clock, epoch milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Sets the logical clock (epoch milliseconds), e.g. to the real time for a test of
    /// something that compares the fake's times with greg's clock (GitHub's 3-day window of
    /// webhook deliveries).
    pub fn set_clock_ms(&mut self, ms: u64) {
        self.clock_ms = ms;
    }

    /// Advances the logical clock by one second and returns the new time (epoch ms).
    pub fn tick(&mut self) -> u64 {
        self.clock_ms += 1000;
        self.clock_ms
    }
}

struct Inner {
    state: Mutex<WorldState>,
    version: watch::Sender<u64>,
}

/// A shared handle on the in-memory world. Clone it freely: every clone sees the same state.
#[derive(Clone)]
pub struct World {
    inner: Arc<Inner>,
}

impl Default for World {
    fn default() -> Self {
        Self::new("greg-bot")
    }
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").finish_non_exhaustive()
    }
}

impl World {
    /// An empty world whose GitHub token belongs to `bot` (the login greg posts as).
    pub fn new(bot: &str) -> Self {
        let (version, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(WorldState::new(bot)),
                version,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, WorldState> {
        // A panic in another thread while holding the lock leaves consistent-enough test state;
        // keep serving rather than poisoning every later call.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the state, read-only, under the lock (`f` must not call [`World`] methods).
    pub fn read<R>(&self, f: impl FnOnce(&WorldState) -> R) -> R {
        f(&self.lock())
    }

    /// Runs `f` on the state under the lock (`f` must not call [`World`] methods) and wakes
    /// every [`wait_for`](Self::wait_for).
    pub fn update<R>(&self, f: impl FnOnce(&mut WorldState) -> R) -> R {
        let r = f(&mut self.lock());
        self.inner.version.send_modify(|v| *v += 1);
        r
    }

    /// Waits until `check` returns `Some`, re-checking after every change to the world; fails
    /// after `timeout` with a message naming `what`. `check` runs under the world's lock: it
    /// must not call [`World`] methods (that would deadlock); read the state it is given.
    pub async fn wait_for<R>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&WorldState) -> Option<R>,
    ) -> Result<R, anyhow::Error> {
        let mut rx = self.inner.version.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(r) = self.read(&mut check) {
                return Ok(r);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    // One last look: the change may have raced the deadline.
                    return self.read(&mut check).ok_or_else(|| {
                        anyhow::anyhow!("timed out after {timeout:?} waiting for {what}")
                    });
                }
            }
        }
    }
}
