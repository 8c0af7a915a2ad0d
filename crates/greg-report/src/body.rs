//! The JSON body of `POST /api/reports` (SPEC §8), shared by the `greg report` CLI (which builds
//! it) and the server (which parses it with [`parse_body`]).
//!
//! Shape (every field but `repo`, `sha`, `job` and `status` may be left out):
//!
//! ```json
//! {"repo": "owner/name", "provider": "github", "sha": "0123abc…", "pr": 42,
//!  "job": "unit", "status": "failure", "build_url": "https://ci/job/unit/7/",
//!  "duration_ms": 252000, "summary_md": "…",
//!  "junit": ["<testsuite …>", {"name": "target/nextest/junit.xml", "xml": "<testsuites …>"}],
//!  "metadata": {"coverage.json": {"lines": 0.83}}}
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Largest body the server accepts, in bytes (SPEC §8: 10 MiB).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Largest `summary_md`, in bytes (256 KiB).
pub const MAX_SUMMARY_BYTES: usize = 256 * 1024;

/// Longest job name, in characters.
pub const MAX_JOB_CHARS: usize = 200;

/// One job's result, as sent by `greg report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportBody {
    /// Repository, `owner/name`.
    pub repo: String,
    /// `github` or `bitbucket`; none means the only provider configured.
    #[serde(default)]
    pub provider: Option<String>,
    /// The commit the job built: 7 to 64 hexadecimal digits.
    pub sha: String,
    /// Pull request number; none lets greg find the open pull requests whose head is `sha`.
    #[serde(default)]
    pub pr: Option<u64>,
    /// The job's name in the comment: 1 to 200 characters, no control characters.
    pub job: String,
    /// The job's result.
    pub status: JobStatus,
    /// Link to the job's build page (`http://` or `https://`).
    #[serde(default)]
    pub build_url: Option<String>,
    /// How long the job took, in milliseconds.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Markdown shown under the job in the comment, at most 256 KiB.
    #[serde(default)]
    pub summary_md: Option<String>,
    /// JUnit XML reports of the job.
    #[serde(default)]
    pub junit: Vec<JunitFile>,
    /// `--metadata-dir`: every `*.json` file of the directory, by file name.
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// A job's result (`--status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// The job passed.
    Success,
    /// The job ran and failed (tests, lints).
    Failure,
    /// The job could not run (infrastructure, setup).
    Error,
    /// The job has started and not finished.
    Pending,
}

impl JobStatus {
    /// Lower-case name, as on the wire: `success`, `failure`, `error`, `pending`.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Success => "success",
            JobStatus::Failure => "failure",
            JobStatus::Error => "error",
            JobStatus::Pending => "pending",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A JUnit XML file in the body. SPEC §8 writes `junit: [xml…]`, so a bare string is accepted
/// (it is named `junit[<index>]` in errors); the CLI sends the object form with the file's path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JunitFile {
    /// `"<testsuites>…"`.
    Xml(String),
    /// `{"name": "target/nextest/ci/junit.xml", "xml": "<testsuites>…"}`.
    Named {
        /// The file's path as the CLI found it, for error messages.
        name: String,
        /// The file's content.
        xml: String,
    },
}

impl JunitFile {
    /// The file's name for messages: its `name`, or `junit[<index>]` for a bare string, `index`
    /// being its position in `junit`.
    pub fn name(&self, index: usize) -> String {
        match self {
            JunitFile::Xml(_) => format!("junit[{index}]"),
            JunitFile::Named { name, .. } => name.clone(),
        }
    }

    /// The XML text.
    pub fn xml(&self) -> &str {
        match self {
            JunitFile::Xml(xml) => xml,
            JunitFile::Named { xml, .. } => xml,
        }
    }
}

/// Why a body was refused (a 400). `Display` is one line that names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Over [`MAX_BODY_BYTES`].
    #[error("body: {bytes} bytes, more than the {max} allowed")]
    TooLarge {
        /// Size received.
        bytes: usize,
        /// [`MAX_BODY_BYTES`].
        max: usize,
    },
    /// Not JSON, or JSON of the wrong shape; `path` is the JSON path of the bad value
    /// (`junit[2]`, `status`), `.` for the whole body.
    #[error("{path}: {message}")]
    Json {
        /// JSON path, from serde_path_to_error.
        path: String,
        /// serde_json's message, with line and column.
        message: String,
    },
    /// Well-formed, but a value is not allowed.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field (`repo`, `metadata."a/b.json"`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> BodyError {
    BodyError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Parses and validates a body: JSON of [`ReportBody`] (at most [`MAX_BODY_BYTES`]), `repo` is
