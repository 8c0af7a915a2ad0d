//! The merge queue as a pure state machine: which entry to stage next, where each entry stands,
//! and how an entry's state moves on each event. No IO, no clock reads, no sleeping: the
//! engine (`handlers/staging.rs`) loads the entries from the store, asks this module, persists
//! the answer, then performs the provider and builder calls.
//!
//! # Design note
//!
//! **Model.** One queue per (repository, target branch). An entry is one pull request's
//! request to land (kind `merge`, from "@greg please") or to test the merge without landing
//! (kind `try`). It carries the approved head sha: the approval is bound to that commit, and a
//! push to the pull request drops the entry. States:
//!
//! ```text
//!             start                 staged              build green
//!  Waiting ─────────────▶ Staging ─────────▶ Building ─────────────▶ Landing ──ff done──▶ Landed
//!     ▲                      │                  │    (try: green → Landed, nothing lands)   │
//!     │  target moved        │ conflict         │ red / timed out                          │
//!     └──────────────────────┼──────────────────┼──────────────── target moved (CAS failed)─┤
//!                            ▼                  ▼                                           ▼
//!                          Failed             Failed        Failed (refused: protected branch,
//!                                                                  merge check, gave up)
//!   any active state ──(cancel, close, push, rules broken, retarget)──▶ Cancelled
//! ```
//!
//! **Properties.**
//! - The target only ever moves to a staging commit whose merge build was green: `Landing` is
//!   entered only from a green build of exactly `staging_sha`, and the fast-forward is a
//!   compare-and-swap (the provider moves the target only if the staging commit descends from
//!   its current tip, i.e. the target is still `base_sha` or an ancestor of it).
//! - At most one `merge` entry per queue is in flight (`Staging`, `Building` or `Landing`):
//!   serial landing, as bors and Patronus do. `try` entries do not hold the queue and each has
//!   its own staging ref.
//! - Order: priority (higher first), then approval time, then entry id; a tree closure at
//!   priority N holds every waiting `merge` entry below N (in-flight ones finish).
//! - Every step ends (SPEC §6): `Refused` takes any in-flight entry to `Failed` (the provider
//!   refused for good, or the step kept failing past the retry window), so no state waits
//!   for ever on the provider; `Building` ends with its build's result or timeout.
//! - Every state is persisted *before* the calls that act on it, and every call is idempotent
//!   or re-checkable, so a crash at any point is repaired by redoing the current state's step
//!   ([`resume_step`]): staging is redone from the target tip (the staging ref is force-moved);
//!   a build is found by its key; a landing first checks whether the target already is the
//!   staging commit.
//!
//! **Races accepted.**
//! - A push to the target between the staging merge and the fast-forward costs a rebuild (the
//!   CAS fails, the entry goes back to `Waiting` at its place), never a wrong landing.
//! - A crash between the fast-forward and the store update is detected on resume by reading the
//!   target tip; the pull request may then get its "landed" comment late, never twice in normal
//!   operation (a second crash in the same window can repeat it).
//! - A push to the pull request that greg has not heard of yet (lost webhook) is caught when the
//!   staging merge is made from the approved sha (greg merges the approved commit, not the
//!   branch), and by reconciliation, which drops entries whose head moved.

use greg_store::{QueueEntry, QueueKind, QueueState};

/// Something that happened to a queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueEvent {
    /// greg began staging it (it reached the head of the queue).
    Start,
    /// The staging commit was made; its build is being started.
    Staged,
    /// The head does not merge cleanly into the target.
    Conflict,
    /// The head is already contained in the target.
    UpToDate,
    /// The staging build finished green.
    BuildGreen,
    /// The staging build finished red, was aborted or timed out.
    BuildRed,
    /// The target fast-forwarded to the staging commit.
    FastForwarded,
    /// The target moved away from the staging base (the CAS failed, or a push was seen).
    TargetMoved,
    /// The provider refused a step for good (a protected branch, a merge check), or a step
    /// kept failing past the retry window.
    Refused,
    /// The pull request's head moved, it was closed, or someone cancelled.
    Withdrawn,
}

