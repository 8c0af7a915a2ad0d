//! The fake GitHub driven over HTTP: what the world holds is what the API serves, and what is
//! posted through the API lands in the world.

mod common;

use common::{Fakes, repo, start};
use greg_core::{CommitState, Permission, PrNumber, PullRequestState, ReviewState};
use greg_testkit::{NewPr, Server, fake_sha};
use reqwest::Method;
use serde_json::{Value, json};

async fn get_json(f: &Fakes, path: &str) -> (u16, Value) {
    let resp = f.gh(Method::GET, path).send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn pull_request_is_served_from_the_world() {
    let f = start();
    let head = fake_sha("fix-1");
    let pr = f
        .world
        .open_pr(
            &repo(),
            NewPr::new("carol", "fix", head.clone()).title("Fix the thing"),
        )
        .expect("open");
    assert_eq!(pr.number, PrNumber(1));

    let (status, v) = get_json(&f, "/repos/acme/demo/pulls/1").await;
    assert_eq!(status, 200);
    assert_eq!(v["number"], 1);
    assert_eq!(v["title"], "Fix the thing");
    assert_eq!(v["state"], "open");
    assert_eq!(v["draft"], false);
    assert_eq!(v["mergeable"], true);
    assert_eq!(v["merged"], false);
    assert_eq!(v["user"]["login"], "carol");
    assert_eq!(v["head"]["ref"], "fix");
    assert_eq!(v["head"]["sha"], head.as_str());
    assert_eq!(v["head"]["repo"]["full_name"], "acme/demo");
    assert_eq!(v["base"]["ref"], "master");
    assert_eq!(v["base"]["repo"]["full_name"], "acme/demo");
    assert_eq!(
        v["html_url"],
        format!("{}/acme/demo/pull/1", f.github.url).as_str()
    );

    let new_head = fake_sha("fix-2");
    let old = f
        .world
        .push_to_pr(&repo(), pr.number, &new_head)
        .expect("push");
    assert_eq!(old, head);
    let (_, v) = get_json(&f, "/repos/acme/demo/pulls/1").await;
    assert_eq!(v["head"]["sha"], new_head.as_str());
    assert_eq!(f.world.branch(&repo(), "fix"), Some(new_head));

    f.world
        .set_mergeable(&repo(), pr.number, Some(false))
        .expect("conflict");
    f.world
        .edit_pr(&repo(), pr.number, |p| p.draft = true)
        .expect("draft");
    let (_, v) = get_json(&f, "/repos/acme/demo/pulls/1").await;
    assert_eq!(v["mergeable"], false);
    assert_eq!(v["draft"], true);
    assert_eq!(v["mergeable_state"], "draft");

    let (status, v) = get_json(&f, "/repos/acme/demo/pulls/2").await;
    assert_eq!(status, 404);
    assert_eq!(v["message"], "Not Found");
}

#[tokio::test]
async fn requests_without_authorization_get_401() {
    let f = start();
    let resp = f
        .http
        .get(format!("{}/repos/acme/demo", f.github.url))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 401);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["message"], "Requires authentication");

    // With a token configured, another token is refused too.
    f.world.update(|s| s.github.token = Some("right".into()));
    let resp = f
        .gh(Method::GET, "/repos/acme/demo")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 401);
    let resp = f
        .http
        .get(format!("{}/repos/acme/demo", f.github.url))
        .bearer_auth("right")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn comments_posted_over_http_land_in_the_world() {
    let f = start();
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("c1")))
        .expect("open");
    f.world
        .comment(&repo(), pr.number, "alice", "@greg ok")
        .expect("comment");

    let resp = f
        .gh(Method::POST, "/repos/acme/demo/issues/1/comments")
        .json(&json!({ "body": "Not ready to merge" }))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["user"]["login"], "greg-bot");
    assert_eq!(v["body"], "Not ready to merge");
    assert_eq!(location.as_deref(), v["url"].as_str());
    let id = v["id"].as_u64().expect("id");

    let bot = f.world.bot_comments(&repo(), pr.number);
    assert_eq!(bot.len(), 1);
    assert_eq!(bot[0].id.0, id);
    assert_eq!(bot[0].body, "Not ready to merge");

    let resp = f
        .gh(
            Method::PATCH,
            &format!("/repos/acme/demo/issues/comments/{id}"),
        )
        .json(&json!({ "body": "Ready to merge" }))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        f.world.bot_comments(&repo(), pr.number)[0].body,
        "Ready to merge"
    );

    let (status, list) = get_json(&f, "/repos/acme/demo/issues/1/comments").await;
    assert_eq!(status, 200);
    let bodies: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["body"].as_str())
        .collect();
    assert_eq!(bodies, ["@greg ok", "Ready to merge"]);

    // GitHub's validation: a blank body is 422, a non-JSON body 400, an unknown PR 404.
    let blank = f
        .gh(Method::POST, "/repos/acme/demo/issues/1/comments")
        .json(&json!({ "body": "" }))
        .send()
        .await
        .expect("send");
    assert_eq!(blank.status().as_u16(), 422);
    let garbage = f
        .gh(Method::POST, "/repos/acme/demo/issues/1/comments")
        .body("body=hello")
        .send()
        .await
        .expect("send");
    assert_eq!(garbage.status().as_u16(), 400);
    let unknown = f
        .gh(Method::POST, "/repos/acme/demo/issues/9/comments")
        .json(&json!({ "body": "hi" }))
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status().as_u16(), 404);

    let delete = f
        .gh(
            Method::DELETE,
            &format!("/repos/acme/demo/issues/comments/{id}"),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(delete.status().as_u16(), 204);
    assert!(f.world.bot_comments(&repo(), pr.number).is_empty());
}

