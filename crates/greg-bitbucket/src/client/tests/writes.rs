//! The writes greg makes beyond comments and statuses, against scripted answers shaped as the
//! vendors document them: merging with the head precondition, greg's own branches, open
//! pull-request lists, comment edits and deletes, and webhooks. (The stateful fakes of
//! greg-testkit run the same calls in the conformance suite, tests/conformance.rs.)

use super::*;
use crate::hooks::HookSpec;
use greg_core::PullRequestState;

const SERVER_HEAD: &str = "1eb452ab914eafb25d22608cde3b055034175123";

fn server_pr_with(version: u64, head: &str, state: &str) -> String {
    let mut pr = server_pull_request();
    pr["version"] = json!(version);
    pr["state"] = json!(state);
    pr["fromRef"]["latestCommit"] = json!(head);
    pr.to_string()
}

fn paths(seen: &Arc<Mutex<Vec<Seen>>>) -> Vec<String> {
    requests(seen)
        .into_iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

// --- Server: merge with the version ------------------------------------------------------------

#[tokio::test]
async fn a_server_merge_carries_the_version_it_read_and_checks_the_head_first() {
    let script: Script = Arc::new(|seen: &Seen| match seen.method.as_str() {
        "GET" => ok(server_pr_with(7, SERVER_HEAD, "OPEN")),
        "POST" => ok(server_pr_with(8, SERVER_HEAD, "MERGED")),
        _ => not_found(),
    });
    let (url, seen) = serve(script).await;
    let server = provider(Flavor::Server, &url);
    server
        .merge_pull_request(&server_repo(), PrNumber(12), &sha(SERVER_HEAD), "Merge #12")
        .await
        .expect("merged");
    let stale = server
        .merge_pull_request(&server_repo(), PrNumber(12), &sha(CLOUD_HEAD), "Merge #12")
        .await
        .expect_err("stale head");
    assert!(
        matches!(&stale, Error::PreconditionFailed { message } if message.contains("the head is 1eb452a, not d31df34")),
        "{stale:?}"
    );
    let seen = requests(&seen);
    let base = "/rest/api/1.0/projects/ABC/repos/some-repo-slug/pull-requests/12";
    assert_eq!(
        seen.iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect::<Vec<_>>(),
        [
            format!("GET {base}"),
            format!("POST {base}/merge?version=7"),
            format!("GET {base}"),
        ],
        "a stale head is refused before any merge request"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&seen[1].body).expect("json"),
        json!({"message": "Merge #12", "version": 7})
    );
    assert_eq!(seen[1].atlassian_token.as_deref(), Some("no-check"));
    assert_eq!(seen[0].atlassian_token, None, "reads need no XSRF header");
}

#[tokio::test]
async fn server_merge_refusals_map_onto_precondition_and_conflict() {
    let out_of_date = r#"{"errors":[{"context":null,"message":"You are attempting to modify a pull request based on out-of-date information.","exceptionName":"com.atlassian.bitbucket.pull.PullRequestOutOfDateException","currentVersion":8,"expectedVersion":7}]}"#;
    let vetoed = r#"{"errors":[{"context":null,"message":"Pull request #12 can not be merged: it has merge conflicts.","exceptionName":"com.atlassian.bitbucket.pull.PullRequestMergeVetoedException","conflicted":true,"vetoes":[]}]}"#;
    let script: Script = Arc::new(move |seen: &Seen| match seen.method.as_str() {
        "GET" if seen.path.ends_with("/12") => ok(server_pr_with(7, SERVER_HEAD, "OPEN")),
        "GET" if seen.path.ends_with("/13") => ok(server_pr_with(2, SERVER_HEAD, "MERGED")),
        "GET" => ok(server_pr_with(2, SERVER_HEAD, "DECLINED")),
        "POST" if seen.path.contains("/12/") => (409, vec![], out_of_date.to_owned()),
        _ => (409, vec![], vetoed.to_owned()),
    });
    let (url, seen) = serve(script).await;
    let server = provider(Flavor::Server, &url);
    let head = sha(SERVER_HEAD);
    let moved = server
        .merge_pull_request(&server_repo(), PrNumber(12), &head, "m")
        .await
        .expect_err("out of date");
    assert!(
        matches!(moved, Error::PreconditionFailed { .. }),
        "{moved:?}"
    );
    // Already merged at that head (an answer that was lost): done.
    assert_eq!(
        server
            .merge_pull_request(&server_repo(), PrNumber(13), &head, "m")
            .await,
        Ok(())
    );
    let declined = server
        .merge_pull_request(&server_repo(), PrNumber(14), &head, "m")
        .await
        .expect_err("declined");
    assert!(matches!(declined, Error::Conflict { .. }), "{declined:?}");
    assert_eq!(requests(&seen).len(), 4);
}

