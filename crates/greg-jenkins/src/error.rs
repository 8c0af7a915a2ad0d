//! Jenkins answers and transport failures mapped onto the one error taxonomy,
//! [`greg_core::Error`] (SPEC §1). [`status_error`] is the single place where an HTTP status
//! becomes an error; the client calls it for every answer it does not treat as success.
//!
//! Messages are built from the operation (`trigger demo-test`), the status and, for plain-text
//! answers, the first line Jenkins wrote. They never contain a URL with credentials (the
//! client sends credentials in a header, never in the URL) nor the API token.

use greg_core::Error;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, RETRY_AFTER};
use std::time::Duration;

/// The text of Jenkins' CSRF refusal, `CrumbFilter.java` (jenkinsci/jenkins,
/// `core/src/main/java/hudson/security/csrf/CrumbFilter.java`):
/// `sendError(SC_FORBIDDEN, "No valid crumb was included in the request")`. Older releases
/// wrote "... in request"; both start with this, compared case-insensitively.
const CRUMB_REFUSAL: &str = "no valid crumb";

/// The text of `ParameterizedJobMixIn.doBuildWithParameters` for a job without parameters
/// (`"This build is not parameterized!"`, answered 400 or, on old releases, 500).
const NOT_PARAMETERIZED: &str = "is not parameterized";

/// The most of a plain-text answer quoted in an error message, in characters.
const QUOTE_LIMIT: usize = 200;

/// True when a 403 answer is Jenkins refusing a POST for a missing or stale CSRF crumb (as
/// opposed to a user without the permission).
pub(crate) fn is_crumb_refusal(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::FORBIDDEN
        && String::from_utf8_lossy(body)
            .to_ascii_lowercase()
            .contains(CRUMB_REFUSAL)
}

/// Maps a Jenkins answer that the operation `op` does not accept onto [`Error`]:
///
/// | status | error |
/// |---|---|
/// | 3xx | `Protocol`: a redirect greg does not follow (login page, http → https) |
/// | 400, 500 "is not parameterized" | `InvalidConfig{key: "jobs"}` |
/// | 401 | `Unauthenticated` |
/// | 403 | `PermissionDenied` (crumb refusals are retried by the client before this) |
/// | 404, 410 | `NotFound` |
/// | 408 | `Transient` |
/// | 409 | `Conflict` |
/// | 412 | `PreconditionFailed` |
/// | 429 | `RateLimited{retry_after}` from `Retry-After` in seconds (an HTTP date gives `None`) |
/// | 5xx | `Transient` |
/// | other | `Protocol` |
pub(crate) fn status_error(
    op: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    let quoted = quote(headers, body);
    let message = format!("{op}: Jenkins answered {status}{quoted}");
    let body_text = String::from_utf8_lossy(body);
    if (status == StatusCode::BAD_REQUEST || status == StatusCode::INTERNAL_SERVER_ERROR)
        && body_text.contains(NOT_PARAMETERIZED)
    {
        return Error::InvalidConfig {
            key: "jobs".to_owned(),
            message: format!(
                "{op}: the job has no parameters; greg sends SOURCE, COMMIT, CONTEXT, REPORT, \
                 BRANCH (SPEC §6), so the job must declare them"
            ),
        };
    }
    match status.as_u16() {
        300..=399 => {
            let to = headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(redact_location)
                .unwrap_or_else(|| "nowhere".to_owned());
            Error::Protocol {
                message: format!(
                    "{message}, a redirect to {to} that greg does not follow; \
                     check the builder url (scheme, path prefix, single sign-on)"
                ),
            }
        }
        401 => Error::Unauthenticated { message },
        403 => Error::PermissionDenied { message },
        404 | 410 => Error::NotFound { what: message },
        408 => Error::Transient { message },
        409 => Error::Conflict { message },
        412 => Error::PreconditionFailed { message },
        429 => Error::RateLimited {
            retry_after: retry_after(headers),
        },
        500..=599 => Error::Transient { message },
        _ => Error::Protocol { message },
    }
}

