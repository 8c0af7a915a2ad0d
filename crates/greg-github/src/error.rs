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
//!
//! # Rules that refuse a request for good
//!
//! Branch protection and repository rulesets refuse a write with GitHub's own reason, which
//! greg quotes to people as [`Error::Refused`]. The answers, as GitHub sends them:
//! - a ref update (`PATCH .../git/refs/heads/{branch}`, a push) on a protected branch: 422
//!   `{"message": "Required status check \"bors\" is pending.", "documentation_url":
//!   "https://help.github.com/articles/about-protected-branches"}` (bors-ng/bors-ng#866), "6 of
//!   6 required status checks are expected." (kevgo/prettifier#28), "Protected branch update
//!   failed for refs/heads/main." and "Changes must be made through a pull request." (the
//!   texts of git's `GH006` refusal, e.g. supportpal/github-gh-cli#47, which the REST API
//!   returns as the `message`, with 422 or 403);
//! - a pull-request merge (`PUT .../pulls/{n}/merge`) blocked by a rule: 405 with the rule's
//!   text ("Required status check \"ci\" is expected.", "At least 1 approving review is
//!   required by reviewers with write access.", "Repository rule violations found"), while a
//!   merge conflict is 405 "Pull Request is not mergeable" and a stale `sha` 409 "Head branch
//!   was modified. Review and try the merge again."
//!   (<https://docs.github.com/en/rest/pulls/pulls#merge-a-pull-request>: "405 Method Not
//!   Allowed if merge cannot be performed", "409 Conflict if sha was provided and pull request
//!   head did not match").
//!
//! The texts vary with the number of checks and reviews (dependabot-core#3998 matches them
//! case-insensitively for the same reason), so [`is_rule`] looks for the phrases every variant
//! shares, and for a `documentation_url` on branch protection or rulesets.

use greg_core::Error;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest vendor message kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// Phrases of GitHub's branch-protection and ruleset refusals (lower case); see the module
/// documentation for the texts they come from.
const RULE_PHRASES: [&str; 9] = [
    "protected branch",
    "required status check",
    "changes must be made through a pull request",
    "approving review",
    "review is required",
    "repository rule violation",
    "not authorized to push",
    "must not contain merge commits",
    "cannot force-push",
];

/// What greg asked GitHub to do, when an answer means different things per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Operation {
    /// Any call whose failures need no special reading.
    #[default]
    Other,
    /// `PATCH /repos/{owner}/{repo}/git/refs/heads/{branch}` with `force: false`
    /// (<https://docs.github.com/en/rest/git/refs#update-a-reference>): 422 "Update is not a
    /// fast forward" means the branch moved.
    FastForward,
    /// `PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge` with `sha`
    /// (<https://docs.github.com/en/rest/pulls/pulls#merge-a-pull-request>): 409 means the
    /// head moved, 405 that the merge cannot be performed (a conflict or a rule).
    MergePull,
}

/// GitHub's error body, `{"message": ..., "documentation_url": ...}`
/// (<https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api>).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GithubAnswer {
    /// `message`, or the status reason when the body had none.
    pub message: String,
    /// `documentation_url`, when sent.
    pub documentation_url: Option<String>,
}

impl GithubAnswer {
    /// Reads an error body; a body that is not GitHub's JSON keeps only the status reason.
    pub fn parse(status: StatusCode, body: &str) -> Self {
        #[derive(Deserialize)]
        struct Body {
            message: Option<String>,
            documentation_url: Option<String>,
        }
        let parsed = serde_json::from_str::<Body>(body).ok();
        let (message, documentation_url) = match parsed {
            Some(b) => (b.message, b.documentation_url),
            None => (None, None),
        };
        Self {
            message: message
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
            documentation_url,
        }
    }
}

