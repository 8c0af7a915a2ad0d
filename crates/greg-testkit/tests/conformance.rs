//! The real adapters against the fakes: greg_github::GithubProvider and
//! greg_jenkins::JenkinsBuilder make their calls over HTTP to FakeGithub and FakeJenkins, and
//! parse the fakes' webhooks and notifications. Every GitHub request is then checked against
//! the OpenAPI description.

mod common;

use common::{repo, start};
use greg_core::{
    BuildContext, BuildOutcome, BuildParams, BuildPhase, BuildState, Builder, CommitState,
    CommitStatus, Event, Headers, Inbound, JobName, Login, Permission, PrNumber, Provider,
    PullRequestAction, ReviewState, Secret,
};
use greg_github::{GithubConfig, GithubProvider};
use greg_jenkins::{JenkinsBuilder, JenkinsConfig, parse_notification};
use greg_testkit::{GREG_PARAMETERS, NewPr, OpenApi, Outcome, RequestSink, Server, fake_sha};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn provider(url: &str) -> GithubProvider {
    let mut cfg = GithubConfig::new("greg-bot", Secret::new("ghp_test"));
    cfg.api_url = url.to_owned();
    cfg.webhook_secret = Some(Secret::new("s3cret"));
    GithubProvider::new(cfg).expect("provider")
}

#[tokio::test]
async fn github_provider_reads_and_writes_the_fake() {
    let f = start();
    let p = provider(&f.github.url);
    let head = fake_sha("conf-1");
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", head.clone()))
        .expect("open");
    f.world
        .approve(&repo(), pr.number, "alice")
        .expect("review");
    f.world
        .set_permission(&repo(), "alice", Permission::Write)
        .expect("perm");

    let got = p
        .pull_request(&repo(), pr.number)
        .await
        .expect("pull request");
    assert_eq!(got, pr.to_core(&repo(), &f.github.url));
    let reviews = p.reviews(&repo(), pr.number).await.expect("reviews");
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].state, ReviewState::Approved);
    assert_eq!(reviews[0].commit.as_ref(), Some(&head));
    assert_eq!(
        p.permission(&repo(), &Login::from("alice"))
            .await
            .expect("perm"),
        Permission::Write
    );
    assert_eq!(
        p.permission(&repo(), &Login::from("mallory"))
            .await
            .expect("perm"),
        Permission::Read
    );

    let id = p
        .post_comment(&repo(), pr.number, "Not ready to merge")
        .await
        .expect("comment");
    p.update_comment(&repo(), id, "Ready to merge")
        .await
        .expect("edit");
    let bot = f.world.bot_comments(&repo(), pr.number);
    assert_eq!(
        (bot.len(), bot[0].id, bot[0].body.as_str()),
        (1, id, "Ready to merge")
    );

    let status = CommitStatus {
        state: CommitState::Pending,
        context: "greg/test".into(),
        description: "Build queued".into(),
        target_url: Some("http://jenkins/job/demo-test/1/".into()),
    };
    p.set_status(&repo(), &head, &status).await.expect("status");
    let latest = f
        .world
        .latest_status(&repo(), &head, "greg/test")
        .expect("status");
    assert_eq!(latest.state, CommitState::Pending);
    assert_eq!(latest.creator.as_str(), "greg-bot");

    let missing = p
        .pull_request(&repo(), PrNumber(99))
        .await
        .expect_err("404");
    assert!(
        matches!(missing, greg_core::Error::NotFound { .. }),
        "{missing:?}"
    );

    let api = OpenApi::github_subset().expect("openapi");
    assert_eq!(f.github.validate_log(&api), []);
}

#[tokio::test]
async fn github_provider_parses_the_fakes_webhooks() {
    let f = start();
    let p = provider(&f.github.url);
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("w1")))
        .expect("open");
    f.world
        .push_to_pr(&repo(), pr.number, &fake_sha("w2"))
        .expect("push");
    let comment = f
        .world
        .comment(&repo(), pr.number, "alice", "@greg ok")
        .expect("comment");
    let review = f
        .world
        .approve(&repo(), pr.number, "alice")
        .expect("review");
    let deliveries = [
        f.world
            .pull_request_webhook(&repo(), pr.number, "synchronize")
            .expect("pr"),
        f.world.comment_webhook(&repo(), &comment).expect("comment"),
        f.world.review_webhook(&repo(), &review).expect("review"),
        f.world
            .push_webhook(&repo(), "fix", Some(&fake_sha("w1")), "carol")
            .expect("push"),
    ];
    let mut events = Vec::new();
    for d in &deliveries {
        let headers = Headers::new(d.headers(Some("s3cret")));
        p.verify_webhook(&headers, &d.body()).expect("signature");
        assert_eq!(
            p.delivery_id(&headers).as_deref(),
            Some(d.delivery_id.as_str())
        );
        match p.parse_webhook(&headers, &d.body()).expect("parse") {
            Inbound::Event(e) => events.push(e),
            Inbound::Ignored(why) => panic!("{} ignored: {why}", d.event),
            Inbound::Events(several) => panic!("{} gave several events: {several:?}", d.event),
        }
    }
    let [
        Event::PullRequest(sync),
        Event::Comment(c),
        Event::Review(r),
        Event::Push(push),
    ] = events.as_slice()
    else {
        panic!("unexpected events {events:?}");
    };
    assert_eq!(sync.action, PullRequestAction::Synchronize);
    assert_eq!(sync.pull_request.head_sha, fake_sha("w2"));
    assert_eq!(
        (c.pr, c.comment_id, c.body.as_str()),
        (pr.number, comment.id, "@greg ok")
    );
    assert_eq!(
        (r.state, r.commit.as_ref()),
        (ReviewState::Approved, Some(&fake_sha("w2")))
    );
    assert_eq!((push.branch.as_str(), &push.head), ("fix", &fake_sha("w2")));

    let tampered = Headers::new(deliveries[0].headers(Some("other")));
    assert!(p.verify_webhook(&tampered, &deliveries[0].body()).is_err());
}

