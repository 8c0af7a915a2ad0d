//! [`ConfigError`]: one message naming the file, the line and the key, built from
//! yaml_serde's errors (which carry a location and a key path) and greg's own checks.
//!
//! serde's messages are reworded into greg's ("unknown field `x`, expected one of `a`, `b`"
//! becomes "unknown key `x` in server (expected one of: a, b)") and stripped of the values
//! they quote ("invalid type: string \"hunter2\", expected u32" becomes "expected a whole
//! number, found a string"), so a secret typed into the wrong place is never echoed.

use regex::Regex;
use std::fmt;
use std::sync::LazyLock;

/// The file name errors carry when the text did not come from a file.
pub const DEFAULT_FILE_NAME: &str = "config.yaml";

/// What kind of problem a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file, or a `${file:PATH}` it references, could not be read.
    Io,
    /// Not well-formed YAML (bad indentation, unclosed quote, several documents).
    Syntax,
    /// A key greg does not know (a typo, or a key at the wrong level).
    UnknownKey,
    /// A required key is absent (or the file is empty).
    MissingKey,
    /// The same key twice in one mapping.
    DuplicateKey,
    /// `${NAME}` names an environment variable that is not set.
    UnsetVariable,
    /// A value of the wrong type or out of range, a bad URL, regex, reference, ...
    InvalidValue,
}

/// Why config.yaml was rejected.
///
/// `Display` is one line: `config.yaml line 12: unknown key `listne` in server (expected
/// one of: listen, public_url, ...)`, or without ` line N` when the location is unknown.
/// It never contains a secret or an expanded `${ENV}` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The kind of problem.
    pub kind: ConfigErrorKind,
    /// The file, as given to [`Config::load`](crate::Config::load), or
    /// [`DEFAULT_FILE_NAME`].
    pub file: String,
    /// 1-based line of the offending key or value, when known. For a missing or duplicate
    /// key and for whole-section checks, the line of the section's first key.
    pub line: Option<usize>,
    /// The dotted key path, like `repos[0].jobs.test.builder` or `server.listne`.
    pub key: Option<String>,
    /// What is wrong, without the file and line prefix.
    pub message: String,
}

impl ConfigError {
    /// The same error reported against `file` (a path, for messages).
    pub fn with_file(mut self, file: impl Into<String>) -> Self {
        self.file = file.into();
        self
    }

    /// The file could not be read.
    pub(crate) fn io(file: String, err: &std::io::Error) -> Self {
        ConfigError {
            kind: ConfigErrorKind::Io,
            file,
            line: None,
            key: None,
            message: format!("cannot read the file: {err}"),
        }
    }

    /// The document is empty (or only comments).
    pub(crate) fn empty() -> Self {
        ConfigError {
            kind: ConfigErrorKind::MissingKey,
            file: DEFAULT_FILE_NAME.to_owned(),
            line: None,
            key: Some("providers".to_owned()),
            message: "the file is empty (it needs at least a `providers` section)".to_owned(),
        }
    }

    /// Rewords a yaml_serde error (see the module docs).
    pub(crate) fn from_yaml(err: &yaml_serde::Error) -> Self {
        let line = err.location().map(|l| l.line());
        let text = err.to_string();
        // libyaml: "problem at line L column C, while scanning X at line L2 column C2".
        let text = CONTEXT.replace_all(&text, ", $1 that starts at line $2");
        let text = LOCATION.replace_all(&text, "").into_owned();
        let (path, msg) = match PATH.captures(&text) {
            Some(c) => (Some(c[1].to_owned()), c[2].to_owned()),
            None => (None, text.clone()),
        };
        let (kind, key, message) = classify(path.as_deref(), &msg);
        ConfigError {
            kind,
            file: DEFAULT_FILE_NAME.to_owned(),
            line,
            key,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Compiles a pattern written in this file.
fn re(pattern: &str) -> Regex {
    // The patterns are constants of this module, compiled by its tests.
    Regex::new(pattern).expect("valid built-in pattern")
}

/// yaml_serde's ` at line L column C` suffixes.
static LOCATION: LazyLock<Regex> = LazyLock::new(|| re(r" at line \d+ column \d+"));
/// libyaml's context clause and its location.
static CONTEXT: LazyLock<Regex> =
    LazyLock::new(|| re(r", (while [^,]*?) at line (\d+) column \d+"));
/// `path: message`, path as yaml_serde prints it (`repos[0].jobs.test`).
static PATH: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?s)^([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\]|\.[A-Za-z_][A-Za-z0-9_]*)*): (.*)$")
});
static UNKNOWN_FIELD: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?s)^unknown field `([^`]*)`, (?:expected (.*)|there are no fields)$"));
static MISSING_FIELD: LazyLock<Regex> = LazyLock::new(|| re(r"^missing field `([^`]*)`$"));
static DUPLICATE_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    re(r#"^(?:duplicate field `([^`]*)`|duplicate entry with key "((?:[^"\\]|\\.)*)")$"#)
});
static UNSET: LazyLock<Regex> = LazyLock::new(|| re(r"^environment variable `[^`]*` is not set$"));
static SECRET_FILE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?s)^cannot read the secret file `.*`: .*$"));
static INVALID: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"(?s)^invalid (?:type|value): ",
        r#"(string "(?:[^"\\]|\\.)*"|[A-Za-z ]+(?: `[^`]*`)?)"#,
        r", expected (.*)$"
    ))
});
static BACKTICKED: LazyLock<Regex> = LazyLock::new(|| re(r"`([^`]*)`"));
static STRUCT: LazyLock<Regex> = LazyLock::new(|| re(r"^struct \w+$"));

