//! Property tests of the config loader (`Config::from_yaml_str_with`): it returns `Ok` or
//! `Err` and never panics, on arbitrary text and on real configurations (tests/data/,
//! config.yaml.example) with bytes replaced, the text truncated, or lines deleted,
//! duplicated or given another value. The cargo-fuzz target `config` (fuzz/,
//! docs/fuzzing.md) checks the same property for longer.

use greg_config::{Config, ConfigError, Sources};
use proptest::prelude::*;
use proptest::sample::Index;
use std::path::Path;

/// The real configurations the properties mutate.
const FIXTURES: &[(&str, &str)] = &[
    ("full.yaml", include_str!("data/full.yaml")),
    (
        "greg_original.yaml",
        include_str!("data/greg_original.yaml"),
    ),
    (
        "config.yaml.example",
        include_str!("../../../config.yaml.example"),
    ),
];

/// Every variable is set (`APPROVALS` to a number) but those starting with `UNSET`; every
/// secret file reads as `file-secret`.
fn parse(text: &str) -> Result<Config, ConfigError> {
    let env = |name: &str| match name {
        n if n.starts_with("UNSET") => None,
        "APPROVALS" => Some("2".to_owned()),
        n => Some(format!("value-of-{n}")),
    };
    let file = |_: &Path| Ok("file-secret\n".to_owned());
    let sources = Sources {
        env: &env,
        file: &file,
        base_dir: Path::new("/etc/greg"),
    };
    let result = Config::from_yaml_str_with(text, sources);
    if let Err(e) = &result {
        let _ = e.to_string();
    }
    result
}

/// A YAML scalar or flow value to put after a key.
fn yaml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("~".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("&a x".to_owned()),
        Just("*a".to_owned()),
        Just("!!binary aGk=".to_owned()),
        Just("${UNSET_VAR}".to_owned()),
        Just("${file:secret}".to_owned()),
        Just("${".to_owned()),
        Just("$${X}".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        "[a-z*/?.-]{0,12}",
        "\"\\PC{0,12}\"",
        "\\PC{0,12}",
    ]
}

/// How a line of a configuration is changed.
#[derive(Debug, Clone)]
enum LineEdit {
    Delete,
    Duplicate,
    Value(String),
    Indent(usize),
}

fn line_edit() -> impl Strategy<Value = (Index, LineEdit)> {
    let edit = prop_oneof![
        Just(LineEdit::Delete),
        Just(LineEdit::Duplicate),
        yaml_value().prop_map(LineEdit::Value),
        (0usize..8).prop_map(LineEdit::Indent),
    ];
    (any::<Index>(), edit)
}

/// `text` with `edits` applied line by line (a value replaces what follows the first `:`).
fn edit_lines(text: &str, edits: &[(Index, LineEdit)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (at, edit) in edits {
        if lines.is_empty() {
            break;
        }
        let i = at.index(lines.len());
        match edit {
            LineEdit::Delete => {
                lines.remove(i);
            }
            LineEdit::Duplicate => lines.insert(i, lines[i].clone()),
            LineEdit::Value(value) => {
                if let Some((key, _)) = lines[i].split_once(':') {
                    lines[i] = format!("{key}: {value}");
                }
            }
            LineEdit::Indent(n) => {
                lines[i] = format!("{}{}", " ".repeat(*n), lines[i].trim_start())
            }
        }
    }
    lines.join("\n")
}

#[test]
fn the_unmutated_fixtures_parse() {
    // The properties below mutate these; they must be real, accepted configurations.
    for (name, text) in FIXTURES {
        if let Err(e) = parse(text) {
            panic!("{name} is refused: {e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_does_not_panic(text in "\\PC{0,300}|(.|\n){0,300}") {
        let _ = parse(&text);
    }

    #[test]
    fn mutated_fixture_bytes_do_not_panic(
        fixture in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>()), 0..8),
        keep in prop::option::of(any::<Index>()),
    ) {
        let (_, text) = fixture.get(FIXTURES);
        let mut bytes = text.as_bytes().to_vec();
        for (at, byte) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *byte;
        }
        if let Some(keep) = keep {
            bytes.truncate(keep.index(bytes.len()));
        }
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn fixture_with_lines_edited_does_not_panic(
        fixture in any::<Index>(),
        edits in prop::collection::vec(line_edit(), 1..6),
    ) {
        let (_, text) = fixture.get(FIXTURES);
        let _ = parse(&edit_lines(text, &edits));
    }
}
