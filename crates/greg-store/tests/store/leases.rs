//! The lease on a repository's lane (SPEC §11): one holder at a time, takeover after expiry
//! with a higher epoch, renewal, release, and fenced writes that change nothing once the
//! lease is lost.

use crate::common::{run_on_all_backends, synchronize};
use greg_core::{Login, RepoName};
use greg_store::{
    Fence, LeaseGrant, NewEffect, NewQueueEntry, QueueChange, QueueInsert, QueueKind, QueueState,
    StoreError,
};

const TTL: i64 = 15_000;

fn held(grant: LeaseGrant) -> i64 {
    match grant {
        LeaseGrant::Held(lease) => lease.epoch,
        LeaseGrant::Busy { holder, .. } => panic!("expected the lease, {holder} holds it"),
    }
}

#[tokio::test]
async fn one_holder_at_a_time_and_a_takeover_bumps_the_epoch() {
    run_on_all_backends(|store| async move {
        let repo = RepoName::new("Acme", "Demo");
        let a = held(
            store
                .acquire_lease(&repo, "a", 1_000, TTL)
                .await
                .expect("a asks"),
        );
        // B cannot take it while A's lease runs; A renewing keeps its epoch.
        match store
            .acquire_lease(&repo, "b", 2_000, TTL)
            .await
            .expect("b asks")
        {
            LeaseGrant::Busy { holder, expires_ms } => {
                assert_eq!(holder, "a");
                assert_eq!(expires_ms, 16_000);
            }
            LeaseGrant::Held(_) => panic!("two holders"),
        }
        // Case does not make another lane.
        let other_case = RepoName::new("acme", "demo");
        assert!(matches!(
            store
                .acquire_lease(&other_case, "b", 2_000, TTL)
                .await
                .expect("b asks"),
            LeaseGrant::Busy { .. }
        ));
        assert_eq!(
            held(
                store
                    .acquire_lease(&repo, "a", 3_000, TTL)
                    .await
                    .expect("renew")
            ),
            a
        );
        let renewed = store.renew_leases("a", 10_000, TTL).await.expect("renewed");
        assert_eq!(renewed.len(), 1);
        assert_eq!(renewed[0].expires_ms, 25_000);
        // A stops renewing: after expiry B gets it with a higher epoch, and A's renewal
        // no longer covers it.
        assert!(
            store
                .expired_leases(24_999, 10)
                .await
                .expect("listed")
                .is_empty()
        );
        let expired = store.expired_leases(25_000, 10).await.expect("listed");
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].repo, repo);
        assert_eq!(expired[0].holder, "a");
        let b = held(
            store
                .acquire_lease(&repo, "b", 25_000, TTL)
                .await
                .expect("b takes over"),
        );
        assert!(b > a, "epoch {b} after {a}");
        assert!(
            store
                .renew_leases("a", 26_000, TTL)
                .await
                .expect("renewed")
                .is_empty()
        );
        // Released at shutdown: C takes over at once, with a higher epoch again.
        assert_eq!(
            store.release_leases("b", 27_000).await.expect("released"),
            1
        );
        let c = held(
            store
                .acquire_lease(&repo, "c", 27_000, TTL)
                .await
                .expect("c takes"),
        );
        assert!(c > b);
        // A restart on a database one process serves: every lease is taken over at once.
        assert_eq!(store.expire_all_leases(28_000).await.expect("expired"), 1);
        let d = held(
            store
                .acquire_lease(&repo, "d", 28_000, TTL)
                .await
                .expect("d takes"),
        );
        assert!(d > c);
    })
    .await;
}

