//! What a Bitbucket delivery parses into, before greg-core's [`Inbound`]: [`Parsed`].
//!
//! Bitbucket differs from GitHub in two ways:
//! - Bitbucket Cloud pull-request payloads name commits by 12-digit abbreviated hashes
//!   (`pullrequest.source.commit.hash`, see tests/data/bitbucket-cloud/pullrequest_*.json),
//!   while [`greg_core::PullRequest::head_sha`] is a full [`Sha`]. Such a delivery parses
//!   into a [`Parsed::Unresolved`] event, which [`Parsed::into_inbound`] carries as a
//!   [`greg_core::Event::Unresolved`] (this crate's [`UnresolvedEvent`] serialized into
//!   [`greg_core::Unresolved::data`]). The engine hands it back to
//!   [`Provider::resolve`](greg_core::Provider::resolve) in the repository's lane, which
//!   looks the full head up through the API ([`BitbucketProvider::resolve`]) and completes it.
//! - One push delivery may update several branches (Cloud `push.changes[]`, Server
//!   `changes[]`); [`Parsed::Events`] carries one push event per branch, and
//!   [`Inbound::Events`] carries them all to greg-server.
//!
//! [`BitbucketProvider::resolve`]: crate::BitbucketProvider::resolve

use greg_core::{
    Event, Inbound, Login, PrNumber, PullRequest, PullRequestAction, PullRequestEvent,
    PullRequestState, RepoName, ReviewEvent, ReviewState, Sha, Unresolved,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The outcome of parsing one Bitbucket delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Parsed {
    /// Events greg can act on as they are, in delivery order; never empty. A push of several
    /// branches gives one [`Event::Push`] per branch.
    Events {
        /// The events.
        events: Vec<Event>,
    },
    /// An event that needs the full head commit, which the payload abbreviates.
    Unresolved {
        /// The event, to complete with [`BitbucketProvider::resolve`](crate::BitbucketProvider::resolve).
        event: Box<UnresolvedEvent>,
    },
    /// A well-formed delivery greg does not act on, with a one-line reason.
    Ignored {
        /// Why (`diagnostics:ping events are not used`, ...).
        reason: String,
    },
}

impl Parsed {
    /// The [`Inbound`] the [`Provider`](greg_core::Provider) impl answers: one event as
    /// [`Inbound::Event`], several (a push of several branches) as [`Inbound::Events`], an
    /// unresolved event as [`Event::Unresolved`] (see [`UnresolvedEvent::into_core`]), and
    /// [`Inbound::Ignored`] as it is. Pure; nothing is lost.
    pub fn into_inbound(self) -> Inbound {
        match self {
            Parsed::Events { mut events } => match events.len() {
                0 => Inbound::Ignored("the delivery carries no event".to_owned()),
                1 => match events.pop() {
                    Some(event) => Inbound::Event(event),
                    None => Inbound::Ignored("the delivery carries no event".to_owned()),
                },
                _ => Inbound::Events(events),
            },
            Parsed::Unresolved { event } => match event.into_core() {
                Ok(unresolved) => Inbound::Event(Event::Unresolved(unresolved)),
                Err(e) => Inbound::Ignored(format!("the event cannot be stored: {e}")),
            },
            Parsed::Ignored { reason } => Inbound::Ignored(reason),
        }
    }
}

/// An abbreviated commit hash as Bitbucket Cloud writes it in pull-request payloads: 7 to 64
/// lower-case hex digits (Cloud sends 12).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AbbreviatedSha(String);

/// Why a string is not an [`AbbreviatedSha`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAbbreviatedSha(pub String);

impl fmt::Display for InvalidAbbreviatedSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a commit hash (7 to 64 hex digits): {:?}", self.0)
    }
}

impl std::error::Error for InvalidAbbreviatedSha {}

