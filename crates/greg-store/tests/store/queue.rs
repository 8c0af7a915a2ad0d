//! The merge queue: one active entry per (repo, pr, kind), queue order, updates that never
//! reopen a finished entry, look-up by staging build, finished entries, tree closures,
//! restarts and corrupt rows.

use crate::common::{Synchronize, run_on_all_backends, run_on_persistent_backends, synchronize};
use greg_core::{Login, PrNumber, RepoName, Sha};
use greg_store::{
    NewQueueEntry, QueueChange, QueueEntry, QueueInsert, QueueKind, QueueState, Store, StoreError,
    TreeClosure,
};
use std::collections::HashSet;

/// "@octocat please" on the fixture's pull request, approved at `now_ms`.
fn merge_request(fx: &Synchronize, now_ms: i64) -> NewQueueEntry {
    NewQueueEntry {
        repo: fx.repo.clone(),
        pr: fx.pr,
        kind: QueueKind::Merge,
        target: fx.target.clone(),
        head_sha: fx.head.clone(),
        approver: Login::from("octocat"),
        command: "please".to_owned(),
        priority: 0,
        now_ms,
    }
}

/// Another pull request of the fixture's repository, into the same target.
fn other_pr(fx: &Synchronize, pr: u64, priority: i32, now_ms: i64) -> NewQueueEntry {
    NewQueueEntry {
        pr: PrNumber(pr),
        priority,
        command: format!("please p={priority}"),
        ..merge_request(fx, now_ms)
    }
}

fn sha(n: u64) -> Sha {
    Sha::parse(&format!("{n:040x}")).expect("sha")
}

fn created(insert: QueueInsert) -> QueueEntry {
    match insert {
        QueueInsert::Created(entry) => entry,
        QueueInsert::Exists(entry) => panic!("expected a new entry, found {entry:?}"),
    }
}

async fn enqueue(store: &Store, new: &NewQueueEntry) -> QueueEntry {
    created(store.enqueue(new).await.expect("enqueued"))
}

async fn set_state(store: &Store, id: i64, state: QueueState, now_ms: i64) -> QueueEntry {
    let change = QueueChange {
        state: Some(state),
        ..QueueChange::default()
    };
    store
        .update_queue_entry(id, &change, now_ms)
        .await
        .expect("updated")
}

fn ids(entries: &[QueueEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn a_new_entry_is_waiting_and_round_trips() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let mut new = merge_request(&fx, 1_700_000_000_000);
        new.priority = 2;
        new.command = "please p=2".to_owned();
        let entry = enqueue(&store, &new).await;
        assert_eq!(entry.repo, fx.repo);
        assert_eq!(entry.pr, PrNumber(2));
        assert_eq!(entry.kind, QueueKind::Merge);
        assert_eq!(entry.target, "master");
        assert_eq!(entry.head_sha, fx.head);
        assert_eq!(entry.approver.as_str(), "octocat");
        assert_eq!(entry.command, "please p=2");
        assert_eq!(entry.priority, 2);
        assert_eq!(entry.approved_ms, 1_700_000_000_000);
        assert_eq!(entry.state, QueueState::Waiting);
        assert_eq!(entry.base_sha, None);
        assert_eq!(entry.staging_sha, None);
        assert_eq!(entry.build_id, None);
        assert_eq!(entry.attempts, 0);
        assert_eq!(entry.reason, None);
        assert_eq!(entry.created_ms, 1_700_000_000_000);
        assert_eq!(entry.updated_ms, 1_700_000_000_000);
        assert_eq!(
            store.queue_entry(entry.id).await.expect("read"),
            Some(entry.clone())
        );
        assert_eq!(store.queue_entry(entry.id + 1).await.expect("read"), None);
        assert_eq!(
            store
                .active_queue_entry(&fx.repo, fx.pr, QueueKind::Merge)
                .await
                .expect("read"),
            Some(entry.clone())
        );
        assert_eq!(
            store
                .active_queue_entry(&fx.repo, fx.pr, QueueKind::Try)
                .await
                .expect("read"),
            None
        );

        // The engine shows entries as JSON: kinds and states as stored.
        let json = serde_json::to_value(&entry).expect("serializes");
        assert_eq!(json["kind"], "merge");
        assert_eq!(json["state"], "waiting");
        assert_eq!(json["pr"], 2);
        assert_eq!(json["head_sha"], fx.head.as_str());
    })
    .await;
}