#[tokio::test]
async fn a_fenced_out_holder_writes_nothing() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let epoch = held(store.acquire_lease(&fx.repo, "a", 1_000, TTL).await.expect("a"));
        let fence = Fence {
            repo_key: fx.repo.key(),
            holder: "a".to_owned(),
            epoch,
        };
        let new = NewQueueEntry {
            repo: fx.repo.clone(),
            pr: fx.pr,
            kind: QueueKind::Merge,
            target: fx.target.clone(),
            head_sha: fx.head.clone(),
            approver: Login::from("octocat"),
            command: "please".to_owned(),
            priority: 0,
            now_ms: 1_000,
        };
        // While A holds the lease its fenced writes go through.
        let entry = fence
            .clone()
            .scope(store.enqueue(&new))
            .await
            .expect("enqueued under the lease");
        let QueueInsert::Created(entry) = entry else {
            panic!("a new entry");
        };
        // A stalls past its lease; B takes the repository over.
        held(store.acquire_lease(&fx.repo, "b", 20_000, TTL).await.expect("b"));
        let effect = NewEffect {
            repo: fx.repo.clone(),
            key: "queue:1:landed:comment".to_owned(),
            kind: "comment".to_owned(),
            payload: "{}".to_owned(),
        };
        let landed = QueueChange {
            state: Some(QueueState::Landed),
            ..QueueChange::default()
        };
        let moved = fence
            .clone()
            .scope(store.transition_queue_entry(
                entry.id,
                QueueState::Waiting,
                &landed,
                std::slice::from_ref(&effect),
                21_000,
            ))
            .await;
        assert!(
            matches!(moved, Err(StoreError::Fenced { ref repo_key, .. }) if *repo_key == fx.repo.key()),
            "{moved:?}"
        );
        let updated = fence
            .clone()
            .scope(store.update_queue_entry(entry.id, &landed, 21_000))
            .await;
        assert!(matches!(updated, Err(StoreError::Fenced { .. })), "{updated:?}");
        let added = fence
            .clone()
            .scope(store.add_effects(std::slice::from_ref(&effect), 21_000))
            .await;
        assert!(matches!(added, Err(StoreError::Fenced { .. })), "{added:?}");
        let closed = fence
            .clone()
            .scope(store.set_tree_closure(&fx.repo, &fx.target, 5, &Login::from("a"), 21_000))
            .await;
        assert!(matches!(closed, Err(StoreError::Fenced { .. })), "{closed:?}");
        // Nothing of it is stored.
        let stored = store.queue_entry(entry.id).await.expect("read").expect("exists");
        assert_eq!(stored.state, QueueState::Waiting);
        assert!(store.effects(&fx.repo).await.expect("read").is_empty());
        assert!(store.tree_closure(&fx.repo, &fx.target).await.expect("read").is_none());
        // The same write without a fence (B's lane would carry its own) goes through.
        let moved = store
            .transition_queue_entry(entry.id, QueueState::Waiting, &landed, &[effect], 21_000)
            .await
            .expect("written");
        assert!(moved.is_some());
    })
    .await;
}

#[tokio::test]
async fn pending_deliveries_are_found_by_their_lease() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let mut delivery = crate::common::github_delivery("d-1", &fx.payload, 1);
        delivery.repo_key = fx.repo.key();
        let mut orphan = crate::common::github_delivery("d-2", &fx.payload, 1);
        orphan.repo_key = "other/repo".to_owned();
        let mut callback = crate::common::github_delivery("d-3", "{}", 1);
        callback.repo_key = String::new();
        store
            .insert_deliveries(&[delivery, orphan, callback])
            .await
            .expect("stored");
        held(
            store
                .acquire_lease(&fx.repo, "a", 1_000, TTL)
                .await
                .expect("a"),
        );
        let mine = store
            .pending_seqs_of_holder("a", 2, 10)
            .await
            .expect("read");
        let read = store.pending_deliveries_by_seq(&mine).await.expect("read");
        let ids: Vec<&str> = read.iter().map(|d| d.delivery_id.as_str()).collect();
        assert_eq!(ids, ["d-1", "d-3"]);
        assert_eq!(
            store.unleased_pending_repos(2_000, 10).await.expect("read"),
            ["other/repo"]
        );
        // A's lease expires: its repository is unleased too.
        let mut unleased = store
            .unleased_pending_repos(20_000, 10)
            .await
            .expect("read");
        unleased.sort();
        assert_eq!(unleased, [fx.repo.key(), "other/repo".to_owned()]);
        let of_repo = store
            .pending_seqs_of_repo("other/repo", 2, 10)
            .await
            .expect("read");
        let read = store
            .pending_deliveries_by_seq(&of_repo)
            .await
            .expect("read");
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].delivery_id, "d-2");
        assert!(
            store
                .pending_deliveries_by_seq(&[])
                .await
                .expect("none")
                .is_empty()
        );
    })
    .await;
}
