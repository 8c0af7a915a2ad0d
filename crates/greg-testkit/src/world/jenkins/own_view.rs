//! Verbs that set what Jenkins itself says, apart from what its callbacks said: the reason a
//! queue item waits, and a build's own record (still running, finished with another result,
//! run with another parameter) when no callback tells greg so. SPEC §6: "A callback is a hint,
//! not proof"; these verbs let a test make the hint and Jenkins' API disagree. A forged
//! callback needs no verb: a test POSTs it to greg's `/build` itself.

use super::FakeBuild;
use crate::world::{World, WorldError};
use greg_core::{BuildNumber, BuildOutcome, JobName, QueueItemId};

impl World {
    /// Sets why a waiting queue item waits (`why` of its JSON; [`super::DEFAULT_QUEUE_WHY`]
    /// by default), as a buildable item waiting for an executor, e.g. "Waiting for next
    /// available executor on ‘linux’". Errors when unknown or when it left the queue.
    pub fn set_queue_why(&self, id: QueueItemId, why: &str) -> Result<(), WorldError> {
        self.waiting_item(id, why, false)
    }

    /// Blocks a waiting queue item: `Queue$BlockedItem` with this `why` (e.g. "Build #3 is
    /// already in progress (ETA:15 sec)", as in tests/data/jenkins/remote-api/
    /// queue-item.blocked.json). Errors when unknown or when it left the queue.
    pub fn block_queued(&self, id: QueueItemId, why: &str) -> Result<(), WorldError> {
        self.waiting_item(id, why, true)
    }

    fn waiting_item(&self, id: QueueItemId, why: &str, blocked: bool) -> Result<(), WorldError> {
        self.update(|s| {
            let q = s
                .jenkins
                .queue
                .get_mut(&id.0)
                .ok_or(WorldError::UnknownQueueItem(id))?;
            if q.cancelled || q.build.is_some() {
                return Err(WorldError::QueueItemLeft(id));
            }
            why.clone_into(&mut q.why);
            q.blocked = blocked;
            Ok(())
        })
    }

    /// Keeps a running build running in Jenkins: its scheduled completion (the scripted
    /// outcome) is skipped, so the build JSON says `building: true` whatever a callback
    /// claims. [`World::finish_build`], [`World::finish_build_quietly`] and `POST .../stop`
    /// still end it. Errors when the build is unknown or already finished.
    pub fn keep_running(&self, job: &str, number: BuildNumber) -> Result<(), WorldError> {
        let job = JobName::from(job);
        self.update(|s| {
            let b = s.jenkins.build_mut(&job, number)?;
            if !b.building {
                return Err(WorldError::BuildFinished(job.clone(), number));
            }
            s.jenkins.kept_running.insert((job.clone(), number.0));
            Ok(())
        })
    }