#[tokio::test]
async fn a_second_request_finds_the_active_entry_and_writes_nothing() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let first = enqueue(&store, &merge_request(&fx, 1)).await;

        // "@someone please p=5" again, later, on a new head: the first request stands.
        let mut again = merge_request(&fx, 2);
        again.priority = 5;
        again.approver = Login::from("hubot");
        again.head_sha = fx.previous.clone();
        match store.enqueue(&again).await.expect("enqueued") {
            QueueInsert::Exists(existing) => assert_eq!(existing, first),
            other => panic!("expected the existing entry, got {other:?}"),
        }

        // A try of the same pull request and a merge of another are entries of their own.
        let mut try_it = merge_request(&fx, 3);
        try_it.kind = QueueKind::Try;
        let try_it = enqueue(&store, &try_it).await;
        let other = enqueue(&store, &other_pr(&fx, 3, 0, 4)).await;
        let distinct: HashSet<i64> = [first.id, try_it.id, other.id].into();
        assert_eq!(distinct.len(), 3);

        let for_pr = store
            .active_queue_entries_for_pr(&fx.repo, fx.pr)
            .await
            .expect("read");
        assert_eq!(ids(&for_pr), [first.id, try_it.id]);
    })
    .await;
}

#[tokio::test]
async fn the_queue_is_ordered_by_priority_then_approval_time_then_id() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let late_low = enqueue(&store, &other_pr(&fx, 10, 0, 300)).await;
        let early_low = enqueue(&store, &other_pr(&fx, 11, 0, 100)).await;
        let high = enqueue(&store, &other_pr(&fx, 12, 5, 400)).await;
        let tie_a = enqueue(&store, &other_pr(&fx, 13, 1, 200)).await;
        let tie_b = enqueue(&store, &other_pr(&fx, 14, 1, 200)).await;
        let negative = enqueue(&store, &other_pr(&fx, 15, -1, 1)).await;

        // Not in this queue: another target, another repository, a finished entry.
        let mut elsewhere = other_pr(&fx, 20, 9, 1);
        elsewhere.target = "release".to_owned();
        let elsewhere = enqueue(&store, &elsewhere).await;
        let mut other_repo = other_pr(&fx, 21, 9, 1);
        other_repo.repo = RepoName::parse("Codertocat/Another").expect("repo");
        let other_repo = enqueue(&store, &other_repo).await;
        let landed = enqueue(&store, &other_pr(&fx, 22, 9, 1)).await;
        set_state(&store, landed.id, QueueState::Landed, 500).await;

        // Every active state stays in the queue.
        set_state(&store, high.id, QueueState::Building, 600).await;
        set_state(&store, tie_b.id, QueueState::Staging, 600).await;

        let queue = store.queue(&fx.repo, "master").await.expect("queue");
        assert_eq!(
            ids(&queue),
            [
                high.id,
                tie_a.id,
                tie_b.id,
                early_low.id,
                late_low.id,
                negative.id
            ]
        );
        assert_eq!(
            ids(&store.queue(&fx.repo, "release").await.expect("queue")),
            [elsewhere.id]
        );
        assert!(
            store
                .queue(&fx.repo, "nope")
                .await
                .expect("queue")
                .is_empty()
        );

        // All repositories: by repository and target, then in queue order.
        let all = store.active_queue_entries().await.expect("all");
        assert_eq!(
            ids(&all),
            [
                other_repo.id,
                high.id,
                tie_a.id,
                tie_b.id,
                early_low.id,
                late_low.id,
                negative.id,
                elsewhere.id
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn only_a_finished_entry_lets_the_pull_request_queue_again() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        for (i, state) in QueueState::ALL.into_iter().enumerate() {
            // A pull request per state, so the rounds do not meet.
            let new = other_pr(&fx, 100 + i as u64, 0, 1);
            let first = enqueue(&store, &new).await;
            if state != QueueState::Waiting {
                set_state(&store, first.id, state, 2).await;
            }
            let second = store.enqueue(&new).await.expect("enqueued");
            match (state.is_active(), second) {
                (true, QueueInsert::Exists(existing)) => assert_eq!(existing.id, first.id),
                (false, QueueInsert::Created(requeued)) => {
                    assert_ne!(requeued.id, first.id);
                    assert_eq!(requeued.state, QueueState::Waiting);
                    let active = store
                        .active_queue_entry(&fx.repo, new.pr, QueueKind::Merge)
                        .await
                        .expect("read");
                    assert_eq!(active.map(|e| e.id), Some(requeued.id), "{state}");
                }
                (active, other) => panic!("{state} (active: {active}) gave {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_create_exactly_one_entry() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                let new = merge_request(&fx, i);
                tokio::spawn(async move { store.enqueue(&new).await.expect("enqueued") })
            })
            .collect();
        let mut created = 0;
        let mut seen = HashSet::new();
        for task in tasks {
            let insert = task.await.expect("task");
            created += usize::from(matches!(insert, QueueInsert::Created(_)));
            seen.insert(insert.entry().id);
        }
        assert_eq!(created, 1);
        assert_eq!(seen.len(), 1, "every caller sees the same entry");
        assert_eq!(store.active_queue_entries().await.expect("all").len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_database_create_exactly_one_entry() {
    run_on_persistent_backends(|db| async move {
        let fx = synchronize();
        let (a, b) = (db.connect().await, db.connect().await);
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let new = merge_request(&fx, i);
                tokio::spawn(async move { store.enqueue(&new).await.expect("enqueued") })
            })
            .collect();
        let mut created = 0;
        let mut seen = HashSet::new();
        for task in tasks {
            let insert = task.await.expect("task");
            created += usize::from(matches!(insert, QueueInsert::Created(_)));
            seen.insert(insert.into_entry().id);
        }
        assert_eq!((created, seen.len()), (1, 1));
        a.close().await;
        b.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_entry_walks_from_waiting_to_landed() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let entry = enqueue(&store, &merge_request(&fx, 10)).await;

        let staging = store
            .update_queue_entry(
                entry.id,
                &QueueChange {
                    state: Some(QueueState::Staging),
                    base_sha: Some(sha(0xb1)),
                    attempts: Some(1),
                    ..QueueChange::default()
                },
                20,
            )
            .await
            .expect("staging");
        assert_eq!(staging.state, QueueState::Staging);
        assert_eq!(staging.base_sha, Some(sha(0xb1)));
        assert_eq!(staging.attempts, 1);
        assert_eq!(staging.updated_ms, 20);
        assert_eq!(staging.created_ms, 10);
        assert_eq!(staging.approved_ms, 10);

        let building = store
            .update_queue_entry(
                entry.id,
                &QueueChange {
                    state: Some(QueueState::Building),
                    staging_sha: Some(sha(0x5a)),
                    build_id: Some(77),
                    ..QueueChange::default()
                },
                30,
            )
            .await
            .expect("building");
        assert_eq!(building.state, QueueState::Building);
        assert_eq!(building.base_sha, Some(sha(0xb1)), "kept");
        assert_eq!(building.staging_sha, Some(sha(0x5a)));
        assert_eq!(building.build_id, Some(77));
        assert_eq!(building.attempts, 1, "kept");

        // A change of priority alone leaves the state.
        let bumped = store
            .update_queue_entry(
                entry.id,
                &QueueChange {
                    priority: Some(3),
                    ..QueueChange::default()
                },
                35,
            )
            .await
            .expect("bumped");
        assert_eq!(
            (bumped.state, bumped.priority, bumped.updated_ms),
            (QueueState::Building, 3, 35)
        );

        set_state(&store, entry.id, QueueState::Landing, 40).await;
        let landed = store
            .update_queue_entry(
                entry.id,
                &QueueChange {
                    state: Some(QueueState::Landed),
                    reason: Some(format!("landed as {}", sha(0x5a))),
                    ..QueueChange::default()
                },
                50,
            )
            .await
            .expect("landed");
        assert_eq!(landed.state, QueueState::Landed);
        assert_eq!(
            landed.reason.as_deref(),
            Some("landed as 000000000000000000000000000000000000005a")
        );
        assert_eq!(landed.updated_ms, 50);
        assert_eq!(
            store.queue_entry(entry.id).await.expect("read"),
            Some(landed)
        );
        assert!(
            store
                .queue(&fx.repo, "master")
                .await
                .expect("queue")
                .is_empty()
        );
        assert_eq!(
            store
                .active_queue_entry(&fx.repo, fx.pr, QueueKind::Merge)
                .await
                .expect("read"),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn a_finished_entry_never_becomes_active_again() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let finished = QueueState::ALL.into_iter().filter(|s| !s.is_active());
        for (i, done) in finished.enumerate() {
            let entry = enqueue(&store, &other_pr(&fx, 200 + i as u64, 0, 1)).await;
            let before = set_state(&store, entry.id, done, 2).await;
            for active in QueueState::ALL.into_iter().filter(QueueState::is_active) {
                let change = QueueChange {
                    state: Some(active),
                    priority: Some(9),
                    reason: Some("requeued".to_owned()),
                    clear_staging: true,
                    ..QueueChange::default()
                };
                let err = store
                    .update_queue_entry(entry.id, &change, 3)
                    .await
                    .expect_err("refused");
                assert!(
                    matches!(
                        err,
                        StoreError::InvalidTransition { what: "queue entry", id, from, to }
                            if id == entry.id && from == done.as_str() && to == active.as_str()
                    ),
                    "{err:?}"
                );
                assert_eq!(
                    err.to_string(),
                    format!(
                        "queue entry {} is {done} and cannot become {active}",
                        entry.id
                    )
                );
                let after = store.queue_entry(entry.id).await.expect("read");
                assert_eq!(after.as_ref(), Some(&before), "nothing written");
            }

            // Finished to finished, and a reason on a finished entry, are allowed.
            let failed = store
                .update_queue_entry(
                    entry.id,
                    &QueueChange {
                        state: Some(QueueState::Cancelled),
                        reason: Some("closed".to_owned()),
                        ..QueueChange::default()
                    },
                    4,
                )
                .await
                .expect("finished to finished");
            assert_eq!(failed.state, QueueState::Cancelled);
            assert_eq!(failed.reason.as_deref(), Some("closed"));
        }
    })
    .await;
}

#[tokio::test]
async fn updating_an_unknown_entry_is_not_found() {
    run_on_all_backends(|store| async move {
        let err = store
            .update_queue_entry(12_345, &QueueChange::default(), 1)
            .await
            .expect_err("unknown");
        assert!(
            matches!(
                err,
                StoreError::NotFound {
                    what: "queue entry",
                    id: 12_345
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "queue entry 12345 not found");
    })
    .await;
}

#[tokio::test]
async fn clear_staging_empties_the_staging_fields_before_setting_new_ones() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let entry = enqueue(&store, &merge_request(&fx, 1)).await;
        let staged = QueueChange {
            state: Some(QueueState::Building),
            base_sha: Some(sha(1)),
            staging_sha: Some(sha(2)),
            build_id: Some(3),
            attempts: Some(1),
            ..QueueChange::default()
        };
        store
            .update_queue_entry(entry.id, &staged, 2)
            .await
            .expect("staged");

        // The target moved: back to waiting, staging forgotten.
        let reset = store
            .update_queue_entry(
                entry.id,
                &QueueChange {
                    state: Some(QueueState::Waiting),
                    clear_staging: true,
                    reason: Some("master moved".to_owned()),
                    ..QueueChange::default()
                },
                3,
            )
            .await
            .expect("reset");
        assert_eq!(reset.state, QueueState::Waiting);
        assert_eq!(
            (reset.base_sha, reset.staging_sha, reset.build_id),
            (None, None, None)
        );
        assert_eq!(reset.attempts, 1, "attempts are kept");
        assert_eq!(reset.reason.as_deref(), Some("master moved"));

        // Clear and set in one change: the new values win.
        let restaged = store
            .update_queue_entry(
                entry.id,
                &QueueChange {
                    state: Some(QueueState::Staging),
                    clear_staging: true,
                    base_sha: Some(sha(4)),
                    attempts: Some(2),
                    ..QueueChange::default()
                },
                4,
            )
            .await
            .expect("restaged");
        assert_eq!(
            (restaged.base_sha, restaged.staging_sha, restaged.build_id),
            (Some(sha(4)), None, None)
        );
        assert_eq!(restaged.attempts, 2);
    })
    .await;
}

#[tokio::test]
async fn an_entry_is_found_by_its_staging_build() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let with_build = |build_id| QueueChange {
            state: Some(QueueState::Building),
            build_id: Some(build_id),
            ..QueueChange::default()
        };
        let first = enqueue(&store, &merge_request(&fx, 1)).await;
        store
            .update_queue_entry(first.id, &with_build(41), 2)
            .await
            .expect("building");
        let other = enqueue(&store, &other_pr(&fx, 3, 0, 1)).await;
        store
            .update_queue_entry(other.id, &with_build(42), 2)
            .await
            .expect("building");

        let found = store.queue_entry_by_build(41).await.expect("read");
        assert_eq!(found.map(|e| e.id), Some(first.id));
        assert_eq!(store.queue_entry_by_build(43).await.expect("read"), None);

        // Finished entries are found too, the newest first.
        set_state(&store, first.id, QueueState::Failed, 3).await;
        let found = store.queue_entry_by_build(41).await.expect("read");
        assert_eq!(
            found.map(|e| (e.id, e.state)),
            Some((first.id, QueueState::Failed))
        );
        let second = enqueue(&store, &merge_request(&fx, 4)).await;
        store
            .update_queue_entry(second.id, &with_build(41), 5)
            .await
            .expect("building");
        let found = store.queue_entry_by_build(41).await.expect("read");
        assert_eq!(found.map(|e| e.id), Some(second.id));
    })
    .await;
}

