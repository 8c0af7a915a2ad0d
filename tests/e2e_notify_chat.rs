//! End to end, chat notifications and command politeness (SPEC §9, issue 13 item 10): the real
//! greg against the fake GitHub and Jenkins, with local receivers standing in for Slack and
//! for a JSON webhook. A receiver gets exactly one post per event it asked for; the JSON event
//! carries its fields and a signature checked here with the secret; 502s are retried through
//! the outbox until one post is accepted; a 404 is given up and logged by host only;
//! "@greg treeclosed=N" is announced; `delete_commands` deletes carried-out command comments
//! (refused ones stay); `comments: false` answers with reactions instead of comments.

use greg_core::{BuildOutcome, CommentId, PrNumber};
use greg_testkit::tester::MERGE_JOB;
use greg_testkit::{GregTester, Received, RequestSink, TesterOptions};
use hmac::{Hmac, Mac};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The log lines of every test in this file (greg's tracing output), captured so that a test
/// can check what greg logged about a notification.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Capture(writer.clone()))
            .try_init();
        buffer
    })
    .clone()
}

/// A `Write` into the shared log buffer.
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// greg with merge_mode staging, `extra` appended to the repository's entry; alice and bob
/// have write permission.
async fn staging(extra: &str) -> anyhow::Result<GregTester> {
    logs();
    let t = GregTester::start_with(TesterOptions {
        repo_yaml: format!("    merge_mode: staging\n{extra}"),
        ..TesterOptions::default()
    })
    .await?;
    t.set_permission("alice", greg_core::Permission::Write)?;
    t.set_permission("bob", greg_core::Permission::Write)?;
    Ok(t)
}

/// The YAML of one `notify` target.
fn target(url: &str, events: &str, rest: &str) -> String {
    format!("      - url: {url}\n        events: [{events}]\n{rest}")
}

/// Reads every greg comment on `pr` the test has not read yet.
fn read_all(t: &mut GregTester, pr: PrNumber) -> Vec<String> {
    std::iter::from_fn(|| t.expect_comment(pr).ok()).collect()
}

/// The `text` of each post.
fn texts(posts: &[Received]) -> Vec<String> {
    posts
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.body).expect("a JSON body");
            v["text"].as_str().unwrap_or("").to_owned()
        })
        .collect()
}

