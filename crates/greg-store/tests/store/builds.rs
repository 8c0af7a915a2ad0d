//! Builds: one active build per (repo, sha, context), updates that never reopen a finished
//! build, look-ups by queue item and number, restarts, corrupt rows.

use crate::common::{run_on_all_backends, run_on_persistent_backends, synchronize, test_build};
use greg_core::{BuildContext, BuildNumber, JobName, PrNumber, QueueItemId, RepoName};
use greg_store::{BuildChange, BuildInsert, BuildRecord, BuildRunState, Store, StoreError};
use std::collections::HashSet;

fn created(insert: BuildInsert) -> BuildRecord {
    match insert {
        BuildInsert::Created(record) => record,
        BuildInsert::Exists(record) => panic!("expected a new build, found {record:?}"),
    }
}

async fn set_state(store: &Store, id: i64, state: BuildRunState, now_ms: i64) -> BuildRecord {
    let change = BuildChange {
        state: Some(state),
        ..BuildChange::default()
    };
    store
        .update_build(id, &change, now_ms)
        .await
        .expect("updated")
}

#[tokio::test]
async fn a_new_build_is_pending_and_round_trips() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let mut new = test_build(&fx, 1_700_000_000_000);
        new.context = BuildContext::Merge;
        new.job = JobName::from("folder/hello-world-merge");
        new.target = Some(fx.target.clone());
        let record = created(store.insert_build(&new).await.expect("inserted"));
        assert_eq!(record.repo, fx.repo);
        assert_eq!(record.pr, Some(PrNumber(2)));
        assert_eq!(record.sha, fx.head);
        assert_eq!(record.context, BuildContext::Merge);
        assert_eq!(record.builder, "jenkins");
        assert_eq!(record.job.as_str(), "folder/hello-world-merge");
        assert_eq!(record.branch, "changes");
        assert_eq!(record.target.as_deref(), Some("master"));
        assert_eq!(record.state, BuildRunState::Pending);
        assert_eq!(record.queue_item, None);
        assert_eq!(record.number, None);
        assert_eq!(record.url, None);
        assert_eq!(record.created_ms, 1_700_000_000_000);
        assert_eq!(record.updated_ms, 1_700_000_000_000);
        assert_eq!(
            store.build(record.id).await.expect("read"),
            Some(record.clone())
        );
        assert_eq!(store.build(record.id + 1).await.expect("read"), None);

        // A push build has no pull request.
        let mut push = test_build(&fx, 5);
        push.pr = None;
        push.sha = fx.previous.clone();
        let push = created(store.insert_build(&push).await.expect("inserted"));
        assert_eq!(push.pr, None);
        assert_eq!(push.target, None);
    })
    .await;
}

