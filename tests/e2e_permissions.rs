//! End to end, who may do what (SPEC §4): a reviewer without write permission (named by
//! "@greg review" or configured) may use `ok`, `lgtm`, `not lgtm` and `help`; what acts on the
//! queue, the builds or the branch (`treeclosed`, `treeopen`, `p=`, `please`, `try`, `retest`,
//! `cancel` of someone else's request) needs write permission.

use greg_core::{BuildOutcome, Permission};
use greg_testkit::GregTester;
use greg_testkit::tester::{MERGE_JOB, TEST_JOB};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_reviewer_without_write_permission_cannot_act_on_the_queue_or_the_tree()
-> anyhow::Result<()> {
    let mut t = GregTester::start().await?;
    t.set_permission("alice", Permission::Write)?;
    t.set_permission("bob", Permission::Write)?;
    t.set_permission("dave", Permission::Read)?;
    let (pr, _head) = t.open_pr("carol", "feature").await?;
    t.finish_build(TEST_JOB, BuildOutcome::Success).await?;
    t.approve(pr, "bob").await?;
    t.post_comment(pr, "alice", "@greg review @dave").await?;
    assert!(t.expect_comment(pr)?.contains("@dave"));

    for command in ["treeclosed=5", "treeopen", "p=3", "please", "try", "retest"] {
        t.post_comment(pr, "dave", &format!("@greg {command}"))
            .await?;
        let answer = t.expect_comment(pr)?;
        assert!(
            answer.contains("Sorry @dave") && answer.contains("needs write access"),
            "{command}: {answer}"
        );
    }
    let closure = t.engine.store().tree_closure(&t.repo, "master").await?;
    assert_eq!(closure, None, "the tree stays open");
    assert!(t.builds(MERGE_JOB).is_empty());
    assert_eq!(t.builds(TEST_JOB).len(), 1, "no retest");

    // What a reviewer may do still works.
    t.post_comment(pr, "dave", "@greg lgtm").await?;
    t.expect_no_comment(pr)?;
    t.post_comment(pr, "dave", "@greg ok").await?;
    assert!(t.expect_comment(pr)?.contains("Ready to merge"));

    // A writer's merge request cannot be withdrawn by the reviewer.
    t.post_comment(pr, "alice", "@greg please").await?;
    assert!(t.expect_comment(pr)?.contains("Merging"));
    t.post_comment(pr, "dave", "@greg cancel").await?;
    assert!(t.expect_comment(pr)?.contains("needs write access"));
    assert!(
        t.running_build(MERGE_JOB).is_ok(),
        "the merge build runs on"
    );

    // A writer may close the tree.
    t.post_comment(pr, "bob", "@greg treeclosed=5").await?;
    assert!(t.expect_comment(pr)?.contains("closed"));
    assert!(
        t.engine
            .store()
            .tree_closure(&t.repo, "master")
            .await?
            .is_some()
    );
    t.finish().await
}