#[tokio::test]
async fn statuses_and_the_combined_status_follow_githubs_rule() {
    let f = start();
    let sha = fake_sha("s1");
    f.world
        .open_pr(&repo(), NewPr::new("carol", "fix", sha.clone()))
        .expect("open");
    let post = |state: &str, context: &str| {
        f.gh(Method::POST, &format!("/repos/acme/demo/statuses/{sha}"))
            .json(&json!({
                "state": state,
                "context": context,
                "description": "Build #3",
                "target_url": "http://jenkins/job/demo-test/3/",
            }))
            .send()
    };
    let resp = post("pending", "greg/test").await.expect("send");
    assert_eq!(resp.status().as_u16(), 201);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["creator"]["login"], "greg-bot");
    assert_eq!(v["state"], "pending");

    let (_, combined) = get_json(&f, &format!("/repos/acme/demo/commits/{sha}/status")).await;
    assert_eq!(combined["state"], "pending");

    post("success", "greg/test").await.expect("send");
    let (_, combined) = get_json(&f, "/repos/acme/demo/commits/fix/status").await;
    assert_eq!(combined["state"], "success");
    assert_eq!(combined["total_count"], 1);
    assert_eq!(combined["statuses"][0]["state"], "success");

    post("error", "other/ci").await.expect("send");
    let (_, combined) = get_json(&f, &format!("/repos/acme/demo/commits/{sha}/status")).await;
    assert_eq!(combined["state"], "failure");
    assert_eq!(combined["total_count"], 2);

    let latest = f
        .world
        .latest_status(&repo(), &sha, "greg/test")
        .expect("status");
    assert_eq!(latest.state, CommitState::Success);
    assert_eq!(
        latest.target_url.as_deref(),
        Some("http://jenkins/job/demo-test/3/")
    );
    assert_eq!(f.world.statuses(&repo(), &sha).len(), 3);

    // An unknown commit, a bad state and an over-long description are 422, as on GitHub.
    let unknown = f
        .gh(
            Method::POST,
            &format!("/repos/acme/demo/statuses/{}", fake_sha("nope")),
        )
        .json(&json!({ "state": "success" }))
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status().as_u16(), 422);
    let bogus = post("bogus", "greg/test").await.expect("send");
    assert_eq!(bogus.status().as_u16(), 422);
    let long = f
        .gh(Method::POST, &format!("/repos/acme/demo/statuses/{sha}"))
        .json(&json!({ "state": "success", "description": "x".repeat(141) }))
        .send()
        .await
        .expect("send");
    assert_eq!(long.status().as_u16(), 422);
    assert_eq!(f.world.statuses(&repo(), &sha).len(), 3);
}

#[tokio::test]
async fn reviews_paginate_with_a_link_header() {
    let f = start();
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("r1")))
        .expect("open");
    f.world
        .approve(&repo(), pr.number, "alice")
        .expect("review");
    f.world
        .review(
            &repo(),
            pr.number,
            "bob",
            ReviewState::ChangesRequested,
            "no",
        )
        .expect("review");
    f.world
        .push_to_pr(&repo(), pr.number, &fake_sha("r2"))
        .expect("push");
    f.world.approve(&repo(), pr.number, "bob").expect("review");

    let resp = f
        .gh(Method::GET, "/repos/acme/demo/pulls/1/reviews?per_page=2")
        .send()
        .await
        .expect("send");
    let link = resp
        .headers()
        .get("link")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
        .expect("link header");
    let base = format!("{}/repos/acme/demo/pulls/1/reviews", f.github.url);
    assert_eq!(
        link,
        format!(
            "<{base}?per_page=2&page=2>; rel=\"next\", <{base}?per_page=2&page=2>; rel=\"last\""
        )
    );
    let page1: Value = resp.json().await.expect("json");
    let states: Vec<_> = page1
        .as_array()
        .expect("array")
        .iter()
        .map(|r| (r["user"]["login"].clone(), r["state"].clone()))
        .collect();
    assert_eq!(
        states,
        [
            (json!("alice"), json!("APPROVED")),
            (json!("bob"), json!("CHANGES_REQUESTED"))
        ]
    );
    assert_eq!(page1[0]["commit_id"], fake_sha("r1").as_str());

    let resp = f
        .gh(
            Method::GET,
            "/repos/acme/demo/pulls/1/reviews?per_page=2&page=2",
        )
        .send()
        .await
        .expect("send");
    let link = resp
        .headers()
        .get("link")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
        .expect("link header");
    assert!(
        link.contains("rel=\"prev\"") && !link.contains("rel=\"next\""),
        "{link}"
    );
    let page2: Value = resp.json().await.expect("json");
    assert_eq!(page2.as_array().map(Vec::len), Some(1));
    assert_eq!(page2[0]["commit_id"], fake_sha("r2").as_str());
}

