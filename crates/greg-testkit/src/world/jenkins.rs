//! The Jenkins side of the world: jobs (declared parameters, config.xml, builds), queue items,
//! scripted outcomes, and the Notification-plugin callbacks a run sends.
//!
//! A triggered job goes through Jenkins' own life cycle: a waiting queue item; after
//! [`JenkinsTiming::start_after`] it leaves the queue with an executable build (notifications
//! QUEUED then STARTED, as `JobListener.onStarted` sends both); unless its scripted outcome is
//! [`Outcome::Manual`], after [`JenkinsTiming::run_for`] it completes (COMPLETED then
//! FINALIZED). Timers and deliveries run on [`crate::FakeJenkins`]'s runtime; without a running
//! fake nothing is scheduled and tests drive every step with the verbs below.
//!
//! Notification endpoints of a job: the world-wide [`JenkinsState::notification_url`] (as if
//! every job had one HTTP/JSON endpoint with event `all`) plus the HTTP/JSON endpoints declared
//! in the job's config.xml (`com.tikal.hudson.plugins.notification.Endpoint`, legacy `<url>` or
//! `<urlInfo><urlOrId>` of type PUBLIC, with their `<event>` filter), so a fix-hooks that edits
//! config.xml changes where callbacks go.
//!
//! A waiting queue item says why it waits (`why`, [`DEFAULT_QUEUE_WHY`] unless a test sets
//! another with [`World::set_queue_why`] or blocks it with [`World::block_queued`]). The
//! verbs of `jenkins/own_view.rs` make Jenkins' own record of a build differ from what its
//! callbacks said: [`World::keep_running`], [`World::finish_build_quietly`],
//! [`World::set_build_param`]; a forged callback needs no verb (a test POSTs it to greg).

mod auto_ci;
mod own_view;

pub use auto_ci::AutoCi;

use super::config_xml::{config_xml_for, declared_endpoints, declared_parameters, event_matches};
use super::{World, WorldError};
use greg_core::{BuildNumber, BuildOutcome, BuildPhase, JobName, QueueItemId, Sha};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// How a run ends. `Manual` stays running until the test calls [`World::finish_build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ends `SUCCESS`.
    Success,
    /// Ends `UNSTABLE`.
    Unstable,
    /// Ends `FAILURE`.
    Failure,
    /// Ends `ABORTED`.
    Aborted,
    /// Stays running until the test finishes or stops it.
    Manual,
}

impl Outcome {
    /// The Jenkins result, `None` for `Manual`.
    pub fn result(self) -> Option<BuildOutcome> {
        match self {
            Outcome::Success => Some(BuildOutcome::Success),
            Outcome::Unstable => Some(BuildOutcome::Unstable),
            Outcome::Failure => Some(BuildOutcome::Failure),
            Outcome::Aborted => Some(BuildOutcome::Aborted),
            Outcome::Manual => None,
        }
    }
}

/// Jenkins' upper-case result name (`hudson.model.Result`).
pub fn result_name(o: BuildOutcome) -> &'static str {
    match o {
        BuildOutcome::Success => "SUCCESS",
        BuildOutcome::Unstable => "UNSTABLE",
        BuildOutcome::Failure => "FAILURE",
        BuildOutcome::Aborted => "ABORTED",
        BuildOutcome::NotBuilt => "NOT_BUILT",
    }
}

/// Upper-case phase name as the Notification plugin sends it (`Phase.java`).
pub fn phase_name(p: BuildPhase) -> &'static str {
    match p {
        BuildPhase::Queued => "QUEUED",
        BuildPhase::Started => "STARTED",
        BuildPhase::Completed => "COMPLETED",
        BuildPhase::Finalized => "FINALIZED",
    }
}

/// One scripted outcome: for `job`, for builds whose `COMMIT` parameter is `commit` (or any
/// build when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedOutcome {
    /// The job (full name).
    pub job: JobName,
    /// `None`: any commit.
    pub commit: Option<Sha>,
    /// How such builds end.
    pub outcome: Outcome,
}

