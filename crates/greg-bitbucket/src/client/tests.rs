//! Client tests: request bodies and response decoding against the shapes of the vendors'
//! REST references (cited per constant), pull-request objects from the captured deliveries in
//! tests/data/ (Cloud and Server send the same pull-request object in webhooks and REST
//! answers), and the whole request path against a tiny scripted HTTP server on loopback (the
//! stateful fakes belong in greg-testkit).

use super::*;
use greg_core::{PullRequestAction, PullRequestState, ReviewState};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PASSWORD: &str = "ATBB-app-password-0123456789";

/// The full head of tests/data/bitbucket-cloud/pullrequest_created.cloudbees.json, whose
/// payload abbreviates it to `d31df3425c5b`.
const CLOUD_HEAD: &str = "d31df3425c5b0c6e5f1d6e1b2a3c4d5e6f708192";
const PREVIOUS_HEAD: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";

/// Cloud `GET .../commit/{commit}` answer, trimmed to the documented top-level fields
/// (<https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commits/#api-repositories-workspace-repo-slug-commit-commit-get>).
fn cloud_commit(hash: &str) -> String {
    json!({
        "type": "commit",
        "hash": hash,
        "date": "2024-11-09T13:02:45+00:00",
        "message": "BUILD test\n",
        "links": {"html": {"href": format!("https://bitbucket.org/amuniz/test-repos/commits/{hash}")}},
        "parents": [],
    })
    .to_string()
}

/// Server `GET .../commits/{commitId}` answer
/// (<https://developer.atlassian.com/server/bitbucket/rest/v906/api-group-repository/#api-api-latest-projects-projectkey-repos-repositoryslug-commits-commitid-get>).
fn server_commit(id: &str) -> String {
    json!({
        "id": id,
        "displayId": &id[..11],
        "author": {"name": "jcitizen", "emailAddress": "jane@example.com"},
        "authorTimestamp": 1548720847608u64,
        "committerTimestamp": 1548720847608u64,
        "message": "More work on feature 1",
        "parents": [],
    })
    .to_string()
}