/// Lands pull request `branch`: ready, "@greg please", a green merge build.
async fn land(t: &mut GregTester, branch: &str) -> anyhow::Result<PrNumber> {
    let (pr, _) = t.ready_pr(branch).await?;
    t.post_comment(pr, "alice", "@greg please").await?;
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(read_all(t, pr).iter().any(|c| c.contains("Merged")));
    Ok(pr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_posted_once_to_the_targets_that_asked_for_it() -> anyhow::Result<()> {
    let landings = RequestSink::start(200)?;
    let failures = RequestSink::start(200)?;
    let yaml = format!(
        "    notify:\n{}{}",
        target(
            &format!("{}/landings", landings.url),
            "landed, left_queue",
            ""
        ),
        target(&format!("{}/failures", failures.url), "failed", "")
    );
    let mut t = staging(&yaml).await?;

    let one = land(&mut t, "one").await?;

    let (two, _) = t.ready_pr("two").await?;
    t.post_comment(two, "alice", "@greg please").await?;
    let build = t.running_build(MERGE_JOB)?;
    t.finish_build(MERGE_JOB, BuildOutcome::Failure).await?;
    read_all(&mut t, two);

    let (three, _) = t.ready_pr("three").await?;
    t.post_comment(three, "alice", "@greg please").await?;
    t.push_to_pr(three, "three-2").await?;
    read_all(&mut t, three);
    t.settle().await?;

    let repo = &t.repo;
    assert_eq!(
        texts(&landings.received()),
        [
            format!("{repo}#{one} landed on master (approved by alice)"),
            format!("{repo}#{three} left the merge queue of master: new commits were pushed"),
        ]
    );
    let failed = texts(&failures.received());
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].starts_with(&format!("{repo}#{two} failed to land on master: ")),
        "{failed:?}"
    );
    assert!(
        failed[0].contains(&format!("/job/{MERGE_JOB}/{}/", build.number)),
        "the build's page: {failed:?}"
    );
    for r in landings.received().iter().chain(&failures.received()) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(
            r.header("x-greg-delivery")
                .is_some_and(|d| d.contains(":notify:"))
        );
        assert!(
            r.header("x-greg-signature-256").is_none(),
            "no secret, no signature"
        );
    }
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_event_carries_its_fields_and_a_signature_of_its_body() -> anyhow::Result<()> {
    let receiver = RequestSink::start(204)?;
    let secret = "open sesame";
    let yaml = format!(
        "    notify:\n{}",
        target(
            &format!("{}/greg", receiver.url),
            "landed",
            &format!("        format: json\n        secret: \"{secret}\"\n")
        )
    );
    let mut t = staging(&yaml).await?;
    let pr = land(&mut t, "one").await?;

    let posts = receiver.received();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())?;
    mac.update(post.body.as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(post.header("x-greg-signature-256"), Some(expected.as_str()));
    assert_eq!(post.header("x-greg-event"), Some("landed"));
    let event: serde_json::Value = serde_json::from_str(&post.body)?;
    assert_eq!(
        post.header("x-greg-delivery"),
        event["delivery"].as_str(),
        "the delivery header is the event's key"
    );
    assert_eq!(event["event"], "landed");
    assert_eq!(event["provider"], "github");
    assert_eq!(event["repository"], t.repo.to_string());
    assert_eq!(event["pull_request"], pr.0);
    assert_eq!(event["target"], "master");
    assert_eq!(event["by"], "alice");
    assert_eq!(
        event["head"].as_str(),
        t.world
            .pull_request(&t.repo, pr)
            .map(|p| p.head_sha.to_string())
            .as_deref()
    );
    assert!(
        event["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("landed as "))
    );
    assert_eq!(
        event["text"],
        format!("{}#{pr} landed on master (approved by alice)", t.repo)
    );
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_answers_502_twice_gets_the_notification_on_the_third_post()
-> anyhow::Result<()> {
    let receiver = RequestSink::scripted(&[502, 502], 200)?;
    let yaml = format!(
        "    notify:\n{}",
        target(&format!("{}/hook", receiver.url), "landed", "")
    );
    let mut t = staging(&yaml).await?;
    let pr = land(&mut t, "one").await?;

    let posts = receiver.wait_for(3, Duration::from_secs(10)).await?;
    t.settle().await?;
    let posts_after = receiver.received();
    assert_eq!(
        posts_after.len(),
        3,
        "two refused posts, one accepted, no more"
    );
    let deliveries: Vec<_> = posts.iter().map(|p| p.header("x-greg-delivery")).collect();
    assert!(
        deliveries
            .iter()
            .all(|d| *d == deliveries[0] && d.is_some()),
        "one notification, posted three times: {deliveries:?}"
    );
    assert_eq!(
        texts(&posts_after),
        vec![format!("{}#{pr} landed on master (approved by alice)", t.repo); 3]
    );
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_answers_404_is_given_up_and_logged_by_host_only() -> anyhow::Result<()> {
    let receiver = RequestSink::start(404)?;
    let path = "/services/T000/B000/gone-webhook-credential";
    let yaml = format!(
        "    notify:\n{}",
        target(&format!("{}{path}", receiver.url), "landed", "")
    );
    let mut t = staging(&yaml).await?;
    land(&mut t, "one").await?;
    t.settle().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(receiver.received().len(), 1, "a 404 is not retried");
    assert!(!t.engine.has_pending_effects().await, "given up");
    let logs = String::from_utf8_lossy(
        &logs()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned();
    let host = receiver.url.trim_start_matches("http://");
    assert!(
        logs.lines().any(|l| l.contains("ERROR")
            && l.contains(&format!("notification webhook at {host} answered HTTP 404"))),
        "an error line names the host"
    );
    assert!(
        !logs.contains("gone-webhook-credential"),
        "the URL's path is never logged"
    );
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_tree_is_announced_once() -> anyhow::Result<()> {
    let receiver = RequestSink::start(200)?;
    let yaml = format!(
        "    notify:\n{}",
        target(&format!("{}/hook", receiver.url), "tree_closed, landed", "")
    );
    let mut t = staging(&yaml).await?;
    let (pr, _) = t.open_pr("carol", "one").await?;
    t.post_comment(pr, "alice", "@greg treeclosed=5").await?;
    read_all(&mut t, pr);
    t.settle().await?;
    assert_eq!(
        texts(&receiver.received()),
        [format!(
            "{}: master closed by alice below priority 5 (on #{pr}); merges below it wait",
            t.repo
        )]
    );
    assert_eq!(
        receiver.received()[0].header("x-greg-event"),
        Some("tree_closed")
    );
    t.finish().await
}

/// The id of the last comment `author` wrote on `pr`.
fn last_comment_of(t: &GregTester, pr: PrNumber, author: &str) -> CommentId {
    t.world
        .comments(&t.repo, pr)
        .iter()
        .rev()
        .find(|c| c.author.as_str() == author)
        .map(|c| c.id)
        .expect("the comment exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_commands_deletes_carried_out_commands_and_keeps_refused_ones() -> anyhow::Result<()>
{
    let mut t = staging("    delete_commands: true\n").await?;
    let (pr, _) = t.ready_pr("one").await?;

    // mallory may not command greg: refused, the comment stays next to greg's answer.
    t.post_comment(pr, "mallory", "@greg please").await?;
    let refused = last_comment_of(&t, pr, "mallory");
    assert!(!read_all(&mut t, pr).is_empty(), "greg says why");

    // Written, then delivered: by the time the delivery is handled the comment is gone.
    let comment = t.world.comment(&t.repo, pr, "alice", "@greg please")?;
    let carried_out = comment.id;
    t.deliver(t.world.comment_webhook(&t.repo, &comment)?)
        .await?;
    t.settle().await?;

    let deleted: Vec<CommentId> = t
        .world
        .deleted_comments(&t.repo, pr)
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(deleted, [carried_out]);
    let left: Vec<CommentId> = t.world.comments(&t.repo, pr).iter().map(|c| c.id).collect();
    assert!(left.contains(&refused) && !left.contains(&carried_out));

    // The queue goes on as usual.
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    assert!(read_all(&mut t, pr).iter().any(|c| c.contains("Merged")));
    t.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_comments_commands_are_answered_with_reactions() -> anyhow::Result<()> {
    let t = staging("    comments: false\n").await?;
    let (pr, _) = t.ready_pr("one").await?;

    t.post_comment(pr, "alice", "@greg please").await?;
    let accepted = last_comment_of(&t, pr, "alice");
    t.post_comment(pr, "mallory", "@greg p=3").await?;
    let refused = last_comment_of(&t, pr, "mallory");
    t.post_comment(pr, "alice", "@greg frobnicate").await?;
    let unparsable = last_comment_of(&t, pr, "alice");

    assert_eq!(t.world.reactions(&t.repo, accepted), ["eyes", "rocket"]);
    assert_eq!(t.world.reactions(&t.repo, refused), ["eyes", "confused"]);
    assert_eq!(t.world.reactions(&t.repo, unparsable), ["eyes", "confused"]);
    t.expect_no_comment(pr)?;

    // A redelivered comment webhook (GitHub's redelivery has the same delivery id, so greg
    // drops it; a reaction again would be one reaction all the same).
    t.finish_build(MERGE_JOB, BuildOutcome::Success).await?;
    t.expect_no_comment(pr)?;
    assert_eq!(t.world.reactions(&t.repo, accepted), ["eyes", "rocket"]);
    t.finish().await
}