/// Delays of an automatic run (real time, on the fake's runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JenkinsTiming {
    /// From trigger to leaving the queue. Default 20 ms.
    pub start_after: Duration,
    /// From start to completion (non-`Manual` outcomes). Default 50 ms.
    pub run_for: Duration,
}

impl Default for JenkinsTiming {
    fn default() -> Self {
        Self {
            start_after: Duration::from_millis(20),
            run_for: Duration::from_millis(50),
        }
    }
}

/// A job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Full name, folders joined by `/`.
    pub name: JobName,
    /// Declared parameter names (from config.xml's `parameterDefinitions`).
    pub parameters: Vec<String>,
    /// Builds by number.
    pub builds: BTreeMap<u64, FakeBuild>,
    /// The number the next build gets.
    pub next_build_number: u64,
    /// The job configuration as Jenkins stores it.
    pub config_xml: String,
}

/// What Jenkins says of an item waiting for an executor (`Queue.BuildableItem.getWhy()`
/// without a free executor: `CauseOfBlockage.NoAvailableExecutor`'s text, as in
/// tests/data/jenkins/remote-api/queue.json).
pub const DEFAULT_QUEUE_WHY: &str = "Waiting for next available executor";

/// A queue item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    /// Its id, as in `/queue/item/{id}/`.
    pub id: QueueItemId,
    /// The job it queues.
    pub job: JobName,
    /// Every declared parameter with its value (`""` when not sent), in declaration order.
    pub params: Vec<(String, String)>,
    /// Names sent but not declared by the job: Jenkins drops them (SECURITY-170).
    pub ignored_params: Vec<String>,
    /// Cancelled before it started.
    pub cancelled: bool,
    /// The build it became, once it left the queue.
    pub build: Option<BuildNumber>,
    /// Epoch milliseconds.
    pub in_queue_since: u64,
    /// Why it waits, while it waits (`why` of the queue-item JSON; `null` once it left).
    pub why: String,
    /// Blocked (`Queue$BlockedItem`, e.g. "Build #9 is already in progress") rather than
    /// buildable and waiting for an executor (`Queue$BuildableItem`).
    pub blocked: bool,
}

/// A build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeBuild {
    /// The job (full name).
    pub job: JobName,
    /// Its number within the job.
    pub number: BuildNumber,
    /// The queue item it came from.
    pub queue_id: QueueItemId,
    /// Parameter values, in the job's declaration order.
    pub params: Vec<(String, String)>,
    /// Still running.
    pub building: bool,
    /// The result, once finished.
    pub result: Option<BuildOutcome>,
    /// Start, epoch milliseconds.
    pub timestamp: u64,
    /// Milliseconds; 0 while running.
    pub duration: u64,
}

impl FakeBuild {
    /// The value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What became of one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Not sent yet (or no [`crate::FakeJenkins`] is running to send it).
    Pending,
    /// POSTed; the endpoint answered this status.
    Delivered {
        /// HTTP status the endpoint answered.
        status: u16,
    },
    /// The POST failed (connection refused, timeout).
    Failed {
        /// Why the POST failed (without the URL, which carries a token).
        error: String,
    },
    /// Not sent because [`World::drop_callbacks`] (or, for FINALIZED, [`World::drop_finalized`])
    /// was on.
    Dropped,
}

/// One Notification-plugin callback.
#[derive(Debug, Clone, PartialEq)]
pub struct SentNotification {
    /// Position in [`JenkinsState::notifications`].
    pub seq: usize,
    /// The job (full name).
    pub job: JobName,
    /// The build.
    pub number: BuildNumber,
    /// QUEUED, STARTED, COMPLETED or FINALIZED.
    pub phase: BuildPhase,
    /// The endpoint URL.
    pub endpoint: String,
    /// The JSON body (field list: tests/data/SOURCES.md, "Jenkins Notification plugin payload").
    pub payload: Value,
    /// What became of it.
    pub delivery: Delivery,
}