    /// Finishes a running build in Jenkins' own record only: result and duration are set as
    /// [`World::finish_build`] sets them, but no COMPLETED or FINALIZED notification is
    /// recorded or sent (greg learns it only by reading the build). Errors when the build is
    /// unknown or already finished.
    pub fn finish_build_quietly(
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
            s.jenkins.kept_running.remove(&(job.clone(), number.0));
            Ok(b)
        })
    }

    /// Sets the value of parameter `name` in Jenkins' record of a build (the
    /// `hudson.model.ParametersAction` of its JSON and the `parameters` of the callbacks sent
    /// from now on), adding the parameter when the build has none of that name: a build
    /// that, in Jenkins' eyes, ran another `COMMIT` than a callback about it says. Errors
    /// when the build is unknown.
    pub fn set_build_param(
        &self,
        job: &str,
        number: BuildNumber,
        name: &str,
        value: &str,
    ) -> Result<FakeBuild, WorldError> {
        let job = JobName::from(job);
        self.update(|s| {
            let b = s.jenkins.build_mut(&job, number)?;
            match b.params.iter_mut().find(|(k, _)| k == name) {
                Some((_, v)) => value.clone_into(v),
                None => b.params.push((name.to_owned(), value.to_owned())),
            }
            Ok(b.clone())
        })
    }

    /// The scheduled completion of a build ([`super::DriverCmd::Finish`]): [`World::finish_build`]
    /// unless the test keeps the build running.
    pub(crate) fn finish_scheduled(
        &self,
        job: &JobName,
        number: BuildNumber,
        result: BuildOutcome,
    ) -> Result<FakeBuild, WorldError> {
        let kept = self.read(|s| s.jenkins.kept_running.contains(&(job.clone(), number.0)));
        if kept {
            return Err(WorldError::BuildFinished(job.clone(), number));
        }
        self.finish_build(job.as_str(), number, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::jenkins::{DEFAULT_QUEUE_WHY, GREG_PARAMETERS};

    fn world_with_build() -> (World, FakeBuild) {
        let world = World::new("greg-bot");
        world.create_job("demo", GREG_PARAMETERS).expect("job");
        world.hold_queue(true);
        let id = world
            .trigger(
                &JobName::from("demo"),
                &[("COMMIT".to_owned(), "a".repeat(40))],
            )
            .expect("trigger");
        let build = world.start_queued(id).expect("start");
        (world, build)
    }

    #[test]
    fn queue_reasons_default_to_waiting_for_an_executor_and_can_be_set() {
        let world = World::new("greg-bot");
        world.create_job("demo", &["COMMIT"]).expect("job");
        world.hold_queue(true);
        let id = world.trigger(&JobName::from("demo"), &[]).expect("trigger");
        let item = world.queue_item(id).expect("item");
        assert_eq!(
            (item.why.as_str(), item.blocked),
            (DEFAULT_QUEUE_WHY, false)
        );
        world
            .block_queued(id, "Build #3 is already in progress (ETA:15 sec)")
            .expect("block");
        let item = world.queue_item(id).expect("item");
        assert!(item.blocked);
        world
            .set_queue_why(id, "Waiting for next available executor on ‘linux’")
            .expect("why");
        let item = world.queue_item(id).expect("item");
        assert_eq!(
            (item.why.as_str(), item.blocked),
            ("Waiting for next available executor on ‘linux’", false)
        );
        world.start_queued(id).expect("start");
        assert_eq!(
            world.set_queue_why(id, "x"),
            Err(WorldError::QueueItemLeft(id))
        );
        assert_eq!(
            world.block_queued(QueueItemId(9), "x"),
            Err(WorldError::UnknownQueueItem(QueueItemId(9)))
        );
    }

    #[test]
    fn a_quiet_finish_records_the_result_without_a_callback() {
        let (world, build) = world_with_build();
        let before = world.notifications().len();
        let done = world
            .finish_build_quietly("demo", build.number, BuildOutcome::Failure)
            .expect("finish");
        assert_eq!(done.result, Some(BuildOutcome::Failure));
        assert!(!done.building);
        assert_eq!(world.notifications().len(), before, "no callback recorded");
        assert!(matches!(
            world.finish_build_quietly("demo", build.number, BuildOutcome::Success),
            Err(WorldError::BuildFinished(..))
        ));
    }

    #[test]
    fn a_kept_build_skips_its_scheduled_completion_but_not_an_explicit_one() {
        let (world, build) = world_with_build();
        world.keep_running("demo", build.number).expect("keep");
        let job = JobName::from("demo");
        assert!(
            world
                .finish_scheduled(&job, build.number, BuildOutcome::Success)
                .is_err()
        );
        assert_eq!(
            world.build("demo", build.number).map(|b| b.building),
            Some(true)
        );
        let done = world
            .finish_build("demo", build.number, BuildOutcome::Aborted)
            .expect("explicit finish");
        assert_eq!(done.result, Some(BuildOutcome::Aborted));
        assert!(matches!(
            world.keep_running("demo", build.number),
            Err(WorldError::BuildFinished(..))
        ));
        assert!(matches!(
            world.keep_running("demo", BuildNumber(99)),
            Err(WorldError::UnknownBuild(..))
        ));
    }

    #[test]
    fn a_build_param_can_be_rewritten_or_added() {
        let (world, build) = world_with_build();
        let b = world
            .set_build_param("demo", build.number, "COMMIT", &"b".repeat(40))
            .expect("set");
        assert_eq!(b.param("COMMIT"), Some("b".repeat(40).as_str()));
        let b = world
            .set_build_param("demo", build.number, "EXTRA", "1")
            .expect("add");
        assert_eq!(b.param("EXTRA"), Some("1"));
        assert_eq!(world.build("demo", build.number), Some(b));
    }
}
