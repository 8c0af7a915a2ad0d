//! Every Bitbucket webhook fixture in tests/data/bitbucket-cloud/ and
//! tests/data/bitbucket-server/ (captured deliveries, see tests/data/SOURCES.md) parses into
//! the expected kind of result, or is refused with a clear error, and matches its reviewed
//! snapshot of the normalized result or of the error.

use greg_bitbucket::{Flavor, Parsed, webhook};
use greg_core::Headers;
use std::path::PathBuf;

/// Cloud fixtures: `(file, X-Event-Key, expected)`. The expected kind is the event names
/// ([`greg_core::Event::name`]) joined by `,`, `unresolved <name>`, `ignored` or `error`. A
/// fixture added to the directory without a line here fails the test.
const CLOUD: &[(&str, &str, &str)] = &[
    (
        "pullrequest_approved.json",
        "pullrequest:approved",
        "unresolved review",
    ),
    (
        "pullrequest_comment_created.atlantis.json",
        "pullrequest:comment_created",
        "comment",
    ),
    (
        "pullrequest_comment_created.json",
        "pullrequest:comment_created",
        "comment",
    ),
    (
        "pullrequest_created.cloudbees.json",
        "pullrequest:created",
        "unresolved pull_request.opened",
    ),
    (
        "pullrequest_created.json",
        "pullrequest:created",
        "unresolved pull_request.opened",
    ),
    (
        "pullrequest_fulfilled.json",
        "pullrequest:fulfilled",
        "unresolved pull_request.merged",
    ),
    (
        "pullrequest_updated.cloudbees.json",
        "pullrequest:updated",
        "unresolved pull_request.synchronize",
    ),
    (
        "pullrequest_updated.json",
        "pullrequest:updated",
        "unresolved pull_request.synchronize",
    ),
    // Anonymised by hand: only `old.target.hash` is not hex, and greg never reads `old`.
    ("repo_push.bbpr.json", "repo:push", "push"),
    ("repo_push.branch-created.json", "repo:push", "push"),
    ("repo_push.forced-truncated.json", "repo:push", "push"),
    ("repo_push.json", "repo:push", "push"),
    ("repo_push.signed.json", "repo:push", "push"),
];

/// Server/Data Center fixtures, as [`CLOUD`].
const SERVER: &[(&str, &str, &str)] = &[
    ("diagnostics_ping.json", "diagnostics:ping", "ignored"),
    (
        "pr_comment_added.go-scm.json",
        "pr:comment:added",
        "comment",
    ),
    ("pr_comment_added.json", "pr:comment:added", "comment"),
    // Anonymised by hand: fromRef.latestCommit has 39 digits.
    (
        "pr_from_ref_updated.bbpr.json",
        "pr:from_ref_updated",
        "error",
    ),
    (
        "pr_from_ref_updated.json",
        "pr:from_ref_updated",
        "pull_request.synchronize",
    ),
    (
        "pr_opened.iso-dates.go-scm.json",
        "pr:opened",
        "pull_request.opened",
    ),
    ("pr_opened.json", "pr:opened", "pull_request.opened"),
    (
        "pr_reviewer_approved.go-scm.json",
        "pr:reviewer:approved",
        "review",
    ),
    (
        "pr_reviewer_approved.json",
        "pr:reviewer:approved",
        "review",
    ),
    // Anonymised by hand: changes[0].toHash has 41 digits.
    ("repo_refs_changed.bbpr.json", "repo:refs_changed", "error"),
    ("repo_refs_changed.json", "repo:refs_changed", "push"),
    // A branch deletion.
    (
        "repo_refs_changed.signed.json",
        "repo:refs_changed",
        "ignored",
    ),
    (
        "repo_refs_changed.v10.cloudbees.json",
        "repo:refs_changed",
        "push",
    ),
];

fn dir(flavor: Flavor) -> PathBuf {
    let name = match flavor {
        Flavor::Cloud => "bitbucket-cloud",
        Flavor::Server => "bitbucket-server",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

fn kind(result: &Result<Parsed, greg_core::WebhookError>) -> String {
    match result {
        Ok(Parsed::Events { events }) => events
            .iter()
            .map(greg_core::Event::name)
            .collect::<Vec<_>>()
            .join(","),
        Ok(Parsed::Unresolved { event }) => format!("unresolved {}", event.name()),
        Ok(Parsed::Ignored { .. }) => "ignored".to_owned(),
        Err(_) => "error".to_owned(),
    }
}

fn check(flavor: Flavor, table: &[(&str, &str, &str)]) {
    let mut on_disk: Vec<String> = std::fs::read_dir(dir(flavor))
        .expect("fixture directory")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = table.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(on_disk, listed, "fixtures on disk vs. the table ({flavor})");

    for (name, event_key, expected) in table {
        let body = std::fs::read(dir(flavor).join(name)).expect("fixture");
        if flavor == Flavor::Server {
            // The table's key is the one the payload names, when it names one.
            let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            if let Some(key) = value.get("eventKey").and_then(|k| k.as_str()) {
                assert_eq!(key, *event_key, "{name}");
            }
        }
        let headers = Headers::new([
            ("X-Event-Key".to_owned(), (*event_key).to_owned()),
            ("X-Request-UUID".to_owned(), "test".to_owned()),
        ]);
        let result = webhook::parse(flavor, &headers, &body);
        assert_eq!(&kind(&result), expected, "{name}: {result:?}");
        let snapshot = format!("{flavor}__{}", name.trim_end_matches(".json"));
        match result {
            Ok(parsed) => insta::assert_yaml_snapshot!(snapshot, parsed),
            Err(err) => insta::assert_snapshot!(snapshot, err.to_string()),
        }
    }
}

#[test]
fn every_cloud_fixture_parses_to_its_reviewed_snapshot() {
    check(Flavor::Cloud, CLOUD);
}

#[test]
fn every_server_fixture_parses_to_its_reviewed_snapshot() {
    check(Flavor::Server, SERVER);
}