fn fixture_json(dir: &str, name: &str) -> Value {
    let path = format!(
        "{}/../../tests/data/{dir}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_slice(&raw).expect("fixture JSON")
}

/// The pull-request object of a Cloud delivery, as `GET .../pullrequests/{id}` returns it.
fn cloud_pull_request() -> Value {
    fixture_json("bitbucket-cloud", "pullrequest_created.cloudbees.json")["pullrequest"].clone()
}

/// The pull-request object of a Server delivery, as `GET .../pull-requests/{id}` returns it.
fn server_pull_request() -> Value {
    fixture_json("bitbucket-server", "pr_reviewer_approved.json")["pullRequest"].clone()
}

fn repo() -> RepoName {
    RepoName::new("amuniz", "test-repos")
}

fn sha(s: &str) -> Sha {
    Sha::parse(s).expect("sha")
}

fn provider(flavor: Flavor, api_url: &str) -> BitbucketProvider {
    let mut cfg = match flavor {
        Flavor::Cloud => BitbucketConfig::cloud("greg-bot", Secret::new(PASSWORD)),
        Flavor::Server => BitbucketConfig::server(api_url, "greg-bot", Secret::new(PASSWORD)),
    };
    cfg.api_url = api_url.to_owned();
    cfg.webhook_secret = Some(Secret::new("hook-secret"));
    BitbucketProvider::new(cfg).expect("valid config")
}

// --- request bodies ----------------------------------------------------------------------

#[test]
fn build_status_bodies_have_the_documented_fields() {
    let status = CommitStatus {
        state: CommitState::Success,
        context: "greg/test".to_owned(),
        description: "Build #12 passed".to_owned(),
        target_url: Some("https://jenkins.example.com/job/demo-test/12/".to_owned()),
    };
    let body = BuildStatusBody {
        key: &status.context,
        state: build_state(status.state),
        url: "https://jenkins.example.com/job/demo-test/12/".to_owned(),
        name: &status.context,
        description: status_description(&status.description),
    };
    assert_eq!(
        serde_json::to_value(&body).expect("serialize"),
        json!({
            "key": "greg/test",
            "state": "SUCCESSFUL",
            "url": "https://jenkins.example.com/job/demo-test/12/",
            "name": "greg/test",
            "description": "Build #12 passed",
        })
    );
    assert_eq!(build_state(CommitState::Pending), "INPROGRESS");
    assert_eq!(build_state(CommitState::Failure), "FAILED");
    assert_eq!(build_state(CommitState::Error), "FAILED");
}

#[test]
fn status_descriptions_are_one_line_of_140_characters() {
    assert_eq!(status_description(" two\nlines\r\n"), "two lines");
    let cut = status_description(&"é".repeat(200));
    assert_eq!(cut.chars().count(), MAX_DESCRIPTION_CHARS);
    assert!(cut.ends_with('…'));
}

#[test]
fn comment_bodies_per_flavor() {
    let cloud_body = cloud::CommentBody {
        content: cloud::Raw {
            raw: "Ready to merge",
        },
    };
    assert_eq!(
        serde_json::to_value(&cloud_body).expect("serialize"),
        json!({"content": {"raw": "Ready to merge"}})
    );
    assert_eq!(
        serde_json::to_value(server::CommentBody {
            text: "Ready to merge"
        })
        .expect("serialize"),
        json!({"text": "Ready to merge"})
    );
}

#[test]
fn commit_pages_link_statuses_without_a_build() {
    let sha = sha(CLOUD_HEAD);
    let cloud = provider(Flavor::Cloud, "https://api.bitbucket.org");
    assert_eq!(
        cloud.commit_page(&repo(), &sha),
        format!("https://bitbucket.org/amuniz/test-repos/commits/{CLOUD_HEAD}")
    );
    let server = provider(Flavor::Server, "https://example.com/bitbucket/");
    assert_eq!(
        server.commit_page(&RepoName::new("PRJ", "my-repo"), &sha),
        format!("https://example.com/bitbucket/projects/PRJ/repos/my-repo/commits/{CLOUD_HEAD}")
    );
}

// --- the provider itself ------------------------------------------------------------------

#[test]
fn display_debug_and_identity_never_show_secrets() {
    let cloud = provider(Flavor::Cloud, "https://api.bitbucket.org/");
    assert_eq!(
        cloud.to_string(),
        "bitbucket-cloud(https://api.bitbucket.org)"
    );
    assert_eq!(cloud.name(), "bitbucket");
    // The Cloud login is an account id, unknown until `identify`.
    assert_eq!(cloud.bot_login(), None);
    let server = provider(Flavor::Server, "https://example.com/bitbucket");
    assert_eq!(
        server.to_string(),
        "bitbucket-server(https://example.com/bitbucket)"
    );
    assert_eq!(server.bot_login(), Some(&Login::from("greg-bot")));
    for p in [&cloud, &server] {
        let debug = format!("{p:?}");
        assert!(
            !debug.contains(PASSWORD) && !debug.contains("hook-secret"),
            "{debug}"
        );
    }
}

#[test]
fn the_provider_verifies_and_parses_through_the_trait() {
    let cloud = provider(Flavor::Cloud, "https://api.bitbucket.org");
    let headers = Headers::new([
        ("X-Event-Key".to_owned(), "repo:push".to_owned()),
        ("X-Request-UUID".to_owned(), "abc".to_owned()),
    ]);
    assert!(matches!(
        cloud.verify_webhook(&headers, b"{}"),
        Err(WebhookError::Unauthorized(_))
    ));
    assert_eq!(cloud.delivery_id(&headers).as_deref(), Some("abc"));
    let body =
        serde_json::to_vec(&fixture_json("bitbucket-cloud", "repo_push.json")).expect("json");
    assert!(matches!(
        cloud.parse_webhook(&headers, &body),
        Ok(Inbound::Event(Event::Push(_)))
    ));
}

/// One request as the scripted server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query, as sent.
    path: String,
    authorization: Option<String>,
    /// `X-Atlassian-Token`, Server's XSRF opt-out.
    atlassian_token: Option<String>,
    body: String,
}

type Script = Arc<dyn Fn(&Seen) -> (u16, Vec<(String, String)>, String) + Send + Sync>;

