//! The Jenkins Remote API as greg reads it: the few JSON fields it uses, the queue-item
//! `Location` of `buildWithParameters`, the CSRF crumb, and the URL path of a (folder) job.
//! Pure functions over bytes; the client in `client.rs` does the IO.
//!
//! Shapes: Jenkins' `/api/json` export (<https://www.jenkins.io/doc/book/using/remote-access-api/>),
//! checked against the fixtures under `tests/data/jenkins/remote-api/` (cdancy/jenkins-rest
//! captures, provenance in `tests/data/SOURCES.md`).

use crate::error::json_error;
use greg_core::{BuildNumber, BuildOutcome, BuildState, Error, JobName, QueueItemId, Sha};
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// `tree=` of the queue-item request: only the fields [`parse_queue_item`] reads.
pub(crate) const QUEUE_ITEM_TREE: &str = "cancelled,executable[number,url],why";

/// `tree=` of the build request: only the fields [`parse_build`] reads. Jenkins adds the
/// `_class` of every action by itself (an action is exported through the `Action`
/// interface, so the class attribute is always "needed").
pub(crate) const BUILD_TREE: &str = "number,url,building,result,actions[parameters[name,value]]";

/// The longest queue reason greg keeps, in characters (Jenkins' are one short sentence).
const MAX_WHY: usize = 300;

/// The build parameter that names the commit a build ran with (SPEC §6).
const COMMIT_PARAMETER: &str = "COMMIT";

/// `_class` of the action that records a build's parameters (`hudson.model.ParametersAction`,
/// jenkinsci/jenkins `core/src/main/java/hudson/model/ParametersAction.java`).
const PARAMETERS_ACTION: &str = "hudson.model.ParametersAction";

/// `tree=` of the job request: only the field [`parse_job`] reads.
pub(crate) const JOB_TREE: &str = "name";

/// `GET /queue/item/{id}/api/json`. `_class` is `hudson.model.Queue$WaitingItem`,
/// `$BlockedItem`, `$BuildableItem` (still queued) or `$LeftItem` (left the queue: it has
/// `cancelled`, and `executable` once a build started). Fixtures:
/// `queue-item.{blocked,left-running,left-cancelled}.json`.
#[derive(Debug, Deserialize)]
struct QueueItemWire {
    #[serde(default)]
    cancelled: Option<bool>,
    #[serde(default)]
    executable: Option<ExecutableWire>,
    /// Why the item waits (`Queue.Item.getWhy()`: "Waiting for next available executor",
    /// "Build #9 is already in progress (ETA:15 sec)", "In the quiet period. Expires in 4.9
    /// sec"); `null` once it left the queue. Not a string: ignored, not an error.
    #[serde(default, deserialize_with = "lenient_string")]
    why: Option<String>,
}

/// `executable` of a left queue item: the build it became.
#[derive(Debug, Deserialize)]
struct ExecutableWire {
    number: u64,
    url: String,
}

/// `GET /job/{job}/{number}/api/json` (fixtures `build.json`, `build.git-commit.json`).
/// `result` is `null` while the build runs and during post-processing.
#[derive(Debug, Deserialize)]
struct BuildWire {
    number: u64,
    url: String,
    #[serde(default)]
    building: bool,
    #[serde(default)]
    result: Option<String>,
    /// The build's actions, read leniently by [`commit_parameter`]: a shape greg does not
    /// expect costs the commit, never the build.
    #[serde(default)]
    actions: serde_json::Value,
}

/// `GET /job/{job}/api/json` (fixture `job.json`): a job answers with its `name`.
#[derive(Debug, Deserialize)]
struct JobWire {
    #[serde(rename = "name")]
    _name: serde::de::IgnoredAny,
}

/// `GET /crumbIssuer/api/json`: `{"_class": "hudson.security.csrf.DefaultCrumbIssuer",
/// "crumb": "...", "crumbRequestField": "Jenkins-Crumb"}` (exported fields of
/// jenkinsci/jenkins `core/src/main/java/hudson/security/csrf/CrumbIssuer.java`).
#[derive(Deserialize)]
struct CrumbWire {
    crumb: String,
    #[serde(rename = "crumbRequestField")]
    request_field: String,
}