#[tokio::test]
async fn one_head_gets_one_active_build_per_context() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let first = created(
            store
                .insert_build(&test_build(&fx, 1))
                .await
                .expect("inserted"),
        );

        // A push and a synchronize of the same head: the second finds the first.
        let mut again = test_build(&fx, 2);
        again.pr = None;
        again.job = JobName::from("another-job");
        match store.insert_build(&again).await.expect("inserted") {
            BuildInsert::Exists(existing) => assert_eq!(existing, first),
            other => panic!("expected the existing build, got {other:?}"),
        }

        // Another context or another head is another build.
        let mut merge = test_build(&fx, 3);
        merge.context = BuildContext::Merge;
        let merge = created(store.insert_build(&merge).await.expect("inserted"));
        let mut older = test_build(&fx, 4);
        older.sha = fx.previous.clone();
        let older = created(store.insert_build(&older).await.expect("inserted"));
        let ids: HashSet<i64> = [first.id, merge.id, older.id].into();
        assert_eq!(ids.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn only_a_finished_build_lets_the_same_key_build_again() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        for (i, state) in BuildRunState::ALL.into_iter().enumerate() {
            // A head per state, so the rounds do not meet.
            let mut new = test_build(&fx, 1);
            new.sha = greg_core::Sha::parse(&format!("{:040x}", i + 1)).expect("sha");
            let first = created(store.insert_build(&new).await.expect("inserted"));
            set_state(&store, first.id, state, 2).await;
            let second = store.insert_build(&new).await.expect("inserted");
            match (state.is_active(), second) {
                (true, BuildInsert::Exists(existing)) => assert_eq!(existing.id, first.id),
                (false, BuildInsert::Created(retest)) => {
                    assert_ne!(retest.id, first.id);
                    let latest = store
                        .latest_build(&fx.repo, &new.sha, BuildContext::Test)
                        .await
                        .expect("latest");
                    assert_eq!(latest.map(|b| b.id), Some(retest.id), "{state}");
                }
                (active, other) => panic!("{state} (active: {active}) gave {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_create_exactly_one_build() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                let new = test_build(&fx, i);
                tokio::spawn(async move { store.insert_build(&new).await.expect("inserted") })
            })
            .collect();
        let mut created = 0;
        let mut ids = HashSet::new();
        for task in tasks {
            let insert = task.await.expect("task");
            if matches!(insert, BuildInsert::Created(_)) {
                created += 1;
            }
            ids.insert(insert.record().id);
        }
        assert_eq!(created, 1);
        assert_eq!(ids.len(), 1, "every caller sees the same build");
        assert_eq!(store.active_builds().await.expect("active").len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_database_create_exactly_one_build() {
    run_on_persistent_backends(|db| async move {
        let fx = synchronize();
        let (a, b) = (db.connect().await, db.connect().await);
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let new = test_build(&fx, i);
                tokio::spawn(async move { store.insert_build(&new).await.expect("inserted") })
            })
            .collect();
        let mut created = 0;
        let mut ids = HashSet::new();
        for task in tasks {
            let insert = task.await.expect("task");
            created += usize::from(matches!(insert, BuildInsert::Created(_)));
            ids.insert(insert.record().id);
        }
        assert_eq!((created, ids.len()), (1, 1));
        a.close().await;
        b.close().await;
    })
    .await;
}

#[tokio::test]
async fn updates_change_only_the_given_fields() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let build = created(
            store
                .insert_build(&test_build(&fx, 10))
                .await
                .expect("inserted"),
        );

        let queued = store
            .update_build(
                build.id,
                &BuildChange {
                    state: Some(BuildRunState::Queued),
                    queue_item: Some(QueueItemId(1234)),
                    ..BuildChange::default()
                },
                20,
            )
            .await
            .expect("queued");
        assert_eq!(queued.state, BuildRunState::Queued);
        assert_eq!(queued.queue_item, Some(QueueItemId(1234)));
        assert_eq!((queued.created_ms, queued.updated_ms), (10, 20));

        let url = "https://jenkins.example.com/job/hello-world-test/7/";
        let running = store
            .update_build(
                build.id,
                &BuildChange {
                    state: Some(BuildRunState::Running),
                    number: Some(BuildNumber(7)),
                    url: Some(url.to_owned()),
                    ..BuildChange::default()
                },
                30,
            )
            .await
            .expect("running");
        assert_eq!(running.queue_item, Some(QueueItemId(1234)), "kept");
        assert_eq!(running.number, Some(BuildNumber(7)));
        assert_eq!(running.url.as_deref(), Some(url));

        let finished = store
            .update_build(
                build.id,
                &BuildChange {
                    state: Some(BuildRunState::Failure),
                    ..BuildChange::default()
                },
                40,
            )
            .await
            .expect("finished");
        let expected = BuildRecord {
            state: BuildRunState::Failure,
            queue_item: Some(QueueItemId(1234)),
            number: Some(BuildNumber(7)),
            url: Some(url.to_owned()),
            updated_ms: 40,
            ..build.clone()
        };
        assert_eq!(finished, expected);
        assert_eq!(store.build(build.id).await.expect("read"), Some(expected));

        let err = store
            .update_build(build.id + 100, &BuildChange::default(), 50)
            .await
            .expect_err("unknown build");
        assert!(
            matches!(err, StoreError::NotFound { what: "build", .. }),
            "{err:?}"
        );
        let err = store
            .update_build(
                build.id,
                &BuildChange {
                    number: Some(BuildNumber(u64::MAX)),
                    ..BuildChange::default()
                },
                50,
            )
            .await
            .expect_err("too large");
        assert!(matches!(err, StoreError::OutOfRange { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn a_finished_build_never_becomes_active_again() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let build = created(
            store
                .insert_build(&test_build(&fx, 10))
                .await
                .expect("inserted"),
        );
        let superseded = set_state(&store, build.id, BuildRunState::Superseded, 20).await;

        for state in [
            BuildRunState::Pending,
            BuildRunState::Queued,
            BuildRunState::Running,
        ] {
            // A late QUEUED/STARTED notification: ignored as a whole.
            let late = store
                .update_build(
                    build.id,
                    &BuildChange {
                        state: Some(state),
                        queue_item: Some(QueueItemId(99)),
                        number: Some(BuildNumber(3)),
                        ..BuildChange::default()
                    },
                    30,
                )
                .await
                .expect("update answered");
            assert_eq!(late, superseded, "{state}");
        }
        assert_eq!(store.active_builds().await.expect("active"), []);

        // Moving between finished states and filling in details still works.
        let aborted = store
            .update_build(
                build.id,
                &BuildChange {
                    state: Some(BuildRunState::Aborted),
                    number: Some(BuildNumber(3)),
                    ..BuildChange::default()
                },
                40,
            )
            .await
            .expect("updated");
        assert_eq!(aborted.state, BuildRunState::Aborted);
        assert_eq!(aborted.number, Some(BuildNumber(3)));
        assert_eq!(aborted.updated_ms, 40);
    })
    .await;
}

#[tokio::test]
async fn builds_are_found_by_queue_item_and_number() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let job = JobName::from("hello-world-test");
        let old = created(
            store
                .insert_build(&test_build(&fx, 1))
                .await
                .expect("inserted"),
        );
        let change = BuildChange {
            state: Some(BuildRunState::Success),
            queue_item: Some(QueueItemId(500)),
            number: Some(BuildNumber(41)),
            ..BuildChange::default()
        };
        store
            .update_build(old.id, &change, 2)
            .await
            .expect("updated");
        // A retest that Jenkins happens to give the same queue item (after a restart).
        let new = created(
            store
                .insert_build(&test_build(&fx, 3))
                .await
                .expect("inserted"),
        );
        let change = BuildChange {
            state: Some(BuildRunState::Queued),
            queue_item: Some(QueueItemId(500)),
            ..BuildChange::default()
        };
        store
            .update_build(new.id, &change, 4)
            .await
            .expect("updated");

        let by_item = store
            .find_build_by_queue_item("jenkins", QueueItemId(500))
            .await
            .expect("found");
        assert_eq!(by_item.map(|b| b.id), Some(new.id), "newest wins");
        let by_number = store
            .find_build_by_number("jenkins", &job, BuildNumber(41))
            .await
            .expect("found");
        assert_eq!(by_number.map(|b| b.id), Some(old.id));

        let none = [
            store
                .find_build_by_queue_item("other-jenkins", QueueItemId(500))
                .await,
            store
                .find_build_by_queue_item("jenkins", QueueItemId(501))
                .await,
            store
                .find_build_by_queue_item("jenkins", QueueItemId(u64::MAX))
                .await,
            store
                .find_build_by_number("jenkins", &JobName::from("other"), BuildNumber(41))
                .await,
            store
                .find_build_by_number("jenkins", &job, BuildNumber(u64::MAX))
                .await,
        ];
        for found in none {
            assert_eq!(found.expect("answered"), None);
        }
    })
    .await;
}