/// Serves each connection one scripted answer (`Connection: close`) and records requests.
async fn serve(script: Script) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let head_end = loop {
                let n = socket.read(&mut buf).await.expect("read");
                if n == 0 {
                    break None;
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
            let header = |name: &str| {
                head.lines().skip(1).find_map(|line| {
                    let (k, v) = line.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_owned())
                })
            };
            let length: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while raw.len() < head_end + length {
                let n = socket.read(&mut buf).await.expect("read body");
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
            }
            let mut request_line = head.lines().next().unwrap_or("").split(' ');
            let request = Seen {
                method: request_line.next().unwrap_or("").to_owned(),
                path: request_line.next().unwrap_or("").to_owned(),
                authorization: header("authorization"),
                atlassian_token: header("x-atlassian-token"),
                body: String::from_utf8_lossy(&raw[head_end..]).into_owned(),
            };
            let (status, headers, body) = script(&request);
            log.lock().expect("log").push(request);
            let mut answer = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                answer.push_str(&format!("{k}: {v}\r\n"));
            }
            answer.push_str("\r\n");
            answer.push_str(&body);
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (format!("http://{addr}"), seen)
}

fn requests(seen: &Arc<Mutex<Vec<Seen>>>) -> Vec<Seen> {
    seen.lock().expect("log").clone()
}

fn ok(body: String) -> (u16, Vec<(String, String)>, String) {
    (200, vec![], body)
}

fn not_found() -> (u16, Vec<(String, String)>, String) {
    (
        404,
        vec![],
        r#"{"type": "error", "error": {"message": "Resource not found"}}"#.to_owned(),
    )
}

// --- Cloud --------------------------------------------------------------------------------

#[tokio::test]
async fn cloud_pull_requests_get_their_full_head_looked_up() {
    let script: Script = Arc::new(|seen: &Seen| {
        if seen.path.ends_with("/pullrequests/735") {
            ok(cloud_pull_request().to_string())
        } else if seen.path.ends_with("/commit/d31df3425c5b") {
            ok(cloud_commit(CLOUD_HEAD))
        } else {
            not_found()
        }
    });
    let (url, seen) = serve(script).await;
    let cloud = provider(Flavor::Cloud, &url);
    let pr = cloud
        .pull_request(&repo(), PrNumber(735))
        .await
        .expect("pull request");
    assert_eq!(pr.head_sha, sha(CLOUD_HEAD));
    assert_eq!(pr.state, PullRequestState::Open);
    assert_eq!(pr.head_ref, "feature/test");
    assert_eq!(pr.mergeable, None);
    let seen = requests(&seen);
    assert_eq!(
        seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        [
            "/2.0/repositories/amuniz/test-repos/pullrequests/735",
            "/2.0/repositories/amuniz/test-repos/commit/d31df3425c5b",
        ]
    );
    // Basic auth: base64("greg-bot:ATBB-app-password-0123456789").
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Basic Z3JlZy1ib3Q6QVRCQi1hcHAtcGFzc3dvcmQtMDEyMzQ1Njc4OQ==")
    );
}

#[tokio::test]
async fn cloud_events_resolve_through_the_api() {
    let script: Script = Arc::new(|seen: &Seen| {
        if seen.path.ends_with("/commit/d31df3425c5b") {
            ok(cloud_commit(CLOUD_HEAD))
        } else {
            ok(cloud_commit(PREVIOUS_HEAD))
        }
    });
    let (url, _) = serve(script).await;
    let cloud = provider(Flavor::Cloud, &url);
    let raw = serde_json::to_vec(&fixture_json(
        "bitbucket-cloud",
        "pullrequest_created.cloudbees.json",
    ))
    .expect("json");
    let headers = Headers::new([("X-Event-Key".to_owned(), "pullrequest:created".to_owned())]);
    let Parsed::Unresolved { event } = cloud.parse(&headers, &raw).expect("parses") else {
        panic!("expected an unresolved event");
    };
    match cloud.resolve((*event).clone()).await.expect("resolves") {
        Event::PullRequest(e) => {
            assert_eq!(e.action, PullRequestAction::Opened);
            assert_eq!(e.pull_request.head_sha, sha(CLOUD_HEAD));
        }
        other => panic!("{other:?}"),
    }
    // A lookup that answers another commit is refused.
    let mut wrong = *event;
    wrong.head = crate::AbbreviatedSha::parse("ffffffffffff").expect("hash");
    let err = cloud.resolve(wrong).await.expect_err("mismatch");
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
}

fn participant(account_id: &str, approved: bool, state: Option<&str>, on: &str) -> Value {
    json!({
        "type": "participant",
        "user": {"type": "user", "account_id": account_id, "uuid": format!("{{{account_id}}}")},
        "role": "REVIEWER",
        "approved": approved,
        "state": state,
        "participated_on": on,
    })
}