/// Work for [`crate::FakeJenkins`]'s runtime.
#[derive(Debug)]
pub(crate) enum DriverCmd {
    /// Start the queue item after `timing.start_after`.
    Start(QueueItemId, Duration),
    /// Finish the build with this outcome after `timing.run_for`.
    Finish(JobName, BuildNumber, BuildOutcome, Duration),
    /// Finish the build with this outcome after its auto CI duration; not counted in
    /// `in_flight` ([`World::auto_ci`]).
    AutoFinish(JobName, BuildNumber, BuildOutcome, Duration),
    /// POST notification `seq`.
    Deliver(usize),
}

/// The Jenkins side of [`super::WorldState`].
#[derive(Debug)]
pub struct JenkinsState {
    /// Root URL without a trailing slash (`http://127.0.0.1:PORT`), set by
    /// [`crate::FakeJenkins::start`].
    pub root_url: String,
    /// When set, requests must carry HTTP basic auth with exactly this user and API token;
    /// when `None` any basic auth is accepted. Requests without basic auth always get 401.
    pub credentials: Option<(String, String)>,
    /// When set, crumbs are required: `GET /crumbIssuer/api/json` returns this value and every
    /// POST must carry it in `Jenkins-Crumb`. When `None`, the crumb issuer answers 404.
    pub crumb: Option<String>,
    /// A world-wide notification endpoint (greg's `/build?builder=jenkins&token=...`).
    pub notification_url: Option<String>,
    /// Record notifications but do not send them (simulated lost callbacks).
    pub drop_callbacks: bool,
    /// Record FINALIZED notifications but do not send them (COMPLETED arrives, FINALIZED is
    /// lost).
    pub drop_finalized: bool,
    /// Keep triggered items in the queue until [`World::start_queued`].
    pub hold_queue: bool,
    /// Delays of automatic runs.
    pub timing: JenkinsTiming,
    /// Outcome when no script matches. Default `Success`.
    pub default_outcome: Outcome,
    /// Scripted outcomes, oldest first; see [`Self::scripted_outcome`].
    pub scripts: Vec<ScriptedOutcome>,
    /// Jobs by full name.
    pub jobs: BTreeMap<JobName, Job>,
    /// Queue items by id.
    pub queue: BTreeMap<u64, QueueItem>,
    /// Every notification recorded, oldest first.
    pub notifications: Vec<SentNotification>,
    /// Running builds whose scheduled completion is skipped ([`World::keep_running`]).
    pub kept_running: BTreeSet<(JobName, u64)>,
    /// Jobs under the automatic CI model ([`World::auto_ci`]), with what each has seen.
    pub(crate) auto_ci: BTreeMap<JobName, auto_ci::AutoCiRun>,
    pub(crate) driver: Option<UnboundedSender<DriverCmd>>,
    /// Timers and deliveries not done yet; see [`World::settle`].
    pub(crate) in_flight: usize,
    next_queue_id: u64,
}

impl Default for JenkinsState {
    fn default() -> Self {
        Self {
            root_url: "http://jenkins.invalid".to_owned(),
            credentials: None,
            crumb: None,
            notification_url: None,
            drop_callbacks: false,
            drop_finalized: false,
            hold_queue: false,
            timing: JenkinsTiming::default(),
            default_outcome: Outcome::Success,
            scripts: Vec::new(),
            jobs: BTreeMap::new(),
            queue: BTreeMap::new(),
            notifications: Vec::new(),
            kept_running: BTreeSet::new(),
            auto_ci: BTreeMap::new(),
            driver: None,
            in_flight: 0,
            next_queue_id: 100,
        }
    }
}

/// `job/a/job/b/`: the job's URL relative to the root (folders included).
pub fn job_path(job: &JobName) -> String {
    job.as_str()
        .split('/')
        .map(|seg| format!("job/{seg}/"))
        .collect()
}

impl JenkinsState {
    /// The absolute URL of a build page: `{root}/job/NAME/N/`.
    pub fn build_url(&self, job: &JobName, number: BuildNumber) -> String {
        format!("{}/{}{}/", self.root_url, job_path(job), number)
    }

    /// The absolute URL of a job page.
    pub fn job_url(&self, job: &JobName) -> String {
        format!("{}/{}", self.root_url, job_path(job))
    }

    fn job(&self, job: &JobName) -> Result<&Job, WorldError> {
        self.jobs
            .get(job)
            .ok_or_else(|| WorldError::UnknownJob(job.clone()))
    }