#[tokio::test]
async fn active_builds_are_listed_oldest_first_and_per_pull_request() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let test = created(
            store
                .insert_build(&test_build(&fx, 1))
                .await
                .expect("inserted"),
        );
        let mut merge = test_build(&fx, 2);
        merge.context = BuildContext::Merge;
        let merge = created(store.insert_build(&merge).await.expect("inserted"));
        let mut other_pr = test_build(&fx, 3);
        other_pr.pr = Some(PrNumber(3));
        other_pr.sha = fx.previous.clone();
        let other_pr = created(store.insert_build(&other_pr).await.expect("inserted"));
        let mut other_repo = test_build(&fx, 4);
        other_repo.repo = RepoName::new("Codertocat", "Other");
        let other_repo = created(store.insert_build(&other_repo).await.expect("inserted"));
        let mut done = test_build(&fx, 5);
        done.context = BuildContext::Try;
        let done = created(store.insert_build(&done).await.expect("inserted"));
        set_state(&store, done.id, BuildRunState::Success, 6).await;
        set_state(&store, merge.id, BuildRunState::Running, 7).await;

        let ids = |builds: Vec<BuildRecord>| builds.iter().map(|b| b.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.active_builds().await.expect("active")),
            [test.id, merge.id, other_pr.id, other_repo.id]
        );
        assert_eq!(
            ids(store
                .active_builds_for_pr(&fx.repo, fx.pr)
                .await
                .expect("active")),
            [test.id, merge.id]
        );
        assert_eq!(
            ids(store
                .active_builds_for_pr(&fx.repo, PrNumber(u64::MAX))
                .await
                .expect("active")),
            Vec::<i64>::new()
        );
    })
    .await;
}

