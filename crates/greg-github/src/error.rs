//! The one place where GitHub's HTTP failures become [`greg_core::Error`] (SPEC §1).
//!
//! Status codes follow GitHub's REST documentation
//! (<https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api>) and its
//! rate-limit rules
//! (<https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api>): a
//! primary limit is a 403 or 429 with `X-RateLimit-Remaining: 0`, a secondary limit a 403 or
//! 429 with `Retry-After` (or a message naming the rate limit).
//!
//! Messages are built from `what` (chosen by greg), the status and GitHub's own `message`;
//! request headers are never included, so the token cannot leak into an error.

use greg_core::Error;
use http::{HeaderMap, StatusCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest vendor message kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// Maps one failed GitHub response onto the boundary taxonomy.
///
/// - `what`: the object or operation, e.g. `pull request acme/demo#5`; used as
///   [`Error::NotFound::what`] and as the prefix of every other message.
/// - `status`: the HTTP status (any non-2xx).
/// - `headers`: the response headers; `Retry-After` (seconds), `X-RateLimit-Remaining` and
///   `X-RateLimit-Reset` (epoch seconds) are read.
/// - `message`: GitHub's `message` field, or the status reason when the body had none.
///
/// | status | variant |
/// |---|---|
/// | 401 | `Unauthenticated` |
/// | 403 with `X-RateLimit-Remaining: 0`, `Retry-After` or a "rate limit" message | `RateLimited` |
/// | 403 otherwise | `PermissionDenied` |
/// | 404, 410 | `NotFound` |
/// | 405, 409 | `Conflict` (405 is GitHub's "pull request is not mergeable") |
/// | 412, 422 | `PreconditionFailed` (422: "No commit found for SHA", validation failed) |
/// | 429 | `RateLimited` |
/// | 5xx | `Transient` |
/// | anything else (400, 3xx, other 4xx) | `Protocol` |
pub fn from_status(what: &str, status: StatusCode, headers: &HeaderMap, message: &str) -> Error {
    let message = one_line(message);
    let described = format!("{what}: {} {message}", status.as_u16());
    match status.as_u16() {
        401 => Error::Unauthenticated { message: described },
        403 if is_rate_limit(headers, &message) => Error::RateLimited {
            retry_after: retry_after(headers, SystemTime::now()),
        },
        403 => Error::PermissionDenied { message: described },
        404 | 410 => Error::NotFound {
            what: what.to_owned(),
        },
        405 | 409 => Error::Conflict { message: described },
        412 | 422 => Error::PreconditionFailed { message: described },
        429 => Error::RateLimited {
            retry_after: retry_after(headers, SystemTime::now()),
        },
        500..=599 => Error::Transient { message: described },
        _ => Error::Protocol { message: described },
    }
}

/// Maps an error raised by octocrab itself (before or instead of an HTTP answer).
///
/// `GitHub { source }` (a non-2xx answer) goes through [`from_status`]; connection, TLS,
/// timeout and body-read failures are [`Error::Transient`]; an answer that is not the
/// expected JSON or UTF-8 is [`Error::Protocol`]; an invalid URL or header is
/// [`Error::InvalidConfig`]. Backtraces and request headers are not included.
pub fn from_octocrab(what: &str, err: octocrab::Error) -> Error {
    use octocrab::Error as O;
    match err {
        O::GitHub { source, .. } => {
            let headers = source.headers.clone().unwrap_or_default();
            from_status(what, source.status_code, &headers, &source.message)
        }
        O::Service { source, .. } => Error::Transient {
            message: format!("{what}: {}", one_line(&chain(source.as_ref()))),
        },
        O::Hyper { source, .. } => Error::Transient {
            message: format!("{what}: {}", one_line(&chain(&source))),
        },
        O::Json { source, .. } => Error::Protocol {
            message: format!(
                "{what}: unexpected JSON at {}: {}",
                source.path(),
                one_line(&source.inner().to_string())
            ),
        },
        O::Serde { source, .. } => Error::Protocol {
            message: format!("{what}: unexpected JSON: {}", one_line(&source.to_string())),
        },
        O::InvalidUtf8 { .. } => Error::Protocol {
            message: format!("{what}: the response body is not UTF-8"),
        },
        O::Uri { .. } | O::UriParse { .. } => Error::InvalidConfig {
            key: "api_url".to_owned(),
            message: format!("{what}: the request URL is not valid"),
        },
        O::InvalidHeaderValue { .. } => Error::InvalidConfig {
            key: "password".to_owned(),
            message: format!("{what}: a header value is not valid"),
        },
        other => Error::Protocol {
            // Only the variant name: some octocrab variants print backtraces.
            message: format!("{what}: client error ({})", variant_name(&other)),
        },
    }
}

/// True when a 403 is a rate limit rather than a refusal.
fn is_rate_limit(headers: &HeaderMap, message: &str) -> bool {
    header_u64(headers, "x-ratelimit-remaining") == Some(0)
        || headers.contains_key(http::header::RETRY_AFTER)
        || message.to_ascii_lowercase().contains("rate limit")
}

/// The delay GitHub asked for: `Retry-After` seconds, else the time until
/// `X-RateLimit-Reset` when the primary limit is exhausted; `None` when neither says.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(secs) = header_u64(headers, "retry-after") {
        return Some(Duration::from_secs(secs));
    }
    if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
        let reset = UNIX_EPOCH + Duration::from_secs(header_u64(headers, "x-ratelimit-reset")?);
        return reset.duration_since(now).ok();
    }
    None
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The first line of a vendor message, at most [`MAX_MESSAGE_CHARS`] characters.
pub(crate) fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    let mut out: String = first.chars().take(MAX_MESSAGE_CHARS).collect();
    if first.chars().count() > MAX_MESSAGE_CHARS {
        out.push('…');
    }
    out
}