    fn build_mut(&mut self, job: &JobName, n: BuildNumber) -> Result<&mut FakeBuild, WorldError> {
        self.jobs
            .get_mut(job)
            .ok_or_else(|| WorldError::UnknownJob(job.clone()))?
            .builds
            .get_mut(&n.0)
            .ok_or_else(|| WorldError::UnknownBuild(job.clone(), n))
    }

    /// The outcome scripted for a build of `job` at `commit`: the newest commit-specific
    /// script, else the newest any-commit script, else [`Self::default_outcome`].
    pub fn scripted_outcome(&self, job: &JobName, commit: Option<&str>) -> Outcome {
        let for_job = || self.scripts.iter().rev().filter(|s| &s.job == job);
        for_job()
            .find(|s| {
                s.commit
                    .as_ref()
                    .map(Sha::as_str)
                    .is_some_and(|c| Some(c) == commit)
            })
            .or_else(|| for_job().find(|s| s.commit.is_none()))
            .map_or(self.default_outcome, |s| s.outcome)
    }

    /// The Notification-plugin JSON for `build` in `phase` (field list: tests/data/SOURCES.md).
    /// `timestamp`: epoch ms the phase reports.
    pub fn notification_payload(
        &self,
        build: &FakeBuild,
        phase: BuildPhase,
        timestamp: u64,
    ) -> Value {
        let rel_job = job_path(&build.job);
        let short = build
            .job
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or(build.job.as_str());
        let parameters: Map<String, Value> = build
            .params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut b = json!({
            "full_url": self.build_url(&build.job, build.number),
            "number": build.number.0,
            "queue_id": build.queue_id.0,
            "timestamp": timestamp,
            "duration": build.duration,
            "phase": phase_name(phase),
            "url": format!("{rel_job}{}/", build.number),
            "scm": {},
            "parameters": parameters,
            "log": "",
            "notes": "",
            "artifacts": {},
        });
        if let (Some(r), Some(obj)) = (build.result, b.as_object_mut()) {
            obj.insert("status".to_owned(), Value::from(result_name(r)));
        }
        json!({
            "name": short,
            "display_name": short,
            "url": rel_job,
            "build": b,
        })
    }

    /// Records (and, with a driver, schedules delivery of) the notifications of one phase to
    /// every endpoint of the build's job.
    fn notify(&mut self, build: &FakeBuild, phase: BuildPhase, timestamp: u64) {
        let mut endpoints: Vec<(String, String)> = self
            .notification_url
            .iter()
            .map(|u| (u.clone(), "all".to_owned()))
            .collect();
        if let Some(job) = self.jobs.get(&build.job) {
            endpoints.extend(declared_endpoints(&job.config_xml));
        }
        for (endpoint, event) in endpoints {
            if !event_matches(&event, phase, build.result) {
                continue;
            }
            let seq = self.notifications.len();
            let dropped =
                self.drop_callbacks || (self.drop_finalized && phase == BuildPhase::Finalized);
            let delivery = if dropped {
                Delivery::Dropped
            } else {
                Delivery::Pending
            };
            let send = delivery == Delivery::Pending;
            self.notifications.push(SentNotification {
                seq,
                job: build.job.clone(),
                number: build.number,
                phase,
                endpoint,
                payload: self.notification_payload(build, phase, timestamp),
                delivery,
            });
            if send {
                self.schedule(DriverCmd::Deliver(seq));
            }
        }
    }

    fn schedule(&mut self, cmd: DriverCmd) {
        if let Some(tx) = &self.driver
            && tx.send(cmd).is_ok()
        {
            self.in_flight += 1;
        }
    }

    pub(crate) fn done_in_flight(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }
}

impl World {
    /// Creates a freestyle job declaring string parameters `params` (use
    /// [`GREG_PARAMETERS`] for greg's SPEC §6 set). Errors if it exists.
    pub fn create_job(&self, name: &str, params: &[&str]) -> Result<(), WorldError> {
        self.create_job_with_config(name, &config_xml_for(params))
    }

