//! Every GitHub webhook fixture in tests/data/github/ (vendor-captured payloads, see
//! tests/data/SOURCES.md) parses, yields the expected kind of result, and matches its
//! reviewed snapshot of the normalized event.

use greg_core::{Headers, Inbound};
use greg_github::webhook::parse_event;
use std::path::PathBuf;

/// What each fixture must yield: an event name ([`greg_core::Event::name`]) or `ignored`.
/// A fixture added to the directory without a line here fails the test.
const EXPECTED: &[(&str, &str)] = &[
    ("check_run.completed.json", "ignored"),
    ("check_suite.completed.json", "ignored"),
    ("issue_comment.created.json", "ignored"),
    (
        "issue_comment.created.on-pull-request.go-scm.json",
        "comment",
    ),
    ("issue_comment.created.on-pull-request.json", "comment"),
    ("issue_comment.deleted.json", "ignored"),
    ("issue_comment.edited.json", "ignored"),
    ("ping.json", "ignored"),
    ("pull_request.closed.json", "pull_request.closed"),
    ("pull_request.closed.merged.json", "pull_request.merged"),
    (
        "pull_request.edited.base-changed.json",
        "pull_request.retargeted",
    ),
    ("pull_request.edited.json", "ignored"),
    ("pull_request.opened.json", "pull_request.opened"),
    ("pull_request.reopened.json", "pull_request.reopened"),
    ("pull_request.synchronize.json", "pull_request.synchronize"),
    ("pull_request_review.submitted.approved.json", "review"),
    ("pull_request_review.submitted.json", "review"),
    ("push.json", "ignored"),
    ("push.new-branch.json", "push"),
    ("status.json", "ignored"),
];

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/github")
}

/// The `X-GitHub-Event` of a fixture: its file name up to the first dot
/// (`<event>.<action>[.<variant>].json`).
fn event_of(file_name: &str) -> &str {
    file_name.split('.').next().unwrap_or(file_name)
}

#[test]
fn every_fixture_parses_to_its_reviewed_snapshot() {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("tests/data/github")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json") && name != "openapi-subset.json")
        .collect();
    names.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, listed, "fixtures on disk vs. the EXPECTED table");

    for (name, expected) in EXPECTED {
        let body = std::fs::read(fixture_dir().join(name)).expect("fixture");
        let headers = Headers::new([
            ("X-GitHub-Event".to_owned(), event_of(name).to_owned()),
            ("X-GitHub-Delivery".to_owned(), "test".to_owned()),
        ]);
        let inbound =
            parse_event(&headers, &body).unwrap_or_else(|e| panic!("{name} did not parse: {e}"));
        let kind = match &inbound {
            Inbound::Event(event) => event.name(),
            Inbound::Ignored(_) => "ignored".to_owned(),
            Inbound::Events(_) => "several".to_owned(),
        };
        assert_eq!(&kind, expected, "{name}");
        let snapshot = name.trim_end_matches(".json");
        insta::assert_yaml_snapshot!(snapshot, inbound);
    }
}
