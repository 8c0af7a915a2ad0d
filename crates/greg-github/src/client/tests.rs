//! Client tests: request bodies against GitHub's request schemas, responses from GitHub's own
//! examples (tests/data/github/openapi-subset.json), and the whole request path against a
//! tiny scripted HTTP server on loopback (the stateful fake lives in greg-testkit).

use super::*;
use greg_core::ReviewState;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "ghp_TESTTOKEN0123456789";

fn openapi() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/github/openapi-subset.json"
        );
        let raw = std::fs::read_to_string(path).expect("openapi-subset.json");
        serde_json::from_str(&raw).expect("openapi JSON")
    })
}

/// `components.examples.<name>.value` of GitHub's description.
fn example(name: &str) -> String {
    let value = &openapi()["components"]["examples"][name]["value"];
    assert!(!value.is_null(), "no example {name}");
    value.to_string()
}

/// The JSON request schema of `method path-template`.
fn request_schema(template: &str, method: &str) -> Value {
    openapi()["paths"][template][method]["requestBody"]["content"]["application/json"]["schema"]
        .clone()
}

fn assert_valid(schema: &Value, body: &Value) {
    let validator = jsonschema::validator_for(schema).expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{body} does not validate: {errors:?}");
}

fn sha() -> Sha {
    Sha::parse("6dcb09b5b57875f334f61aebed695e2e4193db5e").expect("sha")
}

fn repo() -> RepoName {
    RepoName::new("acme", "demo")
}

// --- request bodies ----------------------------------------------------------------------

#[test]
fn status_body_is_what_github_documents() {
    let status = CommitStatus {
        state: CommitState::Success,
        context: "greg/test".to_owned(),
        description: "Build #12 passed".to_owned(),
        target_url: Some("https://jenkins.example.com/job/demo-test/12/".to_owned()),
    };
    let body = serde_json::to_value(StatusBody::new(&status)).expect("serialize");
    assert_eq!(
        body,
        json!({
            "state": "success",
            "target_url": "https://jenkins.example.com/job/demo-test/12/",
            "description": "Build #12 passed",
            "context": "greg/test",
        })
    );
    let schema = request_schema("/repos/{owner}/{repo}/statuses/{sha}", "post");
    assert_valid(&schema, &body);

    // No build yet: target_url is left out rather than sent as null or "".
    for target_url in [None, Some(String::new())] {
        let pending = CommitStatus {
            state: CommitState::Pending,
            target_url,
            ..status.clone()
        };
        let body = serde_json::to_value(StatusBody::new(&pending)).expect("serialize");
        assert_eq!(body.get("target_url"), None, "{body}");
        assert_eq!(body["state"], "pending");
        assert_valid(&schema, &body);
    }
    // Every state greg sends is in the schema's enum.
    for state in [
        CommitState::Pending,
        CommitState::Success,
        CommitState::Failure,
        CommitState::Error,
    ] {
        let s = CommitStatus {
            state,
            ..status.clone()
        };
        assert_valid(
            &schema,
            &serde_json::to_value(StatusBody::new(&s)).expect("serialize"),
        );
    }
}

#[test]
fn comment_bodies_validate_for_post_and_patch() {
    let body = serde_json::to_value(CommentBody {
        body: "Ready to merge",
    })
    .expect("serialize");
    assert_eq!(body, json!({ "body": "Ready to merge" }));
    assert_valid(
        &request_schema(
            "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            "post",
        ),
        &body,
    );
    assert_valid(
        &request_schema(
            "/repos/{owner}/{repo}/issues/comments/{comment_id}",
            "patch",
        ),
        &body,
    );
}

#[test]
fn status_descriptions_are_cut_to_140_characters_on_a_character_boundary() {
    assert_eq!(status_description("Build #3 failed"), "Build #3 failed");
    assert_eq!(status_description(" two\nlines\r\n"), "two lines");
    let exact = "x".repeat(MAX_DESCRIPTION_CHARS);
    assert_eq!(status_description(&exact), exact);
    // Two-byte characters: a byte-based cut would split one.
    let long = "é".repeat(200);
    let cut = status_description(&long);
    assert_eq!(cut.chars().count(), MAX_DESCRIPTION_CHARS);
    assert!(cut.ends_with('…') && cut.starts_with("éé"));
}

// --- responses from GitHub's own examples ----------------------------------------------

#[test]
fn pull_request_example_decodes() {
    let wire: WirePullRequest = decode("pr", &example("pull-request")).expect("decodes");
    let pr = wire.into_core();
    assert_eq!(pr.number, PrNumber(1347));
    assert_eq!(pr.base_repo, RepoName::new("octocat", "Hello-World"));
    assert_eq!(pr.head_ref, "new-topic");
    assert_eq!(pr.base_ref, "master");
    assert_eq!(pr.head_sha, sha());
    assert_eq!(pr.author, Login::from("octocat"));
    assert_eq!(pr.mergeable, Some(true));
    assert_eq!(pr.state, greg_core::PullRequestState::Open);
}

