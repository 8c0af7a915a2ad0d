//! Bitbucket Cloud deliveries, dispatched on `X-Event-Key`
//! (<https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/>).

use super::{decode, ignored, malformed};
use crate::event::{Parsed, PendingEvent, UnresolvedEvent};
use crate::wire::cloud::{self as wire, Repo, User};
use crate::wire::printable;
use greg_core::{
    CommentEvent, CommentId, Event, Login, PrNumber, PullRequestAction, PullRequestEvent,
    PushEvent, ReviewState, Sha, WebhookError,
};
use serde::Deserialize;
use serde::de::IgnoredAny;

pub(super) fn parse(event: &str, body: &[u8]) -> Result<Parsed, WebhookError> {
    let action = |a| PullRequestAction::Closed { merged: a };
    match event {
        "repo:push" => parse_push(event, body),
        "pullrequest:created" => parse_pull_request(event, body, PullRequestAction::Opened),
        "pullrequest:updated" => parse_pull_request(event, body, PullRequestAction::Synchronize),
        "pullrequest:fulfilled" => parse_pull_request(event, body, action(true)),
        "pullrequest:rejected" => parse_pull_request(event, body, action(false)),
        "pullrequest:approved" => parse_review(event, body, ReviewState::Approved),
        "pullrequest:unapproved" => parse_review(event, body, ReviewState::Dismissed),
        "pullrequest:changes_request_created" => {
            parse_review(event, body, ReviewState::ChangesRequested)
        }
        "pullrequest:comment_created" => parse_comment(event, body),
        other => {
            decode::<IgnoredAny>(other, body)?;
            Ok(ignored(format!("{} events are not used", printable(other))))
        }
    }
}

/// `repo:push`: `push.changes[]`, each with `new` (`null` when the branch was deleted).
#[derive(Deserialize)]
struct PushPayload {
    push: Push,
    repository: Repo,
    actor: Option<User>,
}

#[derive(Deserialize)]
struct Push {
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    new: Option<RefState>,
}

/// `new`: `type` is `branch` or `tag` (Mercurial's `named_branch` and `bookmark` are gone).
#[derive(Deserialize)]
struct RefState {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: String,
    target: Target,
}

#[derive(Deserialize)]
struct Target {
    hash: Sha,
}

fn parse_push(event: &str, body: &[u8]) -> Result<Parsed, WebhookError> {
    let p: PushPayload = decode(event, body)?;
    let repo = p.repository.full_name.0;
    let pusher = p.actor.as_ref().and_then(User::login);
    let events: Vec<Event> = p
        .push
        .changes
        .into_iter()
        .filter_map(|c| c.new)
        .filter(|new| new.kind.as_deref().is_none_or(|k| k == "branch"))
        .filter(|new| !new.target.hash.is_zero())
        .map(|new| {
            Event::Push(PushEvent {
                repo: repo.clone(),
                branch: new.name,
                head: new.target.hash,
                pusher: pusher.clone(),
            })
        })
        .collect();
    if events.is_empty() {
        return Ok(ignored(
            "push without an updated branch (tags and deletions are not used)",
        ));
    }
    Ok(Parsed::Events { events })
}

/// `pullrequest:created`, `:updated`, `:fulfilled`, `:rejected`.
#[derive(Deserialize)]
struct PullRequestPayload {
    pullrequest: wire::PullRequest,
    repository: Repo,
}

fn parse_pull_request(
    event: &str,
    body: &[u8],
    action: PullRequestAction,
) -> Result<Parsed, WebhookError> {
    let p: PullRequestPayload = decode(event, body)?;
    let repo = p.repository.full_name.0;
    let pending = p
        .pullrequest
        .into_pending("pullrequest", &repo)
        .map_err(|detail| malformed(event, &detail))?;
    let pull_request = pending.pull_request;
    // Cloud abbreviates; should it ever send the full hash, the event is complete already.
    if let Some(head) = pending.head.full() {
        return Ok(Parsed::Events {
            events: vec![Event::PullRequest(PullRequestEvent {
                repo,
                action,
                pull_request: pull_request.complete(head),
            })],
        });
    }
    Ok(Parsed::Unresolved {
        event: Box::new(UnresolvedEvent {
            repo,
            head_repo: pending.head_repo,
            head: pending.head,
            pending: PendingEvent::PullRequest {
                action,
                pull_request,
            },
        }),
    })
}

/// `pullrequest:approved` / `:unapproved` (`approval: {date, user}`) and
/// `pullrequest:changes_request_created` (`changes_request: {date, user}`).
#[derive(Deserialize)]
struct ReviewPayload {
    pullrequest: wire::PullRequest,
    repository: Repo,
    approval: Option<Verdict>,
    changes_request: Option<Verdict>,
    actor: Option<User>,
}

#[derive(Deserialize)]
struct Verdict {
    user: Option<User>,
}

fn parse_review(event: &str, body: &[u8], state: ReviewState) -> Result<Parsed, WebhookError> {
    let p: ReviewPayload = decode(event, body)?;
    let repo = p.repository.full_name.0;
    // The verdict's own user when present, else the actor who gave it.
    let (field, verdict) = match state {
        ReviewState::ChangesRequested => ("changes_request", p.changes_request),
        _ => ("approval", p.approval),
    };
    let reviewer: Login = match verdict.and_then(|v| v.user).as_ref().and_then(User::login) {
        Some(login) => login,
        None => wire::required_login(p.actor.as_ref(), "actor")
            .map_err(|d| malformed(event, &format!("{d} (and {field}.user names nobody)")))?,
    };
    let pending = p
        .pullrequest
        .into_pending("pullrequest", &repo)
        .map_err(|detail| malformed(event, &detail))?;
    let pr = pending.pull_request.number;
    if let Some(head) = pending.head.full() {
        return Ok(Parsed::Events {
            events: vec![Event::Review(greg_core::ReviewEvent {
                repo,
                pr,
                reviewer,
                state,
                commit: Some(head),
                body: None,
            })],
        });
    }
    Ok(Parsed::Unresolved {
        event: Box::new(UnresolvedEvent {
            repo,
            head_repo: pending.head_repo,
            head: pending.head,
            pending: PendingEvent::Review {
                pr,
                reviewer,
                state,
            },
        }),
    })
}

/// `pullrequest:comment_created`: `comment.content.raw` is the Markdown source. Inline
/// (code) comments and replies are comments too: Bitbucket has one comment stream.
#[derive(Deserialize)]
struct CommentPayload {
    comment: Comment,
    pullrequest: PullRequestId,
    repository: Repo,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    content: Content,
    user: Option<User>,
    #[serde(default)]
    deleted: bool,
}

#[derive(Deserialize)]
struct Content {
    raw: Option<String>,
}

#[derive(Deserialize)]
struct PullRequestId {
    id: u64,
}

fn parse_comment(event: &str, body: &[u8]) -> Result<Parsed, WebhookError> {
    let p: CommentPayload = decode(event, body)?;
    if p.comment.deleted {
        return Ok(ignored("the comment is already deleted"));
    }
    let author = wire::required_login(p.comment.user.as_ref(), "comment.user")
        .map_err(|detail| malformed(event, &detail))?;
    Ok(Parsed::Events {
        events: vec![Event::Comment(CommentEvent {
            repo: p.repository.full_name.0,
            pr: PrNumber(p.pullrequest.id),
            comment_id: CommentId(p.comment.id),
            author,
            body: p.comment.content.raw.unwrap_or_default(),
        })],
    })
}
