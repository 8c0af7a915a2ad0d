//! The transactional outbox: a queue-state change and its effects are written together or not
//! at all (compare-and-swap on the state), one effect per outcome key, due effects in order,
//! retries and dead effects.

use crate::common::{run_on_all_backends, synchronize};
use greg_core::Login;
use greg_store::{
    EffectOutcome, NewEffect, NewQueueEntry, QueueChange, QueueInsert, QueueKind, QueueMove,
    QueueState,
};

fn effect(fx: &crate::common::Synchronize, key: &str) -> NewEffect {
    NewEffect {
        repo: fx.repo.clone(),
        key: key.to_owned(),
        kind: "comment".to_owned(),
        payload: format!("{{\"effect\":\"comment\",\"key\":\"{key}\"}}"),
    }
}

fn moved_to(state: QueueState) -> QueueChange {
    QueueChange {
        reason: Some("landed".to_owned()),
        ..QueueChange {
            state: Some(state),
            ..QueueChange::default()
        }
    }
}

#[tokio::test]
async fn a_transition_writes_its_effects_once_and_a_lost_race_writes_nothing() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let new = NewQueueEntry {
            repo: fx.repo.clone(),
            pr: fx.pr,
            kind: QueueKind::Merge,
            target: fx.target.clone(),
            head_sha: fx.head.clone(),
            approver: Login::from("octocat"),
            command: "please".to_owned(),
            priority: 0,
            now_ms: 1,
        };
        let QueueInsert::Created(entry) = store.enqueue(&new).await.expect("enqueued") else {
            panic!("a new entry");
        };
        let effects = [
            effect(&fx, "queue:1:finish:comment"),
            effect(&fx, "queue:1:finish:status"),
        ];
        let moved = store
            .transition_queue_entry(
                entry.id,
                QueueState::Waiting,
                &moved_to(QueueState::Cancelled),
                &effects,
                10,
            )
            .await
            .expect("transition");
        let moved = moved.expect("the entry was waiting");
        assert_eq!(moved.state, QueueState::Cancelled);
        assert_eq!(moved.reason.as_deref(), Some("landed"));

        // The same step again (a repeated delivery): the state is no longer `waiting`, so
        // nothing is written, not even the effects.
        let again = store
            .transition_queue_entry(
                entry.id,
                QueueState::Waiting,
                &moved_to(QueueState::Failed),
                &[effect(&fx, "queue:1:other")],
                11,
            )
            .await
            .expect("transition");
        assert_eq!(again, None);
        let stored = store.effects(&fx.repo).await.expect("effects");
        assert_eq!(
            stored.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["queue:1:finish:comment", "queue:1:finish:status"]
        );
        assert_eq!(
            store
                .queue_entry(entry.id)
                .await
                .expect("read")
                .map(|e| e.state),
            Some(QueueState::Cancelled)
        );

        // A key recorded twice is kept once.
        assert_eq!(
            store
                .add_effects(&[effect(&fx, "queue:1:finish:comment")], 12)
                .await
                .expect("add"),
            0
        );
        assert_eq!(store.effects(&fx.repo).await.expect("effects").len(), 2);
    })
    .await;
}

#[tokio::test]
async fn due_effects_come_in_order_and_retries_wait_for_their_time() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        store
            .add_effects(&[effect(&fx, "a"), effect(&fx, "b"), effect(&fx, "c")], 100)
            .await
            .expect("add");
        let due = store.due_effects(&fx.repo, 100, 10).await.expect("due");
        assert_eq!(
            due.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(store.pending_effects().await.expect("count"), 3);

        store
            .finish_effect(due[0].id, &EffectOutcome::Done, 101)
            .await
            .expect("done");
        let retry = EffectOutcome::Retry {
            next_attempt_ms: 500,
            error: "transient: 502".to_owned(),
        };
        store
            .finish_effect(due[1].id, &retry, 101)
            .await
            .expect("retry");
        let dead = EffectOutcome::Dead {
            error: "permission denied".to_owned(),
        };
        store
            .finish_effect(due[2].id, &dead, 101)
            .await
            .expect("dead");

        assert!(
            store
                .due_effects(&fx.repo, 499, 10)
                .await
                .expect("due")
                .is_empty()
        );
        assert_eq!(
            store.repos_with_due_effects(499).await.expect("repos"),
            vec![]
        );
        let later = store.due_effects(&fx.repo, 500, 10).await.expect("due");
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].key, "b");
        assert_eq!(later[0].attempts, 1);
        assert_eq!(later[0].last_error.as_deref(), Some("transient: 502"));
        assert_eq!(
            store.repos_with_due_effects(500).await.expect("repos"),
            vec![fx.repo.clone()]
        );
        let all = store.effects(&fx.repo).await.expect("all");
        let states: Vec<_> = all
            .iter()
            .map(|e| (e.key.as_str(), e.state.as_str()))
            .collect();
        assert_eq!(states, [("a", "done"), ("b", "pending"), ("c", "dead")]);
        assert_eq!(store.pending_effects().await.expect("count"), 1);
    })
    .await;
}

