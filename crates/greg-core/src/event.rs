//! Normalized events: what greg acts on, whatever provider or builder it came from. Adapters
//! parse their wire payloads into these; wire types never leave the adapter crates.

use crate::build::BuildUpdate;
use crate::ids::{CommentId, Login, PrNumber, RepoName, Sha};
use serde::{Deserialize, Serialize};

/// The outcome of parsing one inbound delivery.
// Short-lived (parse, then move the event into the inbox): boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Inbound {
    /// An event greg acts on.
    Event(Event),
    /// Several events from one delivery, in delivery order (a Bitbucket push that updated
    /// several branches). greg-server stores each under the delivery id `<id>#<n>`, `n` from
    /// 0, so a repeated delivery is still dropped.
    Events(Vec<Event>),
    /// A well-formed delivery of a kind greg does not act on (ping, status, a comment on a
    /// plain issue, ...). Answered 202 `ignored: <reason>`.
    Ignored(String),
}

/// One normalized event. Every variant names the repository it concerns, which is the key for
/// serial processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Push(PushEvent),
    PullRequest(PullRequestEvent),
    Comment(CommentEvent),
    Review(ReviewEvent),
    /// A build-server notification (Jenkins Notification plugin).
    Build(BuildUpdate),
    /// An event the provider must complete through its API before greg acts on it (a
    /// Bitbucket Cloud pull-request event names its head by an abbreviated hash). Stored and
    /// deduplicated like any event; the engine calls [`crate::Provider::resolve`] in the
    /// repository's lane, never in the HTTP handler.
    Unresolved(Unresolved),
    /// A CI job's report, sent by `greg report` (SPEC §8), checked by the server and stored
    /// in the inbox like a webhook so that it survives a restart and a provider outage.
    Report(ReportEvent),
}

/// A CI job's report on a commit (`POST /api/reports`), as the server checked it. The
/// delivery's source is the provider's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportEvent {
    pub repo: RepoName,
    /// The commit the job built.
    pub sha: Sha,
    /// The pull request the report named; none: the open pull requests whose head is `sha`.
    pub pr: Option<PrNumber>,
    /// The job's name.
    pub job: String,
    /// `success`, `failure`, `error` or `pending`.
    pub status: String,
    /// The report as greg-report's `JobReport` JSON (opaque here).
    pub report_json: String,
    /// Metadata files: (file name, JSON text).
    pub metadata: Vec<(String, String)>,
}

impl Event {
    /// The repository the event concerns; `None` for build updates, whose repository greg
    /// looks up from its own build record.
    pub fn repository(&self) -> Option<&RepoName> {
        match self {
            Event::Push(e) => Some(&e.repo),
            Event::PullRequest(e) => Some(&e.repo),
            Event::Comment(e) => Some(&e.repo),
            Event::Review(e) => Some(&e.repo),
            Event::Build(_) => None,
            Event::Unresolved(u) => Some(&u.repo),
            Event::Report(r) => Some(&r.repo),
        }
    }

    /// A short name for logs: `push`, `pull_request.synchronize`, `comment`, ...
    pub fn name(&self) -> String {
        match self {
            Event::Push(_) => "push".into(),
            Event::PullRequest(e) => format!("pull_request.{}", e.action.as_str()),
            Event::Comment(_) => "comment".into(),
            Event::Review(_) => "review".into(),
            Event::Build(b) => format!("build.{}", b.phase.as_str()),
            Event::Unresolved(u) => u.what.clone(),
            Event::Report(_) => "report".into(),
        }
    }
}

/// An event that needs one provider lookup before greg can act on it; see
/// [`Event::Unresolved`].
///
/// `data` is opaque to everything but the provider that made it: the adapter's own serialized
/// form of the pending event (greg-bitbucket's `UnresolvedEvent`), never the vendor's wire
/// JSON. It is stored in the durable inbox, so an adapter must keep reading what it wrote
/// before an upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unresolved {
    /// The repository the completed event will concern: the lane key and the `repos[]` lookup.
    pub repo: RepoName,
    /// The name the completed event will have ([`Event::name`]: `pull_request.opened`,
    /// `review`), for the inbox and logs.
    pub what: String,
    /// The adapter's data, handed back to [`crate::Provider::resolve`].
    pub data: serde_json::Value,
}

/// A push to a branch (GitHub `push`). Tag pushes and branch deletions are not events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushEvent {
    pub repo: RepoName,
    /// Branch name without `refs/heads/`.
    pub branch: String,
    /// The new tip of the branch.
    pub head: Sha,
    pub pusher: Option<Login>,
}

/// What happened to a pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestAction {
    Opened,
    /// New commits on the head branch (or a force-push).
    Synchronize,
    Reopened,
    /// Closed, merged or not.
    Closed {
        merged: bool,
    },
    /// The target branch changed (`edited` with `changes.base`).
    Retargeted,
    /// Draft marked ready for review.
    ReadyForReview,
    /// Converted back to a draft (GitHub `converted_to_draft`): a queued merge leaves the
    /// queue (SPEC §5).
    ConvertedToDraft,
    /// The title was edited (GitHub `edited` with `changes.title`, Bitbucket Server
    /// `pr:modified` with a new title): greg only records the new title for its pages.
    Edited,
}

impl PullRequestAction {
    /// The provider-neutral action name, as used in logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            PullRequestAction::Opened => "opened",
            PullRequestAction::Synchronize => "synchronize",
            PullRequestAction::Reopened => "reopened",
            PullRequestAction::Closed { merged: true } => "merged",
            PullRequestAction::Closed { merged: false } => "closed",
            PullRequestAction::Retargeted => "retargeted",
            PullRequestAction::ReadyForReview => "ready_for_review",
            PullRequestAction::ConvertedToDraft => "converted_to_draft",
            PullRequestAction::Edited => "edited",
        }
    }
}

/// A pull-request lifecycle event carrying the pull request as the payload described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestEvent {
    pub repo: RepoName,
    pub action: PullRequestAction,
    pub pull_request: crate::provider::PullRequest,
}

/// A new comment on a pull request (edits and deletions are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentEvent {
    pub repo: RepoName,
    pub pr: PrNumber,
    pub comment_id: CommentId,
    pub author: Login,
    /// Raw Markdown body.
    pub body: String,
}

/// A submitted pull-request review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewEvent {
    pub repo: RepoName,
    pub pr: PrNumber,
    pub reviewer: Login,
    pub state: ReviewState,
    /// The head the review was given on; `None` when the payload does not say (old payloads).
    pub commit: Option<Sha>,
    pub body: Option<String>,
}

/// A review verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Approved,
    ChangesRequested,
    Commented,
    Dismissed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unresolved() -> Event {
        Event::Unresolved(Unresolved {
            repo: RepoName::new("acme", "demo"),
            what: "pull_request.opened".to_owned(),
            data: serde_json::json!({"head": "d31df3425c5b", "pending": {"kind": "review"}}),
        })
    }

    #[test]
    fn an_unresolved_event_is_keyed_and_named_as_the_event_it_completes_to() {
        let event = unresolved();
        assert_eq!(event.repository(), Some(&RepoName::new("acme", "demo")));
        assert_eq!(event.name(), "pull_request.opened");
    }

    #[test]
    fn an_unresolved_event_survives_the_inbox_round_trip() {
        let event = unresolved();
        let stored = serde_json::to_string(&event).expect("serializes");
        let read: Event = serde_json::from_str(&stored).expect("deserializes");
        assert_eq!(read, event);
    }
}
