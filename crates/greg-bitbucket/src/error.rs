//! The one place where Bitbucket's HTTP failures become [`greg_core::Error`] (SPEC §1):
//! [`from_status`] for answers, [`from_transport`] for requests that got no answer.
//!
//! Status codes follow the vendors' documentation: Cloud
//! (<https://developer.atlassian.com/cloud/bitbucket/rest/intro/#errors>, rate limits:
//! <https://support.atlassian.com/bitbucket-cloud/docs/api-request-limits/>) and Server/Data
//! Center (<https://developer.atlassian.com/server/bitbucket/rest/> "Errors": 409 for a stale
//! pull-request version or a merge veto; rate limiting answers 429 with `Retry-After`).
//!
//! Messages are built from `what` (chosen by greg), the status and the vendor's own message
//! (Cloud `error.message`, Server `errors[0].message`); request headers and URLs are never
//! included, so credentials cannot leak into an error.
//!
//! # Merges refused by a rule
//!
//! A pull-request merge that a rule blocks is [`Error::Refused`] with the vendor's reasons,
//! which greg quotes to people; a merge conflict stays [`Error::Conflict`]:
//! - Server/Data Center answers 409 with
//!   `com.atlassian.bitbucket.pull.PullRequestMergeVetoedException`, `conflicted` and the merge
//!   checks' `vetoes[]{summaryMessage, detailedMessage}`
//!   (<https://developer.atlassian.com/server/bitbucket/rest/> "Merge pull request"; a captured
//!   body in yontrack/yontrack#1120: `{"errors":[{"context":null,"message":"Merging the pull
//!   request has been vetoed.","exceptionName":"com.atlassian.bitbucket.pull.PullRequestMergeVetoedException",
//!   "conflicted":false,"vetoes":[{"summaryMessage":"Not all required builds are successful
//!   yet","detailedMessage":"You still need a minimum of one successful build before this pull
//!   request can be merged."}]}]}`); `conflicted: true` is a conflict, and
//!   `PullRequestOutOfDateException` (the `version` greg sent is stale) a failed precondition.
//! - Cloud answers 400 `{"type": "error", "error": {"message", "fields": {"merge_checks":
//!   [...]}}}` when a branch restriction or merge check blocks the merge ("You can't merge
//!   until ..."), and the same 400 for a conflict ("Conflicts during merge.",
//!   hirakiuc/tinybucket#51; "You can't merge until you resolve all merge conflicts.").

use greg_core::Error;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use std::time::Duration;

/// Longest vendor message kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// What greg asked Bitbucket to do, when an answer means different things per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Operation {
    /// Any call whose failures need no special reading.
    #[default]
    Other,
    /// Cloud `POST .../pullrequests/{id}/merge`: 400 is a merge check or a conflict.
    CloudMerge,
    /// Server `POST .../pull-requests/{id}/merge?version=N`: 409 is a stale version, a
    /// conflict or a veto.
    ServerMerge,
}