/// An error and its sources, joined with `: ` (hyper hides the cause of "connection error").
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

fn variant_name(err: &octocrab::Error) -> String {
    let debug = format!("{err:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("unknown")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    fn map(status: u16, pairs: &[(&'static str, &str)], message: &str) -> Error {
        from_status(
            "pull request acme/demo#5",
            StatusCode::from_u16(status).expect("status"),
            &headers(pairs),
            message,
        )
    }

    #[test]
    fn status_table() {
        type Case<'a> = (u16, &'a [(&'static str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (
                401,
                &[],
                "Bad credentials",
                "unauthenticated: pull request acme/demo#5: 401 Bad credentials",
            ),
            (
                403,
                &[],
                "Resource not accessible by integration",
                "permission denied: pull request acme/demo#5: 403 Resource not accessible by integration",
            ),
            (404, &[], "Not Found", "not found: pull request acme/demo#5"),
            (410, &[], "Gone", "not found: pull request acme/demo#5"),
            (
                405,
                &[],
                "Pull Request is not mergeable",
                "conflict: pull request acme/demo#5: 405 Pull Request is not mergeable",
            ),
            (
                409,
                &[],
                "Conflict",
                "conflict: pull request acme/demo#5: 409 Conflict",
            ),
            (
                412,
                &[],
                "Precondition Failed",
                "precondition failed: pull request acme/demo#5: 412 Precondition Failed",
            ),
            (
                422,
                &[],
                "No commit found for SHA: abc",
                "precondition failed: pull request acme/demo#5: 422 No commit found for SHA: abc",
            ),
            (
                429,
                &[],
                "Too Many Requests",
                "rate limited (retry after None)",
            ),
            (
                429,
                &[("retry-after", "60")],
                "",
                "rate limited (retry after Some(60s))",
            ),
            (
                403,
                &[("retry-after", "30")],
                "",
                "rate limited (retry after Some(30s))",
            ),
            (
                500,
                &[],
                "Internal Server Error",
                "transient: pull request acme/demo#5: 500 Internal Server Error",
            ),
            (
                502,
                &[],
                "Bad Gateway",
                "transient: pull request acme/demo#5: 502 Bad Gateway",
            ),
            (
                503,
                &[],
                "Service Unavailable",
                "transient: pull request acme/demo#5: 503 Service Unavailable",
            ),
            (
                400,
                &[],
                "Problems parsing JSON",
                "unexpected response: pull request acme/demo#5: 400 Problems parsing JSON",
            ),
            (
                301,
                &[],
                "Moved Permanently",
                "unexpected response: pull request acme/demo#5: 301 Moved Permanently",
            ),
        ];
        for (status, pairs, message, expected) in cases {
            assert_eq!(
                map(*status, pairs, message).to_string(),
                *expected,
                "{status}"
            );
        }
    }

    #[test]
    fn primary_rate_limit_waits_until_the_reset() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let reset = (now + 3600).to_string();
        let err = map(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
            "API rate limit exceeded for user ID 1.",
        );
        let wait = err.retry_after().expect("a delay");
        assert!(
            wait <= Duration::from_secs(3600) && wait >= Duration::from_secs(3500),
            "{wait:?}"
        );
        assert!(err.is_retryable());

        // A reset in the past: rate limited, but no meaningful delay.
        let past = map(
            403,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")],
            "API rate limit exceeded",
        );
        assert_eq!(past, Error::RateLimited { retry_after: None });
    }

    #[test]
    fn secondary_rate_limit_is_recognised_by_its_message() {
        let err = map(
            403,
            &[("x-ratelimit-remaining", "4000")],
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        );
        assert_eq!(err, Error::RateLimited { retry_after: None });
    }

    #[test]
    fn a_403_with_remaining_quota_is_a_refusal() {
        let err = map(
            403,
            &[("x-ratelimit-remaining", "12")],
            "Must have admin rights",
        );
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn vendor_messages_are_cut_to_one_line() {
        let long = format!("first line {}\nsecond line", "x".repeat(400));
        let err = map(500, &[], &long);
        let text = err.to_string();
        assert!(
            !text.contains('\n') && !text.contains("second line"),
            "{text}"
        );
        assert!(text.ends_with('…'), "{text}");
    }
}
