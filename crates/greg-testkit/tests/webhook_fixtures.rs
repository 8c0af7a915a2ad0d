//! The world's webhook deliveries are the vendor captures of tests/data/github/ with the
//! world's facts written in: every delivery keeps its capture's keys and JSON types, carries
//! none of the capture's identities (repository, logins, shas, ids) outside `installation`,
//! and greg's real parser (`greg_github::webhook::parse_event`) reads it as the event the
//! world describes.

use greg_core::{
    CommentEvent, Event, Headers, Inbound, Login, PrNumber, PullRequestAction, PullRequestState,
    RepoName, ReviewEvent, ReviewState,
};
use greg_github::webhook::{parse_event, verify_signature};
use greg_testkit::{NewPr, WebhookDelivery, World, fake_sha};
use serde_json::Value;

const SECRET: &str = "s3cret";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/data/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn repo() -> RepoName {
    RepoName::new("acme", "demo")
}

fn world() -> World {
    let w = World::new("greg-bot");
    w.create_repo(&repo()).expect("repo");
    w
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where `ours` differs in shape from `vendor`: keys missing or added in an object, or a
/// different JSON type (`null` on either side is accepted: a value the world does not have,
/// or a deleted fork). Array elements are compared with the vendor's first element.
fn shape_diff(vendor: &Value, ours: &Value, path: &str, out: &mut Vec<String>) {
    match (vendor, ours) {
        (Value::Object(v), Value::Object(o)) => {
            for k in v.keys().filter(|k| !o.contains_key(*k)) {
                out.push(format!("{path}/{k} missing"));
            }
            for k in o.keys().filter(|k| !v.contains_key(*k)) {
                out.push(format!("{path}/{k} added"));
            }
            for (k, vv) in v {
                if let Some(ov) = o.get(k) {
                    shape_diff(vv, ov, &format!("{path}/{k}"), out);
                }
            }
        }
        (Value::Array(v), Value::Array(o)) => {
            if let Some(first) = v.first() {
                for (i, ov) in o.iter().enumerate() {
                    shape_diff(first, ov, &format!("{path}/{i}"), out);
                }
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (v, o) if json_type(v) != json_type(o) => {
            out.push(format!("{path}: {} became {}", json_type(v), json_type(o)));
        }
        _ => {}
    }
}

fn assert_shape(vendor: &Value, ours: &Value, what: &str) {
    let mut out = Vec::new();
    shape_diff(vendor, ours, "", &mut out);
    assert_eq!(out, Vec::<String>::new(), "{what}");
}

/// Every string of the vendor capture that names an account, a repository or a commit, and
/// every id of the objects the world renders; none may survive in the delivery (outside
/// `installation`, which the world does not model).
fn vendor_identities(vendor: &Value) -> (Vec<String>, Vec<(String, Value)>) {
    let mut strings = Vec::new();
    let mut add = |v: Option<&Value>| {
        if let Some(s) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) {
            strings.push(s.to_owned());
        }
    };
    for p in [
        "/repository/full_name",
        "/repository/owner/login",
        "/sender/login",
        "/pull_request/user/login",
        "/pull_request/head/sha",
        "/pull_request/head/label",
        "/pull_request/base/sha",
        "/pull_request/head/repo/full_name",
        "/issue/user/login",
        "/comment/user/login",
        "/review/user/login",
        "/review/commit_id",
        "/after",
        "/before",
        "/head_commit/id",
        "/pusher/name",
        "/organization/login",
    ] {
        add(vendor.pointer(p));
    }
    strings.retain(|s| s != "0000000000000000000000000000000000000000");
    let ids = [
        "/repository/id",
        "/sender/id",
        "/pull_request/id",
        "/issue/id",
        "/comment/id",
        "/review/id",
    ]
    .into_iter()
    .filter_map(|p| vendor.pointer(p).map(|v| (p.to_owned(), v.clone())))
    .collect();
    (strings, ids)
}

fn assert_no_vendor_identity(vendor: &Value, ours: &Value, what: &str) {
    let mut ours = ours.clone();
    if let Some(o) = ours.as_object_mut() {
        o.remove("installation");
    }
    let text = ours.to_string();
    let (strings, ids) = vendor_identities(vendor);
    assert!(!strings.is_empty(), "{what}: no identities found");
    for s in strings {
        assert!(!text.contains(&s), "{what}: vendor's {s:?} left in {text}");
    }
    for (p, id) in ids {
        assert_ne!(ours.pointer(&p), Some(&id), "{what}: vendor's {p} left");
    }
    assert!(
        !text.contains("api.github.com"),
        "{what}: a vendor API URL left in {text}"
    );
}

/// Signature check and parse with greg's real GitHub webhook code.
fn parse(d: &WebhookDelivery) -> Inbound {
    let headers = Headers::new(d.headers(Some(SECRET)));
    let secret = greg_core::Secret::new(SECRET);
    verify_signature(Some(&secret), &headers, &d.body()).expect("signature");
    parse_event(&headers, &d.body()).unwrap_or_else(|e| panic!("{}: {e}", d.event))
}

fn event(d: &WebhookDelivery) -> Event {
    match parse(d) {
        Inbound::Event(e) => e,
        Inbound::Ignored(why) => panic!("{} ignored: {why}", d.event),
        Inbound::Events(several) => panic!("{} gave several events: {several:?}", d.event),
    }
}

/// Checks `d` against `template` (shape, identities) and returns it for parsing.
fn checked<'a>(d: &'a WebhookDelivery, template: &str) -> &'a WebhookDelivery {
    let vendor = fixture(template);
    assert_shape(&vendor, &d.payload, template);
    assert_no_vendor_identity(&vendor, &d.payload, template);
    d
}