/// Maps one failed Bitbucket answer onto the boundary taxonomy.
///
/// - `op`: what greg asked for (see [`Operation`]).
/// - `what`: the object or operation, e.g. `pull request acme/demo#5`; used as
///   [`Error::NotFound::what`] and as the prefix of every other message.
/// - `status`: the HTTP status (any non-2xx).
/// - `headers`: the answer's headers; `Retry-After` (seconds) is read.
/// - `body`: the answer's body; the vendor message is taken from it (see
///   [`vendor_message`]), and for merges the vetoes and merge checks (module documentation).
///
/// | status | operation | variant |
/// |---|---|---|
/// | 401 | any | `Unauthenticated` |
/// | 403 | any | `PermissionDenied` |
/// | 404, 410 | any | `NotFound` |
/// | 409 `PullRequestOutOfDateException` | any | `PreconditionFailed` (stale pull-request version) |
/// | 409 `PullRequestMergeVetoedException` with `conflicted: false` | any | `Refused` with the vetoes |
/// | 409 otherwise | any | `Conflict` (Server: merge conflicts; Cloud: conflicts) |
/// | 400 naming a conflict | `CloudMerge` | `Conflict` |
/// | 400 otherwise | `CloudMerge` | `Refused` with the merge checks (or `error.message`) |
/// | 412 | any | `PreconditionFailed` |
/// | 408, 5xx | any | `Transient` |
/// | 429 | any | `RateLimited`, with `Retry-After` seconds when sent |
/// | 3xx | any | `Protocol`: a redirect greg does not follow (wrong `api_url`, a login page) |
/// | anything else (400, other 4xx) | any | `Protocol` |
pub fn from_status(
    op: Operation,
    what: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    let message = vendor_message(status, body);
    let described = format!("{what}: {} {message}", status.as_u16());
    match status.as_u16() {
        300..=399 => Error::Protocol {
            message: format!(
                "{described}: a redirect greg does not follow; check the provider's api_url"
            ),
        },
        401 => Error::Unauthenticated { message: described },
        403 => Error::PermissionDenied { message: described },
        404 | 410 => Error::NotFound {
            what: what.to_owned(),
        },
        409 => match server_merge_refusal(body) {
            Some(MergeRefusal::OutOfDate) => Error::PreconditionFailed { message: described },
            Some(MergeRefusal::Vetoed(reasons)) => Error::Refused { message: reasons },
            Some(MergeRefusal::Conflicted) | None => Error::Conflict { message: described },
        },
        400 if op == Operation::CloudMerge => match cloud_merge_checks(body) {
            checks if is_conflict(&checks, &message) => Error::Conflict { message: described },
            checks if checks.is_empty() => Error::Refused { message },
            checks => Error::Refused {
                message: one_line(&checks.join("; ")),
            },
        },
        412 => Error::PreconditionFailed { message: described },
        429 => Error::RateLimited {
            retry_after: retry_after(headers),
        },
        408 | 500..=599 => Error::Transient { message: described },
        _ => Error::Protocol { message: described },
    }
}

/// What a Server 409 says about a merge.
#[derive(Debug, PartialEq, Eq)]
enum MergeRefusal {
    /// `PullRequestOutOfDateException`: the `version` greg sent is stale.
    OutOfDate,
    /// `conflicted: true`.
    Conflicted,
    /// Vetoed by merge checks: their messages, `summary: detail` joined by `; `.
    Vetoed(String),
}

/// Reads a Server 409 body: `None` when it is none of [`MergeRefusal`] (e.g. a stale comment
/// version, which is a conflict like any other 409).
fn server_merge_refusal(body: &[u8]) -> Option<MergeRefusal> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ServerError>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ServerError {
        message: Option<String>,
        exception_name: Option<String>,
        #[serde(default)]
        conflicted: bool,
        #[serde(default)]
        vetoes: Vec<Veto>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Veto {
        summary_message: Option<String>,
        detailed_message: Option<String>,
    }
    let errors = serde_json::from_slice::<Errors>(body).ok()?.errors;
    let named = |suffix: &str| {
        errors.iter().any(|e| {
            e.exception_name
                .as_deref()
                .is_some_and(|n| n.ends_with(suffix))
        })
    };
    if named(".PullRequestOutOfDateException") {
        return Some(MergeRefusal::OutOfDate);
    }
    if errors.iter().any(|e| e.conflicted) {
        return Some(MergeRefusal::Conflicted);
    }
    if !named(".PullRequestMergeVetoedException") {
        return None;
    }
    let mut reasons: Vec<String> = errors
        .iter()
        .flat_map(|e| &e.vetoes)
        .map(|v| {
            let parts: Vec<&str> = [&v.summary_message, &v.detailed_message]
                .into_iter()
                .flatten()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .collect();
            parts.join(": ")
        })
        .filter(|r| !r.is_empty())
        .collect();
    if reasons.is_empty() {
        reasons = errors.into_iter().filter_map(|e| e.message).collect();
    }
    // Detailed messages may span lines: keep them all, on one line.
    let joined = reasons.join("; ");
    let flat: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Some(MergeRefusal::Vetoed(one_line(&flat.join(" "))))
}

