//! Unit tests of signature checks and payload parsing on the vendor fixtures
//! (tests/data/bitbucket-cloud/, tests/data/bitbucket-server/) and on deliberately changed
//! variants of them. Every fixture's full result is snapshotted in tests/fixtures.rs.

use super::*;
use crate::event::{PendingEvent, UnresolvedEvent};
use greg_core::{Event, Login, PrNumber, PullRequestAction, RepoName, ReviewState, Sha};
use serde_json::{Value, json};

fn fixture(flavor: Flavor, name: &str) -> Vec<u8> {
    let dir = match flavor {
        Flavor::Cloud => "bitbucket-cloud",
        Flavor::Server => "bitbucket-server",
    };
    let path = format!(
        "{}/../../tests/data/{dir}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_json(flavor: Flavor, name: &str) -> Value {
    serde_json::from_slice(&fixture(flavor, name)).expect("fixture is JSON")
}

fn headers(pairs: &[(&str, &str)]) -> Headers {
    Headers::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

fn parse_as(flavor: Flavor, event: &str, body: &[u8]) -> Result<Parsed, WebhookError> {
    parse(flavor, &headers(&[("X-Event-Key", event)]), body)
}

fn cloud(event: &str, body: &Value) -> Result<Parsed, WebhookError> {
    parse_as(Flavor::Cloud, event, body.to_string().as_bytes())
}

fn server(event: &str, body: &Value) -> Result<Parsed, WebhookError> {
    parse_as(Flavor::Server, event, body.to_string().as_bytes())
}

fn malformed(result: Result<Parsed, WebhookError>) -> String {
    match result {
        Err(WebhookError::Malformed(reason)) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn events(result: Result<Parsed, WebhookError>) -> Vec<Event> {
    match result {
        Ok(Parsed::Events { events }) => events,
        other => panic!("expected events, got {other:?}"),
    }
}

fn unresolved(result: Result<Parsed, WebhookError>) -> UnresolvedEvent {
    match result {
        Ok(Parsed::Unresolved { event }) => *event,
        other => panic!("expected an unresolved event, got {other:?}"),
    }
}

fn ignored_reason(result: Result<Parsed, WebhookError>) -> String {
    match result {
        Ok(Parsed::Ignored { reason }) => reason,
        other => panic!("expected Ignored, got {other:?}"),
    }
}

fn sha(s: &str) -> Sha {
    Sha::parse(s).expect("sha")
}

// --- signatures -------------------------------------------------------------------------

/// Test vector of tests/data/SOURCES.md (jenkinsci/bitbucket-branch-source-plugin,
/// AbstractWebhookProcessorTest).
const VECTOR_SECRET: &str = "Gkvl$k$wyNpQAF42";
const VECTOR_SIGNATURE: &str =
    "sha256=f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035";

fn verify(secret: Option<&str>, signature: Option<&str>, body: &[u8]) -> Result<(), WebhookError> {
    let secret = secret.map(Secret::new);
    let pairs: Vec<(&str, &str)> = signature
        .map(|s| vec![("X-Hub-Signature", s)])
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
fn the_signed_cloud_fixture_verifies_with_its_secret() {
    let body = fixture(Flavor::Cloud, "repo_push.signed.json");
    assert_eq!(body.len(), 14515, "the vector must stay byte-exact");
    assert_eq!(
        verify(Some(VECTOR_SECRET), Some(VECTOR_SIGNATURE), &body),
        Ok(())
    );
    // Header names are case-insensitive, hex digits too.
    let upper = VECTOR_SIGNATURE
        .to_ascii_uppercase()
        .replace("SHA256=", "sha256=");
    let h = headers(&[("x-hub-signature", &upper)]);
    assert_eq!(
        verify_signature(Some(&Secret::new(VECTOR_SECRET)), &h, &body),
        Ok(())
    );
    // And the signed delivery parses: a created branch.
    let pushed = events(parse_as(Flavor::Cloud, "repo:push", &body));
    assert_eq!(pushed.len(), 1);
}

#[test]
fn one_changed_byte_or_secret_fails_the_signature() {
    let body = fixture(Flavor::Cloud, "repo_push.signed.json");
    let mut changed = body.clone();
    changed[100] ^= 1;
    let s = Some(VECTOR_SECRET);
    assert_eq!(
        unauthorized(verify(s, Some(VECTOR_SIGNATURE), &changed)),
        "X-Hub-Signature does not match the body"
    );
    assert_eq!(
        unauthorized(verify(
            Some("Gkvl$k$wyNpQAF43"),
            Some(VECTOR_SIGNATURE),
            &body
        )),
        "X-Hub-Signature does not match the body"
    );
    // A reformatted body (what a JSON round trip does) no longer matches: verification must
    // run on the raw bytes.
    let reformatted = serde_json::to_vec(&fixture_json(Flavor::Cloud, "repo_push.signed.json"))
        .expect("reserialize");
    assert!(verify(s, Some(VECTOR_SIGNATURE), &reformatted).is_err());
}

#[test]
fn signature_failures_are_unauthorized_with_a_reason() {
    let body = b"{}";
    let s = Some(VECTOR_SECRET);
    assert_eq!(
        unauthorized(verify(s, None, body)),
        "missing X-Hub-Signature header"
    );
    assert_eq!(
        unauthorized(verify(s, Some("sha1=0123456789abcdef"), body)),
        "X-Hub-Signature does not start with sha256="
    );
    assert_eq!(
        unauthorized(verify(s, Some("sha256=zz"), body)),
        "X-Hub-Signature is not a hex digest"
    );
    // A truncated or empty digest is a mismatch, not a panic.
    for short in ["sha256=f205c7", "sha256="] {
        assert_eq!(
            unauthorized(verify(s, Some(short), body)),
            "X-Hub-Signature does not match the body"
        );
    }
    // GitHub's header name is not Bitbucket's.
    let h = headers(&[("X-Hub-Signature-256", VECTOR_SIGNATURE)]);
    assert_eq!(
        unauthorized(verify_signature(
            Some(&Secret::new(VECTOR_SECRET)),
            &h,
            body
        )),
        "missing X-Hub-Signature header"
    );
}

#[test]
fn without_a_secret_nothing_is_checked_and_reasons_never_leak_it() {
    assert_eq!(verify(None, None, b"{}"), Ok(()));
    assert_eq!(verify(Some(""), Some("garbage"), b"{}"), Ok(()));
    for sig in [None, Some("sha256=00"), Some("nope")] {
        let reason = unauthorized(verify(Some(VECTOR_SECRET), sig, b"{}"));
        assert!(!reason.contains(VECTOR_SECRET), "{reason}");
    }
}

// --- headers ----------------------------------------------------------------------------

#[test]
fn delivery_ids_come_from_each_flavors_header() {
    let h = headers(&[
        ("x-request-uuid", " 3f1b7c3e-6a43-4d61-9e0f-1c0d5f0e6b3a "),
        ("X-Request-Id", "8a3e5f2c-server"),
        ("X-Hook-UUID", "{same-for-every-delivery}"),
    ]);
    assert_eq!(
        delivery_id(Flavor::Cloud, &h).as_deref(),
        Some("3f1b7c3e-6a43-4d61-9e0f-1c0d5f0e6b3a")
    );
    assert_eq!(
        delivery_id(Flavor::Server, &h).as_deref(),
        Some("8a3e5f2c-server")
    );
    let only_hook = headers(&[("X-Hook-UUID", "{x}"), ("X-Request-UUID", " ")]);
    assert_eq!(delivery_id(Flavor::Cloud, &only_hook), None);
    assert_eq!(delivery_id(Flavor::Server, &headers(&[])), None);
}

#[test]
fn cloud_needs_the_event_header_and_server_falls_back_to_the_body() {
    let body = fixture(Flavor::Cloud, "repo_push.json");
    assert_eq!(
        parse(Flavor::Cloud, &headers(&[]), &body),
        Err(WebhookError::MissingHeader(
            "missing X-Event-Key header".to_owned()
        ))
    );
    let body = fixture(Flavor::Server, "pr_opened.json");
    let by_body = parse(Flavor::Server, &headers(&[]), &body).expect("eventKey");
    let by_header = parse_as(Flavor::Server, "pr:opened", &body).expect("header");
    assert_eq!(by_body, by_header);
    // diagnostics:ping has no eventKey: the header is needed.
    let ping = fixture(Flavor::Server, "diagnostics_ping.json");
    assert_eq!(
        parse(Flavor::Server, &headers(&[]), &ping),
        Err(WebhookError::MissingHeader(
            "missing X-Event-Key header and eventKey field".to_owned()
        ))
    );
    assert_eq!(
        ignored_reason(parse_as(Flavor::Server, "diagnostics:ping", &ping)),
        "diagnostics:ping (test connection) events are not used"
    );
}

// --- anonymised fixtures with invalid hashes --------------------------------------------

#[test]
fn invalid_hashes_in_anonymised_server_fixtures_name_the_field() {
    let reason = malformed(parse_as(
        Flavor::Server,
        "pr:from_ref_updated",
        &fixture(Flavor::Server, "pr_from_ref_updated.bbpr.json"),
    ));
    assert!(
        reason.starts_with(
            "invalid pr:from_ref_updated payload at pullRequest.fromRef.latestCommit: not a full commit sha"
        ),
        "{reason}"
    );
    let reason = malformed(parse_as(
        Flavor::Server,
        "repo:refs_changed",
        &fixture(Flavor::Server, "repo_refs_changed.bbpr.json"),
    ));
    assert!(
        reason.starts_with(
            "invalid repo:refs_changed payload at changes[0].toHash: not a full commit sha"
        ),
        "{reason}"
    );
}

#[test]
fn the_anonymised_cloud_push_parses_because_the_old_tip_is_never_read() {
    // old.target.hash is not hex (SOURCES.md); greg reads only `new`.
    let pushed = events(parse_as(
        Flavor::Cloud,
        "repo:push",
        &fixture(Flavor::Cloud, "repo_push.bbpr.json"),
    ));
    assert_eq!(
        pushed,
        vec![Event::Push(greg_core::PushEvent {
            repo: RepoName::new("some-repository", "some-repo"),
            branch: "feature/do-not-merge".to_owned(),
            head: sha("09c4367c5bdbef7d7a28ba4cc2638488c2088d6b"),
            pusher: Some(Login::from("5c8b65f1bc87d7534c0734dc")),
        })]
    );
    // The same anonymisation in `new` is refused, naming the field.
    let mut body = fixture_json(Flavor::Cloud, "repo_push.bbpr.json");
    body["push"]["changes"][0]["new"]["target"]["hash"] =
        json!("hfjkhsdfahds7847384783fkf878374834834hhjh8");
    let reason = malformed(cloud("repo:push", &body));
    assert!(
        reason.starts_with(
            "invalid repo:push payload at push.changes[0].new.target.hash: not a full commit sha"
        ),
        "{reason}"
    );
}

// --- Cloud ------------------------------------------------------------------------------

#[test]
fn cloud_pull_request_events_carry_the_abbreviated_head_to_resolve() {
    let event = unresolved(parse_as(
        Flavor::Cloud,
        "pullrequest:created",
        &fixture(Flavor::Cloud, "pullrequest_created.cloudbees.json"),
    ));
    assert_eq!(event.repo, RepoName::new("amuniz", "test-repos"));
    assert_eq!(event.head.as_str(), "d31df3425c5b");
    assert_eq!(event.head_repo, event.repo);
    match &event.pending {
        PendingEvent::PullRequest {
            action,
            pull_request,
        } => {
            assert_eq!(*action, PullRequestAction::Opened);
            assert_eq!(pull_request.number, PrNumber(735));
            assert_eq!(pull_request.head_ref, "feature/test");
            assert_eq!(pull_request.base_ref, "master");
            assert_eq!(
                pull_request.author,
                Login::from("557058:ca1cd232-2017-4216-94be-99637899e18d")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_cloud_fork_is_looked_up_in_the_source_repository() {
    let event = unresolved(parse_as(
        Flavor::Cloud,
        "pullrequest:fulfilled",
        &fixture(Flavor::Cloud, "pullrequest_comment_created.atlantis.json"),
    ));
    assert_eq!(event.repo, RepoName::new("lkysow", "atlantis-example"));
    assert_eq!(
        event.head_repo,
        RepoName::new("lkysow-fork", "atlantis-example")
    );
}

#[test]
fn a_full_hash_in_a_cloud_pull_request_needs_no_lookup() {
    let mut body = fixture_json(Flavor::Cloud, "pullrequest_updated.cloudbees.json");
    let full = "f945c96c71d0aaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    body["pullrequest"]["source"]["commit"]["hash"] = json!(full);
    match events(cloud("pullrequest:updated", &body)).as_slice() {
        [Event::PullRequest(e)] => {
            assert_eq!(e.action, PullRequestAction::Synchronize);
            assert_eq!(e.pull_request.head_sha, sha(full));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cloud_approvals_name_the_approver_and_bind_to_the_head() {
    let event = unresolved(parse_as(
        Flavor::Cloud,
        "pullrequest:approved",
        &fixture(Flavor::Cloud, "pullrequest_approved.json"),
    ));
    assert_eq!(event.head.as_str(), "123db174babc");
    assert_eq!(
        event.pending,
        PendingEvent::Review {
            pr: PrNumber(198),
            reviewer: Login::from("3d5b55f1ac85d1235d0734ea"),
            state: ReviewState::Approved,
        }
    );
    // Withdrawn approvals carry the same `approval` object.
    let event = unresolved(parse_as(
        Flavor::Cloud,
        "pullrequest:unapproved",
        &fixture(Flavor::Cloud, "pullrequest_approved.json"),
    ));
    assert!(matches!(
        event.pending,
        PendingEvent::Review {
            state: ReviewState::Dismissed,
            ..
        }
    ));
    // Without `approval.user`, the actor gave it; without either, the payload is malformed.
    let mut body = fixture_json(Flavor::Cloud, "pullrequest_approved.json");
    body["approval"]["user"] = Value::Null;
    body["actor"]["account_id"] = json!("557058:actor");
    assert!(matches!(
        unresolved(cloud("pullrequest:approved", &body)).pending,
        PendingEvent::Review { reviewer, .. } if reviewer == Login::from("557058:actor")
    ));
    body["actor"] = Value::Null;
    assert_eq!(
        malformed(cloud("pullrequest:approved", &body)),
        "invalid pullrequest:approved payload at actor: missing or null (and approval.user names nobody)"
    );
}

#[test]
fn cloud_comments_are_ready_events() {
    match events(parse_as(
        Flavor::Cloud,
        "pullrequest:comment_created",
        &fixture(Flavor::Cloud, "pullrequest_comment_created.atlantis.json"),
    ))
    .as_slice()
    {
        [Event::Comment(c)] => {
            assert_eq!(c.pr, PrNumber(2));
            assert_eq!(c.comment_id.0, 70506195);
            assert_eq!(c.body, "my comment");
            assert_eq!(
                c.author,
                Login::from("557058:dc3817de-68b5-45cd-b81c-5c39d2560090")
            );
        }
        other => panic!("{other:?}"),
    }
    let mut body = fixture_json(Flavor::Cloud, "pullrequest_comment_created.json");
    body["comment"]["user"] = json!({"nickname": "someone"});
    assert_eq!(
        malformed(cloud("pullrequest:comment_created", &body)),
        "invalid pullrequest:comment_created payload at comment.user: neither account_id nor uuid is set"
    );
    body["comment"]["deleted"] = json!(true);
    assert_eq!(
        ignored_reason(cloud("pullrequest:comment_created", &body)),
        "the comment is already deleted"
    );
}

#[test]
fn cloud_pushes_give_one_event_per_branch_and_skip_tags_and_deletions() {
    let mut body = fixture_json(Flavor::Cloud, "repo_push.json");
    let branch = body["push"]["changes"][0].clone();
    let mut tag = branch.clone();
    tag["new"]["type"] = json!("tag");
    tag["new"]["name"] = json!("v1.0");
    let mut deleted = branch.clone();
    deleted["new"] = Value::Null;
    let mut other = branch.clone();
    other["new"]["name"] = json!("release/2");
    other["new"]["target"]["hash"] = json!("501bf5b99365d1d870882254b9360c17172bda0e");
    body["push"]["changes"] = json!([branch, tag, deleted, other]);
    let pushed = events(cloud("repo:push", &body));
    let branches: Vec<&str> = pushed
        .iter()
        .map(|e| match e {
            Event::Push(p) => p.branch.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(branches, ["main", "release/2"]);

    body["push"]["changes"] = json!([tag, deleted]);
    assert_eq!(
        ignored_reason(cloud("repo:push", &body)),
        "push without an updated branch (tags and deletions are not used)"
    );
}

#[test]
fn cloud_pull_request_states_are_strict() {
    let mut body = fixture_json(Flavor::Cloud, "pullrequest_created.json");
    body["pullrequest"]["state"] = json!("WHATEVER");
    let reason = malformed(cloud("pullrequest:created", &body));
    assert!(
        reason.starts_with(
            "invalid pullrequest:created payload at pullrequest.state: unknown variant"
        ),
        "{reason}"
    );
    let mut body = fixture_json(Flavor::Cloud, "pullrequest_created.json");
    body["pullrequest"]["source"]["commit"] = Value::Null;
    assert_eq!(
        malformed(cloud("pullrequest:created", &body)),
        "invalid pullrequest:created payload at pullrequest.source.commit: missing or null"
    );
}

// --- Server -----------------------------------------------------------------------------

#[test]
fn server_reviews_bind_to_the_head_of_the_payload() {
    match events(parse_as(
        Flavor::Server,
        "pr:reviewer:approved",
        &fixture(Flavor::Server, "pr_reviewer_approved.json"),
    ))
    .as_slice()
    {
        [Event::Review(r)] => {
            assert_eq!(r.repo, RepoName::new("ABC", "some-repo-slug"));
            assert_eq!(r.reviewer, Login::from("some-reviewer"));
            assert_eq!(r.state, ReviewState::Approved);
            assert_eq!(
                r.commit,
                Some(sha("1eb452ab914eafb25d22608cde3b055034175123"))
            );
        }
        other => panic!("{other:?}"),
    }
    let body = fixture(Flavor::Server, "pr_reviewer_approved.json");
    for (key, state) in [
        ("pr:reviewer:unapproved", ReviewState::Dismissed),
        ("pr:reviewer:needs_work", ReviewState::ChangesRequested),
    ] {
        assert!(
            matches!(events(parse_as(Flavor::Server, key, &body)).as_slice(),
                [Event::Review(r)] if r.state == state),
            "{key}"
        );
    }
}

#[test]
fn server_iso_dates_and_epoch_dates_parse_alike() {
    let iso = events(parse_as(
        Flavor::Server,
        "pr:opened",
        &fixture(Flavor::Server, "pr_opened.iso-dates.go-scm.json"),
    ));
    // The same delivery with epoch-millisecond dates gives the same event.
    let mut epoch = fixture_json(Flavor::Server, "pr_opened.iso-dates.go-scm.json");
    epoch["pullRequest"]["createdDate"] = json!(1530818490848u64);
    epoch["pullRequest"]["updatedDate"] = json!(1530818490848u64);
    assert_eq!(events(server("pr:opened", &epoch)), iso);
    // Even a garbled date is not a reason to refuse: greg does not read it.
    epoch["pullRequest"]["createdDate"] = json!("the fifth of July");
    epoch["date"] = json!(false);
    assert_eq!(events(server("pr:opened", &epoch)), iso);
}

#[test]
fn server_pushes_skip_deletions_and_tags() {
    assert_eq!(
        ignored_reason(parse_as(
            Flavor::Server,
            "repo:refs_changed",
            &fixture(Flavor::Server, "repo_refs_changed.signed.json"),
        )),
        "refs changed without an updated branch (tags and deletions are not used)"
    );
    let mut body = fixture_json(Flavor::Server, "repo_refs_changed.json");
    body["changes"][0]["refId"] = json!("refs/tags/v1.0");
    assert!(ignored_reason(server("repo:refs_changed", &body)).contains("tags"));
}

#[test]
fn server_retargeting_and_retitling_are_recognised_and_other_edits_are_ignored() {
    let mut body = fixture_json(Flavor::Server, "pr_opened.json");
    let title = body["pullRequest"]["title"].clone();
    body["previousTarget"] = json!({"id": "refs/heads/master", "displayId": "master"});
    body["previousTitle"] = title.clone();
    assert_eq!(
        ignored_reason(server("pr:modified", &body)),
        "pull request modified without a title or target branch change"
    );
    body["previousTitle"] = json!("An older title");
    match events(server("pr:modified", &body)).as_slice() {
        [Event::PullRequest(e)] => {
            assert_eq!(e.action, PullRequestAction::Edited);
            assert_eq!(Some(e.pull_request.title.as_str()), title.as_str());
        }
        other => panic!("{other:?}"),
    }
    body["previousTitle"] = title;
    body["previousTarget"] = json!({"id": "refs/heads/develop", "displayId": "develop"});
    assert!(matches!(
        events(server("pr:modified", &body)).as_slice(),
        [Event::PullRequest(e)] if e.action == PullRequestAction::Retargeted
    ));
}

#[test]
fn server_repository_names_are_project_and_slug() {
    match events(parse_as(
        Flavor::Server,
        "pr:comment:added",
        &fixture(Flavor::Server, "pr_comment_added.json"),
    ))
    .as_slice()
    {
        [Event::Comment(c)] => {
            assert_eq!(c.repo, RepoName::new("~username", "test-repo"));
        }
        other => panic!("{other:?}"),
    }
}

// --- malformed bodies -------------------------------------------------------------------

#[test]
fn every_truncation_of_a_fixture_is_an_error_not_a_panic() {
    for (flavor, event, name) in [
        (
            Flavor::Cloud,
            "pullrequest:created",
            "pullrequest_created.json",
        ),
        (
            Flavor::Cloud,
            "repo:push",
            "repo_push.forced-truncated.json",
        ),
        (
            Flavor::Cloud,
            "pullrequest:comment_created",
            "pullrequest_comment_created.json",
        ),
        (
            Flavor::Server,
            "pr:reviewer:approved",
            "pr_reviewer_approved.json",
        ),
        (
            Flavor::Server,
            "repo:refs_changed",
            "repo_refs_changed.v10.cloudbees.json",
        ),
        (Flavor::Server, "diagnostics:ping", "diagnostics_ping.json"),
    ] {
        let body = fixture(flavor, name);
        for cut in (0..body.len()).step_by(97) {
            let reason = malformed(parse_as(flavor, event, &body[..cut]));
            assert!(
                reason.contains("not valid JSON"),
                "{name} at {cut}: {reason}"
            );
        }
    }
}

#[test]
fn non_json_bodies_are_malformed_even_for_unused_events() {
    let form = b"payload=%7B%7D";
    for flavor in [Flavor::Cloud, Flavor::Server] {
        let reason = malformed(parse_as(flavor, "repo:fork", form));
        assert!(
            reason.starts_with("repo:fork payload is not valid JSON"),
            "{reason}"
        );
    }
    let reason = malformed(parse_as(Flavor::Server, "pr:opened", b"[]"));
    assert!(
        reason.starts_with("invalid pr:opened payload at (top level): "),
        "{reason}"
    );
}

#[test]
fn unknown_events_are_ignored_by_name() {
    let body = b"{}";
    assert_eq!(
        ignored_reason(parse_as(Flavor::Cloud, "repo:commit_status_updated", body)),
        "repo:commit_status_updated events are not used"
    );
    assert_eq!(
        ignored_reason(parse_as(Flavor::Server, "weird event\n", body)),
        "\"weird event\" events are not used"
    );
}
