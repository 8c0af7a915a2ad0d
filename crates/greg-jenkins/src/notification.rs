//! The Jenkins Notification plugin's JSON callback (the `/build?builder=jenkins` route),
//! parsed into a normalized [`BuildUpdate`]. Pure: no IO.
//!
//! Format: jenkinsci/notification-plugin `model/JobState.java` and `model/BuildState.java`,
//! serialized by Gson with `LOWER_CASE_WITH_UNDERSCORES` (camelCase fields become
//! snake_case, map keys are kept) and null fields omitted; field list in
//! `tests/data/SOURCES.md` ("Jenkins Notification plugin payload"); example
//! `tests/data/jenkins/notification/wiki-example.completed.json`:
//!
//! ```json
//! {"name": "asgard", "url": "job/asgard/",
//!  "build": {"full_url": "http://localhost:8080/job/asgard/18/", "number": 18,
//!            "queue_id": 73, "phase": "COMPLETED", "status": "SUCCESS",
//!            "url": "job/asgard/18/", "parameters": {"COMMIT": "...", "CONTEXT": "test"}}}
//! ```
//!
//! Mapping:
//! - `job`: the job's full name. The plugin's `name` is the short name (`Item.getName()`),
//!   so a job `main` in folder `team` arrives as `name: "main"`, `url: "job/team/job/main/"`.
//!   The full name is read from `url`: its `job/<segment>` pairs, percent-decoded and joined
//!   by `/` (`view/<name>` pairs are skipped). When `url` is absent, has any other shape, or
//!   its last job segment is not `name`, the full name is `name`.
//! - `number` ← `build.number`; `queue_item` ← `build.queue_id` (absent or negative, Jenkins'
//!   "unknown" -1, → none); `phase` ← `build.phase`; `outcome` ← `build.status`;
//!   `url` ← `build.full_url` (absent when Jenkins has no root URL configured).
//! - `commit` ← `build.parameters.COMMIT` when it is a full sha (otherwise none, not an
//!   error: a job may be started by hand); `context` ← `build.parameters.CONTEXT` when it
//!   is `test`, `merge` or `try`.
//! - Phase `NONE` → [`Inbound::Ignored`].

use greg_core::{
    BuildContext, BuildNumber, BuildOutcome, BuildPhase, BuildUpdate, Event, Inbound, JobName,
    QueueItemId, Sha, WebhookError,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `JobState`: the top-level object.
#[derive(Debug, Deserialize)]
struct JobStateWire {
    name: String,
    #[serde(default)]
    url: Option<String>,
    build: BuildStateWire,
}

/// `BuildState`: the `build` object. Fields greg does not read (`timestamp`, `duration`,
/// `scm`, `log`, `notes`, `test_summary`, `artifacts`, ...) are ignored.
#[derive(Debug, Deserialize)]
struct BuildStateWire {
    #[serde(default)]
    full_url: Option<String>,
    number: u64,
    #[serde(default)]
    queue_id: Option<i64>,
    phase: PhaseWire,
    #[serde(default)]
    status: Option<String>,
    /// `Map<String, String>` in the plugin; values of other types are ignored.
    #[serde(default)]
    parameters: Option<BTreeMap<String, serde_json::Value>>,
}

/// `Phase.java`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum PhaseWire {
    Queued,
    Started,
    Completed,
    Finalized,
    None,
}

/// Parses a Notification plugin JSON body into `Inbound::Event(Event::Build(..))`, or
/// `Inbound::Ignored` for phase `NONE`. See the module docs for the mapping.
///
/// # Errors
/// [`WebhookError::Malformed`] with the JSON path (`build.phase: unknown variant ...`) when
/// the body is not JSON, is truncated, lacks `name`, `build.number` or `build.phase`, has an
/// unknown phase or an unknown `build.status`, or has an empty `name`.
pub fn parse_notification(body: &[u8]) -> Result<Inbound, WebhookError> {
    let malformed =
        |detail: String| WebhookError::Malformed(format!("Jenkins notification: {detail}"));
    let mut de = serde_json::Deserializer::from_slice(body);
    let wire: JobStateWire =
        serde_path_to_error::deserialize(&mut de).map_err(|e| malformed(e.to_string()))?;
    de.end().map_err(|e| malformed(e.to_string()))?;

    if wire.name.trim().is_empty() {
        return Err(malformed("name: empty job name".to_owned()));
    }
    let build = wire.build;
    let phase = match build.phase {
        PhaseWire::Queued => BuildPhase::Queued,
        PhaseWire::Started => BuildPhase::Started,
        PhaseWire::Completed => BuildPhase::Completed,
        PhaseWire::Finalized => BuildPhase::Finalized,
        PhaseWire::None => {
            return Ok(Inbound::Ignored(
                "Jenkins notification with phase NONE".to_owned(),
            ));
        }
    };
    let outcome = match build.status.as_deref() {
        None => None,
        Some(status) => Some(BuildOutcome::from_jenkins(status).ok_or_else(|| {
            malformed(format!(
                "build.status: unknown build result {:?}",
                status.chars().take(40).collect::<String>()
            ))
        })?),
    };
    let parameter = |name: &str| {
        build
            .parameters
            .as_ref()
            .and_then(|p| p.get(name))
            .and_then(serde_json::Value::as_str)
    };
    let commit = parameter("COMMIT").and_then(|c| Sha::parse(c.trim()).ok());
    let context = parameter("CONTEXT").and_then(|c| BuildContext::parse(c.trim()));

    Ok(Inbound::Event(Event::Build(BuildUpdate {
        job: JobName(full_job_name(&wire.name, wire.url.as_deref())),
        number: BuildNumber(build.number),
        queue_item: build
            .queue_id
            .and_then(|id| u64::try_from(id).ok())
            .map(QueueItemId),
        phase,
        outcome,
        url: build.full_url.filter(|u| !u.is_empty()),
        commit,
        context,
    })))
}