/// Cloud's `error.fields.merge_checks` (strings), empty when absent.
fn cloud_merge_checks(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/fields/merge_checks")
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(serde_json::Value::as_str)
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
        })
        .unwrap_or_default()
}

/// True when a Cloud merge refusal is a merge conflict rather than a rule.
fn is_conflict(checks: &[String], message: &str) -> bool {
    std::iter::once(message)
        .chain(checks.iter().map(String::as_str))
        .any(|m| m.to_ascii_lowercase().contains("conflict"))
}

/// Maps a request that got no answer: timeouts and connection failures are `Transient`; a
/// request reqwest could not build is `Protocol`. The URL is left out of the message.
pub fn from_transport(what: &str, err: &reqwest::Error) -> Error {
    if err.is_builder() {
        return Error::Protocol {
            message: format!("{what}: cannot build the request: {}", chain(err)),
        };
    }
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect to Bitbucket"
    } else {
        "request failed"
    };
    Error::Transient {
        message: format!("{what}: {kind}: {}", chain(err)),
    }
}

/// The vendor's message from an error body, on one line: Cloud's `error.message` (with
/// `error.detail` when it is a string), Server's `errors[].message` joined by `; `, else the first line
/// of a plain-text body, else the status reason.
pub fn vendor_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct CloudError {
        error: CloudDetail,
    }
    #[derive(Deserialize)]
    struct CloudDetail {
        message: Option<String>,
        /// A string, or an object (scope errors list the granted and required scopes).
        detail: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct ServerErrors {
        errors: Vec<ServerError>,
    }
    #[derive(Deserialize)]
    struct ServerError {
        message: Option<String>,
    }
    let from_json = if let Ok(c) = serde_json::from_slice::<CloudError>(body) {
        let detail = c.error.detail.and_then(|d| d.as_str().map(str::to_owned));
        let parts: Vec<String> = [c.error.message, detail]
            .into_iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .collect();
        parts.join(": ")
    } else if let Ok(s) = serde_json::from_slice::<ServerErrors>(body) {
        let parts: Vec<String> = s
            .errors
            .into_iter()
            .filter_map(|e| e.message)
            .filter(|m| !m.trim().is_empty())
            .collect();
        parts.join("; ")
    } else {
        String::new()
    };
    let text = if !from_json.trim().is_empty() {
        from_json
    } else {
        let raw = String::from_utf8_lossy(body);
        let plain = raw.trim_start();
        if plain.is_empty() || plain.starts_with('<') || plain.starts_with('{') {
            // An HTML page or unrecognised JSON says nothing useful on one line.
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            plain.to_owned()
        }
    };
    one_line(&text)
}

/// `Retry-After` in seconds (RFC 9110 §10.2.3); the HTTP-date form is not parsed.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The first line of a message, at most [`MAX_MESSAGE_CHARS`] characters.
pub(crate) fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    let mut out: String = first.chars().take(MAX_MESSAGE_CHARS).collect();
    if first.chars().count() > MAX_MESSAGE_CHARS {
        out.push('…');
    }
    out
}