#[tokio::test]
async fn finished_entries_are_listed_newest_first_since_a_time() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let mut finished = Vec::new();
        for (i, state) in [
            QueueState::Landed,
            QueueState::Failed,
            QueueState::Cancelled,
            QueueState::Landed,
        ]
        .into_iter()
        .enumerate()
        {
            let entry = enqueue(&store, &other_pr(&fx, 300 + i as u64, 0, 1)).await;
            finished.push(set_state(&store, entry.id, state, 100 * (i as i64 + 1)).await);
        }
        let still_waiting = enqueue(&store, &other_pr(&fx, 400, 0, 1)).await;
        let mut elsewhere = other_pr(&fx, 401, 0, 1);
        elsewhere.repo = RepoName::parse("Codertocat/Another").expect("repo");
        let elsewhere = enqueue(&store, &elsewhere).await;
        set_state(&store, elsewhere.id, QueueState::Landed, 500).await;

        // A later reason does not move the finishing time.
        store
            .update_queue_entry(
                finished[0].id,
                &QueueChange {
                    reason: Some("reported".to_owned()),
                    ..QueueChange::default()
                },
                900,
            )
            .await
            .expect("reason");

        let all = store
            .finished_queue_entries(&fx.repo, 0, 10)
            .await
            .expect("finished");
        assert_eq!(
            ids(&all),
            [
                finished[3].id,
                finished[2].id,
                finished[1].id,
                finished[0].id
            ]
        );
        assert!(!ids(&all).contains(&still_waiting.id));
        let since = store
            .finished_queue_entries(&fx.repo, 200, 10)
            .await
            .expect("finished");
        assert_eq!(
            ids(&since),
            [finished[3].id, finished[2].id, finished[1].id]
        );
        let limited = store
            .finished_queue_entries(&fx.repo, 0, 2)
            .await
            .expect("finished");
        assert_eq!(ids(&limited), [finished[3].id, finished[2].id]);
        assert!(
            store
                .finished_queue_entries(&fx.repo, 0, 0)
                .await
                .expect("finished")
                .is_empty()
        );
        assert!(
            store
                .finished_queue_entries(&fx.repo, 0, -1)
                .await
                .expect("finished")
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn tree_closures_are_set_replaced_read_and_cleared() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        assert_eq!(
            store.tree_closure(&fx.repo, "master").await.expect("read"),
            None
        );

        let octocat = Login::from("octocat");
        store
            .set_tree_closure(&fx.repo, "master", 5, &octocat, 100)
            .await
            .expect("closed");
        assert_eq!(
            store.tree_closure(&fx.repo, "master").await.expect("read"),
            Some(TreeClosure {
                repo: fx.repo.clone(),
                target: "master".to_owned(),
                priority: 5,
                closed_by: octocat.clone(),
                since_ms: 100,
            })
        );
        // Another target and another repository stay open.
        assert_eq!(
            store.tree_closure(&fx.repo, "release").await.expect("read"),
            None
        );
        let another = RepoName::parse("Codertocat/Another").expect("repo");
        assert_eq!(
            store.tree_closure(&another, "master").await.expect("read"),
            None
        );

        // Closing again replaces the closure.
        store
            .set_tree_closure(&fx.repo, "master", 10, &Login::from("hubot"), 200)
            .await
            .expect("closed again");
        let closure = store
            .tree_closure(&fx.repo, "master")
            .await
            .expect("read")
            .expect("closed");
        assert_eq!(
            (
                closure.priority,
                closure.closed_by.as_str(),
                closure.since_ms
            ),
            (10, "hubot", 200)
        );

        // Opening is idempotent.
        store
            .clear_tree_closure(&fx.repo, "master")
            .await
            .expect("opened");
        assert_eq!(
            store.tree_closure(&fx.repo, "master").await.expect("read"),
            None
        );
        store
            .clear_tree_closure(&fx.repo, "master")
            .await
            .expect("opened again");
    })
    .await;
}

