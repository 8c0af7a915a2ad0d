//! Shared input decoding of greg's fuzz targets.
//!
//! A webhook target's input is one selector byte, then the raw body. The selector picks the
//! event-name header from the target's list of known names (index = byte); [`NO_HEADER`]
//! sends no header at all, any other value sends the header with an unknown name.
//! `fuzz/seed.sh` prefixes the real fixtures with the index of their event name, so the
//! lists below and the ones in seed.sh must stay in the same order.

use greg_core::Headers;

/// Selector byte: the delivery carries no event-name header.
pub const NO_HEADER: u8 = 0xff;

/// GitHub `X-GitHub-Event` names, in selector order.
pub const GITHUB_EVENTS: &[&str] = &[
    "push",
    "pull_request",
    "issue_comment",
    "pull_request_review",
    "ping",
    "status",
    "check_run",
    "check_suite",
];

/// Bitbucket Cloud `X-Event-Key` names, in selector order.
pub const CLOUD_EVENTS: &[&str] = &[
    "repo:push",
    "pullrequest:created",
    "pullrequest:updated",
    "pullrequest:fulfilled",
    "pullrequest:rejected",
    "pullrequest:approved",
    "pullrequest:unapproved",
    "pullrequest:changes_request_created",
    "pullrequest:comment_created",
];

/// Bitbucket Server `X-Event-Key` names, in selector order.
pub const SERVER_EVENTS: &[&str] = &[
    "repo:refs_changed",
    "pr:opened",
    "pr:from_ref_updated",
    "pr:merged",
    "pr:declined",
    "pr:deleted",
    "pr:modified",
    "pr:reviewer:approved",
    "pr:reviewer:unapproved",
    "pr:reviewer:needs_work",
    "pr:comment:added",
    "diagnostics:ping",
];

/// Splits a fuzz input into the headers (event name from `names`, see the module docs) and
/// the body. An empty input is an empty body without a header.
pub fn split<'a>(data: &'a [u8], header: &str, names: &[&str]) -> (Headers, &'a [u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return (Headers::default(), data);
    };
    let event = match names.get(usize::from(selector)) {
        Some(name) => (*name).to_owned(),
        None if selector == NO_HEADER => return (Headers::default(), body),
        None => "unknown:event".to_owned(),
    };
    (Headers::new([(header.to_owned(), event)]), body)
}
