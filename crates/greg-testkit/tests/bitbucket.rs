//! The fake Bitbucket Cloud and Server over raw HTTP: the wire details a client relies on
//! (credentials, error bodies, pagination, optimistic locking, merges), checked against the
//! vendors' documented shapes. The real client runs against both fakes in the provider
//! conformance suite (tests/conformance.rs of the greg package).

mod common;

use greg_core::{Permission, PullRequestState, RepoName};
use greg_testkit::{
    BitbucketFlavor, FakeBitbucketCloud, FakeBitbucketServer, NewPr, World, fake_sha,
};
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "app-password";

struct Fakes {
    world: World,
    cloud: FakeBitbucketCloud,
    server: FakeBitbucketServer,
    http: reqwest::Client,
}

fn start() -> Fakes {
    let world = World::new("greg-bot");
    let cloud = FakeBitbucketCloud::start(world.clone()).expect("cloud");
    let server = FakeBitbucketServer::start(world.clone()).expect("server");
    let bb = world.bitbucket();
    bb.set_password(Some(PASSWORD));
    bb.create_repo(&repo()).expect("repo");
    Fakes {
        world,
        cloud,
        server,
        http: common::client(),
    }
}

fn repo() -> RepoName {
    RepoName::new("acme", "demo")
}

impl Fakes {
    fn cloud(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.cloud.url))
            .basic_auth("greg-bot", Some(PASSWORD))
    }

    fn server(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.server.url))
            .bearer_auth(PASSWORD)
    }
}

