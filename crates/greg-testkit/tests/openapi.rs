//! OpenAPI checks against tests/data/github/openapi-subset.json: request validation, log
//! validation, and the fake's own responses against the response schemas.

mod common;

use common::{Fakes, repo, start};
use greg_core::{Permission, ReviewState};
use greg_testkit::{NewPr, OpenApi, fake_sha};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::LazyLock;

static API: LazyLock<OpenApi> = LazyLock::new(|| OpenApi::github_subset().expect("openapi subset"));

#[test]
fn a_valid_status_body_passes_and_a_bogus_state_fails() {
    let path = format!("/repos/acme/demo/statuses/{}", fake_sha("x"));
    let ok = json!({ "state": "pending", "context": "greg/test", "description": "Build #1", "target_url": null });
    assert_eq!(API.validate("POST", &path, Some(&ok)), Ok(()));

    let bogus = json!({ "state": "bogus", "context": "greg/test" });
    let err = API
        .validate("POST", &path, Some(&bogus))
        .expect_err("bogus state");
    assert!(err.contains("/state") && err.contains("bogus"), "{err}");
    assert!(err.contains("repos/create-commit-status"), "{err}");

    let missing = json!({ "context": "greg/test" });
    let err = API
        .validate("POST", &path, Some(&missing))
        .expect_err("state is required");
    assert!(err.contains("state"), "{err}");
}

#[test]
fn unknown_paths_methods_and_bodies_are_violations() {
    assert!(
        API.validate("GET", "/repos/acme/demo/labels", None)
            .expect_err("unknown path")
            .contains("no operation matches")
    );
    assert!(
        API.validate("DELETE", "/repos/acme/demo/pulls/1", None)
            .expect_err("method")
            .contains("method DELETE is not described")
    );
    assert!(
        API.validate("GET", "/repos/acme/demo/pulls/1", Some(&json!({})))
            .expect_err("body on GET")
            .contains("takes no JSON body")
    );
    assert!(
        API.validate("POST", "/repos/acme/demo/issues/1/comments", None)
            .expect_err("missing body")
            .contains("requires a JSON body")
    );
}

#[test]
fn path_templates_resolve_like_github() {
    let op = |m: &str, p: &str| API.operation(m, p).map(|o| o.operation_id.clone());
    assert_eq!(op("GET", "/repos/a/b/pulls/1").as_deref(), Ok("pulls/get"));
    assert_eq!(
        op("GET", "/repos/a/b/pulls/1/reviews?per_page=100&page=2").as_deref(),
        Ok("pulls/list-reviews")
    );
    assert_eq!(
        op("PATCH", "/repos/a/b/git/refs/heads/feature/x").as_deref(),
        Ok("git/update-ref")
    );
    assert_eq!(
        op("GET", "/repos/a/b/git/ref/heads%2Ffeature").as_deref(),
        Ok("git/get-ref")
    );
    assert_eq!(
        op("GET", "/repos/a/b/commits/feature/x/status").as_deref(),
        Ok("repos/get-combined-status-for-ref")
    );
    assert_eq!(
        op("PATCH", "/repos/a/b/issues/comments/7").as_deref(),
        Ok("issues/update-comment")
    );
    assert_eq!(
        op("POST", "/repos/a/b/issues/7/comments").as_deref(),
        Ok("issues/create-comment")
    );
    // `{repo}` is one segment: a deeper unknown path does not match `GET /repos/{owner}/{repo}`.
    assert!(op("GET", "/repos/a/b/c").is_err());
    // Nullable fields accept null (OpenAPI 3.0 `nullable`), but not another type.
    let path = "/repos/a/b/git/refs/heads/x";
    assert_eq!(
        API.validate(
            "PATCH",
            path,
            Some(&json!({ "sha": fake_sha("a").as_str(), "force": false }))
        ),
        Ok(())
    );
    assert!(
        API.validate("PATCH", path, Some(&json!({ "sha": 5 })))
            .is_err()
    );
}