#[test]
fn pull_request_deliveries_are_the_vendor_payloads_with_the_worlds_facts() {
    let w = world();
    let pr = w
        .open_pr(
            &repo(),
            NewPr::new("carol", "fix", fake_sha("a")).title("Fix the thing"),
        )
        .expect("open");
    let api = w.read(|s| s.github.api_url.clone());
    let expect_pr = |action| {
        let core = w
            .pull_request(&repo(), pr.number)
            .expect("pr")
            .to_core(&repo(), &api);
        Event::PullRequest(greg_core::PullRequestEvent {
            repo: repo(),
            action,
            pull_request: core,
        })
    };

    let d = w
        .pull_request_webhook(&repo(), pr.number, "opened")
        .expect("opened");
    assert_eq!(d.event, "pull_request");
    assert_eq!(
        event(checked(&d, "pull_request.opened.json")),
        expect_pr(PullRequestAction::Opened)
    );
    assert_eq!(d.payload["sender"]["login"], "carol");
    assert_eq!(d.payload["pull_request"]["title"], "Fix the thing");
    assert_eq!(
        d.payload["pull_request"]["url"],
        format!("{api}/repos/acme/demo/pulls/1")
    );
    // Kept as the vendor wrote it: proof the capture is the template.
    let vendor = fixture("pull_request.opened.json");
    assert_eq!(d.payload["installation"], vendor["installation"]);

    w.push_to_pr(&repo(), pr.number, &fake_sha("b"))
        .expect("push");
    let d = w
        .pull_request_webhook(&repo(), pr.number, "synchronize")
        .expect("synchronize");
    assert_eq!(
        event(checked(&d, "pull_request.synchronize.json")),
        expect_pr(PullRequestAction::Synchronize)
    );
    assert_eq!(d.payload["before"], fake_sha("a").as_str());
    assert_eq!(d.payload["after"], fake_sha("b").as_str());
    assert_eq!(
        d.payload["pull_request"]["head"]["sha"],
        fake_sha("b").as_str()
    );

    let d = w
        .pull_request_webhook(&repo(), pr.number, "edited")
        .expect("edited");
    checked(&d, "pull_request.edited.json");
    assert!(
        matches!(parse(&d), Inbound::Ignored(_)),
        "a body edit is not used"
    );

    w.push_branch(&repo(), "release", &fake_sha("r"))
        .expect("release");
    w.edit_pr(&repo(), pr.number, |p| p.base_ref = "release".to_owned())
        .expect("retarget");
    let d = w
        .pull_request_retargeted_webhook(&repo(), pr.number, "master")
        .expect("retargeted");
    assert_eq!(
        event(checked(&d, "pull_request.edited.base-changed.json")),
        expect_pr(PullRequestAction::Retargeted)
    );
    assert_eq!(d.payload["changes"]["base"]["ref"]["from"], "master");
    assert_eq!(d.payload["pull_request"]["base"]["ref"], "release");
    assert_eq!(
        d.payload["pull_request"]["base"]["sha"],
        fake_sha("r").as_str()
    );
    assert!(matches!(
        w.pull_request_retargeted_webhook(&repo(), pr.number, "nope"),
        Err(greg_testkit::WorldError::UnknownBranch(..))
    ));

    w.edit_pr(&repo(), pr.number, |p| {
        p.state = PullRequestState::Closed;
        p.closed_at = Some(p.updated_at);
    })
    .expect("close");
    let d = w
        .pull_request_webhook(&repo(), pr.number, "closed")
        .expect("closed");
    assert_eq!(
        event(checked(&d, "pull_request.closed.json")),
        expect_pr(PullRequestAction::Closed { merged: false })
    );

    w.edit_pr(&repo(), pr.number, |p| p.state = PullRequestState::Open)
        .expect("reopen");
    let d = w
        .pull_request_webhook(&repo(), pr.number, "reopened")
        .expect("reopened");
    assert_eq!(
        event(checked(&d, "pull_request.reopened.json")),
        expect_pr(PullRequestAction::Reopened)
    );

    // An action without its own capture takes opened's, with the action set.
    let d = w
        .pull_request_webhook(&repo(), pr.number, "ready_for_review")
        .expect("ready");
    assert_eq!(
        event(checked(&d, "pull_request.opened.json")),
        expect_pr(PullRequestAction::ReadyForReview)
    );

    w.edit_pr(&repo(), pr.number, |p| {
        p.state = PullRequestState::Merged;
        p.closed_at = Some(p.updated_at);
        p.merged_at = Some(p.updated_at);
        p.merged_by = Some(Login::from("alice"));
        p.merge_commit_sha = Some(fake_sha("m"));
    })
    .expect("merge");
    let d = w
        .pull_request_webhook(&repo(), pr.number, "closed")
        .expect("merged");
    assert_eq!(
        event(checked(&d, "pull_request.closed.merged.json")),
        expect_pr(PullRequestAction::Closed { merged: true })
    );
    assert_eq!(d.payload["pull_request"]["merged"], true);
    assert_eq!(d.payload["pull_request"]["merged_by"]["login"], "alice");
    assert_eq!(
        d.payload["pull_request"]["merge_commit_sha"],
        fake_sha("m").as_str()
    );
}