// --- Cloud: merge without a precondition --------------------------------------------------------

#[tokio::test]
async fn a_cloud_merge_compares_the_full_head_then_merges_and_polls_a_slow_merge() {
    let script: Script = Arc::new(|seen: &Seen| {
        let base = "/2.0/repositories/amuniz/test-repos";
        match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", p) if p == format!("{base}/pullrequests/735") => {
                ok(cloud_pull_request().to_string())
            }
            ("GET", p) if p.ends_with("/commit/d31df3425c5b") => ok(cloud_commit(CLOUD_HEAD)),
            ("POST", p) if p.ends_with("/merge") => (
                202,
                vec![(
                    "location".to_owned(),
                    format!("http://HOST{base}/pullrequests/735/merge/task-status/abc"),
                )],
                String::new(),
            ),
            ("GET", p) if p.ends_with("/task-status/abc") => {
                ok(json!({"task_status": "SUCCESS", "merge_result": {"id": 735}}).to_string())
            }
            _ => not_found(),
        }
    });
    let (url, seen) = serve_with_host(script).await;
    let cloud = provider(Flavor::Cloud, &url);
    cloud
        .merge_pull_request(&repo(), PrNumber(735), &sha(CLOUD_HEAD), "Merge #735")
        .await
        .expect("merged");
    let seen_now = requests(&seen);
    assert_eq!(
        serde_json::from_str::<Value>(&seen_now[2].body).expect("json"),
        json!({"message": "Merge #735", "close_source_branch": false, "merge_strategy": "merge_commit"})
    );
    assert_eq!(seen_now.len(), 4, "{:?}", paths(&seen));
    let stale = cloud
        .merge_pull_request(&repo(), PrNumber(735), &sha(PREVIOUS_HEAD), "m")
        .await
        .expect_err("stale");
    assert!(
        matches!(stale, Error::PreconditionFailed { .. }),
        "{stale:?}"
    );
    assert!(
        !paths(&seen)[4..].iter().any(|p| p.starts_with("POST")),
        "no merge after a stale head"
    );
}

#[tokio::test]
async fn a_blocked_cloud_merge_is_a_conflict() {
    let script: Script = Arc::new(|seen: &Seen| {
        match seen.method.as_str() {
        "GET" if seen.path.ends_with("/pullrequests/735") => ok(cloud_pull_request().to_string()),
        "GET" => ok(cloud_commit(CLOUD_HEAD)),
        _ => (
            400,
            vec![],
            json!({"type": "error", "error": {"message": "Bad request",
                   "fields": {"merge_checks": ["You can't merge until you resolve all merge conflicts."]}}})
            .to_string(),
        ),
    }
    });
    let (url, _) = serve(script).await;
    let err = provider(Flavor::Cloud, &url)
        .merge_pull_request(&repo(), PrNumber(735), &sha(CLOUD_HEAD), "m")
        .await
        .expect_err("blocked");
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
}

// --- branches -----------------------------------------------------------------------------------