#[tokio::test]
async fn a_build_result_and_its_relay_are_written_once_while_the_build_is_active() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let build = match store
            .insert_build(&crate::common::test_build(&fx, 1))
            .await
            .expect("insert")
        {
            greg_store::BuildInsert::Created(b) => b,
            other => panic!("a new build, got {other:?}"),
        };
        let change = greg_store::BuildChange {
            state: Some(greg_store::BuildRunState::Success),
            url: Some("http://j/job/t/1/".to_owned()),
            ..Default::default()
        };
        let done = store
            .finish_build(
                build.id,
                &change,
                &[effect(&fx, "build:1:result:status")],
                5,
            )
            .await
            .expect("finish");
        let done = done.expect("the build was active");
        assert_eq!(done.state, greg_store::BuildRunState::Success);
        assert_eq!(done.url.as_deref(), Some("http://j/job/t/1/"));
        // The same result again (a replayed callback): nothing is written.
        let failed = greg_store::BuildChange {
            state: Some(greg_store::BuildRunState::Failure),
            ..Default::default()
        };
        let again = store
            .finish_build(build.id, &failed, &[effect(&fx, "build:1:other")], 6)
            .await
            .expect("finish");
        assert_eq!(again, None);
        let keys: Vec<String> = store
            .effects(&fx.repo)
            .await
            .expect("effects")
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["build:1:result:status"]);
        assert_eq!(
            store.build(build.id).await.expect("read").map(|b| b.state),
            Some(greg_store::BuildRunState::Success)
        );
    })
    .await;
}

#[tokio::test]
async fn a_candidate_moves_all_its_entries_or_none_and_keeps_its_place_in_the_pipeline() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let mut ids = Vec::new();
        for pr in 1..=3u64 {
            let new = NewQueueEntry {
                repo: fx.repo.clone(),
                pr: greg_core::PrNumber(pr),
                kind: QueueKind::Merge,
                target: fx.target.clone(),
                head_sha: fx.head.clone(),
                approver: Login::from("octocat"),
                command: "please".to_owned(),
                priority: 0,
                now_ms: 1,
            };
            let QueueInsert::Created(e) = store.enqueue(&new).await.expect("enqueued") else {
                panic!("a new entry");
            };
            ids.push(e.id);
        }
        // Entries 1 and 2 start as one candidate built on candidate 99.
        let start = QueueChange {
            state: Some(QueueState::Staging),
            candidate: Some(ids[0]),
            parent: Some(99),
            group: Some(ids[0]),
            ..QueueChange::default()
        };
        let mv = |id: i64, from: QueueState, change: &QueueChange| QueueMove {
            id,
            from,
            change: change.clone(),
        };
        let moves = [
            mv(ids[0], QueueState::Waiting, &start),
            mv(ids[1], QueueState::Waiting, &start),
        ];
        let moved = store
            .transition_queue_entries(&moves, &[effect(&fx, "cand:1:start")], 5)
            .await
            .expect("transition")
            .expect("both were waiting");
        assert_eq!(moved.len(), 2);
        for e in &moved {
            assert_eq!(
                (e.state, e.candidate, e.parent, e.group),
                (QueueState::Staging, Some(ids[0]), Some(99), Some(ids[0]))
            );
        }
        // One of them is no longer waiting: nothing moves, no effect is written.
        let moves = [
            mv(ids[2], QueueState::Waiting, &start),
            mv(ids[1], QueueState::Waiting, &start),
        ];
        let lost = store
            .transition_queue_entries(&moves, &[effect(&fx, "cand:3:start")], 6)
            .await
            .expect("transition");
        assert_eq!(lost, None);
        let third = store.queue_entry(ids[2]).await.expect("read").expect("row");
        assert_eq!((third.state, third.candidate), (QueueState::Waiting, None));
        assert_eq!(store.effects(&fx.repo).await.expect("effects").len(), 1);
        // Back to waiting (a reset): candidate and parent are cleared, the group stays.
        let reset = QueueChange {
            state: Some(QueueState::Waiting),
            clear_staging: true,
            ..QueueChange::default()
        };
        let moves = [
            mv(ids[0], QueueState::Staging, &reset),
            mv(ids[1], QueueState::Staging, &reset),
        ];
        let back = store
            .transition_queue_entries(&moves, &[], 7)
            .await
            .expect("transition")
            .expect("both were staging");
        for e in &back {
            assert_eq!(
                (e.state, e.candidate, e.parent, e.group),
                (QueueState::Waiting, None, None, Some(ids[0]))
            );
        }
    })
    .await;
}