    /// Creates a job from a config.xml (parameters and notification endpoints are read from it).
    pub fn create_job_with_config(&self, name: &str, config_xml: &str) -> Result<(), WorldError> {
        let name = JobName::from(name.trim_matches('/'));
        self.update(|s| {
            if s.jenkins.jobs.contains_key(&name) {
                return Err(WorldError::AlreadyExists(format!("job {name}")));
            }
            s.jenkins.jobs.insert(
                name.clone(),
                Job {
                    name: name.clone(),
                    parameters: declared_parameters(config_xml),
                    builds: BTreeMap::new(),
                    next_build_number: 1,
                    config_xml: config_xml.to_owned(),
                },
            );
            Ok(())
        })
    }

    /// Replaces a job's config.xml (what `POST /job/NAME/config.xml` does).
    pub fn set_config_xml(&self, job: &JobName, config_xml: &str) -> Result<(), WorldError> {
        self.update(|s| {
            let j = s
                .jenkins
                .jobs
                .get_mut(job)
                .ok_or_else(|| WorldError::UnknownJob(job.clone()))?;
            j.parameters = declared_parameters(config_xml);
            j.config_xml = config_xml.to_owned();
            Ok(())
        })
    }

    /// Sets (or clears) the world-wide notification endpoint.
    pub fn set_notification_url(&self, url: Option<&str>) {
        self.update(|s| s.jenkins.notification_url = url.map(str::to_owned));
    }

    /// Requires crumbs (`Some(value)`) or not (`None`).
    pub fn require_crumb(&self, crumb: Option<&str>) {
        self.update(|s| s.jenkins.crumb = crumb.map(str::to_owned));
    }

    /// Requires exactly these basic-auth credentials (`None`: any).
    pub fn set_jenkins_credentials(&self, creds: Option<(&str, &str)>) {
        self.update(|s| {
            s.jenkins.credentials = creds.map(|(u, p)| (u.to_owned(), p.to_owned()));
        });
    }

    /// Records notifications without sending them (`true`) or sends them (`false`).
    pub fn drop_callbacks(&self, drop: bool) {
        self.update(|s| s.jenkins.drop_callbacks = drop);
    }

    /// Records FINALIZED notifications without sending them (`true`): greg then sees COMPLETED
    /// as the last word of a build.
    pub fn drop_finalized(&self, drop: bool) {
        self.update(|s| s.jenkins.drop_finalized = drop);
    }

    /// Keeps new queue items waiting until [`start_queued`](Self::start_queued).
    pub fn hold_queue(&self, hold: bool) {
        self.update(|s| s.jenkins.hold_queue = hold);
    }

    /// Sets the automatic run's delays.
    pub fn set_jenkins_timing(&self, timing: JenkinsTiming) {
        self.update(|s| s.jenkins.timing = timing);
    }

    /// Scripts the outcome of builds of `job` at `commit` (any commit when `None`). Newer
    /// scripts win; commit-specific scripts beat any-commit ones.
    pub fn script_outcome(&self, job: &str, commit: Option<&Sha>, outcome: Outcome) {
        self.update(|s| {
            s.jenkins.scripts.push(ScriptedOutcome {
                job: JobName::from(job),
                commit: commit.cloned(),
                outcome,
            });
        });
    }

    /// Queues a build, as `buildWithParameters` does: keeps declared parameters (missing ones
    /// are `""`), drops and records undeclared ones, and (unless the queue is held) schedules
    /// the start. Errors on an unknown job.
    pub fn trigger(
        &self,
        job: &JobName,
        params: &[(String, String)],
    ) -> Result<QueueItemId, WorldError> {
        self.update(|s| {
            let now = s.tick();
            let j = s.jenkins.job(job)?;
            let declared = j.parameters.clone();
            let kept = declared
                .iter()
                .map(|name| {
                    let v = params
                        .iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map_or_else(String::new, |(_, v)| v.clone());
                    (name.clone(), v)
                })
                .collect();
            let ignored = params
                .iter()
                .filter(|(k, _)| !declared.contains(k))
                .map(|(k, _)| k.clone())
                .collect();
            s.jenkins.next_queue_id += 1;
            let id = QueueItemId(s.jenkins.next_queue_id);
            s.jenkins.queue.insert(
                id.0,
                QueueItem {
                    id,
                    job: job.clone(),
                    params: kept,
                    ignored_params: ignored,
                    cancelled: false,
                    build: None,
                    in_queue_since: now,
                    why: DEFAULT_QUEUE_WHY.to_owned(),
                    blocked: false,
                },
            );
            if !s.jenkins.hold_queue {
                let delay = s.jenkins.timing.start_after;
                s.jenkins.schedule(DriverCmd::Start(id, delay));
            }
            Ok(id)
        })
    }