#[tokio::test]
async fn permission_gives_the_legacy_role_and_the_role_name() {
    let f = start();
    f.world
        .set_permission(&repo(), "alice", Permission::Maintain)
        .expect("perm");
    f.world
        .set_permission(&repo(), "bob", Permission::Admin)
        .expect("perm");
    let (status, v) = get_json(&f, "/repos/acme/demo/collaborators/alice/permission").await;
    assert_eq!(status, 200);
    assert_eq!(
        (v["permission"].as_str(), v["role_name"].as_str()),
        (Some("write"), Some("maintain"))
    );
    assert_eq!(v["user"]["login"], "alice");
    let (_, v) = get_json(&f, "/repos/acme/demo/collaborators/bob/permission").await;
    assert_eq!(v["permission"], "admin");
    let (_, v) = get_json(&f, "/repos/acme/demo/collaborators/mallory/permission").await;
    assert_eq!(
        (v["permission"].as_str(), v["role_name"].as_str()),
        (Some("read"), Some("read"))
    );
}

#[tokio::test]
async fn unknown_routes_get_githubs_404() {
    let f = start();
    for path in ["/user/repos", "/repos/acme/demo/labels", "/repos/acme/nope"] {
        let (status, v) = get_json(&f, path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(v["message"], "Not Found");
        assert!(v["documentation_url"].is_string());
    }
}

#[tokio::test]
async fn an_armed_fault_answers_once_and_is_logged() {
    let f = start();
    f.world
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("f1")))
        .expect("open");
    f.world
        .fail_next(Server::Github, r"/pulls/1$", 403, Some(30))
        .expect("regex");
    f.world
        .fail_next(Server::Github, r"/pulls/1$", 502, None)
        .expect("regex");
    let resp = f
        .gh(Method::GET, "/repos/acme/demo/pulls/1")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 403);
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(h("x-ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(h("retry-after").as_deref(), Some("30"));
    let resp = f
        .gh(Method::GET, "/repos/acme/demo/pulls/1")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 502);
    let resp = f
        .gh(Method::GET, "/repos/acme/demo/pulls/1")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);

    let log = f
        .world
        .requests_matching(Server::Github, "GET", r"^/repos/acme/demo/pulls/1$");
    let seen: Vec<(u16, bool)> = log.iter().map(|r| (r.status, r.faulted)).collect();
    assert_eq!(seen, [(403, true), (502, true), (200, false)]);
}

