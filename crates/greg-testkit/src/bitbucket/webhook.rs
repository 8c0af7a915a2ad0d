//! Bitbucket webhook deliveries built from the world, for both flavors: pushes, pull-request
//! lifecycle events, verdicts and comments, with each flavor's delivery headers and the
//! `X-Hub-Signature: sha256=<hex>` HMAC. As with GitHub, the fakes never send them: a test (or
//! `greg demo`) acts on the world, builds the delivery Bitbucket would send, and posts it.
//!
//! Payload shapes: Cloud <https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/>
//! (the event is named only by `X-Event-Key`; pull-request objects abbreviate hashes to 12
//! digits), Server/Data Center
//! <https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html> (`eventKey`
//! in the body too; `date` as `2024-01-01T00:00:00+0000`). The objects inside are the ones the
//! REST fakes answer (`cloud_json`, `server_json`), as both vendors use the same objects in
//! events and REST answers; the captured deliveries in tests/data/bitbucket-*/ show the same
//! keys.

use super::{cloud_json as cj, server_json as sj};
use crate::webhook::sign;
use crate::world::WorldError;
use crate::world::bitbucket::{BbComment, Bitbucket, Flavor, cloud_date, server_date, uuid};
use greg_core::{Login, PrNumber, RepoName, ReviewState, Sha};
use serde_json::{Value, json};

/// One webhook delivery as Bitbucket would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct BitbucketDelivery {
    /// Who sends it.
    pub flavor: Flavor,
    /// `X-Event-Key`: `pullrequest:created`, `pr:opened`, ...
    pub event: String,
    /// Cloud `X-Request-UUID`, Server `X-Request-Id`: unique per delivery built by this world.
    pub delivery_id: String,
    /// The JSON payload.
    pub payload: Value,
}

impl BitbucketDelivery {
    /// The body bytes (compact JSON); sign exactly these.
    pub fn body(&self) -> Vec<u8> {
        self.payload.to_string().into_bytes()
    }

    /// The flavor's delivery headers; with a secret, `X-Hub-Signature` over [`Self::body`].
    pub fn headers(&self, secret: Option<&str>) -> Vec<(String, String)> {
        let mut h = match self.flavor {
            Flavor::Cloud => vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("user-agent".to_owned(), "Bitbucket-Webhooks/2.0".to_owned()),
                ("x-event-key".to_owned(), self.event.clone()),
                ("x-request-uuid".to_owned(), self.delivery_id.clone()),
                ("x-hook-uuid".to_owned(), uuid("greg hook")),
                ("x-attempt-number".to_owned(), "1".to_owned()),
            ],
            Flavor::Server => vec![
                (
                    "content-type".to_owned(),
                    "application/json; charset=utf-8".to_owned(),
                ),
                (
                    "user-agent".to_owned(),
                    "Atlassian HttpClient 3.0.4 / Bitbucket-8.9.0 (8009000) / Default".to_owned(),
                ),
                ("x-event-key".to_owned(), self.event.clone()),
                ("x-request-id".to_owned(), self.delivery_id.clone()),
            ],
        };
        if let Some(s) = secret {
            h.push(("x-hub-signature".to_owned(), sign(s, &self.body())));
        }
        h
    }

    /// POSTs the delivery to `url` (greg's `/repo?provider=bitbucket&token=...`).
    pub async fn send(
        &self,
        client: &reqwest::Client,
        url: &str,
        secret: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut req = client.post(url).body(self.body());
        for (k, v) in self.headers(secret) {
            req = req.header(k, v);
        }
        req.send().await
    }
}

/// Checks that `event` is one of `allowed` for the flavor.
fn known(event: &str, allowed: &[&str]) -> Result<(), WorldError> {
    if allowed.contains(&event) {
        Ok(())
    } else {
        Err(WorldError::Git(format!(
            "not a delivery this builder makes: {event} (one of {})",
            allowed.join(", ")
        )))
    }
}

impl Bitbucket {
    fn delivery(&self, flavor: Flavor, event: &str, payload: Value) -> BitbucketDelivery {
        let n = self.mutate(|b, _| b.next_id());
        let id = uuid(&format!("delivery {n}"));
        BitbucketDelivery {
            flavor,
            event: event.to_owned(),
            delivery_id: id.trim_matches(|c| c == '{' || c == '}').to_owned(),
            payload,
        }
    }