#[tokio::test]
async fn the_request_log_validates_and_a_bad_call_is_reported() {
    let f = start();
    let sha = fake_sha("log");
    f.world
        .open_pr(&repo(), NewPr::new("carol", "fix", sha.clone()))
        .expect("open");
    f.gh(Method::GET, "/repos/acme/demo/pulls/1")
        .send()
        .await
        .expect("send");
    f.gh(Method::POST, "/repos/acme/demo/issues/1/comments")
        .json(&json!({ "body": "hi" }))
        .send()
        .await
        .expect("send");
    f.gh(Method::POST, &format!("/repos/acme/demo/statuses/{sha}"))
        .json(&json!({ "state": "success", "context": "greg/test", "target_url": "http://j/1/" }))
        .send()
        .await
        .expect("send");
    assert_eq!(f.github.validate_log(&API), []);

    f.gh(Method::POST, &format!("/repos/acme/demo/statuses/{sha}"))
        .json(&json!({ "state": "bogus" }))
        .send()
        .await
        .expect("send");
    f.gh(Method::GET, "/repos/acme/demo/labels")
        .send()
        .await
        .expect("send");
    let violations = f.github.validate_log(&API);
    let summary: Vec<(u64, &str)> = violations
        .iter()
        .map(|v| (v.seq, v.method.as_str()))
        .collect();
    assert_eq!(summary, [(3, "POST"), (4, "GET")]);
    assert!(violations[0].message.contains("bogus"), "{}", violations[0]);
}

/// Calls the fake and checks its answer against the response schema of the operation.
async fn check_response(f: &Fakes, method: Method, path: &str, body: Option<Value>) -> Value {
    let mut req = f.gh(method.clone(), path);
    if let Some(b) = &body {
        req = req.json(b);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("text");
    let v: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("json")
    };
    if let Err(e) = API.validate_response(method.as_str(), path, status, &v) {
        panic!("{method} {path} answered {status} off-schema: {e}");
    }
    v
}

#[tokio::test]
async fn every_response_of_the_fake_matches_githubs_response_schemas() {
    let f = start();
    let head = fake_sha("schema");
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", head.clone()))
        .expect("open");
    f.world
        .approve(&repo(), pr.number, "alice")
        .expect("review");
    f.world
        .review(&repo(), pr.number, "bob", ReviewState::Commented, "nit")
        .expect("review");
    f.world
        .set_permission(&repo(), "alice", Permission::Write)
        .expect("perm");
    f.world
        .comment(&repo(), pr.number, "alice", "@greg ok")
        .expect("comment");

    check_response(&f, Method::GET, "/repos/acme/demo", None).await;
    check_response(&f, Method::GET, "/repos/acme/demo/pulls/1", None).await;
    check_response(&f, Method::GET, "/repos/acme/demo/pulls?state=all", None).await;
    check_response(&f, Method::GET, "/repos/acme/demo/pulls/1/reviews", None).await;
    check_response(
        &f,
        Method::GET,
        "/repos/acme/demo/collaborators/alice/permission",
        None,
    )
    .await;
    let c = check_response(
        &f,
        Method::POST,
        "/repos/acme/demo/issues/1/comments",
        Some(json!({ "body": "Ready" })),
    )
    .await;
    let id = c["id"].as_u64().expect("id");
    check_response(
        &f,
        Method::PATCH,
        &format!("/repos/acme/demo/issues/comments/{id}"),
        Some(json!({ "body": "Ready!" })),
    )
    .await;
    check_response(&f, Method::GET, "/repos/acme/demo/issues/1/comments", None).await;
    check_response(
        &f,
        Method::POST,
        &format!("/repos/acme/demo/statuses/{head}"),
        Some(json!({ "state": "success", "context": "greg/test", "description": "ok", "target_url": "http://j/1/" })),
    )
    .await;
    check_response(
        &f,
        Method::GET,
        &format!("/repos/acme/demo/commits/{head}/status"),
        None,
    )
    .await;
    check_response(&f, Method::GET, "/repos/acme/demo/branches/master", None).await;
    check_response(
        &f,
        Method::GET,
        "/repos/acme/demo/git/ref/heads/master",
        None,
    )
    .await;
    let master = f.world.branch(&repo(), "master").expect("master");
    check_response(
        &f,
        Method::POST,
        "/repos/acme/demo/git/refs",
        Some(json!({ "ref": "refs/heads/staging", "sha": master.as_str() })),
    )
    .await;
    let m = check_response(
        &f,
        Method::POST,
        "/repos/acme/demo/merges",
        Some(json!({ "base": "staging", "head": head.as_str() })),
    )
    .await;
    check_response(
        &f,
        Method::PATCH,
        "/repos/acme/demo/git/refs/heads/master",
        Some(json!({ "sha": m["sha"], "force": false })),
    )
    .await;
    check_response(
        &f,
        Method::DELETE,
        "/repos/acme/demo/git/refs/heads/staging",
        None,
    )
    .await;
    check_response(
        &f,
        Method::DELETE,
        &format!("/repos/acme/demo/issues/comments/{id}"),
        None,
    )
    .await;
    // Error bodies are `basic-error` / `validation-error`.
    check_response(&f, Method::GET, "/repos/acme/demo/pulls/99", None).await;
    check_response(
        &f,
        Method::POST,
        "/repos/acme/demo/git/refs",
        Some(json!({ "ref": "refs/heads/master", "sha": master.as_str() })),
    )
    .await;
    let second = f
        .world
        .open_pr(&repo(), NewPr::new("dave", "two", fake_sha("two")))
        .expect("open");
    check_response(
        &f,
        Method::PUT,
        &format!("/repos/acme/demo/pulls/{}/merge", second.number),
        Some(json!({ "sha": fake_sha("two").as_str() })),
    )
    .await;
    assert_eq!(f.github.validate_log(&API), []);
}