/// `owner/name`, `sha` 7 to 64 hex digits, `job` 1 to 200 characters without control
/// characters, `pr` not 0, `build_url` an http(s) URL, `summary_md` at most 256 KiB, and every
/// `metadata` key a plain file name ending in `.json`.
///
/// # Errors
/// [`BodyError`], whose `Display` is the one-line reason the server answers with.
pub fn parse_body(bytes: &[u8]) -> Result<ReportBody, BodyError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge {
            bytes: bytes.len(),
            max: MAX_BODY_BYTES,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let body: ReportBody =
        serde_path_to_error::deserialize(&mut de).map_err(|e| BodyError::Json {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    de.end().map_err(|e| BodyError::Json {
        path: ".".to_string(),
        message: e.to_string(),
    })?;
    validate(&body)?;
    Ok(body)
}

fn validate(body: &ReportBody) -> Result<(), BodyError> {
    if !is_repo(&body.repo) {
        return Err(invalid(
            "repo",
            format!("{:?} is not owner/name", shorten(&body.repo)),
        ));
    }
    if let Some(provider) = &body.provider
        && !matches!(provider.as_str(), "github" | "bitbucket")
    {
        return Err(invalid(
            "provider",
            format!("{:?} is neither github nor bitbucket", shorten(provider)),
        ));
    }
    let sha_ok =
        (7..=64).contains(&body.sha.len()) && body.sha.bytes().all(|b| b.is_ascii_hexdigit());
    if !sha_ok {
        return Err(invalid(
            "sha",
            format!("{:?} is not 7 to 64 hex digits", shorten(&body.sha)),
        ));
    }
    if body.pr == Some(0) {
        return Err(invalid("pr", "0 is not a pull request number"));
    }
    let job_chars = body.job.chars().count();
    if body.job.trim().is_empty() {
        return Err(invalid("job", "empty"));
    }
    if job_chars > MAX_JOB_CHARS {
        return Err(invalid(
            "job",
            format!("{job_chars} characters, more than {MAX_JOB_CHARS}"),
        ));
    }
    if body.job.chars().any(char::is_control) {
        return Err(invalid("job", "has a control character"));
    }
    if let Some(url) = &body.build_url {
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        let chars_ok = !url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | '"'));
        if !scheme_ok || !chars_ok {
            return Err(invalid(
                "build_url",
                format!("{:?} is not an http(s) URL", shorten(url)),
            ));
        }
    }
    if let Some(summary) = &body.summary_md
        && summary.len() > MAX_SUMMARY_BYTES
    {
        return Err(invalid(
            "summary_md",
            format!("{} bytes, more than {MAX_SUMMARY_BYTES}", summary.len()),
        ));
    }
    for key in body.metadata.keys() {
        if !is_json_file_name(key) {
            return Err(invalid(
                format!("metadata.{:?}", shorten(key)),
                "not a plain file name ending in .json",
            ));
        }
    }
    Ok(())
}

/// `owner/name`: two non-empty parts of ASCII letters, digits, `-`, `_`, `.` (GitHub's and
/// Bitbucket's allowed characters), neither `.` nor `..`.
fn is_repo(repo: &str) -> bool {
    let mut parts = repo.split('/');
    let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    [owner, name].iter().all(|part| {
        !part.is_empty()
            && part.len() <= 100
            && *part != "."
            && *part != ".."
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    })
}

/// A file name greg can store the value under: no directory part, not hidden, no control
/// characters, at most 255 bytes, ending in `.json` after at least one character.
fn is_json_file_name(key: &str) -> bool {
    key.len() > ".json".len()
        && key.len() <= 255
        && key.ends_with(".json")
        && !key.starts_with('.')
        && !key.contains(['/', '\\', ':'])
        && !key.chars().any(char::is_control)
}