/// Why an event does not apply to an entry in its state (a stale callback, a repeated
/// delivery): the engine logs it and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{event:?} does not apply to a {kind:?} entry in state {state:?}")]
pub(crate) struct NotApplicable {
    pub kind: QueueKind,
    pub state: QueueState,
    pub event: QueueEvent,
}

/// The state an entry moves to on `event`.
///
/// # Errors
/// [`NotApplicable`] when the event does not apply in the entry's state (finished entries
/// accept nothing).
pub(crate) fn transition(
    kind: QueueKind,
    state: QueueState,
    event: QueueEvent,
) -> Result<QueueState, NotApplicable> {
    use QueueEvent as E;
    use QueueState as S;
    let next = match (state, event) {
        (S::Waiting, E::Start) => S::Staging,
        (S::Staging, E::Staged) => S::Building,
        (S::Staging, E::Conflict) => S::Failed,
        // Nothing to merge: the commit is already in the target; a try has nothing to test.
        (S::Staging, E::UpToDate) => match kind {
            QueueKind::Merge => S::Landed,
            QueueKind::Try | QueueKind::Test => S::Failed,
        },
        (S::Building, E::BuildGreen) => match kind {
            QueueKind::Merge => S::Landing,
            QueueKind::Try | QueueKind::Test => S::Landed,
        },
        (S::Building, E::BuildRed) => S::Failed,
        (S::Landing, E::FastForwarded) => S::Landed,
        // Re-merge from the new tip and rebuild, keeping the place in the queue.
        (S::Staging | S::Building | S::Landing, E::TargetMoved) if kind != QueueKind::Try => {
            S::Waiting
        }
        (S::Staging | S::Building | S::Landing, E::Refused) => S::Failed,
        (s, E::Withdrawn) if s.is_active() => S::Cancelled,
        _ => return Err(NotApplicable { kind, state, event }),
    };
    Ok(next)
}

/// True for the states in which a merge entry holds its queue.
pub(crate) fn in_flight(state: QueueState) -> bool {
    matches!(
        state,
        QueueState::Staging | QueueState::Building | QueueState::Landing
    )
}

/// The try and test entries to start now, from the active entries of one (repository, target)
/// queue in queue order (as `Store::queue` returns them) and the cap on concurrent `test`
/// builds: every waiting `try` entry, and waiting `test` entries up to the cap, those of pull
/// requests with a `merge` entry (approved) first. `merge` entries start through the merge
/// pipeline (`crate::pipeline`), which also applies the tree closure.
pub(crate) fn to_start(entries: &[QueueEntry], test_cap: usize) -> Vec<i64> {
    let mut start: Vec<i64> = entries
        .iter()
        .filter(|e| e.kind == QueueKind::Try && e.state == QueueState::Waiting)
        .map(|e| e.id)
        .collect();
    let tests = || entries.iter().filter(|e| e.kind == QueueKind::Test);
    let running = tests().filter(|e| in_flight(e.state)).count();
    let approved = |e: &QueueEntry| {
        entries
            .iter()
            .any(|m| m.kind == QueueKind::Merge && m.pr == e.pr)
    };
    let mut waiting: Vec<&QueueEntry> =
        tests().filter(|e| e.state == QueueState::Waiting).collect();
    // Stable: queue order within each group.
    waiting.sort_by_key(|e| !approved(e));
    start.extend(
        waiting
            .iter()
            .take(test_cap.saturating_sub(running))
            .map(|e| e.id),
    );
    start
}

/// 1-based position of each active `merge` entry: the in-flight one first, then the waiting ones
/// in queue order. `try` entries have no position.
pub(crate) fn positions(entries: &[QueueEntry]) -> Vec<(i64, usize)> {
    let merges: Vec<&QueueEntry> = entries
        .iter()
        .filter(|e| e.kind == QueueKind::Merge && e.state.is_active())
        .collect();
    merges
        .iter()
        .filter(|e| in_flight(e.state))
        .chain(merges.iter().filter(|e| !in_flight(e.state)))
        .enumerate()
        .map(|(i, e)| (e.id, i + 1))
        .collect()
}

/// The [`positions`] place of entry `id`; `None` for try and test entries and unknown ids.
pub(crate) fn position_of(entries: &[QueueEntry], id: i64) -> Option<usize> {
    positions(entries)
        .into_iter()
        .find(|(e, _)| *e == id)
        .map(|(_, p)| p)
}

