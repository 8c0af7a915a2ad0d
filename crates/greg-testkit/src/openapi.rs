//! Checks requests (and the fake's own responses) against GitHub's OpenAPI description,
//! tests/data/github/openapi-subset.json (OpenAPI 3.0.3, an extract of github/rest-api-description;
//! provenance in tests/data/SOURCES.md).
//!
//! How: a request's method and path must match an operation's path template; its JSON body is
//! validated with the `jsonschema` crate against the operation's `requestBody`
//! `application/json` schema. The validator is built from a small root document
//! `{"allOf": [<schema>], "components": <the document's components>}` so that
//! `#/components/...` references resolve inside it, with Draft 4 semantics (closest to the
//! OpenAPI 3.0 schema object: `$ref` siblings are ignored) and without format assertions.
//!
//! OpenAPI 3.0 is not JSON Schema; the differences handled:
//! - `nullable: true` becomes `"type": [T, "null"]` (and `null` joins an `enum`); on a schema
//!   without `type` (`$ref`, `allOf`, ...) it becomes `anyOf: [<schema>, {"type": "null"}]`.
//! - Path parameters named `ref`, `branch` or `basehead` may span several segments (GitHub's
//!   `git/refs/heads/feature/x`); every other parameter matches exactly one segment.
//! - When several templates match, the one with the most literal segments wins.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One request that does not conform to the description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Its position in the request log.
    pub seq: u64,
    /// Upper-case HTTP method.
    pub method: String,
    /// The request path as logged.
    pub path: String,
    /// What does not conform.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{} {} {}: {}",
            self.seq, self.method, self.path, self.message
        )
    }
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param { multi: bool },
}

/// One operation of the description.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Upper-case method.
    pub method: String,
    /// The path template, e.g. `/repos/{owner}/{repo}/statuses/{sha}`.
    pub template: String,
    /// GitHub's `operationId`, e.g. `repos/create-commit-status`.
    pub operation_id: String,
    segments: Vec<Segment>,
    literals: usize,
    /// The `application/json` request schema, and whether the body is required.
    request: Option<(Value, bool)>,
    /// The operation object, for its responses.
    object: Value,
}

/// A loaded OpenAPI 3.0 description. Validators are built on first use and cached.
pub struct OpenApi {
    components: Value,
    operations: Vec<Operation>,
    cache: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl std::fmt::Debug for OpenApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApi")
            .field("operations", &self.operations.len())
            .finish_non_exhaustive()
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Rewrites OpenAPI 3.0 `nullable` into JSON Schema, in place, everywhere in `v`.
fn convert_nullable(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(convert_nullable),
        Value::Object(m) => {
            for child in m.values_mut() {
                convert_nullable(child);
            }
            match m.get("nullable") {
                Some(Value::Bool(true)) => {
                    m.remove("nullable");
                    match m.get("type").cloned() {
                        Some(Value::String(t)) => {
                            m.insert("type".to_owned(), json!([t, "null"]));
                            if let Some(Value::Array(e)) = m.get_mut("enum")
                                && !e.contains(&Value::Null)
                            {
                                e.push(Value::Null);
                            }
                        }
                        Some(_) => {}
                        None => {
                            let inner = Value::Object(std::mem::take(m));
                            m.insert("anyOf".to_owned(), json!([inner, { "type": "null" }]));
                        }
                    }
                }
                Some(Value::Bool(false)) => {
                    m.remove("nullable");
                }
                _ => {}
            }
        }
        _ => {}
    }
}

fn parse_template(template: &str) -> (Vec<Segment>, usize) {
    let segments: Vec<Segment> = template
        .split('/')
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param {
                    multi: matches!(name, "ref" | "branch" | "basehead"),
                },
                None => Segment::Literal(s.to_owned()),
            },
        )
        .collect();
    let literals = segments
        .iter()
        .filter(|s| matches!(s, Segment::Literal(_)))
        .count();
    (segments, literals)
}

fn matches(tpl: &[Segment], path: &[String]) -> bool {
    match tpl.split_first() {
        None => path.is_empty(),
        Some((Segment::Literal(l), rest)) => {
            path.first().is_some_and(|p| p == l) && matches(rest, &path[1..])
        }
        Some((Segment::Param { multi: false }, rest)) => {
            path.first().is_some_and(|p| !p.is_empty()) && matches(rest, &path[1..])
        }
        Some((Segment::Param { multi: true }, rest)) => {
            (1..=path.len()).any(|k| matches(rest, &path[k..]))
        }
    }
}

fn path_segments(path: &str) -> Vec<String> {
    let path = path.split('?').next().unwrap_or(path);
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| crate::http::percent_decode(s, false))
        .collect()
}