fn update(hash: &str, date: &str) -> Value {
    json!({
        "update": {
            "state": "OPEN",
            "date": date,
            "source": {"branch": {"name": "feature/test"}, "commit": {"type": "commit", "hash": hash}},
            "destination": {"branch": {"name": "master"}, "commit": {"type": "commit", "hash": "320cc39764dc"}},
        },
        "pull_request": {"type": "pullrequest", "id": 735},
    })
}

#[tokio::test]
async fn cloud_approvals_are_bound_through_the_activity_log() {
    let script: Script = Arc::new(move |seen: &Seen| {
        let base = "/2.0/repositories/amuniz/test-repos";
        if seen.path == format!("{base}/pullrequests/735") {
            let mut pr = cloud_pull_request();
            pr["participants"] = json!([
                participant(
                    "557058:fresh",
                    true,
                    Some("approved"),
                    "2024-11-09T13:06:00.000001+00:00"
                ),
                participant(
                    "557058:stale",
                    true,
                    Some("approved"),
                    "2024-11-09T13:04:59+00:00"
                ),
                participant(
                    "557058:picky",
                    false,
                    Some("changes_requested"),
                    "2024-11-09T13:07:00+00:00"
                ),
                participant("557058:commenter", false, None, "2024-11-09T13:08:00+00:00"),
            ]);
            ok(pr.to_string())
        } else if seen.path == format!("{base}/pullrequests/735/activity?pagelen=50") {
            // Newest first; the next page holds the update that brought the current head.
            let next = format!(
                "http://{}{base}/pullrequests/735/activity?ctx=2&pagelen=50",
                "HOST"
            );
            ok(json!({
                "values": [update("d31df3425c5b", "2024-11-09T13:10:00+00:00")],
                "pagelen": 50,
                "next": next,
            })
            .to_string())
        } else if seen.path.contains("activity?ctx=2") {
            ok(json!({
                "values": [
                    update("d31df3425c5b", "2024-11-09T13:06:00+00:00"),
                    {"approval": {"date": "2024-11-09T13:04:59+00:00", "user": {"account_id": "557058:stale"}}},
                    update("0a1b2c3d4e5f", "2024-11-09T13:00:00+00:00"),
                ],
                "pagelen": 50,
            })
            .to_string())
        } else if seen.path.ends_with("/commit/d31df3425c5b") {
            ok(cloud_commit(CLOUD_HEAD))
        } else if seen.path.ends_with("/commit/0a1b2c3d4e5f") {
            ok(cloud_commit(PREVIOUS_HEAD))
        } else {
            not_found()
        }
    });
    let (url, seen) = serve_with_host(script).await;
    let cloud = provider(Flavor::Cloud, &url);
    let reviews = cloud
        .reviews(&repo(), PrNumber(735))
        .await
        .expect("reviews");
    assert_eq!(
        reviews,
        vec![
            Review {
                reviewer: Login::from("557058:fresh"),
                state: ReviewState::Approved,
                commit: Some(sha(CLOUD_HEAD)),
            },
            Review {
                reviewer: Login::from("557058:stale"),
                state: ReviewState::Approved,
                commit: Some(sha(PREVIOUS_HEAD)),
            },
            Review {
                reviewer: Login::from("557058:picky"),
                state: ReviewState::ChangesRequested,
                commit: Some(sha(CLOUD_HEAD)),
            },
        ]
    );
    let approvals = greg_core::approvals_from_reviews(&reviews);
    assert_eq!(
        approvals.len(),
        2,
        "the stale approval is an approval of the older head"
    );
    assert_eq!(approvals[0].sha, sha(CLOUD_HEAD));
    assert_eq!(approvals[1].sha, sha(PREVIOUS_HEAD));
    let paths: Vec<String> = requests(&seen).into_iter().map(|s| s.path).collect();
    assert_eq!(paths.len(), 5, "{paths:?}");
}

/// As [`serve`], but the literal `HOST` in answers (bodies and headers) is replaced by the
/// server's address (for absolute `next` and `Location` links).
async fn serve_with_host(script: Script) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let cell: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let host = Arc::clone(&cell);
    let wrapped: Script = Arc::new(move |seen: &Seen| {
        let (status, headers, body) = script(seen);
        let host = host.lock().expect("host").clone();
        let headers = headers
            .into_iter()
            .map(|(k, v)| (k, v.replace("HOST", &host)))
            .collect();
        (status, headers, body.replace("HOST", &host))
    });
    let (url, seen) = serve(wrapped).await;
    *cell.lock().expect("host") = url.trim_start_matches("http://").to_owned();
    (url, seen)
}

