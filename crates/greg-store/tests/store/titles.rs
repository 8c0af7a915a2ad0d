//! Pull-request titles and authors for the pages: upserted per (repository, number), the
//! repository compared case-insensitively, and listed for a queue's active entries only.

use crate::common::{run_on_all_backends, synchronize};
use greg_core::{Login, PrNumber, RepoName};
use greg_store::{NewQueueEntry, QueueChange, QueueKind, QueueState};

/// The title and author of the fixture's pull request, as the webhook carries them.
fn fixture_title(payload: &str) -> (String, Login) {
    let json: serde_json::Value = serde_json::from_str(payload).expect("fixture is JSON");
    let title = json
        .pointer("/pull_request/title")
        .and_then(|v| v.as_str())
        .expect("a title");
    let author = json
        .pointer("/pull_request/user/login")
        .and_then(|v| v.as_str())
        .expect("an author");
    (title.to_owned(), Login::from(author))
}

#[tokio::test]
async fn a_title_is_upserted_and_read_back_case_insensitively() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let (title, author) = fixture_title(&fx.payload);
        assert_eq!(
            store
                .pull_request_title(&fx.repo, fx.pr)
                .await
                .expect("read"),
            None
        );

        store
            .save_pull_request_title(&fx.repo, fx.pr, &title, &author, 10)
            .await
            .expect("saved");
        let shouting = RepoName::parse(&fx.repo.to_string().to_uppercase()).expect("owner/name");
        let found = store
            .pull_request_title(&shouting, fx.pr)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(
            (found.pr, &found.title, &found.author),
            (fx.pr, &title, &author)
        );
        assert_eq!(found.updated_ms, 10);

        // The same again writes nothing; an edit replaces it; markup and NUL are kept as
        // text (the pages escape it), NUL replaced.
        store
            .save_pull_request_title(&fx.repo, fx.pr, &title, &author, 20)
            .await
            .expect("saved");
        let same = store
            .pull_request_title(&fx.repo, fx.pr)
            .await
            .expect("read");
        assert_eq!(
            same.map(|t| t.updated_ms),
            Some(10),
            "unchanged: not rewritten"
        );
        store
            .save_pull_request_title(&fx.repo, fx.pr, "<script>x</script>\0", &author, 30)
            .await
            .expect("saved");
        let edited = store
            .pull_request_title(&fx.repo, fx.pr)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(edited.title, "<script>x</script>\u{FFFD}");
        assert_eq!(edited.updated_ms, 30);

        // Other numbers and repositories are separate.
        assert_eq!(
            store
                .pull_request_title(&fx.repo, PrNumber(fx.pr.0 + 1))
                .await
                .expect("read"),
            None
        );
        let other = RepoName::new("someone", "else");
        assert_eq!(
            store.pull_request_title(&other, fx.pr).await.expect("read"),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn a_queue_lists_the_titles_of_its_active_entries_only() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let entry = |pr: u64| NewQueueEntry {
            repo: fx.repo.clone(),
            pr: PrNumber(pr),
            kind: QueueKind::Merge,
            target: fx.target.clone(),
            head_sha: fx.head.clone(),
            approver: Login::from("octocat"),
            command: "please".to_owned(),
            priority: 0,
            now_ms: 1,
        };
        for (pr, title) in [(1, "one"), (2, "two"), (3, "never queued")] {
            store
                .save_pull_request_title(&fx.repo, PrNumber(pr), title, &Login::from("carol"), 1)
                .await
                .expect("saved");
        }
        let mut ids = Vec::new();
        for pr in [1, 2, 4] {
            match store.enqueue(&entry(pr)).await.expect("enqueued") {
                greg_store::QueueInsert::Created(e) => ids.push(e.id),
                other => panic!("expected a new entry, found {other:?}"),
            }
        }
        // #2 lands: it leaves the queue. #4 was never seen: no title.
        store
            .update_queue_entry(
                ids[1],
                &QueueChange {
                    state: Some(QueueState::Landed),
                    ..QueueChange::default()
                },
                2,
            )
            .await
            .expect("landed");
        let titles = store
            .queued_pull_request_titles(&fx.repo)
            .await
            .expect("read");
        let listed: Vec<(u64, &str, &str)> = titles
            .iter()
            .map(|t| (t.pr.0, t.title.as_str(), t.author.as_str()))
            .collect();
        assert_eq!(listed, [(1, "one", "carol")]);
        let other = RepoName::new("someone", "else");
        assert_eq!(
            store
                .queued_pull_request_titles(&other)
                .await
                .expect("read"),
            []
        );
    })
    .await;
}
