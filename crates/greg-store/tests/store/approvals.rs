//! Approvals from "@greg lgtm", reviewers from "@greg review", and commit statuses.

use crate::common::{run_on_all_backends, run_on_persistent_backends, synchronize};
use greg_core::{Approval, ApprovalSource, CommitState, Login, PrNumber, RepoName};
use greg_store::StoreError;

#[tokio::test]
async fn an_approval_is_upserted_per_person_and_bound_to_its_head() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        assert_eq!(store.approvals(&fx.repo, fx.pr).await.expect("none"), []);

        let alice = Login::from("Alice");
        store
            .set_approval(&fx.repo, fx.pr, &alice, &fx.previous, 1)
            .await
            .expect("approved");
        store
            .set_approval(&fx.repo, fx.pr, &Login::from("bob"), &fx.head, 2)
            .await
            .expect("approved");
        // Alice approves again after the push, spelling her login in lower case.
        store
            .set_approval(&fx.repo, fx.pr, &Login::from("alice"), &fx.head, 3)
            .await
            .expect("approved");

        let approvals = store.approvals(&fx.repo, fx.pr).await.expect("approvals");
        assert_eq!(
            approvals,
            [
                Approval {
                    login: Login::from("alice"),
                    sha: fx.head.clone(),
                    source: ApprovalSource::Comment,
                },
                Approval {
                    login: Login::from("bob"),
                    sha: fx.head.clone(),
                    source: ApprovalSource::Comment,
                },
            ]
        );
        assert_eq!(approvals[0].login.as_str(), "alice", "latest spelling kept");

        // Other pull requests and repositories are separate.
        assert_eq!(
            store.approvals(&fx.repo, PrNumber(3)).await.expect("none"),
            []
        );
        let other = RepoName::new("Codertocat", "Other");
        assert_eq!(store.approvals(&other, fx.pr).await.expect("none"), []);
    })
    .await;
}

#[tokio::test]
async fn an_approval_is_withdrawn_once() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let alice = Login::from("alice");
        store
            .set_approval(&fx.repo, fx.pr, &alice, &fx.head, 1)
            .await
            .expect("approved");
        store
            .set_approval(&fx.repo, PrNumber(3), &alice, &fx.head, 1)
            .await
            .expect("approved");

        let removed = store
            .remove_approval(&fx.repo, fx.pr, &Login::from("ALICE"))
            .await;
        assert!(removed.expect("removed"), "case-insensitive");
        let again = store.remove_approval(&fx.repo, fx.pr, &alice).await;
        assert!(!again.expect("answered"), "nothing left to remove");
        assert_eq!(store.approvals(&fx.repo, fx.pr).await.expect("none"), []);
        assert_eq!(
            store
                .approvals(&fx.repo, PrNumber(3))
                .await
                .expect("kept")
                .len(),
            1,
            "the other pull request keeps its approval"
        );
    })
    .await;
}

#[tokio::test]
async fn required_reviewers_accumulate_without_duplicates() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let logins = |names: &[&str]| names.iter().map(|n| Login::from(*n)).collect::<Vec<_>>();
        assert_eq!(
            store
                .required_reviewers(&fx.repo, fx.pr)
                .await
                .expect("none"),
            []
        );

        store
            .add_required_reviewers(&fx.repo, fx.pr, &logins(&["carol", "Bob"]))
            .await
            .expect("added");
        store
            .add_required_reviewers(&fx.repo, fx.pr, &logins(&["bob", "alice", "alice"]))
            .await
            .expect("added");
        store
            .add_required_reviewers(&fx.repo, fx.pr, &[])
            .await
            .expect("nothing to add");

        let required = store
            .required_reviewers(&fx.repo, fx.pr)
            .await
            .expect("listed");
        let names: Vec<&str> = required.iter().map(Login::as_str).collect();
        assert_eq!(names, ["alice", "Bob", "carol"], "first spelling kept");
        assert_eq!(
            store
                .required_reviewers(&fx.repo, PrNumber(3))
                .await
                .expect("none"),
            []
        );
    })
    .await;
}

#[tokio::test]
async fn commit_statuses_keep_the_latest_state_per_context() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        assert_eq!(
            store
                .commit_status(&fx.repo, &fx.head, "greg/test")
                .await
                .expect("none"),
            None
        );
        store
            .set_commit_status(&fx.repo, &fx.head, "greg/test", CommitState::Pending, 1)
            .await
            .expect("set");
        store
            .set_commit_status(&fx.repo, &fx.head, "greg/merge", CommitState::Failure, 2)
            .await
            .expect("set");
        store
            .set_commit_status(&fx.repo, &fx.head, "greg/test", CommitState::Success, 3)
            .await
            .expect("set");

        let status = |context: &'static str, sha| {
            let store = store.clone();
            let repo = fx.repo.clone();
            async move {
                store
                    .commit_status(&repo, sha, context)
                    .await
                    .expect("read")
            }
        };
        assert_eq!(
            status("greg/test", &fx.head).await,
            Some(CommitState::Success)
        );
        assert_eq!(
            status("greg/merge", &fx.head).await,
            Some(CommitState::Failure)
        );
        assert_eq!(status("greg/try", &fx.head).await, None);
        assert_eq!(status("greg/test", &fx.previous).await, None);
    })
    .await;
}

#[tokio::test]
async fn corrupt_approval_and_status_rows_are_errors() {
    run_on_persistent_backends(|db| async move {
        let fx = synchronize();
        let store = db.connect().await;
        store
            .set_approval(&fx.repo, fx.pr, &Login::from("alice"), &fx.head, 1)
            .await
            .expect("approved");
        store
            .set_commit_status(&fx.repo, &fx.head, "greg/test", CommitState::Success, 1)
            .await
            .expect("set");
        db.execute("UPDATE approvals SET sha = 'abc'; UPDATE commit_statuses SET state = 'green'")
            .await;

        let err = store.approvals(&fx.repo, fx.pr).await.expect_err("corrupt");
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    table: "approvals",
                    column: "sha"
                }
            ),
            "{err:?}"
        );
        let err = store
            .commit_status(&fx.repo, &fx.head, "greg/test")
            .await
            .expect_err("corrupt");
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    table: "commit_statuses",
                    column: "state"
                }
            ),
            "{err:?}"
        );
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn project_reviewers_are_replaced_as_a_whole() {
    run_on_all_backends(|store| async move {
        let fx = synchronize();
        let logins = |names: &[&str]| names.iter().map(|n| Login::from(*n)).collect::<Vec<_>>();
        let admin = Login::from("root");
        assert_eq!(store.project_reviewers(&fx.repo).await.expect("none"), []);

        store
            .set_project_reviewers(&fx.repo, &logins(&["carol", "Bob", "bob"]), &admin, 1)
            .await
            .expect("set");
        let names = |l: Vec<Login>| l.iter().map(|l| l.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(
            names(store.project_reviewers(&fx.repo).await.expect("listed")),
            ["Bob", "carol"],
            "one row per login, first spelling kept"
        );

        store
            .set_project_reviewers(&fx.repo, &logins(&["alice"]), &admin, 2)
            .await
            .expect("replaced");
        assert_eq!(
            names(store.project_reviewers(&fx.repo).await.expect("listed")),
            ["alice"]
        );
        let other = greg_core::RepoName::new("acme", "other");
        assert_eq!(store.project_reviewers(&other).await.expect("none"), []);

        store
            .set_project_reviewers(&fx.repo, &[], &admin, 3)
            .await
            .expect("emptied");
        assert_eq!(store.project_reviewers(&fx.repo).await.expect("none"), []);
    })
    .await;
}