#[tokio::test]
async fn without_the_current_heads_arrival_no_approval_is_bound() {
    let script: Script = Arc::new(|seen: &Seen| {
        if seen.path.ends_with("/pullrequests/735") {
            let mut pr = cloud_pull_request();
            pr["participants"] = json!([participant(
                "557058:a",
                true,
                None,
                "2024-11-09T13:06:00+00:00"
            )]);
            ok(pr.to_string())
        } else if seen.path.contains("/activity") {
            ok(json!({"values": [{"comment": {"id": 3}}], "pagelen": 50}).to_string())
        } else if seen.path.ends_with("/commit/d31df3425c5b") {
            ok(cloud_commit(CLOUD_HEAD))
        } else {
            not_found()
        }
    });
    let (url, _) = serve(script).await;
    let reviews = provider(Flavor::Cloud, &url)
        .reviews(&repo(), PrNumber(735))
        .await
        .expect("reviews");
    assert_eq!(
        reviews,
        vec![Review {
            reviewer: Login::from("557058:a"),
            state: ReviewState::Approved,
            commit: None,
        }]
    );
    assert!(greg_core::approvals_from_reviews(&reviews).is_empty());
}

#[tokio::test]
async fn a_next_link_to_another_host_is_refused() {
    let script: Script = Arc::new(|seen: &Seen| {
        if seen.path.contains("/permissions/") {
            ok(json!({"values": [], "next": "https://evil.example.com/2.0/steal"}).to_string())
        } else {
            not_found()
        }
    });
    let (url, seen) = serve(script).await;
    let err = provider(Flavor::Cloud, &url)
        .permission(&repo(), &Login::from("557058:a"))
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "unexpected response: permission of 557058:a on amuniz/test-repos: the next-page link points outside the configured api_url"
    );
    assert_eq!(requests(&seen).len(), 1);
}

#[tokio::test]
async fn cloud_permissions_come_from_the_workspace_permission_list() {
    // Shape of the reference's example answer (`repository_permission` objects).
    let script: Script = Arc::new(|seen: &Seen| {
        ok(json!({
            "pagelen": 10,
            "values": [{
                "type": "repository_permission",
                "user": {"type": "user", "display_name": "Erik van Zijst", "uuid": "{d301aafa-d676-4ee0-88be-962be7417567}"},
                "repository": {"type": "repository", "name": "geordi", "full_name": "atlassian_tutorial/geordi"},
                "permission": if seen.path.contains("d301aafa") { "write" } else { "read" },
            }],
            "page": 1,
            "size": 1,
        })
        .to_string())
    });
    let (url, seen) = serve(script).await;
    let cloud = provider(Flavor::Cloud, &url);
    let erik = Login::from("{d301aafa-d676-4ee0-88be-962be7417567}");
    assert_eq!(
        cloud.permission(&repo(), &erik).await,
        Ok(Permission::Write)
    );
    // An entry for someone else (a server ignoring the filter) does not count.
    assert_eq!(
        cloud
            .permission(&repo(), &Login::from("557058:other"))
            .await,
        Ok(Permission::None)
    );
    // A login no Cloud account has is not even asked about.
    assert_eq!(
        cloud
            .permission(&repo(), &Login::from("alice\" OR x"))
            .await,
        Ok(Permission::None)
    );
    let seen = requests(&seen);
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].path,
        "/2.0/workspaces/amuniz/permissions/repositories/test-repos?q=user.uuid%3D%22%7Bd301aafa-d676-4ee0-88be-962be7417567%7D%22"
    );
}