#[test]
fn response_validation_follows_component_references() {
    let err = API
        .validate_response("GET", "/repos/a/b/pulls/1", 200, &json!({}))
        .expect_err("empty pull request");
    assert!(err.contains("\"head\" is a required property"), "{err}");

    // A status whose nested `creator` (a `$ref` to `nullable-simple-user`) has a numeric login.
    let mut status = json!({
        "url": "u", "avatar_url": null, "id": 1, "node_id": "n", "state": "success",
        "description": null, "target_url": null, "context": "c", "created_at": "t", "updated_at": "t",
        "creator": null,
    });
    let path = format!("/repos/a/b/statuses/{}", fake_sha("r"));
    assert_eq!(API.validate_response("POST", &path, 201, &status), Ok(()));
    status["creator"] = json!({ "login": 5 });
    let err = API
        .validate_response("POST", &path, 201, &status)
        .expect_err("bad creator");
    assert!(err.contains("/creator"), "{err}");
    assert!(
        API.validate_response("POST", &path, 299, &status)
            .expect_err("undescribed status")
            .contains("does not describe status 299")
    );
}

#[tokio::test]
async fn webhook_responses_match_githubs_schemas_and_hide_the_secret() {
    let f = start();
    let path = format!("/repos/{}/hooks", repo());
    let body = json!({
        "name": "web",
        "config": { "url": "https://greg.example.com/repo?token=t", "content_type": "json",
                    "secret": "hush", "insecure_ssl": "0" },
        "events": ["push", "pull_request"],
        "active": true
    });
    assert_eq!(API.validate("POST", &path, Some(&body)), Ok(()));
    let created = check_response(&f, Method::POST, &path, Some(body.clone())).await;
    assert_eq!(created["config"]["secret"], "********");
    assert_eq!(created["events"], json!(["push", "pull_request"]));
    let listed = check_response(&f, Method::GET, &path, None).await;
    assert_eq!(listed[0]["id"], created["id"]);
    assert_eq!(listed[0]["config"]["secret"], "********");
    let stored = f.world.hooks(&repo());
    assert_eq!(stored[0].secret.as_deref(), Some("hush"));

    // Same URL again: GitHub's 422.
    let again = f
        .gh(Method::POST, &path)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(again.status().as_u16(), 422);

    // PATCH replaces the config (the secret goes when not sent); DELETE answers 204.
    let id = created["id"].as_u64().expect("id");
    let hook = format!("{path}/{id}");
    let patched = f
        .gh(Method::PATCH, &hook)
        .json(
            &json!({ "config": { "url": "https://greg.example.com/new", "content_type": "json" } }),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(patched.status().as_u16(), 200);
    let stored = f.world.hooks(&repo());
    assert_eq!(stored[0].url, "https://greg.example.com/new");
    assert_eq!(stored[0].secret, None);
    let deleted = f.gh(Method::DELETE, &hook).send().await.expect("send");
    assert_eq!(deleted.status().as_u16(), 204);
    assert!(f.world.hooks(&repo()).is_empty());
    let gone = f.gh(Method::DELETE, &hook).send().await.expect("send");
    assert_eq!(gone.status().as_u16(), 404);
}