/// An error and its sources on one line, without the request URL.
fn chain(err: &reqwest::Error) -> String {
    let mut out = String::new();
    let mut current: Option<&dyn std::error::Error> = Some(err);
    let mut first = true;
    while let Some(e) = current {
        let text = if first {
            // reqwest prints "error sending request for url (...)": drop the URL.
            first = false;
            let shown = e.to_string();
            shown
                .split(" for url (")
                .next()
                .unwrap_or(&shown)
                .to_owned()
        } else {
            e.to_string()
        };
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        current = e.source();
    }
    one_line(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, headers: &[(&'static str, &str)], body: &str) -> Error {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("header value"));
        }
        from_status(
            Operation::Other,
            "pull request acme/demo#5",
            StatusCode::from_u16(status).expect("status"),
            &map,
            body.as_bytes(),
        )
    }

    /// Cloud's error shape (`{"type": "error", "error": {"message": ...}}`,
    /// <https://developer.atlassian.com/cloud/bitbucket/rest/intro/#errors>).
    const CLOUD_404: &str =
        r#"{"type": "error", "error": {"message": "Repository acme/demo not found"}}"#;
    /// Server's error shape (`{"errors": [{"context", "message", "exceptionName"}]}`).
    const SERVER_409: &str = r#"{"errors":[{"context":null,"message":"You are attempting to modify a pull request based on out-of-date information.","exceptionName":"com.atlassian.bitbucket.pull.PullRequestOutOfDateException","currentVersion":3,"expectedVersion":2}]}"#;

    #[test]
    fn status_table() {
        let cases: &[(u16, &str, &str)] = &[
            (
                401,
                "",
                "unauthenticated: pull request acme/demo#5: 401 Unauthorized",
            ),
            (
                403,
                r#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":{"granted":["account"],"required":["pullrequest"]}}}"#,
                "permission denied: pull request acme/demo#5: 403 Your credentials lack one or more required privilege scopes.",
            ),
            (404, CLOUD_404, "not found: pull request acme/demo#5"),
            (410, "", "not found: pull request acme/demo#5"),
            (
                409,
                SERVER_409,
                "precondition failed: pull request acme/demo#5: 409 You are attempting to modify a pull request based on out-of-date information.",
            ),
            (
                412,
                "",
                "precondition failed: pull request acme/demo#5: 412 Precondition Failed",
            ),
            (429, "", "rate limited (retry after None)"),
            (
                408,
                "",
                "transient: pull request acme/demo#5: 408 Request Timeout",
            ),
            (
                502,
                "<html>Bad gateway</html>",
                "transient: pull request acme/demo#5: 502 Bad Gateway",
            ),
            (
                400,
                r#"{"type":"error","error":{"message":"Bad request","detail":"state: not a valid choice"}}"#,
                "unexpected response: pull request acme/demo#5: 400 Bad request: state: not a valid choice",
            ),
            (
                302,
                "",
                "unexpected response: pull request acme/demo#5: 302 Found: a redirect greg does not follow; check the provider's api_url",
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(map(*status, &[], body).to_string(), *expected, "{status}");
        }
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        assert_eq!(
            map(429, &[("retry-after", "30")], ""),
            Error::RateLimited {
                retry_after: Some(Duration::from_secs(30))
            }
        );
        assert!(map(429, &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], "").is_retryable());
    }

    #[test]
    fn vendor_messages_from_both_flavors_and_plain_text() {
        let s = |status: u16, body: &str| {
            vendor_message(
                StatusCode::from_u16(status).expect("status"),
                body.as_bytes(),
            )
        };
        assert_eq!(s(404, CLOUD_404), "Repository acme/demo not found");
        assert_eq!(
            s(
                400,
                r#"{"errors":[{"message":"a"},{"message":"b"},{"message":null}]}"#
            ),
            "a; b"
        );
        assert_eq!(
            s(503, "Service Unavailable\nretry later"),
            "Service Unavailable"
        );
        assert_eq!(s(500, ""), "Internal Server Error");
        assert_eq!(s(500, r#"{"unexpected":true}"#), "Internal Server Error");
        let long = format!("{}\nsecond", "x".repeat(400));
        let cut = s(500, &long);
        assert!(cut.ends_with('…') && !cut.contains("second"));
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    fn merge(op: Operation, status: u16, body: &str) -> Error {
        from_status(
            op,
            "merge of pull request acme/demo#5",
            StatusCode::from_u16(status).expect("status"),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    /// Server's veto, as captured in yontrack/yontrack#1120.
    const SERVER_VETO: &str = r#"{"errors":[{"context":null,"message":"Merging the pull request has been vetoed.","exceptionName":"com.atlassian.bitbucket.pull.PullRequestMergeVetoedException","conflicted":false,"vetoes":[{"summaryMessage":"Not all required builds are successful yet","detailedMessage":"You still need a minimum of one successful build before this pull request can be merged."}]}]}"#;

    #[test]
    fn server_merge_vetoes_are_refusals_with_their_messages() {
        let err = merge(Operation::ServerMerge, 409, SERVER_VETO);
        assert_eq!(
            err,
            Error::Refused {
                message: "Not all required builds are successful yet: You still need a minimum of one successful build before this pull request can be merged.".to_owned()
            }
        );
        assert!(!err.is_retryable());

        let two = r#"{"errors":[{"context":null,"message":"Merging the pull request has been vetoed.","exceptionName":"com.atlassian.bitbucket.pull.PullRequestMergeVetoedException","conflicted":false,"vetoes":[{"summaryMessage":"Requires approvals","detailedMessage":"You need 2 more approvals before this pull request can be merged."},{"summaryMessage":"Open tasks","detailedMessage":""}]}]}"#;
        assert_eq!(
            merge(Operation::ServerMerge, 409, two),
            Error::Refused {
                message: "Requires approvals: You need 2 more approvals before this pull request can be merged.; Open tasks".to_owned()
            }
        );
        // A veto without veto details quotes the exception's message.
        let bare = r#"{"errors":[{"context":null,"message":"Merging the pull request has been vetoed.","exceptionName":"com.atlassian.bitbucket.pull.PullRequestMergeVetoedException","conflicted":false,"vetoes":[]}]}"#;
        assert_eq!(
            merge(Operation::ServerMerge, 409, bare),
            Error::Refused {
                message: "Merging the pull request has been vetoed.".to_owned()
            }
        );
    }

    #[test]
    fn server_conflicts_and_stale_versions_are_not_refusals() {
        let conflicted = r#"{"errors":[{"context":null,"message":"Pull request #5 can not be merged: it has merge conflicts.","exceptionName":"com.atlassian.bitbucket.pull.PullRequestMergeVetoedException","conflicted":true,"vetoes":[]}]}"#;
        assert!(matches!(
            merge(Operation::ServerMerge, 409, conflicted),
            Error::Conflict { .. }
        ));
        assert!(matches!(
            merge(Operation::ServerMerge, 409, SERVER_409),
            Error::PreconditionFailed { .. }
        ));
        assert!(matches!(
            merge(
                Operation::Other,
                409,
                r#"{"errors":[{"message":"x","exceptionName":"com.atlassian.bitbucket.comment.CommentOutOfDateException"}]}"#
            ),
            Error::Conflict { .. }
        ));
    }

    #[test]
    fn cloud_merge_checks_are_refusals_and_conflicts_stay_conflicts() {
        let checks = r#"{"type":"error","error":{"message":"Bad request","fields":{"merge_checks":["You can't merge until you have at least 2 approvals.","You can't merge until all builds pass."]}}}"#;
        assert_eq!(
            merge(Operation::CloudMerge, 400, checks),
            Error::Refused {
                message: "You can't merge until you have at least 2 approvals.; You can't merge until all builds pass.".to_owned()
            }
        );
        let restriction = r#"{"type":"error","error":{"message":"You can't merge into main: the branch restriction requires 1 approval."}}"#;
        assert_eq!(
            merge(Operation::CloudMerge, 400, restriction),
            Error::Refused {
                message: "You can't merge into main: the branch restriction requires 1 approval."
                    .to_owned()
            }
        );
        let conflict = r#"{"type":"error","error":{"message":"Bad request","fields":{"merge_checks":["You can't merge until you resolve all merge conflicts."]}}}"#;
        assert!(matches!(
            merge(Operation::CloudMerge, 400, conflict),
            Error::Conflict { .. }
        ));
        // hirakiuc/tinybucket#51.
        let old = r#"{"error": {"message": "Conflicts during merge."}}"#;
        assert!(matches!(
            merge(Operation::CloudMerge, 400, old),
            Error::Conflict { .. }
        ));
        // A 400 elsewhere is still greg's mistake.
        assert!(matches!(
            merge(Operation::Other, 400, checks),
            Error::Protocol { .. }
        ));
    }
}