#[tokio::test]
async fn cloud_comments_statuses_and_identity() {
    let script: Script = Arc::new(
        |seen: &Seen| match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", p) if p.ends_with("/comments") => (
                201,
                vec![],
                json!({"id": 144318746, "content": {"raw": "x"}, "type": "pullrequest_comment"})
                    .to_string(),
            ),
            ("POST", p) if p.ends_with("/statuses/build") => (201, vec![], seen.body.clone()),
            ("GET", "/2.0/user") => ok(json!({
                "type": "user",
                "display_name": "greg bot",
                "account_id": "557058:greg",
                "uuid": "{0c5b9e2a-0000-4000-8000-000000000000}",
                "nickname": "greg-bot",
            })
            .to_string()),
            _ => not_found(),
        },
    );
    let (url, seen) = serve(script).await;
    let cloud = provider(Flavor::Cloud, &url);
    assert_eq!(
        cloud
            .post_comment(&repo(), PrNumber(735), "Not ready to merge")
            .await,
        Ok(CommentId(144318746))
    );
    let status = CommitStatus {
        state: CommitState::Pending,
        context: "greg/test".to_owned(),
        description: "Build queued".to_owned(),
        target_url: None,
    };
    cloud
        .set_status(&repo(), &sha(CLOUD_HEAD), &status)
        .await
        .expect("status");
    assert_eq!(cloud.identify().await, Ok(Login::from("557058:greg")));
    assert_eq!(cloud.bot_login(), Some(&Login::from("557058:greg")));

    let seen = requests(&seen);
    assert_eq!(
        seen[0].path,
        "/2.0/repositories/amuniz/test-repos/pullrequests/735/comments"
    );
    assert_eq!(seen[0].body, r#"{"content":{"raw":"Not ready to merge"}}"#);
    assert_eq!(
        seen[1].path,
        format!("/2.0/repositories/amuniz/test-repos/commit/{CLOUD_HEAD}/statuses/build")
    );
    let body: Value = serde_json::from_str(&seen[1].body).expect("status JSON");
    // No build yet: the url Cloud requires points at the commit page of the API host.
    assert_eq!(
        body,
        json!({
            "key": "greg/test",
            "state": "INPROGRESS",
            "url": format!("{url}/amuniz/test-repos/commits/{CLOUD_HEAD}"),
            "name": "greg/test",
            "description": "Build queued",
        })
    );
    assert_eq!(seen.len(), 3, "identify asks once");
    assert_eq!(cloud.identify().await, Ok(Login::from("557058:greg")));
}

// --- Server -------------------------------------------------------------------------------

fn server_repo() -> RepoName {
    RepoName::new("ABC", "some-repo-slug")
}

#[tokio::test]
async fn server_pull_requests_and_reviews() {
    let script: Script = Arc::new(|seen: &Seen| {
        if seen.path.ends_with("/pull-requests/12") {
            let mut pr = server_pull_request();
            pr["participants"] = json!([
                {"user": {"name": "helper"}, "role": "PARTICIPANT", "approved": false, "status": "NEEDS_WORK",
                 "lastReviewedCommit": "1234a72726e35b9e94649b4360a50a45e3927b23"},
                {"user": {"name": "watcher"}, "role": "PARTICIPANT", "approved": false, "status": "UNAPPROVED"},
                {"user": {"name": "anon"}, "role": "PARTICIPANT", "approved": true, "status": "APPROVED",
                 "lastReviewedCommit": "not-a-sha"},
            ]);
            ok(pr.to_string())
        } else {
            not_found()
        }
    });
    let (url, seen) = serve(script).await;
    let server = provider(Flavor::Server, &format!("{url}/bitbucket"));
    let pr = server
        .pull_request(&server_repo(), PrNumber(12))
        .await
        .expect("pull request");
    assert_eq!(pr.head_sha, sha("1eb452ab914eafb25d22608cde3b055034175123"));
    assert_eq!(pr.base_ref, "master");
    let reviews = server
        .reviews(&server_repo(), PrNumber(12))
        .await
        .expect("reviews");
    assert_eq!(
        reviews,
        vec![
            Review {
                reviewer: Login::from("some-reviewer"),
                state: ReviewState::Approved,
                commit: Some(sha("1eb452ab914eafb25d22608cde3b055034175123")),
            },
            Review {
                reviewer: Login::from("helper"),
                state: ReviewState::ChangesRequested,
                commit: Some(sha("1234a72726e35b9e94649b4360a50a45e3927b23")),
            },
            Review {
                reviewer: Login::from("anon"),
                state: ReviewState::Approved,
                commit: None,
            },
        ]
    );
    assert_eq!(
        requests(&seen)[0].path,
        "/bitbucket/rest/api/1.0/projects/ABC/repos/some-repo-slug/pull-requests/12"
    );
}