/// Kind, key path and message for one yaml_serde message at `path`.
fn classify(path: Option<&str>, msg: &str) -> (ConfigErrorKind, Option<String>, String) {
    let child = |field: &str| match path {
        Some(p) => format!("{p}.{field}"),
        None => field.to_owned(),
    };
    let place = match path {
        Some(p) => format!("in {p}"),
        None => "at the top level".to_owned(),
    };
    if let Some(c) = UNKNOWN_FIELD.captures(msg) {
        let field = &c[1];
        let expected: Vec<&str> = c.get(2).map_or_else(Vec::new, |m| {
            BACKTICKED
                .captures_iter(m.as_str())
                .filter_map(|k| k.get(1).map(|k| k.as_str()))
                .collect()
        });
        let hint = match expected.as_slice() {
            [] => "it takes no keys".to_owned(),
            [one] => format!("expected: {one}"),
            many => format!("expected one of: {}", many.join(", ")),
        };
        return (
            ConfigErrorKind::UnknownKey,
            Some(child(field)),
            format!("unknown key `{field}` {place} ({hint})"),
        );
    }
    if let Some(c) = MISSING_FIELD.captures(msg) {
        let field = &c[1];
        return (
            ConfigErrorKind::MissingKey,
            Some(child(field)),
            format!("missing key `{field}` {place}"),
        );
    }
    if let Some(c) = DUPLICATE_FIELD.captures(msg) {
        let field = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
        return (
            ConfigErrorKind::DuplicateKey,
            Some(child(field)),
            format!("key `{field}` appears more than once {place}"),
        );
    }
    let (kind, detail) = if UNSET.is_match(msg) {
        (ConfigErrorKind::UnsetVariable, msg.to_owned())
    } else if SECRET_FILE.is_match(msg) {
        (ConfigErrorKind::Io, msg.to_owned())
    } else if let Some(c) = INVALID.captures(msg) {
        let detail = format!("expected {}, found {}", expected(&c[2]), found(&c[1]));
        (ConfigErrorKind::InvalidValue, detail)
    } else if path.is_some() {
        // greg's own checks (crate::validate) and serde's remaining messages, which quote
        // no values.
        (ConfigErrorKind::InvalidValue, msg.to_owned())
    } else {
        (ConfigErrorKind::Syntax, format!("YAML syntax error: {msg}"))
    };
    match path {
        Some(p) => (kind, Some(p.to_owned()), format!("{p}: {detail}")),
        None if kind == ConfigErrorKind::Syntax => (kind, None, detail),
        None => (kind, None, format!("the top level: {detail}")),
    }
}

/// serde's `Unexpected` without its value: `string "hunter2"` becomes `a string`.
fn found(unexpected: &str) -> &'static str {
    let word = unexpected.split([' ', '"', '`']).next().unwrap_or("");
    match word {
        "string" | "character" => "a string",
        "integer" => "an integer",
        "floating" => "a number",
        "boolean" => "a boolean",
        "unit" => "an empty value",
        "sequence" => "a list",
        "map" => "a mapping",
        _ => "another kind of value",
    }
}

/// serde's `Expected` in config.yaml terms.
fn expected(expected: &str) -> String {
    match expected {
        "a sequence" => "a list".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "field identifier" => "a key".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number".to_owned(),
        e if STRUCT.is_match(e) => "a mapping".to_owned(),
        e => e.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_type_messages_lose_their_values() {
        let (kind, key, message) = classify(
            Some("server.port"),
            r#"invalid type: string "hunter2, expected x", expected u32"#,
        );
        assert_eq!(kind, ConfigErrorKind::InvalidValue);
        assert_eq!(key.as_deref(), Some("server.port"));
        assert_eq!(
            message,
            "server.port: expected a whole number, found a string"
        );
        let (_, _, message) = classify(
            Some("a"),
            "invalid value: integer `-7`, expected struct FileServer",
        );
        assert_eq!(message, "a: expected a mapping, found an integer");
        let (_, _, message) = classify(
            Some("a"),
            "invalid type: floating point `2.5`, expected a boolean",
        );
        assert_eq!(message, "a: expected true or false, found a number");
    }

    #[test]
    fn unknown_keys_list_the_expected_ones() {
        let (kind, key, message) = classify(
            Some("repos[0].jobs.test"),
            "unknown field `buidler`, expected `name` or `builder`",
        );
        assert_eq!(kind, ConfigErrorKind::UnknownKey);
        assert_eq!(key.as_deref(), Some("repos[0].jobs.test.buidler"));
        assert_eq!(
            message,
            "unknown key `buidler` in repos[0].jobs.test (expected one of: name, builder)"
        );
        let (_, key, message) = classify(None, "unknown field `x`, expected `server`");
        assert_eq!(key.as_deref(), Some("x"));
        assert_eq!(
            message,
            "unknown key `x` at the top level (expected: server)"
        );
    }

    #[test]
    fn other_messages_keep_their_path() {
        let (kind, key, message) = classify(
            Some("providers.github.password"),
            "environment variable `GITHUB_TOKEN` is not set",
        );
        assert_eq!(kind, ConfigErrorKind::UnsetVariable);
        assert_eq!(key.as_deref(), Some("providers.github.password"));
        assert_eq!(
            message,
            "providers.github.password: environment variable `GITHUB_TOKEN` is not set"
        );
        let (kind, key, _) = classify(None, "mapping values are not allowed in this context");
        assert_eq!((kind, key), (ConfigErrorKind::Syntax, None));
    }
}
