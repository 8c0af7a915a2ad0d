//! GitHub webhook deliveries: signature check, then parsing into greg's normalized events.
//! Pure functions over (headers, raw body); no IO.
//!
//! Formats: <https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>
//! (`X-Hub-Signature-256`), <https://docs.github.com/en/webhooks/webhook-events-and-payloads>
//! (payloads; captured examples in tests/data/github/, see tests/data/SOURCES.md).

use crate::wire::{self, Repo, User, WirePullRequest};
use greg_core::{
    CommentEvent, CommentId, Event, Headers, Inbound, Login, PrNumber, PullRequestAction,
    PullRequestEvent, PushEvent, ReviewEvent, ReviewState, Secret, Sha, WebhookError,
};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::IgnoredAny;
use sha2::Sha256;

/// Header naming the event type (`push`, `pull_request`, ...).
pub const EVENT_HEADER: &str = "X-GitHub-Event";
/// Header carrying the delivery GUID.
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";
/// Header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// Checks `X-Hub-Signature-256` against the HMAC-SHA256 of the raw `body` keyed with `secret`.
///
/// `Ok(())` without looking at the headers when `secret` is `None` or empty (not configured).
/// The comparison is constant-time (`hmac`'s `verify_slice`).
///
/// # Errors
/// [`WebhookError::Unauthorized`] with a one-line reason when the header is missing, is not
/// `sha256=<hex>`, or does not match. The reason never contains the secret or the digest.
pub fn verify_signature(
    secret: Option<&Secret>,
    headers: &Headers,
    body: &[u8],
) -> Result<(), WebhookError> {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let unauthorized = |reason: &str| WebhookError::Unauthorized(reason.to_owned());
    let header = headers
        .get(SIGNATURE_HEADER)
        .ok_or_else(|| unauthorized("missing X-Hub-Signature-256 header"))?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| unauthorized("X-Hub-Signature-256 does not start with sha256="))?;
    let digest = hex::decode(hex_digest)
        .map_err(|_| unauthorized("X-Hub-Signature-256 is not a hex digest"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| unauthorized("webhook secret cannot key HMAC-SHA256"))?;
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| unauthorized("X-Hub-Signature-256 does not match the body"))
}

/// The delivery GUID from `X-GitHub-Delivery`, trimmed; `None` when absent or empty.
pub fn delivery_id(headers: &Headers) -> Option<String> {
    headers
        .get(DELIVERY_HEADER)
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// Parses a (verified) delivery into a normalized event, or [`Inbound::Ignored`] with a
/// one-line reason for deliveries greg does not act on.
///
/// Dispatches on `X-GitHub-Event`:
/// - `push` to `refs/heads/*` → [`Event::Push`]; tag pushes and branch deletions are ignored.
/// - `pull_request` `opened`, `synchronize`, `reopened`, `closed`, `ready_for_review`, and
///   `edited` with `changes.base` (retargeted) → [`Event::PullRequest`]; other actions ignored.
/// - `issue_comment` `created` on a pull request → [`Event::Comment`]; comments on plain
///   issues, edits and deletions are ignored.
/// - `pull_request_review` `submitted` or `dismissed` → [`Event::Review`]; other actions ignored.
/// - any other event (`ping`, `status`, `check_run`, ...) is ignored; its body must still be
///   JSON.
///
/// # Errors
/// [`WebhookError::MissingHeader`] without `X-GitHub-Event`; [`WebhookError::Malformed`] when
/// the body is not JSON or lacks a field greg needs, with the JSON path (e.g.
/// `at pull_request.head.sha: not a full commit sha ...`). A field greg does not read is never
/// a reason to fail.
pub fn parse_event(headers: &Headers, body: &[u8]) -> Result<Inbound, WebhookError> {
    let event = headers
        .get(EVENT_HEADER)
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| WebhookError::MissingHeader("missing X-GitHub-Event header".to_owned()))?;
    match event {
        "push" => parse_push(body),
        "pull_request" => parse_pull_request(body),
        "issue_comment" => parse_issue_comment(body),
        "pull_request_review" => parse_review(body),
        other => {
            decode::<IgnoredAny>(other, body)?;
            Ok(ignored(format!("{} events are not used", printable(other))))
        }
    }
}

/// `push` payload: <https://docs.github.com/en/webhooks/webhook-events-and-payloads#push>.
#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    deleted: bool,
    after: Sha,
    pusher: Option<Pusher>,
    repository: Repo,
}

/// `push.pusher`: `name` is the login of the account that pushed.
#[derive(Deserialize)]
struct Pusher {
    name: Option<String>,
}

fn parse_push(body: &[u8]) -> Result<Inbound, WebhookError> {
    let p: PushPayload = decode("push", body)?;
    let Some(branch) = p.git_ref.strip_prefix("refs/heads/") else {
        return Ok(ignored(format!(
            "push to {} is not a branch push",
            printable(&p.git_ref)
        )));
    };
    if p.deleted || p.after.is_zero() {
        return Ok(ignored("branch deletions are not used"));
    }
    Ok(Inbound::Event(Event::Push(PushEvent {
        repo: p.repository.full_name.0,
        branch: branch.to_owned(),
        head: p.after,
        pusher: p.pusher.and_then(|u| u.name).map(Login),
    })))
}

/// `pull_request` payload:
/// <https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request>.
#[derive(Deserialize)]
struct PullRequestPayload {
    action: String,
    pull_request: WirePullRequest,
    changes: Option<Changes>,
    repository: Repo,
}

/// `changes` of an `edited` action; only the presence of `base` and `title` matters.
#[derive(Deserialize)]
struct Changes {
    base: Option<IgnoredAny>,
    title: Option<IgnoredAny>,
}

