//! Rules that refuse a step for good, on the fakes over raw HTTP: a protected branch on the
//! fake GitHub (422 required status checks, 403 "changes must be made through a pull request",
//! 405 on a pull-request merge, and the bypass list), and merge vetoes on the fake Bitbucket
//! Server (409 `PullRequestMergeVetoedException`) and Cloud (400 `merge_checks`).

mod common;

use common::{repo, start};
use greg_core::CommitState;
use greg_testkit::world::github::BranchProtection;
use greg_testkit::{FakeBitbucketCloud, FakeBitbucketServer, NewPr, World, fake_sha};
use reqwest::Method;
use serde_json::{Value, json};

async fn json_of(r: reqwest::RequestBuilder) -> (u16, Value) {
    let response = r.send().await.expect("send");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_protected_branch_refuses_pushes_with_githubs_bodies_and_lets_the_bypass_list_through() {
    let f = start();
    let next = fake_sha("next");
    f.world
        .push_branch(&repo(), "next", &next)
        .expect("push next");
    let patch = || {
        f.gh(Method::PATCH, "/repos/acme/demo/git/refs/heads/master")
            .json(&json!({ "sha": next.as_str(), "force": false }))
    };

    f.world
        .protect_branch(
            &repo(),
            "master",
            BranchProtection::required_checks(&["ci"]),
        )
        .expect("protect");
    let (status, body) = json_of(patch()).await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "Required status check \"ci\" is expected.");
    assert_eq!(
        body["documentation_url"],
        "https://docs.github.com/articles/about-protected-branches"
    );
    f.world
        .add_status(&repo(), &next, CommitState::Pending, "ci", "jenkins")
        .expect("pending");
    let (status, body) = json_of(patch()).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (422, Some("Required status check \"ci\" is pending."))
    );
    f.world
        .protect_branch(
            &repo(),
            "master",
            BranchProtection::required_checks(&["ci", "lint"]),
        )
        .expect("protect");
    let (_, body) = json_of(patch()).await;
    assert_eq!(
        body["message"],
        "2 of 2 required status checks are expected."
    );

    f.world
        .protect_branch(&repo(), "master", BranchProtection::pull_request_only())
        .expect("protect");
    let (status, body) = json_of(patch()).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("Changes must be made through a pull request."))
    );
    assert_ne!(f.world.branch(&repo(), "master"), Some(next.clone()));

    // The bot is on the bypass list: the same push goes through.
    f.world
        .protect_branch(
            &repo(),
            "master",
            BranchProtection::pull_request_only().bypass("greg-bot"),
        )
        .expect("protect");
    let (status, _) = json_of(patch()).await;
    assert_eq!(status, 200);
    assert_eq!(f.world.branch(&repo(), "master"), Some(next));
}

#[tokio::test]
async fn a_pull_request_merge_into_a_protected_branch_needs_the_checks_on_its_head() {
    let f = start();
    let head = fake_sha("p1");
    let pr = f
        .world
        .open_pr(&repo(), NewPr::new("carol", "fix", head.clone()))
        .expect("open");
    f.world
        .protect_branch(
            &repo(),
            "master",
            BranchProtection::required_checks(&["ci"]).bypass("someone-else"),
        )
        .expect("protect");
    let merge = || {
        f.gh(
            Method::PUT,
            &format!("/repos/acme/demo/pulls/{}/merge", pr.number),
        )
        .json(&json!({ "sha": head.as_str(), "merge_method": "merge" }))
    };
    let (status, body) = json_of(merge()).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (405, Some("Required status check \"ci\" is expected."))
    );
    f.world
        .add_status(&repo(), &head, CommitState::Success, "ci", "jenkins")
        .expect("green");
    let (status, body) = json_of(merge()).await;
    assert_eq!((status, body["merged"].as_bool()), (200, Some(true)));

    // Lifting the protection is a verb too.
    f.world
        .unprotect_branch(&repo(), "master")
        .expect("unprotect");
    assert!(
        f.world
            .read(|s| s.github.repos[&repo()].protections.is_empty())
    );
}

#[tokio::test]
async fn bitbucket_merge_vetoes_answer_each_flavors_refusal() {
    let world = World::new("greg-bot");
    let cloud = FakeBitbucketCloud::start(world.clone()).expect("cloud");
    let server = FakeBitbucketServer::start(world.clone()).expect("server");
    let http = common::client();
    let bb = world.bitbucket();
    bb.create_repo(&repo()).expect("repo");
    let pr = bb
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("v1")))
        .expect("open");
    bb.veto_merges(
        &repo(),
        "master",
        &[(
            "Not all required builds are successful yet",
            "You still need a minimum of one successful build before this pull request can be merged.",
        )],
    )
    .expect("veto");

    let server_pr = format!(
        "{}/rest/api/1.0/projects/acme/repos/demo/pull-requests/{}",
        server.url, pr.id
    );
    let (status, check) = json_of(http.get(format!("{server_pr}/merge")).bearer_auth("x")).await;
    assert_eq!(status, 200);
    assert_eq!(check["canMerge"], false);
    assert_eq!(
        check["vetoes"][0]["summaryMessage"],
        "Not all required builds are successful yet"
    );
    let (status, refused) = json_of(
        http.post(format!("{server_pr}/merge?version={}", pr.version))
            .bearer_auth("x")
            .header("X-Atlassian-Token", "no-check")
            .json(&json!({"version": pr.version})),
    )
    .await;
    assert_eq!(status, 409);
    let error = &refused["errors"][0];
    assert_eq!(
        error["exceptionName"],
        "com.atlassian.bitbucket.pull.PullRequestMergeVetoedException"
    );
    assert_eq!(
        error["message"],
        "Merging the pull request has been vetoed."
    );
    assert_eq!(error["conflicted"], false);
    assert_eq!(
        error["vetoes"][0]["detailedMessage"],
        "You still need a minimum of one successful build before this pull request can be merged."
    );

    let cloud_merge = format!(
        "{}/2.0/repositories/acme/demo/pullrequests/{}/merge",
        cloud.url, pr.id
    );
    let (status, refused) = json_of(
        http.post(&cloud_merge)
            .basic_auth("greg-bot", Some("x"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        refused["error"]["fields"]["merge_checks"][0],
        "Not all required builds are successful yet"
    );

    // Lifting the veto lets the merge through.
    bb.veto_merges(&repo(), "master", &[]).expect("lift");
    let (status, merged) = json_of(
        http.post(&cloud_merge)
            .basic_auth("greg-bot", Some("x"))
            .json(&json!({})),
    )
    .await;
    assert_eq!((status, merged["state"].as_str()), (200, Some("MERGED")));
}