#[test]
fn fork_pull_requests_name_the_fork_or_null_when_deleted() {
    let w = world();
    let fork = RepoName::new("carol", "demo");
    let pr = w
        .open_pr(
            &repo(),
            NewPr::new("carol", "fix", fake_sha("f")).from_fork(Some(fork.clone())),
        )
        .expect("fork pr");
    let d = w
        .pull_request_webhook(&repo(), pr.number, "opened")
        .expect("opened");
    let head = &d.payload["pull_request"]["head"];
    assert_eq!(head["repo"]["full_name"], "carol/demo");
    assert_eq!(head["repo"]["owner"]["login"], "carol");
    assert_eq!(head["label"], "carol:fix");
    let Event::PullRequest(e) = event(checked(&d, "pull_request.opened.json")) else {
        panic!("not a pull request event");
    };
    assert_eq!(e.pull_request.head_repo, Some(fork));
    assert_eq!(e.pull_request.base_repo, repo());

    let gone = w
        .open_pr(
            &repo(),
            NewPr::new("dave", "wip", fake_sha("g")).from_fork(None),
        )
        .expect("deleted fork pr");
    let d = w
        .pull_request_webhook(&repo(), gone.number, "opened")
        .expect("opened");
    assert_eq!(d.payload["pull_request"]["head"]["repo"], Value::Null);
    let Event::PullRequest(e) = event(checked(&d, "pull_request.opened.json")) else {
        panic!("not a pull request event");
    };
    assert_eq!(e.pull_request.head_repo, None);
    assert_eq!(e.pull_request.author, Login::from("dave"));
}

