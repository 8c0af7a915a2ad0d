//! The durable inbox: group-committed batches, duplicates, finishing, restarts.

use crate::common::{
    github_delivery, run_on_all_backends, run_on_persistent_backends, synchronize,
};
use greg_store::{DeliveryOutcome, Inserted, NewDelivery, Redelivery, Store, StoreError};
use std::collections::HashSet;

fn seqs(inserted: &[Inserted]) -> Vec<i64> {
    inserted
        .iter()
        .map(|i| match i {
            Inserted::New(seq) => *seq,
            Inserted::Duplicate => panic!("unexpected duplicate in {inserted:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_batch_is_stored_in_order_and_read_back_verbatim() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let batch = vec![
            github_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958", &fx.payload, 1_000),
            github_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0959", "{}", 1_001),
            NewDelivery {
                source: "jenkins".to_owned(),
                delivery_id: "hello-world-test#7:FINALIZED".to_owned(),
                repo_key: String::new(),
                event: "build".to_owned(),
                payload: r#"{"name":"hello-world-test","note":"ünïcödé ✓"}"#.to_owned(),
                received_ms: 1_002,
            },
        ];
        let inserted = store.insert_deliveries(&batch).await.expect("inserted");
        let seqs = seqs(&inserted);
        assert!(seqs[0] < seqs[1] && seqs[1] < seqs[2], "{seqs:?}");

        let pending = store.pending_deliveries(10).await.expect("pending");
        assert_eq!(pending.len(), 3);
        for ((got, want), seq) in pending.iter().zip(&batch).zip(&seqs) {
            assert_eq!(got.seq, *seq);
            assert_eq!(got.source, want.source);
            assert_eq!(got.delivery_id, want.delivery_id);
            assert_eq!(got.repo_key, want.repo_key);
            assert_eq!(got.event, want.event);
            assert_eq!(got.payload, want.payload, "payload stored byte for byte");
            assert_eq!(got.received_ms, want.received_ms);
            assert_eq!(got.attempts, 0);
        }
        assert_eq!(store.insert_deliveries(&[]).await.expect("empty"), []);
    })
    .await;
}

#[tokio::test]
async fn a_duplicate_delivery_is_reported_and_changes_nothing() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let id = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
        let first = store
            .insert_deliveries(&[github_delivery(id, &fx.payload, 1_000)])
            .await
            .expect("inserted");
        let [Inserted::New(seq)] = first[..] else {
            panic!("first delivery is new: {first:?}");
        };

        // GitHub redelivers: same id, here with another body and time.
        let again = store
            .insert_deliveries(&[github_delivery(id, "{\"redelivery\":true}", 9_000)])
            .await
            .expect("duplicate is not an error");
        assert_eq!(again, [Inserted::Duplicate]);

        let pending = store.pending_deliveries(10).await.expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].seq, seq);
        assert_eq!(pending[0].payload, fx.payload);
        assert_eq!(pending[0].received_ms, 1_000);

        // Still a duplicate once processed.
        store
            .finish_delivery(seq, DeliveryOutcome::Done, 2_000)
            .await
            .expect("finished");
        let after = store
            .insert_deliveries(&[github_delivery(id, &fx.payload, 3_000)])
            .await
            .expect("inserted");
        assert_eq!(after, [Inserted::Duplicate]);
        assert_eq!(store.pending_deliveries(10).await.expect("pending"), []);
    })
    .await;
}