    /// A pull-request lifecycle delivery for the pull request as it now stands. Cloud:
    /// `pullrequest:created`, `:updated`, `:fulfilled`, `:rejected`. Server: `pr:opened`,
    /// `pr:from_ref_updated` (`previousFromHash`: the head before the last push), `pr:merged`,
    /// `pr:declined`, `pr:deleted`, `pr:modified` (`previousTarget` given by
    /// `previous_target`, else the current target).
    ///
    /// # Errors
    /// An unknown repository or pull request, or an event this builder does not make.
    pub fn pull_request_webhook(
        &self,
        flavor: Flavor,
        repo: &RepoName,
        pr: PrNumber,
        event: &str,
        previous_target: Option<&str>,
    ) -> Result<BitbucketDelivery, WorldError> {
        let payload = match flavor {
            Flavor::Cloud => {
                known(
                    event,
                    &[
                        "pullrequest:created",
                        "pullrequest:updated",
                        "pullrequest:fulfilled",
                        "pullrequest:rejected",
                    ],
                )?;
                self.read(|b| {
                    let r = b.repo(repo)?;
                    let p = r.pull(pr)?;
                    let actor = p.closed_by.clone().unwrap_or_else(|| p.author.clone());
                    Ok::<_, WorldError>(json!({
                        "actor": cj::user(b, &actor),
                        "pullrequest": cj::pull_request(b, r, p),
                        "repository": cj::repository(b, repo),
                    }))
                })?
            }
            Flavor::Server => {
                known(
                    event,
                    &[
                        "pr:opened",
                        "pr:from_ref_updated",
                        "pr:merged",
                        "pr:declined",
                        "pr:deleted",
                        "pr:modified",
                    ],
                )?;
                self.world().read(|s| {
                    let b = &s.bitbucket;
                    let r = b.repo(repo)?;
                    let p = r.pull(pr)?;
                    let actor = p.closed_by.clone().unwrap_or_else(|| p.author.clone());
                    let mut v = json!({
                        "eventKey": event,
                        "date": server_date(s.now_ms()),
                        "actor": sj::user(b, &actor),
                        "pullRequest": sj::pull_request(b, r, p),
                    });
                    if event == "pr:from_ref_updated" {
                        let previous = p
                            .updates
                            .iter()
                            .rev()
                            .nth(1)
                            .map_or(&p.head_sha, |(_, sha)| sha);
                        v["previousFromHash"] = Value::from(previous.as_str());
                    }
                    if event == "pr:modified" {
                        let target = previous_target.unwrap_or(&p.base_ref);
                        v["previousTitle"] = Value::from(p.title.as_str());
                        v["previousDescription"] = Value::from(p.description.as_str());
                        v["previousTarget"] = json!({
                            "id": format!("refs/heads/{target}"),
                            "displayId": target,
                            "type": "BRANCH",
                        });
                    }
                    Ok::<_, WorldError>(v)
                })?
            }
        };
        Ok(self.delivery(flavor, event, payload))
    }

    /// The delivery for `user`'s current verdict on the pull request: Cloud
    /// `pullrequest:approved` (`approval`), `:changes_request_created` (`changes_request`) or
    /// `:unapproved`; Server `pr:reviewer:approved`, `:needs_work` or `:unapproved`
    /// (`participant`, `previousStatus`).
    ///
    /// # Errors
    /// An unknown repository, pull request or participant.
    pub fn review_webhook(
        &self,
        flavor: Flavor,
        repo: &RepoName,
        pr: PrNumber,
        user: &str,
    ) -> Result<BitbucketDelivery, WorldError> {
        let login = Login::from(user);
        let (event, payload) = self.world().read(|s| {
            let b = &s.bitbucket;
            let r = b.repo(repo)?;
            let p = r.pull(pr)?;
            let x = p
                .participant(&login)
                .ok_or_else(|| WorldError::Git(format!("{user} has no verdict on {repo}#{pr}")))?;
            Ok::<_, WorldError>(match flavor {
                Flavor::Cloud => {
                    let verdict = json!({
                        "date": cloud_date(x.participated_on),
                        "user": cj::user(b, &x.user),
                        "pullrequest": cj::pull_request_ref(b, r, p),
                    });
                    let (event, field) = match x.verdict {
                        Some(ReviewState::Approved) => ("pullrequest:approved", "approval"),
                        Some(ReviewState::ChangesRequested) => {
                            ("pullrequest:changes_request_created", "changes_request")
                        }
                        _ => ("pullrequest:unapproved", "approval"),
                    };
                    let mut v = json!({
                        "actor": cj::user(b, &x.user),
                        "pullrequest": cj::pull_request(b, r, p),
                        "repository": cj::repository(b, repo),
                    });
                    v[field] = verdict;
                    (event, v)
                }
                Flavor::Server => {
                    let event = match x.verdict {
                        Some(ReviewState::Approved) => "pr:reviewer:approved",
                        Some(ReviewState::ChangesRequested) => "pr:reviewer:needs_work",
                        _ => "pr:reviewer:unapproved",
                    };
                    let previous = if x.verdict.is_some() {
                        "UNAPPROVED"
                    } else {
                        "APPROVED"
                    };
                    (
                        event,
                        json!({
                            "eventKey": event,
                            "date": server_date(s.now_ms()),
                            "actor": sj::user(b, &x.user),
                            "pullRequest": sj::pull_request(b, r, p),
                            "participant": sj::participant(b, x),
                            "previousStatus": previous,
                        }),
                    )
                }
            })
        })?;
        Ok(self.delivery(flavor, event, payload))
    }