/// At most 80 characters of a rejected value, for the one-line error.
fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok_body() -> serde_json::Value {
        json!({
            "repo": "acme/widgets",
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "job": "unit",
            "status": "success",
        })
    }

    fn parse(v: serde_json::Value) -> Result<ReportBody, BodyError> {
        parse_body(v.to_string().as_bytes())
    }

    fn err(v: serde_json::Value) -> String {
        match parse(v) {
            Ok(b) => panic!("accepted: {b:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut v = ok_body();
        v[key] = value;
        v
    }

    #[test]
    fn minimal_body_takes_defaults() {
        let b = parse(ok_body()).unwrap();
        assert_eq!(b.repo, "acme/widgets");
        assert_eq!(b.status, JobStatus::Success);
        assert_eq!(b.pr, None);
        assert!(b.junit.is_empty());
        assert!(b.metadata.is_empty());
    }

    #[test]
    fn both_junit_forms_are_accepted() {
        let b = parse(with(
            "junit",
            json!(["<testsuite/>", {"name": "target/junit.xml", "xml": "<testsuites/>"}]),
        ))
        .unwrap();
        assert_eq!(b.junit[0], JunitFile::Xml("<testsuite/>".into()));
        assert_eq!(b.junit[0].name(0), "junit[0]");
        assert_eq!(b.junit[0].xml(), "<testsuite/>");
        assert_eq!(b.junit[1].name(1), "target/junit.xml");
        assert_eq!(b.junit[1].xml(), "<testsuites/>");
    }

    #[test]
    fn full_body_round_trips() {
        let v = json!({
            "repo": "acme/widgets", "provider": "github",
            "sha": "abc1234", "pr": 7, "job": "lint", "status": "pending",
            "build_url": "https://ci.example/job/lint/3/", "duration_ms": 1500,
            "summary_md": "**ok**", "junit": [],
            "metadata": {"coverage.json": {"lines": 0.8}},
        });
        let b = parse(v).unwrap();
        let again = parse(serde_json::to_value(&b).unwrap()).unwrap();
        assert_eq!(b, again);
        assert_eq!(b.status.to_string(), "pending");
    }

    #[test]
    fn each_validation_error_names_its_field() {
        let summary = "x".repeat(MAX_SUMMARY_BYTES + 1);
        let long_job = "j".repeat(201);
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (
                json!("nope"),
                ".: invalid type: string \"nope\", expected struct ReportBody at line 1 column 6",
            ),
            (
                with("status", json!("passed")),
                "status: unknown variant `passed`, expected one of `success`, `failure`, `error`, `pending` at line 1 column 1",
            ),
            (
                with("junit", json!([42])),
                "junit[0]: data did not match any variant of untagged enum JunitFile at line 1 column 1",
            ),
            (
                with("repo", json!("widgets")),
                "repo: \"widgets\" is not owner/name",
            ),
            (
                with("repo", json!("a/b/c")),
                "repo: \"a/b/c\" is not owner/name",
            ),
            (
                with("provider", json!("gitlab")),
                "provider: \"gitlab\" is neither github nor bitbucket",
            ),
            (
                with("sha", json!("abc12")),
                "sha: \"abc12\" is not 7 to 64 hex digits",
            ),
            (
                with("sha", json!("zzzzzzzz")),
                "sha: \"zzzzzzzz\" is not 7 to 64 hex digits",
            ),
            (with("pr", json!(0)), "pr: 0 is not a pull request number"),
            (with("job", json!("  ")), "job: empty"),
            (
                with("job", json!(long_job)),
                "job: 201 characters, more than 200",
            ),
            (with("job", json!("a\nb")), "job: has a control character"),
            (
                with("build_url", json!("javascript:alert(1)")),
                "build_url: \"javascript:alert(1)\" is not an http(s) URL",
            ),
            (
                with("summary_md", json!(summary)),
                "summary_md: 262145 bytes, more than 262144",
            ),
            (
                with("metadata", json!({"../x.json": 1})),
                "metadata.\"../x.json\": not a plain file name ending in .json",
            ),
            (
                with("metadata", json!({"notes.txt": 1})),
                "metadata.\"notes.txt\": not a plain file name ending in .json",
            ),
        ];
        for (body, want) in cases {
            let got = err(body);
            assert!(!got.contains('\n'), "{got}");
            // serde_json's line/column depend on key order; compare up to " at line".
            let cut = |s: &str| s.split(" at line").next().unwrap_or_default().to_string();
            assert_eq!(cut(&got), cut(want));
        }
    }

    #[test]
    fn missing_field_is_named() {
        let mut v = ok_body();
        v.as_object_mut().unwrap().remove("job");
        assert!(err(v).starts_with(".: missing field `job`"));
    }

    #[test]
    fn oversized_and_trailing_bodies_are_refused() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            parse_body(&big).unwrap_err().to_string(),
            format!(
                "body: {} bytes, more than the {} allowed",
                MAX_BODY_BYTES + 1,
                MAX_BODY_BYTES
            )
        );
        let mut two = ok_body().to_string();
        two.push_str(" {}");
        assert!(
            parse_body(two.as_bytes())
                .unwrap_err()
                .to_string()
                .starts_with(".: trailing characters")
        );
    }
}
