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

use greg_core::Error;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use std::time::Duration;

/// Longest vendor message kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// Maps one failed Bitbucket answer onto the boundary taxonomy.
///
/// - `what`: the object or operation, e.g. `pull request acme/demo#5`; used as
///   [`Error::NotFound::what`] and as the prefix of every other message.
/// - `status`: the HTTP status (any non-2xx).
/// - `headers`: the answer's headers; `Retry-After` (seconds) is read.
/// - `body`: the answer's body; the vendor message is taken from it (see
///   [`vendor_message`]).
///
/// | status | variant |
/// |---|---|
/// | 401 | `Unauthenticated` |
/// | 403 | `PermissionDenied` |
/// | 404, 410 | `NotFound` |
/// | 409 | `Conflict` (Server: stale pull-request version, merge vetoes; Cloud: merge conflicts) |
/// | 412 | `PreconditionFailed` |
/// | 408, 5xx | `Transient` |
/// | 429 | `RateLimited`, with `Retry-After` seconds when sent |
/// | 3xx | `Protocol`: a redirect greg does not follow (wrong `api_url`, a login page) |
/// | anything else (400, other 4xx) | `Protocol` |
pub fn from_status(what: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
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
        409 => Error::Conflict { message: described },
        412 => Error::PreconditionFailed { message: described },
        429 => Error::RateLimited {
            retry_after: retry_after(headers),
        },
        408 | 500..=599 => Error::Transient { message: described },
        _ => Error::Protocol { message: described },
    }
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
                "conflict: pull request acme/demo#5: 409 You are attempting to modify a pull request based on out-of-date information.",
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
}
