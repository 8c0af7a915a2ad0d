//! Webhook deliveries on the fake GitHub: the world sends deliveries to a repository webhook
//! and records them; `GET .../hooks/{id}/deliveries` lists them (GitHub's shapes, paged by
//! cursor) and `POST .../deliveries/{id}/attempts` re-sends one with the same GUID. The real
//! greg_github client reads and redelivers them; every request and answer is checked against
//! GitHub's OpenAPI description.

mod common;

use common::{repo, start};
use greg_core::{Error, Provider, Secret, WebhookDelivery as CoreDelivery};
use greg_github::{GithubConfig, GithubProvider};
use greg_testkit::{NewPr, OpenApi, RequestSink, fake_sha};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn provider(url: &str) -> GithubProvider {
    let mut cfg = GithubConfig::new("greg-bot", Secret::new("ghp_test"));
    cfg.api_url = url.to_owned();
    GithubProvider::new(cfg).expect("provider")
}

#[tokio::test]
async fn deliveries_are_recorded_listed_and_redelivered_with_the_same_guid() {
    let f = start();
    let greg = RequestSink::start(202).expect("sink");
    let hook_url = format!("{}/repo?provider=github&token=t0k", greg.url);
    let hook = f
        .world
        .add_hook(&repo(), &hook_url, &["issue_comment"], Some("s3cret"))
        .expect("hook");
    // A second hook to somewhere else, which greg must not pick.
    f.world
        .add_hook(&repo(), "https://ci.example.com/hook", &["push"], None)
        .expect("other hook");
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("d1")))
        .expect("open");
    let comment = f
        .world
        .comment(&repo(), pr.number, "alice", "@greg ok")
        .expect("comment");
    let delivery = f
        .world
        .comment_webhook(&repo(), &comment)
        .expect("delivery");

    let status = f
        .world
        .send_to_hook(&repo(), hook, &delivery)
        .await
        .expect("sent");
    assert_eq!(status, 202);
    let sent = greg.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].header("x-github-delivery"),
        Some(delivery.delivery_id.as_str())
    );
    assert_eq!(
        sent[0].header("x-github-hook-id"),
        Some(hook.to_string().as_str())
    );
    assert!(sent[0].header("x-hub-signature-256").is_some());

    // Raw: GitHub's shape, validated against the description.
    let path = format!("/repos/acme/demo/hooks/{hook}/deliveries");
    let response = f.gh(Method::GET, &path).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 200);
    let listed: Value = response.json().await.expect("json");
    let api = OpenApi::github_subset().expect("openapi");
    assert_eq!(api.validate_response("GET", &path, 200, &listed), Ok(()));
    assert_eq!(listed[0]["guid"], delivery.delivery_id.as_str());
    assert_eq!(listed[0]["event"], "issue_comment");
    assert_eq!(listed[0]["action"], "created");
    assert_eq!(listed[0]["status_code"], 202);
    assert_eq!(listed[0]["redelivery"], false);

    // The client finds greg's hook by URL prefix and reads the delivery.
    let p = provider(&f.github.url);
    let found = p
        .webhook_deliveries(&repo(), &format!("{}/repo", greg.url))
        .await
        .expect("deliveries");
    assert_eq!(found.len(), 1);
    let first: &CoreDelivery = &found[0];
    assert_eq!(
        (
            first.hook_id,
            first.guid.as_str(),
            first.status_code,
            first.redelivery
        ),
        (hook, delivery.delivery_id.as_str(), 202, false)
    );
    let recorded = f.world.hook_deliveries(&repo(), hook);
    assert_eq!(
        first.delivered_ms,
        i64::try_from(recorded[0].delivered_ms).expect("ms")
    );

    // A redelivery: 202 at once, then the same payload and GUID reach greg again.
    p.redeliver_webhook(&repo(), hook, first.id)
        .await
        .expect("redeliver");
    let again = f
        .world
        .wait_for("the redelivery", WAIT, |s| {
            let d = s.github.repos[&repo()].deliveries.last()?;
            d.redelivery.then(|| d.clone())
        })
        .await
        .expect("redelivered");
    assert_eq!(
        (again.guid.as_str(), again.status_code, again.hook_id),
        (delivery.delivery_id.as_str(), 202, hook)
    );
    let sent = greg.received();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].body, sent[0].body);
    assert_eq!(
        sent[1].header("x-github-delivery"),
        sent[0].header("x-github-delivery")
    );
    let found = p
        .webhook_deliveries(&repo(), &format!("{}/repo", greg.url))
        .await
        .expect("deliveries");
    assert_eq!(found.len(), 2);
    assert!(
        found[0].redelivery && !found[1].redelivery,
        "newest first: {found:?}"
    );

    // Unknown deliveries and hooks are GitHub's 404; so is a URL no hook has.
    let missing = p.redeliver_webhook(&repo(), hook, 999_999).await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
    let no_hook = p
        .webhook_deliveries(&repo(), "https://greg.example.com/repo")
        .await;
    assert!(
        matches!(no_hook, Err(Error::NotFound { .. })),
        "{no_hook:?}"
    );

    assert_eq!(f.github.validate_log(&api), []);
}