impl AbbreviatedSha {
    /// Validates and lower-cases an abbreviated (or full) hash.
    pub fn parse(s: &str) -> Result<Self, InvalidAbbreviatedSha> {
        if (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(InvalidAbbreviatedSha(s.chars().take(80).collect()))
        }
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full sha, when this hash is not abbreviated after all (40 or 64 digits).
    pub fn full(&self) -> Option<Sha> {
        Sha::parse(&self.0).ok()
    }

    /// True when `sha` starts with these digits.
    pub fn abbreviates(&self, sha: &Sha) -> bool {
        sha.as_str().starts_with(&self.0)
    }
}

impl TryFrom<String> for AbbreviatedSha {
    type Error = InvalidAbbreviatedSha;
    fn try_from(s: String) -> Result<Self, InvalidAbbreviatedSha> {
        AbbreviatedSha::parse(&s)
    }
}

impl From<AbbreviatedSha> for String {
    fn from(s: AbbreviatedSha) -> String {
        s.0
    }
}

impl fmt::Display for AbbreviatedSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A normalized event that lacks only its full head commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnresolvedEvent {
    /// The repository the event concerns (the pull request's target repository).
    pub repo: RepoName,
    /// The repository the head commit lives in (the source repository; a fork's for a pull
    /// request from a fork), where the lookup is made.
    pub head_repo: RepoName,
    /// The head as the payload abbreviates it.
    pub head: AbbreviatedSha,
    /// Everything else.
    pub pending: PendingEvent,
}

/// The part of an [`UnresolvedEvent`] that is already known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PendingEvent {
    /// A pull-request lifecycle event; completes to [`Event::PullRequest`].
    PullRequest {
        /// What happened.
        action: PullRequestAction,
        /// The pull request as the payload described it.
        pull_request: PendingPullRequest,
    },
    /// An approval, its withdrawal or a change request, bound to the head at that moment;
    /// completes to [`Event::Review`] with `commit` set.
    Review {
        /// The pull request.
        pr: PrNumber,
        /// Who.
        reviewer: Login,
        /// The verdict.
        state: ReviewState,
    },
}

/// A [`PullRequest`] without its head commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPullRequest {
    /// See [`PullRequest::number`].
    pub number: PrNumber,
    /// See [`PullRequest::state`].
    pub state: PullRequestState,
    /// See [`PullRequest::draft`].
    pub draft: bool,
    /// See [`PullRequest::title`].
    pub title: String,
    /// See [`PullRequest::author`].
    pub author: Login,
    /// See [`PullRequest::head_ref`].
    pub head_ref: String,
    /// See [`PullRequest::head_repo`].
    pub head_repo: Option<RepoName>,
    /// See [`PullRequest::base_ref`].
    pub base_ref: String,
    /// See [`PullRequest::base_repo`].
    pub base_repo: RepoName,
    /// See [`PullRequest::html_url`].
    pub html_url: Option<String>,
}

impl PendingPullRequest {
    /// The pull request with its head. `mergeable` is `None`: Bitbucket does not say.
    pub fn complete(self, head_sha: Sha) -> PullRequest {
        PullRequest {
            number: self.number,
            state: self.state,
            draft: self.draft,
            title: self.title,
            author: self.author,
            head_sha,
            head_ref: self.head_ref,
            head_repo: self.head_repo,
            base_ref: self.base_ref,
            base_repo: self.base_repo,
            mergeable: None,
            html_url: self.html_url,
        }
    }
}

/// A looked-up head that does not start with the abbreviated hash it was looked up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadMismatch {
    /// The abbreviated hash of the payload.
    pub abbreviated: AbbreviatedSha,
    /// What the lookup returned.
    pub found: Sha,
}

impl fmt::Display for HeadMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the commit looked up by {} is {}, which does not start with it",
            self.abbreviated, self.found
        )
    }
}

impl std::error::Error for HeadMismatch {}

impl UnresolvedEvent {
    /// The pull request the event concerns.
    pub fn pr(&self) -> PrNumber {
        match &self.pending {
            PendingEvent::PullRequest { pull_request, .. } => pull_request.number,
            PendingEvent::Review { pr, .. } => *pr,
        }
    }

    /// The name the completed event will have ([`Event::name`]).
    pub fn name(&self) -> String {
        match &self.pending {
            PendingEvent::PullRequest { action, .. } => format!("pull_request.{}", action.as_str()),
            PendingEvent::Review { .. } => "review".to_owned(),
        }
    }

    /// greg-core's carrier of this event: the repository, the completed event's name, and
    /// this value serialized as `data` (this crate's own form, not Bitbucket's JSON), which
    /// [`Self::from_core`] reads back.
    ///
    /// # Errors
    /// When serialization fails, which these types never do (string keys, no maps).
    pub fn into_core(&self) -> Result<Unresolved, serde_json::Error> {
        Ok(Unresolved {
            repo: self.repo.clone(),
            what: self.name(),
            data: serde_json::to_value(self)?,
        })
    }

    /// Reads back what [`Self::into_core`] made.
    ///
    /// # Errors
    /// When `data` is not an [`UnresolvedEvent`] (another provider's, or a future version's).
    pub fn from_core(unresolved: &Unresolved) -> Result<Self, serde_json::Error> {
        Self::deserialize(&unresolved.data)
    }