#[tokio::test]
async fn git_refs_and_merges_keep_the_target_on_built_commits() {
    let f = start();
    let head = fake_sha("m1");
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", head.clone()))
        .expect("open");
    let master = f.world.branch(&repo(), "master").expect("master");

    let (status, v) = get_json(&f, "/repos/acme/demo/git/ref/heads/master").await;
    assert_eq!(status, 200);
    assert_eq!(v["object"]["sha"], master.as_str());
    assert_eq!(v["ref"], "refs/heads/master");

    let send = |m: Method, path: &str, body: Value| f.gh(m, path).json(&body).send();
    let r = send(
        Method::POST,
        "/repos/acme/demo/git/refs",
        json!({ "ref": "refs/heads/greg/staging", "sha": master.as_str() }),
    )
    .await
    .expect("send");
    assert_eq!(r.status().as_u16(), 201);
    let again = send(
        Method::POST,
        "/repos/acme/demo/git/refs",
        json!({ "ref": "refs/heads/greg/staging", "sha": master.as_str() }),
    )
    .await
    .expect("send");
    assert_eq!(again.status().as_u16(), 422);

    let r = send(
        Method::POST,
        "/repos/acme/demo/merges",
        json!({ "base": "greg/staging", "head": head.as_str(), "commit_message": "Merge #1" }),
    )
    .await
    .expect("send");
    assert_eq!(r.status().as_u16(), 201);
    let merge: Value = r.json().await.expect("json");
    let merge_sha = merge["sha"].as_str().expect("sha").to_owned();
    assert_eq!(merge["parents"][0]["sha"], master.as_str());
    assert_eq!(merge["parents"][1]["sha"], head.as_str());
    let nothing = send(
        Method::POST,
        "/repos/acme/demo/merges",
        json!({ "base": "greg/staging", "head": head.as_str() }),
    )
    .await
    .expect("send");
    assert_eq!(nothing.status().as_u16(), 204);

    // Fast-forward master to the staging commit; moving it back is not a fast forward.
    let r = send(
        Method::PATCH,
        "/repos/acme/demo/git/refs/heads/master",
        json!({ "sha": merge_sha, "force": false }),
    )
    .await
    .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        f.world.branch(&repo(), "master").map(|s| s.to_string()),
        Some(merge_sha.clone())
    );
    let back = send(
        Method::PATCH,
        "/repos/acme/demo/git/refs/heads/master",
        json!({ "sha": master.as_str() }),
    )
    .await
    .expect("send");
    assert_eq!(back.status().as_u16(), 422);
    let v: Value = back.json().await.expect("json");
    assert_eq!(v["message"], "Update is not a fast forward");

    let r = f
        .gh(
            Method::DELETE,
            "/repos/acme/demo/git/refs/heads/greg/staging",
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(f.world.branch(&repo(), "greg/staging"), None);

    // A conflicting head cannot be merged.
    let other = f
        .world
        .open_pr(&repo(), NewPr::new("dave", "other", fake_sha("m2")))
        .expect("open");
    f.world
        .set_mergeable(&repo(), other.number, Some(false))
        .expect("conflict");
    let r = send(
        Method::POST,
        "/repos/acme/demo/merges",
        json!({ "base": "master", "head": "other" }),
    )
    .await
    .expect("send");
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(pr.number, PrNumber(1));
}

#[tokio::test]
async fn merging_a_pull_request_checks_the_head_and_marks_it_merged() {
    let f = start();
    let head = fake_sha("p1");
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", head.clone()))
        .expect("open");
    let stale = f
        .gh(Method::PUT, "/repos/acme/demo/pulls/1/merge")
        .json(&json!({ "sha": fake_sha("old").as_str() }))
        .send()
        .await
        .expect("send");
    assert_eq!(stale.status().as_u16(), 409);

    let ok = f
        .gh(Method::PUT, "/repos/acme/demo/pulls/1/merge")
        .json(&json!({ "sha": head.as_str(), "merge_method": "merge" }))
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status().as_u16(), 200);
    let v: Value = ok.json().await.expect("json");
    assert_eq!(v["merged"], true);
    let merged = f.world.pull_request(&repo(), pr.number).expect("pr");
    assert_eq!(merged.state, PullRequestState::Merged);
    assert_eq!(
        merged.merge_commit_sha.as_ref().map(|s| s.as_str()),
        v["sha"].as_str()
    );
    assert_eq!(f.world.branch(&repo(), "master"), merged.merge_commit_sha);

    let (_, v) = get_json(&f, "/repos/acme/demo/pulls/1").await;
    assert_eq!(
        (v["state"].as_str(), v["merged"].as_bool()),
        (Some("closed"), Some(true))
    );
    assert_eq!(v["merged_by"]["login"], "greg-bot");

    let again = f
        .gh(Method::PUT, "/repos/acme/demo/pulls/1/merge")
        .send()
        .await
        .expect("send");
    assert_eq!(again.status().as_u16(), 405);
}

#[tokio::test]
async fn wait_for_wakes_on_a_change_made_over_http() {
    let f = start();
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("w1")))
        .expect("open");
    let world = f.world.clone();
    let waiter = tokio::spawn(async move {
        world
            .wait_for("a bot comment", std::time::Duration::from_secs(5), |s| {
                s.github
                    .repos
                    .get(&repo())?
                    .comments
                    .iter()
                    .find(|c| c.author.as_str() == "greg-bot")
                    .map(|c| c.body.clone())
            })
            .await
    });
    f.gh(Method::POST, "/repos/acme/demo/issues/1/comments")
        .json(&json!({ "body": "hello" }))
        .send()
        .await
        .expect("send");
    assert_eq!(waiter.await.expect("join").expect("comment"), "hello");
    let err = f
        .world
        .wait_for(
            "nothing",
            std::time::Duration::from_millis(20),
            |_| None::<()>,
        )
        .await
        .expect_err("times out");
    assert!(err.to_string().contains("waiting for nothing"), "{err}");
    assert_eq!(f.world.comments(&repo(), pr.number).len(), 1);
}