/// Maps a failure to get any answer at all: timeouts and connection failures are
/// `Transient`; a request reqwest could not build is `Protocol`.
pub(crate) fn transport_error(op: &str, err: &reqwest::Error) -> Error {
    if err.is_builder() {
        return Error::Protocol {
            message: format!("{op}: cannot build the request: {}", chain(err)),
        };
    }
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect to Jenkins"
    } else {
        "request failed"
    };
    Error::Transient {
        message: format!("{op}: {what}: {}", chain(err)),
    }
}

/// Maps a JSON body that does not have the expected shape, with the JSON path.
pub(crate) fn json_error(op: &str, err: &serde_path_to_error::Error<serde_json::Error>) -> Error {
    Error::Protocol {
        message: format!("{op}: unexpected JSON from Jenkins: {err}"),
    }
}

/// `Retry-After` in seconds (RFC 9110 §10.2.3); the HTTP-date form is not parsed.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `: <first line>` of a plain-text answer, at most [`QUOTE_LIMIT`] characters; empty for
/// HTML pages and other types.
fn quote(headers: &HeaderMap, body: &[u8]) -> String {
    let plain = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/plain")
        });
    if !plain {
        return String::new();
    }
    let text = String::from_utf8_lossy(body);
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!(": {}", line.chars().take(QUOTE_LIMIT).collect::<String>()),
        None => String::new(),
    }
}

/// A redirect target without user-info, or `an unparseable location`.
fn redact_location(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(mut url) => {
            // Both calls only fail on URLs that cannot have credentials at all.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) if location.starts_with('/') && !location.contains('@') => location.to_owned(),
        Err(_) => "an unparseable location".to_owned(),
    }
}