#[tokio::test]
async fn out_of_range_and_nul_inputs_are_refused() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let mut huge = test_build(&fx, 1);
        huge.pr = Some(PrNumber(u64::MAX));
        let err = store.insert_build(&huge).await.expect_err("refused");
        assert_eq!(
            err.to_string(),
            "pull request 18446744073709551615 is too large to store (the limit is 9223372036854775807)"
        );
        let mut nul = test_build(&fx, 1);
        nul.branch = "chan\0ges".to_owned();
        let err = store.insert_build(&nul).await.expect_err("refused");
        assert!(matches!(err, StoreError::InvalidText { what: "branch" }), "{err:?}");
        assert_eq!(store.active_builds().await.expect("active"), []);
    })
    .await;
}

#[tokio::test]
async fn a_restart_sees_the_active_builds() {
    run_on_persistent_backends(|db| async move {
        let fx = synchronize();
        let store = db.connect().await;
        let running = created(
            store
                .insert_build(&test_build(&fx, 1))
                .await
                .expect("inserted"),
        );
        let running = store
            .update_build(
                running.id,
                &BuildChange {
                    state: Some(BuildRunState::Running),
                    queue_item: Some(QueueItemId(7)),
                    number: Some(BuildNumber(3)),
                    ..BuildChange::default()
                },
                2,
            )
            .await
            .expect("running");
        let mut merge = test_build(&fx, 3);
        merge.context = BuildContext::Merge;
        let merge = created(store.insert_build(&merge).await.expect("inserted"));
        set_state(&store, merge.id, BuildRunState::Success, 4).await;
        store.close().await;

        let reopened = db.connect().await;
        let active = reopened.active_builds().await.expect("active");
        assert_eq!(active, std::slice::from_ref(&running));
        // The key is still held across the restart.
        let again = reopened
            .insert_build(&test_build(&fx, 5))
            .await
            .expect("inserted");
        assert_eq!(again, BuildInsert::Exists(running));
        reopened.close().await;
    })
    .await;
}