    /// Takes a waiting queue item out of the queue and starts its build (notifications QUEUED
    /// and STARTED); when its job runs under auto CI ([`World::auto_ci`]), or else unless its
    /// scripted outcome is `Manual`, schedules its completion.
    pub fn start_queued(&self, id: QueueItemId) -> Result<FakeBuild, WorldError> {
        self.update(|s| {
            let now = s.tick();
            let j = &mut s.jenkins;
            let item = j
                .queue
                .get(&id.0)
                .ok_or(WorldError::UnknownQueueItem(id))?
                .clone();
            if item.cancelled || item.build.is_some() {
                return Err(WorldError::QueueItemLeft(id));
            }
            let job = j
                .jobs
                .get_mut(&item.job)
                .ok_or_else(|| WorldError::UnknownJob(item.job.clone()))?;
            let number = BuildNumber(job.next_build_number);
            job.next_build_number += 1;
            let build = FakeBuild {
                job: item.job.clone(),
                number,
                queue_id: id,
                params: item.params.clone(),
                building: true,
                result: None,
                timestamp: now,
                duration: 0,
            };
            job.builds.insert(number.0, build.clone());
            if let Some(q) = j.queue.get_mut(&id.0) {
                q.build = Some(number);
            }
            j.notify(&build, BuildPhase::Queued, item.in_queue_since);
            j.notify(&build, BuildPhase::Started, now);
            let commit = build.param("COMMIT");
            if let Some((result, delay)) = auto_ci::decide(s, &item.job, commit) {
                let cmd = DriverCmd::AutoFinish(item.job.clone(), number, result, delay);
                s.jenkins.schedule_auto_finish(cmd);
                return Ok(build);
            }
            let j = &mut s.jenkins;
            if let Some(result) = j.scripted_outcome(&item.job, commit).result() {
                let delay = j.timing.run_for;
                j.schedule(DriverCmd::Finish(item.job.clone(), number, result, delay));
            }
            Ok(build)
        })
    }

    /// Finishes a running build with `result` (notifications COMPLETED then FINALIZED).
    /// Errors when it is unknown or already finished.
    pub fn finish_build(
        &self,
        job: &str,
        number: BuildNumber,
        result: BuildOutcome,
    ) -> Result<FakeBuild, WorldError> {
        let job = JobName::from(job);
        self.update(|s| {
            let now = s.tick();
            let b = s.jenkins.build_mut(&job, number)?;
            if !b.building {
                return Err(WorldError::BuildFinished(job.clone(), number));
            }
            b.building = false;
            b.result = Some(result);
            b.duration = now.saturating_sub(b.timestamp);
            let b = b.clone();
            s.jenkins.notify(&b, BuildPhase::Completed, now);
            s.jenkins.notify(&b, BuildPhase::Finalized, now);
            Ok(b)
        })
    }

    /// Cancels a waiting queue item. Errors when unknown or when it already left the queue.
    pub fn cancel_queued(&self, id: QueueItemId) -> Result<(), WorldError> {
        self.update(|s| {
            let q = s
                .jenkins
                .queue
                .get_mut(&id.0)
                .ok_or(WorldError::UnknownQueueItem(id))?;
            if q.cancelled || q.build.is_some() {
                return Err(WorldError::QueueItemLeft(id));
            }
            q.cancelled = true;
            Ok(())
        })
    }

    /// The builds of `job`, oldest first.
    pub fn builds(&self, job: &str) -> Vec<FakeBuild> {
        self.read(|s| {
            s.jenkins
                .jobs
                .get(&JobName::from(job))
                .map_or_else(Vec::new, |j| j.builds.values().cloned().collect())
        })
    }