fn parse_pull_request(body: &[u8]) -> Result<Inbound, WebhookError> {
    let p: PullRequestPayload = decode("pull_request", body)?;
    let merged = p.pull_request.merged.unwrap_or(false);
    let action = match p.action.as_str() {
        "opened" => PullRequestAction::Opened,
        "synchronize" => PullRequestAction::Synchronize,
        "reopened" => PullRequestAction::Reopened,
        "closed" => PullRequestAction::Closed { merged },
        "ready_for_review" => PullRequestAction::ReadyForReview,
        "converted_to_draft" => PullRequestAction::ConvertedToDraft,
        "edited" => match &p.changes {
            Some(c) if c.base.is_some() => PullRequestAction::Retargeted,
            Some(c) if c.title.is_some() => PullRequestAction::Edited,
            _ => {
                return Ok(ignored(
                    "pull request edited without a title or target branch change",
                ));
            }
        },
        other => {
            return Ok(ignored(format!(
                "pull_request action {} is not used",
                printable(other)
            )));
        }
    };
    Ok(Inbound::Event(Event::PullRequest(PullRequestEvent {
        repo: p.repository.full_name.0,
        action,
        pull_request: p.pull_request.into_core(),
    })))
}

/// `issue_comment` payload:
/// <https://docs.github.com/en/webhooks/webhook-events-and-payloads#issue_comment>.
#[derive(Deserialize)]
struct IssueCommentPayload {
    action: String,
    issue: Issue,
    comment: Comment,
    repository: Repo,
}

/// `issue_comment.issue`: `pull_request` is present when the issue is a pull request.
#[derive(Deserialize)]
struct Issue {
    number: u64,
    pull_request: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    user: User,
    body: Option<String>,
}

fn parse_issue_comment(body: &[u8]) -> Result<Inbound, WebhookError> {
    let p: IssueCommentPayload = decode("issue_comment", body)?;
    if p.action != "created" {
        return Ok(ignored(format!(
            "issue_comment action {} is not used",
            printable(&p.action)
        )));
    }
    if p.issue.pull_request.is_none() {
        return Ok(ignored("comment on an issue, not a pull request"));
    }
    Ok(Inbound::Event(Event::Comment(CommentEvent {
        repo: p.repository.full_name.0,
        pr: PrNumber(p.issue.number),
        comment_id: CommentId(p.comment.id),
        author: p.comment.user.into_login(),
        body: p.comment.body.unwrap_or_default(),
    })))
}

/// `pull_request_review` payload:
/// <https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request_review>.
#[derive(Deserialize)]
struct ReviewPayload {
    action: String,
    review: WireReview,
    pull_request: PullRequestNumber,
    repository: Repo,
}

/// `review`: `user` is `null` for a deleted account; `commit_id` is the reviewed head.
#[derive(Deserialize)]
struct WireReview {
    user: Option<User>,
    state: String,
    commit_id: Option<Sha>,
    body: Option<String>,
}

#[derive(Deserialize)]
struct PullRequestNumber {
    number: u64,
}

fn parse_review(body: &[u8]) -> Result<Inbound, WebhookError> {
    let p: ReviewPayload = decode("pull_request_review", body)?;
    let state = match p.action.as_str() {
        "dismissed" => ReviewState::Dismissed,
        "submitted" => match review_state(&p.review.state) {
            Some(state) => state,
            None if p.review.state.eq_ignore_ascii_case("pending") => {
                return Ok(ignored("pending reviews are not used"));
            }
            None => {
                return Err(WebhookError::Malformed(format!(
                    "invalid pull_request_review payload at review.state: unknown state {}",
                    printable(&p.review.state)
                )));
            }
        },
        other => {
            return Ok(ignored(format!(
                "pull_request_review action {} is not used",
                printable(other)
            )));
        }
    };
    let Some(reviewer) = p.review.user else {
        return Ok(ignored("review by a deleted account"));
    };
    Ok(Inbound::Event(Event::Review(ReviewEvent {
        repo: p.repository.full_name.0,
        pr: PrNumber(p.pull_request.number),
        reviewer: reviewer.into_login(),
        state,
        commit: p.review.commit_id,
        body: p.review.body.filter(|b| !b.is_empty()),
    })))
}

/// A review verdict as GitHub spells it, case-insensitively (`APPROVED` in the REST API,
/// `approved` in webhooks). `None` for `PENDING` and anything unknown.
pub(crate) fn review_state(raw: &str) -> Option<ReviewState> {
    match raw.to_ascii_lowercase().as_str() {
        "approved" => Some(ReviewState::Approved),
        "changes_requested" => Some(ReviewState::ChangesRequested),
        "commented" => Some(ReviewState::Commented),
        "dismissed" => Some(ReviewState::Dismissed),
        _ => None,
    }
}

fn decode<T: serde::de::DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, WebhookError> {
    wire::from_json(body).map_err(|err| {
        let event = printable(event);
        WebhookError::Malformed(if err.syntax {
            format!("{event} payload is {err}")
        } else {
            format!("invalid {event} payload {err}")
        })
    })
}

fn ignored(reason: impl Into<String>) -> Inbound {
    Inbound::Ignored(reason.into())
}

/// A sender-controlled string made safe for a one-line reason: as is when it looks like an
/// event name or ref (`check_run`, `refs/tags/v1.0`), else quoted and escaped; at most 60
/// characters either way.
fn printable(raw: &str) -> String {
    let cut: String = raw.chars().take(60).collect();
    let plain = !cut.is_empty()
        && cut
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if plain { cut } else { format!("{cut:?}") }
}

#[cfg(test)]
mod tests;
