//! CI reports: reports read back in arrival order, metadata files replaced per commit, and the
//! report-comment lease: refused while live, taken after expiry, fenced by its sequence,
//! released only when the comment shows every report, won by exactly one of many takers.

use crate::common::{TestDb, run_on_all_backends, run_on_persistent_backends};
use greg_core::{CommentId, PrNumber, RepoName, Sha};
use greg_store::{LeaseRelease, NewReport, PrunedReports, ReportLease, Store};
use std::sync::Arc;

fn repo() -> RepoName {
    RepoName::new("Acme", "Widgets")
}

fn sha(digit: char) -> Sha {
    Sha::parse(&digit.to_string().repeat(40)).expect("full sha")
}

/// Stores a report of `job` on commit `sha` for `prs`, with `metadata`, at `at_ms`.
async fn report(
    store: &Store,
    sha: &Sha,
    job: &str,
    prs: &[PrNumber],
    metadata: &[(String, String)],
    at_ms: u64,
) {
    let repo = repo();
    let json = format!("{{\"job\":\"{job}\"}}");
    let new = NewReport {
        repo: &repo,
        sha,
        job,
        pr: prs.first().copied(),
        status: "success",
        report_json: &json,
        metadata,
        received_ms: at_ms,
    };
    store.insert_report(&new, prs).await.expect("report stored");
}

fn file(name: &str, body: &str) -> (String, String) {
    (name.to_owned(), body.to_owned())
}

async fn take(store: &Store, pr: u64, holder: &str, now_ms: u64) -> Option<ReportLease> {
    store
        .take_report_lease(&repo(), PrNumber(pr), holder, now_ms, 100)
        .await
        .expect("take")
}

