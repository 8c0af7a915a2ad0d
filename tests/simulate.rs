//! `greg simulate` on the real binary: one run, the sweep with its plot, bad usage, and
//! `--from-history` on a SQLite store filled here.

use greg_core::{BuildContext, JobName, Login, PrNumber, RepoName, Sha};
use greg_store::{
    BuildChange, BuildRunState, NewBuild, NewQueueEntry, QueueChange, QueueKind, QueueState, Store,
};
use std::process::{Command, Output};

fn greg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greg"))
        .arg("simulate")
        .args(args)
        .env_remove("GREG_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run greg")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn one_run_prints_a_table_of_its_figures() {
    let out = greg(&["--window", "20", "--p", "0.05", "--prs", "1000"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].contains("always-full queue"), "{text}");
    for column in ["merged/T", "merged/h", "b/merge", "land p50/p95 min"] {
        assert!(lines[1].contains(column), "{text}");
    }
    assert!(lines[2].starts_with("batch_size 1, window 20"), "{text}");
    let merged: f64 = lines[2]
        .split_whitespace()
        .nth(4)
        .and_then(|x| x.parse().ok())
        .expect("merged/T");
    assert!(merged >= 12.0, "{text}");
}

#[test]
fn the_sweep_prints_a_markdown_table_and_draws_the_plot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svg = dir.path().join("throughput.svg");
    let svg_arg = svg.to_str().expect("utf-8 path");
    let out = greg(&["--sweep", "--prs", "200", "--plot", svg_arg]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let rows = text.lines().filter(|l| l.starts_with("| ")).count();
    // A header and 6 strategies × 4 values of p × 2 flake rates.
    assert_eq!(rows, 1 + 6 * 4 * 2, "{text}");
    let plot = std::fs::read_to_string(&svg).expect("svg written");
    assert!(plot.starts_with("<svg") && plot.contains("window 20"));
}

#[test]
fn bad_numbers_are_bad_usage() {
    for args in [
        &["--p", "1.5"][..],
        &["--window", "0"],
        &["--ci-minutes", "-3"],
    ] {
        let out = greg(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

const MINUTE: i64 = 60_000;

fn sha(n: u64) -> Sha {
    Sha::parse(&format!("{n:040x}")).expect("sha")
}

/// 40 merge requests, one every 10 minutes; four fail, one of which lands again later with
/// the same head (a flake). Each has a merge build of 20 minutes (one red, then green again
/// for the flaky one).
async fn fill(store: &Store, repo: &RepoName) {
    for i in 0..40u64 {
        let at = 1_700_000_000_000 + i as i64 * 10 * MINUTE;
        let (pr, head) = if i == 39 {
            (7, sha(1007))
        } else {
            (i + 1, sha(1000 + i + 1))
        };
        let entry = store
            .enqueue(&NewQueueEntry {
                repo: repo.clone(),
                pr: PrNumber(pr),
                kind: QueueKind::Merge,
                target: "main".into(),
                head_sha: head,
                approver: Login("alice".into()),
                command: "please".into(),
                priority: 0,
                now_ms: at,
            })
            .await
            .expect("enqueue")
            .into_entry();
        let build = store
            .insert_build(&NewBuild {
                repo: repo.clone(),
                pr: Some(PrNumber(pr)),
                sha: sha(5000 + if i == 39 { 7 } else { i + 1 }),
                context: BuildContext::Merge,
                builder: "jenkins".into(),
                job: JobName("merge".into()),
                branch: "greg/staging/main/1".into(),
                target: Some("main".into()),
                now_ms: at,
            })
            .await
            .expect("build")
            .into_record();
        let fails = matches!(i, 6 | 12 | 24 | 30);
        let state = if fails {
            BuildRunState::Failure
        } else {
            BuildRunState::Success
        };
        let change = BuildChange {
            state: Some(state),
            ..BuildChange::default()
        };
        store
            .update_build(build.id, &change, at + 20 * MINUTE)
            .await
            .expect("finish build");
        let change = QueueChange {
            state: Some(if fails {
                QueueState::Failed
            } else {
                QueueState::Landed
            }),
            ..QueueChange::default()
        };
        store
            .update_queue_entry(entry.id, &change, at + 21 * MINUTE)
            .await
            .expect("finish entry");
    }
}

#[tokio::test]
async fn from_history_estimates_the_inputs_and_recommends_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = format!("sqlite://{}", dir.path().join("greg.db").display());
    let repo = RepoName::parse("Acme/Widgets").expect("repo");
    let store = Store::connect(&database).await.expect("store");
    fill(&store, &repo).await;
    store.close().await;

    let out = greg(&[
        "--from-history",
        "acme/widgets",
        "--database",
        &database,
        "--prs",
        "300",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    // 6 arrivals per hour, builds of 20 minutes, 3 of 40 failed for good, one flake (seen twice: a red build green again, a failed head landed) in 40.
    assert!(
        text.contains("40 merge requests, 40 merge builds"),
        "{text}"
    );
    assert!(text.contains("6.00 arrivals per hour"), "{text}");
    assert!(text.contains("T = median build 20.0 min"), "{text}");
    assert!(text.contains("P(break) 0.075; flake rate 0.025"), "{text}");
    assert!(
        text.contains("batch_size 1, window 20, adaptive from 1"),
        "{text}"
    );
    assert!(text.contains("Recommended") && text.contains("merge_queue:\n  batch_size: "));

    let out = greg(&["--from-history", "acme/nothing", "--database", &database]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