impl OpenApi {
    /// Reads a description from a JSON file. Errors when it cannot be read or parsed.
    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))?;
        Self::from_value(doc)
    }

    /// tests/data/github/openapi-subset.json of this workspace (found relative to this crate's
    /// source directory, so it works in the repository's tests and `greg demo`, not from an
    /// installed binary).
    pub fn github_subset() -> anyhow::Result<Self> {
        Self::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/github/openapi-subset.json"
        ))
    }

    /// Builds from a parsed description. Errors when it has no `paths` object.
    pub fn from_value(mut doc: Value) -> anyhow::Result<Self> {
        convert_nullable(&mut doc);
        let components = doc.get("components").cloned().unwrap_or_else(|| json!({}));
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or_else(|| anyhow::anyhow!("the description has no `paths` object"))?;
        let mut operations = Vec::new();
        for (template, item) in paths {
            let (segments, literals) = parse_template(template);
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let request = op.get("requestBody").and_then(|rb| {
                    let schema = rb.pointer("/content/application~1json/schema")?.clone();
                    let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
                    Some((schema, required))
                });
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    operation_id: op
                        .get("operationId")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    segments: segments.clone(),
                    literals,
                    request,
                    object: op.clone(),
                });
            }
        }
        Ok(Self {
            components,
            operations,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The operation for `method` and `path` (a request path, percent-encoded, query allowed).
    /// Errors when no template matches, or a template matches with other methods only.
    pub fn operation(&self, method: &str, path: &str) -> Result<&Operation, String> {
        let segs = path_segments(path);
        let candidates: Vec<&Operation> = self
            .operations
            .iter()
            .filter(|op| matches(&op.segments, &segs))
            .collect();
        if candidates.is_empty() {
            return Err(format!("no operation matches the path {path}"));
        }
        candidates
            .iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method))
            .max_by_key(|op| op.literals)
            .copied()
            .ok_or_else(|| {
                let allowed: Vec<String> = candidates
                    .iter()
                    .map(|op| format!("{} {}", op.method, op.template))
                    .collect();
                format!(
                    "method {method} is not described for {path} (described: {})",
                    allowed.join(", ")
                )
            })
    }

    fn validator(&self, key: &str, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(v) = cache.get(key) {
            return Ok(v.clone());
        }
        let root = json!({ "allOf": [schema], "components": self.components });
        let v = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(false)
            .build(&root)
            .map_err(|e| format!("cannot build a validator for {key}: {e}"))?;
        let v = Arc::new(v);
        cache.insert(key.to_owned(), v.clone());
        Ok(v)
    }

    fn check(validator: &jsonschema::Validator, instance: &Value) -> Result<(), String> {
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                format!("{at}: {e}")
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Validates one request: the method and path must match an operation, and the JSON body
    /// (when the operation takes one) must validate against its request schema. A body sent to
    /// an operation without a request body, or a missing required body, is an error.
    pub fn validate(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(), String> {
        let op = self.operation(method, path)?;
        match (&op.request, body) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(format!("{} {} takes no JSON body", op.method, op.template)),
            (Some((_, true)), None) => Err(format!(
                "{} {} requires a JSON body",
                op.method, op.template
            )),
            (Some(_), None) => Ok(()),
            (Some((schema, _)), Some(body)) => {
                let key = format!("request {} {}", op.method, op.template);
                let v = self.validator(&key, schema)?;
                Self::check(&v, body)
                    .map_err(|e| format!("{} ({}): {e}", op.template, op.operation_id))
            }
        }
    }

    /// Validates a response body against the operation's schema for `status` (falling back to
    /// `default`). A status the operation does not describe is an error; a described status
    /// without JSON content accepts only `null`.
    pub fn validate_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        let op = self.operation(method, path)?;
        let responses = op.object.get("responses").and_then(Value::as_object);
        let resp = responses
            .and_then(|r| r.get(&status.to_string()).or_else(|| r.get("default")))
            .ok_or_else(|| {
                format!(
                    "{} {} does not describe status {status}",
                    op.method, op.template
                )
            })?;
        let resp = self.deref(resp);
        match resp.pointer("/content/application~1json/schema") {
            None if body.is_null() => Ok(()),
            None => Err(format!(
                "{} {} {status} has no JSON body",
                op.method, op.template
            )),
            Some(schema) => {
                let key = format!("response {} {} {status}", op.method, op.template);
                let v = self.validator(&key, schema)?;
                Self::check(&v, body)
            }
        }
    }

    /// Follows one `$ref` to `#/components/...`.
    fn deref<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => r
                .strip_prefix("#/components")
                .and_then(|p| self.components.pointer(p))
                .unwrap_or(v),
            None => v,
        }
    }

    /// Every operation, in document order.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }
}