#[tokio::test]
async fn reports_read_back_in_arrival_order_and_each_bumps_the_comment() {
    run_on_all_backends(|store| async move {
        let (a, b) = (sha('a'), sha('b'));
        let pr = PrNumber(7);
        report(&store, &a, "build", &[pr], &[], 10).await;
        report(&store, &b, "lint", &[pr, pr], &[], 20).await;
        report(&store, &a, "test", &[pr], &[], 30).await;
        report(&store, &a, "build", &[], &[], 40).await;

        let stored = store.reports_for_commit(&repo(), &a).await.expect("read");
        let seen: Vec<_> = stored
            .iter()
            .map(|r| (r.job.as_str(), r.pr, r.received_ms))
            .collect();
        assert_eq!(
            seen,
            [
                ("build", Some(pr), 10),
                ("test", Some(pr), 30),
                ("build", None, 40)
            ]
        );
        assert!(stored.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(stored[0].repo, repo());
        assert_eq!(stored[0].sha, a);
        assert_eq!(stored[0].status, "success");
        assert_eq!(stored[0].report_json, "{\"job\":\"build\"}");
        // Repository names compare case-insensitively.
        let lower = RepoName::new("acme", "widgets");
        assert_eq!(
            store.reports_for_commit(&lower, &a).await.expect("read"),
            stored
        );

        // Three reports reached the pull request (the repeated number counts once); the
        // last one came from commit a.
        let row = store
            .report_comment(&repo(), pr)
            .await
            .expect("read")
            .expect("row");
        assert_eq!((row.wanted, row.done, row.lease_seq), (3, 0, 0));
        assert_eq!(
            (row.holder, row.comment_id, row.body_hash),
            (None, None, None)
        );
        assert_eq!((row.head_sha, row.updated_ms), (a, 30));
        assert_eq!(
            store
                .report_comment(&repo(), PrNumber(8))
                .await
                .expect("read"),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn a_later_metadata_file_of_the_same_name_replaces_the_earlier() {
    run_on_all_backends(|store| async move {
        let (a, b) = (sha('a'), sha('b'));
        let pr = PrNumber(7);
        let first = [
            file("perf.json", "{\"ms\":1}"),
            file("cov.json", "{\"pct\":80}"),
        ];
        report(&store, &a, "build", &[pr], &first, 10).await;
        report(
            &store,
            &a,
            "test",
            &[pr],
            &[file("perf.json", "{\"ms\":2}")],
            20,
        )
        .await;
        report(
            &store,
            &b,
            "build",
            &[pr],
            &[file("perf.json", "{\"ms\":3}")],
            30,
        )
        .await;

        assert_eq!(
            store.report_metadata(&repo(), &a).await.expect("read"),
            [
                file("cov.json", "{\"pct\":80}"),
                file("perf.json", "{\"ms\":2}")
            ]
        );
        let of_pr = store
            .report_metadata_for_pr(&repo(), pr)
            .await
            .expect("read");
        let seen: Vec<_> = of_pr
            .iter()
            .map(|m| {
                (
                    m.sha.clone(),
                    m.file.as_str(),
                    m.body.as_str(),
                    m.received_ms,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (a.clone(), "cov.json", "{\"pct\":80}", 10),
                (a.clone(), "perf.json", "{\"ms\":2}", 20),
                (b.clone(), "perf.json", "{\"ms\":3}", 30),
            ]
        );
        assert!(
            store
                .report_metadata_for_pr(&repo(), PrNumber(8))
                .await
                .expect("read")
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn a_live_lease_refuses_other_holders_until_it_expires() {
    run_on_all_backends(|store| async move {
        // No report yet: there is nothing to render, and no lease.
        assert_eq!(take(&store, 7, "a", 1_000).await, None);
        report(&store, &sha('a'), "build", &[PrNumber(7)], &[], 900).await;

        let a = take(&store, 7, "a", 1_000).await.expect("free lease");
        assert_eq!((a.holder.as_str(), a.seq, a.wanted, a.done), ("a", 1, 1, 0));
        assert_eq!(
            (a.pr, a.head_sha.clone(), a.comment_id),
            (PrNumber(7), sha('a'), None)
        );
        // Live until 1100 (inclusive): refused.
        assert_eq!(take(&store, 7, "b", 1_050).await, None);
        assert_eq!(take(&store, 7, "b", 1_100).await, None);
        // The holder itself takes it again, with a new sequence.
        let again = take(&store, 7, "a", 1_050).await.expect("own lease");
        assert_eq!(again.seq, 2);
        // Expired: another holder gets it.
        let b = take(&store, 7, "b", 1_151).await.expect("expired lease");
        assert_eq!((b.holder.as_str(), b.seq), ("b", 3));
        let row = store
            .report_comment(&repo(), PrNumber(7))
            .await
            .expect("read")
            .expect("row");
        assert_eq!(
            (row.holder.as_deref(), row.lease_seq, row.lease_until_ms),
            (Some("b"), 3, 1_251)
        );
    })
    .await;
}

#[tokio::test]
async fn a_holder_that_lost_its_lease_changes_nothing() {
    run_on_all_backends(|store| async move {
        let pr = PrNumber(7);
        report(&store, &sha('a'), "build", &[pr], &[], 900).await;
        let a = take(&store, 7, "a", 1_000).await.expect("free lease");
        // A stalls past its lease; B takes over and records the comment it created.
        let b = take(&store, 7, "b", 1_200).await.expect("expired lease");
        assert!(
            store
                .record_report_comment_id(&b, CommentId(55))
                .await
                .expect("record id")
        );
        let before = store.report_comment(&repo(), pr).await.expect("read");

        // A wakes up: every write of it is refused and the row is as B left it.
        assert!(
            !store
                .record_report_comment_id(&a, CommentId(66))
                .await
                .expect("record id")
        );
        assert!(
            !store
                .record_report_render(&a, 1, Some(CommentId(66)), "hash-a", 1_300)
                .await
                .expect("render")
        );
        assert_eq!(
            store
                .release_report_lease(&a, 1_300, 100)
                .await
                .expect("release"),
            LeaseRelease::Lost
        );
        assert_eq!(
            store.report_comment(&repo(), pr).await.expect("read"),
            before
        );

        // B records its render, keeping the comment id it stored first.
        assert!(
            store
                .record_report_render(&b, 1, None, "hash-b", 1_250)
                .await
                .expect("render")
        );
        let row = store
            .report_comment(&repo(), pr)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(
            (
                row.done,
                row.comment_id,
                row.body_hash.as_deref(),
                row.updated_ms
            ),
            (1, Some(CommentId(55)), Some("hash-b"), 1_250)
        );
        assert_eq!(
            store
                .release_report_lease(&b, 1_260, 100)
                .await
                .expect("release"),
            LeaseRelease::Released
        );
    })
    .await;
}

#[tokio::test]
async fn a_release_with_reports_still_unshown_keeps_the_lease_for_another_render() {
    run_on_all_backends(|store| async move {
        let pr = PrNumber(7);
        report(&store, &sha('a'), "build", &[pr], &[], 900).await;
        let lease = take(&store, 7, "a", 1_000).await.expect("free lease");
        // A report arrives while the holder renders what it saw (wanted 1).
        report(&store, &sha('b'), "test", &[pr], &[], 1_010).await;
        assert!(
            store
                .record_report_render(&lease, lease.wanted, Some(CommentId(9)), "h1", 1_020)
                .await
                .expect("render")
        );
        let LeaseRelease::MoreWork(more) = store
            .release_report_lease(&lease, 1_030, 500)
            .await
            .expect("release")
        else {
            panic!("the second report is not shown yet");
        };
        assert_eq!((more.seq, more.wanted, more.done), (lease.seq, 2, 1));
        assert_eq!(
            (more.comment_id, more.head_sha.clone()),
            (Some(CommentId(9)), sha('b'))
        );
        let row = store
            .report_comment(&repo(), pr)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(
            (row.holder.as_deref(), row.lease_until_ms),
            (Some("a"), 1_530)
        );
        // Extended: still refused to others after the first lease's end.
        assert_eq!(take(&store, 7, "b", 1_200).await, None);
        assert!(
            store
                .stale_report_comments(1_200, 10)
                .await
                .expect("stale")
                .is_empty()
        );

        // A render beyond `wanted` is recorded as `wanted`.
        assert!(
            store
                .record_report_render(&more, 5, None, "h2", 1_040)
                .await
                .expect("render")
        );
        assert_eq!(
            store
                .release_report_lease(&more, 1_050, 500)
                .await
                .expect("release"),
            LeaseRelease::Released
        );
        let row = store
            .report_comment(&repo(), pr)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(
            (row.wanted, row.done, row.holder, row.lease_until_ms),
            (2, 2, None, 0)
        );
        // Released: anyone takes it at once.
        assert!(take(&store, 7, "b", 1_060).await.is_some());
    })
    .await;
}

/// 20 takers at once, spread over `stores`: returns the holders that won.
async fn race(stores: &[Store], pr: u64) -> Vec<String> {
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = stores[i % stores.len()].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let holder = format!("replica-{i}");
            store
                .take_report_lease(&repo(), PrNumber(pr), &holder, 1_000, 60_000)
                .await
                .expect("take")
                .map(|l| l.holder)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.expect("task"));
    }
    winners
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_concurrent_takers_exactly_one_wins() {
    run_on_all_backends(|store| async move {
        report(&store, &sha('a'), "build", &[PrNumber(7)], &[], 900).await;
        let winners = race(std::slice::from_ref(&store), 7).await;
        assert_eq!(winners.len(), 1, "winners: {winners:?}");
        let row = store
            .report_comment(&repo(), PrNumber(7))
            .await
            .expect("read")
            .expect("row");
        assert_eq!(row.holder.as_ref(), winners.first());
        assert_eq!(row.lease_seq, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_takers_on_two_stores_of_one_database_exactly_one_wins() {
    run_on_persistent_backends(|db: TestDb| async move {
        let (one, two) = (db.connect().await, db.connect().await);
        report(&one, &sha('a'), "build", &[PrNumber(7)], &[], 900).await;
        let winners = race(&[one.clone(), two.clone()], 7).await;
        assert_eq!(winners.len(), 1, "{}: winners: {winners:?}", db.label);
        let row = two
            .report_comment(&repo(), PrNumber(7))
            .await
            .expect("read")
            .expect("row");
        assert_eq!(row.holder.as_ref(), winners.first());
        assert_eq!(row.lease_seq, 1);
        one.close().await;
        two.close().await;
    })
    .await;
}

#[tokio::test]
async fn the_sweeper_finds_comments_behind_with_no_live_lease() {
    run_on_all_backends(|store| async move {
        let a = sha('a');
        // 1: behind, never leased. 2: behind, leased until 1100. 3: shown. 4: behind, its
        // holder gone (lease expired at 600).
        report(&store, &a, "build", &[PrNumber(1)], &[], 400).await;
        report(&store, &a, "build", &[PrNumber(2), PrNumber(3)], &[], 300).await;
        report(&store, &a, "build", &[PrNumber(4)], &[], 200).await;
        take(&store, 2, "a", 1_000).await.expect("lease 2");
        let three = take(&store, 3, "a", 1_000).await.expect("lease 3");
        assert!(
            store
                .record_report_render(&three, three.wanted, Some(CommentId(3)), "h", 1_001)
                .await
                .expect("render")
        );
        assert_eq!(
            store
                .release_report_lease(&three, 1_002, 100)
                .await
                .expect("release"),
            LeaseRelease::Released
        );
        take(&store, 4, "gone", 500).await.expect("lease 4");

        let stale = store.stale_report_comments(1_050, 10).await.expect("stale");
        let key = |pr| (RepoName::new("acme", "widgets"), PrNumber(pr));
        // Least recently updated first: 1 (400), then 4 (taken at 500).
        assert_eq!(stale, [key(1), key(4)]);
        assert_eq!(
            store.stale_report_comments(1_050, 1).await.expect("stale"),
            [key(1)]
        );
        // After lease 2 expires it is stale too.
        let later = store.stale_report_comments(1_101, 10).await.expect("stale");
        assert_eq!(later, [key(1), key(4), key(2)]);
    })
    .await;
}

#[tokio::test]
async fn pruning_keeps_recent_reports_and_comments_still_behind() {
    run_on_all_backends(|store| async move {
        let (a, b) = (sha('a'), sha('b'));
        let old = [file("perf.json", "{}")];
        // Old: a report on a for pull request 1 (then shown) and one for 2 (never shown).
        report(&store, &a, "build", &[PrNumber(1)], &old, 100).await;
        report(&store, &a, "lint", &[PrNumber(2)], &old, 150).await;
        let one = take(&store, 1, "a", 160).await.expect("lease");
        assert!(
            store
                .record_report_render(&one, 1, Some(CommentId(1)), "h", 170)
                .await
                .expect("render")
        );
        assert_eq!(
            store
                .release_report_lease(&one, 180, 100)
                .await
                .expect("release"),
            LeaseRelease::Released
        );
        // Recent: a report on b for pull request 3.
        report(
            &store,
            &b,
            "build",
            &[PrNumber(3)],
            &[file("cov.json", "{}")],
            1_000,
        )
        .await;

        let pruned = store.prune_reports(500).await.expect("prune");
        assert_eq!(
            pruned,
            PrunedReports {
                reports: 2,
                metadata: 1,
                comments: 1
            }
        );
        assert!(
            store
                .reports_for_commit(&repo(), &a)
                .await
                .expect("read")
                .is_empty()
        );
        assert!(
            store
                .report_metadata(&repo(), &a)
                .await
                .expect("read")
                .is_empty()
        );
        assert_eq!(
            store
                .reports_for_commit(&repo(), &b)
                .await
                .expect("read")
                .len(),
            1
        );
        assert_eq!(
            store
                .report_metadata(&repo(), &b)
                .await
                .expect("read")
                .len(),
            1
        );
        assert_eq!(
            store
                .report_comment(&repo(), PrNumber(1))
                .await
                .expect("read"),
            None
        );
        // Still behind: kept for the sweeper.
        assert!(
            store
                .report_comment(&repo(), PrNumber(2))
                .await
                .expect("read")
                .is_some()
        );
        assert!(
            store
                .report_comment(&repo(), PrNumber(3))
                .await
                .expect("read")
                .is_some()
        );
        assert_eq!(
            store.prune_reports(500).await.expect("prune"),
            PrunedReports::default()
        );
    })
    .await;
}

#[tokio::test]
async fn a_report_with_a_nul_or_an_out_of_range_number_is_refused_whole() {
    run_on_all_backends(|store| async move {
        let (repo, a) = (repo(), sha('a'));
        let metadata = [file("bad.json", "\0")];
        let new = NewReport {
            repo: &repo,
            sha: &a,
            job: "build",
            pr: None,
            status: "success",
            report_json: "{}",
            metadata: &metadata,
            received_ms: 1,
        };
        let err = store
            .insert_report(&new, &[PrNumber(1)])
            .await
            .expect_err("nul");
        assert_eq!(err.to_string(), "metadata file contains a NUL character");
        let new = NewReport {
            metadata: &[],
            ..new
        };
        assert!(
            store
                .insert_report(&new, &[PrNumber(u64::MAX)])
                .await
                .is_err()
        );
        let late = NewReport {
            received_ms: u64::MAX,
            ..new
        };
        assert!(store.insert_report(&late, &[]).await.is_err());
        assert!(
            store
                .reports_for_commit(&repo, &a)
                .await
                .expect("read")
                .is_empty()
        );
        assert_eq!(
            store
                .report_comment(&repo, PrNumber(1))
                .await
                .expect("read"),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn a_branch_baseline_is_replaced_by_a_later_commit_and_pruned_with_age() {
    run_on_all_backends(|store| async move {
        let (a, b) = (sha('a'), sha('b'));
        assert_eq!(
            store
                .report_baseline(&repo(), "master")
                .await
                .expect("read"),
            None
        );
        store
            .record_report_baseline(&repo(), "master", &a, 100)
            .await
            .expect("record");
        store
            .record_report_baseline(&RepoName::new("acme", "widgets"), "release", &a, 900)
            .await
            .expect("record");
        store
            .record_report_baseline(&repo(), "master", &b, 200)
            .await
            .expect("record");
        // Repository names are matched case-insensitively, branches exactly.
        assert_eq!(
            store
                .report_baseline(&RepoName::new("ACME", "widgets"), "master")
                .await
                .expect("read"),
            Some(b.clone())
        );
        assert_eq!(
            store
                .report_baseline(&repo(), "Master")
                .await
                .expect("read"),
            None
        );
        store.prune_reports(500).await.expect("prune");
        assert_eq!(
            store
                .report_baseline(&repo(), "master")
                .await
                .expect("read"),
            None
        );
        assert_eq!(
            store
                .report_baseline(&repo(), "release")
                .await
                .expect("read"),
            Some(a)
        );
    })
    .await;
}