#[tokio::test]
async fn cloud_staging_branches_are_replaced_by_delete_and_create() {
    let script: Script = Arc::new(|seen: &Seen| {
        let branch = "/2.0/repositories/amuniz/test-repos/refs/branches/greg/staging/main";
        match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", p) if p == branch => ok(json!({"type": "branch", "name": "greg/staging/main",
                "target": {"type": "commit", "hash": PREVIOUS_HEAD}})
            .to_string()),
            ("DELETE", p) if p == branch => (204, vec![], String::new()),
            ("POST", "/2.0/repositories/amuniz/test-repos/refs/branches") => {
                (201, vec![], seen.body.clone())
            }
            _ => not_found(),
        }
    });
    let (url, seen) = serve(script).await;
    let cloud = provider(Flavor::Cloud, &url);
    assert_eq!(
        cloud.branch_tip(&repo(), "greg/staging/main").await,
        Ok(Some(sha(PREVIOUS_HEAD)))
    );
    assert_eq!(cloud.branch_tip(&repo(), "gone").await, Ok(None));
    cloud
        .set_branch(&repo(), "greg/staging/main", &sha(CLOUD_HEAD))
        .await
        .expect("set");
    cloud
        .set_branch(&repo(), "greg/staging/main", &sha(PREVIOUS_HEAD))
        .await
        .expect("already there");
    cloud
        .delete_branch(&repo(), "gone")
        .await
        .expect("idempotent");
    let seen_all = requests(&seen);
    assert_eq!(
        paths(&seen),
        [
            "GET /2.0/repositories/amuniz/test-repos/refs/branches/greg/staging/main",
            "GET /2.0/repositories/amuniz/test-repos/refs/branches/gone",
            "GET /2.0/repositories/amuniz/test-repos/refs/branches/greg/staging/main",
            "DELETE /2.0/repositories/amuniz/test-repos/refs/branches/greg/staging/main",
            "POST /2.0/repositories/amuniz/test-repos/refs/branches",
            "GET /2.0/repositories/amuniz/test-repos/refs/branches/greg/staging/main",
            "DELETE /2.0/repositories/amuniz/test-repos/refs/branches/gone",
        ]
    );
    assert_eq!(
        serde_json::from_str::<Value>(&seen_all[4].body).expect("json"),
        json!({"name": "greg/staging/main", "target": {"hash": CLOUD_HEAD}})
    );
}

#[tokio::test]
async fn server_branches_are_found_by_exact_ref_and_changed_through_branch_utils() {
    let script: Script = Arc::new(|seen: &Seen| {
        let b = |id: &str, tip: &str| json!({"id": format!("refs/heads/{id}"), "displayId": id, "type": "BRANCH", "latestCommit": tip});
        match seen.method.as_str() {
            // `filterText` is a substring match: the exact ref is on the second page.
            "GET" if seen.path.contains("start=0") => ok(
                json!({"size": 1, "limit": 1, "isLastPage": false, "start": 0, "nextPageStart": 1,
                "values": [b("greg/staging/main-old", CLOUD_HEAD)]})
                .to_string(),
            ),
            "GET" => ok(
                json!({"size": 1, "limit": 1, "isLastPage": true, "start": 1,
                "values": [b("greg/staging/main", SERVER_HEAD)]})
                .to_string(),
            ),
            "DELETE" => (204, vec![], String::new()),
            "POST" => ok(b("greg/staging/main", CLOUD_HEAD).to_string()),
            _ => not_found(),
        }
    });
    let (url, seen) = serve(script).await;
    let server = provider(Flavor::Server, &url);
    server
        .set_branch(&server_repo(), "greg/staging/main", &sha(CLOUD_HEAD))
        .await
        .expect("set");
    let seen = requests(&seen);
    let list =
        "/rest/api/1.0/projects/ABC/repos/some-repo-slug/branches?filterText=greg%2Fstaging%2Fmain";
    let utils = "/rest/branch-utils/1.0/projects/ABC/repos/some-repo-slug/branches";
    assert_eq!(
        seen.iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect::<Vec<_>>(),
        [
            format!("GET {list}&start=0&limit=100"),
            format!("GET {list}&start=1&limit=100"),
            format!("GET {list}&start=0&limit=100"),
            format!("GET {list}&start=1&limit=100"),
            format!("DELETE {utils}"),
            format!("POST {utils}"),
        ]
    );
    assert_eq!(
        serde_json::from_str::<Value>(&seen[4].body).expect("json"),
        json!({"name": "refs/heads/greg/staging/main", "dryRun": false})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&seen[5].body).expect("json"),
        json!({"name": "greg/staging/main", "startPoint": CLOUD_HEAD})
    );
}