/// A page of `GET /rest/api/1.0/users` as the reference documents it
/// (<https://developer.atlassian.com/server/bitbucket/rest/v906/api-group-system-maintenance/#api-api-latest-users-get>).
fn users_page(names: &[&str], is_last: bool, next: Option<u64>) -> String {
    let values: Vec<Value> = names
        .iter()
        .map(|n| {
            json!({"name": n, "emailAddress": format!("{n}@example.com"), "id": 101,
                   "displayName": n, "active": true, "slug": n, "type": "NORMAL"})
        })
        .collect();
    let mut page = json!({"size": values.len(), "limit": 100, "isLastPage": is_last, "values": values, "start": 0});
    if let Some(next) = next {
        page["nextPageStart"] = json!(next);
    }
    page.to_string()
}

#[tokio::test]
async fn server_permissions_are_effective_and_exact() {
    let script: Script = Arc::new(|seen: &Seen| {
        let q = &seen.path;
        if q.contains("permission.1=REPO_WRITE") && q.contains("start=0") {
            // "jdoe" matches "jdoe2" too: only an exact name counts; jdoe is on page 2.
            ok(users_page(&["jdoe2"], false, Some(100)))
        } else if q.contains("permission.1=REPO_WRITE") && q.contains("start=100") {
            ok(users_page(&["JDoe"], true, None))
        } else if q.contains("permission.1=REPO_ADMIN") {
            ok(users_page(&["admin"], true, None))
        } else if q.contains("permission.1=REPO_READ") {
            ok(users_page(&[], true, None))
        } else {
            not_found()
        }
    });
    let (url, seen) = serve(script).await;
    let server = provider(Flavor::Server, &url);
    assert_eq!(
        server
            .permission(&server_repo(), &Login::from("jdoe"))
            .await,
        Ok(Permission::Write)
    );
    let paths: Vec<String> = requests(&seen).into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/rest/api/1.0/users?filter=jdoe&permission.1=REPO_WRITE&permission.1.projectKey=ABC&permission.1.repositorySlug=some-repo-slug&start=0&limit=100",
            "/rest/api/1.0/users?filter=jdoe&permission.1=REPO_WRITE&permission.1.projectKey=ABC&permission.1.repositorySlug=some-repo-slug&start=100&limit=100",
            "/rest/api/1.0/users?filter=jdoe&permission.1=REPO_ADMIN&permission.1.projectKey=ABC&permission.1.repositorySlug=some-repo-slug&start=0&limit=100",
        ]
    );
    assert_eq!(
        server
            .permission(&server_repo(), &Login::from("stranger"))
            .await,
        Ok(Permission::None)
    );
    assert_eq!(
        server.permission(&server_repo(), &Login::from(" ")).await,
        Ok(Permission::None)
    );
}

#[tokio::test]
async fn server_comments_statuses_commits_and_bearer_tokens() {
    let script: Script = Arc::new(|seen: &Seen| match seen.method.as_str() {
        "POST" if seen.path.ends_with("/comments") => (
            201,
            vec![],
            json!({"properties": {"repositoryId": 84}, "id": 62, "version": 0, "text": "x",
                   "author": {"name": "greg-bot"}, "createdDate": 1505784066751u64})
            .to_string(),
        ),
        "POST" if seen.path.ends_with("/builds") => (204, vec![], String::new()),
        "GET" if seen.path.contains("/commits/") => {
            ok(server_commit("def0123abcdef4567abcdef8987abcdef6543abc"))
        }
        _ => not_found(),
    });
    let (url, seen) = serve(script).await;
    let mut cfg = BitbucketConfig::server(&url, "", Secret::new("BBDC-token"));
    cfg.name = "bitbucket-dc".to_owned();
    let server = BitbucketProvider::new(cfg).expect("config");
    assert_eq!(server.bot_login(), None);
    assert!(matches!(
        server.identify().await,
        Err(Error::InvalidConfig { key, .. }) if key == "providers.bitbucket-dc.username"
    ));
    assert_eq!(
        server
            .post_comment(&server_repo(), PrNumber(12), "Ready to merge")
            .await,
        Ok(CommentId(62))
    );
    let status = CommitStatus {
        state: CommitState::Failure,
        context: "greg/test".to_owned(),
        description: "Build #3 failed".to_owned(),
        target_url: Some("https://jenkins.example.com/job/t/3/".to_owned()),
    };
    let head = sha("1eb452ab914eafb25d22608cde3b055034175123");
    server
        .set_status(&server_repo(), &head, &status)
        .await
        .expect("status");
    assert_eq!(
        server.resolve_commit(&server_repo(), "def0123abcd").await,
        Ok(sha("def0123abcdef4567abcdef8987abcdef6543abc"))
    );
    let seen = requests(&seen);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer BBDC-token"));
    assert_eq!(seen[0].body, r#"{"text":"Ready to merge"}"#);
    assert_eq!(
        seen[1].path,
        format!("/rest/api/1.0/projects/ABC/repos/some-repo-slug/commits/{head}/builds")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&seen[1].body).expect("json"),
        json!({"key": "greg/test", "state": "FAILED", "url": "https://jenkins.example.com/job/t/3/",
               "name": "greg/test", "description": "Build #3 failed"})
    );
    assert_eq!(
        seen[2].path,
        "/rest/api/1.0/projects/ABC/repos/some-repo-slug/commits/def0123abcd"
    );
}