    /// The delivery for a new comment: Cloud `pullrequest:comment_created`, Server
    /// `pr:comment:added`.
    ///
    /// # Errors
    /// An unknown repository or pull request.
    pub fn comment_webhook(
        &self,
        flavor: Flavor,
        repo: &RepoName,
        comment: &BbComment,
    ) -> Result<BitbucketDelivery, WorldError> {
        let (event, payload) = self.world().read(|s| {
            let b = &s.bitbucket;
            let r = b.repo(repo)?;
            let p = r.pull(comment.pr)?;
            Ok::<_, WorldError>(match flavor {
                Flavor::Cloud => (
                    "pullrequest:comment_created",
                    json!({
                        "actor": cj::user(b, &comment.author),
                        "comment": cj::comment(b, r, p, comment),
                        "pullrequest": cj::pull_request(b, r, p),
                        "repository": cj::repository(b, repo),
                    }),
                ),
                Flavor::Server => (
                    "pr:comment:added",
                    json!({
                        "eventKey": "pr:comment:added",
                        "date": server_date(s.now_ms()),
                        "actor": sj::user(b, &comment.author),
                        "pullRequest": sj::pull_request(b, r, p),
                        "comment": sj::comment(b, r, comment),
                    }),
                ),
            })
        })?;
        Ok(self.delivery(flavor, event, payload))
    }

    /// The delivery for a push that moved `branch` from `old` (`None`: created) to its
    /// current tip: Cloud `repo:push`, Server `repo:refs_changed`.
    ///
    /// # Errors
    /// An unknown repository or branch.
    pub fn push_webhook(
        &self,
        flavor: Flavor,
        repo: &RepoName,
        branch: &str,
        old: Option<&Sha>,
        pusher: &str,
    ) -> Result<BitbucketDelivery, WorldError> {
        let pusher = Login::from(pusher);
        let (event, payload) = self.world().read(|s| {
            let b = &s.bitbucket;
            let r = b.repo(repo)?;
            let tip = r
                .branches
                .get(branch)
                .ok_or_else(|| WorldError::UnknownBranch(repo.clone(), branch.to_owned()))?;
            Ok::<_, WorldError>(match flavor {
                Flavor::Cloud => {
                    let state = |sha: &Sha| {
                        json!({"type": "branch", "name": branch, "target": cj::commit(b, r, sha)})
                    };
                    (
                        "repo:push",
                        json!({
                            "actor": cj::user(b, &pusher),
                            "repository": cj::repository(b, repo),
                            "push": {"changes": [{
                                "forced": false,
                                "old": old.map_or(Value::Null, state),
                                "new": state(tip),
                                "created": old.is_none(),
                                "closed": false,
                                "truncated": false,
                                "commits": [],
                            }]},
                        }),
                    )
                }
                Flavor::Server => {
                    let zero = "0".repeat(40);
                    (
                        "repo:refs_changed",
                        json!({
                            "eventKey": "repo:refs_changed",
                            "date": server_date(s.now_ms()),
                            "actor": sj::user(b, &pusher),
                            "repository": sj::repository(b, repo, r.id),
                            "changes": [{
                                "ref": {"id": format!("refs/heads/{branch}"), "displayId": branch, "type": "BRANCH"},
                                "refId": format!("refs/heads/{branch}"),
                                "fromHash": old.map_or(zero.as_str(), Sha::as_str),
                                "toHash": tip.as_str(),
                                "type": if old.is_some() { "UPDATE" } else { "ADD" },
                            }],
                        }),
                    )
                }
            })
        })?;
        Ok(self.delivery(flavor, event, payload))
    }
}