/// A CSRF crumb to send on POSTs: the header `field: value`, and the session cookie the
/// crumb was issued with (Jenkins ties crumbs to the web session of password logins). Both
/// values are marked sensitive so they never show in `Debug` output.
#[derive(Debug, Clone)]
pub(crate) struct Crumb {
    pub(crate) field: HeaderName,
    pub(crate) value: HeaderValue,
    pub(crate) cookie: Option<HeaderValue>,
}

/// Reads a queue item: `executable` → `Running`, `cancelled: true` → `Cancelled`, anything
/// else → `Queued`.
///
/// # Errors
/// [`Error::Protocol`] with the JSON path when the body is not a queue item.
pub(crate) fn parse_queue_item(op: &str, body: &[u8]) -> Result<BuildState, Error> {
    let item: QueueItemWire = from_json(op, body)?;
    Ok(match item {
        QueueItemWire {
            executable: Some(build),
            ..
        } => BuildState::Running {
            number: BuildNumber(build.number),
            url: build.url,
        },
        QueueItemWire {
            cancelled: Some(true),
            ..
        } => BuildState::Cancelled,
        QueueItemWire { why, .. } => BuildState::Queued {
            why: why.and_then(|w| clean_why(&w)),
        },
    })
}

/// A queue reason as greg shows it: trimmed, whitespace runs (Jenkins' multi-line reasons of
/// `CauseOfBlockage`) joined by one space, at most [`MAX_WHY`] characters; `None` when empty.
fn clean_why(why: &str) -> Option<String> {
    let words: Vec<&str> = why.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    let joined = words.join(" ");
    Some(if joined.chars().count() > MAX_WHY {
        let mut cut: String = joined.chars().take(MAX_WHY - 1).collect();
        cut.push('…');
        cut
    } else {
        joined
    })
}

/// A string field that may be `null` or of another type; anything but a string is `None`.
fn lenient_string<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(de)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

/// The `COMMIT` parameter of a build, from its `actions[]`: the entries that are a
/// `hudson.model.ParametersAction` (or carry no `_class`, as older Jenkins exports them;
/// fixture `build.json`), each with `parameters[] {name, value}`. `Some` only when the
/// parameter is there, is a string and is a full sha, and every `COMMIT` of every
/// parameters action says the same; anything else (absent, a boolean, an abbreviated or
/// malformed sha, two different values) is `None`, so a caller that needs proof gets none.
pub(crate) fn commit_parameter(actions: &serde_json::Value) -> Option<Sha> {
    let mut values = actions
        .as_array()?
        .iter()
        .filter(|action| match action.get("_class") {
            None => true,
            Some(class) => class.as_str() == Some(PARAMETERS_ACTION),
        })
        .filter_map(|action| action.get("parameters")?.as_array())
        .flatten()
        .filter(|p| p.get("name").and_then(serde_json::Value::as_str) == Some(COMMIT_PARAMETER))
        .map(|p| p.get("value").and_then(serde_json::Value::as_str));
    let first = values.next()??;
    if values.any(|v| v != Some(first)) {
        return None;
    }
    Sha::parse(first).ok()
}

/// Reads a build: `building: true` or no `result` yet → `Running`; otherwise `Finished` with
/// the outcome from `result` (`SUCCESS`, `UNSTABLE`, `FAILURE`, `ABORTED`, `NOT_BUILT`).
///
/// # Errors
/// [`Error::Protocol`] when the body is not a build or `result` is not a Jenkins result.
pub(crate) fn parse_build(op: &str, body: &[u8]) -> Result<BuildState, Error> {
    let build: BuildWire = from_json(op, body)?;
    let number = BuildNumber(build.number);
    match build.result {
        Some(result) if !build.building => match BuildOutcome::from_jenkins(&result) {
            Some(outcome) => Ok(BuildState::Finished {
                number,
                url: build.url,
                outcome,
                commit: commit_parameter(&build.actions),
            }),
            None => Err(Error::Protocol {
                message: format!(
                    "{op}: unexpected JSON from Jenkins: result: unknown build result {:?}",
                    result.chars().take(40).collect::<String>()
                ),
            }),
        },
        _ => Ok(BuildState::Running {
            number,
            url: build.url,
        }),
    }
}

/// Checks that a `200` answer to a job request is a job (and not, say, a login page).
///
/// # Errors
/// [`Error::Protocol`] when the body is not a job's JSON.
pub(crate) fn parse_job(op: &str, body: &[u8]) -> Result<(), Error> {
    from_json::<JobWire>(op, body).map(|_| ())
}