/// Maps one failed GitHub response onto the boundary taxonomy.
///
/// - `op`: what greg asked for (see [`Operation`]).
/// - `what`: the object or operation, e.g. `pull request acme/demo#5`; used as
///   [`Error::NotFound::what`] and as the prefix of every other message.
/// - `status`: the HTTP status (any non-2xx).
/// - `headers`: the response headers; `Retry-After` (seconds), `X-RateLimit-Remaining` and
///   `X-RateLimit-Reset` (epoch seconds) are read.
/// - `answer`: GitHub's error body ([`GithubAnswer::parse`]).
///
/// | status | operation | variant |
/// |---|---|---|
/// | 401 | any | `Unauthenticated` |
/// | 403 with `X-RateLimit-Remaining: 0`, `Retry-After` or a "rate limit" message | any | `RateLimited` |
/// | 403, 405, 422 naming a branch rule ([`is_rule`]) | any | `Refused` with GitHub's message |
/// | 403 otherwise | any | `PermissionDenied` |
/// | 404, 410 | any | `NotFound` |
/// | 405 "not mergeable" | any | `Conflict` (a merge conflict) |
/// | 405 "Base branch was modified", "Merge already in progress" | `MergePull` | `Transient` |
/// | 405 otherwise | `MergePull` | `Refused` (GitHub says why the merge cannot be performed) |
/// | 405 otherwise, 409 | other | `Conflict` |
/// | 409 | `MergePull` | `PreconditionFailed` ("Head branch was modified": the `sha` is stale) |
/// | 422 "does not exist" | `FastForward` | `NotFound` (the branch or the commit) |
/// | 412, 422 | any | `PreconditionFailed` (422: "Update is not a fast forward", "No commit found for SHA", validation failed) |
/// | 429 | any | `RateLimited` |
/// | 5xx | any | `Transient` |
/// | anything else (400, 3xx, other 4xx) | any | `Protocol` |
pub fn from_status(
    op: Operation,
    what: &str,
    status: StatusCode,
    headers: &HeaderMap,
    answer: &GithubAnswer,
) -> Error {
    let message = one_line(&answer.message);
    let lower = message.to_ascii_lowercase();
    let described = format!("{what}: {} {message}", status.as_u16());
    let code = status.as_u16();
    match code {
        401 => Error::Unauthenticated { message: described },
        403 if is_rate_limit(headers, &message) => Error::RateLimited {
            retry_after: retry_after(headers, SystemTime::now()),
        },
        403 | 405 | 422 if is_rule(answer) => Error::Refused {
            message: reason(&answer.message),
        },
        403 => Error::PermissionDenied { message: described },
        404 | 410 => Error::NotFound {
            what: what.to_owned(),
        },
        405 if lower.contains("not mergeable") => Error::Conflict { message: described },
        405 if op == Operation::MergePull
            && (lower.contains("base branch was modified") || lower.contains("in progress")) =>
        {
            Error::Transient { message: described }
        }
        405 if op == Operation::MergePull => Error::Refused {
            message: reason(&answer.message),
        },
        409 if op == Operation::MergePull => Error::PreconditionFailed { message: described },
        405 | 409 => Error::Conflict { message: described },
        422 if op == Operation::FastForward && lower.contains("does not exist") => {
            Error::NotFound {
                what: format!("{what}: {message}"),
            }
        }
        412 | 422 => Error::PreconditionFailed { message: described },
        429 => Error::RateLimited {
            retry_after: retry_after(headers, SystemTime::now()),
        },
        500..=599 => Error::Transient { message: described },
        _ => Error::Protocol { message: described },
    }
}

/// A refusal's reason on one line: GitHub's ruleset refusals put the rules on the lines after
/// "Repository rule violations found", so every non-empty line is kept (the first, then `: `,
/// then the others joined by spaces), at most [`MAX_MESSAGE_CHARS`] characters.
fn reason(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        one_line(first)
    } else {
        one_line(&format!("{first}: {}", rest.join(" ")))
    }
}

/// True when GitHub's answer names a branch-protection or ruleset rule: its message has one of
/// [`RULE_PHRASES`], or its `documentation_url` points at protected branches or rulesets.
pub fn is_rule(answer: &GithubAnswer) -> bool {
    let message = answer.message.to_ascii_lowercase();
    let docs = answer
        .documentation_url
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    RULE_PHRASES.iter().any(|p| message.contains(p))
        || docs.contains("protected-branches")
        || docs.contains("rulesets")
}

