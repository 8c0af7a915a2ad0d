//! Property tests of the Jenkins Notification-plugin parser
//! (`greg_jenkins::parse_notification`): it returns `Ok` or `Err` and never panics, on
//! arbitrary bodies, and on real payloads (tests/data/jenkins/notification/ and a greg build's
//! callback) with bytes replaced, the body truncated, or one JSON value swapped for a value of
//! any type. The cargo-fuzz target `jenkins_notification` (fuzz/, docs/fuzzing.md) checks
//! the same property for longer.

use greg_jenkins::parse_notification;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Number, Value};
use std::sync::LazyLock;

/// A callback of notification-plugin 1.17+ for a build greg started (its parameters).
const GREG_BUILD: &str = r#"{
  "name": "demo-test",
  "url": "job/demo-test/",
  "build": {
    "full_url": "https://ci.example.com/job/demo-test/12/",
    "number": 12,
    "queue_id": 143,
    "timestamp": 1524074837590,
    "duration": 1000,
    "phase": "COMPLETED",
    "status": "FAILURE",
    "url": "job/demo-test/12/",
    "scm": {"url": "git@github.com:acme/demo.git", "branch": "origin/feature", "commit": "c6d86dc654b12425e706bcf951adfe5a8627a517"},
    "parameters": {"SOURCE": "git@github.com:acme/demo.git", "COMMIT": "c6d86dc654b12425e706bcf951adfe5a8627a517", "CONTEXT": "test", "REPORT": "true", "BRANCH": "feature"},
    "log": "",
    "artifacts": {}
  }
}"#;

/// `(name, body)` of the payloads the properties mutate.
static FIXTURES: LazyLock<Vec<(&'static str, Vec<u8>)>> = LazyLock::new(|| {
    let wiki = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/jenkins/notification/wiki-example.completed.json"
    );
    vec![
        (
            "wiki-example.completed.json",
            std::fs::read(wiki).expect("fixture"),
        ),
        ("greg build", GREG_BUILD.as_bytes().to_vec()),
    ]
});

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
    for (name, body) in FIXTURES.iter() {
        assert!(parse_notification(body).is_ok(), "{name} is refused");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_do_not_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_notification(&body);
    }

    #[test]
    fn mutated_fixture_bytes_do_not_panic(
        fixture in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>()), 0..8),
        keep in prop::option::of(any::<Index>()),
    ) {
        let (_, body) = fixture.get(&FIXTURES);
        let _ = parse_notification(&mutate_bytes(body, &edits, keep));
    }

    #[test]
    fn fixture_with_a_value_swapped_does_not_panic(
        fixture in any::<Index>(),
        at in any::<Index>(),
        with in json_value(),
    ) {
        let (_, body) = fixture.get(&FIXTURES);
        if let Err(e) = parse_notification(&mutate_json(body, at, &with)) {
            // A refusal is one line (it becomes the HTTP answer).
            prop_assert!(!e.to_string().contains('\n'), "multi-line refusal: {e}");
        }
    }
}