/// The job's full name from its job-relative `url` (`job/team/job/main/` → `team/main`), or
/// `name` when the URL does not describe the job (see the module docs).
fn full_job_name(name: &str, url: Option<&str>) -> String {
    url.and_then(full_name_from_url)
        .filter(|full| full.rsplit('/').next() == Some(name))
        .unwrap_or_else(|| name.to_owned())
}

/// `job/a/view/v/job/b/` → `a/b`; `None` for any other shape.
fn full_name_from_url(url: &str) -> Option<String> {
    let segments: Vec<&str> = url.trim_matches('/').split('/').collect();
    if !segments.len().is_multiple_of(2) {
        return None;
    }
    let mut names = Vec::new();
    for pair in segments.chunks(2) {
        match pair {
            ["job", segment] => {
                let decoded = percent_encoding::percent_decode_str(segment)
                    .decode_utf8()
                    .ok()?;
                if decoded.is_empty() || decoded.contains('/') {
                    return None;
                }
                names.push(decoded.into_owned());
            }
            ["view", _] => {}
            _ => return None,
        }
    }
    (!names.is_empty()).then(|| names.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIKI_EXAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/jenkins/notification/wiki-example.completed.json"
    );

    const SHA: &str = "c6d86dc654b12425e706bcf951adfe5a8627a517";

    fn parse(json: &str) -> Result<Inbound, WebhookError> {
        parse_notification(json.as_bytes())
    }

    /// A payload as notification-plugin 1.17+ sends it for a greg build in `phase`.
    fn payload(phase: &str, status: Option<&str>) -> String {
        let status = status
            .map(|s| format!(r#""status": "{s}","#))
            .unwrap_or_default();
        format!(
            r#"{{
  "name": "demo-test",
  "display_name": "demo-test",
  "url": "job/demo-test/",
  "build": {{
    "full_url": "https://ci.example.com/job/demo-test/12/",
    "number": 12,
    "queue_id": 143,
    "timestamp": 1524074837590,
    "duration": 0,
    "phase": "{phase}",
    {status}
    "url": "job/demo-test/12/",
    "scm": {{"url": "git@github.com:acme/demo.git", "branch": "origin/feature", "commit": "{SHA}", "changes": [], "culprits": []}},
    "parameters": {{"SOURCE": "git@github.com:acme/demo.git", "COMMIT": "{SHA}", "CONTEXT": "test", "REPORT": "true", "BRANCH": "feature"}},
    "log": "",
    "notes": "",
    "artifacts": {{}}
  }}
}}"#
        )
    }

    #[test]
    fn the_wiki_example_is_a_completed_success() {
        let body = std::fs::read(WIKI_EXAMPLE).expect("fixture");
        insta::assert_yaml_snapshot!(parse_notification(&body).expect("parses"));
    }

    #[test]
    fn queued_before_the_build_has_a_result() {
        insta::assert_yaml_snapshot!(parse(&payload("QUEUED", None)).expect("parses"));
    }

    #[test]
    fn started_carries_commit_and_context() {
        insta::assert_yaml_snapshot!(parse(&payload("STARTED", None)).expect("parses"));
    }

    #[test]
    fn completed_carries_the_outcome() {
        insta::assert_yaml_snapshot!(
            parse(&payload("COMPLETED", Some("UNSTABLE"))).expect("parses")
        );
    }

    #[test]
    fn finalized_carries_the_outcome() {
        insta::assert_yaml_snapshot!(
            parse(&payload("FINALIZED", Some("FAILURE"))).expect("parses")
        );
    }

    #[test]
    fn phase_none_is_ignored() {
        assert_eq!(
            parse(&payload("NONE", None)),
            Ok(Inbound::Ignored(
                "Jenkins notification with phase NONE".to_owned()
            ))
        );
    }

    fn update(json: &str) -> BuildUpdate {
        match parse(json) {
            Ok(Inbound::Event(Event::Build(update))) => update,
            other => panic!("not a build update: {other:?}"),
        }
    }

    #[test]
    fn folder_jobs_get_their_full_name_from_the_url() {
        let json = |name: &str, url: &str| {
            format!(
                r#"{{"name": "{name}", "url": "{url}", "build": {{"number": 1, "phase": "STARTED"}}}}"#
            )
        };
        let cases = [
            ("main", "job/team/job/main/", "team/main"),
            ("main", "job/team/job/app/job/main/", "team/app/main"),
            ("my app", "job/team/job/my%20app/", "team/my app"),
            // Multibranch: the branch job's name is itself encoded ("feature/x" → "feature%2Fx").
            (
                "feature%2Fx",
                "job/app/job/feature%252Fx/",
                "app/feature%2Fx",
            ),
            ("main", "view/All/job/team/job/main/", "team/main"),
            ("asgard", "job/asgard/", "asgard"),
            // Shapes that do not describe the job: fall back to the short name.
            ("main", "job/team/job/other/", "main"),
            ("main", "https://ci.example.com/job/team/job/main/", "main"),
            ("main", "job/team/main/", "main"),
            ("main", "", "main"),
            ("main", "job/a%2Fb/job/main/", "main"),
            ("main", "job/%FF/job/main/", "main"),
        ];
        for (name, url, want) in cases {
            assert_eq!(update(&json(name, url)).job, JobName::from(want), "{url}");
        }
        let no_url = r#"{"name": "main", "build": {"number": 1, "phase": "STARTED"}}"#;
        assert_eq!(update(no_url).job, JobName::from("main"));
    }

    #[test]
    fn a_bad_commit_or_context_parameter_is_dropped_not_an_error() {
        let json = r#"{"name": "demo", "build": {"number": 4, "phase": "STARTED", "queue_id": -1,
            "parameters": {"COMMIT": "c6d86dc", "CONTEXT": "deploy", "PR": 7}}}"#;
        let dropped = update(json);
        assert_eq!(dropped.commit, None);
        assert_eq!(dropped.context, None);
        assert_eq!(dropped.queue_item, None, "queue_id -1 means unknown");

        let json = format!(
            r#"{{"name": "demo", "build": {{"number": 4, "phase": "STARTED",
            "parameters": {{"COMMIT": "{}", "CONTEXT": "merge"}}}}}}"#,
            SHA.to_ascii_uppercase()
        );
        let kept = update(&json);
        assert_eq!(kept.commit.as_ref().map(Sha::as_str), Some(SHA));
        assert_eq!(kept.context, Some(BuildContext::Merge));
    }

    #[test]
    fn bad_input_is_malformed_with_the_json_path() {
        let full = payload("COMPLETED", Some("SUCCESS"));
        let cases: [(&str, String, &str); 10] = [
            ("empty body", String::new(), "Jenkins notification: EOF while parsing a value at line 1 column 0"),
            ("truncated", full[..full.len() / 2].to_owned(), "Jenkins notification: build.scm"),
            ("form-encoded", "build=12&phase=STARTED".to_owned(), "Jenkins notification: expected value at line 1 column 1"),
            ("no name", r#"{"build": {"number": 1, "phase": "STARTED"}}"#.to_owned(), "Jenkins notification: missing field `name`"),
            ("no build", r#"{"name": "demo"}"#.to_owned(), "Jenkins notification: missing field `build`"),
            ("no number", r#"{"name": "demo", "build": {"phase": "STARTED"}}"#.to_owned(), "Jenkins notification: build: missing field `number`"),
            ("no phase", r#"{"name": "demo", "build": {"number": 1}}"#.to_owned(), "Jenkins notification: build: missing field `phase`"),
            ("unknown phase", r#"{"name": "demo", "build": {"number": 1, "phase": "RUNNING"}}"#.to_owned(), "Jenkins notification: build.phase: unknown variant `RUNNING`"),
            ("unknown status", r#"{"name": "demo", "build": {"number": 1, "phase": "COMPLETED", "status": "GREEN"}}"#.to_owned(), "Jenkins notification: build.status: unknown build result \"GREEN\""),
            ("string number", r#"{"name": "demo", "build": {"number": "1", "phase": "STARTED"}}"#.to_owned(), "Jenkins notification: build.number: invalid type: string \"1\""),
        ];
        for (what, body, want) in cases {
            match parse(&body) {
                Err(WebhookError::Malformed(message)) => {
                    assert!(message.starts_with(want), "{what}: {message}");
                    assert!(!message.contains('\n'), "{what}: one line: {message}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn empty_names_and_trailing_data_are_malformed() {
        for body in [
            r#"{"name": " ", "build": {"number": 1, "phase": "STARTED"}}"#,
            r#"{"name": "demo", "build": {"number": 1, "phase": "STARTED"}} {}"#,
        ] {
            assert!(
                matches!(parse(body), Err(WebhookError::Malformed(_))),
                "{body}"
            );
        }
    }
}