#[tokio::test]
async fn moving_a_branch_or_merging_two_commits_is_not_supported_by_either_flavor() {
    for (flavor, implementer) in [
        (Flavor::Cloud, "bitbucket-cloud"),
        (Flavor::Server, "bitbucket-server"),
    ] {
        let p = provider(flavor, "http://127.0.0.1:9");
        let caps = p.capabilities();
        assert!(!caps.fast_forward && !caps.staging_refs && caps.merge_pull_request);
        assert_eq!(
            p.fast_forward(&repo(), "master", &sha(CLOUD_HEAD)).await,
            Err(Error::NotSupported {
                operation: "fast-forwarding a branch",
                implementer
            })
        );
        assert_eq!(
            p.merge_into_branch(&repo(), "greg/staging/main", &sha(CLOUD_HEAD), "m")
                .await,
            Err(Error::NotSupported {
                operation: "merging into a staging ref",
                implementer
            })
        );
    }
}

// --- open pull requests -------------------------------------------------------------------------

#[tokio::test]
async fn open_pull_requests_follow_every_page_on_both_flavors() {
    let script: Script = Arc::new(|seen: &Seen| {
        if seen.path.starts_with("/2.0/") {
            let base = "/2.0/repositories/amuniz/test-repos";
            if seen.path == format!("{base}/pullrequests?state=OPEN&pagelen=50") {
                ok(json!({"values": [cloud_pull_request()], "pagelen": 1,
                          "next": format!("http://HOST{base}/pullrequests?state=OPEN&pagelen=50&page=2")})
                .to_string())
            } else if seen.path.ends_with("page=2") {
                let mut second = cloud_pull_request();
                second["id"] = json!(736);
                ok(json!({"values": [second], "pagelen": 1}).to_string())
            } else {
                ok(cloud_commit(CLOUD_HEAD))
            }
        } else if seen.path.contains("start=0") {
            ok(
                json!({"size": 1, "limit": 1, "isLastPage": false, "nextPageStart": 1, "start": 0,
                      "values": [server_pull_request()]})
                .to_string(),
            )
        } else {
            let mut second = server_pull_request();
            second["id"] = json!(13);
            ok(
                json!({"size": 1, "limit": 1, "isLastPage": true, "start": 1, "values": [second]})
                    .to_string(),
            )
        }
    });
    let (url, seen) = serve_with_host(script).await;
    let cloud = provider(Flavor::Cloud, &url)
        .open_pull_requests(&repo())
        .await
        .expect("cloud");
    assert_eq!(
        cloud
            .iter()
            .map(|p| (p.number, p.head_sha.clone(), p.state))
            .collect::<Vec<_>>(),
        [
            (PrNumber(735), sha(CLOUD_HEAD), PullRequestState::Open),
            (PrNumber(736), sha(CLOUD_HEAD), PullRequestState::Open),
        ]
    );
    let server = provider(Flavor::Server, &url)
        .open_pull_requests(&server_repo())
        .await
        .expect("server");
    assert_eq!(
        server.iter().map(|p| p.number).collect::<Vec<_>>(),
        [PrNumber(12), PrNumber(13)]
    );
    assert!(paths(&seen).contains(
        &"GET /rest/api/1.0/projects/ABC/repos/some-repo-slug/pull-requests?state=OPEN&start=1&limit=100"
            .to_owned()
    ));
}