#[tokio::test]
async fn out_of_range_and_nul_inputs_are_refused() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let mut huge = merge_request(&fx, 1);
        huge.pr = PrNumber(u64::MAX);
        let err = store.enqueue(&huge).await.expect_err("too large");
        assert!(matches!(err, StoreError::OutOfRange { .. }), "{err:?}");
        assert_eq!(
            store
                .active_queue_entry(&fx.repo, PrNumber(u64::MAX), QueueKind::Merge)
                .await
                .expect("read"),
            None
        );

        let mut nul = merge_request(&fx, 1);
        nul.command = "please\0".to_owned();
        let err = store.enqueue(&nul).await.expect_err("nul");
        assert!(
            matches!(err, StoreError::InvalidText { what: "command" }),
            "{err:?}"
        );
        let err = store
            .set_tree_closure(&fx.repo, "ma\0ster", 1, &Login::from("octocat"), 1)
            .await
            .expect_err("nul");
        assert!(
            matches!(err, StoreError::InvalidText { what: "target" }),
            "{err:?}"
        );
        assert!(store.active_queue_entries().await.expect("all").is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_restart_sees_the_queue_and_the_closures() {
    run_on_persistent_backends(|db| async move {
        let fx = synchronize();
        let store = db.connect().await;
        let waiting = enqueue(&store, &other_pr(&fx, 5, 0, 1)).await;
        let building = enqueue(&store, &other_pr(&fx, 6, 1, 2)).await;
        let building = store
            .update_queue_entry(
                building.id,
                &QueueChange {
                    state: Some(QueueState::Building),
                    build_id: Some(9),
                    ..QueueChange::default()
                },
                3,
            )
            .await
            .expect("building");
        store
            .set_tree_closure(&fx.repo, "master", 1, &Login::from("octocat"), 4)
            .await
            .expect("closed");
        store.close().await;

        let store = db.connect().await;
        assert_eq!(
            store.active_queue_entries().await.expect("all"),
            [building.clone(), waiting.clone()]
        );
        assert_eq!(
            store
                .tree_closure(&fx.repo, "master")
                .await
                .expect("read")
                .map(|c| c.priority),
            Some(1)
        );
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn corrupt_queue_rows_are_errors_not_panics() {
    run_on_persistent_backends(|db| async move {
        let fx = synchronize();
        let store = db.connect().await;
        let entry = enqueue(&store, &merge_request(&fx, 1)).await;

        db.execute("UPDATE queue_entries SET head_sha = 'not-a-sha'")
            .await;
        let err = store.queue_entry(entry.id).await.expect_err("corrupt");
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    table: "queue_entries",
                    column: "head_sha"
                }
            ),
            "{err:?}"
        );

        db.execute(
            "UPDATE queue_entries SET head_sha = '0000000000000000000000000000000000000001', \
             staging_sha = 'xyz'",
        )
        .await;
        let err = store.queue(&fx.repo, "master").await.expect_err("corrupt");
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    column: "staging_sha",
                    ..
                }
            ),
            "{err:?}"
        );

        db.execute("UPDATE queue_entries SET staging_sha = NULL, priority = 4294967296")
            .await;
        let err = store.active_queue_entries().await.expect_err("corrupt");
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    column: "priority",
                    ..
                }
            ),
            "{err:?}"
        );

        db.execute("UPDATE queue_entries SET priority = 0, pr = -2")
            .await;
        let err = store.queue_entry_by_build(0).await.map(|_| ());
        assert!(err.is_ok(), "no entry has build 0");
        let err = store.queue_entry(entry.id).await.expect_err("corrupt");
        assert!(
            matches!(err, StoreError::Corrupt { column: "pr", .. }),
            "{err:?}"
        );

        db.execute(
            "INSERT INTO tree_closures (repo, target, priority, closed_by, since_ms) \
             VALUES ('codertocat/hello-world', 'master', -4294967296, 'octocat', 1)",
        )
        .await;
        let err = store
            .tree_closure(&fx.repo, "master")
            .await
            .expect_err("corrupt");
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    table: "tree_closures",
                    column: "priority"
                }
            ),
            "{err:?}"
        );
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_target_remembers_its_test_merged_entries_even_when_finished() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let has = |kind| {
            let store = store.clone();
            let repo = fx.repo.clone();
            async move {
                store
                    .has_queue_entries_for_target(&repo, "master", kind)
                    .await
                    .expect("read")
            }
        };
        assert!(!has(QueueKind::Test).await);
        let test = NewQueueEntry {
            kind: QueueKind::Test,
            command: "test_merged".to_owned(),
            ..merge_request(&fx, 1_000)
        };
        let entry = enqueue(&store, &test).await;
        assert_eq!(entry.kind, QueueKind::Test);
        assert!(has(QueueKind::Test).await);
        assert!(!has(QueueKind::Merge).await);
        set_state(&store, entry.id, QueueState::Cancelled, 2_000).await;
        assert!(has(QueueKind::Test).await, "finished entries count too");
        assert!(
            !store
                .has_queue_entries_for_target(&fx.repo, "develop", QueueKind::Test)
                .await
                .expect("read")
        );
    })
    .await;
}