fn params(commit: &str) -> BuildParams {
    BuildParams {
        source: "git@github.com:acme/demo.git".into(),
        commit: fake_sha(commit),
        context: BuildContext::Test,
        report: true,
        branch: "fix".into(),
        pr: Some(PrNumber(1)),
        target: Some("master".into()),
    }
}

#[tokio::test]
async fn jenkins_builder_runs_stops_and_cancels_on_the_fake() {
    let f = start();
    let greg = RequestSink::start(202).expect("sink");
    f.world
        .set_notification_url(Some(&format!("{}/build?builder=jenkins&token=t", greg.url)));
    f.world.require_crumb(Some("abc"));
    f.world
        .create_job("demo-test", GREG_PARAMETERS)
        .expect("job");
    f.world.script_outcome("demo-test", None, Outcome::Manual);
    let b = JenkinsBuilder::new(JenkinsConfig::new(
        f.jenkins.url.clone(),
        "greg",
        Secret::new("api-token"),
    ))
    .expect("builder");
    let job = JobName::from("demo-test");

    let item = b.trigger(&job, &params("j1")).await.expect("trigger");
    let running = f
        .world
        .wait_for("the build to start", WAIT, |s| {
            s.jenkins.queue.get(&item.0)?.build
        })
        .await
        .expect("started");
    assert_eq!(
        b.queue_item(item).await.expect("queue item"),
        BuildState::Running {
            number: running,
            url: b.build_url(&job, running)
        }
    );
    let build = f.world.build("demo-test", running).expect("build");
    assert_eq!(build.param("COMMIT"), Some(fake_sha("j1").as_str()));
    assert_eq!(build.param("TARGET_BRANCH"), Some("master"));

    b.stop(&job, running).await.expect("stop");
    assert!(matches!(
        b.build(&job, running).await.expect("build"),
        BuildState::Finished {
            outcome: BuildOutcome::Aborted,
            ..
        }
    ));
    b.stop(&job, running).await.expect("stop is idempotent");

    let phases: Vec<(BuildPhase, Option<BuildOutcome>)> = greg
        .wait_for(4, WAIT)
        .await
        .expect("notifications")
        .iter()
        .map(
            |r| match parse_notification(r.body.as_bytes()).expect("parse") {
                Inbound::Event(Event::Build(u)) => {
                    assert_eq!(u.queue_item, Some(item));
                    assert_eq!(u.commit, Some(fake_sha("j1")));
                    (u.phase, u.outcome)
                }
                other => panic!("unexpected {other:?}"),
            },
        )
        .collect();
    assert_eq!(
        phases,
        [
            (BuildPhase::Queued, None),
            (BuildPhase::Started, None),
            (BuildPhase::Completed, Some(BuildOutcome::Aborted)),
            (BuildPhase::Finalized, Some(BuildOutcome::Aborted)),
        ]
    );

    f.world.hold_queue(true);
    let held = b.trigger(&job, &params("j2")).await.expect("trigger");
    assert!(matches!(
        b.queue_item(held).await.expect("queued"),
        BuildState::Queued { .. }
    ));
    b.cancel_queued(held).await.expect("cancel");
    assert_eq!(
        b.queue_item(held).await.expect("cancelled"),
        BuildState::Cancelled
    );
    assert_eq!(f.world.builds("demo-test").len(), 1);

    let xml = b.get_job_config(&job).await.expect("config.xml");
    b.post_job_config(
        &job,
        &xml.replace(
            "<description></description>",
            "<description>greg</description>",
        ),
    )
    .await
    .expect("post config.xml");
    assert!(f.world.read(|s| {
        s.jenkins.jobs[&job]
            .config_xml
            .contains("<description>greg</description>")
    }));

    // The builder asked for a crumb only after Jenkins refused the first POST.
    let crumb_fetches =
        f.world
            .requests_matching(Server::Jenkins, "GET", "^/crumbIssuer/api/json$");
    assert_eq!(crumb_fetches.len(), 1);
}
