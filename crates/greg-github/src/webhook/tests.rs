//! Unit tests of signature checks and payload parsing on the vendor fixtures
//! (tests/data/github/) and on deliberately broken variants of them.

use super::*;
use greg_core::{PullRequestState, RepoName};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/data/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
}

fn headers(pairs: &[(&str, &str)]) -> Headers {
    Headers::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

fn parse(event: &str, body: &[u8]) -> Result<Inbound, WebhookError> {
    parse_event(&headers(&[("X-GitHub-Event", event)]), body)
}

fn parse_value(event: &str, body: &Value) -> Result<Inbound, WebhookError> {
    parse(event, body.to_string().as_bytes())
}

fn malformed(result: Result<Inbound, WebhookError>) -> String {
    match result {
        Err(WebhookError::Malformed(reason)) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn ignored_reason(result: Result<Inbound, WebhookError>) -> String {
    match result {
        Ok(Inbound::Ignored(reason)) => reason,
        other => panic!("expected Ignored, got {other:?}"),
    }
}

fn event(result: Result<Inbound, WebhookError>) -> Event {
    match result {
        Ok(Inbound::Event(e)) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

// --- signatures -------------------------------------------------------------------------

/// Test vector from GitHub's "Validating webhook deliveries".
const DOCS_SECRET: &str = "It's a Secret to Everybody";
const DOCS_BODY: &[u8] = b"Hello, World!";
const DOCS_SIGNATURE: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn verify(secret: Option<&str>, signature: Option<&str>, body: &[u8]) -> Result<(), WebhookError> {
    let secret = secret.map(Secret::new);
    let pairs: Vec<(&str, &str)> = signature
        .map(|s| vec![("X-Hub-Signature-256", s)])
        .unwrap_or_default();
    verify_signature(secret.as_ref(), &headers(&pairs), body)
}

fn unauthorized(result: Result<(), WebhookError>) -> String {
    match result {
        Err(WebhookError::Unauthorized(reason)) => reason,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[test]
fn github_docs_signature_vector_verifies() {
    assert_eq!(
        verify(Some(DOCS_SECRET), Some(DOCS_SIGNATURE), DOCS_BODY),
        Ok(())
    );
    // Header names are case-insensitive, hex digits too.
    let upper = DOCS_SIGNATURE
        .to_ascii_uppercase()
        .replace("SHA256=", "sha256=");
    let h = headers(&[("x-hub-signature-256", &upper)]);
    assert_eq!(
        verify_signature(Some(&Secret::new(DOCS_SECRET)), &h, DOCS_BODY),
        Ok(())
    );
}

#[test]
fn signature_failures_are_unauthorized_with_a_reason() {
    let s = Some(DOCS_SECRET);
    assert_eq!(
        unauthorized(verify(s, None, DOCS_BODY)),
        "missing X-Hub-Signature-256 header"
    );
    let sha1 = "sha1=757107ea0eb2509fc211221cce984b8a37570b6d";
    assert_eq!(
        unauthorized(verify(s, Some(sha1), DOCS_BODY)),
        "X-Hub-Signature-256 does not start with sha256="
    );
    assert_eq!(
        unauthorized(verify(s, Some("sha256=zz"), DOCS_BODY)),
        "X-Hub-Signature-256 is not a hex digest"
    );
    assert_eq!(
        unauthorized(verify(s, Some(DOCS_SIGNATURE), b"Hello, World?")),
        "X-Hub-Signature-256 does not match the body"
    );
    assert_eq!(
        unauthorized(verify(
            Some("another secret"),
            Some(DOCS_SIGNATURE),
            DOCS_BODY
        )),
        "X-Hub-Signature-256 does not match the body"
    );
    // A truncated digest is a mismatch, not a panic.
    assert_eq!(
        unauthorized(verify(s, Some("sha256=757107"), DOCS_BODY)),
        "X-Hub-Signature-256 does not match the body"
    );
    assert_eq!(
        unauthorized(verify(s, Some("sha256="), DOCS_BODY)),
        "X-Hub-Signature-256 does not match the body"
    );
}

#[test]
fn without_a_secret_nothing_is_checked() {
    assert_eq!(verify(None, None, DOCS_BODY), Ok(()));
    assert_eq!(verify(Some(""), Some("garbage"), DOCS_BODY), Ok(()));
}

#[test]
fn signature_reasons_never_contain_the_secret() {
    for sig in [None, Some("sha256=00"), Some("nope")] {
        let reason = unauthorized(verify(Some(DOCS_SECRET), sig, DOCS_BODY));
        assert!(!reason.contains(DOCS_SECRET), "{reason}");
    }
}

// --- headers ----------------------------------------------------------------------------

#[test]
fn delivery_id_comes_from_x_github_delivery() {
    let h = headers(&[(
        "x-github-delivery",
        " 72d3162e-cc78-11e3-81ab-4c9367dc0958 ",
    )]);
    assert_eq!(
        delivery_id(&h).as_deref(),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    assert_eq!(delivery_id(&headers(&[("X-GitHub-Delivery", "")])), None);
    assert_eq!(delivery_id(&headers(&[])), None);
}

#[test]
fn missing_event_header_is_reported() {
    let result = parse_event(&headers(&[]), &fixture("ping.json"));
    assert_eq!(
        result,
        Err(WebhookError::MissingHeader(
            "missing X-GitHub-Event header".to_owned()
        ))
    );
}

// --- malformed bodies -------------------------------------------------------------------

#[test]
fn truncated_json_is_malformed_for_every_event() {
    let body = fixture("pull_request.opened.json");
    let half = &body[..body.len() / 2];
    for event in [
        "pull_request",
        "push",
        "issue_comment",
        "pull_request_review",
        "ping",
    ] {
        let reason = malformed(parse(event, half));
        assert!(reason.contains("is not valid JSON"), "{event}: {reason}");
        assert!(reason.contains("line"), "{event}: {reason}");
    }
}

#[test]
fn every_truncation_of_a_fixture_is_an_error_not_a_panic() {
    for (event, name) in [
        ("pull_request", "pull_request.synchronize.json"),
        (
            "issue_comment",
            "issue_comment.created.on-pull-request.json",
        ),
        ("push", "push.new-branch.json"),
    ] {
        let body = fixture(name);
        for cut in (0..body.len() - 1).step_by(37) {
            assert!(
                matches!(parse(event, &body[..cut]), Err(WebhookError::Malformed(_))),
                "{name} cut at {cut}"
            );
        }
    }
}

#[test]
fn trailing_garbage_is_malformed() {
    let mut body = fixture("push.new-branch.json");
    body.extend_from_slice(b"\n{}");
    assert!(malformed(parse("push", &body)).contains("trailing characters"));
}

#[test]
fn wrong_types_name_the_json_path() {
    let mut v = fixture_json("pull_request.opened.json");
    v["pull_request"]["number"] = json!("2");
    let reason = malformed(parse_value("pull_request", &v));
    assert!(
        reason.starts_with("invalid pull_request payload at pull_request.number: invalid type"),
        "{reason}"
    );

    let mut v = fixture_json("issue_comment.created.on-pull-request.json");
    v["comment"]["user"] = json!(42);
    let reason = malformed(parse_value("issue_comment", &v));
    assert!(reason.contains("at comment.user:"), "{reason}");
}

#[test]
fn a_missing_repository_is_malformed() {
    for (event, name) in [
        ("pull_request", "pull_request.opened.json"),
        ("push", "push.new-branch.json"),
        (
            "issue_comment",
            "issue_comment.created.on-pull-request.json",
        ),
        ("pull_request_review", "pull_request_review.submitted.json"),
    ] {
        let mut v = fixture_json(name);
        v.as_object_mut().expect("object").remove("repository");
        let reason = malformed(parse_value(event, &v));
        assert!(
            reason.contains("(top level): missing field `repository`"),
            "{name}: {reason}"
        );
    }
}

#[test]
fn a_bad_repository_name_is_malformed() {
    let mut v = fixture_json("push.new-branch.json");
    v["repository"]["full_name"] = json!("no-slash");
    let reason = malformed(parse_value("push", &v));
    assert!(
        reason.contains("at repository.full_name: not an owner/name repository name"),
        "{reason}"
    );
}

#[test]
fn a_short_sha_is_malformed_naming_the_field() {
    let mut v = fixture_json("pull_request.synchronize.json");
    v["pull_request"]["head"]["sha"] = json!("ec26c3e");
    let reason = malformed(parse_value("pull_request", &v));
    assert!(
        reason.contains("at pull_request.head.sha: not a full commit sha"),
        "{reason}"
    );

    let mut v = fixture_json("push.new-branch.json");
    v["after"] = json!("not-a-sha-at-all-but-forty-characters-xx");
    assert!(malformed(parse_value("push", &v)).contains("at after:"));

    let mut v = fixture_json("pull_request_review.submitted.approved.json");
    v["review"]["commit_id"] = json!("90680e3");
    assert!(malformed(parse_value("pull_request_review", &v)).contains("at review.commit_id:"));
}

#[test]
fn ignored_events_still_need_a_json_body() {
    assert!(malformed(parse("ping", b"zen=Keep it logically awesome")).contains("not valid JSON"));
    assert_eq!(
        ignored_reason(parse("ping", &fixture("ping.json"))),
        "ping events are not used"
    );
    // Sender-controlled event names are quoted and cut in reasons.
    let odd = format!("evil\nname{}", "x".repeat(100));
    let reason = ignored_reason(parse(&odd, b"{}"));
    assert!(!reason.contains('\n') && reason.len() < 100, "{reason}");
}

// --- mapping details the fixtures do not cover -------------------------------------------

#[test]
fn push_of_a_tag_or_deletion_is_ignored() {
    assert_eq!(
        ignored_reason(parse("push", &fixture("push.json"))),
        "push to refs/tags/simple-tag is not a branch push"
    );
    let mut v = fixture_json("push.new-branch.json");
    v["deleted"] = json!(true);
    v["after"] = json!("0000000000000000000000000000000000000000");
    assert_eq!(
        ignored_reason(parse_value("push", &v)),
        "branch deletions are not used"
    );
}

#[test]
fn push_branch_keeps_slashes_after_refs_heads() {
    let mut v = fixture_json("push.new-branch.json");
    v["ref"] = json!("refs/heads/feature/login");
    match event(parse_value("push", &v)) {
        Event::Push(p) => {
            assert_eq!(p.branch, "feature/login");
            assert_eq!(p.repo, RepoName::new("Codertocat", "Hello-World"));
            assert_eq!(p.pusher, Some(Login::from("Codertocat")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pull_request_from_a_deleted_fork_has_no_head_repo() {
    let mut v = fixture_json("pull_request.synchronize.json");
    v["pull_request"]["head"]["repo"] = Value::Null;
    v["pull_request"]
        .as_object_mut()
        .expect("pr")
        .remove("draft");
    match event(parse_value("pull_request", &v)) {
        Event::PullRequest(e) => {
            assert_eq!(e.pull_request.head_repo, None);
            assert!(!e.pull_request.draft);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ready_for_review_and_other_actions() {
    let mut v = fixture_json("pull_request.opened.json");
    v["action"] = json!("ready_for_review");
    match event(parse_value("pull_request", &v)) {
        Event::PullRequest(e) => assert_eq!(e.action, PullRequestAction::ReadyForReview),
        other => panic!("{other:?}"),
    }
    v["action"] = json!("converted_to_draft");
    match event(parse_value("pull_request", &v)) {
        Event::PullRequest(e) => assert_eq!(e.action, PullRequestAction::ConvertedToDraft),
        other => panic!("{other:?}"),
    }
    v["action"] = json!("labeled");
    assert_eq!(
        ignored_reason(parse_value("pull_request", &v)),
        "pull_request action labeled is not used"
    );
    v["state"] = json!("closed");
    v["pull_request"]["state"] = json!("weird");
    assert!(malformed(parse_value("pull_request", &v)).contains("at pull_request.state:"));
}

#[test]
fn an_edited_title_is_an_edit_and_a_body_edit_is_ignored() {
    // The real capture edits the body only.
    let mut v = fixture_json("pull_request.edited.json");
    assert_eq!(
        ignored_reason(parse_value("pull_request", &v)),
        "pull request edited without a title or target branch change"
    );
    // GitHub's `changes.title.from` of a title edit.
    v["changes"] = json!({ "title": { "from": "Update .drone.yml (draft)" } });
    match event(parse_value("pull_request", &v)) {
        Event::PullRequest(e) => {
            assert_eq!(e.action, PullRequestAction::Edited);
            assert_eq!(e.pull_request.title, "Update .drone.yml");
            assert_eq!(e.pull_request.author.as_str(), "bradrydzewski");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn closed_and_merged_is_state_merged() {
    match event(parse(
        "pull_request",
        &fixture("pull_request.closed.merged.json"),
    )) {
        Event::PullRequest(e) => {
            assert_eq!(e.action, PullRequestAction::Closed { merged: true });
            assert_eq!(e.pull_request.state, PullRequestState::Merged);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn review_states_are_case_insensitive_and_dismissal_is_a_state() {
    let mut v = fixture_json("pull_request_review.submitted.json");
    for (raw, state) in [
        ("APPROVED", ReviewState::Approved),
        ("changes_requested", ReviewState::ChangesRequested),
        ("Commented", ReviewState::Commented),
    ] {
        v["review"]["state"] = json!(raw);
        match event(parse_value("pull_request_review", &v)) {
            Event::Review(r) => assert_eq!(r.state, state, "{raw}"),
            other => panic!("{other:?}"),
        }
    }
    v["action"] = json!("dismissed");
    v["review"]["state"] = json!("dismissed");
    match event(parse_value("pull_request_review", &v)) {
        Event::Review(r) => assert_eq!(r.state, ReviewState::Dismissed),
        other => panic!("{other:?}"),
    }
    v["action"] = json!("edited");
    assert_eq!(
        ignored_reason(parse_value("pull_request_review", &v)),
        "pull_request_review action edited is not used"
    );
    v["action"] = json!("submitted");
    v["review"]["state"] = json!("pending");
    assert_eq!(
        ignored_reason(parse_value("pull_request_review", &v)),
        "pending reviews are not used"
    );
    v["review"]["state"] = json!("superb");
    assert!(malformed(parse_value("pull_request_review", &v)).contains("at review.state:"));
}