/// `(queue_entries, builds)` of [`Store::old_head_activity`] for a new head `head` of the
/// fixture's pull request.
async fn old_head(
    store: &Store,
    fx: &Synchronize,
    head: &Sha,
    branch: Option<&str>,
) -> (bool, bool) {
    let a = store
        .old_head_activity(&fx.repo, fx.pr, branch, head)
        .await
        .expect("read");
    (a.queue_entries, a.builds)
}

#[tokio::test]
async fn a_new_head_learns_in_one_query_whether_an_older_head_is_in_flight() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let branch = Some(fx.branch.as_str());
        let newer = sha(7);
        assert_eq!(old_head(&store, &fx, &newer, branch).await, (false, false));

        // A running test build of the old head: a newer head finds it, the same head does not.
        store
            .insert_build(&crate::common::test_build(&fx, 1))
            .await
            .expect("stored");
        assert_eq!(old_head(&store, &fx, &newer, branch).await, (false, true));
        assert_eq!(
            old_head(&store, &fx, &fx.head, branch).await,
            (false, false)
        );

        // An entry in the merge queue for the old head.
        let entry = enqueue(&store, &merge_request(&fx, 1)).await;
        assert_eq!(old_head(&store, &fx, &newer, branch).await, (true, true));
        assert_eq!(
            old_head(&store, &fx, &fx.head, branch).await,
            (false, false)
        );

        // Finished ones do not count.
        set_state(&store, entry.id, QueueState::Cancelled, 2).await;
        let ended = greg_store::BuildChange {
            state: Some(greg_store::BuildRunState::Success),
            ..Default::default()
        };
        for b in store
            .active_builds_for_pr(&fx.repo, fx.pr)
            .await
            .expect("read")
        {
            store.update_build(b.id, &ended, 3).await.expect("updated");
        }
        assert_eq!(old_head(&store, &fx, &newer, branch).await, (false, false));

        // A push build of the head branch (no pull request): found through the branch only,
        // so not for a fork's pull request (whose branch is in another repository).
        let mut pushed = crate::common::test_build(&fx, 4);
        pushed.pr = None;
        pushed.sha = sha(8);
        store.insert_build(&pushed).await.expect("stored");
        assert_eq!(old_head(&store, &fx, &newer, branch).await, (false, true));
        assert_eq!(old_head(&store, &fx, &newer, None).await, (false, false));
    })
    .await;
}
