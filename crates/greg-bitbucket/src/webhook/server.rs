//! Bitbucket Server/Data Center deliveries, dispatched on the event key
//! (<https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html>).

use super::{decode, ignored};
use crate::event::Parsed;
use crate::wire::printable;
use crate::wire::server::{self as wire, Repo, User};
use greg_core::{
    CommentEvent, CommentId, Event, PrNumber, PullRequestAction, PullRequestEvent, PushEvent,
    ReviewEvent, ReviewState, Sha, WebhookError,
};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The `eventKey` body field, for deliveries without an `X-Event-Key` header.
///
/// # Errors
/// [`WebhookError::Malformed`] when the body is not a JSON object or `eventKey` is not a
/// string.
pub(super) fn event_key(body: &[u8]) -> Result<Option<String>, WebhookError> {
    #[derive(Deserialize)]
    struct KeyOnly {
        #[serde(rename = "eventKey")]
        event_key: Option<String>,
    }
    let k: KeyOnly = decode("delivery", body)?;
    Ok(k.event_key
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty()))
}

pub(super) fn parse(event: &str, body: &[u8]) -> Result<Parsed, WebhookError> {
    let closed = |merged| PullRequestAction::Closed { merged };
    match event {
        "repo:refs_changed" => parse_refs_changed(event, body),
        "pr:opened" => parse_pull_request(event, body, PullRequestAction::Opened),
        "pr:from_ref_updated" => parse_pull_request(event, body, PullRequestAction::Synchronize),
        "pr:merged" => parse_pull_request(event, body, closed(true)),
        "pr:declined" | "pr:deleted" => parse_pull_request(event, body, closed(false)),
        "pr:modified" => parse_modified(event, body),
        "pr:reviewer:approved" => parse_review(event, body, ReviewState::Approved),
        "pr:reviewer:unapproved" => parse_review(event, body, ReviewState::Dismissed),
        "pr:reviewer:needs_work" => parse_review(event, body, ReviewState::ChangesRequested),
        "pr:comment:added" => parse_comment(event, body),
        "diagnostics:ping" => {
            decode::<IgnoredAny>(event, body)?;
            Ok(ignored(
                "diagnostics:ping (test connection) events are not used",
            ))
        }
        other => {
            decode::<IgnoredAny>(other, body)?;
            Ok(ignored(format!("{} events are not used", printable(other))))
        }
    }
}

/// `repo:refs_changed`: `changes[]` with `refId`, `toHash` (all zeros for a deletion) and
/// `type` (`ADD`, `UPDATE`, `DELETE`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefsChanged {
    repository: Repo,
    changes: Vec<RefChange>,
    actor: Option<User>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefChange {
    ref_id: String,
    to_hash: Sha,
    #[serde(rename = "type")]
    kind: String,
}

fn parse_refs_changed(event: &str, body: &[u8]) -> Result<Parsed, WebhookError> {
    let p: RefsChanged = decode(event, body)?;
    let repo = p.repository.0;
    let pusher = p.actor.map(User::into_login);
    let events: Vec<Event> = p
        .changes
        .into_iter()
        .filter(|c| c.kind != "DELETE" && !c.to_hash.is_zero())
        .filter_map(|c| {
            let branch = c.ref_id.strip_prefix("refs/heads/")?.to_owned();
            Some(Event::Push(PushEvent {
                repo: repo.clone(),
                branch,
                head: c.to_hash,
                pusher: pusher.clone(),
            }))
        })
        .collect();
    if events.is_empty() {
        return Ok(ignored(
            "refs changed without an updated branch (tags and deletions are not used)",
        ));
    }
    Ok(Parsed::Events { events })
}

/// `pr:opened`, `pr:from_ref_updated`, `pr:merged`, `pr:declined`, `pr:deleted`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullRequestPayload {
    pull_request: wire::PullRequest,
}

fn pull_request_event(pr: wire::PullRequest, action: PullRequestAction) -> Parsed {
    Parsed::Events {
        events: vec![Event::PullRequest(PullRequestEvent {
            repo: pr.repo().clone(),
            action,
            pull_request: pr.into_core(),
        })],
    }
}

fn parse_pull_request(
    event: &str,
    body: &[u8],
    action: PullRequestAction,
) -> Result<Parsed, WebhookError> {
    let p: PullRequestPayload = decode(event, body)?;
    Ok(pull_request_event(p.pull_request, action))
}

/// `pr:modified`: `previousTarget` is the target branch before the change (title and
/// description edits send it unchanged), `previousTitle` the title before it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModifiedPayload {
    pull_request: wire::PullRequest,
    previous_target: Option<PreviousTarget>,
    previous_title: Option<String>,
}

#[derive(Deserialize)]
struct PreviousTarget {
    id: String,
}

fn parse_modified(event: &str, body: &[u8]) -> Result<Parsed, WebhookError> {
    let p: ModifiedPayload = decode(event, body)?;
    let retargeted = p
        .previous_target
        .is_some_and(|t| t.id != p.pull_request.to_ref.id);
    let retitled = p.previous_title.is_some_and(|t| t != p.pull_request.title);
    if retargeted {
        Ok(pull_request_event(
            p.pull_request,
            PullRequestAction::Retargeted,
        ))
    } else if retitled {
        Ok(pull_request_event(
            p.pull_request,
            PullRequestAction::Edited,
        ))
    } else {
        Ok(ignored(
            "pull request modified without a title or target branch change",
        ))
    }
}

/// `pr:reviewer:approved`, `:unapproved`, `:needs_work`: `participant` gave the verdict on
/// the pull request's current head (`pullRequest.fromRef.latestCommit`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewerPayload {
    pull_request: wire::PullRequest,
    participant: wire::Participant,
}

fn parse_review(event: &str, body: &[u8], state: ReviewState) -> Result<Parsed, WebhookError> {
    let p: ReviewerPayload = decode(event, body)?;
    Ok(Parsed::Events {
        events: vec![Event::Review(ReviewEvent {
            repo: p.pull_request.repo().clone(),
            pr: PrNumber(p.pull_request.id),
            reviewer: p.participant.user.into_login(),
            state,
            commit: Some(p.pull_request.from_ref.latest_commit),
            body: None,
        })],
    })
}

/// `pr:comment:added`: `comment.text` is the Markdown source; replies (`commentParentId`) are
/// comments too.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentPayload {
    pull_request: PullRequestRef,
    comment: Comment,
}

/// Only what a comment event needs of the pull request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullRequestRef {
    id: u64,
    to_ref: TargetOnly,
}

#[derive(Deserialize)]
struct TargetOnly {
    repository: Repo,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    text: Option<String>,
    author: User,
}

fn parse_comment(event: &str, body: &[u8]) -> Result<Parsed, WebhookError> {
    let p: CommentPayload = decode(event, body)?;
    Ok(Parsed::Events {
        events: vec![Event::Comment(CommentEvent {
            repo: p.pull_request.to_ref.repository.0,
            pr: PrNumber(p.pull_request.id),
            comment_id: CommentId(p.comment.id),
            author: p.comment.author.into_login(),
            body: p.comment.text.unwrap_or_default(),
        })],
    })
}