/// What the engine must (re)do for an active entry after a restart or on reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResumeStep {
    /// Nothing: it waits for its turn (the queue's next start picks it).
    Wait,
    /// Make the staging commit again from the current target tip.
    Restage,
    /// Make sure its build exists and runs (the build poller follows it from there).
    EnsureBuild,
    /// Check the target: already the staging commit → finish; else fast-forward again.
    Land,
}

/// The step that repairs an active entry: redoing the step of its persisted state.
pub(crate) fn resume_step(entry: &QueueEntry) -> ResumeStep {
    match entry.state {
        QueueState::Staging => ResumeStep::Restage,
        QueueState::Building if entry.staging_sha.is_none() => ResumeStep::Restage,
        QueueState::Building => ResumeStep::EnsureBuild,
        QueueState::Landing => ResumeStep::Land,
        _ => ResumeStep::Wait,
    }
}

/// The staging ref of an entry: `greg/staging/<target>/<n>` for merges, `<n>` being its
/// candidate (SPEC §10: one ref per candidate, so candidates build side by side),
/// `greg/try/<pr>` and `greg/test/<pr>` for try and test_merged builds (one per pull request).
pub(crate) fn staging_branch(entry: &QueueEntry) -> String {
    match entry.kind {
        QueueKind::Merge => format!(
            "{STAGING_PREFIX}staging/{}/{}",
            entry.target,
            entry.candidate.unwrap_or(entry.id)
        ),
        QueueKind::Try => format!("{STAGING_PREFIX}try/{}", entry.pr),
        QueueKind::Test => format!("{STAGING_PREFIX}test/{}", entry.pr),
    }
}

/// Prefix of every branch greg makes; pushes to these branches are greg's own and never get
/// test builds.
pub(crate) const STAGING_PREFIX: &str = "greg/";

#[cfg(test)]
mod tests {
    use super::*;
    use greg_core::{Login, PrNumber, RepoName, Sha};

    fn entry(id: i64, kind: QueueKind, state: QueueState, priority: i32) -> QueueEntry {
        QueueEntry {
            id,
            repo: RepoName::new("acme", "demo"),
            pr: PrNumber(u64::try_from(id).unwrap_or(0)),
            kind,
            target: "main".to_owned(),
            head_sha: Sha::parse(&format!("{id:040x}")).expect("sha"),
            approver: Login("alice".to_owned()),
            command: "please".to_owned(),
            priority,
            approved_ms: id * 1000,
            state,
            base_sha: None,
            staging_sha: None,
            build_id: None,
            attempts: 0,
            reason: None,
            exit: None,
            created_ms: id * 1000,
            updated_ms: id * 1000,
            candidate: None,
            parent: None,
            group: None,
        }
    }

    use QueueKind::{Merge, Try};
    use QueueState::*;

    #[test]
    fn a_merge_lands_through_every_state() {
        let mut s = Waiting;
        for (ev, want) in [
            (QueueEvent::Start, Staging),
            (QueueEvent::Staged, Building),
            (QueueEvent::BuildGreen, Landing),
            (QueueEvent::FastForwarded, Landed),
        ] {
            s = transition(Merge, s, ev).expect("applies");
            assert_eq!(s, want);
        }
    }

    #[test]
    fn a_green_try_finishes_without_landing() {
        assert_eq!(
            transition(Try, Building, QueueEvent::BuildGreen),
            Ok(Landed)
        );
        assert_eq!(
            transition(Try, Building, QueueEvent::TargetMoved),
            Err(NotApplicable {
                kind: Try,
                state: Building,
                event: QueueEvent::TargetMoved
            })
        );
    }

    #[test]
    fn a_moved_target_sends_the_entry_back_to_waiting_from_any_in_flight_state() {
        for s in [Staging, Building, Landing] {
            assert_eq!(transition(Merge, s, QueueEvent::TargetMoved), Ok(Waiting));
        }
        assert!(transition(Merge, Waiting, QueueEvent::TargetMoved).is_err());
    }