async fn json_of(r: reqwest::RequestBuilder) -> (u16, Value) {
    let response = r.send().await.expect("send");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn both_flavors_require_credentials_and_answer_their_own_error_bodies() {
    let f = start();
    let (status, body) = json_of(
        f.http
            .get(format!("{}/2.0/repositories/acme/demo", f.cloud.url))
            .basic_auth("greg-bot", Some("wrong")),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error");
    assert!(body["error"]["message"].is_string());
    let (status, body) = json_of(
        f.http
            .get(format!(
                "{}/rest/api/1.0/projects/acme/repos/demo",
                f.server.url
            ))
            .bearer_auth("wrong"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body["errors"][0]["exceptionName"],
        "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"
    );
    let (status, body) = json_of(f.cloud(Method::GET, "/2.0/repositories/acme/nope")).await;
    assert_eq!((status, body["type"].as_str()), (404, Some("error")));
    let (status, body) = json_of(f.server(
        Method::GET,
        "/rest/api/1.0/projects/acme/repos/demo/pull-requests/9",
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["errors"][0]["exceptionName"],
        "com.atlassian.bitbucket.pull.NoSuchPullRequestException"
    );
    let log = f.world.bitbucket().requests();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].flavor, BitbucketFlavor::Cloud);
    assert_eq!(log[1].flavor, BitbucketFlavor::Server);
}

#[tokio::test]
async fn pages_follow_each_vendors_rules() {
    let f = start();
    let bb = f.world.bitbucket();
    for i in 0..3 {
        bb.open_pr(
            &repo(),
            NewPr::new("carol", &format!("f{i}"), fake_sha(&format!("p{i}"))),
        )
        .expect("open");
    }
    // Cloud: `pagelen`, `page`, and `next` as an absolute URL that keeps the query.
    let (_, first) = json_of(f.cloud(
        Method::GET,
        "/2.0/repositories/acme/demo/pullrequests?state=OPEN&pagelen=2",
    ))
    .await;
    assert_eq!(
        (first["size"].as_u64(), first["page"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(first["values"].as_array().map(Vec::len), Some(2));
    let next = first["next"].as_str().expect("next");
    assert!(
        next.starts_with(&f.cloud.url) && next.contains("state=OPEN") && next.contains("page=2")
    );
    let (_, second) = json_of(f.http.get(next).basic_auth("greg-bot", Some(PASSWORD))).await;
    assert_eq!(second["values"].as_array().map(Vec::len), Some(1));
    assert!(second.get("next").is_none());
    // Server: `start`, `limit`, `isLastPage`, `nextPageStart`.
    let path = "/rest/api/1.0/projects/acme/repos/demo/pull-requests";
    let (_, first) = json_of(f.server(Method::GET, &format!("{path}?limit=2"))).await;
    assert_eq!(
        (
            first["isLastPage"].as_bool(),
            first["nextPageStart"].as_u64()
        ),
        (Some(false), Some(2))
    );
    let (_, last) = json_of(f.server(Method::GET, &format!("{path}?start=2&limit=2"))).await;
    assert_eq!(last["isLastPage"], true);
    assert!(last.get("nextPageStart").is_none());
    // The world can cap pages whatever the client asks for.
    bb.set_max_page(Some(1));
    let (_, capped) = json_of(f.server(Method::GET, &format!("{path}?limit=100"))).await;
    assert_eq!(capped["values"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn server_comments_and_merges_are_locked_by_version() {
    let f = start();
    let bb = f.world.bitbucket();
    let pr = bb
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("v1")))
        .expect("open");
    let base = format!(
        "/rest/api/1.0/projects/acme/repos/demo/pull-requests/{}",
        pr.id
    );
    let (status, created) = json_of(
        f.server(Method::POST, &format!("{base}/comments"))
            .json(&json!({"text": "Not ready"})),
    )
    .await;
    assert_eq!((status, created["version"].as_u64()), (201, Some(0)));
    let comment = format!("{base}/comments/{}", created["id"]);
    let (status, edited) = json_of(
        f.server(Method::PUT, &comment)
            .json(&json!({"text": "Ready", "version": 0})),
    )
    .await;
    assert_eq!((status, edited["version"].as_u64()), (200, Some(1)));
    let (status, stale) = json_of(
        f.server(Method::PUT, &comment)
            .json(&json!({"text": "Again", "version": 0})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        (
            stale["errors"][0]["currentVersion"].as_u64(),
            stale["errors"][0]["expectedVersion"].as_u64()
        ),
        (Some(1), Some(0))
    );
    // A push bumps the pull request's version: a merge at the old version is refused.
    bb.push_to_pr(&repo(), pr.id, &fake_sha("v2"))
        .expect("push");
    let (status, refused) =
        json_of(f.server(Method::POST, &format!("{base}/merge?version=0"))).await;
    assert_eq!(status, 409);
    assert_eq!(
        refused["errors"][0]["exceptionName"],
        "com.atlassian.bitbucket.pull.PullRequestOutOfDateException"
    );
    let (status, merged) =
        json_of(f.server(Method::POST, &format!("{base}/merge?version=1"))).await;
    assert_eq!((status, merged["state"].as_str()), (200, Some("MERGED")));
    let now = bb.pull_request(&repo(), pr.id).expect("pr");
    assert_eq!(now.state, PullRequestState::Merged);
    let master = bb.branch(&repo(), "master").expect("master");
    assert!(
        f.world
            .read(|s| s.bitbucket.repos[&repo()].is_ancestor(&fake_sha("v2"), &master))
    );
}

#[tokio::test]
async fn cloud_merges_take_whatever_head_there_is_and_conflicts_are_refused() {
    let f = start();
    let bb = f.world.bitbucket();
    let pr = bb
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("c1")))
        .expect("open");
    bb.set_conflicting(&repo(), &fake_sha("c1"), true)
        .expect("conflict");
    let merge = format!("/2.0/repositories/acme/demo/pullrequests/{}/merge", pr.id);
    let (status, refused) = json_of(f.cloud(Method::POST, &merge).json(&json!({}))).await;
    assert_eq!(status, 400);
    assert!(refused["error"]["fields"]["merge_checks"][0].is_string());
    bb.set_conflicting(&repo(), &fake_sha("c1"), false)
        .expect("clean");
    let (status, merged) = json_of(
        f.cloud(Method::POST, &merge)
            .json(&json!({"merge_strategy": "merge_commit", "close_source_branch": false})),
    )
    .await;
    assert_eq!((status, merged["state"].as_str()), (200, Some("MERGED")));
    // Pull-request objects abbreviate commits to 12 digits, as Cloud does.
    assert_eq!(
        merged["source"]["commit"]["hash"].as_str().map(str::len),
        Some(12)
    );
    assert_eq!(
        merged["merge_commit"]["hash"].as_str().map(str::len),
        Some(12)
    );
}

#[tokio::test]
async fn cloud_permissions_need_an_administrator_and_filter_by_account() {
    let f = start();
    let bb = f.world.bitbucket();
    bb.set_permission(&repo(), "557058:alice", Permission::Write)
        .expect("grant");
    let path = "/2.0/workspaces/acme/permissions/repositories/demo";
    let (status, page) = json_of(
        f.cloud(Method::GET, path)
            .query(&[("q", "user.account_id=\"557058:alice\"")]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["values"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["values"][0]["permission"], "write");
    bb.set_permission(&repo(), "greg-bot", Permission::Write)
        .expect("demote the bot");
    let (status, body) = json_of(f.cloud(Method::GET, path)).await;
    assert_eq!((status, body["type"].as_str()), (403, Some("error")));
}

#[tokio::test]
async fn faults_are_one_shot_and_carry_retry_after() {
    let f = start();
    let bb = f.world.bitbucket();
    bb.fail_next(BitbucketFlavor::Server, "/repos/demo$", 429, Some(3))
        .expect("regex");
    let path = "/rest/api/1.0/projects/acme/repos/demo";
    let response = f.server(Method::GET, path).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    let (status, _) = json_of(f.server(Method::GET, path)).await;
    assert_eq!(status, 200);
    // A Cloud fault does not fire on Server requests.
    bb.fail_next(BitbucketFlavor::Cloud, "/repos/demo$", 500, None)
        .expect("regex");
    let (status, _) = json_of(f.server(Method::GET, path)).await;
    assert_eq!(status, 200);
    assert_eq!(bb.requests().iter().filter(|r| r.faulted).count(), 1);
}

/// The top-level keys of `v` (and of `v[inner]`), sorted.
fn keys(v: &Value, inner: Option<&str>) -> Vec<String> {
    let object = match inner {
        Some(k) => &v[k],
        None => v,
    };
    let mut out: Vec<String> = object
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn capture(path: &str) -> Value {
    let full = format!("{}/../../tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_slice(&raw).expect("capture JSON")
}

#[tokio::test]
async fn deliveries_carry_every_key_of_the_vendor_captures() {
    let f = start();
    let bb = f.world.bitbucket();
    let pr = bb
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("d1")))
        .expect("open");
    let comment = bb
        .comment(&repo(), pr.id, "alice", "@greg ok")
        .expect("comment");
    bb.approve(&repo(), pr.id, "alice").expect("approve");
    let (cloud, server) = (BitbucketFlavor::Cloud, BitbucketFlavor::Server);
    let cases = [
        (
            "bitbucket-cloud/pullrequest_created.cloudbees.json",
            bb.pull_request_webhook(cloud, &repo(), pr.id, "pullrequest:created", None),
            "pullrequest",
        ),
        (
            "bitbucket-cloud/pullrequest_comment_created.json",
            bb.comment_webhook(cloud, &repo(), &comment),
            "comment",
        ),
        (
            "bitbucket-server/pr_opened.json",
            bb.pull_request_webhook(server, &repo(), pr.id, "pr:opened", None),
            "pullRequest",
        ),
        (
            "bitbucket-server/pr_comment_added.json",
            bb.comment_webhook(server, &repo(), &comment),
            "comment",
        ),
        (
            "bitbucket-server/pr_reviewer_approved.json",
            bb.review_webhook(server, &repo(), pr.id, "alice"),
            "participant",
        ),
    ];
    for (path, delivery, object) in cases {
        let delivery = delivery.expect("delivery");
        let vendor = capture(path);
        for inner in [None, Some(object)] {
            let ours = keys(&delivery.payload, inner);
            let missing: Vec<String> = keys(&vendor, inner)
                .into_iter()
                .filter(|k| !ours.contains(k))
                .collect();
            assert!(missing.is_empty(), "{path} {inner:?}: missing {missing:?}");
        }
    }
}