#[tokio::test]
async fn duplicates_inside_one_batch_and_across_sources() {
    run_on_all_backends(|store| async move {
        let mut jenkins = github_delivery("42", "{\"from\":\"jenkins\"}", 1);
        jenkins.source = "jenkins".to_owned();
        let batch = [
            github_delivery("42", "{\"n\":1}", 1),
            github_delivery("42", "{\"n\":2}", 2),
            jenkins,
            github_delivery("43", "{\"n\":3}", 3),
        ];
        let inserted = store.insert_deliveries(&batch).await.expect("inserted");
        assert!(matches!(inserted[0], Inserted::New(_)), "{inserted:?}");
        assert_eq!(inserted[1], Inserted::Duplicate);
        assert!(matches!(inserted[2], Inserted::New(_)), "{inserted:?}");
        assert!(matches!(inserted[3], Inserted::New(_)), "{inserted:?}");

        let pending = store.pending_deliveries(10).await.expect("pending");
        let got: Vec<(&str, &str, &str)> = pending
            .iter()
            .map(|d| {
                (
                    d.source.as_str(),
                    d.delivery_id.as_str(),
                    d.payload.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("github", "42", "{\"n\":1}"),
                ("jenkins", "42", "{\"from\":\"jenkins\"}"),
                ("github", "43", "{\"n\":3}"),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn a_large_batch_keeps_order_and_finds_duplicates_across_it() {
    run_on_all_backends(|store| async move {
        // 40 fixture-sized deliveries: several statements on PostgreSQL, one transaction.
        let fx = synchronize();
        let mut batch: Vec<_> = (0..40)
            .map(|i| github_delivery(&format!("d{i}"), &fx.payload, i))
            .collect();
        batch[35].delivery_id = "d2".to_owned();
        let inserted = store.insert_deliveries(&batch).await.expect("inserted");
        assert_eq!(inserted[35], Inserted::Duplicate);
        let mut new = inserted.clone();
        new.remove(35);
        let seqs = seqs(&new);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let pending = store.pending_deliveries(100).await.expect("pending");
        assert_eq!(pending.iter().map(|d| d.seq).collect::<Vec<_>>(), seqs);
        assert_eq!(pending[2].received_ms, 2, "the first d2 is the one stored");
    })
    .await;
}

#[tokio::test]
async fn finished_deliveries_are_no_longer_pending() {
    run_on_all_backends(|store| async move {
        let batch: Vec<_> = (0..4)
            .map(|i| github_delivery(&format!("d{i}"), "{}", i))
            .collect();
        let seqs = seqs(&store.insert_deliveries(&batch).await.expect("inserted"));

        store
            .finish_delivery(seqs[0], DeliveryOutcome::Done, 10)
            .await
            .expect("done");
        store
            .finish_delivery(
                seqs[2],
                DeliveryOutcome::Failed {
                    error: "provider answered 500".to_owned(),
                },
                11,
            )
            .await
            .expect("failed");
        let pending: Vec<i64> = store
            .pending_deliveries(10)
            .await
            .expect("pending")
            .iter()
            .map(|d| d.seq)
            .collect();
        assert_eq!(pending, [seqs[1], seqs[3]]);

        let err = store
            .finish_delivery(seqs[3] + 1000, DeliveryOutcome::Done, 12)
            .await
            .expect_err("unknown seq");
        assert!(
            matches!(err, StoreError::NotFound { what: "delivery", id } if id == seqs[3] + 1000),
            "{err:?}"
        );

        // A batch of outcomes is all or nothing.
        let err = store
            .finish_deliveries(
                &[
                    (seqs[1], DeliveryOutcome::Done),
                    (-5, DeliveryOutcome::Done),
                ],
                13,
            )
            .await
            .expect_err("unknown seq in batch");
        assert!(
            matches!(err, StoreError::NotFound { id: -5, .. }),
            "{err:?}"
        );
        assert_eq!(
            store.pending_deliveries(10).await.expect("pending").len(),
            2
        );
        store
            .finish_deliveries(
                &[
                    (seqs[1], DeliveryOutcome::Done),
                    (seqs[3], DeliveryOutcome::Done),
                ],
                14,
            )
            .await
            .expect("finished");
        assert_eq!(store.pending_deliveries(10).await.expect("pending"), []);
    })
    .await;
}

#[tokio::test]
async fn pending_respects_the_limit_and_attempts_are_counted() {
    run_on_all_backends(|store| async move {
        let batch: Vec<_> = (0..5)
            .map(|i| github_delivery(&format!("d{i}"), "{}", i))
            .collect();
        let seqs = seqs(&store.insert_deliveries(&batch).await.expect("inserted"));

        let two = store.pending_deliveries(2).await.expect("pending");
        assert_eq!(two.iter().map(|d| d.seq).collect::<Vec<_>>(), seqs[..2]);
        assert_eq!(store.pending_deliveries(0).await.expect("zero"), []);
        assert_eq!(store.pending_deliveries(-1).await.expect("negative"), []);

        assert_eq!(store.start_delivery(seqs[0]).await.expect("attempt"), 1);
        assert_eq!(store.start_delivery(seqs[0]).await.expect("attempt"), 2);
        let first = &store.pending_deliveries(1).await.expect("pending")[0];
        assert_eq!((first.seq, first.attempts), (seqs[0], 2));
        assert!(matches!(
            store.start_delivery(-1).await,
            Err(StoreError::NotFound {
                what: "delivery",
                id: -1
            })
        ));
    })
    .await;
}

#[tokio::test]
async fn pruning_deletes_only_old_finished_deliveries() {
    run_on_all_backends(|store| async move {
        let batch: Vec<_> = (0..3)
            .map(|i| github_delivery(&format!("d{i}"), "{}", i))
            .collect();
        let seqs = seqs(&store.insert_deliveries(&batch).await.expect("inserted"));
        store
            .finish_delivery(seqs[0], DeliveryOutcome::Done, 100)
            .await
            .expect("done");
        store
            .finish_delivery(seqs[1], DeliveryOutcome::Done, 200)
            .await
            .expect("done");

        assert_eq!(store.prune_deliveries(150).await.expect("pruned"), 1);
        assert_eq!(store.prune_deliveries(150).await.expect("pruned"), 0);
        // The pruned id is forgotten; the kept finished one is still a duplicate.
        let again = store
            .insert_deliveries(&[batch[0].clone(), batch[1].clone()])
            .await
            .expect("inserted");
        assert!(
            matches!(again[0], Inserted::New(s) if s > seqs[2]),
            "{again:?}"
        );
        assert_eq!(again[1], Inserted::Duplicate);
        // Failed deliveries (dead letters) are kept: only a redelivery or a person removes them.
        store
            .dead_letter(seqs[2], 1, "github: transient: 502", None, 120)
            .await
            .expect("failed");
        assert_eq!(store.prune_deliveries(i64::MAX).await.expect("pruned"), 1);
        assert_eq!(store.failed_deliveries(10).await.expect("failed").len(), 1);
        // Pending deliveries survive any cut-off.
        assert_eq!(store.prune_deliveries(i64::MAX).await.expect("pruned"), 0);
        assert_eq!(
            store.pending_deliveries(10).await.expect("pending").len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn nul_characters_are_refused_before_anything_is_written() {
    run_on_all_backends(|store| async move {
        let good = github_delivery("good", "{}", 1);
        let bad = github_delivery("bad\0id", "{}", 2);
        assert!(matches!(
            bad.validate(),
            Err(StoreError::InvalidText {
                what: "delivery id"
            })
        ));
        let err = store
            .insert_deliveries(&[good, bad])
            .await
            .expect_err("refused");
        assert!(matches!(err, StoreError::InvalidText { .. }), "{err:?}");
        assert_eq!(store.pending_deliveries(10).await.expect("pending"), []);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_store_each_delivery_once() {
    run_on_all_backends(|store| async move {
        // 8 writers, 40 deliveries each, every id sent by two writers.
        let mut tasks = Vec::new();
        for writer in 0..8_i64 {
            let store: Store = store.clone();
            tasks.push(tokio::spawn(async move {
                let batch: Vec<_> = (0..40)
                    .map(|i| github_delivery(&format!("d{}", (writer / 2) * 40 + i), "{}", i))
                    .collect();
                store.insert_deliveries(&batch).await.expect("inserted")
            }));
        }
        let mut new = Vec::new();
        for task in tasks {
            for inserted in task.await.expect("task") {
                if let Inserted::New(seq) = inserted {
                    new.push(seq);
                }
            }
        }
        assert_eq!(new.len(), 160, "each of the 160 ids is new exactly once");
        assert_eq!(new.iter().collect::<HashSet<_>>().len(), 160, "unique seqs");
        assert_eq!(
            store
                .pending_deliveries(1_000)
                .await
                .expect("pending")
                .len(),
            160
        );
    })
    .await;
}

#[tokio::test]
async fn a_restart_sees_the_pending_deliveries() {
    run_on_persistent_backends(|db| async move {
        let fx = synchronize();
        let store = db.connect().await;
        let batch: Vec<_> = (0..3)
            .map(|i| github_delivery(&format!("d{i}"), &fx.payload, i))
            .collect();
        let seqs = seqs(&store.insert_deliveries(&batch).await.expect("inserted"));
        store
            .finish_delivery(seqs[1], DeliveryOutcome::Done, 5)
            .await
            .expect("done");
        store.start_delivery(seqs[2]).await.expect("attempt");
        store.close().await;

        let reopened = db.connect().await;
        let pending = reopened.pending_deliveries(10).await.expect("pending");
        let got: Vec<(i64, &str, i64)> = pending
            .iter()
            .map(|d| (d.seq, d.delivery_id.as_str(), d.attempts))
            .collect();
        assert_eq!(got, [(seqs[0], "d0", 0), (seqs[2], "d2", 1)]);
        assert_eq!(pending[0].payload, fx.payload);
        // New deliveries continue the sequence after the restart.
        let next = seqs_after(&reopened, "d3").await;
        assert!(next > seqs[2], "{next} after {seqs:?}");
        reopened.close().await;
    })
    .await;
}

async fn seqs_after(store: &Store, id: &str) -> i64 {
    let inserted = store
        .insert_deliveries(&[github_delivery(id, "{}", 9)])
        .await
        .expect("inserted");
    seqs(&inserted)[0]
}

#[tokio::test]
async fn a_scheduled_retry_survives_a_restart_and_is_claimed_once_when_due() {
    run_on_persistent_backends(|db| async move {
        let store = db.connect().await;
        let batch: Vec<_> = (0..2)
            .map(|i| github_delivery(&format!("r{i}"), "{}", 1_000 + i))
            .collect();
        let seqs = seqs(&store.insert_deliveries(&batch).await.expect("inserted"));
        store
            .schedule_retry(seqs[0], 3, 5_000, "github: transient: 502 Bad Gateway")
            .await
            .expect("scheduled");
        // Waiting for its retry, it is not pending work; the later delivery is.
        let pending = store.pending_deliveries(10).await.expect("pending");
        assert_eq!(pending.iter().map(|d| d.seq).collect::<Vec<_>>(), [seqs[1]]);
        store.close().await;

        let store = db.connect().await;
        assert_eq!(
            store.claim_due_deliveries(4_999, 10).await.expect("due"),
            []
        );
        let due = store.claim_due_deliveries(5_000, 10).await.expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].seq, due[0].attempts), (seqs[0], 3));
        // Claimed once: the schedule is cleared, and the delivery is plain pending work again.
        assert_eq!(
            store.claim_due_deliveries(9_999, 10).await.expect("due"),
            []
        );
        assert_eq!(
            store.pending_deliveries(10).await.expect("pending").len(),
            2
        );
        assert_eq!(
            store.retry_window_start(seqs[0]).await.expect("start"),
            Some(1_000)
        );
        assert!(matches!(
            store.schedule_retry(-1, 1, 1, "x").await,
            Err(StoreError::NotFound { .. })
        ));
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_redelivered_with_a_new_window() {
    run_on_all_backends(|store| async move {
        let batch: Vec<_> = (0..2)
            .map(|i| github_delivery(&format!("f{i}"), "{}", 10 + i))
            .collect();
        let seqs = seqs(&store.insert_deliveries(&batch).await.expect("inserted"));
        store
            .schedule_retry(seqs[0], 2, 50, "github: transient: 502")
            .await
            .expect("scheduled");
        store
            .dead_letter(
                seqs[0],
                1,
                "github: transient: 503",
                Some("github: transient failure"),
                60,
            )
            .await
            .expect("failed");
        let failed = store.failed_deliveries(10).await.expect("failed");
        assert_eq!(failed.len(), 1);
        let f = &failed[0];
        assert_eq!((f.seq, f.attempts, f.failed_ms), (seqs[0], 3, Some(60)));
        assert_eq!(
            (f.source.as_str(), f.delivery_id.as_str()),
            ("github", "f0")
        );
        assert_eq!(f.error, "github: transient: 503");
        assert_eq!(
            store.pending_deliveries(10).await.expect("pending").len(),
            1
        );
        // Nothing due from the dead letter, even far in the future.
        assert_eq!(
            store.claim_due_deliveries(i64::MAX, 10).await.expect("due"),
            []
        );

        let notices = store
            .due_notices("Codertocat/Hello-World")
            .await
            .expect("notices");
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].notice, "github: transient failure");
        store.notice_posted(seqs[0], 70).await.expect("posted");
        assert_eq!(
            store
                .due_notices("Codertocat/Hello-World")
                .await
                .expect("notices"),
            []
        );

        assert_eq!(
            store.redeliver(seqs[1], 80).await.expect("pending"),
            Redelivery::NotFailed
        );
        assert_eq!(
            store.redeliver(-5, 80).await.expect("unknown"),
            Redelivery::NotFound
        );
        match store.redeliver(seqs[0], 90).await.expect("reset") {
            Redelivery::Reset(d) => assert_eq!((d.seq, d.attempts), (seqs[0], 3)),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.failed_deliveries(10).await.expect("failed"), []);
        assert_eq!(
            store.pending_deliveries(10).await.expect("pending").len(),
            2
        );
        assert_eq!(
            store.retry_window_start(seqs[0]).await.expect("start"),
            Some(90)
        );
        assert_eq!(
            store.redeliver(seqs[0], 95).await.expect("again"),
            Redelivery::NotFailed
        );
    })
    .await;
}

#[tokio::test]
async fn the_inbox_knows_a_delivery_whole_or_split_into_events() {
    run_on_all_backends(|store| async move {
        let batch = [
            github_delivery("guid-1", "{}", 1),
            github_delivery("guid-2#0", "{}", 2),
            github_delivery("guid-2#1", "{}", 3),
        ];
        store.insert_deliveries(&batch).await.expect("inserted");
        assert!(
            store
                .has_delivery("github", "guid-1")
                .await
                .expect("lookup")
        );
        assert!(
            store
                .has_delivery("github", "guid-2")
                .await
                .expect("lookup")
        );
        assert!(!store.has_delivery("github", "guid").await.expect("lookup"));
        assert!(
            !store
                .has_delivery("github", "guid-3")
                .await
                .expect("lookup")
        );
        assert!(
            !store
                .has_delivery("bitbucket", "guid-1")
                .await
                .expect("lookup")
        );
    })
    .await;
}

#[tokio::test]
async fn a_batch_is_marked_done_in_one_call_and_finished_ones_stay_as_they_are() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let batch: Vec<NewDelivery> = (0..5)
            .map(|i| github_delivery(&format!("done-{i}"), &fx.payload, 1))
            .collect();
        let stored = seqs(&store.insert_deliveries(&batch).await.expect("stored"));
        // The last one failed earlier: marking it done again is skipped.
        store
            .finish_delivery(
                stored[4],
                DeliveryOutcome::Failed {
                    error: "boom".to_owned(),
                },
                5,
            )
            .await
            .expect("failed");
        let marked = store
            .finish_done(&[stored[0], stored[2], stored[4], 999_999], 10)
            .await
            .expect("marked");
        assert_eq!(marked, 2);
        let pending: Vec<i64> = store
            .pending_deliveries(10)
            .await
            .expect("read")
            .iter()
            .map(|d| d.seq)
            .collect();
        assert_eq!(pending, [stored[1], stored[3]]);
        assert_eq!(store.failed_deliveries(10).await.expect("read").len(), 1);
        assert_eq!(store.finish_done(&[], 10).await.expect("nothing"), 0);
    })
    .await;
}