#[tokio::test]
async fn an_unreachable_greg_is_status_0_and_long_histories_page_by_cursor() {
    let f = start();
    // Nothing listens on port 9 of loopback.
    let hook_url = "http://127.0.0.1:9/repo?provider=github";
    let hook = f
        .world
        .add_hook(&repo(), hook_url, &["pull_request"], None)
        .expect("hook");
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("d2")))
        .expect("open");
    let delivery = f
        .world
        .pull_request_webhook(&repo(), pr.number, "opened")
        .expect("delivery");
    let status = f
        .world
        .send_to_hook(&repo(), hook, &delivery)
        .await
        .expect("sent");
    assert_eq!(status, 0);
    for _ in 0..150 {
        f.world
            .record_hook_delivery(&repo(), hook, &delivery, 202, true)
            .expect("record");
    }

    let path = format!("/repos/acme/demo/hooks/{hook}/deliveries?per_page=100");
    let response = f.gh(Method::GET, &path).send().await.expect("send");
    let link = response
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("a next page");
    assert!(
        link.contains("cursor=v1_") && link.contains("rel=\"next\""),
        "{link}"
    );
    let page: Value = response.json().await.expect("json");
    assert_eq!(page.as_array().map(Vec::len), Some(100));

    let p = provider(&f.github.url);
    let all = p
        .webhook_deliveries(&repo(), "http://127.0.0.1:9/repo")
        .await
        .expect("deliveries");
    assert_eq!(all.len(), 151);
    let oldest = all.last().expect("oldest");
    assert_eq!((oldest.status_code, oldest.redelivery), (0, false));
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    let api = OpenApi::github_subset().expect("openapi");
    assert_eq!(f.github.validate_log(&api), []);
}

/// The engine's end-to-end tests can route deliveries through a recorded hook: a hook on
/// greg's `/repo` URL with greg's secret, [`World::send_to_hook`], and the real greg answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_the_real_greg_are_recorded_with_its_answer() -> anyhow::Result<()> {
    use greg_testkit::GregTester;
    use greg_testkit::tester::WEBHOOK_SECRET;

    let t = GregTester::start().await?;
    let hook = t.world.add_hook(
        &t.repo,
        &t.repo_hook_url(),
        &greg_github::GREG_EVENTS,
        Some(WEBHOOK_SECRET),
    )?;
    let pr = t
        .world
        .open_pr(&t.repo, NewPr::new("carol", "fix", fake_sha("g1")))?;
    let comment = t
        .world
        .comment(&t.repo, pr.number, "carol", "Thanks, looks good to me.")?;
    let delivery = t.world.comment_webhook(&t.repo, &comment)?;
    assert_eq!(t.world.send_to_hook(&t.repo, hook, &delivery).await?, 202);
    t.settle().await?;

    let p = provider(&t.github.url);
    let listed = p
        .webhook_deliveries(&t.repo, &format!("{}/repo", t.url))
        .await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].status_code, listed[0].guid.as_str()),
        (202, delivery.delivery_id.as_str())
    );
    p.redeliver_webhook(&t.repo, hook, listed[0].id).await?;
    let again = t
        .world
        .wait_for("the redelivery", WAIT, |s| {
            s.github.repos[&t.repo]
                .deliveries
                .iter()
                .find(|d| d.redelivery)
                .cloned()
        })
        .await?;
    assert_eq!(again.guid, delivery.delivery_id);
    assert!(
        again.status_code >= 200 && again.status_code < 300,
        "{again:?}"
    );
    t.settle().await?;
    t.finish().await
}