/// Reads a crumb and keeps the session cookie(s) it came with: the `name=value` part of each
/// `Set-Cookie` header, joined with `; ` as a `Cookie` header.
///
/// # Errors
/// [`Error::Protocol`] when the body is not a crumb or its field or value cannot be sent as
/// an HTTP header.
pub(crate) fn parse_crumb<'a>(
    op: &str,
    body: &[u8],
    set_cookies: impl IntoIterator<Item = &'a HeaderValue>,
) -> Result<Crumb, Error> {
    let wire: CrumbWire = from_json(op, body)?;
    let protocol = |what: &str| Error::Protocol {
        message: format!("{op}: Jenkins sent a crumb with an unusable {what}"),
    };
    let field = HeaderName::from_bytes(wire.request_field.trim().as_bytes())
        .map_err(|_| protocol("crumbRequestField"))?;
    let mut value = HeaderValue::from_str(wire.crumb.trim()).map_err(|_| protocol("crumb"))?;
    value.set_sensitive(true);
    let pairs: Vec<&str> = set_cookies
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::trim)
        .filter(|pair| {
            pair.split_once('=')
                .is_some_and(|(name, _)| !name.is_empty())
        })
        .collect();
    let cookie = if pairs.is_empty() {
        None
    } else {
        let mut cookie =
            HeaderValue::from_str(&pairs.join("; ")).map_err(|_| protocol("session cookie"))?;
        cookie.set_sensitive(true);
        Some(cookie)
    };
    Ok(Crumb {
        field,
        value,
        cookie,
    })
}

/// The queue item of a `buildWithParameters` answer's `Location`
/// (`{root}/queue/item/{id}/`, Jenkins 1.519+). Only the path's end is read: Jenkins builds
/// the URL from its configured root URL, which may differ from the one greg uses.
pub(crate) fn queue_item_from_location(location: &str) -> Option<QueueItemId> {
    let path = location.split(['?', '#']).next()?;
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let id = segments.next()?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id = id.parse().ok()?;
    (segments.next()? == "item" && segments.next()? == "queue").then_some(QueueItemId(id))
}

/// The URL path segments of a job: full name `a/b/c` → `job a job b job c`.
///
/// # Errors
/// [`Error::InvalidConfig`] (key `jobs`) for an empty name or folder, or a `.`/`..` segment
/// (names Jenkins refuses, `Jenkins.checkGoodName`).
pub(crate) fn job_segments(job: &JobName) -> Result<Vec<&str>, Error> {
    let mut out = Vec::new();
    for segment in job.as_str().split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(Error::InvalidConfig {
                key: "jobs".to_owned(),
                message: format!(
                    "job name {:?} is not a Jenkins full name (folders joined by `/`, none empty, \
                     none `.` or `..`)",
                    job.as_str()
                ),
            });
        }
        out.push("job");
        out.push(segment);
    }
    Ok(out)
}