// --- failures -----------------------------------------------------------------------------

#[tokio::test]
async fn http_failures_map_onto_the_taxonomy() {
    let script: Script = Arc::new(|seen: &Seen| {
        let p = seen.path.as_str();
        if p.ends_with("/1") {
            (401, vec![], String::new())
        } else if p.ends_with("/2") {
            (
                403,
                vec![],
                r#"{"errors":[{"message":"You are not permitted to access this resource"}]}"#
                    .to_owned(),
            )
        } else if p.ends_with("/3") {
            (
                429,
                vec![("retry-after".to_owned(), "17".to_owned())],
                String::new(),
            )
        } else if p.ends_with("/4") {
            (503, vec![], "<html>maintenance</html>".to_owned())
        } else if p.ends_with("/5") {
            (
                302,
                vec![(
                    "location".to_owned(),
                    "https://sso.example.com/login".to_owned(),
                )],
                String::new(),
            )
        } else if p.ends_with("/6") {
            ok(r#"{"id": 6, "title": "x"}"#.to_owned())
        } else {
            not_found()
        }
    });
    let (url, seen) = serve(script).await;
    let server = provider(Flavor::Server, &url);
    let server = &server;
    let get = move |n: u64| {
        let repo = server_repo();
        async move { server.pull_request(&repo, PrNumber(n)).await }
    };
    let what = |n: u64| format!("pull request ABC/some-repo-slug#{n}");
    assert_eq!(
        get(1).await,
        Err(Error::Unauthenticated {
            message: format!("{}: 401 Unauthorized", what(1))
        })
    );
    assert_eq!(
        get(2).await,
        Err(Error::PermissionDenied {
            message: format!(
                "{}: 403 You are not permitted to access this resource",
                what(2)
            )
        })
    );
    assert_eq!(
        get(3).await,
        Err(Error::RateLimited {
            retry_after: Some(Duration::from_secs(17))
        })
    );
    assert_eq!(
        get(4).await,
        Err(Error::Transient {
            message: format!("{}: 503 Service Unavailable", what(4))
        })
    );
    let redirect = get(5).await.expect_err("redirect");
    assert!(matches!(redirect, Error::Protocol { .. }), "{redirect:?}");
    let bad = get(6).await.expect_err("bad JSON");
    assert!(
        bad.to_string().starts_with(&format!(
            "unexpected response: {}: at (top level): missing field",
            what(6)
        )),
        "{bad}"
    );
    assert_eq!(get(7).await, Err(Error::NotFound { what: what(7) }));
    // The redirect was not followed.
    assert_eq!(requests(&seen).len(), 7);
    for n in 1..=7 {
        if let Err(e) = get(n).await {
            assert!(!e.to_string().contains(PASSWORD), "{e}");
        }
    }
}

#[tokio::test]
async fn a_refused_connection_is_transient_and_names_no_secret() {
    // Bind, learn the port, close: nothing listens there afterwards.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let cloud = provider(Flavor::Cloud, &format!("http://127.0.0.1:{port}"));
    let err = cloud
        .pull_request(&repo(), PrNumber(1))
        .await
        .expect_err("refused");
    assert!(err.is_retryable(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "transient: pull request amuniz/test-repos#1: cannot connect to Bitbucket"
        ),
        "{text}"
    );
    assert!(
        !text.contains(PASSWORD) && !text.contains("127.0.0.1"),
        "{text}"
    );
}

mod writes;