#[test]
fn comment_deliveries_are_the_bors_capture_with_the_worlds_facts() {
    let w = world();
    let pr = w
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("a")))
        .expect("open");
    let c = w
        .comment(&repo(), pr.number, "alice", "@greg please")
        .expect("comment");
    let d = w.comment_webhook(&repo(), &c).expect("delivery");
    assert_eq!(d.event, "issue_comment");
    let template = "issue_comment.created.on-pull-request.json";
    assert_eq!(
        event(checked(&d, template)),
        Event::Comment(CommentEvent {
            repo: repo(),
            pr: pr.number,
            comment_id: c.id,
            author: Login::from("alice"),
            body: "@greg please".to_owned(),
        })
    );
    let api = w.read(|s| s.github.api_url.clone());
    let issue = &d.payload["issue"];
    assert_eq!(issue["number"], 1);
    assert_eq!(issue["user"]["login"], "carol");
    assert_eq!(
        issue["pull_request"]["url"],
        format!("{api}/repos/acme/demo/pulls/1")
    );
    assert_eq!(
        issue["pull_request"]["html_url"],
        format!("{api}/acme/demo/pull/1")
    );
    assert_eq!(d.payload["sender"]["login"], "alice");
    assert_eq!(
        d.payload["comment"]["reactions"]["url"],
        format!("{api}/repos/acme/demo/issues/comments/{}/reactions", c.id)
    );
    assert_eq!(d.payload["installation"], fixture(template)["installation"]);
}

#[test]
fn review_deliveries_are_the_vendor_captures_with_the_worlds_facts() {
    let w = world();
    let pr = w
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("a")))
        .expect("open");
    let expect = |reviewer: &str, state, body: Option<&str>| {
        Event::Review(ReviewEvent {
            repo: repo(),
            pr: pr.number,
            reviewer: Login::from(reviewer),
            state,
            commit: Some(fake_sha("a")),
            body: body.map(str::to_owned),
        })
    };

    // An approval: the kubernetes/kubernetes capture (2018, no `draft`/`merged` keys).
    let r = w.approve(&repo(), pr.number, "alice").expect("approve");
    let d = w.review_webhook(&repo(), &r).expect("delivery");
    assert_eq!(d.event, "pull_request_review");
    let template = "pull_request_review.submitted.approved.json";
    assert_eq!(
        event(checked(&d, template)),
        expect("alice", ReviewState::Approved, None)
    );
    assert_eq!(d.payload["action"], "submitted");
    assert_eq!(d.payload["review"]["state"], "approved");
    assert_eq!(d.payload["review"]["commit_id"], fake_sha("a").as_str());
    assert_eq!(d.payload["review"]["id"], r.id);
    assert_eq!(d.payload["pull_request"]["number"], 1);
    assert_eq!(
        d.payload["pull_request"]["head"]["sha"],
        fake_sha("a").as_str()
    );
    assert_eq!(d.payload["organization"]["login"], "acme");
    assert_eq!(d.payload["pull_request"].get("draft"), None);

    // Anything else: the octokit capture.
    let template = "pull_request_review.submitted.json";
    for (state, spelled) in [
        (ReviewState::ChangesRequested, "changes_requested"),
        (ReviewState::Commented, "commented"),
    ] {
        let r = w
            .review(&repo(), pr.number, "bob", state, "Please rename it")
            .expect("review");
        let d = w.review_webhook(&repo(), &r).expect("delivery");
        assert_eq!(
            event(checked(&d, template)),
            expect("bob", state, Some("Please rename it"))
        );
        assert_eq!(d.payload["action"], "submitted");
        assert_eq!(d.payload["review"]["state"], spelled);
        assert_eq!(d.payload["installation"], fixture(template)["installation"]);
    }

    let r = w
        .review(&repo(), pr.number, "bob", ReviewState::Dismissed, "")
        .expect("review");
    let d = w.review_webhook(&repo(), &r).expect("delivery");
    assert_eq!(
        event(checked(&d, template)),
        expect("bob", ReviewState::Dismissed, None)
    );
    assert_eq!(d.payload["action"], "dismissed");
}