#[test]
fn review_list_example_decodes() {
    let items: Vec<WireReview> =
        decode("reviews", &example("pull-request-review-items")).expect("decodes");
    let reviews: Vec<Review> = items
        .into_iter()
        .filter_map(WireReview::into_core)
        .collect();
    assert_eq!(
        reviews,
        vec![Review {
            reviewer: Login::from("octocat"),
            state: ReviewState::Approved,
            commit: Some(Sha::parse("ecdd80bb57125d7ba9641ffaa4d7d2c19d3f3091").expect("sha")),
        }]
    );
}

#[test]
fn pending_and_ghost_reviews_are_skipped() {
    let items: Vec<WireReview> = decode(
        "reviews",
        r#"[{"user":null,"state":"APPROVED","commit_id":null},
            {"user":{"login":"a"},"state":"PENDING","commit_id":null},
            {"user":{"login":"b"},"state":"DISMISSED","commit_id":null}]"#,
    )
    .expect("decodes");
    let reviews: Vec<Review> = items
        .into_iter()
        .filter_map(WireReview::into_core)
        .collect();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].state, ReviewState::Dismissed);
}

#[test]
fn permission_example_and_roles() {
    let wire: WirePermission = decode(
        "perm",
        &example("repository-collaborator-permission-response-if-user-has-admin-permissions"),
    )
    .expect("decodes");
    assert_eq!(wire.into_core("perm"), Ok(Permission::Admin));
    for (permission, role, expected) in [
        ("write", Some("maintain"), Permission::Maintain),
        ("read", Some("triage"), Permission::Triage),
        ("write", Some("security-reviewer"), Permission::Write),
        ("none", None, Permission::None),
    ] {
        let wire = WirePermission {
            permission: permission.to_owned(),
            role_name: role.map(str::to_owned),
        };
        assert_eq!(
            wire.into_core("perm"),
            Ok(expected),
            "{permission} {role:?}"
        );
    }
    let unknown = WirePermission {
        permission: "owner-ish".to_owned(),
        role_name: None,
    };
    assert!(matches!(
        unknown.into_core("perm"),
        Err(Error::Protocol { .. })
    ));
}

#[test]
fn created_comment_and_combined_status_examples_decode() {
    let created: WireCreated = decode("comment", &example("issue-comment")).expect("decodes");
    assert_eq!(created.id, 1);
    let combined: WireCombinedStatus =
        decode("status", &example("combined-commit-status")).expect("decodes");
    assert_eq!(combined.sha, sha());
    assert_eq!(combined.statuses.len(), 2);
    assert_eq!(combined.total_count, Some(2));
}