/// Deserializes with the JSON path in the error.
fn from_json<T: DeserializeOwned>(op: &str, body: &[u8]) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(op, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REMOTE_API: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/jenkins/remote-api"
    );

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{REMOTE_API}/{name}");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn queue_item_fixtures_give_each_state() {
        assert_eq!(
            parse_queue_item("q", &fixture("queue-item.blocked.json")),
            Ok(BuildState::Queued {
                why: Some("Build #9 is already in progress (ETA:15 sec)".to_owned())
            })
        );
        assert_eq!(
            parse_queue_item("q", &fixture("queue-item.left-cancelled.json")),
            Ok(BuildState::Cancelled)
        );
        assert_eq!(
            parse_queue_item("q", &fixture("queue-item.left-running.json")),
            Ok(BuildState::Running {
                number: BuildNumber(14),
                url: "http://localhost:8082/job/test/14/".to_owned()
            })
        );
    }

    #[test]
    fn every_item_of_the_queue_listing_is_queued() {
        let queue: serde_json::Value =
            serde_json::from_slice(&fixture("queue.json")).expect("queue.json is JSON");
        let items = queue["items"].as_array().expect("items");
        assert_eq!(items.len(), 2);
        for item in items {
            let bytes = serde_json::to_vec(item).expect("re-encode");
            assert_eq!(
                parse_queue_item("q", &bytes),
                Ok(BuildState::Queued {
                    why: Some("Waiting for next available executor".to_owned())
                }),
                "{item}"
            );
        }
    }

    #[test]
    fn queue_reasons_are_kept_as_jenkins_words_them_and_odd_ones_dropped() {
        let why = |json: &str| parse_queue_item("q", json.as_bytes());
        let queued = |w: Option<&str>| {
            Ok(BuildState::Queued {
                why: w.map(str::to_owned),
            })
        };
        // Label-bound executors: Jenkins quotes the label with U+2018/U+2019.
        assert_eq!(
            why(
                r#"{"_class":"hudson.model.Queue$BuildableItem","why":"Waiting for next available executor on \u2018linux\u2019"}"#
            ),
            queued(Some(
                "Waiting for next available executor on \u{2018}linux\u{2019}"
            ))
        );
        // A multi-line CauseOfBlockage comes out on one line.
        assert_eq!(
            why(r#"{"why":"  Blocked by upstream:\n  app #4  "}"#),
            queued(Some("Blocked by upstream: app #4"))
        );
        for odd in [
            r#"{"why":null}"#,
            r#"{"why":""}"#,
            r#"{"why":"   "}"#,
            r#"{"why":42}"#,
            r#"{"why":{"text":"x"}}"#,
            r#"{}"#,
        ] {
            assert_eq!(why(odd), queued(None), "{odd}");
        }
        let long = format!(r#"{{"why":"{}"}}"#, "é".repeat(1000));
        let Ok(BuildState::Queued { why: Some(w) }) = why(&long) else {
            panic!("a long reason is kept, shortened");
        };
        assert_eq!(w.chars().count(), MAX_WHY);
        assert!(w.ends_with('…'));
        // Once the item left the queue, its `why` is null and the state is not Queued.
        assert_eq!(
            parse_queue_item("q", &fixture("queue-item.left-cancelled.json")),
            Ok(BuildState::Cancelled)
        );
    }

    #[test]
    fn build_fixtures_are_finished_successes() {
        for name in ["build.json", "build.git-commit.json"] {
            assert_eq!(
                parse_build("b", &fixture(name)),
                Ok(BuildState::Finished {
                    number: BuildNumber(10),
                    url: "http://localhost:32769/job/fish/10/".to_owned(),
                    outcome: BuildOutcome::Success,
                    commit: None
                }),
                "{name}"
            );
        }
    }

    const SHA: &str = "d27afa0805201322d846d7defc29b82c88d9b5ce";

    /// `build.json` with its `fish` string parameter renamed `COMMIT` and given `value`.
    fn build_with_commit(value: &str) -> Vec<u8> {
        let json = String::from_utf8(fixture("build.json")).expect("UTF-8");
        let edited = json
            .replace(r#""name" : "fish""#, r#""name" : "COMMIT""#)
            .replace(r#""value" : "salmon""#, &format!(r#""value" : {value}"#));
        assert_ne!(edited, json, "the fixture has the fish parameter");
        edited.into_bytes()
    }

    fn commit_of(body: &[u8]) -> Option<Sha> {
        match parse_build("b", body) {
            Ok(BuildState::Finished { commit, .. }) => commit,
            other => panic!("not a finished build: {other:?}"),
        }
    }

    #[test]
    fn the_commit_comes_from_the_builds_parameters_action() {
        // Older Jenkins: parameters action without `_class` (cdancy capture).
        assert_eq!(
            commit_of(&build_with_commit(&format!("\"{SHA}\""))),
            Sha::parse(SHA).ok()
        );
        // Upper-case hex is a sha too, stored lower-case.
        assert_eq!(
            commit_of(&build_with_commit(&format!("\"{}\"", SHA.to_uppercase()))),
            Sha::parse(SHA).ok()
        );
        // Jenkins 2.x: `_class` on every action (the ParametersAction of the queue-item
        // captures, the same export as a build's), next to actions of other plugins.
        let item: serde_json::Value =
            serde_json::from_slice(&fixture("queue-item.blocked.json")).expect("JSON");
        let mut actions = item["actions"].clone();
        assert_eq!(commit_parameter(&actions), None, "no COMMIT in the capture");
        actions[0]["parameters"][0]["name"] = "COMMIT".into();
        actions[0]["parameters"][0]["value"] = SHA.into();
        let body = serde_json::json!({
            "_class": "hudson.model.FreeStyleBuild",
            "actions": actions,
            "building": false,
            "number": 14,
            "result": "FAILURE",
            "url": "http://localhost:8082/job/test/14/",
        });
        assert_eq!(
            parse_build("b", body.to_string().as_bytes()),
            Ok(BuildState::Finished {
                number: BuildNumber(14),
                url: "http://localhost:8082/job/test/14/".to_owned(),
                outcome: BuildOutcome::Failure,
                commit: Sha::parse(SHA).ok(),
            })
        );
    }

    #[test]
    fn anything_but_one_full_sha_in_commit_is_no_commit() {
        for value in [
            "true",
            "null",
            "40",
            r#""""#,
            r#""d27afa0""#,
            r#"" d27afa0805201322d846d7defc29b82c88d9b5ce""#,
            r#""g27afa0805201322d846d7defc29b82c88d9b5ce""#,
            r#"{"sha":"d27afa0805201322d846d7defc29b82c88d9b5ce"}"#,
        ] {
            assert_eq!(commit_of(&build_with_commit(value)), None, "{value}");
        }
        let cases = [
            // Not a list, or entries of unexpected shapes.
            serde_json::json!({"parameters": [{"name": "COMMIT", "value": SHA}]}),
            serde_json::json!([null, 3, "x", {"parameters": "COMMIT"}, {"parameters": [null, 1]}]),
            // Another action's parameters are not the build's.
            serde_json::json!([{"_class": "hudson.plugins.parameterizedtrigger.AbstractBuildParameters",
                "parameters": [{"name": "COMMIT", "value": SHA}]}]),
            // Two parameters actions that disagree.
            serde_json::json!([
                {"_class": "hudson.model.ParametersAction", "parameters": [{"name": "COMMIT", "value": SHA}]},
                {"_class": "hudson.model.ParametersAction",
                 "parameters": [{"name": "COMMIT", "value": "607c3f853f4cb489811fa77bfcad7a638fff898e"}]}
            ]),
            // A sensitive value Jenkins does not export.
            serde_json::json!([{"_class": "hudson.model.ParametersAction",
                "parameters": [{"_class": "hudson.model.PasswordParameterValue", "name": "COMMIT"}]}]),
        ];
        for actions in cases {
            assert_eq!(commit_parameter(&actions), None, "{actions}");
        }
        let twice = serde_json::json!([
            {"_class": "hudson.model.ParametersAction", "parameters": [{"name": "COMMIT", "value": SHA}]},
            {"parameters": [{"name": "COMMIT", "value": SHA}]}
        ]);
        assert_eq!(commit_parameter(&twice), Sha::parse(SHA).ok());
        // A running build has no commit to report, and odd actions never fail the read.
        assert_eq!(
            parse_build(
                "b",
                br#"{"number":3,"url":"u","building":true,"result":null,"actions":7}"#
            ),
            Ok(BuildState::Running {
                number: BuildNumber(3),
                url: "u".to_owned()
            })
        );
    }

    #[test]
    fn the_trees_ask_for_what_the_parsers_read() {
        assert!(QUEUE_ITEM_TREE.split(',').any(|f| f == "why"));
        assert!(BUILD_TREE.contains("actions[parameters[name,value]]"));
    }

    #[test]
    fn builds_run_until_they_have_a_result_and_stop_building() {
        let running = |json: &str| parse_build("b", json.as_bytes());
        let want = Ok(BuildState::Running {
            number: BuildNumber(3),
            url: "http://j/job/x/3/".to_owned(),
        });
        assert_eq!(
            running(r#"{"number":3,"url":"http://j/job/x/3/","building":true,"result":null}"#),
            want
        );
        // Post-processing: no longer building, no result yet.
        assert_eq!(
            running(r#"{"number":3,"url":"http://j/job/x/3/","building":false,"result":null}"#),
            want
        );
        // A result is set before `building` turns false (pipeline post-processing).
        assert_eq!(
            running(r#"{"number":3,"url":"http://j/job/x/3/","building":true,"result":"FAILURE"}"#),
            want
        );
        for (result, outcome) in [
            ("SUCCESS", BuildOutcome::Success),
            ("UNSTABLE", BuildOutcome::Unstable),
            ("FAILURE", BuildOutcome::Failure),
            ("ABORTED", BuildOutcome::Aborted),
            ("NOT_BUILT", BuildOutcome::NotBuilt),
        ] {
            let json = format!(
                r#"{{"_class":"org.jenkinsci.plugins.workflow.job.WorkflowRun","number":3,"url":"http://j/job/x/3/","building":false,"result":"{result}"}}"#
            );
            assert_eq!(
                running(&json),
                Ok(BuildState::Finished {
                    number: BuildNumber(3),
                    url: "http://j/job/x/3/".to_owned(),
                    outcome,
                    commit: None
                })
            );
        }
    }

    #[test]
    fn bad_build_json_is_a_protocol_error_with_the_path() {
        let err = parse_build(
            "read build x #3",
            br#"{"number":3,"url":"u","result":"GREEN"}"#,
        )
        .expect_err("unknown result");
        assert_eq!(
            err.to_string(),
            "unexpected response: read build x #3: unexpected JSON from Jenkins: result: unknown build result \"GREEN\""
        );
        let err = parse_build("read build x #3", br#"{"url":"u"}"#).expect_err("no number");
        assert!(err.to_string().contains("missing field `number`"), "{err}");
        let err = parse_queue_item("q", b"<html>login</html>").expect_err("HTML");
        assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
        let err = parse_queue_item("q", br#"{"executable":{"number":"x","url":"u"}}"#)
            .expect_err("bad number");
        assert!(err.to_string().contains("executable.number"), "{err}");
    }

    #[test]
    fn the_job_fixture_is_a_job() {
        assert_eq!(parse_job("j", &fixture("job.json")), Ok(()));
        assert!(parse_job("j", b"<html>Sign in</html>").is_err());
    }

    #[test]
    fn crumbs_parse_with_or_without_class_and_keep_the_session() {
        let cookies = [
            HeaderValue::from_static("JSESSIONID.4f1c=node0abc; Path=/; HttpOnly"),
            HeaderValue::from_static("other=1"),
        ];
        let crumb = parse_crumb(
            "c",
            br#"{"_class":"hudson.security.csrf.DefaultCrumbIssuer","crumb":"9a8b","crumbRequestField":"Jenkins-Crumb"}"#,
            &cookies,
        )
        .expect("crumb");
        assert_eq!(crumb.field.as_str(), "jenkins-crumb");
        assert_eq!(crumb.value, "9a8b");
        assert!(crumb.value.is_sensitive());
        assert_eq!(
            crumb.cookie.as_ref().map(|c| c.to_str().ok()),
            Some(Some("JSESSIONID.4f1c=node0abc; other=1"))
        );
        assert!(!format!("{crumb:?}").contains("9a8b"));

        let crumb = parse_crumb("c", br#"{"crumb":"x","crumbRequestField":".crumb"}"#, [])
            .expect("old Jenkins field name");
        assert_eq!(crumb.field.as_str(), ".crumb");
        assert!(crumb.cookie.is_none());

        assert!(parse_crumb("c", br#"{"crumb":"x","crumbRequestField":"bad field"}"#, []).is_err());
        assert!(parse_crumb("c", br#"{"crumb":"x"}"#, []).is_err());
    }

    #[test]
    fn queue_items_are_read_from_the_end_of_the_location() {
        let cases = [
            ("http://127.0.0.1:8080/queue/item/42/", Some(42)),
            ("https://ci.example.com/jenkins/queue/item/7", Some(7)),
            ("/queue/item/9/", Some(9)),
            ("http://other-name:8080/queue/item/143/?x=1", Some(143)),
            ("http://j/queue/item/", None),
            ("http://j/queue/item/+4/", None),
            ("http://j/queue/item/abc/", None),
            ("http://j/job/demo/12/", None),
            ("http://j/queue/thing/12/", None),
            ("", None),
        ];
        for (location, want) in cases {
            assert_eq!(
                queue_item_from_location(location),
                want.map(QueueItemId),
                "{location}"
            );
        }
    }

    #[test]
    fn folder_jobs_become_nested_job_segments() {
        let job = JobName::from("team/app/main");
        assert_eq!(
            job_segments(&job),
            Ok(vec!["job", "team", "job", "app", "job", "main"])
        );
        for bad in ["", "a//b", "/a", "a/", "a/../b", "."] {
            let err = job_segments(&JobName::from(bad)).expect_err(bad);
            assert!(
                matches!(&err, Error::InvalidConfig { key, .. } if key == "jobs"),
                "{bad}"
            );
        }
    }
}