    /// Completes the event with the full head. Pure.
    ///
    /// # Errors
    /// [`HeadMismatch`] when `head` does not start with the abbreviated hash.
    pub fn complete(self, head: Sha) -> Result<Event, HeadMismatch> {
        if !self.head.abbreviates(&head) {
            return Err(HeadMismatch {
                abbreviated: self.head,
                found: head,
            });
        }
        Ok(match self.pending {
            PendingEvent::PullRequest {
                action,
                pull_request,
            } => Event::PullRequest(PullRequestEvent {
                repo: self.repo,
                action,
                pull_request: pull_request.complete(head),
            }),
            PendingEvent::Review {
                pr,
                reviewer,
                state,
            } => Event::Review(ReviewEvent {
                repo: self.repo,
                pr,
                reviewer,
                state,
                commit: Some(head),
                body: None,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha() -> Sha {
        Sha::parse("d31df3425c5b7e3ee3a4b6b36d0d2f1c0a1b2c3d").expect("sha")
    }

    fn review(head: &str) -> UnresolvedEvent {
        UnresolvedEvent {
            repo: RepoName::new("acme", "demo"),
            head_repo: RepoName::new("acme", "demo"),
            head: AbbreviatedSha::parse(head).expect("hash"),
            pending: PendingEvent::Review {
                pr: PrNumber(7),
                reviewer: Login::from("557058:abc"),
                state: ReviewState::Approved,
            },
        }
    }

    #[test]
    fn abbreviated_hashes_are_hex_of_plausible_length() {
        assert_eq!(
            AbbreviatedSha::parse("D31DF3425C5B").map(|h| h.to_string()),
            Ok("d31df3425c5b".to_owned())
        );
        for bad in ["", "d31df3", "hfjkhsdf1234", &"a".repeat(65)] {
            assert!(AbbreviatedSha::parse(bad).is_err(), "{bad}");
        }
        let full = AbbreviatedSha::parse(sha().as_str()).expect("full");
        assert_eq!(full.full(), Some(sha()));
        assert_eq!(
            AbbreviatedSha::parse("d31df3425c5b").expect("x").full(),
            None
        );
    }

    #[test]
    fn completing_binds_the_review_to_the_head() {
        let event = review("d31df3425c5b").complete(sha()).expect("matches");
        match event {
            Event::Review(r) => {
                assert_eq!(r.commit, Some(sha()));
                assert_eq!(r.pr, PrNumber(7));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_head_that_does_not_match_is_refused() {
        let err = review("0123456789ab")
            .complete(sha())
            .expect_err("mismatch");
        assert_eq!(
            err.to_string(),
            format!(
                "the commit looked up by 0123456789ab is {}, which does not start with it",
                sha()
            )
        );
    }

    #[test]
    fn an_unresolved_event_travels_through_greg_core_and_back() {
        let event = review("d31df3425c5b");
        let inbound = Parsed::Unresolved {
            event: Box::new(event.clone()),
        }
        .into_inbound();
        let Inbound::Event(Event::Unresolved(carried)) = inbound else {
            panic!("not carried as unresolved: {inbound:?}");
        };
        assert_eq!(carried.repo, RepoName::new("acme", "demo"));
        assert_eq!(carried.what, "review");
        // The inbox stores the event as JSON text and reads it back after a restart.
        let stored = serde_json::to_string(&Event::Unresolved(carried)).expect("stores");
        let Event::Unresolved(read) = serde_json::from_str(&stored).expect("reads") else {
            panic!("not unresolved after the round trip");
        };
        assert_eq!(UnresolvedEvent::from_core(&read).expect("ours"), event);
    }

    #[test]
    fn another_providers_data_is_not_read_as_an_unresolved_event() {
        let foreign = Unresolved {
            repo: RepoName::new("acme", "demo"),
            what: "review".to_owned(),
            data: serde_json::json!({"sha": "d31df3425c5b"}),
        };
        assert!(UnresolvedEvent::from_core(&foreign).is_err());
    }

    #[test]
    fn a_push_of_several_branches_carries_every_branch() {
        let push = |branch: &str| {
            Event::Push(greg_core::PushEvent {
                repo: RepoName::new("acme", "demo"),
                branch: branch.to_owned(),
                head: sha(),
                pusher: None,
            })
        };
        let one = Parsed::Events {
            events: vec![push("main")],
        };
        assert_eq!(one.into_inbound(), Inbound::Event(push("main")));
        let two = Parsed::Events {
            events: vec![push("main"), push("fix")],
        };
        assert_eq!(
            two.into_inbound(),
            Inbound::Events(vec![push("main"), push("fix")])
        );
    }
}