/// Maps an error raised by octocrab itself (before or instead of an HTTP answer).
///
/// `GitHub { source }` (a non-2xx answer) goes through [`from_status`] as
/// [`Operation::Other`]; connection, TLS,
/// timeout and body-read failures are [`Error::Transient`]; an answer that is not the
/// expected JSON or UTF-8 is [`Error::Protocol`]; an invalid URL or header is
/// [`Error::InvalidConfig`]. Backtraces and request headers are not included.
pub fn from_octocrab(what: &str, err: octocrab::Error) -> Error {
    use octocrab::Error as O;
    match err {
        O::GitHub { source, .. } => {
            let headers = source.headers.clone().unwrap_or_default();
            let answer = GithubAnswer {
                message: source.message.clone(),
                documentation_url: source.documentation_url.clone(),
            };
            from_status(
                Operation::Other,
                what,
                source.status_code,
                &headers,
                &answer,
            )
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
        let answer = GithubAnswer {
            message: message.to_owned(),
            documentation_url: None,
        };
        from_status(
            Operation::Other,
            "pull request acme/demo#5",
            StatusCode::from_u16(status).expect("status"),
            &headers(pairs),
            &answer,
        )
    }

    /// Maps a whole GitHub error body for `op`.
    fn map_body(op: Operation, status: u16, body: &str) -> Error {
        let status = StatusCode::from_u16(status).expect("status");
        from_status(
            op,
            "fast-forward of main of acme/demo to 0123456",
            status,
            &HeaderMap::new(),
            &GithubAnswer::parse(status, body),
        )
    }

    fn refused(message: &str) -> Error {
        Error::Refused {
            message: message.to_owned(),
        }
    }

    /// Bodies GitHub sent when a rule refused a ref update or a merge; sources in the module
    /// documentation.
    #[test]
    fn branch_rules_are_refusals_quoting_github() {
        let protected = "https://help.github.com/articles/about-protected-branches";
        let cases: &[(Operation, u16, String, Error)] = &[
            (
                Operation::FastForward,
                422,
                format!(
                    r#"{{"message":"Required status check \"bors\" is pending.","documentation_url":"{protected}"}}"#
                ),
                refused(r#"Required status check "bors" is pending."#),
            ),
            (
                Operation::FastForward,
                422,
                r#"{"message":"Required status check \"ci\" is expected.","documentation_url":"https://docs.github.com/rest/git/refs#update-a-reference"}"#.to_owned(),
                refused(r#"Required status check "ci" is expected."#),
            ),
            (
                Operation::FastForward,
                422,
                r#"{"message":"Protected branch update failed for refs/heads/main.","documentation_url":"https://docs.github.com/rest"}"#.to_owned(),
                refused("Protected branch update failed for refs/heads/main."),
            ),
            (
                Operation::FastForward,
                403,
                r#"{"message":"Changes must be made through a pull request.","documentation_url":"https://docs.github.com/rest"}"#.to_owned(),
                refused("Changes must be made through a pull request."),
            ),
            (
                Operation::Other,
                422,
                r#"{"message":"Could not update file: 6 of 6 required status checks are expected.","documentation_url":"https://help.github.com/articles/about-protected-branches"}"#.to_owned(),
                refused("Could not update file: 6 of 6 required status checks are expected."),
            ),
            (
                Operation::MergePull,
                405,
                r#"{"message":"At least 1 approving review is required by reviewers with write access.","documentation_url":"https://docs.github.com/articles/about-protected-branches"}"#.to_owned(),
                refused("At least 1 approving review is required by reviewers with write access."),
            ),
            (
                Operation::MergePull,
                405,
                r#"{"message":"Required status check \"ci\" is expected.","documentation_url":"https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"}"#.to_owned(),
                refused(r#"Required status check "ci" is expected."#),
            ),
            (
                Operation::MergePull,
                405,
                r#"{"message":"Repository rule violations found\n\nRequired status check \"ci\" is expected.\n\n","documentation_url":"https://docs.github.com/repositories/configuring-branches-and-merges-in-your-repository/managing-rulesets"}"#.to_owned(),
                refused(r#"Repository rule violations found: Required status check "ci" is expected."#),
            ),
        ];
        for (op, status, body, expected) in cases {
            let err = map_body(*op, *status, body);
            assert_eq!(&err, expected, "{op:?} {status} {body}");
            assert!(!err.is_retryable(), "{err:?}");
        }
    }

    #[test]
    fn answers_that_depend_on_the_operation() {
        let ff = |status, body| map_body(Operation::FastForward, status, body);
        let merge = |status, body| map_body(Operation::MergePull, status, body);
        let other = |status, body| map_body(Operation::Other, status, body);
        let not_ff = r#"{"message":"Update is not a fast forward","documentation_url":"https://docs.github.com/rest/git/refs#update-a-reference"}"#;
        assert!(matches!(ff(422, not_ff), Error::PreconditionFailed { .. }));
        let gone = r#"{"message":"Reference does not exist","documentation_url":"https://docs.github.com/rest/git/refs#update-a-reference"}"#;
        assert!(matches!(ff(422, gone), Error::NotFound { .. }));
        assert!(matches!(other(422, gone), Error::PreconditionFailed { .. }));

        let head_moved = r#"{"message":"Head branch was modified. Review and try the merge again.","documentation_url":"https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"}"#;
        assert!(matches!(
            merge(409, head_moved),
            Error::PreconditionFailed { .. }
        ));
        let conflict = r#"{"message":"Pull Request is not mergeable","documentation_url":"https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"}"#;
        assert!(matches!(merge(405, conflict), Error::Conflict { .. }));
        let base_moved = r#"{"message":"Base branch was modified. Review and try the merge again.","documentation_url":"https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"}"#;
        assert!(merge(405, base_moved).is_retryable());
        let unknown = r#"{"message":"Merging is blocked","documentation_url":"https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"}"#;
        assert_eq!(merge(405, unknown), refused("Merging is blocked"));

        // POST .../merges: 409 is a merge conflict.
        let merge_conflict = r#"{"message":"Merge conflict","documentation_url":"https://docs.github.com/rest/branches/branches#merge-a-branch"}"#;
        assert!(matches!(other(409, merge_conflict), Error::Conflict { .. }));
        // A plain 403 stays a permission problem.
        let denied = r#"{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest"}"#;
        assert!(matches!(ff(403, denied), Error::PermissionDenied { .. }));
    }

    #[test]
    fn answers_without_json_keep_the_status_reason() {
        let status = StatusCode::BAD_GATEWAY;
        assert_eq!(
            GithubAnswer::parse(status, "<html>bad gateway</html>"),
            GithubAnswer {
                message: "Bad Gateway".to_owned(),
                documentation_url: None
            }
        );
        assert_eq!(
            GithubAnswer::parse(StatusCode::NOT_FOUND, r#"{"message":"  "}"#).message,
            "Not Found"
        );
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