/// The error and its sources on one line, without the request URL.
fn chain(err: &reqwest::Error) -> String {
    let mut out = String::new();
    let mut current: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = current {
        let text = match e.downcast_ref::<reqwest::Error>() {
            // reqwest prints "error sending request for url (...)": drop the URL part.
            Some(r) if r.url().is_some() => {
                let shown = r.to_string();
                shown
                    .split(" for url (")
                    .next()
                    .map(str::to_owned)
                    .unwrap_or(shown)
            }
            _ => e.to_string(),
        };
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        current = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn map(status: u16, pairs: &[(&'static str, &'static str)], body: &str) -> Error {
        let status = StatusCode::from_u16(status).expect("valid status");
        status_error("trigger demo", status, &headers(pairs), body.as_bytes())
    }

    #[test]
    fn statuses_map_onto_the_taxonomy() {
        let html = "<html><body>Error</body></html>";
        let message = |status: &str| format!("trigger demo: Jenkins answered {status}");
        assert_eq!(
            map(401, &[], html),
            Error::Unauthenticated {
                message: message("401 Unauthorized")
            }
        );
        assert_eq!(
            map(403, &[], html),
            Error::PermissionDenied {
                message: message("403 Forbidden")
            }
        );
        assert_eq!(
            map(404, &[], html),
            Error::NotFound {
                what: message("404 Not Found")
            }
        );
        assert!(matches!(map(410, &[], html), Error::NotFound { .. }));
        assert!(matches!(map(408, &[], html), Error::Transient { .. }));
        assert_eq!(
            map(409, &[], html),
            Error::Conflict {
                message: message("409 Conflict")
            }
        );
        assert!(matches!(
            map(412, &[], html),
            Error::PreconditionFailed { .. }
        ));
        for status in [500, 502, 503, 504] {
            let err = map(status, &[], html);
            assert!(matches!(err, Error::Transient { .. }), "{status}: {err:?}");
            assert!(err.is_retryable());
        }
        for status in [400, 405, 415, 422] {
            let err = map(status, &[], html);
            assert!(matches!(err, Error::Protocol { .. }), "{status}: {err:?}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn rate_limits_carry_retry_after_in_seconds() {
        assert_eq!(
            map(429, &[("retry-after", "120")], ""),
            Error::RateLimited {
                retry_after: Some(Duration::from_secs(120))
            }
        );
        assert_eq!(
            map(429, &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], ""),
            Error::RateLimited { retry_after: None }
        );
        assert_eq!(map(429, &[], ""), Error::RateLimited { retry_after: None });
    }

    #[test]
    fn redirects_are_protocol_errors_without_credentials() {
        let err = map(
            302,
            &[(
                "location",
                "https://greg:s3cr3t@sso.example.com/login?from=%2F",
            )],
            "",
        );
        let Error::Protocol { message } = &err else {
            panic!("{err:?}");
        };
        assert!(
            message.contains("https://sso.example.com/login?from=%2F"),
            "{message}"
        );
        assert!(!message.contains("s3cr3t"), "{message}");
        let err = map(301, &[], "");
        assert!(err.to_string().contains("a redirect to nowhere"), "{err}");
    }

    #[test]
    fn plain_text_answers_are_quoted_on_one_line() {
        let err = map(
            400,
            &[("content-type", "text/plain;charset=UTF-8")],
            "\n  Nothing is submitted \nsecond line",
        );
        assert_eq!(
            err.to_string(),
            "unexpected response: trigger demo: Jenkins answered 400 Bad Request: Nothing is submitted"
        );
        let long = "x".repeat(1000);
        let err = map(400, &[("content-type", "text/plain")], &long);
        assert!(err.to_string().len() < 300, "{err}");
    }

    #[test]
    fn a_job_without_parameters_is_a_configuration_error() {
        for status in [400, 500] {
            let err = map(
                status,
                &[],
                "java.lang.IllegalStateException: This build is not parameterized!",
            );
            assert!(
                matches!(&err, Error::InvalidConfig { key, .. } if key == "jobs"),
                "{status}: {err:?}"
            );
        }
    }

    #[test]
    fn crumb_refusals_are_recognized_by_jenkins_text() {
        let page =
            "<html><head><title>Error 403 No valid crumb was included in the request</title>";
        assert!(is_crumb_refusal(StatusCode::FORBIDDEN, page.as_bytes()));
        assert!(is_crumb_refusal(
            StatusCode::FORBIDDEN,
            b"No valid crumb was included in request"
        ));
        assert!(!is_crumb_refusal(
            StatusCode::FORBIDDEN,
            b"greg is missing the Job/Build permission"
        ));
        assert!(!is_crumb_refusal(StatusCode::BAD_REQUEST, page.as_bytes()));
    }

    #[tokio::test]
    async fn connection_failures_are_transient_and_hide_the_url() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // A port that was just free: nothing listens on it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let client = reqwest::Client::new();
        let err = client
            .get(format!("http://127.0.0.1:{port}/secret-path"))
            .send()
            .await
            .expect_err("nothing listens");
        let mapped = transport_error("read build demo #1", &err);
        assert!(
            matches!(&mapped, Error::Transient { message } if message.starts_with("read build demo #1: cannot connect to Jenkins")),
            "{mapped:?}"
        );
        assert!(!mapped.to_string().contains("secret-path"), "{mapped}");
    }

    #[test]
    fn bad_json_is_a_protocol_error_with_the_path() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Build {
            number: u64,
        }
        let mut de = serde_json::Deserializer::from_str(r#"{"number": "ten"}"#);
        let err = serde_path_to_error::deserialize::<_, Build>(&mut de).expect_err("bad type");
        let mapped = json_error("read build demo #10", &err);
        assert!(
            matches!(&mapped, Error::Protocol { message } if message.starts_with("read build demo #10: unexpected JSON from Jenkins: number: invalid type")),
            "{mapped:?}"
        );
    }
}