// --- comments ------------------------------------------------------------------------------------

#[tokio::test]
async fn comments_are_edited_and_deleted_with_each_flavors_locking() {
    let script: Script = Arc::new(|seen: &Seen| match seen.method.as_str() {
        "GET" => ok(
            json!({"id": 62, "version": 4, "text": "old", "author": {"name": "greg-bot"}})
                .to_string(),
        ),
        "PUT" => ok(seen.body.clone()),
        "DELETE" => (204, vec![], String::new()),
        _ => not_found(),
    });
    let (url, seen) = serve(script).await;
    let server = provider(Flavor::Server, &url);
    let cloud = provider(Flavor::Cloud, &url);
    server
        .update_comment(
            &server_repo(),
            PrNumber(12),
            CommentId(62),
            "Ready to merge",
        )
        .await
        .expect("edit");
    server
        .delete_comment(&server_repo(), PrNumber(12), CommentId(62))
        .await
        .expect("delete");
    cloud
        .update_comment(&repo(), PrNumber(735), CommentId(9), "Ready to merge")
        .await
        .expect("edit");
    cloud
        .delete_comment(&repo(), PrNumber(735), CommentId(9))
        .await
        .expect("delete");
    let seen = requests(&seen);
    let s = "/rest/api/1.0/projects/ABC/repos/some-repo-slug/pull-requests/12/comments/62";
    let c = "/2.0/repositories/amuniz/test-repos/pullrequests/735/comments/9";
    assert_eq!(
        seen.iter()
            .map(|x| format!("{} {}", x.method, x.path))
            .collect::<Vec<_>>(),
        [
            format!("GET {s}"),
            format!("PUT {s}"),
            format!("GET {s}"),
            format!("DELETE {s}?version=4"),
            format!("PUT {c}"),
            format!("DELETE {c}"),
        ]
    );
    assert_eq!(seen[1].body, r#"{"text":"Ready to merge","version":4}"#);
    assert_eq!(seen[4].body, r#"{"content":{"raw":"Ready to merge"}}"#);
}

/// `Provider::delete_comment` (`repos[].delete_commands`): a comment already gone is fine; on
/// Server a version changed between the read and the delete is read again once. Reactions
/// are not in Bitbucket's REST API.
#[tokio::test]
async fn the_provider_deletes_command_comments_and_has_no_reactions() {
    let deletes = Arc::new(Mutex::new(0u32));
    let d = deletes.clone();
    let script: Script = Arc::new(move |seen: &Seen| match seen.method.as_str() {
        "GET" => ok(
            json!({"id": 62, "version": 4, "text": "@greg please", "author": {"name": "alice"}})
                .to_string(),
        ),
        "DELETE" if seen.path.ends_with("/comments/9") => not_found(),
        "DELETE" => {
            let mut n = d.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *n += 1;
            if *n == 1 {
                let body = json!({"errors": [{"message": "You are attempting to modify a comment based on out-of-date information.", "exceptionName": "com.atlassian.bitbucket.comment.CommentOutOfDateException"}]});
                (409, vec![], body.to_string())
            } else {
                (204, vec![], String::new())
            }
        }
        _ => not_found(),
    });
    let (url, seen) = serve(script).await;
    let server = provider(Flavor::Server, &url);
    let cloud = provider(Flavor::Cloud, &url);
    let server: &dyn Provider = &server;
    let cloud: &dyn Provider = &cloud;
    server
        .delete_comment(&server_repo(), PrNumber(12), CommentId(62))
        .await
        .expect("deleted after reading the version again");
    cloud
        .delete_comment(&repo(), PrNumber(735), CommentId(9))
        .await
        .expect("already gone is fine");
    let s = "/rest/api/1.0/projects/ABC/repos/some-repo-slug/pull-requests/12/comments/62";
    let c = "/2.0/repositories/amuniz/test-repos/pullrequests/735/comments/9";
    assert_eq!(
        requests(&seen)
            .iter()
            .map(|x| format!("{} {}", x.method, x.path))
            .collect::<Vec<_>>(),
        [
            format!("GET {s}"),
            format!("DELETE {s}?version=4"),
            format!("GET {s}"),
            format!("DELETE {s}?version=4"),
            format!("DELETE {c}"),
        ]
    );
    for p in [server, cloud] {
        assert!(!p.capabilities().reactions);
        let err = p
            .add_reaction(
                &repo(),
                PrNumber(1),
                CommentId(9),
                greg_core::Reaction::Eyes,
            )
            .await
            .expect_err("no reactions");
        assert!(
            matches!(err, greg_core::Error::NotSupported { .. }),
            "{err}"
        );
    }
}

// --- webhooks ------------------------------------------------------------------------------------

#[tokio::test]
async fn webhooks_are_listed_created_updated_and_deleted_on_both_flavors() {
    let script: Script = Arc::new(|seen: &Seen| {
        let cloud_hook = json!({"type": "webhook_subscription", "uuid": "{h1}", "url": "https://g/repo",
            "description": "greg", "active": true, "events": ["repo:push"], "secret_set": false});
        let server_hook = json!({"id": 10, "name": "greg", "url": "https://g/repo", "active": true,
            "events": ["repo:refs_changed"], "configuration": {"secret": "s"}});
        match (seen.method.as_str(), seen.path.starts_with("/2.0/")) {
            ("GET", true) => ok(json!({"values": [cloud_hook], "pagelen": 10}).to_string()),
            ("GET", false) => ok(
                json!({"values": [server_hook], "isLastPage": true, "start": 0, "size": 1})
                    .to_string(),
            ),
            ("POST" | "PUT", true) => (201, vec![], cloud_hook.to_string()),
            ("POST" | "PUT", false) => (201, vec![], server_hook.to_string()),
            ("DELETE", _) => (204, vec![], String::new()),
            _ => not_found(),
        }
    });
    let (url, seen) = serve(script).await;
    for flavor in [Flavor::Cloud, Flavor::Server] {
        let p = provider(flavor, &url);
        let repo = match flavor {
            Flavor::Cloud => repo(),
            Flavor::Server => server_repo(),
        };
        let hooks = p.list_hooks(&repo).await.expect("list");
        assert_eq!(hooks.len(), 1);
        let spec = HookSpec::greg(flavor, "https://g/repo", Some(Secret::new("s")));
        let created = p.create_hook(&repo, &spec).await.expect("create");
        p.update_hook(&repo, &created.id, &spec)
            .await
            .expect("update");
        p.delete_hook(&repo, &created.id).await.expect("delete");
    }
    let seen = requests(&seen);
    assert_eq!(
        seen.iter()
            .map(|x| format!("{} {}", x.method, x.path))
            .collect::<Vec<_>>(),
        [
            "GET /2.0/repositories/amuniz/test-repos/hooks",
            "POST /2.0/repositories/amuniz/test-repos/hooks",
            "PUT /2.0/repositories/amuniz/test-repos/hooks/%7Bh1%7D",
            "DELETE /2.0/repositories/amuniz/test-repos/hooks/%7Bh1%7D",
            "GET /rest/api/1.0/projects/ABC/repos/some-repo-slug/webhooks?start=0&limit=100",
            "POST /rest/api/1.0/projects/ABC/repos/some-repo-slug/webhooks",
            "PUT /rest/api/1.0/projects/ABC/repos/some-repo-slug/webhooks/10",
            "DELETE /rest/api/1.0/projects/ABC/repos/some-repo-slug/webhooks/10",
        ]
    );
    let server_body: Value = serde_json::from_str(&seen[5].body).expect("json");
    assert_eq!(server_body["configuration"], json!({"secret": "s"}));
    assert_eq!(server_body["events"], json!(crate::hooks::SERVER_EVENTS));
}
