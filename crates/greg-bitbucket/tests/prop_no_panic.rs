//! Property tests of the Bitbucket webhook parser (`greg_bitbucket::webhook::parse`, Cloud
//! and Server): it returns `Ok` or `Err` and never panics, on arbitrary bodies and event
//! names, and on real payloads (tests/data/bitbucket-cloud/, tests/data/bitbucket-server/)
//! with bytes replaced, the body truncated, or one JSON value swapped for a value of any
//! type. The cargo-fuzz targets `bitbucket_cloud_webhook` and `bitbucket_server_webhook`
//! (fuzz/, docs/fuzzing.md) check the same property for longer.

use greg_bitbucket::{Flavor, webhook};
use greg_core::Headers;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Number, Value};
use std::path::PathBuf;
use std::sync::LazyLock;

/// Fixtures refused on purpose (see tests/fixtures.rs): hand-anonymised shas of 39 digits.
const REFUSED: &[&str] = &[
    "pr_from_ref_updated.bbpr.json",
    "repo_refs_changed.bbpr.json",
];

/// Event names the parser knows, plus one it does not.
const EVENTS: &[&str] = &[
    "repo:push",
    "pullrequest:created",
    "pullrequest:updated",
    "pullrequest:fulfilled",
    "pullrequest:rejected",
    "pullrequest:approved",
    "pullrequest:unapproved",
    "pullrequest:changes_request_created",
    "pullrequest:comment_created",
    "repo:refs_changed",
    "pr:opened",
    "pr:from_ref_updated",
    "pr:merged",
    "pr:declined",
    "pr:deleted",
    "pr:modified",
    "pr:reviewer:approved",
    "pr:reviewer:unapproved",
    "pr:reviewer:needs_work",
    "pr:comment:added",
    "diagnostics:ping",
    "no:such:event",
];

/// `(file name, event name, body)` of every fixture, the event named by the file name.
static FIXTURES: LazyLock<Vec<(String, &'static str, Vec<u8>)>> = LazyLock::new(|| {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let mut fixtures = Vec::new();
    for dir in ["bitbucket-cloud", "bitbucket-server"] {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("fixture directory")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            if false {
                continue;
            }
            let stem = name.split('.').next().unwrap_or_default().to_owned();
            let event: &'static str = event_of(&stem);
            let body = std::fs::read(&path).expect("fixture");
            fixtures.push((name, event, body));
        }
    }
    fixtures
});

/// The `X-Event-Key` a fixture was delivered with: `repo_push` → `repo:push`,
/// `pr_from_ref_updated` → `pr:from_ref_updated`, ...
fn event_of(stem: &str) -> &'static str {
    EVENTS
        .iter()
        .find(|e| {
            let (first, rest) = e.split_once(':').unwrap_or((e, ""));
            stem == format!("{first}_{}", rest.replace(':', "_"))
        })
        .copied()
        .unwrap_or_else(|| panic!("no event for fixture {stem}"))
}

/// The flavor of an event name: Server's start with `pr:`, `repo:refs_changed` or
/// `diagnostics:`; anything else is tried on both.
fn flavors(event: &str) -> &'static [Flavor] {
    if event.starts_with("pr:") || event == "repo:refs_changed" || event.starts_with("diagnostics:")
    {
        &[Flavor::Server]
    } else if event.starts_with("pullrequest:") || event == "repo:push" {
        &[Flavor::Cloud]
    } else {
        &[Flavor::Cloud, Flavor::Server]
    }
}

/// Parses `body` delivered with `event` as its `X-Event-Key` (none: no header) by the
/// flavor(s) the event belongs to; the first refusal, if any.
fn parse(event: Option<&str>, body: &[u8]) -> Result<(), String> {
    let headers = Headers::new(event.map(|e| (webhook::EVENT_HEADER.to_owned(), e.to_owned())));
    let all: &[Flavor] = &[Flavor::Cloud, Flavor::Server];
    for flavor in event.map_or(all, flavors) {
        webhook::parse(*flavor, &headers, body).map_err(|e| e.to_string())?;
        let _ = webhook::delivery_id(*flavor, &headers);
    }
    Ok(())
}

/// Arbitrary JSON scalars and empty containers, the values swapped into a real payload.
fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,16}".prop_map(Value::String),
        "[0-9a-fA-F]{0,45}".prop_map(Value::String),
        Just(Value::Array(Vec::new())),
        Just(Value::Object(serde_json::Map::new())),
    ]
}

/// Number of nodes of `value`, itself included.
fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Replaces the `at`-th node of `value` in pre-order with `with`; `true` once replaced.
fn replace_node(value: &mut Value, at: &mut usize, with: &Value) -> bool {
    if *at == 0 {
        *value = with.clone();
        return true;
    }
    *at -= 1;
    match value {
        Value::Array(items) => items.iter_mut().any(|v| replace_node(v, at, with)),
        Value::Object(map) => map.values_mut().any(|v| replace_node(v, at, with)),
        _ => false,
    }
}

/// `body` with the bytes at `edits` replaced, then cut to `keep` of its length (if any).
fn mutate_bytes(body: &[u8], edits: &[(Index, u8)], keep: Option<Index>) -> Vec<u8> {
    let mut body = body.to_vec();
    if body.is_empty() {
        return body;
    }
    for (at, byte) in edits {
        let i = at.index(body.len());
        body[i] = *byte;
    }
    if let Some(keep) = keep {
        body.truncate(keep.index(body.len()));
    }
    body
}

/// `body` (JSON) with its `at`-th node replaced by `with`, serialized again.
fn mutate_json(body: &[u8], at: Index, with: &Value) -> Vec<u8> {
    let mut tree: Value = serde_json::from_slice(body).expect("fixture is JSON");
    let mut at = at.index(count_nodes(&tree));
    assert!(replace_node(&mut tree, &mut at, with), "node in range");
    serde_json::to_vec(&tree).expect("serializes")
}

#[test]
fn the_unmutated_fixtures_parse() {
    // The properties below mutate these; they must be real, accepted payloads.
    assert!(FIXTURES.len() >= 2, "fixtures found: {}", FIXTURES.len());
    for (name, event, body) in FIXTURES
        .iter()
        .filter(|(n, _, _)| !REFUSED.contains(&n.as_str()))
    {
        assert!(
            parse(Some(event), body).is_ok(),
            "{name} ({event}) is refused"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_do_not_panic(
        event in prop::option::of(prop::sample::select(EVENTS)),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = parse(event, &body);
    }

    #[test]
    fn mutated_fixture_bytes_do_not_panic(
        fixture in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>()), 0..8),
        keep in prop::option::of(any::<Index>()),
    ) {
        let (_, event, body) = fixture.get(&FIXTURES);
        let _ = parse(Some(event), &mutate_bytes(body, &edits, keep));
    }

    #[test]
    fn fixture_with_a_value_swapped_does_not_panic(
        fixture in any::<Index>(),
        at in any::<Index>(),
        with in json_value(),
        other_event in prop::option::of(prop::sample::select(EVENTS)),
    ) {
        let (_, event, body) = fixture.get(&FIXTURES);
        let _ = parse(Some(other_event.unwrap_or(event)), &mutate_json(body, at, &with));
    }
}