#[test]
fn push_deliveries_are_the_octokit_captures_with_the_worlds_facts() {
    let w = world();
    let old = w.branch(&repo(), "master").expect("master");
    w.push_branch(&repo(), "master", &fake_sha("p"))
        .expect("push");
    let d = w
        .push_webhook(&repo(), "master", Some(&old), "carol")
        .expect("delivery");
    assert_eq!(d.event, "push");
    let expected = Event::Push(greg_core::PushEvent {
        repo: repo(),
        branch: "master".to_owned(),
        head: fake_sha("p"),
        pusher: Some(Login::from("carol")),
    });
    assert_eq!(event(checked(&d, "push.json")), expected);
    // push.json is a tag deletion without commits: the commit objects take the shape of the
    // new-branch capture's head_commit.
    let commit_shape = &fixture("push.new-branch.json")["head_commit"];
    assert_shape(commit_shape, &d.payload["head_commit"], "head_commit");
    assert_shape(commit_shape, &d.payload["commits"][0], "commits/0");
    assert_eq!(d.payload["ref"], "refs/heads/master");
    assert_eq!(d.payload["before"], old.as_str());
    assert_eq!(d.payload["after"], fake_sha("p").as_str());
    assert_eq!(d.payload["head_commit"]["id"], fake_sha("p").as_str());
    assert_eq!(
        (&d.payload["created"], &d.payload["deleted"]),
        (&Value::Bool(false), &Value::Bool(false))
    );
    assert_eq!(d.payload["repository"]["full_name"], "acme/demo");
    assert_eq!(d.payload["repository"]["owner"]["name"], "acme");
    assert!(d.payload["repository"]["pushed_at"].is_u64());
    assert_eq!(d.payload["pusher"]["name"], "carol");
    assert_eq!(d.payload["sender"]["login"], "carol");

    w.push_branch(&repo(), "feature", &fake_sha("n"))
        .expect("new branch");
    let d = w
        .push_webhook(&repo(), "feature", None, "carol")
        .expect("delivery");
    let expected = Event::Push(greg_core::PushEvent {
        repo: repo(),
        branch: "feature".to_owned(),
        head: fake_sha("n"),
        pusher: Some(Login::from("carol")),
    });
    assert_eq!(event(checked(&d, "push.new-branch.json")), expected);
    assert_eq!(d.payload["created"], true);
    assert_eq!(d.payload["before"], "0".repeat(40));
    assert_eq!(
        d.payload["installation"],
        fixture("push.new-branch.json")["installation"]
    );
    assert!(matches!(
        w.push_webhook(&repo(), "nope", None, "carol"),
        Err(greg_testkit::WorldError::UnknownBranch(..))
    ));
}

#[test]
fn deliveries_are_signed_and_have_unique_ids() {
    let w = world();
    let pr = w
        .open_pr(&repo(), NewPr::new("carol", "fix", fake_sha("a")))
        .expect("open");
    let a = w
        .pull_request_webhook(&repo(), pr.number, "opened")
        .expect("a");
    let b = w
        .pull_request_webhook(&repo(), pr.number, "opened")
        .expect("b");
    assert_ne!(a.delivery_id, b.delivery_id);
    let signature = a
        .headers(Some(SECRET))
        .into_iter()
        .find(|(k, _)| k == "x-hub-signature-256")
        .map(|(_, v)| v);
    assert_eq!(signature, Some(greg_testkit::sign(SECRET, &a.body())));
    let wrong = Headers::new(a.headers(Some("other")));
    let secret = greg_core::Secret::new(SECRET);
    assert!(verify_signature(Some(&secret), &wrong, &a.body()).is_err());
    assert!(matches!(
        w.pull_request_webhook(&repo(), PrNumber(99), "opened"),
        Err(greg_testkit::WorldError::UnknownPr(..))
    ));
}