    /// One build.
    pub fn build(&self, job: &str, number: BuildNumber) -> Option<FakeBuild> {
        self.read(|s| {
            s.jenkins
                .jobs
                .get(&JobName::from(job))?
                .builds
                .get(&number.0)
                .cloned()
        })
    }

    /// A queue item.
    pub fn queue_item(&self, id: QueueItemId) -> Option<QueueItem> {
        self.read(|s| s.jenkins.queue.get(&id.0).cloned())
    }

    /// Every notification recorded so far, oldest first.
    pub fn notifications(&self) -> Vec<SentNotification> {
        self.read(|s| s.jenkins.notifications.clone())
    }

    /// Waits until no Jenkins timer or notification delivery is outstanding.
    pub async fn settle(&self, timeout: Duration) -> Result<(), anyhow::Error> {
        self.wait_for("Jenkins to settle", timeout, |s| {
            (s.jenkins.in_flight == 0).then_some(())
        })
        .await
    }
}

/// greg's build parameters (SPEC §6), for [`World::create_job`].
pub const GREG_PARAMETERS: &[&str] = &[
    "SOURCE",
    "COMMIT",
    "CONTEXT",
    "REPORT",
    "BRANCH",
    "PR",
    "TARGET",
    "TARGET_BRANCH",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> String {
        let full = format!("{}/../../tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(full).expect("fixture")
    }

    #[test]
    fn the_payload_has_the_wiki_examples_fields_and_the_plugins_newer_ones() {
        let state = JenkinsState {
            root_url: "http://localhost:8080".to_owned(),
            ..JenkinsState::default()
        };
        let build = FakeBuild {
            job: JobName::from("asgard"),
            number: BuildNumber(18),
            queue_id: QueueItemId(7),
            params: vec![("COMMIT".to_owned(), "c6d86dc".to_owned())],
            building: false,
            result: Some(BuildOutcome::Success),
            timestamp: 1_000,
            duration: 5_000,
        };
        let ours = state.notification_payload(&build, BuildPhase::Completed, 6_000);
        let wiki: Value =
            serde_json::from_str(&fixture("jenkins/notification/wiki-example.completed.json"))
                .expect("json");
        let keys = |v: &Value| -> Vec<String> {
            v.as_object()
                .map_or_else(Vec::new, |o| o.keys().cloned().collect())
        };
        for k in keys(&wiki) {
            assert!(ours.get(&k).is_some(), "missing top-level {k}");
        }
        for k in keys(&wiki["build"]) {
            assert!(ours["build"].get(&k).is_some(), "missing build.{k}");
        }
        for k in ["name", "url"] {
            assert_eq!(ours[k], wiki[k], "{k}");
        }
        for k in ["full_url", "number", "phase", "status", "url"] {
            assert_eq!(ours["build"][k], wiki["build"][k], "build.{k}");
        }
        assert_eq!(ours["build"]["queue_id"], 7);
        assert_eq!(ours["build"]["timestamp"], 6_000);
        assert_eq!(ours["build"]["duration"], 5_000);
        assert_eq!(ours["build"]["parameters"]["COMMIT"], "c6d86dc");
    }

    #[test]
    fn notification_payload_snapshot() {
        let state = JenkinsState {
            root_url: "http://localhost:8080".to_owned(),
            ..JenkinsState::default()
        };
        let build = FakeBuild {
            job: JobName::from("team/demo-test"),
            number: BuildNumber(3),
            queue_id: QueueItemId(101),
            params: vec![
                (
                    "COMMIT".to_owned(),
                    "c6d86dc654b12425e706bcf951adfe5a8627a517".to_owned(),
                ),
                ("CONTEXT".to_owned(), "test".to_owned()),
            ],
            building: false,
            result: Some(BuildOutcome::Unstable),
            timestamp: crate::world::CLOCK_START_MS,
            duration: 4_000,
        };
        insta::assert_yaml_snapshot!(state.notification_payload(
            &build,
            BuildPhase::Finalized,
            crate::world::CLOCK_START_MS + 5_000
        ));
    }
}