#[test]
fn unexpected_json_is_a_protocol_error_with_its_path() {
    let err = decode::<WirePullRequest>("pull request acme/demo#1", r#"{"number":"one"}"#)
        .expect_err("bad type");
    let text = err.to_string();
    assert!(matches!(err, Error::Protocol { .. }));
    assert!(
        text.contains("pull request acme/demo#1: at number: invalid type"),
        "{text}"
    );
}

// --- the provider itself ------------------------------------------------------------------

fn provider(api_url: &str) -> GithubProvider {
    let mut cfg = GithubConfig::new("greg-bot", Secret::new(TOKEN));
    cfg.api_url = api_url.to_owned();
    cfg.webhook_secret = Some(Secret::new("hook-secret"));
    GithubProvider::new(cfg).expect("valid config")
}

#[test]
fn display_and_debug_never_show_secrets() {
    let p = provider("https://ghe.example.com/api/v3/");
    assert_eq!(p.to_string(), "github(https://ghe.example.com/api/v3)");
    let debug = format!("{p:?}");
    assert!(
        !debug.contains(TOKEN) && !debug.contains("hook-secret"),
        "{debug}"
    );
    assert_eq!(p.name(), "github");
    assert_eq!(p.bot_login(), Some(&Login::from("greg-bot")));
}

/// One request as the scripted server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
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

fn review_json(id: u64) -> Value {
    json!({
        "id": id,
        "user": { "login": format!("reviewer{id}") },
        "state": "APPROVED",
        "commit_id": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
    })
}

#[tokio::test]
async fn reviews_follow_pages_until_github_stops_announcing_more() {
    let script: Script = Arc::new(|seen: &Seen| {
        if seen.path.ends_with("page=1") {
            let page: Vec<Value> = (1..=100).map(review_json).collect();
            let link =
                r#"<http://x/repos/acme/demo/pulls/5/reviews?per_page=100&page=2>; rel="next""#;
            (
                200,
                vec![("link".to_owned(), link.to_owned())],
                Value::from(page).to_string(),
            )
        } else {
            (200, vec![], json!([review_json(101)]).to_string())
        }
    });
    let (url, seen) = serve(script).await;
    let reviews = provider(&url)
        .reviews(&repo(), PrNumber(5))
        .await
        .expect("reviews");
    assert_eq!(reviews.len(), 101);
    assert_eq!(reviews[100].reviewer, Login::from("reviewer101"));
    let seen = seen.lock().expect("log").clone();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/repos/acme/demo/pulls/5/reviews?per_page=100&page=1",
            "/repos/acme/demo/pulls/5/reviews?per_page=100&page=2",
        ]
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn set_status_and_post_comment_send_documented_bodies() {
    let script: Script = Arc::new(|seen: &Seen| match seen.method.as_str() {
        "POST" if seen.path.contains("/statuses/") => (201, vec![], example("status")),
        "POST" => (201, vec![], example("issue-comment")),
        _ => (404, vec![], r#"{"message":"Not Found"}"#.to_owned()),
    });
    let (url, seen) = serve(script).await;
    let github = provider(&format!("{url}/api/v3"));
    let status = CommitStatus {
        state: CommitState::Failure,
        context: "greg/test".to_owned(),
        description: "x".repeat(300),
        target_url: None,
    };
    github
        .set_status(&repo(), &sha(), &status)
        .await
        .expect("status");
    let id = github
        .post_comment(&repo(), PrNumber(5), "Not ready to merge")
        .await
        .expect("comment");
    assert_eq!(id, CommentId(1));

    let seen = seen.lock().expect("log").clone();
    assert_eq!(
        seen[0].path,
        format!("/api/v3/repos/acme/demo/statuses/{sha}", sha = sha())
    );
    let body: Value = serde_json::from_str(&seen[0].body).expect("status JSON");
    assert_eq!(body["state"], "failure");
    assert_eq!(
        body["description"].as_str().map(|d| d.chars().count()),
        Some(140)
    );
    assert_valid(
        &request_schema("/repos/{owner}/{repo}/statuses/{sha}", "post"),
        &body,
    );
    assert_eq!(seen[1].path, "/api/v3/repos/acme/demo/issues/5/comments");
    assert_eq!(seen[1].body, r#"{"body":"Not ready to merge"}"#);
}

#[tokio::test]
async fn http_failures_map_onto_the_taxonomy() {
    let script: Script = Arc::new(|seen: &Seen| {
        if seen.path.contains("/collaborators/") {
            (404, vec![], r#"{"message":"Not Found"}"#.to_owned())
        } else if seen.path.contains("/pulls/1") {
            let headers = vec![
                ("x-ratelimit-remaining".to_owned(), "0".to_owned()),
                ("retry-after".to_owned(), "42".to_owned()),
            ];
            (
                403,
                headers,
                r#"{"message":"API rate limit exceeded"}"#.to_owned(),
            )
        } else if seen.path.contains("/pulls/2") {
            (401, vec![], r#"{"message":"Bad credentials"}"#.to_owned())
        } else {
            (502, vec![], "<html>bad gateway</html>".to_owned())
        }
    });
    let (url, _) = serve(script).await;
    let github = provider(&url);
    assert_eq!(
        github.permission(&repo(), &Login::from("stranger")).await,
        Ok(Permission::None)
    );
    assert_eq!(
        github.pull_request(&repo(), PrNumber(1)).await,
        Err(Error::RateLimited {
            retry_after: Some(Duration::from_secs(42))
        })
    );
    let err = github
        .pull_request(&repo(), PrNumber(2))
        .await
        .expect_err("401");
    assert_eq!(
        err,
        Error::Unauthenticated {
            message: "pull request acme/demo#2: 401 Bad credentials".to_owned()
        }
    );
    assert!(!err.to_string().contains(TOKEN));
    let err = github
        .pull_request(&repo(), PrNumber(3))
        .await
        .expect_err("502");
    assert_eq!(
        err,
        Error::Transient {
            message: "pull request acme/demo#3: 502 Bad Gateway".to_owned()
        }
    );
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // Bind, learn the port, close: nothing listens there afterwards.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let github = provider(&format!("http://127.0.0.1:{port}"));
    let err = github
        .pull_request(&repo(), PrNumber(1))
        .await
        .expect_err("refused");
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("transient: pull request acme/demo#1: "),
        "{err}"
    );
    assert!(!err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn combined_status_and_comment_update() {
    let script: Script = Arc::new(|seen: &Seen| match seen.method.as_str() {
        "GET" => (200, vec![], example("combined-commit-status")),
        _ => (200, vec![], example("issue-comment")),
    });
    let (url, seen) = serve(script).await;
    let github = provider(&url);
    let combined = github
        .combined_status(&repo(), "main")
        .await
        .expect("combined");
    assert_eq!(combined.state, CommitState::Success);
    assert_eq!(combined.sha, sha());
    assert_eq!(
        combined
            .statuses
            .iter()
            .map(|s| s.context.as_str())
            .collect::<Vec<_>>(),
        ["continuous-integration/jenkins", "security/brakeman"]
    );
    github
        .update_comment(&repo(), CommentId(9), "edited")
        .await
        .expect("update");
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 2, "total_count 2 was reached on page 1");
    assert_eq!(
        seen[0].path,
        "/repos/acme/demo/commits/main/status?per_page=100&page=1"
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("PATCH", "/repos/acme/demo/issues/comments/9")
    );
    assert_eq!(seen[1].body, r#"{"body":"edited"}"#);
}