#[tokio::test]
async fn corrupt_build_rows_are_errors_not_panics() {
    run_on_persistent_backends(|db| async move {
        let fx = synchronize();
        let store = db.connect().await;
        let build = created(store.insert_build(&test_build(&fx, 1)).await.expect("inserted"));

        db.execute("UPDATE builds SET sha = 'not-a-sha'").await;
        let err = store.build(build.id).await.expect_err("corrupt");
        assert!(
            matches!(err, StoreError::Corrupt { table: "builds", column: "sha" }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "corrupt value in builds.sha");

        db.execute(
            "UPDATE builds SET sha = 'ec26c3e57ca3a959ca5aad62de7213c562f8c821', context = 'deploy'",
        )
        .await;
        let err = store.active_builds().await.expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt { column: "context", .. }), "{err:?}");

        db.execute("UPDATE builds SET context = 'test', number = -3").await;
        let err = store.build(build.id).await.expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt { column: "number", .. }), "{err:?}");

        db.execute("UPDATE builds SET number = NULL, repo = 'no-slash'").await;
        let err = store.build(build.id).await.expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt { column: "repo", .. }), "{err:?}");
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn recent_builds_list_one_context_and_state_newest_first() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let old = created(
            store
                .insert_build(&test_build(&fx, 1))
                .await
                .expect("inserted"),
        );
        set_state(&store, old.id, BuildRunState::Success, 2).await;
        let mut red = test_build(&fx, 3);
        red.sha = fx.previous.clone();
        let red = created(store.insert_build(&red).await.expect("inserted"));
        set_state(&store, red.id, BuildRunState::Failure, 4).await;
        let new = created(
            store
                .insert_build(&test_build(&fx, 5))
                .await
                .expect("inserted"),
        );
        set_state(&store, new.id, BuildRunState::Success, 6).await;
        let mut merge = test_build(&fx, 7);
        merge.context = BuildContext::Merge;
        let merge = created(store.insert_build(&merge).await.expect("inserted"));
        set_state(&store, merge.id, BuildRunState::Success, 8).await;

        let ids = |builds: Vec<BuildRecord>| builds.iter().map(|b| b.id).collect::<Vec<_>>();
        let green = |limit| store.recent_builds(BuildContext::Test, BuildRunState::Success, limit);
        assert_eq!(ids(green(10).await.expect("read")), [new.id, old.id]);
        assert_eq!(ids(green(1).await.expect("read")), [new.id]);
        assert_eq!(ids(green(0).await.expect("read")), Vec::<i64>::new());
        assert_eq!(ids(green(-5).await.expect("read")), Vec::<i64>::new());
        assert_eq!(
            ids(store
                .recent_builds(BuildContext::Merge, BuildRunState::Success, 10)
                .await
                .expect("read")),
            [merge.id]
        );
    })
    .await;
}

#[tokio::test]
async fn a_new_head_finds_the_pull_requests_builds_and_its_branchs_push_builds_in_one_query() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        // The pull request's build, a push build of its branch, a push build of another
        // branch, and a merge build of the branch without a pull request.
        let of_pr = test_build(&fx, 1);
        let mut pushed = test_build(&fx, 2);
        pushed.pr = None;
        pushed.sha = greg_core::Sha::parse(&"b".repeat(40)).expect("sha");
        let mut other_branch = pushed.clone();
        other_branch.sha = greg_core::Sha::parse(&"c".repeat(40)).expect("sha");
        other_branch.branch = "elsewhere".to_owned();
        let mut merge = pushed.clone();
        merge.sha = greg_core::Sha::parse(&"d".repeat(40)).expect("sha");
        merge.context = BuildContext::Merge;
        for b in [&of_pr, &pushed, &other_branch, &merge] {
            store.insert_build(b).await.expect("stored");
        }
        let found = store
            .active_builds_for_pr_or_branch(&fx.repo, fx.pr, &fx.branch)
            .await
            .expect("read");
        let shas: Vec<&str> = found.iter().map(|b| b.sha.as_str()).collect();
        assert_eq!(shas, [fx.head.as_str(), pushed.sha.as_str()]);
    })
    .await;
}