    #[test]
    fn red_builds_and_conflicts_fail_and_withdrawal_cancels_only_active_entries() {
        assert_eq!(
            transition(Merge, Building, QueueEvent::BuildRed),
            Ok(Failed)
        );
        assert_eq!(transition(Merge, Staging, QueueEvent::Conflict), Ok(Failed));
        for s in [Waiting, Staging, Building, Landing] {
            assert_eq!(transition(Merge, s, QueueEvent::Withdrawn), Ok(Cancelled));
        }
        for s in [Staging, Building, Landing] {
            assert_eq!(transition(Merge, s, QueueEvent::Refused), Ok(Failed));
        }
        assert!(transition(Merge, Waiting, QueueEvent::Refused).is_err());
        for s in [Landed, Failed, Cancelled] {
            for ev in [
                QueueEvent::Start,
                QueueEvent::Withdrawn,
                QueueEvent::BuildGreen,
            ] {
                assert!(transition(Merge, s, ev).is_err(), "{s:?} {ev:?}");
            }
        }
    }

    #[test]
    fn a_stale_build_result_does_not_apply_to_a_waiting_entry() {
        assert!(transition(Merge, Waiting, QueueEvent::BuildGreen).is_err());
        assert!(transition(Merge, Landing, QueueEvent::BuildRed).is_err());
    }

    #[test]
    fn trys_start_beside_merges_and_merges_are_left_to_the_pipeline() {
        let entries = vec![
            entry(1, Merge, Building, 0),
            entry(2, Merge, Waiting, 5),
            entry(3, Try, Waiting, 0),
        ];
        assert_eq!(to_start(&entries, 4), vec![3]);
        let entries = vec![entry(2, Merge, Waiting, 5), entry(4, Merge, Waiting, 0)];
        assert_eq!(to_start(&entries, 4), Vec::<i64>::new());
    }

    #[test]
    fn test_builds_respect_the_cap_and_approved_pull_requests_go_first() {
        use QueueKind::Test;
        let mut approved = entry(9, Merge, Building, 0);
        approved.pr = PrNumber(3);
        let entries = vec![
            approved,
            entry(1, Test, Building, 0),
            entry(2, Test, Waiting, 0),
            entry(3, Test, Waiting, 0),
            entry(4, Test, Waiting, 0),
        ];
        // Cap 3, one running: two start, the approved pull request (#3) first.
        assert_eq!(to_start(&entries, 3), vec![3, 2]);
        assert_eq!(to_start(&entries, 1), Vec::<i64>::new());
        assert_eq!(to_start(&entries, 2), vec![3]);
        assert_eq!(
            transition(Test, Building, QueueEvent::BuildGreen),
            Ok(Landed)
        );
        assert_eq!(
            transition(Test, Building, QueueEvent::TargetMoved),
            Ok(Waiting)
        );
        assert_eq!(staging_branch(&entry(5, Test, Waiting, 0)), "greg/test/5");
    }

    #[test]
    fn positions_put_the_in_flight_merge_first() {
        let entries = vec![
            entry(1, Merge, Waiting, 9),
            entry(2, Merge, Landing, 0),
            entry(3, Try, Building, 0),
            entry(4, Merge, Waiting, 0),
        ];
        assert_eq!(positions(&entries), vec![(2, 1), (1, 2), (4, 3)]);
        assert_eq!(position_of(&entries, 4), Some(3));
        assert_eq!(position_of(&entries, 3), None, "try entries have no place");
    }

    #[test]
    fn resume_redoes_the_persisted_step() {
        let mut e = entry(1, Merge, Staging, 0);
        assert_eq!(resume_step(&e), ResumeStep::Restage);
        e.state = Building;
        assert_eq!(resume_step(&e), ResumeStep::Restage);
        e.staging_sha = Some(Sha::parse(&"b".repeat(40)).expect("sha"));
        assert_eq!(resume_step(&e), ResumeStep::EnsureBuild);
        e.state = Landing;
        assert_eq!(resume_step(&e), ResumeStep::Land);
        e.state = Waiting;
        assert_eq!(resume_step(&e), ResumeStep::Wait);
    }

    #[test]
    fn staging_branches_are_per_queue_for_merges_and_per_pr_for_trys() {
        assert_eq!(
            staging_branch(&entry(7, Merge, Waiting, 0)),
            "greg/staging/main/7"
        );
        assert_eq!(staging_branch(&entry(7, Try, Waiting, 0)), "greg/try/7");
    }
}
