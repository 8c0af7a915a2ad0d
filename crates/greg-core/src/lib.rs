//! greg-core: the shared vocabulary of greg — ids, normalized events, the `Provider` and
//! `Builder` plug-in traits, the one error taxonomy at the adapter boundary, and the
//! mergeability rules as pure functions.
//!
//! Architecture invariant: this crate does no IO. It knows no wire format (no GitHub JSON,
//! no Jenkins JSON) and no HTTP framework; adapters translate into these types.

pub mod build;
pub mod error;
pub mod event;
pub mod ids;
pub mod provider;
pub mod rules;
pub mod secret;
pub mod upstream;

pub use rules::{
    Approval, ApprovalSource, Blocker, MergeInput, approvals_from_reviews, mergeability,
};

pub use build::{BuildContext, BuildOutcome, BuildParams, BuildPhase, BuildState, BuildUpdate};
pub use error::{Error, Result};
pub use event::{
    CommentEvent, Event, Inbound, PullRequestAction, PullRequestEvent, PushEvent, ReportEvent,
    ReviewEvent, ReviewState, Unresolved,
};
pub use ids::{
    BuildNumber, CommentId, DeliveryId, JobName, Login, PrNumber, QueueItemId, RepoName, Sha,
};
pub use provider::{
    Builder, Capabilities, Comment, CommitState, CommitStatus, FastForward, Headers, MergeResult,
    Permission, Provider, PullRequest, PullRequestState, Reaction, Review, WebhookDelivery,
    WebhookError,
};
pub use secret::Secret;
pub use upstream::{UpstreamCounts, UpstreamSnapshot};
